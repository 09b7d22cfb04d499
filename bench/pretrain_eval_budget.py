#!/usr/bin/env python3
"""A short SmolLM2 run end to end: evaluation with the fixed budget against the budget sized to the run.

Three variants of ``vocab-extend pretrain --config configs/smollm2-ja.yaml --max-steps 4``, back to back on
the same cores, each in its own output folder:

- ``fixed``: ``--eval-bytes-per-token null`` (every corpus scored up to ``max_bytes``, as before the budget
  was sized to the run) with no stored base-model score (what every run paid before scores were stored);
- ``sized, first run``: the defaults, no stored score (the base model is scored once and the score stored);
- ``sized, second run``: the defaults again, the score stored by the previous variant read back.

Each variant gets a scratch cache whose ``gguf/`` links to the real one (no variant pays the one-off GGUF
conversion) and whose ``bpb/`` starts empty, except the second run, which shares the first's. Reported per
variant: the command's wall time, the training steps' own time (from ``metrics.jsonl``: tokens / tokens per
second) and the time until the step-0 evaluation was done. Needs ``outputs/smollm2-135m-ja-init`` (the
commands at the top of ``configs/smollm2-ja.yaml``).

Always reported, whatever the load on the machine: the **work** of each budget, the tokens the model is fed
(every window's tokens, context included) per evaluation and per comparison with the base model, counted
with the tokenizers alone (``--work-only`` stops there: seconds, no model run). Training's work is 3 × its
tokens (forward and backward).

    python bench/pretrain_eval_budget.py --json bench/results/pretrain_eval_budget.json
    python bench/pretrain_eval_budget.py --work-only --json bench/results/pretrain_eval_budget.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed one
from vocab_extend.atomic import atomic_write_json  # noqa: E402  (after the path is set)
from vocab_extend.model.cache import cache_root  # noqa: E402

VARIANTS = (("fixed", ["--eval-bytes-per-token", "null"], "fresh"),
            ("sized, first run", [], "fresh"),
            ("sized, second run", [], "shared"))


def run_once(args: argparse.Namespace, name: str, extra: list[str], cache: Path, out: Path) -> dict[str, object]:
    """One ``pretrain`` command: its wall time, when the step-0 evaluation ended, its training steps' time."""
    env = {**os.environ, "VOCAB_EXTEND_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "vocab_extend.cli", "pretrain", "--config", args.config,
            "--max-steps", str(args.max_steps), "--output-dir", str(out), "--overwrite", *extra]
    began = time.perf_counter()
    first_eval = None
    with subprocess.Popen(argv, env=env, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          text=True, errors="replace") as proc:
        for line in proc.stderr:  # type: ignore[union-attr]
            if first_eval is None and line.startswith("step 0: bits per byte"):
                first_eval = time.perf_counter() - began
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"{name}: pretrain exited with {proc.returncode}")
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if x]
    tokens = json.loads((out / "all_results.json").read_text(encoding="utf-8"))["train_tokens"]
    steps = [r for r in records if r["kind"] == "train"]
    step_seconds = sum(tokens / len(steps) / r["tokens_per_s"] for r in steps)
    evals = [r for r in records if r["kind"] == "eval"]
    return {"wall_s": round(wall, 1), "step0_eval_done_s": None if first_eval is None else round(first_eval, 1),
            "training_steps_s": round(step_seconds, 1), "eval_bytes": evals[-1].get("bytes")}


def fed(tokenizer, texts: list[str], block: int) -> int:
    """Tokens fed to a model scoring ``texts`` in windows of ``block`` (stride half of it), context included."""
    from vocab_extend.model.evaluate.bpb import windows

    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return sum(len(w) for one in ids for w, _ in windows(one, 0, block, block // 2))


def work(args: argparse.Namespace) -> dict[str, object]:
    """Tokens fed per evaluation and per base comparison under each budget, and per run in all."""
    from vocab_extend.model.evaluate.bpb import truncate_to_bytes
    from vocab_extend.pretrain.config import load_config
    from vocab_extend.pretrain.data import eval_documents
    from vocab_extend.tokenizer.loader import load_base_tokenizer, load_tokenizer

    config = load_config(ROOT / args.config, {"max_steps": str(args.max_steps)})
    docs = eval_documents(config.data, config.eval)
    model = config.model.name if Path(config.model.name).is_absolute() else str(ROOT / config.model.name)
    extended, base = load_tokenizer(model), load_base_tokenizer(model)
    tokens = config.total_steps * config.data.batch_size * config.data.block_size
    evaluations = int(config.eval.at_start) + 1  # step 0 and the last step (every > max_steps)
    found: dict[str, object] = {"training_tokens": tokens, "training_work": 3 * tokens, "evaluations": evaluations}
    for label, budget in (("fixed", config.eval.max_bytes), ("sized", config.eval.budget(tokens))):
        kept = {name: truncate_to_bytes(texts, budget) for name, texts in docs.items()}
        each = sum(fed(extended, texts, 1024) for texts in kept.values())
        compare = sum(fed(base, texts, 1024) for texts in kept.values())
        found[label] = {"budget_bytes": budget, "bytes": {n: sum(len(t.encode()) for t in v) for n, v in kept.items()},
                        "fed_per_evaluation": each, "fed_per_base_comparison": compare,
                        "run_fed_with_comparison": evaluations * each + compare,
                        "run_fed_comparison_stored": evaluations * each}
    fixed = found["fixed"]["run_fed_with_comparison"]  # type: ignore[index]
    found["ratio_to_fixed"] = {key: round(found["sized"][key] / fixed, 3)  # type: ignore[index]
                               for key in ("run_fed_with_comparison", "run_fed_comparison_stored")}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/smollm2-ja.yaml")
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1, help="rounds of the three variants")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--work-only", action="store_true", help="count the work only (no run)")
    args = parser.parse_args()
    counted = work(args)
    print(json.dumps(counted, indent=2), flush=True)
    if args.work_only:
        if args.json:
            atomic_write_json(args.json, {"what": f"pretrain --config {args.config} --max-steps {args.max_steps}: "
                                                  "tokens fed to the model by evaluation, fixed vs sized budget",
                                          "machine": "tokenizers only: the same on any machine", "work": counted})
        return
    found: dict[str, list[dict[str, object]]] = {name: [] for name, _, _ in VARIANTS}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.runs):
            cache = None
            for name, extra, kind in VARIANTS:
                if kind == "fresh":
                    cache = Path(scratch) / f"cache-{round_}-{len(found[name])}-{name.split(',')[0]}"
                    cache.mkdir()
                    (cache / "gguf").symlink_to(cache_root().resolve() / "gguf")
                out = Path(scratch) / f"run-{round_}-{name.replace(' ', '-').replace(',', '')}"
                found[name].append(run_once(args, name, extra, cache, out))
                load.append(os.getloadavg()[0])
                print(name, found[name][-1], flush=True)
    result = {"what": f"pretrain --config {args.config} --max-steps {args.max_steps}, three variants back to back",
              "work": counted,
              "machine": f"2-core CPU shared with other jobs ({platform.machine()}, {os.cpu_count()} cores seen); "
                         f"1-minute load average between {min(load):.1f} and {max(load):.1f}",
              "runs": args.runs, "variants": found,
              "median_wall_s": {n: statistics.median(r["wall_s"] for r in v) for n, v in found.items()}}
    base = result["median_wall_s"]["fixed"]
    result["wall_ratio_to_fixed"] = {n: round(v / base, 3) for n, v in result["median_wall_s"].items()}
    print(json.dumps(result, indent=2))
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
