"""Where a run's scalars go besides ``metrics.jsonl``: the ``logging.report_to`` list (as the HF Trainer's).

- ``tensorboard``: ``RUN/tensorboard/`` (torch's ``SummaryWriter``); ``tensorboard --logdir RUN/tensorboard``.
- ``wandb``: Weights & Biases, never a dependency: the package is imported only when a run asks for it, and
  a run that asks for it without it installed is refused in one sentence before anything is written. It
  runs **offline** unless the user set ``WANDB_MODE`` (files in ``RUN/wandb/``; ``wandb sync RUN/wandb/offline-run-*``
  uploads them later); ``WANDB_PROJECT`` names the project (default ``vocab-extend``), the run is named
  after its folder and carries the run's ``config.yaml`` as its config and the run summary
  (:mod:`.summary`) as its summary.

``report_to`` defaults to ``[tensorboard]``; the older key ``tensorboard: false`` takes TensorBoard out of
it (:meth:`.metrics.LoggingConfig.targets`). ``none`` (or an empty list) sends the scalars nowhere else,
``all`` everywhere.

>>> report_targets(None), report_targets("wandb"), report_targets("none")
(['tensorboard'], ['wandb'], [])
>>> report_targets(["tensorboard", "wandb", "wandb"])
['tensorboard', 'wandb']
>>> scalar_tags({"kind": "eval", "step": 4, "bpb": {"ja": 2.5}, "bytes": {"ja": 4096}})
{'eval/bpb/ja': 2.5}
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Protocol

import yaml

from ..errors import VocabExtendError

REPORT_TO = ("tensorboard", "wandb")
WANDB_PROJECT = "vocab-extend"
NOT_SCALARS = ("step", "kind", "stage", "bytes", "documents")  # record keys that are labels or sizes


class Tracker(Protocol):
    def scalars(self, tags: Mapping[str, float], step: int) -> None: ...

    def summary(self, values: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


def report_targets(report_to: str | list[str] | None) -> list[str]:
    """The trackers ``report_to`` names (a name, a list, ``none``, ``all``; unset: TensorBoard), checked: an
    unknown name is one sentence."""
    if report_to is None:
        return ["tensorboard"]
    names = [report_to] if isinstance(report_to, str) else list(report_to)
    if names in (["none"], ["all"]):
        return [] if names == ["none"] else list(REPORT_TO)
    for name in names:
        if name not in REPORT_TO:
            raise VocabExtendError(f"logging: report_to names {' and '.join(REPORT_TO)} (or none), not {name!r}")
    return list(dict.fromkeys(names))


def importable(name: str) -> bool:
    """Whether ``import name`` would find a module, without importing it."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def check_available(names: list[str]) -> None:
    """Refuse, in one sentence, a tracker whose package is not installed."""
    if "wandb" in names and not importable("wandb"):
        raise VocabExtendError("logging: report_to asks for wandb, which is not installed: pip install wandb, "
                               "or leave wandb out of report_to")


def scalar_tags(record: Mapping[str, Any]) -> dict[str, float]:
    """A ``metrics.jsonl`` record's numbers as tags: ``train/loss``, ``eval/bpb/ja`` (labels and sizes left out)."""
    tags: dict[str, float] = {}
    for key, value in record.items():
        if key in NOT_SCALARS:
            continue
        if isinstance(value, Mapping):
            tags.update({f"{record['kind']}/{key}/{name}": v for name, v in value.items()})
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            tags[f"{record['kind']}/{key}"] = value
    return tags


class TensorBoard:
    """Scalars in ``RUN/tensorboard/``; on resume, events after the checkpoint's step are purged."""

    def __init__(self, output_dir: Path, resume_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        purge = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(str(Path(output_dir) / "tensorboard"), purge_step=purge)

    def scalars(self, tags: Mapping[str, float], step: int) -> None:
        for tag, value in tags.items():
            self.writer.add_scalar(tag, value, step)

    def summary(self, values: Mapping[str, Any]) -> None:
        """TensorBoard has no run summary: ``all_results.json`` is the run's."""

    def close(self) -> None:
        self.writer.close()


class WandB:
    """A Weights & Biases run in ``RUN/wandb/``, offline unless ``WANDB_MODE`` says otherwise."""

    def __init__(self, output_dir: Path, resume_step: int | None) -> None:
        check_available(["wandb"])
        wandb = importlib.import_module("wandb")
        out = Path(output_dir)
        config_file = out / "config.yaml"
        config = yaml.safe_load(config_file.read_text(encoding="utf-8")) if config_file.is_file() else None
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or WANDB_PROJECT, name=out.resolve().name,
                              dir=str(out), config=config, mode=os.environ.get("WANDB_MODE") or "offline",
                              notes=None if resume_step is None else f"resumed at step {resume_step}")

    def scalars(self, tags: Mapping[str, float], step: int) -> None:
        self.run.log(dict(tags), step=step)

    def summary(self, values: Mapping[str, Any]) -> None:
        self.run.summary.update(dict(values))

    def close(self) -> None:
        self.run.finish()


def open_trackers(names: list[str], output_dir: Path, resume_step: int | None) -> list[Tracker]:
    """The trackers ``names`` asks for, opened on the run's folder."""
    kinds = {"tensorboard": TensorBoard, "wandb": WandB}
    return [kinds[name](output_dir, resume_step) for name in names]
