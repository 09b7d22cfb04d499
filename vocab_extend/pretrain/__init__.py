"""Continued pretraining of an extended model: staged training, bits-per-byte eval, exact resume, DDP or
FSDP2, DCP checkpoints, weighted mixtures, streamed data that resumes by seeking.

From Python::

    from vocab_extend.pretrain import load_config, pretrain
    model_dir = pretrain(load_config("configs/pico-smoke.yaml", {"max_steps": "10"}))

From the shell: ``vocab-extend pretrain --config configs/NAME.yaml --max-steps 10``.

The names below are imported when first used, so that importing a light module of the package
(``vocab_extend.pretrain.cli`` for ``--help``) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["PretrainConfig", "StageConfig", "load_config", "pretrain"]
_HOME = {"PretrainConfig": "config", "StageConfig": "config", "load_config": "config", "pretrain": "loop"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
