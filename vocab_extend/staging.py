"""Writing an output folder all at once: build it beside the target, swap it into place at the end.

:func:`staging_folder` is how every command writes its output folder. Invariants:

- **One writer**: it holds the target's :mod:`lock <vocab_extend.locks>` (``.NAME.lock`` beside it) from
  before the checks to after the swap; a second writer gets one sentence naming the first one's pid.
- **No input is touched**: with ``inputs`` (corpus, base, tokenizer, model, config paths), a target that is,
  contains or lies inside one of them is refused, symlinks resolved, ``--overwrite`` or not.
- **All or nothing**: the output is built in ``.NAME.PID-HOST-XXXX.tmp``, flushed to disk and swapped in
  only when the block ends without error. A failure, Ctrl-C or SIGTERM leaves the target as it was and no
  temporary folder; ``kill -9`` leaves one, which the next write of the same target sweeps
  (:func:`vocab_extend.atomic.sweep_leftovers`).
- **Disk full / read-only / no permission**: one :class:`~vocab_extend.errors.StorageError` sentence naming
  the folder (for a full disk: how much had been written and how much is free), nothing partial left.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "out"
>>> with staging_folder(out, overwrite=False) as tmp:
...     _ = (tmp / "a.txt").write_text("done", encoding="utf-8")
>>> sorted(p.name for p in out.parent.iterdir()), (out / "a.txt").read_text(encoding="utf-8")
(['out'], 'done')
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Union

from .atomic import TEMP_SUFFIX, current_umask, fsync_dir, fsync_tree, replace_folder, sweep_leftovers, temp_prefix
from .errors import StorageError, VocabExtendError, storage_error
from .locks import output_lock
from .signals import deferred

PathLike = Union[str, "os.PathLike[str]"]
# an input is a path, or (what it is, path): ("corpus", "corpora/ja"), named so in the refusal
Input = Union[PathLike, tuple[str, PathLike]]


def _resolve(path: PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _input_path(spec: str) -> str | None:
    """The local path an input names, or ``None`` for what is not a local path (``hf:...``, Hub ids,
    aliases that do not exist on disk). A glob stands for its fixed leading folder."""
    if not spec or spec.startswith("hf:"):
        return None
    if any(ch in spec for ch in "*?["):
        head = []
        for part in Path(spec).parts:
            if any(ch in part for ch in "*?["):
                break
            head.append(part)
        spec = str(Path(*head)) if head else "."
    return spec if os.path.lexists(os.path.expanduser(spec)) else None


def check_not_an_input(target: PathLike, inputs: Iterable[Input], what: str = "output folder") -> None:
    """Refuse a ``target`` that is, contains or lies inside one of ``inputs`` (symlinks resolved); ``what``
    names the target in the sentence (``"output file"`` for a JSON or plot path).

    >>> import tempfile, pathlib
    >>> corpus = pathlib.Path(tempfile.mkdtemp())
    >>> check_not_an_input(corpus / "out", [("corpus", corpus)])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    vocab_extend.errors.VocabExtendError: output folder .../out is inside the corpus ..., an input of this command ...
    >>> check_not_an_input(corpus.parent / "elsewhere", [("corpus", corpus), "hf:wikimedia/wikipedia"])
    """
    where = _resolve(target)
    for item in inputs:
        label, spec = item if isinstance(item, tuple) else ("input", item)
        local = _input_path(os.fspath(spec))
        if local is None:
            continue
        source = _resolve(local)
        if where == source:
            relation, consequence = "is", "--overwrite would replace it"
        elif source.is_relative_to(where):
            relation, consequence = "contains", "--overwrite would delete it"
        elif where.is_relative_to(source):
            relation, consequence = "is inside", "the output would become part of it"
        else:
            continue
        raise VocabExtendError(f"{what} {target} {relation} the {label} {os.fspath(spec)}, an input of this command "
                               f"({consequence}): choose another {what}")


def check_output_dir(target: PathLike | None, overwrite: bool, inputs: Iterable[Input] = ()) -> None:
    """Refuse an unusable output folder; call it before any long work.

    Refused: a target that is a file, that already exists without ``overwrite``, that lies inside a file,
    that is or holds or lies inside one of ``inputs``, or whose nearest existing folder cannot be written
    (read-only file system or no permission).
    """
    if target is None:
        return
    target = Path(target)
    check_not_an_input(target, inputs)
    if target.exists() and not target.is_dir():
        raise VocabExtendError(f"output folder {target} is a file: choose another --output-dir")
    if target.exists() and not overwrite:
        raise VocabExtendError(f"output folder {target} already exists: pass --overwrite or choose --output-dir")
    _check_location(target, "output folder", "--output-dir")


def _check_location(target: Path, what: str, option: str) -> None:
    """The nearest existing folder above ``target`` must be a folder, and writable."""
    for parent in target.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise VocabExtendError(f"{what} {target} would be inside {parent}, which is a file: "
                                       f"choose another {option}")
            check_writable(parent)
            return


def check_output_file(path: PathLike, inputs: Iterable[Input] = ()) -> None:
    """Refuse an unusable output file path (``--json``, a plot): a folder, one of ``inputs`` or inside one, a
    path inside a file, or a location that cannot be written. An existing file is fine: it is replaced
    atomically (:func:`vocab_extend.atomic.atomic_write_bytes`)."""
    path = Path(path)
    check_not_an_input(path, inputs, what="output file")
    if path.is_dir():
        raise VocabExtendError(f"output file {path} is a folder: give a file name")
    _check_location(path, "output file", "path")


def check_writable(folder: PathLike) -> None:
    """Refuse a folder on a read-only file system or one this process may not write (one sentence)."""
    folder = Path(folder)
    if os.access(folder, os.W_OK | os.X_OK):
        return
    read_only = False
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        pass
    import errno

    code = errno.EROFS if read_only else errno.EACCES
    raise storage_error(OSError(code, os.strerror(code)), folder) or AssertionError("unreachable")


def _size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


@contextmanager
def staging_folder(target: PathLike, overwrite: bool, inputs: Iterable[Input] = ()) -> Iterator[Path]:
    """A temporary folder beside ``target`` that replaces it only when the block ends without error.

    See the module docstring for what it guarantees; ``inputs`` are the command's input paths (or
    ``(label, path)`` pairs) that the target must not touch.
    """
    target = Path(target)
    inputs = list(inputs)
    check_output_dir(target, overwrite, inputs)
    with output_lock(target):
        sweep_leftovers(target, locked=True)
        check_output_dir(target, overwrite, inputs)  # a swept .old may have put the previous output back
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target.name), suffix=TEMP_SUFFIX, dir=target.parent))
        except OSError as exc:
            raise storage_error(exc, target.parent) or exc
        previous: Path | None = None
        try:
            tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes it private; the output gets the usual folder mode
            yield tmp
            fsync_tree(tmp)
            with deferred():
                previous = replace_folder(tmp, target)
            fsync_dir(target.parent)
        except Exception as exc:
            written = _size(tmp) if tmp.exists() else None
            with deferred():
                shutil.rmtree(tmp, ignore_errors=True)
            error = storage_error(exc, target, written=written)
            if error is None or isinstance(exc, StorageError):
                raise
            raise error from exc
        finally:
            with deferred():
                shutil.rmtree(tmp, ignore_errors=True)
                if previous is not None:
                    shutil.rmtree(previous, ignore_errors=True)




__all__ = ["check_not_an_input", "check_output_dir", "check_output_file", "check_writable", "staging_folder"]
