"""``report.md`` with its plots, ``all_results.json`` (:mod:`.summary`), and the model card of a run's ``model/``,
from ``metrics.jsonl`` and the config.

The bits-per-byte table labels each eval corpus with the text it was scored on, as ``merge`` labels its
figures: ``held out`` (a training corpus's held-out share) or ``eval`` (a corpus named in ``eval``; never
trained on either), with the documents and bytes scored (the run's eval budget).

>>> text_label("ja", {"bytes": {"ja": 4096}, "documents": {"ja": 31}}, ["ja"])
'held out, 31 documents, 4,096 bytes'
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Mapping

from ..metadata import metadata_fields
from ..model.card import read_tokenizer_report, render_card
from .config import PretrainConfig
from .evaluation import heldout_names
from .metrics import MetricsLogger
from .outputs import read_metrics
from .paid import paid_section
from .summary import eval_text, write_summary

REPORT = "report.md"
BPB_PLOT = "bpb.png"
LOSS_PLOT = "loss.png"


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


def text_label(name: str, record: Mapping[str, Any], heldout: list[str]) -> str:
    """What corpus ``name`` was scored on: ``held out`` or ``eval``, with its size when recorded."""
    text = eval_text(name, record, heldout)
    return ", ".join([text["label"], *(f"{text[key]:,} {key}" for key in ("documents", "bytes") if key in text)])


def write_report(output_dir: Path, config: PretrainConfig, reduction: list[dict[str, Any]] | None,
                 compared: list[dict[str, Any]] | None = None, logger: MetricsLogger | None = None) -> dict[str, Any]:
    """``report.md``, ``bpb.png``, ``loss.png`` and ``all_results.json`` from ``metrics.jsonl``; ``compared``
    holds the rows of the comparison with the base model, ``logger`` the run's times (and trackers, which
    get the summary). Returns the summary."""
    output_dir = Path(output_dir)
    records = read_metrics(output_dir)
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    lines = [f"# Continued pretraining: {config.model.name}", ""]
    stages = ", ".join(f"{s.name} ({s.steps} steps)" for s in config.stages)
    lines += [f"- stages: {stages}; steps run: {train[-1]['step'] if train else 0}",
              f"- global batch: {config.data.batch_size} × {config.data.block_size} tokens", ""]
    lines += _reduction_section(reduction)
    if evals:
        lines += _bpb_section(evals, heldout_names(config.data.train, config.data.heldout_fraction,
                                                   config.eval.corpora))
        _plot(evals, output_dir / BPB_PLOT, "bits per byte", "bits per byte")
    lines += paid_section(compared, reduction) if compared else []
    if train and train[-1].get("corpus_blocks"):
        lines += _mixture_section(train[-1]["corpus_blocks"], config.data.train_weights or {})
    if train:
        speeds = [r["tokens_per_s"] for r in train[1:]] or [train[0]["tokens_per_s"]]
        lines += ["## Training", "", f"- final loss: {train[-1]['loss']:.4f}",
                  f"- throughput: {statistics.median(speeds):,.0f} tokens/s (median over steps, first step excluded)",
                  "", f"![loss]({LOSS_PLOT})", ""]
        _plot(train, output_dir / LOSS_PLOT, "training loss", "loss")
    (output_dir / REPORT).write_text("\n".join(lines), encoding="utf-8")
    summary = write_summary(output_dir, config, records, seconds=logger.elapsed() if logger else None,
                            resumed_from=logger.resumed_from if logger else None, compared=compared)
    if logger is not None:
        logger.summary(summary)
    return summary


def _reduction_section(reduction: list[dict[str, Any]] | None) -> list[str]:
    if not reduction:
        return []
    lines = ["## Token reduction of the extended tokenizer", "",
             "| corpus | chars | base tokens | extended tokens | chars/token base → extended | reduction |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in reduction:
        lines.append(
            f"| {r['corpus']} | {r['chars']:,} | {r['base_tokens']:,} | {r['extended_tokens']:,} | "
            f"{r['chars'] / max(r['base_tokens'], 1):.2f} → {r['chars'] / max(r['extended_tokens'], 1):.2f} | "
            f"{r['reduction']:.1%} |")
    return lines + [""]


def _mixture_section(drawn: Mapping[str, int], weights: Mapping[str, float]) -> list[str]:
    total = max(sum(drawn.values()), 1)
    norm = sum(weights.values()) or 1.0
    lines = ["## Training mixture", "", f"Blocks drawn from each training corpus over {total:,} blocks.", "",
             "| corpus | weight | blocks | realised share |", "|---|---:|---:|---:|"]
    for name, n in drawn.items():
        weight = f"{weights[name] / norm:.1%}" if name in weights else "(natural)"
        lines.append(f"| {name} | {weight} | {n:,} | {n / total:.1%} |")
    return lines + [""]


def _bpb_section(evals: list[dict[str, Any]], heldout: list[str]) -> list[str]:
    """The bits-per-byte table: first and last evaluation of each corpus, labelled with what it was scored on."""
    first, last = evals[0], evals[-1]
    lines = ["## Bits per byte", "", f"| corpus | text | step {first['step']} | step {last['step']} | change |",
             "|---|---|---:|---:|---:|"]
    for name in sorted(last["bpb"]):
        before = first["bpb"].get(name)
        after = last["bpb"][name]
        change = f"{after - before:+.4f}" if before is not None else ""
        lines.append(f"| {name} | {text_label(name, last, heldout)} | "
                     f"{before if before is None else f'{before:.4f}'} | {after:.4f} | {change} |")
    return lines + ["", "Held-out text is a share of a training corpus kept out of training; eval text is a "
                    "corpus named in `eval`, never trained on either. Both are scored on the run's eval budget "
                    "(docs/pretraining.md, Evaluation).", "", f"![bits per byte]({BPB_PLOT})", ""]


def run_card(config: PretrainConfig, tokenizer_dir: Path, bpb: Mapping[str, float] | None):
    """The model card of a run's ``model/``: what it started from, its stages and tokens seen, the merge's
    token reduction and the last bits per byte."""
    meta = metadata_fields(tokenizer_dir)
    lang = meta.get("lang") or "und"
    data, name = config.data, config.model.name
    tokens = config.total_steps * data.batch_size * data.block_size
    made = [f"started from `{name}`" + (f" with `{meta['base']}`'s tokenizer extended by "
                                        f"{meta['added_pieces']:,} {lang} pieces" if meta else ""),
            "stages: " + ", ".join(f"`{s.name}` {steps} steps" for s, _, steps in config.stage_plan()),
            f"tokens seen: {tokens:,} ({config.total_steps:,} steps × {data.batch_size} sequences × "
            f"{data.block_size} tokens)",
            f"training corpora: {', '.join(data.train)}"]
    return render_card(title=f"Continued pretraining of {name}",
                       base=name, lang=lang, made=made, tokenizer_report=read_tokenizer_report(tokenizer_dir),
                       bpb=bpb, commands=["vocab-extend pretrain --config config.yaml   # the run's config.yaml"])
