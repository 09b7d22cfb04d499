"""Reading and sampling a large plain-text corpus on every core.

A corpus of plain UTF-8 text files (``.txt``/``.text``, no byte-order mark) of :data:`PARALLEL_MIN_BYTES` or
more is cut into ranges of about :data:`CHUNK_BYTES` at line ends; worker processes read the ranges, keep the
held-out share out (:func:`vocab_extend.heldout.heldout`, the same rule as the sequential reader) and sample each
range on its own (:class:`.sampling.BudgetSampler`, started with the cut-off the parent knows so far); the parent
takes their samples in reading order (:meth:`.sampling.BudgetSampler.absorb`). The result is exactly what one
process reading the corpus line by line gives (the training sample and its order, the held-out documents kept
for the report, the counts), which ``tests/test_scan.py`` checks against the sequential reader. Anything this
reader does not handle the same way (a line that is not UTF-8, whose file the sequential reader may refuse
part-way; a worker that failed) makes :func:`scan_sample` return ``None``, and the caller reads the corpus in
one process, which also says what was wrong.

Worked example: ``a.txt`` of 100 MB makes seven ranges of about 16 MB; on two cores, two workers read them
while the parent keeps at most one more in flight, so memory is bounded by the budget and a few ranges.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from ..corpus import detect_encoding
from ..errors import VocabExtendError
from ..heldout import doc_key, heldout
from .sampling import BudgetSampler, SamplePart

PARALLEL_MIN_BYTES = 64 * 2**20  # below this, one process reads (starting the workers takes about a second)
CHUNK_BYTES = 16 * 2**20  # bytes a worker reads at once
PLAIN_SUFFIXES = (".txt", ".text")


@dataclass(frozen=True)
class ScanTask:
    """One range of one file, and what its worker needs to know."""

    path: str
    start: int
    end: int
    fraction: float
    budget: int
    seed: int
    keep: int
    keep_chars: int
    cutoff: int | None = None


@dataclass
class ScanResult:
    """What a worker found in its range: ``documents`` counts the held-out ones too; ``held_out`` is the first
    held-out documents (up to ``keep``/``keep_chars``); ``invalid``: a line that is not UTF-8 was met."""

    part: SamplePart = field(default_factory=SamplePart)
    held_out: list[str] = field(default_factory=list)
    documents: int = 0
    bytes: int = 0
    invalid: bool = False


@dataclass
class Scan:
    """The corpus read: its training sample (``sampler``), the held-out documents kept for the report, and
    how many documents (held out or not) it had."""

    sampler: BudgetSampler
    held_out: list[str]
    documents: int
    workers: int
    held_chars: int = 0


def plain_text_files(files: Sequence[Path]) -> bool:
    """Whether every file is plain UTF-8 text this reader handles as the sequential one does: a ``.txt`` or
    ``.text`` file (not compressed) that the line reader's encoding check finds plain UTF-8 (no byte-order
    mark, not UTF-16)."""
    for path in files:
        if not path.name.endswith(PLAIN_SUFFIXES):
            return False
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096)
        except OSError:
            return False
        try:
            if detect_encoding(head, path)[1] is not None:
                return False
        except VocabExtendError:  # UTF-16 without a mark: the line reader says so
            return False
    return True


def ranges(path: Path, chunk: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` byte ranges of about ``chunk`` (:data:`CHUNK_BYTES`) bytes covering the file, each
    ending after a line end (or at the end of the file)."""
    chunk = chunk or CHUNK_BYTES
    size = path.stat().st_size
    found, start = [], 0
    with open(path, "rb") as fh:
        while start < size:
            end = min(start + chunk, size)
            if end < size:
                fh.seek(end - 1)
                end += len(fh.readline()) - 1  # to just after the line end at or after ``end - 1``
            found.append((start, end))
            start = end
    return found


def scan_range(task: ScanTask) -> ScanResult:
    """Read one range (in a worker): documents are its non-blank lines, without their line ends."""
    with open(task.path, "rb") as fh:
        fh.seek(task.start)
        data = fh.read(task.end - task.start)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ScanResult(bytes=len(data), invalid=True)
    sampler = BudgetSampler(task.budget, task.seed, cutoff=task.cutoff)
    result = ScanResult(bytes=len(data))
    held_chars = 0
    for line in text.split("\n"):
        doc = line.rstrip("\r")
        if not doc.strip():
            continue
        result.documents += 1
        if task.fraction and heldout(doc_key(doc), task.fraction):
            if len(result.held_out) < task.keep and held_chars < task.keep_chars:
                result.held_out.append(doc)
                held_chars += len(doc)
            continue
        sampler.add(doc)
    result.part = sampler.part()
    return result


def worker_count(tasks: int) -> int:
    """One worker per core this process may use, at most one per range."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, tasks))


def scan_sample(files: Sequence[Path], *, fraction: float, budget: int, seed: int, keep: int, keep_chars: int,
                show_progress: bool) -> Scan | None:
    """Read and sample ``files`` on every core (see the module docstring); ``None``: read them in one process."""
    template = ScanTask("", 0, 0, fraction, budget, seed, keep, keep_chars)
    tasks = [replace(template, path=str(path), start=start, end=end) for path in files
             for start, end in ranges(path)]
    scan = Scan(BudgetSampler(budget, seed), [], 0, worker_count(len(tasks)))
    total = sum(path.stat().st_size for path in files)
    pool = ProcessPoolExecutor(scan.workers, mp_context=multiprocessing.get_context("spawn"))
    pending: deque[Future[ScanResult]] = deque()
    try:
        with tqdm(total=total, desc=f"reading and sampling corpus ({scan.workers} processes)", unit="B",
                  unit_scale=True, mininterval=1.0, disable=not show_progress) as bar:
            queue = iter(tasks)
            for task in queue:
                pending.append(pool.submit(scan_range, replace(task, cutoff=scan.sampler.cutoff)))
                if len(pending) > scan.workers:
                    if not _take(scan, pending.popleft().result(), keep, keep_chars, bar):
                        return None
            while pending:
                if not _take(scan, pending.popleft().result(), keep, keep_chars, bar):
                    return None
    except Exception:  # a worker that failed or died: the sequential reader says what is wrong, or succeeds
        return None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return scan


def _take(scan: Scan, result: ScanResult, keep: int, keep_chars: int, bar: tqdm) -> bool:
    """Add one range's result in reading order; False when the range needs the sequential reader."""
    if result.invalid:
        return False
    scan.sampler.absorb(result.part)
    for doc in result.held_out:
        if len(scan.held_out) >= keep or scan.held_chars >= keep_chars:
            break
        scan.held_out.append(doc)
        scan.held_chars += len(doc)
    scan.documents += result.documents
    bar.update(result.bytes)
    return True
