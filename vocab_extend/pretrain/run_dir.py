"""The run's output folder: refuse to clobber what is not ours, and refuse a resume that changes the losses."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from ..console import log
from ..errors import VocabExtendError
from . import checkpoint as ckpt
from .config import PretrainConfig
from .dist import Dist

MODEL_DIR = "model"
RUN_CONFIG = "config.yaml"  # the run's resolved config; --resume checks it against the new one
RUN_MARKERS = ("metrics.jsonl", ckpt.CHECKPOINTS, MODEL_DIR, RUN_CONFIG)  # a folder --overwrite may delete
# Settings that decide the losses: a resumed run must keep them (evaluation, logging and checkpointing may
# change, and so may the number of processes, the parallelism and the micro-batch size).
TRAJECTORY_KEYS = ("model", "tokenizer", "tokenizer_merge", "pico", "base_vocab_size", "train", "train_weights",
                   "eval", "heldout_fraction", "text_field", "max_docs", "block_size", "streaming",
                   "shuffle_buffer", "stages", "max_steps", "batch_size", "lr", "warmup_steps", "min_lr_ratio",
                   "weight_decay", "adam_betas", "adam_eps", "max_grad_norm", "precision", "seed")


def prepare_output(config: PretrainConfig, resume: bool, dist: Dist | None = None) -> tuple[Path, Path | None]:
    """The output folder and the checkpoint to resume from (the newest that verifies); nothing is written.

    Rank 0 verifies the checkpoints (hashing them once, not once per process) and names on stderr each newer
    one that fails, with the reason; the other ranks take its choice.
    """
    out = Path(config.output_dir)
    main = dist is None or dist.main
    if out.exists() and not out.is_dir():
        raise VocabExtendError(f"output folder {out} is a file: choose another --output-dir")
    found = ckpt.newest_good_checkpoint(out) if resume and main else (None, [])
    latest, skipped = dist.from_main(found) if dist is not None else found
    for path, reason in skipped if main else []:
        log(f"--resume: skipping checkpoint {path.name}: {reason}")
    if resume and latest is None:
        damaged = f" ({len(skipped)} damaged checkpoint(s) skipped)" if skipped else ""
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


def check_resume(config: PretrainConfig, out: Path, checkpoint: Path, step: int) -> None:
    """Refuse to resume with settings that change the run's losses, or from past the run's last step."""
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
    if saved_file is not None:
        saved = yaml.safe_load(saved_file.read_text(encoding="utf-8")) or {}
        now = plain(config.to_dict())
        for key in TRAJECTORY_KEYS:
            if key in saved and plain(saved[key]) != now.get(key):
                raise VocabExtendError(
                    f"--resume: the run in {out} was started with {key} {short(saved[key])}, not "
                    f"{short(now.get(key))}; resume with the same settings, or start a new run with --overwrite")
    if step >= config.total_steps:
        raise VocabExtendError(
            f"--resume: {checkpoint} is at step {step}, but this run has only {config.total_steps} steps: "
            "resume with the max_steps the run was started with")


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
