"""Encoding batches of documents at the ``tokenizers`` library's own speed, read straight into numpy.

:class:`BatchEncoder` gives exactly the ids of ``tokenizer(texts, add_special_tokens=False,
split_special_tokens=True)["input_ids"]`` (no special tokens added; text that spells a special token, such as
``"</s>"``, is text). For a tokenizer whose call is the plain one of a ``tokenizers``-backed (fast) tokenizer
it calls the Rust encoder itself, set as that call sets it for these arguments (special-token text is text;
no padding, no truncation): ``encode_batch_fast`` runs on all cores in the library's own threads, without
the GIL, and each batch's ids are read into one numpy array. Any other tokenizer goes through its call.

:func:`ahead` runs a function over a stream of batches one batch ahead, in a background thread (or a pool of
processes), so reading the next documents and using the last ids overlap the encoding; at most ``depth``
batches are in flight, so memory stays bounded whatever the stream's length.

>>> [(batch, lengths) for batch, lengths, _seconds in ahead(lambda b: [len(t) for t in b], [["ab", "c"], ["d"]])]
[(['ab', 'c'], [2, 1]), (['d'], [1])]
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")
IDS = np.int32  # token ids: every vocabulary has fewer than 2**31 entries


def _plain_fast_call(tokenizer: Any) -> bool:
    """Whether ``tokenizer(...)`` is transformers' own call of a ``tokenizers``-backed tokenizer, which hands
    the texts unchanged to the backend's ``encode_batch`` (no subclass rewrites the text or the ids)."""
    try:
        from transformers import PreTrainedTokenizerFast
        from transformers.tokenization_utils_base import PreTrainedTokenizerBase
    except ImportError:
        return False
    kind = type(tokenizer)
    return (isinstance(tokenizer, PreTrainedTokenizerFast)
            and kind.__call__ is PreTrainedTokenizerBase.__call__
            and getattr(kind, "_encode_plus", None) is getattr(PreTrainedTokenizerFast, "_encode_plus", False))


def rust_backend(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` behind ``tokenizer``, or ``None`` when its call is not the plain one of a
    fast tokenizer."""
    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend if isinstance(backend, Tokenizer) and _plain_fast_call(tokenizer) else None


def flatten(sequences: Sequence[Any], eos: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(all ids in order, each sequence's length)`` of ``sequences`` (id lists or ``tokenizers``
    encodings); with ``eos``, each sequence is followed by it in the ids (not in the lengths).

    >>> ids, lengths = flatten([[5, 6], [], [7]], eos=2)
    >>> ids.tolist(), lengths.tolist()
    ([5, 6, 2, 2, 7, 2], [2, 0, 1])
    """
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    lists = (getattr(s, "ids", s) for s in sequences)
    if eos is not None:
        lists = ([*ids, eos] for ids in lists)
    total = int(lengths.sum()) + (len(sequences) if eos is not None else 0)
    return np.fromiter(itertools.chain.from_iterable(lists), dtype=IDS, count=total), lengths


class BatchEncoder:
    """Encodes lists of texts as ``tokenizer(texts, add_special_tokens=False, split_special_tokens=True)``
    does; :meth:`run` is the library's call (run it in a background thread: the Rust encoder releases the
    GIL), :func:`flatten` reads its result."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.backend = rust_backend(tokenizer)

    @property
    def fast(self) -> bool:
        """Whether the Rust encoder is called directly."""
        return self.backend is not None

    def run(self, texts: list[str]) -> Sequence[Any]:
        """One call of the encoder on ``texts``: ``tokenizers`` encodings, or id lists."""
        backend = self.backend
        if backend is not None:  # set as the tokenizer's own call sets it, on every call, for these arguments
            backend.encode_special_tokens = True
            if backend.truncation is not None:
                backend.no_truncation()
            if backend.padding is not None:
                backend.no_padding()
            return backend.encode_batch_fast(texts, add_special_tokens=False)
        return self.tokenizer(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def ids(self, texts: list[str]) -> list[list[int]]:
        """The id list of each text."""
        return [list(getattr(s, "ids", s)) for s in self.run(texts)]


def chunks(texts: Iterable[str], size: int, chars: int) -> Iterator[list[str]]:
    """``texts`` in lists of ``size`` texts, or fewer when they reach ``chars`` characters (a longer text is a
    list of its own), so memory stays bounded whatever the stream's length.

    >>> list(chunks(["ab", "c", "defg", "h"], 3, 4))
    [['ab', 'c', 'defg'], ['h']]
    """
    batch: list[str] = []
    size_so_far = 0
    for text in texts:
        batch.append(text)
        size_so_far += len(text)
        if len(batch) == size or size_so_far >= chars:
            yield batch
            batch, size_so_far = [], 0
    if batch:
        yield batch


def _timed(func: Callable[[T], R], item: T) -> tuple[R, float]:
    start = time.perf_counter()
    result = func(item)
    return result, time.perf_counter() - start


def ahead(func: Callable[[T], R], items: Iterable[T], *, executor: Executor | None = None,
          depth: int = 2) -> Iterator[tuple[T, R, float]]:
    """``(item, func(item), seconds func took)`` for each of ``items``, in order; ``func`` runs in
    ``executor`` (default: one background thread) while the caller reads the next items and uses the last
    result. At most ``depth`` items are in flight (submitted and not yet given back)."""
    own = executor is None
    pool = ThreadPoolExecutor(max_workers=1) if executor is None else executor
    pending: deque = deque()
    try:
        for item in items:
            pending.append((item, pool.submit(_timed, func, item)))
            if len(pending) >= depth:
                first, future = pending.popleft()
                yield (first, *future.result())
        while pending:
            first, future = pending.popleft()
            yield (first, *future.result())
    finally:
        for _, future in pending:
            future.cancel()
        if own:
            pool.shutdown(wait=True)
