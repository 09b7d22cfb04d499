#!/usr/bin/env python3
"""Run the README's documented path on the bundled data and time each step, with its longest silence.

Each step is a command the README documents, run as a user runs it, in a pseudo-terminal (so progress bars
draw as they do for a user), from the repository root; outputs land in ``outputs/`` and ``runs/`` (ignored
by git), each step passing ``--overwrite`` so the bench can run twice. For each step the JSON records the
wall time, the exit code and the **longest silence**: the most seconds between two writes to the terminal
(a progress bar's redraw counts as a write). The README's "How long each command takes" table quotes these
figures; the issue's target is that no step stays silent for more than 10 s.

    python bench/readme_times.py                    # every step
    python bench/readme_times.py --only merge init  # steps whose name starts with one of these

Writes ``bench/results/readme_times.json`` (the machine, its load average before and after each step).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vocab_extend.atomic import atomic_write_json  # noqa: E402

RESULT = ROOT / "bench" / "results" / "readme_times.json"
SILENCE_TARGET_S = 10.0
PY = sys.executable
SMOL, SMOL_INIT, RUN = "outputs/smollm2-135m-ja", "outputs/smollm2-135m-ja-init", "runs/readme-smollm2-ja"

# name -> the README's command (arguments after the interpreter); in the order the README gives them
STEPS: dict[str, list[str]] = {
    "merge (make demo's step)": ["scripts/merge_tokenizer.py", "--overwrite"],
    "merge --base smollm2-135m": ["scripts/merge_tokenizer.py", "--base", "smollm2-135m", "--corpus", "corpora/ja",
                                  "--overwrite"],
    "init-model --method mean": ["scripts/init_embeddings.py", "--model", "smollm2-135m", "--tokenizer", SMOL,
                                 "--method", "mean", "--output-dir", SMOL_INIT, "--overwrite"],
    "evaluate-bpb (50,000 bytes a corpus)": ["scripts/evaluate_bpb.py", "--model", SMOL_INIT, "--corpus",
                                             "ja=corpora/ja", "--corpus", "en=corpora/en", "--max-bytes", "50000",
                                             "--json", "outputs/bpb.json"],
    "pretrain configs/pico-smoke.yaml": ["-m", "vocab_extend.cli", "pretrain", "--config", "configs/pico-smoke.yaml",
                                         "--overwrite"],
    "pretrain configs/smollm2-ja.yaml --max-steps 4": ["scripts/continued_pretrain.py", "--config",
                                                       "configs/smollm2-ja.yaml", "--max-steps", "4",
                                                       "--output-dir", RUN, "--overwrite"],
    "export-checkpoint (the run's last checkpoint)": ["-m", "vocab_extend.cli", "export-checkpoint",
                                                      f"{RUN}/checkpoints/step-00000004", "outputs/readme-step-4",
                                                      "--overwrite"],
    "export-gguf (f16)": ["-m", "vocab_extend.cli", "export-gguf", "--model", SMOL_INIT, "--output",
                          "outputs/smollm2-ja.f16.gguf", "--overwrite"],
    "check-gguf": ["-m", "vocab_extend.cli", "check-gguf", "outputs/smollm2-ja.f16.gguf", "--tokenizer", SMOL_INIT],
    "measure": ["scripts/measure_tokenizers.py", "--tokenizer", "base=mistral-7b-v0.1", "--tokenizer",
                "ext=outputs/mistral-7b-v0.1-ja", "--corpus", "ja=corpora/ja", "--corpus", "en=corpora/en",
                "--json", "outputs/measure.json", "--plot", "outputs/measure.png"],
}


def run_in_terminal(argv: list[str], log_path: Path) -> dict[str, Any]:
    """Run ``argv`` with a pseudo-terminal as its stdout and stderr; the wall time, exit code and the
    longest gap between two writes (from the start to the first write and from the last write to the end
    count too)."""
    main_fd, child_fd = pty.openpty()
    # a terminal of 40 x 120 (a fresh pty has 0 columns, and progress bars would draw nothing)
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    started = time.monotonic()
    child = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=child_fd, stderr=child_fd,
                             env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"})
    os.close(child_fd)
    last, longest, longest_at = started, 0.0, 0.0
    with log_path.open("wb", buffering=0) as log:
        while True:
            ready, _, _ = select.select([main_fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(main_fd, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    break
                now = time.monotonic()
                if now - last > longest:
                    longest, longest_at = now - last, last - started
                last = now
                log.write(chunk)
            elif child.poll() is not None:
                break
    code = child.wait()
    os.close(main_fd)
    end = time.monotonic()
    if end - last > longest:
        longest, longest_at = end - last, last - started
    return {"exit_code": code, "wall_s": round(end - started, 1), "longest_silence_s": round(longest, 1),
            "silence_starts_at_s": round(longest_at, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="run only the steps whose name starts so")
    parser.add_argument("--logs", type=Path, default=ROOT / "outputs" / "readme-times-logs",
                        help="where each step's terminal output is kept")
    args = parser.parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)
    steps = {name: cmd for name, cmd in STEPS.items()
             if not args.only or any(name.startswith(prefix) for prefix in args.only)}
    results: dict[str, Any] = {}
    if args.only and RESULT.is_file():  # keep the steps not rerun
        results = {name: figures for name, figures in json.loads(RESULT.read_text(encoding="utf-8"))["steps"].items()
                   if name in STEPS}
    for index, (name, cmd) in enumerate(steps.items()):
        load_before = os.getloadavg()[0]
        print(f"[{index + 1}/{len(steps)}] {name}", flush=True)
        figures = run_in_terminal([PY, *cmd], args.logs / f"step-{index + 1:02d}.log")
        figures.update({"command": " ".join(["python", *cmd]), "load_before": round(load_before, 1),
                        "load_after": round(os.getloadavg()[0], 1),
                        "silent_over_target": figures["longest_silence_s"] > SILENCE_TARGET_S})
        print(f"    {figures['wall_s']} s, exit {figures['exit_code']}, longest silence "
              f"{figures['longest_silence_s']} s", flush=True)
        results[name] = figures
    atomic_write_json(RESULT, {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "note": "one run per step, in a pseudo-terminal; the load average shows whether other work shared the "
                "cores (2 cores: a load of 2 is a busy machine)",
        "silence_target_s": SILENCE_TARGET_S,
        "steps": {name: results[name] for name in STEPS if name in results},
    })
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
