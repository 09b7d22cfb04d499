"""Entries of the packed-data cache: written in batches, and verified, so a damaged entry is rebuilt, never
trained on.

:func:`write_blocks` writes the packed blocks as they come (a few batches in memory at any corpus size) to
an Arrow file, then saves it as a ``datasets`` dataset (``load_from_disk`` reads it, memory-mapped).

Every entry (a folder ``cache_dir/<key>`` holding a saved ``datasets`` dataset) carries
``vocab_extend_cache.json``: the size and hash of each of its files, and what building it noted (records
skipped as not valid UTF-8). :func:`entry_problem` checks an entry against it: the sizes on every load, the
hashes the first time this process uses the entry (xxh3-128, as fast as the disk reads). An entry that
fails (a file changed, truncated, missing or unreadable, or no record at all) is named by the caller in one
``note:`` line and rebuilt.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "data.arrow").write_bytes(b"0123456789")
>>> record_entry(folder, {"skipped": 0})
>>> entry_problem(folder), entry_problem(folder)
(None, None)
>>> _ = (folder / "data.arrow").write_bytes(b"0123456788")  # same size, one byte off
>>> _VERIFIED.clear(); entry_problem(folder)
'data.arrow does not match its recorded hash'
>>> _ = (folder / "data.arrow").write_bytes(b"01234")
>>> entry_problem(folder)
'data.arrow holds 5 B, not the 10 B recorded'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import xxhash

from ..errors import human_sizes

RECORD = "vocab_extend_cache.json"
PACKED = "packed"  # the folder write_blocks saves the dataset in
_CHUNK = 1 << 22
# entry folder -> (file, size, mtime) of what this process has hashed and found whole
_VERIFIED: dict[str, tuple[tuple[str, int, int], ...]] = {}


def _hash(path: Path) -> str:
    digest = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != RECORD)


def record_entry(folder: Path, notes: dict[str, Any]) -> None:
    """Write the entry's record (called on the finished entry, before it is renamed into place)."""
    files = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "xxh3_128": _hash(p)}
             for p in _files(folder)}
    (folder / RECORD).write_text(json.dumps({"files": files, "notes": notes}, indent=1), encoding="utf-8")


def read_record(folder: Path) -> dict[str, Any] | None:
    """The entry's record, or ``None`` when it is missing or unreadable."""
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and isinstance(record.get("files"), dict) and record["files"]
    return record if ok else None


def entry_problem(folder: Path, *, hash_files: bool = True) -> str | None:
    """Why the entry ``folder`` cannot be used (``None``: it verifies). Sizes are checked on every call,
    hashes once per process (``hash_files``) for as long as the files keep their size and time."""
    record = read_record(folder)
    if record is None:
        return f"its record {RECORD} is missing or unreadable"
    seen = []
    for name, want in record["files"].items():
        path = folder / name
        try:
            stat = path.stat()
        except OSError:
            return f"{name} is missing"
        size = want.get("size") if isinstance(want, dict) else None
        if not isinstance(size, int) or stat.st_size != size:
            have, recorded = human_sizes(stat.st_size, size if isinstance(size, int) else 0)
            return f"{name} holds {have}, not the {recorded} recorded"
        seen.append((name, stat.st_size, stat.st_mtime_ns))
    if not hash_files or _VERIFIED.get(str(folder)) == tuple(seen):
        return None
    for name, want in record["files"].items():
        try:
            if _hash(folder / name) != want.get("xxh3_128"):
                return f"{name} does not match its recorded hash"
        except OSError as exc:
            return f"{name} cannot be read ({os.strerror(exc.errno) if exc.errno else exc})"
    _VERIFIED[str(folder)] = tuple(seen)
    return None


def write_blocks(blocks: Iterable[np.ndarray], folder: Path, *, fingerprint: str) -> int:
    """Write ``blocks`` (``(rows, block_size)`` int32 arrays, as they come) to ``folder``, then save them as
    a dataset of one ``input_ids`` column in ``folder/packed`` (fingerprint ``fingerprint``); returns the
    number of rows. Only the batch being written is in memory; the saved copy is read memory-mapped."""
    import datasets
    import pyarrow as pa
    from datasets.arrow_writer import ArrowWriter
    from datasets.table import MemoryMappedTable

    features = datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int32"))})
    path = folder / "blocks.arrow"
    rows = 0
    with ArrowWriter(features=features, path=str(path)) as writer:
        for batch in blocks:
            if len(batch):
                width = batch.shape[1]
                offsets = pa.array(np.arange(0, batch.size + 1, width, dtype=np.int32))
                column = pa.ListArray.from_arrays(offsets, pa.array(batch.reshape(-1)))
                writer.write_table(pa.table({"input_ids": column}))
                rows += len(batch)
        writer.finalize()
    if rows == 0:
        return 0
    table = MemoryMappedTable.from_file(str(path))
    dataset = datasets.Dataset(table, info=datasets.DatasetInfo(features=features), split=datasets.Split.TRAIN,
                               fingerprint=fingerprint)
    dataset.save_to_disk(str(folder / PACKED))
    return rows
