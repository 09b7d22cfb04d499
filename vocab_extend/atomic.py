"""Replacing a file or folder all at once, and sweeping what an interrupted replacement left.

Every output is first written under a temporary name in the same folder, flushed to disk (``fsync``) and
then renamed over its final name, so a reader (or the next run after a crash) sees the old output or the
new one, never a mix:

- :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`atomic_write_json` for single files
  (reports, metrics summaries, plots);
- :func:`replace_folder` for a finished folder (used by :func:`vocab_extend.staging.staging_folder`): an
  atomic swap (Linux ``renameat2(RENAME_EXCHANGE)``) where the file system has it, else two renames through
  ``.NAME.PID-HOST.old``.

Temporary names carry the writer's pid and a tag of its host: ``.report.json.4242-1a2b3c4d-x8k2.tmp``. A
``kill -9`` leaves such names behind; :func:`sweep_leftovers` (called by every later write of the same
target) removes those whose process is gone, and puts a ``.old`` folder back when the crash came between
the two renames and the target is missing.

A full disk, a read-only location or a denied permission becomes one
:class:`vocab_extend.errors.StorageError` sentence naming the folder, with no temporary file left.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(folder / "a.txt", "一行目\\n").read_text(encoding="utf-8")
'一行目\\n'
>>> sorted(p.name for p in folder.iterdir())
['a.txt']
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import storage_error
from .locks import HOST, pid_alive

TEMP_SUFFIX = ".tmp"
OLD_SUFFIX = ".old"
HOST_TAG = hashlib.sha1(HOST.encode("utf-8")).hexdigest()[:8]


# ------------------------------------------------------------------------------------------- names


def temp_prefix(name: str) -> str:
    """``'out'`` -> ``'.out.4242-1a2b3c4d-'``: the start of this process's temporary names for ``name``."""
    return f".{name}.{os.getpid()}-{HOST_TAG}-"


def old_name(name: str) -> str:
    """``'out'`` -> ``'.out.4242-1a2b3c4d.old'``: where the previous output waits during a two-rename swap."""
    return f".{name}.{os.getpid()}-{HOST_TAG}{OLD_SUFFIX}"


def _patterns(name: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    n = re.escape(name)
    return (
        re.compile(rf"\.{n}\.(\d+)-([0-9a-f]{{8}})-[^./]+\.tmp"),
        re.compile(rf"\.{n}\.(\d+)-([0-9a-f]{{8}})\.old"),
        re.compile(rf"\.{n}\.[a-z0-9_]{{8}}\.tmp"),  # earlier versions: mkdtemp names without an owner
        re.compile(rf"\.{n}\.old"),
    )


def _owner_gone(pid: int, tag: str, locked: bool) -> bool:
    if tag == HOST_TAG:
        return not pid_alive(pid)
    return locked  # another host's process: only the lock holder of the target may judge it stale


def _remove(path: Path) -> bool:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def leftovers(target: str | os.PathLike[str]) -> list[Path]:
    """Every temporary or ``.old`` name beside ``target`` (whoever owns it), sorted."""
    target = Path(target)
    temp, old, legacy_temp, legacy_old = _patterns(target.name)
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if any(r.fullmatch(p.name) for r in (temp, old, legacy_temp, legacy_old)))


def sweep_leftovers(target: str | os.PathLike[str], *, locked: bool = False) -> list[Path]:
    """Remove what dead writers of ``target`` left beside it; return the paths removed or restored.

    A temporary name is removed when its pid no longer runs on this host. A ``.old`` folder is put back as
    ``target`` when ``target`` is missing (the crash came between the two renames of a swap, so ``.old`` is
    the complete previous output), else removed. ``locked=True`` says the caller holds the target's
    :mod:`lock <vocab_extend.locks>`: then names from other hosts and from earlier versions (no owner
    recorded) are stale too, since no other writer can be at work.
    """
    target = Path(target)
    temp, old, legacy_temp, legacy_old = _patterns(target.name)
    swept: list[Path] = []
    for path in leftovers(target):
        m = temp.fullmatch(path.name) or old.fullmatch(path.name)
        if m is not None:
            stale = _owner_gone(int(m.group(1)), m.group(2), locked)
        else:
            stale = locked
        if not stale:
            continue
        if (old.fullmatch(path.name) or legacy_old.fullmatch(path.name)) and not os.path.lexists(target):
            try:
                path.rename(target)
                swept.append(path)
            except OSError:
                pass
            continue
        if _remove(path):
            swept.append(path)
    return swept


