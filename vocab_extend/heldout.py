"""A fixed, content-hashed share of documents kept out of training, so figures can be measured on text the
tokenizer (or model) never saw.

A document is held out when the first 64 bits of its BLAKE2b hash, read as a number, fall below
``fraction × 2⁶⁴``: the same text is held out in every run, on every machine, whatever the order or the
other documents — and the same rule serves ``merge --heldout-fraction`` and pretraining's
``heldout_fraction``.

>>> heldout(doc_key("一行目"), 0.0), heldout(doc_key("一行目"), 0.999999)
(False, True)
"""

from __future__ import annotations

import hashlib


def doc_key(text: str) -> int:
    """A 64-bit content hash of a document."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def heldout(key: int, fraction: float) -> bool:
    """Whether the document with hash ``key`` belongs to the held-out share ``fraction``."""
    return key < fraction * 2**64
