"""The byte-level family's GGUF vocabulary (llama.cpp's ``gpt2`` tokenizer).

The pieces of ``tokenizer.json`` spelled in the byte alphabet, the merges in rank order, and
``tokenizer.ggml.pre``, the name of the regex that splits text before the merges. llama.cpp's own converter
finds ``pre`` by hashing the ids of a test string that contains CJK characters; an extended tokenizer encodes
those differently, so the hash is unknown and the converter stops. Here the name is decided from the split
itself instead (:func:`pre_tokenizer_name`): the pre-tokenizer steps and regex in ``tokenizer.json``, else the
base recorded in ``vocab_extend.json``.

>>> pre_tokenizer_name({"type": "Sequence", "pretokenizers": [
...     {"type": "Digits", "individual_digits": True}, {"type": "ByteLevel", "use_regex": True}]})
'smollm'
>>> pre_tokenizer_name({"type": "Sequence", "pretokenizers": [
...     {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}}, {"type": "ByteLevel", "use_regex": False}]})
'llama-bpe'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import VocabExtendError
from ..files import folder_json
from ..interface import JsonDict, TokenizerVocab, TokenType
from .widen import widened_for

# The split regexes of the byte-level families llama.cpp knows by name (as their tokenizer.json spell them).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
               r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_SPLITS = {LLAMA3_SPLIT: "llama-bpe", QWEN2_SPLIT: "qwen2"}
# base names (alias, Hub id or path, lower-cased) -> llama.cpp pre-tokenizer, for a tokenizer.json that has
# no pre-tokenizer; first match wins
_BASE_NAMES = (("smollm", "smollm"), ("llama-3", "llama-bpe"), ("llama3", "llama-bpe"), ("qwen2", "qwen2"))
PRE_EXAMPLES = "smollm, llama-bpe, qwen2, gpt-2"


def pre_tokenizer_name(pre_tokenizer: dict[str, Any] | None, *, base: str = "") -> str | None:
    """llama.cpp's name for the split that ``pre_tokenizer`` (from ``tokenizer.json``) performs, or None.

    The regex decides, since the GGUF must split text as the HF folder does: Llama-3's and Qwen2's split
    regexes by their text, SmolLM's digits-one-by-one before GPT-2's regex by its ``Digits`` step, GPT-2's
    regex alone by a bare ``ByteLevel``. Only a ``tokenizer.json`` without a pre-tokenizer falls back to the
    base's name (or, for a GGUF base file, the name recorded in it). An unknown regex gives None.
    """
    steps = _flatten(pre_tokenizer)
    if not steps:
        lowered = base.lower()
        if lowered.endswith(".gguf") and Path(base).is_file():
            return _gguf_pre(Path(base))
        return next((pre for pattern, pre in _BASE_NAMES if pattern in lowered), None)
    kinds = [s.get("type") for s in steps]
    splits = [s.get("pattern", {}).get("Regex") for s in steps if s.get("type") == "Split"]
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        return _SPLITS.get(splits[0])
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    return None


def _merges(model: JsonDict) -> list[str]:
    merges = []
    for merge in model.get("merges") or []:
        pair = merge.split(" ") if isinstance(merge, str) else list(merge)
        if len(pair) != 2 or any(" " in part for part in pair):
            raise VocabExtendError(f"tokenizer.json has a merge that llama.cpp cannot store: {merge!r}")
        merges.append(" ".join(pair))
    return merges


def _vocab(data: JsonDict) -> TokenizerVocab:
    model = data.get("model") or {}
    by_id: dict[int, tuple[str, int]] = {i: (t, TokenType.NORMAL) for t, i in (model.get("vocab") or {}).items()}
    for added in data.get("added_tokens") or []:
        by_id[added["id"]] = (added["content"], TokenType.CONTROL if added.get("special") else TokenType.USER_DEFINED)
    tokens: list[str] = []
    types: list[int] = []
    for token_id in range(max(by_id) + 1 if by_id else 0):
        token, kind = by_id.get(token_id, (f"[PAD{token_id}]", TokenType.UNUSED))
        tokens.append(token)
        types.append(kind)
    return TokenizerVocab("gpt2", tokens, types, merges=_merges(model))


def gguf_vocab(folder: Path, pre: str | None, base: str) -> TokenizerVocab:
    """The ``gpt2`` vocabulary of the byte-level tokenizer in ``folder``; ``pre`` (else the split) names it."""
    widened = widened_for(folder)
    if widened is not None:
        raise VocabExtendError(
            f"the tokenizer in {folder} splits {widened} text with a widened pre-tokenizer (merge --widen-split), "
            "which no llama.cpp pre-tokenizer performs: a GGUF would tokenize differently; export a merge made "
            "without --widen-split")
    data = folder_json(folder, "tokenizer.json")
    vocab = _vocab(data)
    vocab.pre = pre or pre_tokenizer_name(data.get("pre_tokenizer"), base=base)
    if not vocab.pre:
        raise VocabExtendError(
            f"cannot tell which llama.cpp pre-tokenizer the byte-level tokenizer in {folder} uses "
            f"(base {base or 'unknown'!r}): pass --pre NAME (one of llama.cpp's names, e.g. {PRE_EXAMPLES})"
        )
    return vocab


def _flatten(pre_tokenizer: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not pre_tokenizer:
        return []
    if pre_tokenizer.get("type") == "Sequence":
        return [s for step in pre_tokenizer.get("pretokenizers") or [] for s in _flatten(step)]
    return [pre_tokenizer]


def _gguf_pre(path: Path) -> str | None:
    from gguf import GGUFReader

    try:
        field_ = GGUFReader(path).fields.get("tokenizer.ggml.pre")
        return str(field_.contents()) if field_ is not None else None
    except Exception:  # noqa: BLE001 - an unreadable base file just gives no hint
        return None
