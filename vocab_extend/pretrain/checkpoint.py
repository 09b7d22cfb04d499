"""Checkpoints: model, optimiser, scheduler, RNG states and data position, written atomically.

A checkpoint is a folder ``checkpoints/step-00000040`` written with ``torch.distributed.checkpoint``
(DCP): every rank writes its own shard of the model being trained (LoRA adapters or split rows included
while such a stage is under way) and of the AdamW state into ``*.distcp`` files, described by DCP's
``.metadata``; beside them ``scheduler.json``, ``rng-rank<R>.json`` (each rank's Python, NumPy, torch and
CUDA generator states), ``state.json`` (step, stage, data position, world size) and ``run_config.yaml`` (the
run's resolved config, which the resume guard reads). DCP reshards on load, so a checkpoint written by 2
processes resumes on 1 and the other way round.

It is written under a temporary name (``.tmp-step-*``), ``manifest.json`` (size and SHA-256 of every other
file, :mod:`.manifest`) last, then renamed into place: even ``kill -9`` never leaves a checkpoint that looks
whole, and one damaged later fails :func:`verify`, so ``--resume`` falls back to the newest one that verifies.
:class:`Checkpointer` is the run's one entry point: when to save, free space, writing, resuming, RNG.

Checkpoints come every ``every`` steps and, with ``at_end`` (the default), at the run's last step too, taken
before that stage's shape is undone, with its optimiser, schedule, RNG states and data position: a finished
run then goes on from its very end (``--continue-from``), and a run killed after that checkpoint finishes
on ``--resume`` without training a step. A checkpoint at a stage's end that is not the run's end holds the
plain model only (the next stage starts a fresh optimiser).

>>> [step for step in range(1, 11) if saves_at(CheckpointConfig(every=4), 10, step)]  # every 4 of 10 steps
[4, 8, 10]
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

import torch

from ..console import log
from ..errors import StorageError, VocabExtendError, free_space, human_size, storage_error
from .dist import Dist, quiet
from .manifest import (CHECKPOINTS, MANIFEST, PREFIX, checkpoint_size, list_checkpoints, step_of, verify,
                       write_manifest)
from .safe_state import (SCHEDULER, SafeEmptyPlanner, SafePlanner, SafeReader, check_loadable, read_state_file,
                         rng_state, set_rng_state, write_json)
from .stream import load_state as load_stream_state
from .stream import save_state as save_stream_state

MODEL_KEY, OPTIM_KEY = "model", "optimizer"
STAGING_PREFIX = ".tmp-" + PREFIX
RUN_CONFIG = "run_config.yaml"


@contextmanager
def quiet_dcp() -> Iterator[None]:
    """:func:`~.dist.quiet`, and DCP's warning at every save and load of a one-process run ("torch.distributed
    is disabled ..."): such a run has no process group by design, so the user can do nothing about it."""
    with quiet(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield


@dataclass
class CheckpointConfig:
    """The ``checkpoint`` section."""

    # flat (top-level) names, as in older configs; each is also a --key option
    FLAT: ClassVar[dict[str, str]] = {"every": "save_every", "keep": "keep_checkpoints", "at_end": "checkpoint_at_end"}

    every: int = 50  # steps; 0: no checkpoint at all, only the final model
    keep: int = 2  # complete checkpoints kept (the newest; the one at the last step counts)
    at_end: bool = True  # also a checkpoint at the last step, so --continue-from starts at the end (false: save disk)

    def check(self) -> None:
        if self.every is not None and self.every < 0:
            raise VocabExtendError(f"save_every must be zero or more, not {self.every!r}")
        if self.keep is not None and self.keep < 1:
            raise VocabExtendError(f"keep_checkpoints must be positive, not {self.keep!r}")
        if not isinstance(self.at_end, bool):
            raise VocabExtendError(f"checkpoint_at_end must be true or false, not {self.at_end!r}")


def resume_point(output_dir: Path, dist: Dist) -> tuple[Path | None, int]:
    """The checkpoint ``--resume`` continues from (the newest that verifies) and how many newer ones were
    skipped. Rank 0 verifies (hashing once, not once per process) and names each skipped one on stderr with
    the reason; the other ranks take its choice."""
    latest, skipped = None, 0
    if dist.main:
        for path in reversed(list_checkpoints(output_dir)):
            reason = verify(path)
            if reason is None:
                latest = path
                break
            skipped += 1
            log(f"--resume: skipping checkpoint {path.name}: {reason}")
    return dist.from_main((latest, skipped))


def sweep_staging(output_dir: Path) -> list[Path]:
    """Remove the ``.tmp-step-*`` folders a crashed or interrupted save left (the caller holds the run's
    lock, so no live process is writing them); returns what was removed."""
    folder = Path(output_dir) / CHECKPOINTS
    found = sorted(folder.glob(STAGING_PREFIX + "*")) if folder.is_dir() else []
    for path in found:
        shutil.rmtree(path, ignore_errors=True)
    return found


def estimate_size(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> int:
    """Bytes a checkpoint of ``model`` (and AdamW's two moments of its trainable parameters) takes."""
    params = list(model.parameters())
    size = sum(t.numel() * t.element_size() for t in [*params, *model.buffers()])
    if optimizer is not None:
        size += 2 * sum(p.numel() * 4 for p in params if p.requires_grad)
    return size


def free_bytes(folder: Path) -> int:
    """Free space where ``folder`` (or its nearest existing parent) lives (0 when it cannot be read)."""
    return free_space(Path(folder)) or 0


def staging_path(output_dir: Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"{STAGING_PREFIX}{step:08d}"


def clear(staging: Path) -> None:
    """An empty staging folder (a crashed attempt at the same step is discarded)."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)


def write_rank_state(staging: Path, rank: int) -> None:
    """Every rank writes its RNG state into the staging folder (created by rank 0 beforehand)."""
    write_json(staging / f"rng-rank{rank}.json", rng_state())


@quiet_dcp()
def write_state(staging: Path, trained: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                dist_main: bool, *, model_only: bool = False) -> None:
    """Every rank writes its shard of the model (and optimiser) with DCP into ``staging``.

    ``trained`` is the module the steps ran (plain, DDP or FSDP). ``model_only`` (at a stage boundary, where
    the next stage starts a fresh optimiser) saves the plain model, which only rank 0 holds under FSDP.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_state_dict

    if model_only:
        state = {MODEL_KEY: get_model_state_dict(trained) if dist_main else {}}
    else:
        model_state, optim_state = get_state_dict(trained, optimizer)
        state = {MODEL_KEY: model_state, OPTIM_KEY: optim_state}
    dcp.save(state, checkpoint_id=str(staging))


def write_main_state(staging: Path, scheduler: Any, state: dict[str, Any], run_config: str) -> None:
    """Rank 0 writes the scheduler, ``state.json`` and the run's resolved config (YAML text)."""
    if scheduler is not None:
        write_json(staging / SCHEDULER, scheduler.state_dict())
    (staging / RUN_CONFIG).write_text(run_config, encoding="utf-8")
    (staging / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def publish(staging: Path, keep: int) -> Path:
    """Rename the staging folder (its manifest written) into place and delete all but the newest ``keep``
    checkpoints: at most ``keep`` complete checkpoints remain, plus one while the next is being written."""
    final = staging.parent / staging.name[len(".tmp-"):]
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    if keep > 0:
        for old in list_checkpoints(staging.parent.parent)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_state(path: Path) -> dict[str, Any]:
    """The checkpoint's ``state.json``: step, stage, data position, world size."""
    return json.loads((Path(path) / "state.json").read_text(encoding="utf-8"))


@quiet_dcp()
def load_model_weights(path: Path, model: torch.nn.Module) -> None:
    """Load the checkpoint's model into ``model`` (plain, DDP or FSDP; any number of processes)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

    state = get_model_state_dict(model)
    try:
        dcp.load({MODEL_KEY: state}, storage_reader=SafeReader(str(path)), planner=SafePlanner())
    except (RuntimeError, KeyError, ValueError) as exc:
        raise VocabExtendError(
            f"checkpoint {path} does not fit the model ({str(exc).strip().splitlines()[0][:120]}): resume with "
            "the config the run was started with") from None
    set_model_state_dict(model, state)


@quiet_dcp()
def load_trainer_state(path: Path, trained: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       scheduler: Any) -> None:
    """Load model and optimiser shards (resharded to this run's processes) and the scheduler."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(trained, optimizer)
    dcp.load({MODEL_KEY: model_state, OPTIM_KEY: optim_state}, storage_reader=SafeReader(str(path)),
             planner=SafePlanner())
    set_state_dict(trained, optimizer, model_state_dict=model_state, optim_state_dict=optim_state)
    schedule = read_state_file(path, SCHEDULER)
    if schedule is None:
        raise VocabExtendError(f"--resume: checkpoint {path} holds no {SCHEDULER}: resume from another checkpoint")
    scheduler.load_state_dict(schedule)


@quiet()
def read_model_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's model tensors, whole, in one process (for inspection and tests)."""
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    state: dict[str, Any] = {}
    _load_state_dict(state, storage_reader=SafeReader(str(path)), planner=SafeEmptyPlanner(), no_dist=True)
    return state[MODEL_KEY]


def load_rng_state(path: Path, rank: int) -> None:
    """This rank's RNG states from the checkpoint (none when it was written by fewer processes)."""
    state = read_state_file(path, f"rng-rank{rank}.json")
    if state is not None:
        set_rng_state(state)


def saves_at(config: CheckpointConfig, total_steps: int, step: int) -> str | None:
    """The checkpoint step ``step`` (counted from 1) of a ``total_steps``-step run writes: ``"end"`` at the
    last step (with ``at_end``), ``"every"`` every ``every`` steps before it, else ``None``.

    >>> every_4 = CheckpointConfig(every=4)
    >>> [(s, saves_at(every_4, 10, s)) for s in range(1, 11) if saves_at(every_4, 10, s)]
    [(4, 'every'), (8, 'every'), (10, 'end')]
    >>> [s for s in range(1, 11) if saves_at(CheckpointConfig(every=4, at_end=False), 10, s)]
    [4, 8]
    >>> [s for s in range(1, 11) if saves_at(CheckpointConfig(every=0), 10, s)]
    []
    """
    if not config.every:
        return None
    if step == total_steps:
        return "end" if config.at_end else None
    return "every" if step % config.every == 0 and step < total_steps else None


class Checkpointer:
    """The run's checkpoints: one every ``every`` steps and (``at_end``) one at the last step, each checked
    for free space first and written whole or not at all; on ``--resume`` the model, optimiser, schedule,
    RNG and stream position read back. The final model is the run's ``model/`` folder either way."""

    def __init__(self, config: CheckpointConfig, dist: Dist, out: Path, resume_from: Path | None,
                 total_steps: int, run_config: str) -> None:
        self.config, self.dist, self.out, self.resume_from = config, dist, out, resume_from
        self.every, self.total, self.run_config = config.every, total_steps, run_config
        self.state = read_state(resume_from) if resume_from is not None else None
        if resume_from is not None:  # refused before the run writes anything
            check_loadable(resume_from, dist.rank)
        self.start_step: int = self.state["step"] if self.state else 0
        self.blocks = None  # the training blocks, whose stream position (if streamed) a checkpoint keeps
        past_end = self.start_step > total_steps or (self.start_step == total_steps and self.plain_model)
        if self.state is not None and past_end:  # after the resume guard's checks
            raise VocabExtendError(
                f"--resume: {resume_from} is at step {self.start_step}, but this run has only {total_steps} "
                "steps: resume with the max_steps the run was started with")

    @property
    def plain_model(self) -> bool:
        """Whether the checkpoint resumed from holds the plain model only (taken where a stage ended and
        the next starts a fresh optimiser); else it holds its stage's model, optimiser, schedule and RNG,
        which resume that stage, or finish it when the checkpoint is at its last step."""
        return self.state is not None and bool(self.state.get("boundary", True))

    def restore_data(self, blocks) -> None:
        """Seek the streamed training corpora to the checkpoint's position (nothing for cached corpora)."""
        self.blocks = blocks
        if self.resume_from is not None:
            load_stream_state(blocks, self.resume_from)

    def saves_at(self, step: int) -> str | None:
        """:func:`saves_at` for this run: ``"end"``, ``"every"`` or ``None``."""
        return saves_at(self.config, self.total, step)

    def save(self, step: int, trained: torch.nn.Module, optimizer, scheduler, stage_index: int, *,
             boundary: bool, extra: dict[str, Any] | None = None) -> None:
        """Every rank calls this. ``boundary``: the stage has just ended and ``trained`` is the plain model.

        Free space is checked first (the newest checkpoint's size, else an estimate from the model); a
        failure or Ctrl-C while writing removes the partial checkpoint, so only whole ones remain.
        """
        dist = self.dist
        staging = staging_path(self.out, step)
        needed = self._needed(trained, optimizer, boundary)
        if dist.main:
            self._check_space(step, needed)
            clear(staging)
        dist.barrier()
        try:
            write_rank_state(staging, dist.rank)
            write_state(staging, trained, optimizer, dist.main, model_only=boundary)
            dist.barrier()
            if dist.main:
                state = {"step": step, "optimizer_stage": stage_index, "boundary": boundary,
                         "world_size": dist.world, **(extra or {})}
                self._finish_main(staging, None if boundary else scheduler, state)
        except BaseException as exc:
            if dist.main:
                shutil.rmtree(staging, ignore_errors=True)
            error = None if isinstance(exc, KeyboardInterrupt) else _storage_failure(exc, staging.parent, needed)
            if error is not None:
                raise StorageError(f"{error} ({self._last_good()})") from None
            raise
        dist.barrier()

    def _finish_main(self, staging: Path, scheduler: Any, state: dict[str, Any]) -> None:
        """Rank 0: stream position, scheduler, state and config, then the manifest, then the rename."""
        if self.blocks is not None:  # the same on every rank: each reads whole global batches
            save_stream_state(self.blocks, staging)
        write_main_state(staging, scheduler, state, self.run_config)
        write_manifest(staging)
        publish(staging, self.config.keep)

    def _needed(self, trained: torch.nn.Module, optimizer, boundary: bool) -> int:
        """The newest checkpoint's size when it is of the same kind (plain model only, or with the optimiser),
        else an estimate from the model (and the optimiser)."""
        latest = list_checkpoints(self.out)
        size = checkpoint_size(latest[-1]) if latest else None
        try:
            same_kind = size is not None and bool(read_state(latest[-1]).get("boundary", True)) == boundary
        except (OSError, ValueError, AttributeError):
            same_kind = False
        return size if same_kind and size is not None else estimate_size(trained, None if boundary else optimizer)

    def _last_good(self) -> str:
        saved = list_checkpoints(self.out)
        return f"the last checkpoint, {saved[-1].name}, is kept" if saved else "no checkpoint was written yet"

    def _check_space(self, step: int, needed: int) -> None:
        folder = self.out / CHECKPOINTS
        free = free_bytes(folder)
        if free < needed * 1.05:
            raise StorageError(
                f"cannot write checkpoint step {step} in {folder}: it needs about {human_size(needed)} and "
                f"{human_size(free)} is free ({self._last_good()}); free some space and continue with "
                "--resume, or lower keep_checkpoints")

    def load_model(self, model: torch.nn.Module) -> None:
        """The checkpoint's plain model (a stage-boundary checkpoint) into ``model``."""
        assert self.resume_from is not None
        load_model_weights(self.resume_from, model)

    def load_trainer(self, trained: torch.nn.Module, optimizer, scheduler) -> None:
        """Model and optimiser shards of a checkpoint inside a stage, the schedule and this rank's RNG."""
        assert self.resume_from is not None
        load_trainer_state(self.resume_from, trained, optimizer, scheduler)
        load_rng_state(self.resume_from, self.dist.rank)


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