# ------------------------------------------------------------------------------------------- files


def current_umask() -> int:
    """The process's umask, read without changing it (``os.umask`` only reads by setting)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default_mode() -> int:
    return 0o666 & ~current_umask()


def usual_modes(folder: str | os.PathLike[str]) -> None:
    """Files directly in ``folder`` get the mode the user's umask gives new files (safetensors and
    ``mkstemp`` write 0600)."""
    mode = _default_mode()
    for path in Path(folder).iterdir():
        if path.is_file():
            path.chmod(mode)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (renames into it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: str | os.PathLike[str]) -> None:
    """Flush every file and folder under ``folder`` to disk (before it is renamed into place)."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(root)


@contextmanager
def atomic_file(path: str | os.PathLike[str], *, needed: int | None = None) -> Iterator[Path]:
    """A temporary file beside ``path`` for the caller to fill; renamed over ``path`` when the block ends.

    The file is fsynced and gets the mode an existing ``path`` had (else the umask's) before the rename. On
    any failure (or Ctrl-C) ``path`` is as it was and the temporary file is gone; disk full, read-only and
    permission failures raise one :class:`~vocab_extend.errors.StorageError` sentence naming the folder
    (and ``needed`` bytes, when the caller knows them).

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "big.bin"
    >>> with atomic_file(target) as tmp:
    ...     _ = tmp.write_bytes(b"GGUF")
    >>> target.read_bytes(), sorted(p.name for p in target.parent.iterdir())
    (b'GGUF', ['big.bin'])
    """
    path = Path(path)
    parent = path.parent
    sweep_leftovers(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode) if path.is_file() else _default_mode()
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=parent)
        os.close(fd)
    except OSError as exc:
        raise storage_error(exc, parent, needed=needed) or exc
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        written = os.path.getsize(tmp) if os.path.isfile(tmp) else None  # for the disk-full message
        try:
            os.truncate(tmp, 0)  # gives the space back now, even while a library still holds the file open
        except OSError:
            pass
        try:
            os.unlink(tmp)
        except OSError:
            pass
        error = storage_error(exc, parent, needed=needed, written=written) if isinstance(exc, Exception) else None
        if error is not None:
            raise error from None
        raise
    fsync_dir(parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` all at once: a temporary name in the same folder, fsync, rename.

    An existing file keeps its permission bits. On any failure (or Ctrl-C) ``path`` is as it was and the
    temporary file is gone; disk full, read-only and permission failures raise one
    :class:`~vocab_extend.errors.StorageError` sentence naming the folder and the size being written.
    """
    with atomic_file(path, needed=len(data)) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded (UTF-8 by default; newlines kept as given)."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> Path:
    """Valid JSON, written atomically: NaN and infinities raise ``ValueError`` instead of being written as the
    non-JSON ``NaN`` / ``Infinity``; non-ASCII text stays readable; a final newline."""
    text = json.dumps(data, ensure_ascii=False, indent=indent, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


# ------------------------------------------------------------------------------------------- folders

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_renameat2: Any = None
if sys.platform.startswith("linux"):
    try:
        _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
        _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        _renameat2.restype = ctypes.c_int
    except (AttributeError, OSError):
        _renameat2 = None


def exchange(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Swap two existing paths in one step; ``False`` where the system or file system cannot."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(a), None, os.fspath(b))


def replace_folder(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path | None:
    """Put the finished folder ``tmp`` at ``target``; return where the previous ``target`` now is (for the
    caller to delete), or ``None`` when there was none.

    At every instant ``target`` is the old folder or the new one, except on file systems without an atomic
    swap, where a crash between the two renames leaves it at ``.NAME.PID-HOST.old`` (put back by
    :func:`sweep_leftovers`).
    """
    tmp, target = Path(tmp), Path(target)
    if not os.path.lexists(target):
        tmp.rename(target)
        return None
    if exchange(tmp, target):
        return tmp
    old = target.with_name(old_name(target.name))
    if os.path.lexists(old):
        _remove(old)
    target.rename(old)
    tmp.rename(target)
    return old
