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
LOG_FILES = ("metrics.jsonl", "tensorboard")  # what a continued run copies from the run it continues
# How a finished run goes on (``--continue-from``, :mod:`.continuing`): the sentence every refusal names.
CONTINUE_HINT = ("continue it with more steps or stages with --continue-from {run} --output-dir NEW_FOLDER "
                 "(and --max-steps N or --stages ...)")


def prepare_output(config: PretrainConfig, resume: bool, dist: Dist | None = None) -> tuple[Path, Path | None]:
    """The output folder and the checkpoint to resume from (the newest that verifies); nothing is written."""
    out = Path(config.output_dir)
    if out.exists() and not out.is_dir():
        raise VocabExtendError(f"output folder {out} is a file: choose another --output-dir")
    if resume and (out / MODEL_DIR).is_dir():
        raise VocabExtendError(f"--resume: the run in {out} has finished (its {MODEL_DIR}/ is written): "
                               f"{CONTINUE_HINT.format(run=out)}, or start it over with --overwrite")
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
            raise VocabExtendError(f"output folder {out} already holds a run: {_run_options(out)}")
    return out, latest


def _run_options(out: Path) -> str:
    """What the user can do with the run already in ``out``: continue it (finished or not) or start over."""
    if (out / MODEL_DIR).is_dir():
        return (f"it has finished; {CONTINUE_HINT.format(run=out)}, pass --overwrite to start over, or choose "
                "another --output-dir")
    if ckpt.list_checkpoints(out):
        return "pass --resume to continue it, --overwrite to start over, or another --output-dir"
    return "it has no checkpoint to resume from: pass --overwrite to start over, or another --output-dir"


def claim_output(config: PretrainConfig, out: Path, resuming: bool, continue_from: Path | None = None) -> None:
    """Start the run's folder once every check has passed (replacing an old run under --overwrite); a
    partial checkpoint an interrupted run left is removed (this process holds the run's lock). A run that
    continues another starts with a copy of that run's log (``metrics.jsonl``, ``tensorboard/``), which the
    metrics component cuts back to the checkpoint's step; the other run is only read."""
    if config.overwrite and not resuming and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt.sweep_staging(out)
    if not resuming:
        (out / RUN_CONFIG).write_text(run_config_text(config), encoding="utf-8")
    if continue_from is not None:
        for name in LOG_FILES:
            source = continue_from / name
            if source.is_file():
                shutil.copy2(source, out / name)
            elif source.is_dir():
                shutil.copytree(source, out / name)


def run_config_text(config: PretrainConfig) -> str:
    """The run's resolved config as YAML: ``config.yaml`` of the run, and a copy in every checkpoint."""
    return yaml.safe_dump(plain(config.to_dict()), sort_keys=False, allow_unicode=True)


def check_resume(config: PretrainConfig, out: Path, checkpoint: Path) -> None:
    """Refuse to resume a finished run, or with settings that change the run's losses."""
    if (out / MODEL_DIR).is_dir():
        raise VocabExtendError(f"--resume: the run in {out} has finished (its {MODEL_DIR}/ is written): "
                               f"{CONTINUE_HINT.format(run=out)}, or start it over with --overwrite")
    changed = changed_setting(config, out, checkpoint, TRAJECTORY_KEYS)
    if changed is not None:
        key, before, after = changed
        raise VocabExtendError(f"--resume: the run in {out} was started with {key} {before}, not {after}; resume "
                               "with the same settings, or start a new run with --overwrite")


def saved_config(out: Path, checkpoint: Path, flag: str) -> Any:
    """The run's config as saved: the checkpoint's own copy (checked by its manifest), else ``config.yaml``."""
    saved_file = next((f for f in (Path(checkpoint) / ckpt.RUN_CONFIG, out / RUN_CONFIG) if f.is_file()), None)
    if saved_file is None:
        raise VocabExtendError(
            f"{flag}: neither {checkpoint} nor {out} holds the run's config ({RUN_CONFIG}), so a changed "
            "setting could not be caught: start a new run with --overwrite or another --output-dir")
    return yaml.safe_load(saved_file.read_text(encoding="utf-8")) or {}  # flat (older runs) or in sections


def changed_setting(config: PretrainConfig, out: Path, checkpoint: Path, keys: tuple[str, ...],
                    flag: str = "--resume") -> tuple[str, str, str] | None:
    """The first of ``keys`` (flat names) whose value in ``config`` differs from the run's saved config, as
    ``(key, before, after)`` in short form; ``None`` when all agree."""
    saved, now = _resolved(saved_config(out, checkpoint, flag)), nest(plain(config.to_dict()))
    for key in keys:
        section, name = FLAT[key]
        before, after = (saved.get(section) or {}, now[section]) if section else (saved, now)
        if name in before and plain(before[name]) != after.get(name):
            return key, short(before[name]), short(after.get(name))
    return None


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
