"""GPT-2's byte alphabet, and which new tokens may be merged without touching base-language text.

A byte-level BPE stores each byte as one printable character (``Ġ`` is the space byte), so a token is a
string of byte characters that need not be whole UTF-8 characters. :func:`admissible_reason` is the rule
behind guarantees 2 and 3 of :mod:`vocab_extend.families.bytelevel`: a merge may only make a token holding
a whole character of the new scripts, or the first bytes of a character whose every completion is in them
(``é°`` can only start 鰀..鰿); a token with a digit must be that one digit when the base splits digits.

>>> from vocab_extend.scripts import JAPANESE
>>> admissible_reason(to_byte_level("東京"), JAPANESE, split_digits=True) is None
True
>>> admissible_reason(to_byte_level("鰯".encode("utf-8")[1:]), JAPANESE, split_digits=True)
'no_new_script_char'
>>> admissible_reason(to_byte_level("鰯".encode("utf-8")[:2]), JAPANESE, split_digits=True) is None
True
>>> admissible_reason(to_byte_level("２０"), JAPANESE, split_digits=True)
'digits'
"""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from typing import Any

from ...scripts import ScriptSet


@lru_cache(maxsize=1)
def _byte_maps() -> tuple[dict[int, str], dict[str, int]]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    to_char = bytes_to_unicode()
    return to_char, {c: b for b, c in to_char.items()}


def is_bytelevel(tokenizer: Any) -> bool:
    """The one rule for "is it byte-level": a BPE model whose bytes are mapped to GPT-2's alphabet *before*
    the model runs (a ``ByteLevel`` pre-tokenizer or normaliser), for a ``tokenizer.json`` as a dict or a
    ``tokenizers.Tokenizer``. A ``ByteLevel`` decoder alone does not make a tokenizer byte-level: it only says
    how ids are turned back into text.

    >>> is_bytelevel({"model": {"type": "BPE"}, "pre_tokenizer": {"type": "ByteLevel"}})
    True
    >>> is_bytelevel({"model": {"type": "BPE"}, "pre_tokenizer": None, "decoder": {"type": "ByteLevel"}})
    False
    """
    data = tokenizer if isinstance(tokenizer, dict) else json.loads(tokenizer.to_str())
    model = data.get("model") or {}
    before_model = json.dumps(data.get("pre_tokenizer")) + json.dumps(data.get("normalizer"))
    return model.get("type") == "BPE" and '"ByteLevel"' in before_model


def to_byte_level(text: str | bytes) -> str:
    """Text (or raw bytes) in GPT-2's byte alphabet, as tokens are stored: ``to_byte_level(" a") == "Ġa"``."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    to_char = _byte_maps()[0]
    return "".join(to_char[b] for b in data)


def token_bytes(token: str) -> bytes:
    """The bytes a byte-level token stands for; raises ``KeyError`` on a character outside the alphabet."""
    to_byte = _byte_maps()[1]
    return bytes(to_byte[c] for c in token)


def token_text(token: str) -> str:
    """A token as readable text; bytes that are not a whole character are shown as ``\\x..``."""
    try:
        return token_bytes(token).decode("utf-8", errors="backslashreplace")
    except KeyError:
        return token


def whole_text(token: str) -> str | None:
    """The text of a token made of whole characters; ``None`` when it holds part of a character."""
    try:
        return token_bytes(token).decode("utf-8")
    except (KeyError, UnicodeDecodeError):
        return None


def _utf8_length(lead: int) -> int:
    """Bytes of the character that starts with byte ``lead``; 0 when no character starts with it."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead < 0xE0:
        return 2
    if 0xE0 <= lead < 0xF0:
        return 3
    if 0xF0 <= lead < 0xF5:
        return 4
    return 0


def _split_utf8(data: bytes) -> tuple[list[str], bytes] | None:
    """Whole characters of ``data`` (leading continuation bytes skipped) and the trailing partial character.

    ``None`` when the bytes cannot be part of UTF-8 text.
    """
    i = 0
    while i < len(data) and 0x80 <= data[i] < 0xC0:
        i += 1
    chars: list[str] = []
    while i < len(data):
        size = _utf8_length(data[i])
        if size == 0:
            return None
        if i + size > len(data):
            tail = data[i:]
            if any(not 0x80 <= b < 0xC0 for b in tail[1:]):
                return None
            return chars, tail
        try:
            chars.append(data[i : i + size].decode("utf-8"))
        except UnicodeDecodeError:
            return None
        i += size
    return chars, b""


def _completions(prefix: bytes) -> tuple[int, int]:
    """The code-point range of the characters whose UTF-8 encoding starts with ``prefix`` (a partial char)."""
    lead = prefix[0]
    size = _utf8_length(lead)
    value_bits = {2: 0x1F, 3: 0x0F, 4: 0x07}[size]
    low = lead & value_bits
    for b in prefix[1:]:
        low = (low << 6) | (b & 0x3F)
    missing = size - len(prefix)
    return low << (6 * missing), (low << (6 * missing)) | ((1 << (6 * missing)) - 1)


def _range_in_scripts(lo: int, hi: int, scripts: ScriptSet) -> bool:
    """Whether every code point in ``lo..hi`` belongs to ``scripts`` (ranges may touch each other)."""
    point = lo
    while point <= hi:
        covering = [r_hi for r_lo, r_hi in scripts.ranges if r_lo <= point <= r_hi]
        if not covering:
            return False
        point = max(covering) + 1
    return True


def admissible_reason(token: str, scripts: ScriptSet, *, split_digits: bool) -> str | None:
    """``None`` when a merge making ``token`` can only fire inside a pre-token holding a new-script character.

    Otherwise the reason, as counted in ``Extension.skipped``: ``no_new_script_char`` or ``digits``.
    """
    try:
        parts = _split_utf8(token_bytes(token))
    except KeyError:
        return "not_byte_level"
    if parts is None:
        return "no_new_script_char"
    chars, tail = parts
    in_script = any(scripts.is_script_char(ch) for ch in chars)
    if not in_script and tail:
        in_script = _range_in_scripts(*_completions(tail), scripts)
    if not in_script:
        return "no_new_script_char"
    if split_digits and any(unicodedata.category(ch) == "Nd" for ch in chars):
        if len(chars) != 1 or tail or len(token_bytes(token)) != len(chars[0].encode("utf-8")):
            return "digits"
    return None
