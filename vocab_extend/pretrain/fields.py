"""Config values checked against the dataclass fields they fill: known keys, numbers read from text, types.

YAML gives whatever the user wrote; a dataclass accepts anything. These functions stand between the two, so
that a wrong value is one sentence naming the key instead of a ``TypeError`` deep inside training:

- :func:`check_keys`: every key is a field (else the closest field is named);
- :func:`coerce_fields`: numbers and booleans written as text (``3e-4``, ``"true"``) become the field's
  type, and every value must then have its field's type (text, a mapping, a list of texts...).

>>> from dataclasses import dataclass
>>> @dataclass
... class Example:
...     name: str
...     steps: int = 1
...     tags: list[str] | None = None
>>> coerce_fields({"name": "full", "steps": "4"}, Example, "stage")
{'name': 'full', 'steps': 4}
>>> coerce_fields({"name": 5}, Example, "stage")
Traceback (most recent call last):
...
vocab_extend.errors.VocabExtendError: stage: name must be text, not 5
>>> coerce_fields({"name": "x", "tags": ["a", 2]}, Example, "stage")
Traceback (most recent call last):
...
vocab_extend.errors.VocabExtendError: stage: tags must be a list of texts, not ['a', 2]
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Mapping

from ..errors import VocabExtendError

_KIND = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def check_keys(data: Mapping[str, Any], cls: type, where: str) -> None:
    """Refuse a key that is not a field of ``cls``, naming the closest field."""
    known = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in known:
            raise unknown_key(key, known, where)


def unknown_key(key: Any, known: list[str], where: str) -> VocabExtendError:
    """The error for ``key``, which is none of ``known``: it names the closest known key, or lists them."""
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(known)}"
    return VocabExtendError(f"unknown {where} key {str(key)!r}{hint}")


def _options(hint: Any) -> list[Any]:
    """The types a hint allows, ``None`` left out: ``int | None`` -> ``[int]``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(hint) if a is not type(None)]
    return [hint]


def _number(value: Any, target: type, key: str, where: str) -> Any:
    """``value`` as ``target`` (bool, int or float), read from text if need be."""
    if isinstance(value, target) and not (target is not bool and isinstance(value, bool)):
        return value
    try:
        if target is bool:
            text = str(value).strip().lower()
            if text not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError(text)
            return text in ("true", "yes", "1")
        if target is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise VocabExtendError(f"{where}: {key} must be {_KIND[target]}, not {value!r}") from None


def _shape_error(value: Any, option: Any) -> str | None:
    """Why ``value`` does not have the shape ``option`` (a class, ``list[X]`` or ``dict[K, V]``), else None."""
    origin = typing.get_origin(option)
    if option is str:
        return None if isinstance(value, str) else "text"
    if origin is list:
        (item,) = typing.get_args(option) or (Any,)
        if not isinstance(value, (list, tuple)):
            return "a list"
        if item in (str, float) and not all(isinstance(v, str if item is str else (int, float))
                                            and not isinstance(v, bool) for v in value):
            return f"a list of {'texts' if item is str else 'numbers'}"
        return None
    if origin is dict:
        return None if isinstance(value, Mapping) else "a mapping of keys to values"
    if dataclasses.is_dataclass(option):
        return None if isinstance(value, (Mapping, option)) else "a mapping of keys to values"
    return None


def coerce_fields(data: dict[str, Any], cls: type, where: str,
                  shown: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``data`` with numbers read from text and every value checked against its field's type (in place);
    errors name a field as ``shown`` says (by default, by its own name)."""
    hints = typing.get_type_hints(cls)
    for field, value in list(data.items()):
        key = (shown or {}).get(field, field)
        options = _options(hints.get(field, Any))
        if value is None or Any in options:
            continue
        numeric = [t for t in (bool, float, int) if t in options]
        if numeric and len(options) == len(numeric):
            data[field] = _number(value, numeric[0], key, where)
            continue
        problems = [_shape_error(value, option) for option in options]
        if all(p is not None for p in problems):
            raise VocabExtendError(f"{where}: {key} must be {' or '.join(problems)}, not {value!r}")
    return data
