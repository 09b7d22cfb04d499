"""Writing an output folder all at once: build it beside the target, rename it into place at the end.

A failure or Ctrl-C inside :func:`staging_folder` leaves the target as it was and no temporary folder behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import VocabExtendError


def check_output_dir(target: Path | None, overwrite: bool) -> None:
    """Refuse an existing output folder unless ``overwrite``; call it before any long work."""
    if target is None:
        return
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise VocabExtendError(f"output folder {target} is a file: choose another --output-dir")
    if target.exists() and not overwrite:
        raise VocabExtendError(f"output folder {target} already exists: pass --overwrite or choose --output-dir")
    for parent in target.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise VocabExtendError(f"output folder {target} would be inside {parent}, which is a file: "
                                       "choose another --output-dir")
            break


@contextmanager
def staging_folder(target: Path, overwrite: bool) -> Iterator[Path]:
    """A temporary folder beside ``target`` that replaces it only when the block ends without error."""
    target = Path(target)
    check_output_dir(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the output gets the usual folder mode
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
