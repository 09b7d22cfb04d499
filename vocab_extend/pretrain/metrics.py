"""The run's log: ``metrics.jsonl`` (+ TensorBoard), the progress bar and log lines, on rank 0 only.

:class:`MetricsLogger` writes a training record every ``log_every`` steps and at the last step; the
``logging`` section (:class:`LoggingConfig`) says how often and where.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tqdm.auto import tqdm

from ..errors import VocabExtendError
from .dist import Dist
from .outputs import MetricsLog


@dataclass
class LoggingConfig:
    """The ``logging`` section."""

    FLAT: ClassVar[dict[str, str]] = {"every": "log_every"}  # flat (top-level) names, as in older configs

    every: int = 1  # steps between training records
    progress: bool = True  # a progress bar on stderr
    tensorboard: bool = True  # also write TensorBoard scalars

    def check(self) -> None:
        if not isinstance(self.every, int) or self.every < 1:
            raise VocabExtendError(f"log_every must be a positive whole number, not {self.every!r}")


class MetricsLogger:
    """``metrics.jsonl`` (+ TensorBoard), the progress bar and log lines, on rank 0 only."""

    def __init__(self, config: LoggingConfig, total_steps: int, dist: Dist, out: Path, start_step: int,
                 resumed: bool) -> None:
        self.dist, self.every, self.total = dist, config.every, total_steps
        self.log = MetricsLog(out, resume_step=start_step if resumed else None,
                              tensorboard=config.tensorboard) if dist.main else None
        self.bar = tqdm(total=self.total, initial=start_step, desc="pretraining", unit="step",
                        disable=not (dist.main and config.progress), dynamic_ncols=True)
        self._last_eval: dict[str, float] | None = None

    def message(self, text: str) -> None:
        if self.dist.main:
            tqdm.write(text, file=sys.stderr)

    def train_step(self, record: dict[str, Any]) -> None:
        """Record a finished step (``record["step"]`` counts from 1)."""
        if not self.dist.main:
            return
        step = record["step"]
        if step % self.every == 0 or step == self.total:
            self.log.write(record)
        self.bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}",
                             tok_s=f"{record['tokens_per_s']:,.0f}")
        self.bar.update(1)

    def write(self, record: dict[str, Any]) -> None:
        if self.dist.main:
            self.log.write(record)
            if record.get("kind") == "eval":
                self._last_eval = dict(record.get("bpb") or {})

    def last_eval(self) -> dict[str, float] | None:
        """Bits per byte of the latest evaluation written in this process, for the model card."""
        return self._last_eval

    def close(self) -> None:
        self.bar.close()
        if self.log is not None:
            self.log.close()
