"""The training sample: a deterministic, content-hashed share of the training documents within a budget of
characters, so that training (and everything after it) holds a bounded amount of text at any corpus size.

The rule: every document gets a 64-bit key, the BLAKE2b hash of its UTF-8 text salted with ``--seed`` (a
different hash from the held-out share's, :mod:`vocab_extend.heldout`). The sample is the documents of smallest
key, taken in key order while their characters stay within the budget (the first one always, so a sample is
never empty: at most budget + one document). One pass, while reading: a heap holds the current sample and
drops its largest keys whenever the budget is passed; a dropped key becomes the cut-off, and a later document
with a key at or above it is never taken (the documents before it in key order already fill the budget). So
the heap always holds exactly the seen documents below the cut-off, memory never exceeds the budget plus one
document whatever the corpus size, and no second pass or size estimate is needed.

- **Same inputs, same sample**: the keys depend on the text and the seed only.
- **Order**: the sample of a corpus is the same set of documents however its lines or files are ordered, split
  or concatenated. A corpus within the budget is passed on whole, in its own order (so a small corpus trains
  exactly as without sampling); a sampled one is passed on in key order, so that reordering the input changes
  nothing at all, not even the order the trainer sees.
- **Duplicates** share their key: copies of a line are all in the sample or all out of it.
- ``budget_chars = 0`` keeps everything (``--sample-chars 0``); the caller then streams the corpus to the
  trainer as it reads it.

Worked example: a budget of 10 characters over five documents of 4 characters each. The keys order them,
say, ``c < a < e < b < d``; ``c`` and ``a`` fit (8 characters), ``e`` would make 12: the sample is
``[c, a]`` in key order, whatever order the five were read in.

>>> docs = ["aaaa", "bbbb", "cccc", "dddd", "eeee"]
>>> sampler = BudgetSampler(10)
>>> for doc in docs:
...     sampler.add(doc)
>>> picked = sampler.documents()
>>> sum(map(len, picked)) <= 10, len(picked)
(True, 2)
>>> again = BudgetSampler(10)
>>> for doc in reversed(docs):
...     again.add(doc)
>>> again.documents() == picked
True
>>> small = BudgetSampler(100)
>>> for doc in docs:
...     small.add(doc)
>>> small.documents() == docs, small.stats.whole
(True, True)
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import asdict, dataclass
from typing import Iterable

from ..errors import VocabExtendError

# Characters of text the new-language model is trained on by default (per language; a --multilingual joint
# model: in all). Chosen from bench/results/sample_curve.json: on the shared Japanese corpora (4.6M characters
# to train on) held-out Wikipedia chars/token with 1M characters is 99.0% (SentencePiece) and 99.1%
# (byte-level) of training on all 4.6M, with 2M 99.5% (SentencePiece); synthetic corpora gave the same figure
# for 20 MB (about 7M Japanese characters) as for 400 MB. 10M is twice the largest measured point, and bounds
# the byte-level trainer (whose memory grows with the text) at about 1.6 GB of peak memory.
DEFAULT_SAMPLE_CHARS = 10_000_000
_PERSON = b"vx-train-sample"  # BLAKE2b personalisation: a different hash from the held-out share's


def sample_key(text: str, seed: int = 0) -> int:
    """The document's 64-bit sampling key (smaller keys are sampled first).

    >>> sample_key("一行目") == sample_key("一行目"), sample_key("一行目") == sample_key("一行目", seed=1)
    (True, False)
    """
    salt = seed.to_bytes(8, "big")
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8, salt=salt,
                                          person=_PERSON).digest(), "big")


def check_budget(value: int) -> int:
    """``--sample-chars``: 0 (everything) or a positive number of characters; anything else is one sentence.

    >>> check_budget(0), check_budget(5_000_000)
    (0, 5000000)
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VocabExtendError(f"--sample-chars {value} must be 0 (train on everything) or a positive number of "
                               f"characters (default {DEFAULT_SAMPLE_CHARS:,})")
    return value


@dataclass
class SampleStats:
    """What was read and what was sampled, for the console and ``report.json``'s ``sample``."""

    budget_chars: int
    read_documents: int = 0
    read_chars: int = 0
    sampled_documents: int = 0
    sampled_chars: int = 0

    @property
    def whole(self) -> bool:
        """Whether the sample is the whole corpus (within the budget, or no budget)."""
        return self.sampled_documents == self.read_documents

    def as_dict(self) -> dict[str, int | bool]:
        return {**asdict(self), "whole": self.whole}

    def sentence(self) -> str:
        """One line for the console.

        >>> print(SampleStats(100, 10, 1_000, 1, 90).sentence())
        read 10 documents (1,000 characters); trained on a content-hashed sample of 1 (90 characters, budget 100)
        >>> print(SampleStats(100, 10, 60, 10, 60).sentence())
        read 10 documents (60 characters); trained on all of them
        """
        read = f"read {self.read_documents:,} documents ({self.read_chars:,} characters)"
        if self.whole:
            return f"{read}; trained on all of them"
        return (f"{read}; trained on a content-hashed sample of {self.sampled_documents:,} ({self.sampled_chars:,} "
                f"characters, budget {self.budget_chars:,})")


class BudgetSampler:
    """The documents of smallest :func:`sample_key` within ``budget_chars`` (see the module docstring).

    Holds at most the budget plus one document: ``held_chars`` says how much it holds now.
    """

    def __init__(self, budget_chars: int, seed: int = 0) -> None:
        if budget_chars < 1:
            raise ValueError("a sampler needs a positive budget; a budget of 0 streams the corpus instead")
        self.stats = SampleStats(budget_chars)
        self.seed = seed
        self.held_chars = 0
        self._heap: list[tuple[int, int, str]] = []  # (-key, -order, text): the largest key on top
        self._cutoff: int | None = None  # the smallest key dropped so far: nothing at or above it is taken

    def add(self, doc: str) -> None:
        """Read one document: keep it if it belongs to the sample so far, dropping what no longer does."""
        order = self.stats.read_documents
        self.stats.read_documents += 1
        self.stats.read_chars += len(doc)
        key = sample_key(doc, self.seed)
        if self._cutoff is not None and key >= self._cutoff:
            return
        heapq.heappush(self._heap, (-key, -order, doc))
        self.held_chars += len(doc)
        while self.held_chars > self.stats.budget_chars and len(self._heap) > 1:
            negative_key, _, dropped = heapq.heappop(self._heap)
            self.held_chars -= len(dropped)
            self._cutoff = -negative_key  # keys only shrink as the largest are dropped

    def add_all(self, docs: Iterable[str]) -> "BudgetSampler":
        for doc in docs:
            self.add(doc)
        return self

    def documents(self) -> list[str]:
        """The sample: in reading order when nothing was dropped, else in key order (then reading order)."""
        whole = self._cutoff is None
        entries = sorted(self._heap, key=(lambda e: -e[1]) if whole else (lambda e: (-e[0], -e[1])))
        self.stats.sampled_documents = len(entries)
        self.stats.sampled_chars = self.held_chars
        return [entry[2] for entry in entries]

