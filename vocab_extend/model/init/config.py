"""What ``init-model`` is asked to do: the init methods' names and the :class:`InitConfig`.

Light to import (no torch), so that ``vocab-extend init-model --help`` lists the methods and a bad value is
refused before any model library loads. The methods themselves are in :mod:`.methods`, under the same names
(a test keeps the two in step).

>>> InitConfig(method="mean").method
'mean'
>>> InitConfig(method="average")
Traceback (most recent call last):
...
vocab_extend.errors.VocabExtendError: unknown --method 'average': choose one of mean, first, hewitt, random, distill
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import VocabExtendError
from .distill import DistillConfig

# name -> what ``--help`` says of it; the rules are in embeddings.py's docstring, the code in methods.py
METHOD_HELP: dict[str, str] = {
    "mean": "mean of their base pieces' rows; the default",
    "first": "output rows from the first piece",
    "hewitt": "mean of all rows + tiny noise",
    "random": "N(0, init range)",
    "distill": "mean, then distilled from the base model on --corpus",
}


@dataclass
class InitConfig:
    """How to grow and fill the embeddings.

    ``pad_to_multiple_of``: embedding rows are padded up to a multiple of it (``None``: the merge metadata's
    value, 0 or 1: no padding); ``seed`` drives ``hewitt``, ``random`` and ``distill``; ``corpus`` (a corpus
    spec) and ``distill`` (budget) are used by ``distill`` only.
    """

    method: str = "mean"
    pad_to_multiple_of: int | None = None
    seed: int = 0
    corpus: str | None = None
    distill: DistillConfig | None = None

    def __post_init__(self) -> None:
        if self.method not in METHOD_HELP:
            raise VocabExtendError(f"unknown --method {self.method!r}: choose one of {', '.join(METHOD_HELP)}")
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 0:
            raise VocabExtendError("--pad-to-multiple-of must be a positive integer (or 0 for no padding)")
        if not 0 <= self.seed < 2**32:
            raise VocabExtendError(f"--seed must be a whole number in [0, 2**32), not {self.seed}")
