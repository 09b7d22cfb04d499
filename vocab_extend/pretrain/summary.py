"""``all_results.json``: a run's headline figures in one JSON object, like the HF Trainer's ``all_results.json``.

Written atomically into the run folder when the run ends (rank 0), from ``metrics.jsonl`` and the config,
and handed to the trackers that keep a run summary (W&B)::

    {"steps": 4, "train_tokens": 2048, "final_train_loss": 6.91, "train_tokens_per_s": 412.3,
     "wall_time_s": 95.2, "resumed_from_step": null,
     "eval_step": 4, "eval_bpb": {"en": 1.2, "ja": 2.9}, "eval_loss": {"en": 3.1, "ja": 4.4},
     "eval_text": {"en": {"label": "eval", "documents": 22, "bytes": 4096},
                   "ja": {"label": "held out", "documents": 31, "bytes": 4096}},
     "base_model": "smollm2-135m", "base_bpb": {"en": 1.19, "ja": 3.4}}

- ``final_train_loss``: the loss of the last step (not a mean over the run, which the Trainer's
  ``train_loss`` is); ``train_tokens_per_s``: the median over steps, the first left out (as ``report.md``).
- ``wall_time_s``: seconds from the start of this process's logging (model and data loaded, before the
  step-0 evaluation) to the end, evaluations, checkpoints and the comparison with the base model included;
  a resumed run counts its own process only and says from which step it resumed.
- ``eval_*``: the last evaluation; ``eval_text`` labels each corpus ``held out`` (the share of a training
  corpus kept out of training) or ``eval`` (a corpus named in ``eval``; never trained on either) with the
  documents and UTF-8 bytes scored (the run's eval budget).
- ``base_*``: present when the run compared its model with the base model (``report.md``'s "Did extending
  pay?").

>>> s = summarize([{"kind": "train", "step": 1, "loss": 7.0, "tokens_per_s": 90.0},
...                {"kind": "train", "step": 2, "loss": 6.5, "tokens_per_s": 100.0},
...                {"kind": "eval", "step": 2, "bpb": {"ja": 2.5}, "loss": {"ja": 4.0}, "bytes": {"ja": 4096},
...                 "documents": {"ja": 31}}], tokens_per_step=512, heldout=["ja"], seconds=12.345)
>>> s["final_train_loss"], s["train_tokens"], s["train_tokens_per_s"], s["eval_text"]["ja"]["label"]
(6.5, 1024, 100.0, 'held out')
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..atomic import atomic_write_json
from .evaluation import HELD_OUT, heldout_names

SUMMARY = "all_results.json"
EVAL = "eval"


def summarize(records: Sequence[Mapping[str, Any]], *, tokens_per_step: int, heldout: Sequence[str],
              seconds: float | None, resumed_from: int | None = None,
              compared: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The summary of a run from its ``metrics.jsonl`` records (see the module's docstring)."""
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    steps = train[-1]["step"] if train else 0
    speeds = [r["tokens_per_s"] for r in train[1:]] or [r["tokens_per_s"] for r in train]
    summary: dict[str, Any] = {
        "steps": steps, "train_tokens": steps * tokens_per_step,
        "final_train_loss": train[-1]["loss"] if train else None,
        "train_tokens_per_s": round(statistics.median(speeds), 1) if speeds else None,
        "wall_time_s": None if seconds is None else round(seconds, 1), "resumed_from_step": resumed_from}
    if evals:
        last = evals[-1]
        summary.update({"eval_step": last["step"], "eval_bpb": dict(last["bpb"]), "eval_loss": dict(last["loss"]),
                        "eval_text": {name: eval_text(name, last, heldout) for name in last["bpb"]}})
    if compared:
        summary.update({"base_model": compared[0]["base_model"],
                        "base_bpb": {r["corpus"]: r["base_bpb"] for r in compared}})
    return summary


def eval_text(name: str, record: Mapping[str, Any], heldout: Sequence[str]) -> dict[str, Any]:
    """What corpus ``name`` was scored on at ``record``: its label and, when recorded, its size."""
    text: dict[str, Any] = {"label": HELD_OUT if name in heldout else EVAL}
    for key in ("documents", "bytes"):
        if name in (record.get(key) or {}):
            text[key] = record[key][name]
    return text


def write_summary(output_dir: Path, config, records: Sequence[Mapping[str, Any]], *, seconds: float | None,
                  resumed_from: int | None = None,
                  compared: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """``all_results.json`` of the run in ``output_dir`` (written atomically); returns the summary."""
    data = config.data
    summary = summarize(records, tokens_per_step=data.batch_size * data.block_size,
                        heldout=heldout_names(data.train, data.heldout_fraction, config.eval.corpora),
                        seconds=seconds, resumed_from=resumed_from, compared=compared)
    atomic_write_json(Path(output_dir) / SUMMARY, summary)
    return summary
