"""A fixed, content-hashed share of documents kept out of training, so figures can be measured on text the
tokenizer (or model) never saw.

A document is held out when the first 64 bits of its BLAKE2b hash, read as a number, fall below
``fraction × 2⁶⁴``: the same text is held out in every run, on every machine, whatever the order or the
other documents — and the same rule serves ``merge --heldout-fraction`` and pretraining's
``heldout_fraction``. :func:`bootstrap_interval` says how far a figure measured on held-out documents could
move on other documents like them.

>>> heldout(doc_key("一行目"), 0.0), heldout(doc_key("一行目"), 0.999999)
(False, True)
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np


def doc_key(text: str) -> int:
    """A 64-bit content hash of a document."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def heldout(key: int, fraction: float) -> bool:
    """Whether the document with hash ``key`` belongs to the held-out share ``fraction``."""
    return key < fraction * 2**64


# A bootstrap interval over documents: this many resamples, this seed, this coverage. Fixed, so the same
# documents give the same interval in every run.
BOOTSTRAP_RESAMPLES = 1_000
BOOTSTRAP_SEED = 0
BOOTSTRAP_CHUNK = 50  # resamples drawn at once (memory: CHUNK × documents indices)


def bootstrap_interval(columns: Sequence[Sequence[int]], statistic: Callable[..., np.ndarray], *,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                       level: float = 0.95) -> tuple[float, float] | None:
    """The ``level`` percentile bootstrap interval of ``statistic`` over documents, or ``None`` for fewer
    than two documents.

    ``columns``: one count per document each (characters, base tokens, extended tokens ...), resampled
    together (paired); ``statistic`` gets the resampled column sums as arrays (one value per resample) and
    returns the figure of each resample. Seeded: the same counts give the same interval.

    >>> chars, tokens = [10, 20, 30, 40], [5, 10, 10, 20]
    >>> low, high = bootstrap_interval([chars, tokens], lambda c, t: c / t)
    >>> low <= sum(chars) / sum(tokens) <= high
    True
    >>> bootstrap_interval([[3], [1]], lambda c, t: c / t) is None
    True
    """
    data = np.asarray(columns, dtype=np.int64)
    count = data.shape[1] if data.ndim == 2 else 0
    if count < 2:
        return None
    rng = np.random.Generator(np.random.PCG64(seed))
    values = []
    for start in range(0, resamples, BOOTSTRAP_CHUNK):
        picks = rng.integers(0, count, size=(min(BOOTSTRAP_CHUNK, resamples - start), count))
        sums = np.stack([np.take(column, picks).sum(axis=1) for column in data])  # data[:, picks].sum(2), faster
        with np.errstate(divide="ignore", invalid="ignore"):
            values.append(np.asarray(statistic(*sums), dtype=np.float64))
    figures = np.concatenate(values)
    figures = figures[np.isfinite(figures)]
    if not figures.size:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(figures, [tail, 100 - tail])
    return round(float(low), 4), round(float(high), 4)
