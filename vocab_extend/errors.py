"""The one exception type the CLI turns into a one-sentence message, and the storage failures it covers.

Every check on user input raises :class:`VocabExtendError` with a sentence that says what is wrong and what
to do about it; the CLI prints ``error: <sentence>`` and exits with status 2 instead of a traceback.

A full disk, a read-only location or a folder we may not write is the user's environment, not a bug:
:func:`storage_error` turns such an :class:`OSError` (ENOSPC, EDQUOT, EROFS, EACCES, EPERM) into a
:class:`StorageError` sentence naming the folder; every other ``OSError`` stays a traceback, so real bugs
stay visible. Its sizes add up (:func:`space_detail`): what was needed is shown above what is free, in one
unit, and a disk that reports more free space than the write needed is said to be held by a quota, reserved
space or other files rather than contradicted.

Libraries reading a damaged or foreign file raise many types (:func:`load_errors`, summed up by
:func:`error_summary`), and JSON nested too deeply for the parser raises ``RecursionError``
(:func:`nesting_error` names the line); both become one sentence where the file is read.

>>> import errno
>>> str(storage_error(OSError(errno.EROFS, "Read-only file system"), "out"))
'cannot write out: it is on a read-only file system; choose a writable output location'
>>> storage_error(OSError(errno.ENOENT, "No such file or directory"), "out") is None
True
>>> human_size(3 * 1024**2)
'3.0 MiB'
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import struct
from pathlib import Path


class VocabExtendError(Exception):
    """A problem with the user's input or environment, explained in one sentence."""


class StorageError(VocabExtendError):
    """Writing failed because the disk is full, read-only or not ours to write; nothing partial was left."""


NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
READ_ONLY = frozenset({errno.EROFS})
NO_PERMISSION = frozenset({errno.EACCES, errno.EPERM})
STORAGE_ERRNOS = NO_SPACE | READ_ONLY | NO_PERMISSION

