"""Deriving the merges that make each new token from the base's own segmentation (guarantees 2–4).

For each new-model token, in the new model's merge order, its bytes are segmented with the merges accepted so
far; two pieces give the merge that makes it; more pieces first get an admissible intermediate (the
byte→character merges new characters need). Since every later merge ranks higher, a token's own bytes always
encode to that token.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from tokenizers import Tokenizer
from tqdm.auto import tqdm

from ...scripts import ScriptSet
from .alphabet import admissible_reason, token_text
from ..files import merge_pairs


def bpe_segment(word: str, ranks: Mapping[tuple[str, str], int]) -> list[str]:
    """Byte-level BPE of one pre-token: repeatedly merge the lowest-ranked adjacent pair (leftmost on ties).

    >>> bpe_segment("abc", {("b", "c"): 0, ("a", "bc"): 1, ("a", "b"): 2})
    ['abc']
    """
    symbols = list(word)
    while len(symbols) > 1:
        best_rank, best_i = None, -1
        for i in range(len(symbols) - 1):
            rank = ranks.get((symbols[i], symbols[i + 1]))
            if rank is not None and (best_rank is None or rank < best_rank):
                best_rank, best_i = rank, i
        if best_rank is None:
            break
        symbols[best_i : best_i + 2] = [symbols[best_i] + symbols[best_i + 1]]
    return symbols


@dataclass
class _Derivation:
    base_vocab: dict[str, int]
    ranks: dict[tuple[str, str], int]
    scripts: ScriptSet
    split_digits: bool
    max_examples: int
    added: list[str] = field(default_factory=list)
    merges: list[tuple[str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    intermediates: int = 0

    def __post_init__(self) -> None:
        self.known = set(self.base_vocab)

    def skip(self, reason: str, token: str) -> None:
        self.skipped[reason] += 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < self.max_examples:
            bucket.append(token_text(token))

    def add(self, token: str, left: str, right: str) -> None:
        self.ranks[(left, right)] = len(self.ranks)
        self.merges.append((left, right))
        self.added.append(token)
        self.known.add(token)

    def _intermediate(self, pieces: list[str]) -> bool:
        """Add the first adjacent pair of ``pieces`` that is admissible, new and live on its own."""
        for left, right in zip(pieces, pieces[1:]):
            joined = left + right
            if joined in self.known or admissible_reason(joined, self.scripts, split_digits=self.split_digits):
                continue
            if bpe_segment(joined, self.ranks) == [left, right]:
                self.add(joined, left, right)
                self.intermediates += 1
                return True
        return False

    def offer(self, token: str) -> None:
        if token in self.base_vocab:
            self.skip("already_in_base", token)
            return
        if token in self.known:  # already added as an intermediate step
            return
        reason = admissible_reason(token, self.scripts, split_digits=self.split_digits)
        if reason is None and not set(token) <= self.known:
            reason = "byte_not_in_base"  # the base cannot encode one of its bytes (e.g. SmolLM2 and 0xF1)
        if reason:
            self.skip(reason, token)
            return
        pieces = bpe_segment(token, self.ranks)
        while len(pieces) > 2:
            if not self._intermediate(pieces):
                self.skip("unreachable", token)
                return
            pieces = bpe_segment(token, self.ranks)
        self.add(token, pieces[0], pieces[1])


def derive_merges(
    base: Tokenizer,
    candidates: Iterable[str],
    scripts: ScriptSet,
    *,
    split_digits: bool,
    max_examples: int = 8,
    show_progress: bool = False,
) -> _Derivation:
    """New tokens and the merges that make them from the base's own segmentation (module docstring, 2-4)."""
    ranks = {pair: rank for rank, pair in enumerate(merge_pairs(base))}
    vocab = json.loads(base.to_str())["model"]["vocab"]
    derivation = _Derivation(vocab, ranks, scripts, split_digits, max_examples)
    for token in tqdm(list(candidates), desc="deriving merges", unit=" tokens", disable=not show_progress):
        derivation.offer(token)
    return derivation
