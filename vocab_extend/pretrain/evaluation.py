"""Evaluation during a run: bits per byte of the eval corpora, at the steps the ``eval`` section names.

:class:`Validator` evaluates at step 0 (``at_start``), every ``every`` steps and at the last step, with
:func:`vocab_extend.model.evaluate.bpb.bits_per_byte`, the code of ``vocab-extend evaluate-bpb``.

**The eval budget is sized to the run** (:meth:`EvalConfig.budget`): each eval corpus is scored on its first
``bytes_per_token`` × (the tokens the run trains) UTF-8 bytes, at least ``min_bytes`` (a figure stable
enough to follow) and at most ``max_bytes`` (the ceiling; none: no ceiling), the same text at every
evaluation of the run and in the comparison with the base model. A short trial run therefore spends seconds,
not minutes, evaluating; ``bytes_per_token: null`` scores ``max_bytes`` whatever the run's length. The
budget depends on the run's planned steps only, so a resumed run scores the same text.

>>> v = Validator.__new__(Validator); v.every, v.total, v.at_start = 10, 25, True
>>> [s for s in range(26) if v.should_validate(s)]
[0, 10, 20, 25]
>>> EvalConfig(max_bytes=20_000).budget(4 * 4 * 128)  # 4 steps of 4 × 128 tokens: 2 bytes per token
4096
>>> EvalConfig(max_bytes=20_000).budget(20 * 4 * 128), EvalConfig(max_bytes=20_000).budget(256)
(20000, 4000)
>>> EvalConfig(max_bytes=1_500).describe_budget(384)
'eval: the first 1,500 bytes of each eval corpus (2 per training token × 384 tokens, raised to eval_min_bytes 4,000, capped at eval_max_bytes 1,500; --eval-bytes-per-token null scores eval_max_bytes 1,500)'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import torch

from ..corpus import parse_named_spec
from ..errors import VocabExtendError
from ..model.evaluate.bpb import bits_per_byte, truncate_to_bytes
from .dist import Dist
from .metrics import MetricsLogger
from .parallel import is_sharded

HELD_OUT = "held out"  # the label of a training corpus's held-out share (as merge labels it)


@dataclass
class EvalConfig:
    """The ``eval`` section: which corpora are scored, when and how."""

    # flat (top-level) names of these settings, as in older configs
    FLAT: ClassVar[dict[str, str]] = {"corpora": "eval", "every": "eval_every", "max_bytes": "eval_max_bytes",
                                      "min_bytes": "eval_min_bytes", "bytes_per_token": "eval_bytes_per_token",
                                      "batch_size": "eval_batch_size", "block_size": "eval_block_size",
                                      "at_start": "eval_at_start"}

    corpora: dict[str, str] = field(default_factory=dict)  # name -> corpus spec
    every: int = 50  # steps; 0: only at the end
    max_bytes: int | None = 200_000  # per eval corpus, the most the budget sized to the run may be (null: no limit)
    min_bytes: int = 4_000  # per eval corpus, the least the budget sized to the run may be (a stable figure)
    bytes_per_token: float | None = 2.0  # eval budget per corpus per training token; null: always max_bytes
    batch_size: int = 8  # windows per evaluation batch
    block_size: int | None = None  # bits-per-byte window; default: the model's context, at most 1024
    at_start: bool = True  # evaluate at step 0, before training
    compare_base: bool = True  # at the end, score the model an init-model start was made from (report.md)

    def check(self) -> None:
        """Each setting in range; one sentence each."""
        limits = {"every": 0, "max_bytes": 1, "min_bytes": 1, "bytes_per_token": 0, "batch_size": 1, "block_size": 2}
        for name, low in limits.items():
            value = getattr(self, name)
            if value is not None and value < low:
                need = {0: "zero or more", 1: "positive"}.get(low, f"at least {low}")
                raise VocabExtendError(f"{self.FLAT[name]} must be {need}, not {value!r}")

    def budget(self, train_tokens: int) -> int | None:
        """UTF-8 bytes scored of each eval corpus in a run that trains ``train_tokens`` tokens:
        ``bytes_per_token × train_tokens``, at least ``min_bytes``, at most ``max_bytes`` (``None``: all)."""
        if self.bytes_per_token is None:
            return self.max_bytes
        sized = max(self.min_bytes, round(self.bytes_per_token * train_tokens))
        return sized if self.max_bytes is None else min(sized, self.max_bytes)

    def sized(self, train_tokens: int) -> "EvalConfig":
        """This section with the run's budget as its ``max_bytes`` (and nothing left to size)."""
        return dataclasses.replace(self, max_bytes=self.budget(train_tokens), bytes_per_token=None)

    def describe_budget(self, train_tokens: int) -> str:
        """The line a run prints about its eval budget: how much, and why."""
        budget = self.budget(train_tokens)
        amount = "every byte" if budget is None else f"the first {budget:,} bytes"
        if self.bytes_per_token is None:
            return f"eval: {amount} of each eval corpus (eval_max_bytes; eval_bytes_per_token is null)"
        sized = round(self.bytes_per_token * train_tokens)
        why = f"{self.bytes_per_token:g} per training token × {train_tokens:,} tokens"
        if sized < self.min_bytes:
            why += f", raised to eval_min_bytes {self.min_bytes:,}"
        if budget is not None and budget < max(sized, self.min_bytes):
            why += f", capped at eval_max_bytes {budget:,}"
        return (f"eval: {amount} of each eval corpus ({why}; --eval-bytes-per-token null scores "
                f"eval_max_bytes{'' if self.max_bytes is None else f' {self.max_bytes:,}'})")


