"""A checkpoint's folder name and its ``manifest.json``: which checkpoints a run holds, and whether one is whole.

A checkpoint is the folder ``checkpoints/step-NNNNNNNN``; ``manifest.json``, written last, lists the size
and SHA-256 of every other file in it, so its presence marks a checkpoint written whole and :func:`verify`
tells one damaged since (a missing, truncated or changed file). :mod:`.checkpoint` writes and reads the
checkpoints and re-exports these names.

>>> step_of(Path("checkpoints/step-00000040"))
40
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CHECKPOINTS = "checkpoints"
PREFIX = "step-"
MANIFEST = "manifest.json"  # written last: its presence marks a complete checkpoint


def step_of(path: Path) -> int:
    """The step a checkpoint folder was written at, from its name."""
    return int(path.name[len(PREFIX):])


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoints of a run that were written whole (they have a manifest), oldest first; not verified."""
    folder = Path(output_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir()
             if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()
             and (p / MANIFEST).is_file()]
    return sorted(found, key=step_of)


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_manifest(staging: Path) -> int:
    """Record the size and SHA-256 of every file in ``staging`` (rank 0, after every rank wrote its files);
    returns the checkpoint's size in bytes."""
    files = {}
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        files[path.relative_to(staging).as_posix()] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    text = json.dumps({"files": files}, indent=1, sort_keys=True) + "\n"
    (staging / MANIFEST).write_text(text, encoding="utf-8")
    return sum(f["size"] for f in files.values())


def checkpoint_size(path: Path) -> int | None:
    """The size in bytes of a complete checkpoint, from its manifest."""
    try:
        files = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))["files"]
        return sum(int(f["size"]) for f in files.values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def verify(path: Path) -> str | None:
    """Why the checkpoint at ``path`` cannot be trusted (a missing, truncated or changed file), or ``None``."""
    path = Path(path)
    try:
        files = json.loads((path / MANIFEST).read_text(encoding="utf-8"))["files"]
        items = [(str(name), int(entry["size"]), str(entry["sha256"])) for name, entry in files.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"its {MANIFEST} is unreadable"
    for name, size, sha in items:
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != size:
            return f"{name} has {file.stat().st_size:,} bytes, not {size:,}"
        if _sha256(file) != sha:
            return f"{name} has changed since it was written"
    if "state.json" not in files:
        return "it has no state.json"
    return None
