#!/usr/bin/env python3
"""Benchmark of the data path against the tokenizers library's own batch encoder, on the same text and cores.

Packing for pretraining (documents → EOS-separated ids → ``block_size`` blocks in the on-disk cache, as
``vocab-extend pretrain`` builds it) in tokens/s, and ``vocab-extend measure`` (one tokenizer, one corpus,
every figure and interval of the command) in characters/s, each against the raw floor: ``Tokenizer.
encode_batch`` of ``tokenizers`` on the same documents, already in memory, in batches of 10,000 documents
on all cores (tokens counted, nothing else done). Each figure runs in a process of its own (its peak RSS is
that process's), timed after its imports (measure's time includes loading its tokenizer; packing's starts
with the tokenizer loaded, as pretraining has it); within a run the floor runs right before each of ours, back to back, so
a ratio compares two timings taken under the same load. Reported: the median over ``--runs`` runs of the
throughputs and of the per-run ratios, wall and CPU (all threads) seconds, peak RSS and the load average
seen before each run (other users share the cores).

The corpus: the shared Japanese files (``--shared``, default ``../shared/corpora``) repeated to ``--mb`` MB;
the tokenizer: SmolLM2-135M's byte-level BPE (the bundled ``smollm2-135m``), or ``--tokenizer``.

    python bench/data_speed.py --json bench/results/data_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vocab_extend.atomic import atomic_write_json  # noqa: E402
RAW_BATCH = 10_000  # documents per encode_batch call of the floor


def _usage() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _done(start: tuple[float, float], **figures: object) -> dict[str, object]:
    wall, cpu = _usage()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"wall_s": wall - start[0], "cpu_s": cpu - start[1], "peak_rss_bytes": peak, **figures}


def _raw(corpus: Path, tokenizer: Path) -> dict[str, object]:
    from tokenizers import Tokenizer

    from vocab_extend.corpus import iter_documents

    tok = Tokenizer.from_file(str(tokenizer / "tokenizer.json"))
    docs = list(iter_documents(str(corpus)))
    start, tokens = _usage(), 0
    for i in range(0, len(docs), RAW_BATCH):
        tokens += sum(len(e) for e in tok.encode_batch(docs[i:i + RAW_BATCH], add_special_tokens=False))
    return _done(start, tokens=tokens, chars=sum(map(len, docs)), documents=len(docs))


def _pack(corpus: Path, tokenizer: Path) -> dict[str, object]:
    from vocab_extend.pretrain.data import DataConfig, build_training_blocks
    from vocab_extend.tokenizer.loader import load_tokenizer

    tok = load_tokenizer(str(tokenizer))
    with tempfile.TemporaryDirectory() as cache:
        data = DataConfig(train=[str(corpus)], block_size=2048, cache_dir=cache)
        start = _usage()
        blocks = build_training_blocks(data, 0, tok, frozenset())
        return _done(start, tokens=blocks.tokens)


def _measure(corpus: Path, tokenizer: Path) -> dict[str, object]:
    from vocab_extend.tokenizer.measure import measure_tokenizers

    from transformers import AutoTokenizer  # noqa: F401  (imports before the clock, as the floor's are)

    start = _usage()
    row = measure_tokenizers({"t": str(tokenizer)}, {"ja": str(corpus)}, progress=False)["ja"]["t"]
    return _done(start, chars=row["chars"], tokens=row["tokens"])


def _one(kind: str, corpus: Path, tokenizer: Path) -> dict[str, object]:
    """One figure in a process of its own; returns what it printed."""
    out = subprocess.run([sys.executable, __file__, "--one", kind, "--corpus", str(corpus), "--tokenizer",
                          str(tokenizer)], check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _corpus(shared: Path, megabytes: float, folder: Path) -> Path:
    files = sorted((shared / "ja").glob("*.txt"))
    if not files:
        sys.exit(f"no shared Japanese corpus under {shared / 'ja'}: pass --shared")
    text = b"".join(f.read_bytes().rstrip(b"\n") + b"\n" for f in files)
    path, size = folder / "ja.txt", 0
    with open(path, "wb") as fh:
        while size < megabytes * 1e6:
            fh.write(text)
            size += len(text)
    return path


def _tokenizer(spec: str, folder: Path) -> Path:
    from vocab_extend.tokenizer.loader import load_tokenizer

    if (Path(spec) / "tokenizer.json").is_file():
        return Path(spec)
    load_tokenizer(spec).save_pretrained(folder / "tokenizer")
    return folder / "tokenizer"


def _summary(runs: list[dict[str, dict]], ours: str, unit: str) -> dict[str, object]:
    floor = f"raw_before_{ours}"
    speed = {k: [r[k][unit] / r[k]["wall_s"] for r in runs] for k in (ours, floor)}
    per_cpu = {k: [r[k][unit] / r[k]["cpu_s"] for r in runs] for k in (ours, floor)}
    return {
        f"ours_{unit}_per_s": statistics.median(speed[ours]),
        f"raw_{unit}_per_s": statistics.median(speed[floor]),
        "ratio_wall": statistics.median(a / b for a, b in zip(speed[ours], speed[floor])),
        "ratio_wall_each_run": [round(a / b, 3) for a, b in zip(speed[ours], speed[floor])],
        "ratio_per_cpu_second": statistics.median(a / b for a, b in zip(per_cpu[ours], per_cpu[floor])),
        "ours_peak_rss_gb": max(r[ours]["peak_rss_bytes"] for r in runs) / 1e9,
        "raw_peak_rss_gb": max(r[floor]["peak_rss_bytes"] for r in runs) / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", choices=["raw", "pack", "measure"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer", default="smollm2-135m", help="a tokenizer folder or alias")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--mb", type=float, default=50.0, help="corpus size in MB (the shared text repeated)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.one:
        one = {"raw": _raw, "pack": _pack, "measure": _measure}[args.one]
        print(json.dumps(one(args.corpus, Path(args.tokenizer))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        corpus, tokenizer = _corpus(args.shared, args.mb, Path(tmp)), _tokenizer(args.tokenizer, Path(tmp))
        runs = []
        for run in range(args.runs):
            record: dict[str, object] = {"load_average_before": os.getloadavg()}
            for kind in ("pack", "measure"):
                record[f"raw_before_{kind}"] = _one("raw", corpus, tokenizer)
                record[kind] = _one(kind, corpus, tokenizer)
            print(f"run {run + 1}: " + json.dumps(record), file=sys.stderr)
            runs.append(record)
        result = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with other "
                       "users: see each run's load average)",
            "corpus": f"the shared Japanese files repeated to {corpus.stat().st_size / 1e6:.1f} MB",
            "tokenizer": args.tokenizer, "runs": args.runs, "statistic": "median over runs",
            "floor": f"tokenizers Tokenizer.encode_batch, documents in memory, {RAW_BATCH:,} per call, all cores",
            "packing": _summary(runs, "pack", "tokens"),
            "measure": _summary(runs, "measure", "chars"),
            "each_run": runs,
        }
    print(json.dumps({k: result[k] for k in ("packing", "measure")}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, result, indent=1)


if __name__ == "__main__":
    main()