def heldout_names(train: list[str], heldout_fraction: float, corpora: Mapping[str, str]) -> list[str]:
    """The eval corpora that are a training corpus's held-out share, named as the run names them: after the
    training corpus, ``NAME (held out)`` when an eval corpus is already called ``NAME``.

    >>> heldout_names(["ja=corpora/ja", "en=corpora/en"], 0.1, {"en": "other/en"})
    ['ja', 'en (held out)']
    """
    if heldout_fraction <= 0:
        return []
    names = dict.fromkeys(parse_named_spec(value)[0] for value in train)
    return [name if name not in corpora else f"{name} ({HELD_OUT})" for name in names]


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
    """Bits per byte of every eval corpus, computed by rank 0 (every rank when the model is sharded), on the
    run's eval budget (:meth:`EvalConfig.budget`): ``config`` is the section sized to the run."""

    def __init__(self, config: EvalConfig, total_steps: int, dist: Dist, tokenizer, eval_docs: dict[str, list[str]],
                 metrics: MetricsLogger, autocast: Callable[[], Any], *, train_tokens: int) -> None:
        self.config, self.dist, self.tokenizer, self.metrics = config.sized(train_tokens), dist, tokenizer, metrics
        self.docs = {name: truncate_to_bytes(texts, self.config.max_bytes) for name, texts in eval_docs.items()}
        self.every, self.total, self.at_start, self.autocast = config.every, total_steps, config.at_start, autocast
        if self.docs:
            metrics.message(config.describe_budget(train_tokens))

    def should_validate(self, step: int) -> bool:
        if step == 0:
            return self.at_start
        return bool(self.every and step % self.every == 0) or step == self.total

    def validate(self, model: torch.nn.Module, step: int) -> None:
        """Every rank calls this (a sharded model needs them all to run forward); rank 0 records."""
        if self.docs and (self.dist.main or is_sharded(model)):
            bpb, loss, size, docs = {}, {}, {}, {}
            for name, texts in self.docs.items():
                with self.autocast():
                    result = bits_per_byte(model, self.tokenizer, texts, block_size=self.config.block_size,
                                           batch_size=self.config.batch_size, device=self.dist.device,
                                           progress=self.metrics.progress and self.dist.main,
                                           desc=f"eval {name} at step {step}", leave=False)
                bpb[name], loss[name] = round(result.bpb, 6), round(result.loss, 6)
                size[name], docs[name] = result.bytes, len(texts)
            self.metrics.write({"kind": "eval", "step": step, "bpb": bpb, "loss": loss, "bytes": size,
                                "documents": docs})
            model.train()
            self.metrics.message(f"step {step}: bits per byte " + ", ".join(f"{k} {v:.4f}" for k, v in bpb.items()))
        self.dist.barrier()
