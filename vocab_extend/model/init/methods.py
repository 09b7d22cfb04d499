"""The init methods: name -> how the new rows of one embedding matrix are made, and an optional refinement.

A method is an :class:`InitMethod`: ``rows`` gets a :class:`NewRows` (one matrix, already resized, with the
base pieces of every new token) and returns one float32 row per new token; :func:`.embeddings.init_embeddings`
calls it for the input matrix, then for the output matrix of an untied model (the seeded generator is shared,
in that order), and writes the rows. ``refine``, when set, then improves the written rows from texts in which
the new tokens occur (``--corpus``) and returns what it did for ``init_embeddings.json``.

Adding a method is one function here and one line in :data:`METHODS`, plus its line of ``--help`` in
:data:`.config.METHOD_HELP` (which the command line reads without importing torch).

Example, ``mean`` for a token whose base pieces are ids 3 and 5::

    NewRows(weight, base_vocab_size=8, pieces=[[3, 5]], ...)  ->  mean(...)[0] == (weight[3] + weight[5]) / 2
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import accumulate
from typing import Callable, Sequence

import torch

from .config import InitConfig
from .distill import DistillConfig
from .distill.rows import distill_embeddings

HEWITT_EPSILON = 1e-9  # transformers' scale of the covariance in resize_token_embeddings(mean_resizing=True)


@dataclass(frozen=True)
class NewRows:
    """What a method sees of one embedding matrix."""

    weight: torch.Tensor  # the resized matrix: rows below base_vocab_size are the base model's
    base_vocab_size: int
    pieces: list[list[int]]  # base pieces of each new token, in id order (empty: a special token)
    output: bool  # the output matrix of an untied model (False: the input matrix, or the one tied matrix)
    std: float  # the model's initializer_range
    generator: torch.Generator  # seeded by --seed

    @property
    def base(self) -> torch.Tensor:
        return self.weight[:self.base_vocab_size]

    @property
    def fallback(self) -> torch.Tensor:
        """The mean of the base rows (float32): the row of a token with no pieces."""
        return self.base.float().mean(0)


# (model, tokenizer, base_tokenizer, base_vocab_size, texts, config) -> what it did, with a "notes" list
Refine = Callable[..., dict]


@dataclass(frozen=True)
class InitMethod:
    """One entry of :data:`METHODS`: the new rows of a matrix, then (optionally) a refinement of them."""

    rows: Callable[[NewRows], torch.Tensor]
    refine: Refine | None = None  # needs texts in which the new tokens occur


def mean_rows(weight: torch.Tensor, pieces: Sequence[Sequence[int]], fallback: torch.Tensor) -> torch.Tensor:
    """Row i = mean of ``weight[pieces[i]]`` (float32); empty lists get ``fallback``."""
    if not pieces:
        return weight.new_zeros((0, weight.shape[1]), dtype=torch.float32)
    flat = torch.tensor([i for p in pieces for i in p], dtype=torch.long, device=weight.device)
    lengths = [len(p) for p in pieces]
    offsets = torch.tensor([0, *accumulate(lengths)][:-1], dtype=torch.long, device=weight.device)
    rows = torch.nn.functional.embedding_bag(flat, weight.float(), offsets, mode="mean")
    empty = torch.tensor([n == 0 for n in lengths], device=weight.device)
    rows[empty] = fallback
    return rows


def mean(rows: NewRows) -> torch.Tensor:
    """The mean of the token's base pieces' rows."""
    return mean_rows(rows.weight, rows.pieces, rows.fallback)


def first(rows: NewRows) -> torch.Tensor:
    """Input rows as ``mean``; output rows from the first piece alone."""
    pieces = [p[:1] for p in rows.pieces] if rows.output else rows.pieces
    return mean_rows(rows.weight, pieces, rows.fallback)


def hewitt(rows: NewRows) -> torch.Tensor:
    """Draws from N(mean, 1e-9 × covariance) of the base rows; the mean when that is not positive definite."""
    base = rows.base.double()
    center = base.mean(0)
    centered = base - center
    covariance = centered.T @ centered / base.shape[0]
    noise = torch.randn((len(rows.pieces), base.shape[1]), generator=rows.generator, dtype=torch.float64)
    factor, info = torch.linalg.cholesky_ex(HEWITT_EPSILON * covariance)
    if int(info) != 0:
        return center.expand(len(rows.pieces), -1).float()
    return (center + noise @ factor.T).float()


def normal(rows: NewRows) -> torch.Tensor:
    """N(0, ``initializer_range``)."""
    return torch.randn((len(rows.pieces), rows.weight.shape[1]), generator=rows.generator) * rows.std


def distill(model, tokenizer, base_tokenizer, base_vocab_size: int, texts: Sequence[str],
            config: InitConfig) -> dict:
    """Token distillation from the frozen base model (:mod:`.distill`), from the ``mean`` rows."""
    return asdict(distill_embeddings(model, tokenizer, base_tokenizer, base_vocab_size, texts,
                                     config.distill or DistillConfig(seed=config.seed)))


METHODS: dict[str, InitMethod] = {
    "mean": InitMethod(mean),
    "first": InitMethod(first),
    "hewitt": InitMethod(hewitt),
    "random": InitMethod(normal),
    "distill": InitMethod(mean, refine=distill),
}
