#!/usr/bin/env python3
"""Streamed resume: time to continue a streamed pico run from its checkpointed state at step 10 vs step 2,000.

A streamed corpus (the project's Japanese sample, 8 × 64-token blocks per step, shuffle buffer 1,000) is read
up to the step, its state taken as a checkpoint keeps it, and a fresh stream restored from that state
reads the next batch: that is what ``--resume`` does. For comparison, the time a stream needs to get
there from the start (what resuming by replay costs). Target: restore time equal within noise at both steps.

    python bench/stream_resume.py --json bench/results/stream_resume.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed one
from vocab_extend.atomic import atomic_write_json  # noqa: E402  (after the path is set)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 2000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from vocab_extend.tokenizer.loader import load_tokenizer
    from vocab_extend.pretrain.config import config_from_dict
    from vocab_extend.pretrain.data import build_training_blocks
    from vocab_extend.pretrain.model import build_merged_tokenizer

    batch, results = 8, {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)", "steps": {}}
    with tempfile.TemporaryDirectory() as tmp:
        config = config_from_dict(dict(
            model="pico", tokenizer_merge={"corpus": [str(ROOT / "corpora" / "ja")], "vocab_size": 3000, "lang": "ja"},
            train=[str(ROOT / "corpora" / "ja")], streaming=True, shuffle_buffer=1000, block_size=64,
            batch_size=batch, cache_dir=tmp, output_dir=f"{tmp}/run"))
        tokenizer = load_tokenizer(str(build_merged_tokenizer(config.model, config.data)))
        for step in args.steps:
            stream = build_training_blocks(config.data, config.seed, tokenizer, frozenset())
            started = time.perf_counter()
            for s in range(step):
                stream.get(s * batch, batch)
            replay = time.perf_counter() - started
            state, expected = stream.state(), stream.get(step * batch, batch)
            times, reads = [], []
            for _ in range(args.repeats):
                fresh = build_training_blocks(config.data, config.seed, tokenizer, frozenset())
                started = time.perf_counter()
                fresh.restore(state)
                got = fresh.get(step * batch, batch)
                times.append(time.perf_counter() - started)
                reads.append(fresh.documents_read)
                assert (got == expected).all()
            results["steps"][str(step)] = {
                "restore_and_first_batch_s": round(statistics.median(times), 4),
                "documents_read_on_resume": max(reads), "replay_from_start_s": round(replay, 3),
                "documents_read_by_replay": stream.documents_read, "epochs_by_then": stream.position.epoch}
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, results)


if __name__ == "__main__":
    main()
