"""Reading a JSON object from a file the user gave us: anything that is not one is one sentence.

Every config, report and metadata file we read is a JSON object. A file that is missing (unless
``missing_ok``), unreadable, not UTF-8, not JSON, nested too deeply for the parser, or valid JSON of another
type raises :class:`~vocab_extend.errors.VocabExtendError` naming the file and, when given, what to do.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "config.json"
>>> _ = path.write_text('{"a": 1}', encoding="utf-8")
>>> read_json_object(path)
{'a': 1}
>>> _ = path.write_text("[1, 2]", encoding="utf-8")
>>> read_json_object(path, fix="write it again")
Traceback (most recent call last):
...
vocab_extend.errors.VocabExtendError: ... is not a JSON object: write it again
>>> read_json_object(path.parent / "absent.json", missing_ok=True)
{}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import VocabExtendError


def read_json_object(path: str | os.PathLike[str], *, missing_ok: bool = False, fix: str = "") -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` for a missing file when ``missing_ok``; else one sentence."""
    path = Path(path)
    hint = f": {fix}" if fix else ""
    if not path.is_file():
        if missing_ok:
            return {}
        raise VocabExtendError(f"{path} does not exist{hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:200]
        raise VocabExtendError(f"{path} is not readable JSON ({reason}){hint}") from None
    if not isinstance(data, dict):
        raise VocabExtendError(f"{path} is not a JSON object{hint}")
    return data
