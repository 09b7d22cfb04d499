#!/usr/bin/env python3
"""Held-out chars/token against the size of the training sample (``merge --sample-chars``), both families.

Merges the shared Japanese training files (``merge_sentencepiece.py``'s three) into Mistral-7B v0.1's
SentencePiece tokenizer (the default base) and into SmolLM2-135M's byte-level BPE, each with a 16,000-piece
new-language model trained on a content-hashed sample of N characters (0: everything), one merge per
(family, N), each in its own process (wall time and peak RSS of that process from ``wait4``). It records the
extended tokenizer's chars/token on two kinds of text the tool never trained on: ``ja/jsquad_test_wikipedia.txt``
(another Wikipedia sample, given with ``--eval``) and the merge's own content-hashed held-out share of the
training files (5%), and each figure's ratio to training on everything. Training is deterministic, so one
run per point gives the figure; wall times are of that one run on the shared cores. Each point is printed as
a JSON line as soon as it is measured, and the JSON file is rewritten after each point; with ``--bases`` only
those curves are measured, with ``--budgets`` only those points: the others already in the file are kept.

    python bench/sample_curve.py --json bench/results/sample_curve.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["ja/jaquad_train_wikipedia.txt", "ja/jglue_short_sentences.txt", "ja/tatoeba_sentences.txt"]
HELD_OUT = "ja/jsquad_test_wikipedia.txt"
BASES = {"sentencepiece (mistral-7b-v0.1, the default)": "mistral-7b-v0.1", "byte-level (smollm2-135m)": "smollm2-135m"}
BUDGETS = [250_000, 500_000, 1_000_000, 2_000_000, 0]


def merge_once(base: str, train: list[str], held_out: str, budget: int, out: Path) -> dict[str, object]:
    """One merge in a child process: its figures, wall time and peak RSS."""
    argv = [sys.executable, "-m", "vocab_extend.cli", "merge", "--base", base, "--output-dir", str(out),
            "--sample-chars", str(budget), "--eval", f"wiki-test={held_out}", "--vocab-size", "16000"]
    for spec in train:
        argv += ["--corpus", spec]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    assert child.stderr is not None
    log = child.stderr.read().decode("utf-8", errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"merge with --sample-chars {budget} on {base} failed:\n{log[-2000:]}")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    sample = next(iter(report["sample"].values()))
    corpora = report["corpora"]
    held = next(name for name in corpora if name.endswith("(held out)"))
    return {
        "sample_chars": budget, "sampled_chars": sample["sampled_chars"], "read_chars": sample["read_chars"],
        "added_pieces": report["added_pieces"],
        "chars_per_token_wiki_test": corpora["wiki-test"]["chars_per_token_extended"],
        "chars_per_token_heldout_share": corpora[held]["chars_per_token_extended"],
        "chars_per_token_base_wiki_test": corpora["wiki-test"]["chars_per_token_base"],
        "wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "phase_seconds": json.loads((out / "run.json").read_text(encoding="utf-8"))["phase_seconds"],
    }


def with_ratios(points: list[dict[str, object]]) -> list[dict[str, object]]:
    """Each point with its figures as a ratio to training on everything (the ``sample_chars`` 0 point)."""
    whole = next(p for p in points if p["sample_chars"] == 0)
    for point in points:
        for key in ("chars_per_token_wiki_test", "chars_per_token_heldout_share"):
            point[f"{key}_vs_all"] = round(point[key] / whole[key], 4)  # type: ignore[operator]
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--budgets", type=int, nargs="+", default=BUDGETS)
    parser.add_argument("--bases", nargs="+", default=list(BASES.values()))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.corpora.is_dir():
        raise SystemExit(f"error: {args.corpora} does not exist: pass --corpora with a folder laid out as "
                         "<lang>/<name>.txt (bench/README.md says how to get equivalent public text)")
    train = [str(args.corpora / f) for f in TRAIN]
    work = Path(tempfile.mkdtemp(prefix="bench-sample-"))
    results: dict[str, list[dict[str, object]]] = {}
    if args.json and args.json.is_file():
        results = json.loads(args.json.read_text(encoding="utf-8"))["curves"]
    for label, base in BASES.items():
        if base not in args.bases:
            continue
        budgets = set(args.budgets) | {0}
        points = [p for p in results.get(label, []) if p["sample_chars"] not in budgets]  # kept from the file
        for budget in sorted(budgets, key=lambda b: b or float("inf")):
            point = merge_once(base, train, str(args.corpora / HELD_OUT), budget, work / f"{base}-{budget}")
            print(json.dumps({"base": base, **point}), flush=True)
            points = sorted([*points, point], key=lambda p: p["sample_chars"] or float("inf"))  # type: ignore
            results[label] = points
            write(args.json, results)
        results[label] = with_ratios(points)
        write(args.json, results)


def write(path: Path | None, results: dict[str, list[dict[str, object]]]) -> None:
    """The figures so far (a curve's ratios once its last point, training on everything, is in)."""
    output = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores shared with other work ({platform.system()})",
        "runs": 1, "note": "training is deterministic: one run per point gives the figure; times are one run's",
        "train_files": TRAIN, "held_out": {"wiki-test": HELD_OUT, "heldout share": "5% of the train files, by hash"},
        "vocab_size": 16_000, "curves": results,
    }
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(output, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
