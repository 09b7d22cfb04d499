"""Each stage's optimiser: AdamW (decay on matrices only) with linear warmup then cosine decay.

The ``optim`` section (:class:`OptimConfig`) holds the defaults; a stage may set its own ``lr``,
``warmup_steps``, ``min_lr_ratio`` and ``weight_decay`` (:meth:`OptimConfig.for_stage`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import VocabExtendError
from .stages import StageConfig

# Larger learning rates only diverge; refused up front rather than found as a NaN loss at step 2.
MAX_LR = 1.0
PER_STAGE = ("lr", "warmup_steps", "min_lr_ratio", "weight_decay")


@dataclass
class OptimConfig:
    """The ``optim`` section: AdamW and its schedule; each stage may override the first four."""

    lr: float = 3e-4  # peak learning rate (a stage may set its own)
    warmup_steps: int = 10  # linear warmup steps at the start of each stage
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.0  # AdamW weight decay (see the stage for what is exempt)
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.95])  # AdamW betas
    adam_eps: float = 1e-8  # AdamW epsilon
    max_grad_norm: float | None = 1.0  # clip the gradient norm to this; none: no clipping

    def for_stage(self, stage: StageConfig) -> dict[str, Any]:
        """``lr``, ``warmup_steps``, ``min_lr_ratio`` and ``weight_decay`` of ``stage``, inherited where unset.

        >>> OptimConfig(lr=0.1).for_stage(StageConfig("full", 3, warmup_steps=0))["lr"]
        0.1
        """
        return {k: getattr(self, k) if getattr(stage, k) is None else getattr(stage, k) for k in PER_STAGE}

    def check(self, stages: list[StageConfig]) -> None:
        """Every setting in range, here and in each stage; one sentence per problem."""
        for where, source in [("config", self), *((f"stage {s.name}", s) for s in stages)]:
            check_rates(where, source)
        betas = self.adam_betas
        if (not isinstance(betas, (list, tuple)) or len(betas) != 2
                or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas)):
            raise VocabExtendError(f"adam_betas must be two numbers in [0, 1), such as [0.9, 0.95], not {betas!r}")
        if self.adam_eps <= 0:
            raise VocabExtendError(f"adam_eps must be positive, not {self.adam_eps!r}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise VocabExtendError(
                f"max_grad_norm must be positive (or null for no clipping), not {self.max_grad_norm!r}")


def check_rates(where: str, source: Any) -> None:
    """The per-stage settings of ``source`` (the optim section or a stage) finite and in range."""
    for f in dataclasses.fields(source):
        value = getattr(source, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise VocabExtendError(f"{where}: {f.name} must be a finite number, not {value!r}")
    if source.lr is not None and source.lr <= 0:
        raise VocabExtendError(f"{where}: lr must be positive, not {source.lr!r}")
    if source.lr is not None and source.lr > MAX_LR:
        raise VocabExtendError(f"{where}: lr {source.lr!r} is far above any learning rate that trains: "
                               f"use at most {MAX_LR} (3e-4 is typical)")
    if source.warmup_steps is not None and source.warmup_steps < 0:
        raise VocabExtendError(f"{where}: warmup_steps must be zero or more, not {source.warmup_steps!r}")
    if source.min_lr_ratio is not None and not 0 <= source.min_lr_ratio <= 1:
        raise VocabExtendError(f"{where}: min_lr_ratio must be between 0 and 1, not {source.min_lr_ratio!r}")
    if source.weight_decay is not None and source.weight_decay < 0:
        raise VocabExtendError(f"{where}: weight_decay must be zero or more, not {source.weight_decay!r}")


def lr_lambda(warmup: int, total: int, min_ratio: float):
    """Linear warmup from 1/warmup to 1, then cosine from 1 down to ``min_ratio`` at ``total`` steps.

    >>> f = lr_lambda(2, 10, 0.1)
    >>> [round(f(s), 3) for s in (0, 1, 2, 10)]
    [0.5, 1.0, 1.0, 0.1]
    """

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def make_optimizer(optim: OptimConfig, stage: StageConfig, params, no_decay: set[int], steps: int,
                   lr_of: dict[int, float] | None = None):
    """AdamW over ``params`` and its schedule: weight decay on tensors of 2+ dimensions not in ``no_decay``,
    the stage's lr except for parameters whose id ``lr_of`` maps to their own."""
    settings, lr_of = optim.for_stage(stage), lr_of or {}
    decay, lr = settings["weight_decay"], settings["lr"]
    groups: dict[tuple[float, float], list] = {}
    for p in params:
        key = (decay if p.ndim >= 2 and id(p) not in no_decay else 0.0, lr_of.get(id(p), lr))
        groups.setdefault(key, []).append(p)
    optimizer = torch.optim.AdamW([{"params": ps, "weight_decay": d, "lr": r} for (d, r), ps in groups.items()],
                                  lr=lr, betas=tuple(optim.adam_betas), eps=optim.adam_eps)
    warmup = min(settings["warmup_steps"], steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(warmup, steps, settings["min_lr_ratio"]))
    return optimizer, scheduler
