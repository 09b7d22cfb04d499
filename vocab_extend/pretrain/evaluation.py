"""Evaluation during a run: bits per byte of the eval corpora, at the steps the ``eval`` section names.

:class:`Validator` evaluates at step 0 (``at_start``), every ``every`` steps and at the last step, with
:func:`vocab_extend.model.evaluate.bpb.bits_per_byte`, the code of ``vocab-extend evaluate-bpb``.

>>> v = Validator.__new__(Validator); v.every, v.total, v.at_start = 10, 25, True
>>> [s for s in range(26) if v.should_validate(s)]
[0, 10, 20, 25]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import torch

from ..corpus import parse_named_spec
from ..errors import VocabExtendError
from ..model.evaluate.bpb import bits_per_byte
from .dist import Dist
from .metrics import MetricsLogger
from .parallel import is_sharded


@dataclass
class EvalConfig:
    """The ``eval`` section: which corpora are scored, when and how."""

    # flat (top-level) names of these settings, as in older configs
    FLAT: ClassVar[dict[str, str]] = {"corpora": "eval", "every": "eval_every", "max_bytes": "eval_max_bytes",
                                      "batch_size": "eval_batch_size", "block_size": "eval_block_size",
                                      "at_start": "eval_at_start"}

    corpora: dict[str, str] = field(default_factory=dict)  # name -> corpus spec
    every: int = 50  # steps; 0: only at the end
    max_bytes: int | None = 200_000  # per eval corpus
    batch_size: int = 8  # windows per evaluation batch
    block_size: int | None = None  # bits-per-byte window; default: the model's context, at most 1024
    at_start: bool = True  # evaluate at step 0, before training
    compare_base: bool = True  # at the end, score the model an init-model start was made from (report.md)

    def check(self) -> None:
        """Each setting in range; one sentence each."""
        limits = {"every": 0, "max_bytes": 1, "batch_size": 1, "block_size": 2}
        for name, low in limits.items():
            value = getattr(self, name)
            if value is not None and value < low:
                need = {0: "zero or more", 1: "positive"}.get(low, f"at least {low}")
                raise VocabExtendError(f"{self.FLAT[name]} must be {need}, not {value!r}")


def as_corpora(value: Any) -> dict[str, str]:
    """Eval corpora from a mapping of names to specs, a spec or a list of (``NAME=``) specs."""
    if isinstance(value, Mapping):
        bad = [v for v in value.values() if not isinstance(v, str)]
        if bad:
            raise VocabExtendError(f"eval maps names to corpus specs (text), not to {bad[0]!r}")
        return {str(k): v for k, v in value.items()}
    if isinstance(value, str):
        value = [value]
    if value is None or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
        return dict(parse_named_spec(v) for v in value or [])
    raise VocabExtendError(f"eval must be a corpus spec or a list of them (text), not {value!r}")


class Validator:
    """Bits per byte of every eval corpus, computed by rank 0 (every rank when the model is sharded)."""

    def __init__(self, config: EvalConfig, total_steps: int, dist: Dist, tokenizer, eval_docs: dict[str, list[str]],
                 metrics: MetricsLogger, autocast: Callable[[], Any]) -> None:
        self.config, self.dist, self.tokenizer, self.docs, self.metrics = config, dist, tokenizer, eval_docs, metrics
        self.every, self.total, self.at_start, self.autocast = config.every, total_steps, config.at_start, autocast

    def should_validate(self, step: int) -> bool:
        if step == 0:
            return self.at_start
        return bool(self.every and step % self.every == 0) or step == self.total

    def validate(self, model: torch.nn.Module, step: int) -> None:
        """Every rank calls this (a sharded model needs them all to run forward); rank 0 records."""
        if self.docs and (self.dist.main or is_sharded(model)):
            bpb, loss = {}, {}
            for name, texts in self.docs.items():
                with self.autocast():
                    result = bits_per_byte(model, self.tokenizer, texts, max_bytes=self.config.max_bytes,
                                           block_size=self.config.block_size, batch_size=self.config.batch_size,
                                           device=self.dist.device, progress=False)
                bpb[name], loss[name] = round(result.bpb, 6), round(result.loss, 6)
            self.metrics.write({"kind": "eval", "step": step, "bpb": bpb, "loss": loss})
            model.train()
            self.metrics.message(f"step {step}: bits per byte " + ", ".join(f"{k} {v:.4f}" for k, v in bpb.items()))
        self.dist.barrier()
