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


def make_optimizer(config: PretrainConfig, stage: StageConfig, params, no_decay: set[int], steps: int):
    """AdamW over ``params`` (weight decay on tensors of 2+ dimensions not in ``no_decay``) and its schedule."""
    decay = config.stage_setting(stage, "weight_decay")
    groups = [
        {"params": [p for p in params if p.ndim >= 2 and id(p) not in no_decay], "weight_decay": decay},
        {"params": [p for p in params if p.ndim < 2 or id(p) in no_decay], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=config.stage_setting(stage, "lr"), betas=tuple(config.adam_betas),
                                  eps=config.adam_eps)
    warmup = min(config.stage_setting(stage, "warmup_steps"), steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(warmup, steps, config.stage_setting(stage, "min_lr_ratio")))
    return optimizer, scheduler
