"""The training sample: a deterministic, content-hashed share of the training documents within a budget of
characters, so that training (and everything after it) holds a bounded amount of text at any corpus size.

The rule: every document gets a 64-bit key, the BLAKE2b hash of its UTF-8 text salted with ``--seed`` (a
different hash from the held-out share's, :mod:`vocab_extend.heldout`). A corpus within the budget (copies of a
line counted each time) is passed on whole, in its own order, copies included: a small corpus trains exactly as
without sampling. A larger one is sampled: its distinct documents of smallest key, in key order, while their
characters stay within the budget (the first one always, so a sample is never empty: at most budget + one
document). Copies of a line share its key, so they are all in the sample or all out of it; the budget counts a
line once, and the trainer gets each sampled line as many times as the corpus has it, next to each other, so
the sample keeps the corpus's frequencies (training on each distinct line once instead made short, often
repeated sentences 3% worse on held-out text of their kind in ``bench/scaling.py``).

One pass, while reading: the sampler holds the corpus in reading order until the budget is passed, then a heap
of the distinct documents so far, which drops its largest keys whenever the budget is passed; a dropped key
becomes the cut-off, and a later document with a key at or above it is never taken (the documents before it in
key order already fill the budget). So memory never exceeds the budget plus one document whatever the corpus
size, and no second pass or size estimate is needed.

- **Same inputs, same sample**: the keys depend on the text and the seed only.
- **Order**: the sample of a corpus is the same set of documents however its lines or files are ordered, split
  or concatenated, and a sampled one is passed on in key order, so that reordering the input changes nothing at
  all, not even the order the trainer sees.
- **Parts**: the sample of a corpus read in parts, each part sampled on its own (with the cut-off so far) and the
  parts' samples passed to one sampler in reading order (:meth:`BudgetSampler.absorb`), is the sample of the
  whole corpus read at once: a document of the whole's sample is within the budget in its part too, and each
  part passes on the document at its cut-off as well, so the one where the whole stops fitting is seen.
- The verification sample (:class:`Collector`) is the training sample's distinct documents of smallest key.
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
>>> for doc in reversed(docs + docs):  # every line twice: the same lines, each with its copy
...     again.add(doc)
>>> again.documents() == [doc for doc in picked for _ in range(2)], again.stats.duplicates
(True, 2)
>>> small = BudgetSampler(100)
>>> for doc in docs:
...     small.add(doc)
>>> small.documents() == docs, small.stats.whole
(True, True)
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator

from ..errors import VocabExtendError

# Characters of text the new-language model is trained on by default (per language; a --multilingual joint
# model: in all). Chosen from bench/results/sample_curve.json: on the shared Japanese corpora (4.6M characters
# to train on) held-out Wikipedia chars/token with 1M characters is 99.0% (SentencePiece) and 99.1%
# (byte-level) of training on all 4.6M, with 2M 99.5% (SentencePiece); synthetic corpora gave the same figure
# for 20 MB (about 7M Japanese characters) as for 400 MB. 10M is twice the largest measured point, and bounds
# the byte-level trainer (whose memory grows with the text) at about 1.6 GB of peak memory.
DEFAULT_SAMPLE_CHARS = 10_000_000
# Corpora up to this many characters are kept in memory (the SentencePiece support check); larger ones are not.
KEEP_CHARS = 50_000_000
_PERSON = b"vx-train-sample"  # BLAKE2b personalisation: a different hash from the held-out share's


class KeyHasher:
    """:func:`sample_key` for one seed, with the salted hash state built once (copying it is faster than
    building it for every document; the keys are the same)."""

    def __init__(self, seed: int = 0) -> None:
        self._state = hashlib.blake2b(digest_size=8, salt=seed.to_bytes(8, "big"), person=_PERSON)

    def __call__(self, text: str) -> int:
        state = self._state.copy()
        state.update(text.encode("utf-8"))
        return int.from_bytes(state.digest(), "big")


def sample_key(text: str, seed: int = 0) -> int:
    """The document's 64-bit sampling key (smaller keys are sampled first).

    >>> sample_key("一行目") == sample_key("一行目"), sample_key("一行目") == sample_key("一行目", seed=1)
    (True, False)
    >>> KeyHasher(1)("一行目") == sample_key("一行目", seed=1)
    True
    """
    return KeyHasher(seed)(text)


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
    """What was read and what was sampled, for the console and ``report.json``'s ``sample``: a sampled corpus
    gives ``sampled_documents`` distinct documents of ``sampled_chars`` characters (the budget's count) and the
    trainer also gets their ``duplicates`` further copies (0 when the corpus passes whole)."""

    budget_chars: int
    read_documents: int = 0
    read_chars: int = 0
    sampled_documents: int = 0
    sampled_chars: int = 0
    duplicates: int = 0

    @property
    def whole(self) -> bool:
        """Whether the sample is the whole corpus as read (within the budget, or no budget)."""
        return self.sampled_documents + self.duplicates == self.read_documents

    def as_dict(self) -> dict[str, int | bool]:
        return {**asdict(self), "whole": self.whole}

    def sentence(self) -> str:
        """One line for the console.

        >>> print(SampleStats(100, 10, 1_000, 1, 90).sentence())
        read 10 documents (1,000 characters); trained on a content-hashed sample of 1 (90 characters, budget 100)
        >>> print(SampleStats(100, 10, 1_000, 1, 90, 3).sentence())  # doctest: +NORMALIZE_WHITESPACE
        read 10 documents (1,000 characters); trained on a content-hashed sample of 1 distinct document
        (90 characters, budget 100) and its 3 copies
        >>> print(SampleStats(100, 10, 60, 10, 60).sentence())
        read 10 documents (60 characters); trained on all of them
        """
        read = f"read {self.read_documents:,} documents ({self.read_chars:,} characters)"
        if self.whole:
            return f"{read}; trained on all of them"
        chars = f"({self.sampled_chars:,} characters, budget {self.budget_chars:,})"
        if not self.duplicates:
            return f"{read}; trained on a content-hashed sample of {self.sampled_documents:,} {chars}"
        one = self.sampled_documents == 1
        return (f"{read}; trained on a content-hashed sample of {self.sampled_documents:,} distinct "
                f"document{'' if one else 's'} {chars} and {'its' if one else 'their'} {self.duplicates:,} copies")


@dataclass
class SamplePart:
    """What a sampler passes on to another (:meth:`BudgetSampler.part`, :meth:`BudgetSampler.absorb`): its
    documents with their keys (in reading order, copies included, while ``whole``; else distinct, any order,
    with the number of further copies of each read in ``copies``), and what it read."""

    entries: list[tuple[int, str]] = field(default_factory=list)
    whole: bool = True
    copies: dict[int, int] = field(default_factory=dict)
    read_documents: int = 0
    read_chars: int = 0


class BudgetSampler:
    """The documents of smallest :func:`sample_key` within ``budget_chars`` (see the module docstring);
    ``cutoff``: a cut-off already known (from another part of the same corpus).

    Holds at most the budget plus one document: ``held_chars`` says how much it holds now.
    """

    def __init__(self, budget_chars: int, seed: int = 0, cutoff: int | None = None) -> None:
        if budget_chars < 1:
            raise ValueError("a sampler needs a positive budget; a budget of 0 streams the corpus instead")
        self.stats = SampleStats(budget_chars)
        self.key = KeyHasher(seed)
        self.held_chars = 0
        self.cutoff = cutoff  # the smallest key dropped so far: nothing at or above it is taken
        self._whole: list[tuple[int, str]] | None = [] if cutoff is None else None  # reading order, while it fits
        self._heap: list[tuple[int, str]] = []  # (-key, text), distinct: the largest key on top
        self._keys: set[int] = set()
        self._copies: dict[int, int] = {}  # key -> further copies read, for the held documents that have any
        self._boundary: tuple[int, str] | None = None  # the document at the cut-off, for another sampler

    def add(self, doc: str) -> None:
        """Read one document: keep it if it belongs to the sample so far, dropping what no longer does."""
        self.stats.read_documents += 1
        self.stats.read_chars += len(doc)
        self._take(self.key(doc), doc)

    def add_all(self, docs: Iterable[str]) -> "BudgetSampler":
        for doc in docs:
            self.add(doc)
        return self

    def _take(self, key: int, doc: str) -> None:
        if self._whole is not None:
            self._whole.append((key, doc))
            self.held_chars += len(doc)
            if self.held_chars > self.stats.budget_chars:
                self._distinct()
            return
        if key in self._keys:
            self._copies[key] = self._copies.get(key, 0) + 1
            return
        if self.cutoff is not None and key >= self.cutoff:
            return
        heapq.heappush(self._heap, (-key, doc))
        self._keys.add(key)
        self.held_chars += len(doc)
        self._trim()

    def _distinct(self) -> None:
        """From holding everything in reading order to sampling: one copy of each document, on a heap."""
        entries, self._whole = self._whole or [], None
        self.held_chars = 0
        for key, doc in entries:
            if key in self._keys:
                self._copies[key] = self._copies.get(key, 0) + 1
            else:
                self._keys.add(key)
                self._heap.append((-key, doc))
                self.held_chars += len(doc)
        heapq.heapify(self._heap)
        self._trim()

    def _trim(self) -> None:
        while self.held_chars > self.stats.budget_chars and len(self._heap) > 1:
            negative_key, dropped = heapq.heappop(self._heap)
            self._keys.discard(-negative_key)
            self._copies.pop(-negative_key, None)
            self._boundary = (-negative_key, dropped)
            self.held_chars -= len(dropped)
            self.cutoff = -negative_key  # keys only shrink as the largest are dropped

    def part(self) -> SamplePart:
        """What this sampler holds, for another sampler to :meth:`absorb`: with the document at the cut-off,
        which tells the other sampler where this part's documents stopped fitting the budget (without it, a
        later, shorter document could fit there and be taken where one sampler reading everything stops)."""
        whole = self._whole is not None
        entries = self._whole if self._whole is not None else [(-key, doc) for key, doc in self._heap]
        if self._boundary is not None:
            entries = [*entries, self._boundary]
        return SamplePart(list(entries), whole, dict(self._copies), self.stats.read_documents, self.stats.read_chars)

    def absorb(self, part: SamplePart) -> None:
        """Add the sample of the next part of the corpus, as if its documents were read here."""
        if not part.whole and self._whole is not None:
            self._distinct()
        for key, doc in part.entries:
            self._take(key, doc)
        for key, copies in part.copies.items():
            if key in self._keys:
                self._copies[key] = self._copies.get(key, 0) + copies
        self.stats.read_documents += part.read_documents
        self.stats.read_chars += part.read_chars

    def smallest(self, count: int) -> list[str]:
        """The ``count`` distinct documents of smallest key in the sample, in the order :meth:`documents` gives
        them (the verification sample: the same documents however the corpus was read or split).

        >>> sampler = BudgetSampler(100).add_all(["b", "a", "b", "c"])
        >>> sorted(sampler.smallest(2)) == sorted(sorted({"a", "b", "c"}, key=sample_key)[:2])
        True
        """
        if self._whole is None:
            return [doc for _, doc in sorted(heapq.nlargest(count, self._heap), reverse=True)]
        first: dict[int, int] = {}
        for order, (key, _) in enumerate(self._whole):
            first.setdefault(key, order)
        return [self._whole[order][1] for order in sorted(order for _, order in heapq.nsmallest(count, first.items()))]

    def documents(self) -> list[str]:
        """The sample: the corpus in reading order when it fits, else the distinct documents in key order, each
        with its copies (the same string again: copies take no memory of their own)."""
        if self._whole is not None:
            docs = [doc for _, doc in self._whole]
            self.stats.duplicates = 0
        else:
            distinct = sorted(self._heap, reverse=True)
            docs = [doc for negative_key, doc in distinct for _ in range(1 + self._copies.get(-negative_key, 0))]
            self.stats.duplicates = len(docs) - len(distinct)
        self.stats.sampled_documents = len(docs) - self.stats.duplicates
        self.stats.sampled_chars = self.held_chars
        return docs


class Collector:
    """Passes documents through, counting them; ``sample`` is the verification sample: the ``sample_size``
    distinct documents of smallest sampling key (:class:`.sampling.KeyHasher`), in reading order, kept here
    while the corpus streams (``--sample-chars 0``, ``--new-model``) and taken from the training sample when
    there is one (:func:`.inputs.sampled_texts`), so that it is the same however the corpus is read. ``everything``
    is what the support check may re-read: the training sample, or, when the corpus streams whole to the
    trainer, all of it while it is within :data:`KEEP_CHARS`."""

    def __init__(self, sample_size: int, seed: int) -> None:
        self.everything: list[str] | None = []
        self.sample_size = sample_size
        self.seen = 0
        self.chars = 0
        self.sampling: SampleStats | None = None  # what was read and sampled, once training read it
        self.keyed = True  # whether documents passing through are candidates for the verification sample
        self.chosen: list[str] | None = None  # the verification sample, once a training sample chose it
        self._kept_chars = 0
        self._key = KeyHasher(seed)
        self._heap: list[tuple[int, int, str]] = []  # (-key, -order, text): the largest key on top
        self._keys: set[int] = set()

    @property
    def sample(self) -> list[str]:
        if self.chosen is not None:
            return self.chosen
        return [entry[2] for entry in sorted(self._heap, key=lambda entry: -entry[1])]

    def _consider(self, doc: str) -> None:
        if self.sample_size < 1:
            return
        key = self._key(doc)
        if key in self._keys:
            return
        if len(self._heap) >= self.sample_size:
            if key >= -self._heap[0][0]:
                return
            self._keys.discard(-heapq.heappop(self._heap)[0])
        heapq.heappush(self._heap, (-key, -self.seen, doc))
        self._keys.add(key)

    def __call__(self, docs: Iterable[str]) -> Iterator[str]:
        for doc in docs:
            self.seen += 1
            self.chars += len(doc)
            if self.keyed:
                self._consider(doc)
            if self.everything is not None:
                self._kept_chars += len(doc)
                self.everything.append(doc)
                if self._kept_chars > KEEP_CHARS:
                    self.everything = None
            yield doc
