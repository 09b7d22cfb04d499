"""The parts of a run that decide *when* they act; :class:`~.loop.Trainer` only sequences the steps.

- :class:`MetricsLogger`: training records every ``log_every`` steps (and the last), eval records, the
  progress bar and log lines; only rank 0 writes.
- :class:`Validator`: bits per byte of the eval corpora at step 0 (``eval_at_start``), every ``eval_every``
  steps and at the last step.
- :class:`Checkpointer`: a checkpoint every ``save_every`` steps before the last (the final model is the
  run's ``model/`` folder); it also restores one on ``--resume``.

>>> v = Validator.__new__(Validator); v.every, v.total, v.at_start = 10, 25, True
>>> [s for s in range(26) if v.should_validate(s)]
[0, 10, 20, 25]
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..errors import StorageError, free_space, human_size, storage_error
from ..model.evaluate.bpb import bits_per_byte
from . import checkpoint as ckpt
from .config import PretrainConfig
from .dist import Dist
from .outputs import MetricsLog
from .parallel import is_sharded
from .run_dir import run_config_text
from .stream import load_state as load_stream_state
from .stream import save_state as save_stream_state


def autocast(config: PretrainConfig, device: torch.device):
    """bf16 autocast on GPUs (``precision: auto``) or when asked (``bf16``); full precision otherwise."""
    use_bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    if use_bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class MetricsLogger:
    """``metrics.jsonl`` (+ TensorBoard), the progress bar and log lines, on rank 0 only."""

    def __init__(self, config: PretrainConfig, dist: Dist, out: Path, start_step: int, resumed: bool) -> None:
        self.dist, self.every, self.total = dist, config.log_every, config.total_steps
        self.log = MetricsLog(out, resume_step=start_step if resumed else None,
                              tensorboard=config.tensorboard) if dist.main else None
        self.bar = tqdm(total=self.total, initial=start_step, desc="pretraining", unit="step",
                        disable=not (dist.main and config.progress), dynamic_ncols=True)

    def message(self, text: str) -> None:
        if self.dist.main:
            tqdm.write(text, file=sys.stderr)

    def train_step(self, record: dict[str, Any]) -> None:
        """Record a finished step (``record["step"]`` counts from 1)."""
        if not self.dist.main:
            return
        step = record["step"]
        if step % self.every == 0 or step == self.total:
            self.log.write(record)
        self.bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}",
                             tok_s=f"{record['tokens_per_s']:,.0f}")
        self.bar.update(1)

    def write(self, record: dict[str, Any]) -> None:
        if self.dist.main:
            self.log.write(record)
            if record.get("kind") == "eval":
                self._last_eval = dict(record.get("bpb") or {})

    def last_eval(self) -> dict[str, float] | None:
        """Bits per byte of the latest evaluation written in this process, for the model card."""
        return getattr(self, "_last_eval", None)

    def close(self) -> None:
        self.bar.close()
        if self.log is not None:
            self.log.close()


class Validator:
    """Bits per byte of every eval corpus, computed by rank 0 with :func:`vocab_extend.model.evaluate.bpb.bits_per_byte`."""

    def __init__(self, config: PretrainConfig, dist: Dist, tokenizer, eval_docs: dict[str, list[str]],
                 metrics: MetricsLogger) -> None:
        self.config, self.dist, self.tokenizer, self.docs, self.metrics = config, dist, tokenizer, eval_docs, metrics
        self.every, self.total, self.at_start = config.eval_every, config.total_steps, config.eval_at_start

    def should_validate(self, step: int) -> bool:
        if step == 0:
            return self.at_start
        return bool(self.every and step % self.every == 0) or step == self.total

    def validate(self, model: torch.nn.Module, step: int) -> None:
        """Every rank calls this (a sharded model needs them all to run forward); rank 0 records."""
        # a sharded model needs every rank in its forward passes; rank 0 alone holds a plain one
        if self.docs and (self.dist.main or is_sharded(model)):
            bpb, loss = {}, {}
            for name, texts in self.docs.items():
                with autocast(self.config, self.dist.device):
                    result = bits_per_byte(model, self.tokenizer, texts, max_bytes=self.config.eval_max_bytes,
                                           block_size=self.config.eval_block_size,
                                           batch_size=self.config.eval_batch_size,
                                           device=self.dist.device, progress=False)
                bpb[name], loss[name] = round(result.bpb, 6), round(result.loss, 6)
            self.metrics.write({"kind": "eval", "step": step, "bpb": bpb, "loss": loss})
            model.train()
            self.metrics.message(f"step {step}: bits per byte " + ", ".join(f"{k} {v:.4f}" for k, v in bpb.items()))
        self.dist.barrier()


class Checkpointer:
    """Writes a checkpoint every ``save_every`` steps (never at the last step) and reads one back."""

    def __init__(self, config: PretrainConfig, dist: Dist, out: Path, resume_from: Path | None) -> None:
        self.config, self.dist, self.out, self.resume_from = config, dist, out, resume_from
        self.every, self.total = config.save_every, config.total_steps
        self.state = ckpt.read_state(resume_from) if resume_from is not None else None
        self.run_config = run_config_text(config)
        self.blocks = None  # the training blocks, whose stream position (if streamed) a checkpoint keeps

    def restore_data(self, blocks) -> None:
        """Seek the streamed training corpora to the checkpoint's position (nothing for cached corpora)."""
        self.blocks = blocks
        if self.resume_from is not None:
            load_stream_state(blocks, self.resume_from)

    @property
    def start_step(self) -> int:
        return self.state["step"] if self.state else 0

    def should_save(self, step: int) -> bool:
        return bool(self.every) and step % self.every == 0 and step < self.total

    def save(self, step: int, trained: torch.nn.Module, optimizer, scheduler, stage_index: int, *,
             boundary: bool, extra: dict[str, Any] | None = None) -> None:
        """Every rank calls this. ``boundary``: the stage has just ended and ``trained`` is the plain model.

        Free space is checked first (the newest checkpoint's size, else an estimate from the model); a
        failure or Ctrl-C while writing removes the partial checkpoint, so only whole ones remain.
        """
        dist = self.dist
        staging = ckpt.staging_path(self.out, step)
        needed = self._needed(trained, None if boundary else optimizer)
        if dist.main:
            self._check_space(step, needed)
            ckpt.clear(staging)
        dist.barrier()
        try:
            ckpt.write_rank_state(staging, dist.rank)
            ckpt.write_state(staging, trained, optimizer, dist.main, model_only=boundary)
            dist.barrier()
            if dist.main:
                state = {"step": step, "optimizer_stage": stage_index, "boundary": boundary,
                         "data_position": step * self.config.batch_size, "world_size": dist.world,
                         "parallelism": self.config.parallelism, **(extra or {})}
                if self.blocks is not None:  # the same on every rank: each reads whole global batches
                    save_stream_state(self.blocks, staging)
                ckpt.write_main_state(staging, None if boundary else scheduler, state, self.run_config)
                ckpt.write_manifest(staging)
                ckpt.publish(staging, self.config.keep_checkpoints)
        except BaseException as exc:
            if dist.main:
                shutil.rmtree(staging, ignore_errors=True)
            error = None if isinstance(exc, KeyboardInterrupt) else _storage_failure(exc, staging.parent, needed)
            if error is not None:
                raise StorageError(f"{error} ({self._last_good()})") from None
            raise
        dist.barrier()

    def _needed(self, trained: torch.nn.Module, optimizer) -> int:
        latest = ckpt.list_checkpoints(self.out)
        size = ckpt.checkpoint_size(latest[-1]) if latest else None
        return size if size is not None else ckpt.estimate_size(trained, optimizer)

    def _last_good(self) -> str:
        saved = ckpt.list_checkpoints(self.out)
        return f"the last checkpoint, {saved[-1].name}, is kept" if saved else "no checkpoint was written yet"

    def _check_space(self, step: int, needed: int) -> None:
        folder = self.out / ckpt.CHECKPOINTS
        free = ckpt.free_bytes(folder)
        if free < needed * 1.05:
            raise StorageError(
                f"cannot write checkpoint step {step} in {folder}: it needs about {human_size(needed)} and "
                f"{human_size(free)} is free ({self._last_good()}); free some space and continue with "
                "--resume, or lower keep_checkpoints")

    def load_model(self, model: torch.nn.Module) -> None:
        """The checkpoint's plain model (a stage-boundary checkpoint) into ``model``."""
        assert self.resume_from is not None
        ckpt.load_model_weights(self.resume_from, model)

    def load_trainer(self, trained: torch.nn.Module, optimizer, scheduler) -> None:
        """Model and optimiser shards of a checkpoint inside a stage, the schedule and this rank's RNG."""
        assert self.resume_from is not None
        ckpt.load_trainer_state(self.resume_from, trained, optimizer, scheduler)
        ckpt.load_rng_state(self.resume_from, self.dist.rank)


def _storage_failure(exc: BaseException, folder: Path, needed: int) -> StorageError | None:
    """A full disk (or read-only / forbidden folder) behind a failed checkpoint write, as one sentence.

    DCP wraps each rank's error in a ``CheckpointException``, and ``torch.save`` reports a full disk only as
    "unexpected pos ..." without the OS error, so when no storage error is found in the chain, a disk that
    now has less room than the checkpoint needs is taken as the cause.
    """
    failures = getattr(exc, "failures", None)
    causes = [exc, *(pair[0] for pair in failures.values())] if isinstance(failures, dict) else [exc]
    for cause in causes:
        error = storage_error(cause, folder, needed=needed)
        if error is not None:
            return error
    free = free_space(folder)
    if free is not None and free < needed:
        return storage_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), folder, needed=needed)
    return None
