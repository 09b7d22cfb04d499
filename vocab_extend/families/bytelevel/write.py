"""The extended ``tokenizer.json``: base vocabulary, added tokens and merges unchanged, new ones appended;
and the way back, from an extended tokenizer to its base.
"""

from __future__ import annotations

import json

from tokenizers import Tokenizer

from ..files import merge_pairs


def first_new_id(base: Tokenizer) -> int:
    """One past the largest base id, added and special tokens included."""
    return max(base.get_vocab(with_added_tokens=True).values()) + 1


def build_extended(base: Tokenizer, added: list[str], merges: list[tuple[str, str]]) -> Tokenizer:
    """The base tokenizer with ``added`` appended after every base id and ``merges`` after every base merge."""
    data = json.loads(base.to_str())
    start = first_new_id(base)
    vocab = data["model"]["vocab"]
    # Added tokens beyond the model vocabulary (Llama-3's specials) get their ids from its size when loaded;
    # listing them in the vocabulary pins their ids once new tokens follow them.
    for special in data.get("added_tokens", []):
        vocab.setdefault(special["content"], special["id"])
    for offset, token in enumerate(added):
        vocab[token] = start + offset
    string_merges = bool(data["model"]["merges"]) and isinstance(data["model"]["merges"][0], str)
    data["model"]["merges"].extend(f"{a} {b}" if string_merges else [a, b] for a, b in merges)
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))


def cut_to_base(extended: Tokenizer, base_vocab_size: int) -> Tokenizer:
    """The base tokenizer inside an extended one: ids below ``base_vocab_size`` and the merges making them.

    Every added merge makes an added token (and no base merge does), so dropping the merges whose result is
    gone leaves exactly the base merge list.
    """
    data = json.loads(extended.to_str())
    vocab = {t: i for t, i in data["model"]["vocab"].items() if i < base_vocab_size}
    data["added_tokens"] = [t for t in data.get("added_tokens", []) if t["id"] < base_vocab_size]
    # Special tokens pinned in the vocabulary by build_extended go back to following it (Llama-3 layout).
    specials = {t["content"] for t in data["added_tokens"]}
    last_plain = max((i for t, i in vocab.items() if t not in specials), default=-1)
    data["model"]["vocab"] = {t: i for t, i in vocab.items() if t not in specials or i < last_plain}
    pairs = merge_pairs(extended)
    merges = data["model"]["merges"]
    data["model"]["merges"] = [m for m, (a, b) in zip(merges, pairs) if a + b in vocab]
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
