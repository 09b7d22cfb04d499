"""The converted-model cache: GGUF models de-quantized once into Hugging Face folders, keyed by content.

Layout under :func:`cache_root` (``$VOCAB_EXTEND_CACHE``, else ``~/.cache/vocab-extend``)::

    gguf/<stem>-sha256-<16 hex>/     config.json, model.safetensors, entry.json (what it was made from)
    gguf/.<entry>.lock               held while the entry is written (vocab_extend.locks, by staging_folder)
    gguf/.<entry>.use                a shared flock while a process loads the entry
    gguf/index.json                  path -> (size, mtime_ns, sha256): hashes already computed

**The key is the SHA-256 of the whole GGUF file**, so the same file reached through any path (a new
virtual environment, a copy) finds the same entry. Hashing is once per file: the digest is remembered in
``index.json`` under the file's resolved path, size and modification time, and read back while all three
match (hashing the bundled 98 MB SmolLM2 takes 0.1-0.15 s warm; a 4 GB file seconds). A hash of the header
and a few chunks would be faster on the first call but could give two fine-tunes of one model, same size and
same header, the same entry, and load the wrong weights. A damaged or unwritable index only costs a hash.

Entries of earlier versions (``<stem>-<20 hex>``, keyed by the GGUF's path, without ``entry.json``) are
never read as content entries: the one of the file being loaded is renamed into its content entry (no
second conversion); the others are listed as keyed by path and removed by ``vocab-extend cache --clean``.

**In use**: a loader holds a shared ``flock`` on ``.<entry>.use`` while it reads the entry; a writer holds
the entry's output lock. :func:`clean` takes both without waiting and skips an entry whose lock it cannot
take, so it never removes what another process reads or writes; it removes nothing outside ``gguf/``.

>>> entry_name(Path("SmolLM2.Q4_1.gguf"), "b179c9523d0e6a0f" + "0" * 48)
'SmolLM2.Q4_1-sha256-b179c9523d0e6a0f'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..atomic import atomic_write_json
from ..locks import LockBusy, output_lock

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: loads are not marked, clean removes what is not written
    fcntl = None  # type: ignore[assignment]

ENTRY_FILE = "entry.json"
INDEX_FILE = "index.json"
_CONTENT = re.compile(r".+-sha256-[0-9a-f]{16}")
_BY_PATH = re.compile(r".+-[0-9a-f]{20}")
_LEFTOVER = re.compile(r"\.(.+)\.(\d+-[0-9a-f]{8}(-[^./]+\.tmp|\.old)|[a-z0-9_]{8}\.tmp|old)")


def cache_root() -> Path:
    """Where converted models are kept: ``$VOCAB_EXTEND_CACHE``, else ``~/.cache/vocab-extend``."""
    return Path(os.environ.get("VOCAB_EXTEND_CACHE") or Path.home() / ".cache" / "vocab-extend")


def gguf_dir() -> Path:
    return cache_root() / "gguf"


def entry_name(gguf: Path, digest: str) -> str:
    return f"{gguf.stem}-sha256-{digest[:16]}"


def _stat_key(path: Path) -> tuple[str, dict[str, int]]:
    stat = path.stat()
    return str(path.resolve()), {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def content_hash(gguf: Path) -> str:
    """The SHA-256 of ``gguf``, from the index while its path, size and time match, else computed and kept."""
    index_path = gguf_dir() / INDEX_FILE
    key, stat = _stat_key(gguf)
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        files = index["files"] if isinstance(index.get("files"), dict) else {}
    except (OSError, ValueError, AttributeError, KeyError):
        files = {}
    known = files.get(key)
    if isinstance(known, dict) and {k: known.get(k) for k in stat} == stat and isinstance(known.get("sha256"), str):
        return known["sha256"]
    with gguf.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    files = {p: v for p, v in files.items() if p != key and Path(p).exists()}  # forget files that are gone
    files[key] = {**stat, "sha256": digest}
    try:
        index_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(index_path, {"version": 1, "files": files})
    except OSError:
        pass  # a read-only or full cache: the next call hashes again
    return digest


def legacy_folder(gguf: Path) -> Path:
    """Where versions before content keys kept ``gguf``'s conversion (keyed by path, size and time)."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]
    return gguf_dir() / f"{gguf.stem}-{key}"


def is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def entry_info(gguf: Path, digest: str) -> dict[str, object]:
    """What ``entry.json`` records: the file the entry was converted from."""
    return {"kind": "GGUF model de-quantized to a float32 Hugging Face folder", "source": str(gguf.resolve()),
            "source_name": gguf.name, "source_bytes": gguf.stat().st_size, "sha256": digest}


def entry_for(gguf: Path) -> Path:
    """The content entry of ``gguf`` (which need not exist yet); the path-keyed entry an earlier version made
    for the same file is renamed into it when the content entry is missing."""
    digest = content_hash(gguf)
    folder = gguf_dir() / entry_name(gguf, digest)
    old = legacy_folder(gguf)
    if not folder.exists() and is_complete(old):
        try:
            with output_lock(folder), output_lock(old):
                if not folder.exists() and is_complete(old):
                    old.rename(folder)
                    atomic_write_json(folder / ENTRY_FILE, entry_info(gguf, digest))
        except (OSError, LockBusy):
            pass  # another process is at it, or the cache is read-only: converted again at worst
    return folder