# Libraries that write through their own code (Rust, C++) report the OS error only in their message.
# (Rust's io::Error prints "... (os error 28)", or "Os { code: 28, ... }" in debug form.)
_MESSAGES = {os.strerror(code): code for code in STORAGE_ERRNOS} | {
    f"os error {code})": code for code in STORAGE_ERRNOS
} | {f"Os {{ code: {code},": code for code in STORAGE_ERRNOS}
# numpy's ``tofile`` (GGUF tensors) reports a short write without its errno; on a regular file the device or a
# quota refused the rest, so it is taken as a full disk
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def human_size(n: int | float) -> str:
    """``1536`` -> ``'1.5 KiB'``: sizes in messages."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_sizes(*sizes: int) -> list[str]:
    """``sizes`` in one unit (the largest one's), with as many decimals (up to 3) as it takes to keep different
    sizes apart and to show no size above zero as 0; in bytes when 3 decimals are not enough.

    >>> human_sizes(3 * 2**20, 3 * 2**20 - 20_000)
    ['3.00 MiB', '2.98 MiB']
    >>> human_sizes(2**20, 2**18), human_sizes(3 * 2**20, 3 * 2**20 - 100)
    (['1.0 MiB', '0.2 MiB'], ['3,145,728 B', '3,145,628 B'])
    """
    largest = max(sizes)
    power = 0
    while power < 4 and largest >= 1024 ** (power + 1):
        power += 1
    if power > 0:
        unit = ("KiB", "MiB", "GiB", "TiB")[power - 1]
        for decimals in (1, 2, 3):
            shown = [f"{size / 1024**power:.{decimals}f}" for size in sizes]
            apart = all((a == b) == (x == y) for a, x in zip(shown, sizes) for b, y in zip(shown, sizes))
            if apart and all(float(text) > 0 or size == 0 for text, size in zip(shown, sizes)):
                return [f"{text} {unit}" for text in shown]
    return [f"{size:,} B" for size in sizes]


_SMALL = 2**20  # free space up to this much is "full" even when the size being written is not known
_CONTRADICTION = ", so a quota, the file system's reserved space or other files written meanwhile stood in the way"


def space_detail(free: int | None, needed: int | None = None, written: int | None = None) -> str:
    """What a disk-full message says about sizes, so that it adds up: needed more than free, in one unit.

    ``needed``: the size being written, when known; ``written``: how much was written before the disk filled
    up (the space needed is more); ``free``: the free space read after the partial output was removed. When
    the disk reports more free space than that, the message says what stood in the way instead of a
    contradiction.

    >>> space_detail(3 * 2**20 - 20_000, needed=3 * 2**20)
    ' (3.00 MiB to write, only 2.98 MiB free)'
    >>> space_detail(5 * 2**20, needed=914).split(", so ")[0]
    ' (914 B to write, refused with 5.0 MiB free)'
    >>> space_detail(3 * 2**20 + 8192, written=3 * 2**20)
    ' (the disk filled up after 3.00 MiB was written: more is needed than the 3.01 MiB free)'
    """
    if needed is not None:
        if free is None:
            return f" ({human_size(needed)} to write)"
        if free < needed:
            need, have = human_sizes(needed, free)
            return f" ({need} to write, only {have} free)"
        return f" ({human_size(needed)} to write, refused with {human_size(free)} free){_CONTRADICTION}"
    if written:
        if free is None or free < written:  # the space is not given back yet (a file still open, other writers)
            return f" (the disk filled up after {human_size(written)} was written: more is needed)"
        if free <= 2 * written + _SMALL:  # the space this write took, given back: it needed more than that
            done, have = human_sizes(written, free)
            return f" (the disk filled up after {done} was written: more is needed than the {have} free)"
        return f" (at least {human_size(written)} needed, refused with {human_size(free)} free){_CONTRADICTION}"
    if free is None:
        return ""
    if free < _SMALL:
        return f" ({human_size(free)} free)"
    return f" (refused with {human_size(free)} free){_CONTRADICTION}"


def storage_errno(exc: BaseException) -> int | None:
    """The storage errno behind ``exc`` (itself, its causes, or a library message quoting the OS error)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_ERRNOS:
            return current.errno
        if isinstance(current, OSError) and current.errno is None and _SHORT_WRITE.fullmatch(str(current)):
            return errno.ENOSPC
        text = str(current)
        for message, code in _MESSAGES.items():
            if message in text:
                return code
        current = current.__cause__ or current.__context__
    return None


def free_space(folder: Path) -> int | None:
    """Free bytes where ``folder`` (or its nearest existing parent) lives; ``None`` when it cannot be read."""
    for candidate in (folder, *folder.absolute().parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def storage_error(exc: BaseException, folder: str | os.PathLike[str], *, needed: int | None = None,
                  written: int | None = None, writing: bool = True) -> StorageError | None:
    """A one-sentence :class:`StorageError` for a disk-full / read-only / permission failure, else ``None``.

    ``folder`` is what the user has to act on; ``needed`` is the size being written when known, ``written``
    how much was written before the disk filled up. The free space is read now (after the partial output
    was removed). ``writing=False`` when it is not known whether ``folder`` was being read or written.
    """
    code = storage_errno(exc)
    if code is None:
        return None
    folder = Path(folder)
    if code in NO_SPACE:
        free = free_space(folder) if code == errno.ENOSPC else None  # a quota is not the disk's free space
        quota = "disk quota exceeded" if code == errno.EDQUOT else "no space left on the device"
        return StorageError(f"cannot write {folder}: {quota}{space_detail(free, needed, written)}; free some space "
                            "or choose another output location")
    if code in READ_ONLY:
        return StorageError(f"cannot write {folder}: it is on a read-only file system; choose a writable "
                            "output location")
    if not writing:
        return StorageError(f"permission denied on {folder}: fix its permissions or choose another location")
    return StorageError(f"cannot write {folder}: permission denied; choose an output location you may write "
                        "or fix its permissions")


_JSON_MARKS = re.compile(r'[\[\]{}"\\\n]')


def json_nesting(text: str) -> tuple[int, int]:
    """``(depth, line)``: how deeply JSON ``text`` nests its arrays and objects, and the 1-based line where that
    depth is first reached; brackets inside strings do not count.

    >>> json_nesting('{"a": [[1],\\n [[2]]], "b": "[[[\\\\"["}')
    (4, 2)
    """
    depth = deepest = 0
    line = deepest_line = 1
    in_string, skip = False, -1
    for match in _JSON_MARKS.finditer(text):
        mark, at = match.group(), match.start()
        if at == skip:
            continue
        if mark == "\n":
            line += 1
        elif in_string:
            skip = at + 1 if mark == "\\" else skip
            in_string = mark != '"'
        elif mark == '"':
            in_string = True
        elif mark in "[{":
            depth += 1
            if depth > deepest:
                deepest, deepest_line = depth, line
        elif mark in "]}":
            depth -= 1
    return deepest, deepest_line


def nesting_error(path: str | os.PathLike[str], text: str, line: int = 1) -> VocabExtendError:
    """The sentence for JSON ``text`` (read from ``path``, starting at ``line``) that nests too deeply for the
    parser (``json.loads`` raised ``RecursionError``), naming the line where it nests deepest.

    >>> str(nesting_error("c.jsonl", '{"text": ' + "[" * 5000 + "]" * 5000 + "}", line=7))[:61]
    'c.jsonl line 7 nests JSON 5,001 levels deep, more than a JSON'
    """
    depth, at = json_nesting(text)
    return VocabExtendError(f"{path} line {line + at - 1} nests JSON {depth:,} levels deep, more than a JSON reader "
                            "takes: flatten or remove that record (its text field should be a string)")


def load_errors() -> tuple[type[Exception], ...]:
    """What transformers and its helpers raise on a damaged or foreign model or tokenizer file: besides the
    usual types, a truncated header (``struct.error``), nonsense numbers (a head count of 0 divides by zero)
    and a config that fails validation (huggingface_hub's ``StrictDataclassError``). Catch them with
    ``except load_errors() as exc`` and describe them with :func:`error_summary`."""
    found: tuple[type[Exception], ...] = (OSError, ValueError, LookupError, RuntimeError, TypeError, AttributeError,
                                          ArithmeticError, struct.error)
    try:
        from huggingface_hub.errors import StrictDataclassError
    except ImportError:  # pragma: no cover - an older huggingface_hub
        return found
    return (*found, StrictDataclassError)


def error_summary(exc: BaseException, limit: int = 200) -> str:
    """``'ValueError: the reason'``: a library error in one line; a wrapper whose first line ends in a colon
    (huggingface_hub's "Class validation error for validator 'x':") gives its cause instead.

    >>> try:
    ...     try:
    ...         raise ValueError("The hidden size (32) is not a multiple of the number of attention heads (5).")
    ...     except ValueError as e:
    ...         raise RuntimeError("Class validation error for validator 'validate_architecture':") from e
    ... except RuntimeError as e:
    ...     error_summary(e)
    'ValueError: The hidden size (32) is not a multiple of the number of attention heads (5).'
    """
    first = (str(exc).strip().splitlines() or [""])[0]
    if first.endswith(":") and exc.__cause__ is not None:  # "... error for validator 'x':" then the cause
        return error_summary(exc.__cause__, limit)
    kind = type(exc).__name__
    kind = f"{type(exc).__module__}.{kind}" if kind == "error" else kind  # struct.error, zlib.error
    return f"{kind}: {first[:limit]}"
