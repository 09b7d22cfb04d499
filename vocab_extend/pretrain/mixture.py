"""Weighted mixtures of training corpora: ``train_weights: {ja: 0.9, en: 0.1}``.

Positions of the run's block order are dealt in rounds of :data:`ROUND` blocks. Round ``j`` gives corpus
``c`` as many blocks as bring its running total closest to ``(j + 1) * ROUND * w_c`` (largest remainders,
ties to the earlier corpus), and the round's blocks are shuffled by a generator seeded with ``(seed, j)``.
So the corpus of every position, and how many blocks each corpus has given before it, follow from the
position alone: the order is the same on any number of processes, resume needs no replay, and the
realised shares never stray from the weights by more than one round's rounding. Each corpus reads its own
blocks in its own shuffled order (:class:`~.data.PackedBlocks`) and starts its next epoch on its own when it
runs out.

>>> allocate(100, [0.9, 0.1]), allocate(7, [0.5, 0.5])
([90, 10], [4, 3])
>>> m = Mixture(["ja", "en"], [0.9, 0.1], seed=0)
>>> m.counts(500)
{'ja': 450, 'en': 50}
>>> sorted(set(m.corpus_at(k) for k in range(100)))
[0, 1]
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import VocabExtendError

ROUND = 100  # blocks per round


def allocate(total: int, weights: list[float]) -> list[int]:
    """``total`` split into integers proportional to ``weights`` (largest remainder; ties to the first)."""
    s = float(sum(weights))
    exact = [total * w / s for w in weights]
    counts = [int(np.floor(x)) for x in exact]
    left = total - sum(counts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[:left]:
        counts[i] += 1
    return counts


def check_weights(train_names: list[str], weights: Mapping[str, object]) -> dict[str, float]:
    """The weights keyed by training-corpus name, validated; one sentence per problem."""
    out: dict[str, float] = {}
    for name, value in weights.items():
        if str(name) not in train_names:
            raise VocabExtendError(
                f"train_weights names {name!r}, which is no training corpus: name them as in train "
                f"({', '.join(dict.fromkeys(train_names))}), e.g. train: [ja=corpora/ja, en=corpora/en]")
        try:
            weight = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise VocabExtendError(f"train_weights: the weight of {name} must be a number, not {value!r}") from None
        if not weight >= 0 or weight == float("inf"):
            raise VocabExtendError(f"train_weights: the weight of {name} must be zero or more, not {value!r}")
        out[str(name)] = weight
    missing = [n for n in dict.fromkeys(train_names) if n not in out]
    if missing:
        raise VocabExtendError(f"train_weights gives no weight to the training corpus {missing[0]!r}: give every "
                               "corpus in train a weight")
    if sum(out.values()) <= 0:
        raise VocabExtendError("train_weights are all zero: give at least one corpus a positive weight")
    return out


class Mixture:
    """Which corpus serves each position of the run's block order, and how many blocks each has served."""

    def __init__(self, names: list[str], weights: list[float], seed: int) -> None:
        self.names, self.weights, self.seed = list(names), list(weights), seed
        self._round: tuple[int, np.ndarray] | None = None

    def _before(self, j: int) -> list[int]:
        """Blocks each corpus has given in rounds ``0 .. j-1``."""
        return allocate(j * ROUND, self.weights) if j > 0 else [0] * len(self.names)

    def _layout(self, j: int) -> np.ndarray:
        """The corpus of each position of round ``j``, shuffled."""
        if self._round is None or self._round[0] != j:
            here = [a - b for a, b in zip(self._before(j + 1), self._before(j))]
            layout = np.repeat(np.arange(len(self.names)), here)
            np.random.default_rng([self.seed, j]).shuffle(layout)
            self._round = (j, layout)
        return self._round[1]

    def corpus_at(self, k: int) -> int:
        j, r = divmod(k, ROUND)
        return int(self._layout(j)[r])

    def locate(self, k: int) -> tuple[int, int]:
        """(corpus, that corpus's own block index) of position ``k``."""
        j, r = divmod(k, ROUND)
        layout = self._layout(j)
        c = int(layout[r])
        return c, self._before(j)[c] + int((layout[:r] == c).sum())

    def counts(self, n: int) -> dict[str, int]:
        """Blocks each corpus has given in positions ``0 .. n-1``."""
        j, r = divmod(n, ROUND)
        before = self._before(j)
        if r:
            layout = self._layout(j)[:r]
            before = [b + int((layout == c).sum()) for c, b in enumerate(before)]
        return dict(zip(self.names, before))


class MixedBlocks:
    """The blocks of a mixture: the same interface as :class:`~.data.PackedBlocks` (``get``, ``tokens``)."""

    def __init__(self, mixture: Mixture, corpora: list, block_size: int, batch_size: int) -> None:
        self.mixture, self.corpora, self.block_size, self.batch_size = mixture, corpora, block_size, batch_size
        # streamed corpora are read in order, so every rank reads the whole global batch (see .stream)
        self.whole_batches = any(c.num_blocks is None for c in corpora)
        self._batch: tuple[int, np.ndarray] | None = None

    @property
    def num_blocks(self) -> int | None:
        sizes = [c.num_blocks for c in self.corpora]
        return None if None in sizes else sum(sizes)

    @property
    def tokens(self) -> int | None:
        return None if self.num_blocks is None else self.num_blocks * self.block_size

    def get(self, start: int, count: int) -> np.ndarray:
        if self.whole_batches:
            first = start - start % self.batch_size
            if self._batch is None or self._batch[0] != first:
                self._batch = (first, self._read(first, self.batch_size))
            return self._batch[1][start - first:start - first + count]
        return self._read(start, count)

    def _read(self, start: int, count: int) -> np.ndarray:
        rows = []
        for k in range(start, start + count):
            c, i = self.mixture.locate(k)
            rows.append(self.corpora[c].get(i, 1)[0])
        return np.stack(rows).astype(np.int64, copy=False)

    def counts(self, n: int) -> dict[str, int]:
        return self.mixture.counts(n)