def _use_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.use"


@contextmanager
def reading(folder: Path) -> Iterator[None]:
    """Mark ``folder`` as in use for the block (a shared lock :func:`clean` respects) and record the use."""
    fd = _lock_use(folder, shared=True)
    try:
        marker = folder / ENTRY_FILE
        if marker.is_file():
            try:
                os.utime(marker)  # the entry's last use
            except OSError:
                pass
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _lock_use(folder: Path, *, shared: bool) -> int | None:
    """A flock on ``folder``'s use file: shared (waits for a cleaner) or exclusive (``BlockingIOError`` when
    a loader holds it); ``None`` where the cache cannot hold one (read-only, no flock)."""
    if fcntl is None:
        return None
    path = _use_path(folder)
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.exists(path) and os.path.samestat(os.stat(path), os.fstat(fd)):
                return fd
        except BlockingIOError:
            os.close(fd)
            raise
        except OSError:
            os.close(fd)
            return None
        os.close(fd)  # a cleaner removed the file while we waited: lock the new one


@dataclass(frozen=True)
class Entry:
    """One thing in the cache, as ``vocab-extend cache`` lists it."""

    path: Path
    kind: str  # "content", "by-path" (an earlier version's key) or "leftover" (an interrupted conversion)
    bytes: int
    last_used: float
    source: str = ""

    def describe(self) -> str:
        if self.kind == "content":
            return f"converted from {self.source}" if self.source else "converted GGUF model"
        if self.kind == "by-path":
            return "converted GGUF model keyed by path (earlier version; not used any more)"
        return "left by an interrupted conversion"


def _size_and_time(path: Path) -> tuple[int, float]:
    if path.is_file():
        stat = path.stat()
        return stat.st_size, stat.st_mtime
    size, latest = 0, path.stat().st_mtime
    for root, _, files in os.walk(path):
        for name in files:
            try:
                stat = os.stat(os.path.join(root, name))
            except OSError:
                continue
            size, latest = size + stat.st_size, max(latest, stat.st_mtime)
    return size, latest


def list_entries() -> list[Entry]:
    """The entries under ``gguf/``, oldest use first."""
    folder = gguf_dir()
    entries = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        kind = _kind(path)
        if kind is None:
            continue
        size, latest = _size_and_time(path)
        source = ""
        if kind == "content" and (path / ENTRY_FILE).is_file():
            try:
                info = json.loads((path / ENTRY_FILE).read_text(encoding="utf-8"))
                source = f"{info['source_name']} (sha256 {info['sha256'][:12]}...)"
                latest = (path / ENTRY_FILE).stat().st_mtime
            except (OSError, ValueError, KeyError, TypeError):
                pass
        entries.append(Entry(path, kind, size, latest, source))
    return sorted(entries, key=lambda e: e.last_used)


def _kind(path: Path) -> str | None:
    if path.name.startswith("."):
        return "leftover" if _LEFTOVER.fullmatch(path.name) and path.is_dir() else None
    if not path.is_dir():
        return None
    if _CONTENT.fullmatch(path.name):
        return "content"
    return "by-path" if _BY_PATH.fullmatch(path.name) else None


def _target_of(entry: Entry) -> Path:
    """The entry folder whose lock guards ``entry`` (a leftover's entry may not exist)."""
    if entry.kind != "leftover":
        return entry.path
    match = _LEFTOVER.fullmatch(entry.path.name)
    return entry.path.parent / match.group(1) if match else entry.path


def remove(entry: Entry) -> bool:
    """Remove ``entry`` unless another process writes or reads it now; ``True`` when removed."""
    target = _target_of(entry)
    try:
        with output_lock(target):
            if entry.kind == "leftover":  # its writer is dead (the lock is ours): nobody reads a leftover
                shutil.rmtree(entry.path, ignore_errors=True)
                return not entry.path.exists()
            return _remove_unused(target)
    except LockBusy:
        return False  # a process is writing it


def _remove_unused(folder: Path) -> bool:
    """Remove ``folder`` and its use file unless a loader holds the use file."""
    try:
        fd = _lock_use(folder, shared=False)
    except BlockingIOError:
        return False  # a process is loading it
    try:
        if folder.exists():
            shutil.rmtree(folder)
        _use_path(folder).unlink(missing_ok=True)
    finally:
        if fd is not None:
            os.close(fd)
    return not folder.exists()


def clean() -> tuple[list[Entry], list[Entry]]:
    """Remove every entry no other process is using: ``(removed, kept)``. Use files of entries that are gone
    go too, and the hash index when nothing is kept (it only remembers hashes)."""
    removed, kept = [], []
    for entry in list_entries():
        (removed if remove(entry) else kept).append(entry)
    for use in gguf_dir().glob(".*.use") if gguf_dir().is_dir() else []:
        folder = use.parent / use.name[1:-len(".use")]
        if not folder.exists():
            try:
                with output_lock(folder):
                    _remove_unused(folder)
            except LockBusy:
                pass
    if not kept:
        (gguf_dir() / INDEX_FILE).unlink(missing_ok=True)
    return removed, kept


def ago(seconds: float) -> str:
    """``90`` -> ``'2 minutes ago'``: a rough age for the listing.

    >>> ago(30), ago(90), ago(7200), ago(3 * 86400)
    ('just now', '2 minutes ago', '2 hours ago', '3 days ago')
    """
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"
