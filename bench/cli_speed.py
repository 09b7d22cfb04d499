#!/usr/bin/env python3
"""Wall time of ``vocab-extend --help``, ``init-model --bogus`` (an argument error) and ``<sub> --help``.

Each command runs ``--runs`` times (default 5) as ``python -m vocab_extend.cli ...`` in a fresh interpreter
with this checkout first on ``PYTHONPATH``; the median is kept, with the exit code. The target is under 1 s
for ``--help`` and for an argument error: a subcommand module imports torch, transformers, sentencepiece and
datasets only when it runs (see ``vocab_extend/cli.py``). ``--before DIR`` also times another checkout (for
example ``git worktree add /tmp/before HEAD~3``), so that one JSON holds both.

    python bench/cli_speed.py
    python bench/cli_speed.py --before /tmp/before --before-label "$(git rev-parse --short HEAD~3)"

Writes ``bench/results/cli_speed.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vocab_extend.atomic import atomic_write_json  # noqa: E402
from vocab_extend.cli import SUBCOMMANDS  # noqa: E402

RESULT = ROOT / "bench" / "results" / "cli_speed.json"
TARGET_S = 1.0


def commands() -> dict[str, list[str]]:
    """Label -> arguments of ``vocab-extend``."""
    table = {"--help": ["--help"], "init-model --bogus": ["init-model", "--bogus"]}
    table.update({f"{name} --help": [name, "--help"] for name in SUBCOMMANDS})
    return table


def median_seconds(root: Path, arguments: list[str], runs: int) -> dict[str, float | int]:
    """The median wall time of ``runs`` runs of ``vocab-extend ARGUMENTS`` from ``root``, and the exit code."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    times, code = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "vocab_extend.cli", *arguments], cwd=root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        times.append(time.perf_counter() - started)
        code = done.returncode
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3), "exit_code": code}


def time_checkout(root: Path, runs: int) -> dict[str, dict[str, float | int]]:
    found = {}
    for label, arguments in commands().items():
        found[label] = median_seconds(root, arguments, runs)
        print(f"  {label:<24} {found[label]['median_s']:6.2f} s (exit {found[label]['exit_code']})", flush=True)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command; the median is kept (default 5)")
    parser.add_argument("--before", type=Path, default=None, metavar="DIR",
                        help="another checkout to time the same way, kept under 'before'")
    parser.add_argument("--before-label", default=None, metavar="TEXT",
                        help="what the --before checkout is (for example its commit), kept beside its figures")
    parser.add_argument("--json", type=Path, default=RESULT, help=f"where to write the figures (default {RESULT})")
    args = parser.parse_args()
    report: dict[str, object] = {
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "runs": args.runs, "target_s": TARGET_S,
        "note": "wall time of `python -m vocab_extend.cli ARGS` in a fresh interpreter, median of the runs",
    }
    if args.before is not None:
        print(f"before ({args.before}):")
        report["before_label"] = args.before_label or "another checkout"
        report["before"] = time_checkout(args.before.resolve(), args.runs)
    print(f"this checkout ({ROOT}):")
    after = time_checkout(ROOT, args.runs)
    report["after"] = after
    report["under_target"] = all(after[k]["median_s"] < TARGET_S for k in ("--help", "init-model --bogus"))
    atomic_write_json(args.json, report)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
