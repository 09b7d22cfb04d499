"""The run's output folder: refuse to clobber what is not ours, and refuse a resume that changes the losses.

Which checkpoint a resume continues from is the checkpoint component's choice
(:func:`~.checkpoint.resume_point`); this module owns the folder and its ``config.yaml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from ..errors import VocabExtendError
from . import checkpoint as ckpt
from .config import FLAT, PretrainConfig, config_from_dict, nest
from .dist import Dist

MODEL_DIR = "model"
RUN_CONFIG = "config.yaml"  # the run's resolved config; --resume checks it against the new one
RUN_MARKERS = ("metrics.jsonl", ckpt.CHECKPOINTS, MODEL_DIR, RUN_CONFIG)  # a folder --overwrite may delete
# Settings that decide the losses (flat names): a resumed run must keep them (evaluation, logging and
# checkpointing may change, and so may the number of processes, the parallelism and the micro-batch size).
TRAJECTORY_KEYS = ("model", "tokenizer", "tokenizer_merge", "pico", "base_vocab_size", "train", "train_weights",
                   "eval", "heldout_fraction", "text_field", "max_docs", "block_size", "streaming",
                   "shuffle_buffer", "stages", "max_steps", "batch_size", "lr", "warmup_steps", "min_lr_ratio",
                   "weight_decay", "adam_betas", "adam_eps", "max_grad_norm", "precision", "seed")


def prepare_output(config: PretrainConfig, resume: bool, dist: Dist | None = None) -> tuple[Path, Path | None]:
    """The output folder and the checkpoint to resume from (the newest that verifies); nothing is written."""
    out = Path(config.output_dir)
    if out.exists() and not out.is_dir():
        raise VocabExtendError(f"output folder {out} is a file: choose another --output-dir")
    latest, skipped = ckpt.resume_point(out, dist or Dist()) if resume else (None, 0)
    if resume and latest is None:
        damaged = f" ({skipped} damaged checkpoint(s) skipped)" if skipped else ""
        started = out.is_dir() and any((out / name).exists() for name in RUN_MARKERS)
        hint = ("pass --overwrite instead of --resume to start the run again" if started
                else "drop --resume to start a run")
        raise VocabExtendError(f"--resume: {out} holds no checkpoint to resume from{damaged}; {hint}")
    if out.exists() and any(out.iterdir()) and not resume:
        if not any((out / name).exists() for name in RUN_MARKERS):
            raise VocabExtendError(
                f"output folder {out} holds files that are not a pretraining run: choose another --output-dir")
        if not config.overwrite:
            can_resume = bool(ckpt.list_checkpoints(out)) and not (out / MODEL_DIR).is_dir()
            options = "pass --resume to continue it, --overwrite to start over" if can_resume else \
                "it has no checkpoint to resume from: pass --overwrite to start over"
            raise VocabExtendError(f"output folder {out} already holds a run: {options}, or another --output-dir")
    return out, latest


def claim_output(config: PretrainConfig, out: Path, resuming: bool) -> None:
    """Start the run's folder once every check has passed (replacing an old run under --overwrite); a
    partial checkpoint an interrupted run left is removed (this process holds the run's lock)."""
    if config.overwrite and not resuming and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt.sweep_staging(out)
    if not resuming:
        (out / RUN_CONFIG).write_text(run_config_text(config), encoding="utf-8")


def run_config_text(config: PretrainConfig) -> str:
    """The run's resolved config as YAML: ``config.yaml`` of the run, and a copy in every checkpoint."""
    return yaml.safe_dump(plain(config.to_dict()), sort_keys=False, allow_unicode=True)


def check_resume(config: PretrainConfig, out: Path, checkpoint: Path) -> None:
    """Refuse to resume a finished run, or with settings that change the run's losses."""
    if (out / MODEL_DIR).is_dir():
        raise VocabExtendError(
            f"--resume: the run in {out} has finished (its {MODEL_DIR}/ is written); start a new run with "
            "--overwrite or another --output-dir")
    # the checkpoint's own copy of the run's config (checked by its manifest), else the run's config.yaml
    saved_file = next((f for f in (Path(checkpoint) / ckpt.RUN_CONFIG, out / RUN_CONFIG) if f.is_file()), None)
    if saved_file is None:
        raise VocabExtendError(
            f"--resume: neither {checkpoint} nor {out} holds the run's config ({RUN_CONFIG}), so a changed "
            "setting could not be caught: start a new run with --overwrite or another --output-dir")
    raw = yaml.safe_load(saved_file.read_text(encoding="utf-8")) or {}  # flat (older runs) or in sections
    saved, now = _resolved(raw), nest(plain(config.to_dict()))
    for key in TRAJECTORY_KEYS:
        section, name = FLAT[key]
        before, after = (saved.get(section) or {}, now[section]) if section else (saved, now)
        if name in before and plain(before[name]) != after.get(name):
            raise VocabExtendError(
                f"--resume: the run in {out} was started with {key} {short(before[name])}, not "
                f"{short(after.get(name))}; resume with the same settings, or start a new run with --overwrite")


def _resolved(raw: Any) -> dict[str, Any]:
    """A saved config in sections with its values as the config resolves them (a corpus spec as a list...);
    only the settings it names, so a setting added since it was written is not taken as changed."""
    given = nest(raw)
    try:
        full = nest(plain(config_from_dict(raw).to_dict()))
    except VocabExtendError:  # no longer valid as a whole: compare what it says, as written
        return given
    return {key: {name: full[key][name] for name in value} if isinstance(value, dict) else full[key]
            for key, value in given.items()}


def short(value: Any) -> str:
    """A setting as one short phrase: stages as ``new-rows:10,full:10``, anything else cut to 80 characters.

    >>> short([{"name": "new-rows", "steps": 10, "lr": 0.003}, {"name": "full", "steps": 5}])
    'new-rows:10,full:5'
    """
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        return ",".join(f"{v['name']}:{v.get('steps')}" for v in value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def plain(value: Any) -> Any:
    """``value`` as YAML would give it back (tuples as lists, dataclasses as mappings)."""
    return yaml.safe_load(yaml.safe_dump(value))
