"""What a run logs: ``metrics.jsonl``, mirrored to the ``report_to`` trackers (:mod:`.trackers`; ``report.md`` is
:mod:`.report`'s).

``metrics.jsonl`` holds one JSON object per line. Training records::

    {"kind": "train", "step": 12, "stage": "embeddings", "loss": 6.91, "lr": 0.0003, "tokens_per_s": 5120.4,
     "grad_norm": 1.7, "corpus_blocks": {"ja": 87, "en": 9}}

``corpus_blocks`` counts the blocks drawn from each training corpus so far (a weighted mixture, or the one
training corpus).

Eval records::

    {"kind": "eval", "step": 12, "bpb": {"ja": 2.41, "en": 1.37}, "loss": {"ja": 5.2, "en": 3.9},
     "bytes": {"ja": 4096, "en": 4096}, "documents": {"ja": 31, "en": 22}}

``bytes`` and ``documents`` say how much of each eval corpus was scored (the run's eval budget); they are
sizes, not scalars, and are not sent to the trackers.

On resume, records after the checkpoint's step are dropped, so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from .trackers import Tracker, scalar_tags

METRICS = "metrics.jsonl"


def read_metrics(output_dir: Path) -> list[dict[str, Any]]:
    path = Path(output_dir) / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class MetricsLog:
    """Appends records to ``metrics.jsonl`` and mirrors their scalars to ``trackers`` (main process only)."""

    def __init__(self, output_dir: Path, *, resume_step: int | None, trackers: list[Tracker]) -> None:
        self.path = Path(output_dir) / METRICS
        kept = [r for r in read_metrics(output_dir) if resume_step is not None and r["step"] <= resume_step]
        self.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept), encoding="utf-8")
        self.trackers = trackers

    def write(self, record: Mapping[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")  # metrics stay valid JSON
        tags = scalar_tags(record)
        for tracker in self.trackers:
            tracker.scalars(tags, record["step"])

    def summary(self, values: Mapping[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.summary(values)

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()


def token_reduction_rows(tokenizer, base_tokenizer, corpora: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """Tokens of each eval corpus under the base and the extended tokenizer."""
    rows = []
    for name, texts in corpora.items():
        chars = sum(len(t) for t in texts)
        base = sum(len(ids) for ids in base_tokenizer(list(texts), add_special_tokens=False)["input_ids"])
        ext = sum(len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"])
        rows.append({"corpus": name, "chars": chars, "base_tokens": base, "extended_tokens": ext,
                     "reduction": 1 - ext / max(base, 1)})
    return rows
