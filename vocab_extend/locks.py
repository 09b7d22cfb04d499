"""One writer per output: an exclusive lock file beside every output folder or file a command writes.

``output_lock("runs/x")`` holds ``runs/.x.lock`` for the block. The file records who holds it (pid and
host, as JSON) so that a second writer is told in one sentence whom it is waiting for::

    error: another vocab-extend process (pid 4242) is writing runs/x: wait for it to finish or stop it,
    then run again

Invariants:

- The lock is an ``fcntl.flock`` on that file, so the kernel releases it when its holder dies, even by
  ``kill -9``; the file such a process leaves is *stale* and the next writer takes it over
  (:attr:`OutputLock.took_over` names the dead holder). Where ``flock`` is not available the file is created
  with ``O_EXCL`` instead, and a file whose recorded process is gone (same host) is taken over.
- The file is removed when the lock is released (unlinked while still held; a writer that locked a file
  just unlinked sees that it is no longer the one at the path and starts again), so nothing is left beside a
  finished output. A lock that cannot be taken (a full disk refuses the holder record) leaves no file
  either: the command fails with one sentence and nothing beside its output.
- Locks are re-entrant within a process: a command may lock its output folder early (before its long work)
  and :func:`vocab_extend.staging.staging_folder` locks it again when it writes.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "out"
>>> with output_lock(out) as lock:
...     lock_path(out).name, lock_path(out).exists()
('.out.lock', True)
>>> lock_path(out).exists()
False
"""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import VocabExtendError, storage_error

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

HOST = socket.gethostname()
# a lock file of the O_EXCL fallback that is still empty this long after its creation belongs to a writer
# that died between creating and filling it
_EMPTY_GRACE_S = 10.0
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock."""

    pid: int
    host: str

    def describe(self) -> str:
        return f"pid {self.pid}" + ("" if self.host == HOST else f" on host {self.host}")


def lock_path(target: str | os.PathLike[str]) -> Path:
    """``runs/x`` -> ``runs/.x.lock``: the lock file beside ``target``."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a zombie counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _parse_holder(data: bytes) -> Holder | None:
    try:
        record = json.loads(data.decode("utf-8"))
        return Holder(int(record["pid"]), str(record["host"]))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def read_holder(path: str | os.PathLike[str]) -> Holder | None:
    """The holder a lock file records, or ``None`` when it is missing, empty or unreadable."""
    try:
        return _parse_holder(Path(path).read_bytes())
    except OSError:
        return None


class LockBusy(VocabExtendError):
    """Another live process holds the lock."""


def _busy(target: Path, lock_file: Path, holder: Holder | None) -> VocabExtendError:
    who = f"another vocab-extend process ({holder.describe()})" if holder else "another vocab-extend process"
    where = "" if holder else f" (it holds {lock_file})"
    return LockBusy(f"{who} is writing {target}{where}: wait for it to finish or stop it, then run again")


