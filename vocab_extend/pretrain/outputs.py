"""What a run writes besides checkpoints: ``metrics.jsonl``, TensorBoard logs, ``report.md`` and its plots.

``metrics.jsonl`` holds one JSON object per line. Training records::

    {"kind": "train", "step": 12, "stage": "embeddings", "loss": 6.91, "lr": 0.0003, "tokens_per_s": 5120.4,
     "grad_norm": 1.7, "corpus_blocks": {"ja": 87, "en": 9}}

``corpus_blocks`` counts the blocks drawn from each training corpus so far (a weighted mixture, or the one
training corpus).

Eval records::

    {"kind": "eval", "step": 12, "bpb": {"ja": 2.41, "en": 1.37}, "loss": {"ja": 5.2, "en": 3.9}}

On resume, records after the checkpoint's step are dropped, so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Mapping

from ..metadata import METADATA_FILE
from ..model.card import read_tokenizer_report, render_card

METRICS = "metrics.jsonl"
REPORT = "report.md"
BPB_PLOT = "bpb.png"
LOSS_PLOT = "loss.png"


def read_metrics(output_dir: Path) -> list[dict[str, Any]]:
    path = Path(output_dir) / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class MetricsLog:
    """Appends records to ``metrics.jsonl`` and mirrors scalars to TensorBoard (main process only)."""

    def __init__(self, output_dir: Path, *, resume_step: int | None, tensorboard: bool) -> None:
        self.path = Path(output_dir) / METRICS
        kept = [r for r in read_metrics(output_dir) if resume_step is not None and r["step"] <= resume_step]
        self.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept), encoding="utf-8")
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self.writer = SummaryWriter(str(Path(output_dir) / "tensorboard"), purge_step=purge)

    def write(self, record: Mapping[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")  # metrics stay valid JSON
        if self.writer is None:
            return
        step = record["step"]
        for key, value in record.items():
            if key in ("step", "kind", "stage"):
                continue
            if isinstance(value, Mapping):
                for name, v in value.items():
                    self.writer.add_scalar(f"{record['kind']}/{key}/{name}", v, step)
            elif isinstance(value, (int, float)):
                self.writer.add_scalar(f"{record['kind']}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _plot(records: list[dict[str, Any]], path: Path, title: str, ylabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    if title == "bits per byte":
        names = sorted({n for r in records for n in r["bpb"]})
        for name in names:
            points = [(r["step"], r["bpb"][name]) for r in records if name in r["bpb"]]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        ax.legend()
    else:
        ax.plot([r["step"] for r in records], [r["loss"] for r in records])
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


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


def write_report(output_dir: Path, config: Mapping[str, Any], reduction: list[dict[str, Any]] | None,
                 paid: list[str] | None = None) -> None:
    """``report.md``, ``bpb.png`` and ``loss.png`` from ``metrics.jsonl``."""
    output_dir = Path(output_dir)
    records = read_metrics(output_dir)
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    lines = [f"# Continued pretraining: {config['model']}", ""]
    stages = ", ".join(f"{s['name']} ({s['steps']} steps)" for s in config["stages"])
    lines += [f"- stages: {stages}; steps run: {train[-1]['step'] if train else 0}",
              f"- global batch: {config['batch_size']} × {config['block_size']} tokens", ""]
    if reduction:
        lines += ["## Token reduction of the extended tokenizer", "",
                  "| corpus | chars | base tokens | extended tokens | chars/token base → extended | reduction |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in reduction:
            lines.append(
                f"| {r['corpus']} | {r['chars']:,} | {r['base_tokens']:,} | {r['extended_tokens']:,} | "
                f"{r['chars'] / max(r['base_tokens'], 1):.2f} → {r['chars'] / max(r['extended_tokens'], 1):.2f} | "
                f"{r['reduction']:.1%} |")
        lines.append("")
    if evals:
        first, last = evals[0], evals[-1]
        lines += ["## Bits per byte", "", f"| corpus | step {first['step']} | step {last['step']} | change |",
                  "|---|---:|---:|---:|"]
        for name in sorted(last["bpb"]):
            before = first["bpb"].get(name)
            after = last["bpb"][name]
            change = f"{after - before:+.4f}" if before is not None else ""
            lines.append(f"| {name} | {before if before is None else f'{before:.4f}'} | {after:.4f} | {change} |")
        lines += ["", f"![bits per byte]({BPB_PLOT})", ""]
        _plot(evals, output_dir / BPB_PLOT, "bits per byte", "bits per byte")
    lines += paid or []
    if train and train[-1].get("corpus_blocks"):
        drawn = train[-1]["corpus_blocks"]
        total = max(sum(drawn.values()), 1)
        weights = config.get("train_weights") or {}
        norm = sum(weights.values()) or 1.0
        lines += ["## Training mixture", "", f"Blocks drawn from each training corpus over {total:,} blocks.", "",
                  "| corpus | weight | blocks | realised share |", "|---|---:|---:|---:|"]
        for name, n in drawn.items():
            weight = f"{weights[name] / norm:.1%}" if name in weights else "(natural)"
            lines.append(f"| {name} | {weight} | {n:,} | {n / total:.1%} |")
        lines.append("")
    if train:
        speeds = [r["tokens_per_s"] for r in train[1:]] or [train[0]["tokens_per_s"]]
        lines += ["## Training", "", f"- final loss: {train[-1]['loss']:.4f}",
                  f"- throughput: {statistics.median(speeds):,.0f} tokens/s (median over steps, first step excluded)",
                  "", f"![loss]({LOSS_PLOT})", ""]
        _plot(train, output_dir / LOSS_PLOT, "training loss", "loss")
    (output_dir / REPORT).write_text("\n".join(lines), encoding="utf-8")


def run_card(config, tokenizer_dir: Path, bpb: Mapping[str, float] | None):
    """The model card of a run's ``model/``: what it started from, its stages and tokens seen, the merge's
    token reduction and the last bits per byte."""
    meta_path = Path(tokenizer_dir) / METADATA_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    lang = meta.get("lang") or "und"
    tokens = config.total_steps * config.batch_size * config.block_size
    made = [f"started from `{config.model}`" + (f" with `{meta['base']}`'s tokenizer extended by "
                                                 f"{meta['added_pieces']:,} {lang} pieces" if meta else ""),
            "stages: " + ", ".join(f"`{s.name}` {steps} steps" for s, _, steps in config.stage_plan()),
            f"tokens seen: {tokens:,} ({config.total_steps:,} steps × {config.batch_size} sequences × "
            f"{config.block_size} tokens)",
            f"training corpora: {', '.join(config.train)}"]
    return render_card(title=f"Continued pretraining of {config.model}",
                       base=config.model, lang=lang, made=made, tokenizer_report=read_tokenizer_report(tokenizer_dir),
                       bpb=bpb, commands=["vocab-extend pretrain --config config.yaml   # the run's config.yaml"])
