"""A wider split for one script: its letters and marks stay in one pre-token; every other text splits as before.

GPT-2's split regex (SmolLM2, and Llama-3's and Qwen2's after it) ends a run of letters at every combining
mark (``\\p{L}+`` does not match ``\\p{M}``), so Thai averages about 4 characters per pre-token and Hindi
about 2: BPE never merges across pre-tokens, so no added vocabulary can beat that. :func:`widen_split`
puts one alternative in front of the base's split regex: an optional leading space (or, for Llama-3-style
regexes, one leading non-letter) followed by a run of the new language's own characters (digits aside).

Invariant: a line without any of those characters splits exactly as before, because the new alternative
cannot match anywhere in it and the rest of the regex is the base's own, alternative for alternative. A
``ByteLevel`` step that splits with GPT-2's built-in regex is replaced by a ``Split`` with the same regex
followed by a ``ByteLevel`` that does not split (tests compare both on real text, line by line).

>>> from vocab_extend.scripts import get_language
>>> base = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
>>> data = widened_pre_tokenizer(base, get_language("hi"))
>>> [step["type"] for step in data["pretokenizers"]]
['Split', 'ByteLevel']
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from ...errors import VocabExtendError
from ...jsonfile import read_json_object
from ...scripts import ScriptSet

# The regex tokenizers' ByteLevel pre-tokenizer splits with when use_regex is true (GPT-2's).
GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
# Llama-3 / Qwen2 let a letter run start with one character that is not a letter, digit or line break.
_WIDE_LEAD = {"gpt2": " ?", "llama": r"[^\r\n\p{L}\p{N}]?"}


def _char_class(scripts: ScriptSet) -> str:
    """The script's own characters as a regex class of literal ranges (Oniguruma and ``regex`` read it alike),
    digits left out so that digit rules stay the base's."""
    parts = []
    for lo, hi in scripts.ranges:
        first, last = _escape(chr(lo)), _escape(chr(hi))
        parts.append(first if lo == hi else f"{first}-{last}")
    return "(?:(?!\\p{N})[" + "".join(parts) + "])"


def _escape(ch: str) -> str:
    return "\\" + ch if ch in "\\]^-[" else ch


def wide_alternative(scripts: ScriptSet, lead: str) -> str:
    """The alternative put first: a lead, then one or more of the script's own characters."""
    return f"{_WIDE_LEAD[lead]}{_char_class(scripts)}+"


def _split_step(regex: str) -> dict[str, Any]:
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


def _widen_step(step: dict[str, Any], scripts: ScriptSet) -> list[dict[str, Any]]:
    """One step of the base's pre-tokenizer, widened (or as it is, when it does not split letters)."""
    if step.get("type") == "ByteLevel" and step.get("use_regex", True):
        if step.get("add_prefix_space"):
            raise VocabExtendError(
                "--widen-split cannot keep this base's ByteLevel pre-tokenizer exact (it adds a prefix space to "
                "every piece once split): merge without --widen-split")
        plain = dict(step, use_regex=False)
        return [_split_step(f"{wide_alternative(scripts, 'gpt2')}|{GPT2_SPLIT}"), plain]
    if step.get("type") == "Split" and "Regex" in (step.get("pattern") or {}):
        if step.get("behavior") != "Isolated" or step.get("invert"):
            raise VocabExtendError("--widen-split knows Split steps that isolate their matches only: merge "
                                   "without --widen-split")
        regex = step["pattern"]["Regex"]
        return [_split_step(f"{wide_alternative(scripts, 'llama')}|{regex}")]
    return [step]


def widened_pre_tokenizer(pre_tokenizer: dict[str, Any] | None, scripts: ScriptSet) -> dict[str, Any]:
    """The base's pre-tokenizer (as in ``tokenizer.json``) with every letter-splitting step widened."""
    if not pre_tokenizer:
        raise VocabExtendError("the base has no pre-tokenizer to widen: merge without --widen-split")
    steps = pre_tokenizer["pretokenizers"] if pre_tokenizer.get("type") == "Sequence" else [pre_tokenizer]
    widened = [new for step in steps for new in _widen_step(copy.deepcopy(step), scripts)]
    if widened == steps:
        raise VocabExtendError("the base's pre-tokenizer has no letter split to widen: merge without --widen-split")
    return {"type": "Sequence", "pretokenizers": widened}


def widen_split(tokenizer: Tokenizer, scripts: ScriptSet) -> Tokenizer:
    """A copy of ``tokenizer`` whose pre-tokenizer keeps runs of ``scripts``' characters whole."""
    data = json.loads(tokenizer.to_str())
    data["pre_tokenizer"] = widened_pre_tokenizer(data.get("pre_tokenizer"), scripts)
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))


def chars_per_pretoken(tokenizer: Tokenizer, lines: list[str]) -> float | None:
    """Characters per pre-token of ``lines``: the most chars/token any vocabulary reaches with this split."""
    splitter = tokenizer.pre_tokenizer
    if splitter is None or not lines:
        return None
    normalizer = tokenizer.normalizer
    pieces = 0
    for line in lines:
        text = normalizer.normalize_str(line) if normalizer is not None else line
        pieces += len(splitter.pre_tokenize_str(text))
    return round(sum(map(len, lines)) / pieces, 4) if pieces else None


# vocab_extend.json's extra keys: the script the split was widened for, and the base's own pre-tokenizer.
WIDENED_KEY, BASE_SPLIT_KEY = "widened_split", "base_pre_tokenizer"


def widened_metadata(loaded: Any) -> dict[str, Any]:
    """What ``vocab_extend.json`` records of a widened split (nothing when the split is the base's): the
    languages it was widened for (``th``, or ``th+vi`` for several) and the base's own pre-tokenizer."""
    if loaded.widened is None:
        return {}
    return {WIDENED_KEY: loaded.widened_for,
            BASE_SPLIT_KEY: json.loads(loaded.tokenizer.to_str()).get("pre_tokenizer")}


def widened_for(folder: Path) -> str | None:
    """The language whose script the split of a merged ``folder`` was widened for, or None."""
    extra = read_json_object(Path(folder) / "vocab_extend.json", missing_ok=True).get("extra") or {}
    return extra.get(WIDENED_KEY)


def restore_split(tokenizer: Tokenizer, folder: Path) -> Tokenizer:
    """``tokenizer`` (read from a merged ``folder``) with the base's own pre-tokenizer back, when widened."""
    extra = read_json_object(Path(folder) / "vocab_extend.json", missing_ok=True).get("extra") or {}
    if WIDENED_KEY not in extra:
        return tokenizer
    data = json.loads(tokenizer.to_str())
    data["pre_tokenizer"] = extra.get(BASE_SPLIT_KEY)
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
