"""Embeddings and lm_head held as two parameters: the base rows and the rows a merge added.

:func:`split_rows` replaces the input embedding and the lm_head of a Hugging Face causal LM by
:class:`SplitEmbedding` / :class:`SplitLinear`, which keep ``base`` (rows ``0 .. base_rows-1``) and
``new`` (the rest) as separate parameters and join them at forward time. With ``base`` frozen
(``requires_grad=False``) no gradient and no optimiser state exist for the base rows, and they cannot change
whatever the optimiser does (weight decay included): they are bit-identical by construction, under DDP and
FSDP alike. A tied model (one matrix for both) gets one ``base`` and one ``new``, shared by both modules, as
the tied weight was. :func:`join_rows` puts plain ``nn.Embedding`` / ``nn.Linear`` modules back (tied again
if they were), so the saved model is an ordinary Hugging Face model.

>>> import torch
>>> e = torch.nn.Embedding(5, 2); w = e.weight.detach().clone()
>>> s = SplitEmbedding.from_embedding(e, 3)
>>> (tuple(s.base.shape), tuple(s.new.shape), s.base.requires_grad, s.new.requires_grad)
((3, 2), (2, 2), False, True)
>>> torch.equal(s(torch.tensor([0, 4])), w[[0, 4]])
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VocabExtendError


def _halves(weight: torch.Tensor, base_rows: int, train_base: bool) -> tuple[nn.Parameter, nn.Parameter]:
    base = nn.Parameter(weight.detach()[:base_rows].clone(), requires_grad=train_base)
    new = nn.Parameter(weight.detach()[base_rows:].clone(), requires_grad=True)
    return base, new


class SplitEmbedding(nn.Module):
    """``nn.Embedding`` over ``cat([base, new])``; keeps the padding index and any ``embed_scale``."""

    def __init__(self, base: nn.Parameter, new: nn.Parameter, padding_idx: int | None = None,
                 embed_scale: float | torch.Tensor | None = None) -> None:
        super().__init__()
        self.base, self.new, self.padding_idx, self.embed_scale = base, new, padding_idx, embed_scale

    @classmethod
    def from_embedding(cls, module: nn.Embedding, base_rows: int, train_base: bool = False) -> "SplitEmbedding":
        if not isinstance(module, nn.Embedding) or module.max_norm is not None:
            raise VocabExtendError(
                f"the input embedding is a {type(module).__name__}, not a plain nn.Embedding: this stage cannot "
                "split its rows")
        return cls(*_halves(module.weight, base_rows, train_base), module.padding_idx,
                   getattr(module, "embed_scale", None))

    @property
    def num_embeddings(self) -> int:
        return self.base.shape[0] + self.new.shape[0]

    @property
    def embedding_dim(self) -> int:
        return self.base.shape[1]

    def joined(self) -> torch.Tensor:
        return torch.cat([self.base, self.new], dim=0)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = F.embedding(input_ids, self.joined(), self.padding_idx)
        return out if self.embed_scale is None else out * self.embed_scale


class SplitLinear(nn.Module):
    """The lm_head ``x @ cat([base, new]).T (+ bias)``."""

    def __init__(self, base: nn.Parameter, new: nn.Parameter, bias: nn.Parameter | None = None) -> None:
        super().__init__()
        self.base, self.new = base, new
        self.bias = bias

    @property
    def out_features(self) -> int:
        return self.base.shape[0] + self.new.shape[0]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, torch.cat([self.base, self.new], dim=0), self.bias)


def split_rows(model: nn.Module, base_rows: int, *, train_base: bool = False) -> list[nn.Parameter]:
    """Replace embeddings and lm_head of ``model`` in place; return the ``new`` parameters (one when tied)."""
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    tied = head is not None and head.weight is embed.weight
    split = SplitEmbedding.from_embedding(embed, base_rows, train_base)
    model.set_input_embeddings(split)
    if head is None:
        return [split.new]
    if tied:
        model.set_output_embeddings(SplitLinear(split.base, split.new, head.bias))
        return [split.new]
    if not isinstance(head, nn.Linear):
        raise VocabExtendError(f"the lm_head is a {type(head).__name__}, not nn.Linear: this stage cannot split its rows")
    model.set_output_embeddings(SplitLinear(*_halves(head.weight, base_rows, train_base), head.bias))
    return [split.new, model.get_output_embeddings().new]


def has_split_rows(model: nn.Module) -> bool:
    return isinstance(model.get_input_embeddings(), SplitEmbedding)


def join_rows(model: nn.Module) -> nn.Module:
    """Plain ``nn.Embedding`` / ``nn.Linear`` back in place of the split modules (re-tied when shared)."""
    split = model.get_input_embeddings()
    if not isinstance(split, SplitEmbedding):
        return model
    head = model.get_output_embeddings()
    embed = nn.Embedding(split.num_embeddings, split.embedding_dim, padding_idx=split.padding_idx,
                         device=split.base.device, dtype=split.base.dtype)
    embed.weight = nn.Parameter(split.joined().detach(), requires_grad=False)
    if split.embed_scale is not None:
        embed.embed_scale = split.embed_scale
    model.set_input_embeddings(embed)
    if isinstance(head, SplitLinear):
        linear = nn.Linear(head.base.shape[1], head.out_features, bias=head.bias is not None,
                           device=head.base.device, dtype=head.base.dtype)
        if head.base is split.base:
            linear.weight = embed.weight
        else:
            linear.weight = nn.Parameter(torch.cat([head.base, head.new]).detach(), requires_grad=False)
        if head.bias is not None:
            linear.bias = head.bias
        model.set_output_embeddings(linear)
    return model
