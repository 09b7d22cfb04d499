#!/usr/bin/env python3
"""Benchmark of embedding initialisation: bits per byte at step 0 of SmolLM2-135M extended with Japanese.

Extends SmolLM2-135M's byte-level tokenizer with a 16,000-token Japanese model trained on the shared
Japanese training files less their held-out shares (or takes ``--tokenizer DIR``, a folder written by
``vocab-extend merge`` on text that holds none of it), then scores several held-out kinds of text
(``bench/heldout_kinds.py``: Japanese Wikipedia, short sentences, conversation; English Wikipedia/news and
literature; ``--kind-bytes`` each) in bits per byte with the base model and with the extended model
initialised by each method, before any training. ``distill`` reads its contexts from the same training
shares (the first ``max_corpus_bytes`` of each file). Every figure comes per kind with a 95% bootstrap
interval over units of about ``--unit-bytes`` of whole documents; ``gap_closed`` is the share of the
``mean`` arm's step-0 gap to the base that a method closes. Targets, each judged per kind (``holds`` when
the whole interval meets it): English within 1% of the base with ``mean``; ``mean`` below ``hewitt`` and
``random`` on Japanese; ``distill`` at most the midpoint of ``mean`` and the base on Japanese (half the
gap closed), English within 0.5% of the base. ``summary`` says when a target holds on some kinds only.

    python bench/embedding_init.py --methods mean first hewitt random --json bench/results/embedding_init.json
    python bench/embedding_init.py --methods mean distill --json bench/results/embedding_init_distill.json
    python bench/embedding_init.py --smoke --methods mean distill     # a few minutes: 8 KB a kind, small merge
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # this checkout's package and the bench helpers
import heldout_kinds as hk  # noqa: E402  (after the path is set)

METHODS = ("mean", "first", "hewitt", "random", "distill")
SMOKE = {"kind_bytes": 8_000, "unit_bytes": 500, "vocab_size": 2_000, "merge_max_docs": 2_000,
         "distill": {"steps": 2, "max_contexts": 16, "base_samples": 2}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokenizer", type=Path, default=None, help="an extended tokenizer folder to use")
    parser.add_argument("--vocab-size", type=int, default=16_000)
    parser.add_argument("--merge-max-docs", type=int, default=None, help="documents the merge reads per file")
    parser.add_argument("--kind-bytes", type=int, default=50_000, help="UTF-8 bytes scored per held-out kind")
    parser.add_argument("--unit-bytes", type=int, default=1_000, help="bytes of whole documents per resampled unit")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--kinds", nargs="+", default=[k.name for k in hk.KINDS], choices=[k.name for k in hk.KINDS],
                        help="the held-out kinds scored (default: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    parser.add_argument("--distill", default="{}", help="DistillConfig fields as JSON, e.g. '{\"steps\": 32}'")
    parser.add_argument("--smoke", action="store_true", help="small sizes for a quick check: " + json.dumps(SMOKE))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.smoke:
        args.kind_bytes, args.unit_bytes = SMOKE["kind_bytes"], SMOKE["unit_bytes"]
        args.vocab_size, args.merge_max_docs = SMOKE["vocab_size"], SMOKE["merge_max_docs"]
        args.distill = json.dumps({**SMOKE["distill"], **json.loads(args.distill)})
    if not args.corpora.is_dir():
        raise SystemExit(f"error: {args.corpora} does not exist: pass --corpora with a folder laid out as "
                         "<lang>/<name>.txt (bench/README.md says how to get equivalent public text)")
    return args


def extended_folder(args, train_paths: list[str]) -> Path:
    """The extended tokenizer: ``--tokenizer`` (refused when it was trained on a held-out kind's file), or a
    merge on the training shares."""
    from vocab_extend.metadata import read_metadata
    from vocab_extend.tokenizer.job import ExtendConfig, extend_tokenizer

    if args.tokenizer is not None:
        hk.refuse_trained_on(read_metadata(args.tokenizer).corpus, args.corpora)
        return args.tokenizer
    folder = Path(tempfile.mkdtemp(prefix="bench-init-")) / "extended"
    extend_tokenizer(ExtendConfig(base=args.model, corpus=train_paths, new_model_size=args.vocab_size,
                                  output_dir=folder, lang="ja", max_docs=args.merge_max_docs,
                                  heldout_fraction=0))  # its held-out text is the bench's kinds
    print(f"extended tokenizer: {folder} (reuse it with --tokenizer)", flush=True)
    return folder


def score_kinds(model, tokenizer, kind_units: dict[str, list[list[str]]]) -> dict:
    """Every kind scored in units (see :func:`heldout_kinds.score`), printed as it goes."""
    out = {}
    for name, parts in kind_units.items():
        out[name] = hk.score(model, tokenizer, parts)
        totals = out[name].totals()
        print(f"  {name}: {totals['bpb']:.4f} bits/byte ({totals['tokens']} tokens, {totals['seconds']:.0f}s)",
              flush=True)
    return out


def _names(scored: dict, lang: str) -> list[str]:
    """The kinds of ``lang`` among those scored, in :data:`heldout_kinds.KINDS` order."""
    return [k.name for k in hk.KINDS if k.lang == lang and k.name in scored]


def per_kind_figures(scores: dict[str, dict], methods: list[str]) -> dict:
    """Bits per byte with spread, the change against the base, and the share of ``mean``'s gap closed."""
    base = scores["base"]
    ja = _names(base, "ja")
    out = {"bpb": {arm: {k: hk.bpb_figure(s) for k, s in kinds.items()} for arm, kinds in scores.items()},
           "bpb_change_vs_base": {m: {k: hk.change_figure(s, base[k]) for k, s in scores[m].items()}
                                  for m in methods}}
    if "mean" in methods:
        out["gap_closed"] = {m: {k: hk.gap_closed_figure(scores[m][k], scores["mean"][k], base[k]) for k in ja}
                             for m in methods if m != "mean"}
    return out


def judge(scores: dict[str, dict], figures: dict, methods: list[str], init_seconds: dict) -> dict:
    """Each target judged on every kind it concerns (:func:`heldout_kinds.verdict`); none without such kinds."""
    ja, en = _names(scores["base"], "ja"), _names(scores["base"], "en")
    change = figures["bpb_change_vs_base"]
    targets = {}
    if "mean" in methods and en:
        targets["en_mean_within_1pct_of_base"] = hk.verdict({k: change["mean"][k] for k in en}, -0.01, 0.01)
        for other in ("hewitt", "random"):
            if other in methods and ja:
                below = {k: hk.change_figure(scores["mean"][k], scores[other][k]) for k in ja}
                targets[f"ja_mean_below_{other}"] = hk.verdict(below, -math.inf, 0.0)
        if "distill" in methods and ja:
            targets["ja_distill_at_most_midpoint_of_mean_and_base"] = hk.verdict(
                {k: figures["gap_closed"]["distill"][k] for k in ja}, 0.5, math.inf)
    if "distill" in methods and en:
        targets["en_distill_within_half_pct_of_base"] = hk.verdict({k: change["distill"][k] for k in en},
                                                                   -0.005, 0.005)
    if "distill" in methods:
        targets["distill_under_15_minutes"] = init_seconds["distill"] < 900
    return targets


def summary_lines(figures: dict, targets: dict) -> list[str]:
    """One line per method's gap closed (every Japanese kind, with its interval) and per target."""
    def pct(f: dict) -> str:
        ci = f["ci95"]
        return f"{f['value']:.0%}" + (f" [{ci[0]:.0%}, {ci[1]:.0%}]" if ci else "")

    def closed(method: str, kind: str, figure: dict) -> str:
        """The share closed; where ``mean`` is already below the base there is no gap to close, and a share
        would read backwards: both changes against the base instead."""
        change = figures["bpb_change_vs_base"]
        if change["mean"][kind]["value"] >= 0:
            return f"{kind} {pct(figure)}"
        return (f"{kind}: no gap (mean {pct(change['mean'][kind])} against the base, {method} "
                f"{pct(change[method][kind])})")

    lines = [f"{m} closes of the step-0 gap of mean: " + ", ".join(closed(m, k, f) for k, f in kinds.items())
             for m, kinds in figures.get("gap_closed", {}).items()]
    lines += [f"{name}: {t['summary']}" if isinstance(t, dict) else f"{name}: {t}" for name, t in targets.items()]
    return lines


def main() -> None:
    args = parse_args()
    import torch
    from transformers import AutoTokenizer

    from vocab_extend.corpus import read_documents
    from vocab_extend.metadata import read_metadata
    from vocab_extend.model.init.distill import DistillConfig
    from vocab_extend.model.init.embeddings import InitConfig, init_embeddings
    from vocab_extend.model.loading import load_model
    from vocab_extend.tokenizer.loader import load_tokenizer

    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    train_docs, held = hk.load(args.corpora)
    train_paths = hk.write_training(train_docs, Path(tempfile.mkdtemp(prefix="bench-init-train-")))
    folder = extended_folder(args, train_paths)
    meta = read_metadata(folder)
    extended = AutoTokenizer.from_pretrained(str(folder))
    base_tokenizer = load_tokenizer(args.model)  # the model's own: the extended one keeps its ids
    kind_units = {k: hk.units(held[k], args.kind_bytes, args.unit_bytes) for k in args.kinds}
    distill = DistillConfig(**json.loads(args.distill))
    train_texts = [t for p in train_paths for t in read_documents(p, max_bytes=distill.max_corpus_bytes)]
    base_model = load_model(args.model, device=args.device)

    print(f"base {args.model}:", flush=True)
    scores = {"base": score_kinds(base_model, base_tokenizer, kind_units)}
    init_seconds, reports = {}, {}
    write(args, meta, extended, held, scores, reports, init_seconds, distill, began)
    for method in args.methods:
        model = copy.deepcopy(base_model)
        start = time.perf_counter()
        reports[method] = init_embeddings(model, extended, base_tokenizer, meta.base_vocab_size,
                                          InitConfig(method=method, distill=distill), train_texts)
        init_seconds[method] = round(time.perf_counter() - start, 2)
        print(f"{method} ({init_seconds[method]:.1f}s to initialise):", flush=True)
        scores[method] = score_kinds(model, extended, kind_units)
        del model
        write(args, meta, extended, held, scores, reports, init_seconds, distill, began)


def write(args, meta, extended, held: dict, scores: dict, reports: dict, init_seconds: dict, distill,
          began: float) -> None:
    """The figures of the methods done so far, printed and written to ``--json`` (after every method:
    ``"complete": false`` until the last)."""
    from vocab_extend.atomic import atomic_write_json

    done = [m for m in args.methods if m in scores]
    figures = per_kind_figures(scores, done)
    targets = judge(scores, figures, done, init_seconds)
    report = next(iter(reports.values()), None)
    out = {
        "complete": done == args.methods, "methods_done": done,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {args.device}, {args.threads} torch threads",
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "model": args.model, "smoke": args.smoke,
        "base_vocab_size": meta.base_vocab_size, "extended_vocab_size": len(extended),
        "added_tokens": len(extended) - meta.base_vocab_size, "tied_embeddings": report.tied if report else None,
        "mean_base_pieces_per_new_token": report.mean_pieces_per_token if report else None,
        "training_files": {"files": list(hk.TRAIN), "note": "less the held-out share of any file that is also a "
                           "kind's file; no held-out document is in the training text (merge and distill)",
                           "merge_max_docs": args.merge_max_docs, "vocab_size_new_model": args.vocab_size},
        "kinds": hk.describe([k for k in hk.KINDS if k.name in args.kinds], held, args.kind_bytes, args.unit_bytes),
        "kinds_missing": hk.MISSING,
        "spread": "95% percentile bootstrap over units of whole documents (1,000 resamples, seeded; paired across "
                  "arms), se: standard error of the bits-per-byte ratio over units",
        "distill_config": asdict(distill) if "distill" in args.methods else None,
        "distill_report": reports["distill"].distill if "distill" in reports else None,
        "init_seconds": init_seconds,
        "bpb": {arm: {k: f["bpb"] for k, f in kinds.items()} for arm, kinds in figures["bpb"].items()},
        "bpb_with_spread": figures["bpb"], "bpb_change_vs_base": figures["bpb_change_vs_base"],
        "gap_closed": figures.get("gap_closed"), "targets": targets, "summary": summary_lines(figures, targets),
        "wall_seconds": round(time.perf_counter() - began, 1),
    }
    print(json.dumps({k: out[k] for k in ("bpb", "summary")}, indent=2, ensure_ascii=False))
    if args.json:
        atomic_write_json(args.json, out)


if __name__ == "__main__":
    main()