class OutputLock:
    """An exclusive, re-entrant lock on ``target`` (a folder or file path that need not exist yet).

    Use it as a context manager, or :meth:`acquire` / :meth:`release`. A second process gets a
    :class:`VocabExtendError` at once (it never waits); a read-only or full location gives a
    :class:`vocab_extend.errors.StorageError` naming the folder.
    """

    def __init__(self, target: str | os.PathLike[str]) -> None:
        self.target = Path(target)
        self.path = lock_path(self.target.absolute())
        self.took_over: Holder | None = None
        self._key = ""
        self._acquired = False

    # ---------------------------------------------------------------------------------------- public
    def acquire(self) -> "OutputLock":
        if self._acquired:
            return self
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._key = str(parent.resolve() / self.path.name)
        except OSError as exc:
            raise storage_error(exc, parent) or VocabExtendError(
                f"cannot create {parent} ({exc.strerror or exc}): choose another output location") from None
        with _registry_lock:
            entry = _held.get(self._key)
            if entry is not None:
                entry[1] += 1
                self._acquired = True
                return self
            try:
                fd = self._lock_flock() if fcntl is not None else None
                if fd is None:
                    fd = self._lock_exclusive()
            except OSError as exc:
                raise storage_error(exc, parent) or VocabExtendError(
                    f"cannot write {parent} ({exc.strerror or exc}): choose another output location") from None
            _held[self._key] = [fd, 1]
            self._acquired = True
        return self

    def release(self) -> None:
        if not self._acquired:
            return
        self._acquired = False
        with _registry_lock:
            entry = _held.get(self._key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _held[self._key]
            try:
                os.unlink(self.path)  # while still held: see the module docstring
            except FileNotFoundError:
                pass
            finally:
                os.close(entry[0])

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ---------------------------------------------------------------------------------------- flock
    def _lock_flock(self) -> int | None:
        """Lock with ``flock``; ``None`` when this file system does not support it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _parse_holder(os.pread(fd, 4096, 0))
                os.close(fd)
                raise _busy(self.target, self.path, holder) from None
            except OSError as exc:
                os.close(fd)
                if exc.errno in _NO_FLOCK:
                    return None
                raise
            try:
                same = os.stat(self.path)
            except FileNotFoundError:
                same = None
            mine = os.fstat(fd)
            if same is None or (same.st_dev, same.st_ino) != (mine.st_dev, mine.st_ino):
                os.close(fd)  # its holder released it (and unlinked it) while we waited: start again
                continue
            previous = _parse_holder(os.pread(fd, 4096, 0))
            if previous is not None:
                self.took_over = previous  # its holder died without releasing it (kill -9, power loss)
            self._write_holder(fd)
            return fd

    # ---------------------------------------------------------------------------------------- O_EXCL
    def _lock_exclusive(self) -> int:
        """Lock by creating the file; take over one whose recorded process is gone."""
        for _ in range(100):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
            except FileExistsError:
                holder = read_holder(self.path)
                if holder is None:
                    try:
                        age = time.time() - os.stat(self.path).st_mtime
                    except FileNotFoundError:
                        continue
                    if age < _EMPTY_GRACE_S:
                        raise _busy(self.target, self.path, None) from None
                elif holder.host != HOST or pid_alive(holder.pid):
                    raise _busy(self.target, self.path, holder) from None
                self.took_over = holder
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                continue
            self._write_holder(fd)
            return fd
        raise _busy(self.target, self.path, read_holder(self.path))

    def _write_holder(self, fd: int) -> None:
        """Record this process in the lock file ``fd`` holds; when that fails (a full disk), remove the file
        (it is ours: held, or just created) and close ``fd``, so a failed command leaves no empty lock file."""
        data = json.dumps({"pid": os.getpid(), "host": HOST}).encode("utf-8")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except BaseException:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            finally:
                os.close(fd)
            raise


_registry_lock = threading.Lock()
# resolved lock file -> [fd, depth], the locks this process holds
_held: dict[str, list[int]] = {}


def _forget_in_child() -> None:
    _held.clear()  # a forked child holds no lock of its own


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def holds_lock(target: str | os.PathLike[str]) -> bool:
    """Whether this process holds the lock on ``target``."""
    path = lock_path(Path(target).absolute())
    try:
        key = str(path.parent.resolve() / path.name)
    except OSError:
        return False
    with _registry_lock:
        return key in _held


@contextmanager
def output_lock(target: str | os.PathLike[str]) -> Iterator[OutputLock]:
    """Hold the exclusive lock on ``target`` for the block (see :class:`OutputLock`)."""
    lock = OutputLock(target).acquire()
    try:
        yield lock
    finally:
        lock.release()


@contextmanager
def waiting_lock(target: str | os.PathLike[str], say=None, poll_s: float = 0.5) -> Iterator[OutputLock]:
    """Like :func:`output_lock`, but wait while another process holds it (for shared caches, where the
    second process should use what the first builds); ``say`` is told once that it waits."""
    lock = OutputLock(target)
    told = False
    while True:
        try:
            lock.acquire()
            break
        except LockBusy as busy:
            if say is not None and not told:
                say(f"waiting: {str(busy).split(': wait for it')[0]}")
                told = True
            time.sleep(poll_s)
    try:
        yield lock
    finally:
        lock.release()
