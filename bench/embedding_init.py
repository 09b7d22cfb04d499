#!/usr/bin/env python3
"""Benchmark of embedding initialisation: bits per byte at step 0 of SmolLM2-135M extended with Japanese.

Extends SmolLM2-135M's byte-level tokenizer with a 16,000-token Japanese model trained on shared Japanese
files (or takes ``--tokenizer DIR``, a folder written by ``vocab-extend merge``), then scores held-out
Japanese and English in bits per byte with the base model and with the extended model initialised by each
method, before any training. ``distill`` reads its contexts from the training files (the first
``max_corpus_bytes`` of them). Targets: English within 1% of the base with ``mean``; ``mean`` below ``hewitt``
and ``random`` on Japanese; ``distill`` at most the midpoint of ``mean`` and the base on Japanese, English
within 0.5% of the base. bpb is deterministic; the timings are the median of ``--runs``.

    python bench/embedding_init.py --methods mean first hewitt random --json bench/results/embedding_init.json
    python bench/embedding_init.py --methods mean distill --json bench/results/embedding_init_distill.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["ja/jaquad_train_wikipedia.txt", "ja/jglue_short_sentences.txt", "ja/tatoeba_sentences.txt"]
EVAL = {"ja": "ja/jsquad_test_wikipedia.txt", "en": "en/gum_open_license_genres.txt"}
METHODS = ("mean", "first", "hewitt", "random", "distill")


def _timed(runs: int, fn):
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokenizer", type=Path, default=None, help="an extended tokenizer folder to use")
    parser.add_argument("--vocab-size", type=int, default=16_000)
    parser.add_argument("--max-bytes", type=int, default=50_000, help="UTF-8 bytes scored per corpus")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--runs", type=int, default=1, help="timing runs per evaluation (bpb is deterministic)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--distill", default="{}", help="DistillConfig fields as JSON, e.g. '{\"steps\": 32}'")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    from vocab_extend.corpus import read_documents
    from vocab_extend.model.evaluate.bpb import bits_per_byte
    from vocab_extend.model.init.distill import DistillConfig
    from vocab_extend.model.init.embeddings import InitConfig, init_embeddings
    from vocab_extend.metadata import read_metadata
    from vocab_extend.model.loading import load_model
    from vocab_extend.tokenizer.loader import load_tokenizer

    torch.set_num_threads(os.cpu_count() or 1)
    if not args.corpora.is_dir():
        raise SystemExit(f"error: {args.corpora} does not exist: pass --corpora with a folder laid out as "
                         "<lang>/<name>.txt (bench/README.md says how to get equivalent public text)")
    folder = args.tokenizer
    if folder is None:
        from vocab_extend.tokenizer.job import ExtendConfig, extend_tokenizer

        folder = Path(tempfile.mkdtemp(prefix="bench-init-")) / "extended"
        extend_tokenizer(ExtendConfig(base=args.model, corpus=[str(args.corpora / f) for f in TRAIN],
                                      new_model_size=args.vocab_size, output_dir=folder, lang="ja",
                                      heldout_fraction=0))  # its held-out text is its own file
        print(f"extended tokenizer: {folder} (reuse it with --tokenizer)", flush=True)
    meta = read_metadata(folder)
    extended = AutoTokenizer.from_pretrained(str(folder))
    # The model's own tokenizer is the base: the extended one has the same ids below base_vocab_size.
    base_tokenizer = load_tokenizer(args.model)
    texts = {name: read_documents(str(args.corpora / spec)) for name, spec in EVAL.items()}

    distill = DistillConfig(**json.loads(args.distill))
    train_texts = [t for f in TRAIN for t in read_documents(str(args.corpora / f), max_bytes=distill.max_corpus_bytes)]
    base_model = load_model(args.model, device=args.device)

    def score(model, tokenizer) -> dict[str, dict]:
        out = {}
        for name, docs in texts.items():
            result, seconds = _timed(args.runs, lambda: bits_per_byte(
                model, tokenizer, docs, max_bytes=args.max_bytes, progress=False))
            out[name] = {**asdict(result), "seconds": round(seconds, 2),
                         "bytes_per_token": round(result.bytes / result.tokens, 4)}
            print(f"  {name}: {result.bpb:.4f} bits/byte ({result.tokens} tokens, {seconds:.1f}s)", flush=True)
        return out

    print(f"base {args.model}:", flush=True)
    results = {"base": score(base_model, base_tokenizer)}
    init_seconds = {}
    for method in args.methods:
        model = copy.deepcopy(base_model)
        start = time.perf_counter()
        report = init_embeddings(model, extended, base_tokenizer, meta.base_vocab_size,
                                 InitConfig(method=method, distill=distill), train_texts)
        init_seconds[method] = round(time.perf_counter() - start, 2)
        print(f"{method} ({init_seconds[method]:.1f}s to initialise):", flush=True)
        if report.distill:
            distill_report = report.distill
            print(f"  {distill_report}", flush=True)
        results[method] = score(model, extended)
        del model

    base = results["base"]
    deltas = {m: {c: round(results[m][c]["bpb"] / base[c]["bpb"] - 1, 5) for c in EVAL} for m in args.methods}
    targets = {}
    if "mean" in args.methods:
        targets["en_mean_within_1pct_of_base"] = abs(deltas["mean"]["en"]) <= 0.01
        for other in ("hewitt", "random"):
            if other in args.methods:
                targets[f"ja_mean_below_{other}"] = results["mean"]["ja"]["bpb"] < results[other]["ja"]["bpb"]
        if "distill" in args.methods:
            midpoint = (results["mean"]["ja"]["bpb"] + base["ja"]["bpb"]) / 2
            targets["ja_distill_at_most_midpoint_of_mean_and_base"] = results["distill"]["ja"]["bpb"] <= midpoint
            targets["en_distill_within_half_pct_of_base"] = abs(deltas["distill"]["en"]) <= 0.005
            targets["distill_under_15_minutes"] = init_seconds["distill"] < 900
    figures = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {args.device}",
        "model": args.model,
        "base_vocab_size": meta.base_vocab_size,
        "extended_vocab_size": len(extended),
        "added_tokens": len(extended) - meta.base_vocab_size,
        "tied_embeddings": report.tied,
        "mean_base_pieces_per_new_token": report.mean_pieces_per_token,
        "max_bytes_per_corpus": args.max_bytes,
        "distill_config": asdict(distill) if "distill" in args.methods else None,
        "distill_report": distill_report if "distill" in args.methods else None,
        "eval_corpora": EVAL,
        "timing_runs": args.runs,
        "init_seconds": init_seconds,
        "bpb": {m: {c: round(r[c]["bpb"], 5) for c in EVAL} for m, r in results.items()},
        "bpb_change_vs_base": deltas,
        "targets": targets,
        "details": results,
    }
    print(json.dumps({k: figures[k] for k in ("bpb", "bpb_change_vs_base", "targets")}, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
