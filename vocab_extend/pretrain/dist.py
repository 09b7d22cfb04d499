"""The process group of a run: rank, world size, device, and how a global batch splits over the ranks.

``batch_size`` is the global batch in sequences: with ``W`` processes each takes ``batch_size / W`` of them
and splits its share into ``micro_batch_size`` micro-batches (gradient accumulation).

>>> micro_batches(8, None, Dist(world=2))
(4, 4)
>>> micro_batches(8, 2, Dist(world=2))
(4, 2)
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from ..errors import VocabExtendError


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence what DCP and the state-dict functions say about process groups (expected here: one process
    without a group, gloo on CPU)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(process group|ProcessGroup|_get_pg_default_device).*")
        yield


@dataclass
class Dist:
    """The process group of a run (world size 1 when not launched by torchrun/accelerate)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (work that one rank does for all, such as verifying checkpoints)."""
        if self.world == 1:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """Run a block on every rank (work one rank does for all, a check one rank makes) and end it at the
        same point: when the block refuses on any rank, every rank raises the same sentence (the lowest
        refusing rank's), so no rank is left waiting for a peer that has gone (gloo's "Connection closed
        by peer"). Also a barrier.

        >>> with Dist().together():
        ...     pass
        """
        error: VocabExtendError | None = None
        try:
            yield
        except VocabExtendError as exc:
            if self.world == 1:
                raise
            error = exc
        if self.world > 1:
            said: list[str | None] = [None] * self.world
            torch.distributed.all_gather_object(said, None if error is None else str(error))
            first = next((m for m in said if m is not None), None)
            if first is not None:
                raise (error if error is not None and str(error) == first else VocabExtendError(first))

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks (in float64)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world


def exit_refused(message: str) -> None:
    """Under torchrun with several processes, end this process on a refusal: the sentence written where
    torchrun reads a failed process's error (``TORCHELASTIC_ERROR_FILE``; its failure summary shows it),
    printed as ``error: ...``, and the process ended with status 2 at once, deaf to the SIGTERM torchrun
    sends the others when the first one ends. Every rank refuses in the same sentence at the same point
    (:meth:`Dist.together`), so every rank exits 2 with it. Returns when not under such a launch."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return
    text = f"error: {message}"
    record = {"message": {"message": text, "extraInfo": {"py_callstack": text, "timestamp": str(int(time.time()))}}}
    with contextlib.suppress(OSError):
        Path(path).write_text(json.dumps(record), encoding="utf-8")
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if not torch.distributed.is_initialized():  # refused before the group started (a bad config): meet the
        with contextlib.suppress(Exception):  # other ranks, which refuse alike, so that no one is stopped first
            torch.distributed.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
            torch.distributed.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(2, (text + "\n").encode("utf-8"))  # one write: the ranks' lines never interleave
    os._exit(2)  # the run's locks and temporary folders were released as the refusal propagated


def setup_dist(device: str | None) -> Dist:
    """Read torchrun's environment, pick the device and start the process group (gloo on CPU, NCCL on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise VocabExtendError(f"device {device!r} is not a torch device: use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise VocabExtendError(f"device {device!r} asks for a GPU but torch sees none: use --device cpu")
        if dev.index is None:  # each process of a torchrun/accelerate launch takes its own GPU
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, dev)


def micro_batches(batch_size: int, micro_batch_size: int | None, dist: Dist) -> tuple[int, int]:
    """(sequences per rank per step, micro-batch size); one sentence when they do not divide."""
    if batch_size % dist.world:
        raise VocabExtendError(
            f"batch_size {batch_size} does not split over {dist.world} processes: use a multiple of {dist.world}")
    per_rank = batch_size // dist.world
    micro = micro_batch_size or per_rank
    if per_rank % micro:
        raise VocabExtendError(
            f"micro_batch_size {micro} does not divide the {per_rank} sequences each process gets per step: "
            "choose a divisor")
    return per_rank, micro
