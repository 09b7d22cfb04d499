"""Continued pretraining of an extended model: staged training, bits-per-byte eval, exact resume, DDP.

>>> from vocab_extend.pretrain import load_config, pretrain  # doctest: +SKIP
>>> pretrain(load_config("configs/pico-smoke.yaml", {"max_steps": "10"}))  # doctest: +SKIP
PosixPath('runs/pico-smoke/model')
"""

from .config import PretrainConfig, StageConfig, load_config
from .loop import pretrain

__all__ = ["PretrainConfig", "StageConfig", "load_config", "pretrain"]
