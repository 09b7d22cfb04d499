"""Continued pretraining of an extended model: staged training, bits-per-byte eval, exact resume, DDP or
FSDP2, DCP checkpoints, weighted mixtures, streamed data that resumes by seeking.

From Python::

    from vocab_extend.pretrain import load_config, pretrain
    model_dir = pretrain(load_config("configs/pico-smoke.yaml", {"max_steps": "10"}))

From the shell: ``vocab-extend pretrain --config configs/pico-smoke.yaml --max-steps 10``.
"""

from .config import PretrainConfig, StageConfig, load_config
from .loop import pretrain

__all__ = ["PretrainConfig", "StageConfig", "load_config", "pretrain"]
