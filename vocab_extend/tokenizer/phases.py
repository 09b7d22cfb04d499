"""Wall time of each phase of a merge and the peak memory, for a merge's ``run.json``.

:func:`recording` opens a record for one run; :func:`phase` adds the wall time of a block to the phase of
that name in the open record (and does nothing when none is open, so library callers pay nothing). The
times and the peak resident memory are the only figures of a merge that differ between runs of the same
inputs; they live in ``run.json``, apart from the report, which stays byte-identical.

>>> with recording() as record:
...     with phase("reading"):
...         pass
...     with phase("reading"):
...         pass
>>> sorted(record.seconds), record.seconds["reading"] >= 0
(['reading'], True)
>>> sorted(record.as_dict())
['peak_rss_children_mb', 'peak_rss_mb', 'phase_seconds']
"""

from __future__ import annotations

import contextlib
import contextvars
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Iterator


@dataclass
class PhaseRecord:
    """Seconds per phase, in the order the phases first ran."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def as_dict(self) -> dict[str, object]:
        own, children = peak_rss_mb()
        return {"phase_seconds": {name: round(value, 2) for name, value in self.seconds.items()},
                "peak_rss_mb": own, "peak_rss_children_mb": children}


_CURRENT: contextvars.ContextVar[PhaseRecord | None] = contextvars.ContextVar("vocab_extend_phases", default=None)


@contextlib.contextmanager
def recording() -> Iterator[PhaseRecord]:
    """Open a record for the phases run inside the block."""
    record = PhaseRecord()
    token = _CURRENT.set(record)
    try:
        yield record
    finally:
        _CURRENT.reset(token)


def current_record() -> PhaseRecord | None:
    """The record :func:`recording` opened, or None."""
    return _CURRENT.get()


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the block's wall time to phase ``name`` of the open record (if any)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        record = _CURRENT.get()
        if record is not None:
            record.add(name, time.perf_counter() - started)


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident memory of this process and of its finished children, in MB (``getrusage``)."""
    scale = 1 / 2**20 if sys.platform == "darwin" else 1 / 1024  # macOS reports bytes, Linux kilobytes
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return round(own, 1), round(children, 1)
