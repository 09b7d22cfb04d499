"""The run's log: ``metrics.jsonl`` (+ the ``report_to`` trackers), the progress bar and log lines, on rank 0 only.

:class:`MetricsLogger` writes a training record every ``log_every`` steps and at the last step; the
``logging`` section (:class:`LoggingConfig`) says how often and where (:mod:`.trackers`: TensorBoard, W&B).

>>> LoggingConfig().targets(), LoggingConfig(tensorboard=False).targets()
(['tensorboard'], [])
>>> LoggingConfig(report_to=["tensorboard", "wandb"], tensorboard=False).targets()
['wandb']
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tqdm.auto import tqdm

from ..console import ticking
from ..errors import VocabExtendError
from .dist import Dist
from .outputs import MetricsLog
from .trackers import check_available, open_trackers, report_targets


@dataclass
class LoggingConfig:
    """The ``logging`` section."""

    FLAT: ClassVar[dict[str, str]] = {"every": "log_every"}  # flat (top-level) names, as in older configs

    every: int = 1  # steps between training records
    progress: bool = True  # progress bars (training, every evaluation) on stderr
    report_to: list[str] | str = field(default_factory=lambda: ["tensorboard"])  # tensorboard, wandb (offline), none
    tensorboard: bool = True  # older key: false takes tensorboard out of report_to

    def check(self) -> None:
        if not isinstance(self.every, int) or self.every < 1:
            raise VocabExtendError(f"log_every must be a positive whole number, not {self.every!r}")
        check_available(self.targets())

    def targets(self) -> list[str]:
        """The trackers the run reports to: ``report_to``, less TensorBoard when ``tensorboard`` is false."""
        names = report_targets(self.report_to)
        return names if self.tensorboard else [n for n in names if n != "tensorboard"]


class MetricsLogger:
    """``metrics.jsonl`` (+ the trackers), the progress bar and log lines, on rank 0 only."""

    def __init__(self, config: LoggingConfig, total_steps: int, dist: Dist, out: Path, start_step: int,
                 resumed: bool) -> None:
        self.dist, self.every, self.total, self.started = dist, config.every, total_steps, time.perf_counter()
        self.progress = dist.main and config.progress  # whether bars are shown (evaluations' too)
        resume_step = self.resumed_from = start_step if resumed else None
        self.log = None
        if dist.main:
            self.log = MetricsLog(out, resume_step=resume_step,
                                  trackers=open_trackers(config.targets(), out, resume_step))
        self.bar = tqdm(total=self.total, initial=start_step, desc="pretraining", unit="step",
                        disable=not self.progress, dynamic_ncols=True)
        self._ticker = ticking(self.bar)  # a step can take many seconds on a CPU: the bar's clock keeps moving
        self._ticker.__enter__()
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

    def elapsed(self) -> float:
        """Seconds since this process started logging the run (before its step-0 evaluation)."""
        return time.perf_counter() - self.started

    def summary(self, values: dict[str, Any]) -> None:
        """The run summary (:mod:`.summary`) for the trackers that keep one (W&B)."""
        if self.log is not None:
            self.log.summary(values)

    def last_eval(self) -> dict[str, float] | None:
        """Bits per byte of the latest evaluation written in this process, for the model card."""
        return self._last_eval

    def close(self) -> None:
        self._ticker.__exit__(None, None, None)
        self.bar.close()
        if self.log is not None:
            self.log.close()
