#!/usr/bin/env python3
"""Benchmark of a merge of two languages (Thai + Vietnamese) against each language merged alone.

On each base (Mistral-7B v0.1, SentencePiece; SmolLM2-135M, byte-level), merges at the same per-language
budget: Thai alone, Vietnamese alone, both one after the other (``sequential``, the default) and both in one
jointly trained model (``--multilingual joint``, with the summed budget). Every merge trains on the shared
corpora of each language but its FLORES-200 file, which is held out and measured (``--eval``); the figure is
chars/token on that file, and ``ratio`` is a two-language merge's figure over the one-language merge's (the
issue asks for at least 0.95).

    python bench/multilingual.py --json bench/results/multilingual.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANGS = ("th", "vi")
HELD_OUT_PREFIX = "flores200_"
BASES = ("mistral-7b-v0.1", "smollm2-135m")


def _files(corpora: Path, lang: str) -> tuple[list[Path], Path]:
    files = sorted(p for p in (corpora / lang).glob("*.txt"))
    held = [p for p in files if p.name.startswith(HELD_OUT_PREFIX)]
    if len(held) != 1:
        raise SystemExit(f"error: {corpora / lang} needs exactly one {HELD_OUT_PREFIX}* file to hold out")
    return [p for p in files if p not in held], held[0]


def _merge(base: str, langs: tuple[str, ...], mode: str, corpora: Path, size: int, out: Path) -> dict:
    from vocab_extend.tokenizer.job import ExtendConfig, extend_tokenizer

    train, evals = [], []
    for lang in LANGS:
        files, held = _files(corpora, lang)
        evals.append(f"{lang}-flores={held}")
        if lang in langs:
            train += [f"{lang}={path}" for path in files]
    start = time.perf_counter()
    extend_tokenizer(ExtendConfig(base=base, corpus=train, new_model_size=size, eval=evals, output_dir=out,
                                  overwrite=True, multilingual=mode))
    seconds = time.perf_counter() - start
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert all(check["passed"] for check in report["checks"].values())
    figures = {lang: report["corpora"][f"{lang}-flores"] for lang in langs}
    return {
        "added_pieces": report["added_pieces"],
        "languages": {lang: (report.get("languages") or {}).get(lang, {}).get("added_pieces", report["added_pieces"])
                      for lang in langs},
        "chars_per_token": {lang: figures[lang]["chars_per_token_extended"] for lang in langs},
        "chars_per_token_base": {lang: figures[lang]["chars_per_token_base"] for lang in langs},
        "split_ceiling": {lang: figures[lang].get("chars_per_token_ceiling") for lang in langs},
        "base_language_lines_changed": report["checks"]["base_language_unchanged"]["failed"],
        "seconds": round(seconds, 1),
    }


def bench_base(base: str, corpora: Path, size: int, work: Path, joint: bool) -> dict:
    runs = {f"{lang} alone": _merge(base, (lang,), "sequential", corpora, size, work / lang) for lang in LANGS}
    modes = ("sequential", "joint") if joint else ("sequential",)
    for mode in modes:
        runs[f"th+vi {mode}"] = _merge(base, LANGS, mode, corpora, size, work / mode)
    ratios = {mode: {lang: round(runs[f"th+vi {mode}"]["chars_per_token"][lang]
                                 / runs[f"{lang} alone"]["chars_per_token"][lang], 4) for lang in LANGS}
              for mode in modes}
    return {"runs": runs, "ratio_to_alone": ratios,
            "within_5_percent": {mode: all(r >= 0.95 for r in ratios[mode].values()) for mode in modes}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--vocab-size", type=int, default=16_000, help="per language")
    parser.add_argument("--base", action="append", default=None, help=f"default: {', '.join(BASES)}")
    parser.add_argument("--no-joint", action="store_true", help="measure the sequential merge only")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.corpora.is_dir():
        raise SystemExit(f"error: {args.corpora} does not exist: pass --corpora with a folder laid out as "
                         "<lang>/<name>.txt")
    from vocab_extend.atomic import atomic_write_json

    work = Path(tempfile.mkdtemp(prefix="bench-multilingual-"))
    results = {
        "what": "chars/token on each language's held-out FLORES-200 file (trained on the other shared files)",
        "vocab_size_per_language": args.vocab_size,
        "bases": {base: bench_base(base, args.corpora, args.vocab_size, work / base.replace("/", "--"),
                                   not args.no_joint) for base in (args.base or BASES)},
    }
    print(json.dumps(results, indent=2))
    if args.json:
        atomic_write_json(args.json, results)


if __name__ == "__main__":
    main()
