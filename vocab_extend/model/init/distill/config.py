"""The budget and settings of token distillation (:mod:`vocab_extend.model.init.distill`).

Light to import (no torch), so that ``init-model --help`` prints its defaults and a bad value is refused in
well under a second. Every value is checked when the config is made:

>>> DistillConfig(steps=-1)
Traceback (most recent call last):
...
vocab_extend.errors.VocabExtendError: --distill-steps must be 0 or more, not -1
"""

from __future__ import annotations

from dataclasses import dataclass

from ....errors import VocabExtendError


@dataclass
class DistillConfig:
    """The budget and settings of token distillation.

    Measured with the defaults on SmolLM2-135M + 15k Japanese tokens, 2 idle CPU cores: 512 contexts, 48k
    teacher tokens (3.8 min), 64 steps of 16 windows with the tied output loss (7.2 s each), the transfer to
    the other 9,962 rows and the cap: 12.5 min in all.
    """

    contexts_per_token: int = 4
    """A context window is kept while it holds a new token seen in fewer than this many kept windows."""
    max_contexts: int = 512
    """At most this many context windows in all (the main cost: one teacher pass over each)."""
    context_length: int = 32
    """Extended-tokenizer tokens per context window (the teacher reads about 3x as many base pieces)."""
    steps: int = 64
    """Optimiser steps (each on ``batch_size`` windows, cycling through the windows in a seeded order)."""
    batch_size: int = 16
    """Context windows per optimiser step."""
    lr: float = 1e-3
    """Adam learning rate of the new input rows."""
    output_ridge: float = 0.1
    """Shrinkage of the output-row fit towards ``mean``, relative to the mean squared norm of the contexts."""
    max_corpus_bytes: int = 4_000_000
    """Only the first this many UTF-8 bytes of the corpus are tokenized and searched for contexts."""
    max_output_contexts: int = 64
    """At most this many occurrences per token in its output-row fit."""
    tied_output_weight: float = 1.0
    """Tied models: weight of the output loss (log-probabilities) beside the hidden-state loss (both relative
    to their values at ``mean``); 0 distils the input side only."""
    base_samples: int = 32
    """Tied models: texts sampled from the base model (and kept when the extended tokenizer reads them without
    a new token) on which the mass the new rows take is penalised; 0 turns that term off."""
    base_sample_length: int = 64
    """Tokens per base-model sample."""
    base_leak_weight: float = 10.0
    """Tied models: weight of that penalty (nats per base-language token) inside the output loss."""
    base_logit_cap: float = -8.0
    """Tied models: on the base-model samples no distilled row may score more than this above the base
    vocabulary's log-normaliser (or than its ``mean`` row did); rows that do are pulled back towards ``mean``."""
    transfer: bool = True
    """Give the new tokens that no context reached the distilled rows' correction (a ridge map from ``mean``
    rows to distilled ones, ``distill_transfer.py``) instead of ``mean``; on tied models they pass the cap too."""
    transfer_ridge: float = 1.0
    """Shrinkage of that map, relative to the variance of the ``mean`` rows (0: plain least squares)."""
    seed: int = 0
    """Seed of the context choice and of the batch order."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        names = {"contexts_per_token": "--distill-contexts", "max_contexts": "max_contexts",
                 "context_length": "context_length", "batch_size": "batch_size",
                 "max_corpus_bytes": "max_corpus_bytes", "max_output_contexts": "max_output_contexts"}
        for name, option in names.items():
            if getattr(self, name) < 1:
                raise VocabExtendError(f"{option} must be at least 1, not {getattr(self, name)}")
        if self.base_samples < 0 or self.base_sample_length < 1 or not self.base_leak_weight >= 0:
            raise VocabExtendError("base_samples must be 0 or more, base_sample_length at least 1 and "
                                   "base_leak_weight 0 or more")
        if self.steps < 0:
            raise VocabExtendError(f"--distill-steps must be 0 or more, not {self.steps}")
        if not self.lr > 0 or not self.output_ridge >= 0 or not self.tied_output_weight >= 0:
            raise VocabExtendError(f"distill lr must be positive, output_ridge and tied_output_weight 0 or more, "
                                   f"not {self.lr}, {self.output_ridge}, {self.tied_output_weight}")
        if not self.transfer_ridge >= 0:
            raise VocabExtendError(f"transfer_ridge must be 0 or more, not {self.transfer_ridge}")
