"""Each stage's optimiser: AdamW (decay on matrices only) with linear warmup then cosine decay."""

from __future__ import annotations

import math

import torch

from .config import PretrainConfig, StageConfig


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


def make_optimizer(config: PretrainConfig, stage: StageConfig, params, no_decay: set[int], steps: int,
                   lr_of: dict[int, float] | None = None):
    """AdamW over ``params`` and its schedule: weight decay on tensors of 2+ dimensions not in ``no_decay``,
    the stage's lr except for parameters whose id ``lr_of`` maps to their own."""
    decay, lr, lr_of = config.stage_setting(stage, "weight_decay"), config.stage_setting(stage, "lr"), lr_of or {}
    groups: dict[tuple[float, float], list] = {}
    for p in params:
        key = (decay if p.ndim >= 2 and id(p) not in no_decay else 0.0, lr_of.get(id(p), lr))
        groups.setdefault(key, []).append(p)
    optimizer = torch.optim.AdamW([{"params": ps, "weight_decay": d, "lr": r} for (d, r), ps in groups.items()],
                                  lr=lr, betas=tuple(config.adam_betas), eps=config.adam_eps)
    warmup = min(config.stage_setting(stage, "warmup_steps"), steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(warmup, steps, config.stage_setting(stage, "min_lr_ratio")))
    return optimizer, scheduler
