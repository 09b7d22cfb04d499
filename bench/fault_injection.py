"""kill -9 at random points of a merge and of a pretraining run: is an output ever partial, does the next
run clean up, and does a resumed run end exactly where an uninterrupted one does?

Merge: each round starts ``vocab-extend merge --overwrite`` into a folder that already holds a complete
output (or, every other pair of rounds, where there is none), kills it with SIGKILL at a random moment (half
the rounds anywhere in the run, half inside the write phase: after its temporary folder appeared), then
looks at the output folder (complete = byte-identical to a reference run, absent, or partial) and at what
is left beside it (temporary folders, ``.old``, the lock file). Then a normal run follows, and the same is
recorded after it, i.e. after its sweep.

Pretraining: each round starts a pico run (checkpoints every 2 steps) and kills it at a random moment (half
the rounds anywhere, half while a checkpoint is being written: after its ``.tmp-step-*`` folder appeared),
then records the checkpoints (each verified against its manifest) and what is left (partial checkpoints,
temporary model folders, the lock). The run is then continued as a user would (``--resume`` when a
checkpoint exists, else ``--overwrite``) and its final weights and losses are compared with an
uninterrupted run's.

    python bench/fault_injection.py                      # 10 rounds of each, seed 0
    python bench/fault_injection.py --runs 4 --seed 1 --part pretrain

Writes ``bench/results/fault_injection.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vocab_extend.atomic import atomic_write_json, leftovers  # noqa: E402
from vocab_extend.locks import lock_path  # noqa: E402

CORPUS = ROOT / "corpora" / "ja"
RESULT = ROOT / "bench" / "results" / "fault_injection.json"


def merge_command(out: Path, vocab_size: int) -> list[str]:
    return [sys.executable, "-m", "vocab_extend.cli", "merge", "--corpus", str(CORPUS), "--vocab-size",
            str(vocab_size), "--output-dir", str(out), "--overwrite"]


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def digests(folder: Path) -> dict[str, str] | None:
    if not folder.is_dir():
        return None
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def state(out: Path, reference: dict[str, str]) -> str:
    found = digests(out)
    if found is None:
        return "absent"
    return "complete" if found == reference else "partial"


def left_beside(out: Path) -> list[str]:
    names = [p.name for p in leftovers(out)]
    if lock_path(out).exists():
        names.append(lock_path(out).name)
    return sorted(names)


def run_to_end(out: Path, vocab_size: int) -> tuple[int, float]:
    started = time.monotonic()
    proc = subprocess.run(merge_command(out, vocab_size), env=child_env(), cwd=str(ROOT),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode("utf-8", "replace"))
    return proc.returncode, time.monotonic() - started


def write_phase_start(out: Path, vocab_size: int) -> tuple[float, float]:
    """(seconds until the temporary folder appears, seconds of the whole run) of one uninterrupted run."""
    started = time.monotonic()
    proc = subprocess.Popen(merge_command(out, vocab_size), env=child_env(), cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = None
    while proc.poll() is None:
        if seen is None and any(n.endswith(".tmp") for n in left_beside(out)):
            seen = time.monotonic() - started
        time.sleep(0.01)
    if proc.returncode != 0:
        raise SystemExit(f"the timing run failed with exit code {proc.returncode}")
    return (seen if seen is not None else 0.0), time.monotonic() - started


def kill_round(out: Path, vocab_size: int, delay: float, in_write_phase: bool) -> dict[str, object]:
    """Start a merge, kill -9 it ``delay`` seconds after its start (or after its temporary folder appeared)."""
    started = time.monotonic()
    proc = subprocess.Popen(merge_command(out, vocab_size), env=child_env(), cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    origin = started
    if in_write_phase:
        while proc.poll() is None and not any(n.endswith(".tmp") for n in left_beside(out)):
            time.sleep(0.005)
        origin = time.monotonic()
    while proc.poll() is None and time.monotonic() < origin + delay:
        time.sleep(0.005)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    code = proc.wait()
    return {"killed": killed, "exit_code": code, "kill_at_s": round(time.monotonic() - started, 3),
            "in_write_phase": in_write_phase}


def merge_rounds(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="vocab-extend-faults-"))
    try:
        reference_dir = work / "reference" / "out"
        code, seconds = run_to_end(reference_dir, args.vocab_size)
        if code != 0:
            raise SystemExit(f"the reference merge failed with exit code {code}")
        reference = digests(reference_dir)
        assert reference is not None
        out = work / "runs" / "out"
        out.parent.mkdir()
        shutil.copytree(reference_dir, out)
        write_start, total = write_phase_start(out, args.vocab_size)
        assert state(out, reference) == "complete"
        rounds = []
        durations = [total]
        for i in range(args.runs):
            in_write_phase = i % 2 == 1
            over_previous = i % 4 < 2  # else the round starts with no output at all
            if not over_previous:
                shutil.rmtree(out)
            # within 90% of the phase of the fastest run so far, so that the kill lands on a busy machine too
            fastest = min(durations)
            delay = rng.uniform(0, 0.9 * (max(fastest - write_start, 0.1) if in_write_phase else fastest))
            record = kill_round(out, args.vocab_size, delay, in_write_phase)
            record["over_previous_output"] = over_previous
            record["output_after_kill"] = state(out, reference)
            record["left_after_kill"] = left_beside(out)
            code, seconds = run_to_end(out, args.vocab_size)
            durations.append(seconds)
            record["next_run_exit_code"] = code
            record["output_after_next_run"] = state(out, reference)
            record["left_after_next_run"] = left_beside(out)
            rounds.append(record)
            print(json.dumps(record), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    killed = [r for r in rounds if r["killed"]]
    summary = {
        "what": "kill -9 at random points of `vocab-extend merge --overwrite` (over a complete output, or where "
                "there is none), then a normal run",
        "command": f"merge --corpus corpora/ja --vocab-size {args.vocab_size} --overwrite",
        "seed": args.seed,
        "runs": len(rounds),
        "killed": len(killed),
        "killed_in_write_phase": sum(1 for r in killed if r["in_write_phase"]),
        "killed_over_previous_output": sum(1 for r in killed if r["over_previous_output"]),
        "run_seconds": [round(total, 2), round(min(durations), 2)],  # first timing run, fastest run
        "write_phase_starts_at_s": round(write_start, 2),
        "outputs_after_kill": {s: sum(1 for r in rounds if r["output_after_kill"] == s)
                               for s in ("complete", "absent", "partial")},
        "rounds_with_leftovers_after_kill": sum(1 for r in rounds if r["left_after_kill"]),
        "leftovers_after_kill": sum(len(r["left_after_kill"]) for r in rounds),
        "next_runs_ok": sum(1 for r in rounds if r["next_run_exit_code"] == 0
                            and r["output_after_next_run"] == "complete"),
        "leftovers_after_next_run": sum(len(r["left_after_next_run"]) for r in rounds),
        "rounds": rounds,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}, indent=2))
    return summary


# ------------------------------------------------------------------------------------------- pretraining

PRETRAIN_CONFIG = """\
model: pico
pico: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4,
       num_key_value_heads: 2, max_position_embeddings: 64}
tokenizer_merge: {corpus: CORPUS, vocab_size: 2000, lang: ja}
train: [ja=CORPUS]
heldout_fraction: 0.1
block_size: 32
batch_size: 4
stages: [{name: new-rows, steps: 6, lr: 3.0e-3}, {name: full, steps: 6, lr: 1.0e-3}]
warmup_steps: 1
eval_every: 0
eval_at_start: false
eval_max_bytes: 2000
save_every: 2
keep_checkpoints: 2
progress: false
tensorboard: false
compare_base: false
cache_dir: CACHE
"""


def pretrain_command(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vocab_extend.cli", "pretrain", "--config", str(config), "--output-dir",
            str(out), *extra]


def train_losses(out: Path) -> list[float]:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["loss"] for r in records if r.get("kind") == "train"]


def model_digest(out: Path) -> str | None:
    path = out / "model" / "model.safetensors"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def run_leftovers(out: Path) -> list[str]:
    found = [p.name for p in (out / "checkpoints").glob(".tmp-*")] if (out / "checkpoints").is_dir() else []
    found += [p.name for p in out.glob(".model*")] if out.is_dir() else []
    return sorted(found + left_beside(out))


def pretrain_rounds(args: argparse.Namespace) -> dict[str, object]:
    from vocab_extend.pretrain import checkpoint as ckpt

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="vocab-extend-faults-"))
    try:
        config = work / "pico.yaml"
        config.write_text(PRETRAIN_CONFIG.replace("CORPUS", str(CORPUS)).replace("CACHE", str(work / "cache")),
                          encoding="utf-8")
        reference = work / "reference"
        subprocess.run(pretrain_command(config, reference), env=child_env(), cwd=str(ROOT), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)  # fills the cache
        shutil.rmtree(reference)
        started = time.monotonic()
        subprocess.run(pretrain_command(config, reference), env=child_env(), cwd=str(ROOT), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
        total = time.monotonic() - started
        expected_model, expected_losses = model_digest(reference), train_losses(reference)
        rounds = []
        for i in range(args.runs):
            out = work / f"run{i}"
            during_save = i % 2 == 1
            proc = subprocess.Popen(pretrain_command(config, out), env=child_env(), cwd=str(ROOT),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            begun = time.monotonic()
            if during_save:  # wait for the n-th checkpoint's staging folder, then kill within 0.2 s
                target = rng.randint(1, 5)
                while proc.poll() is None and not (out / "checkpoints" / f".tmp-step-{2 * target:08d}").exists():
                    time.sleep(0.002)
                origin, delay = time.monotonic(), rng.uniform(0, 0.2)
            else:
                origin, delay = begun, rng.uniform(0, 0.95 * total)
            while proc.poll() is None and time.monotonic() < origin + delay:
                time.sleep(0.002)
            killed = proc.poll() is None
            if killed:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
            complete = ckpt.list_checkpoints(out)
            record: dict[str, object] = {
                "killed": killed, "during_checkpoint_save": during_save,
                "kill_at_s": round(time.monotonic() - begun, 3),
                "checkpoints_after_kill": [p.name for p in complete],
                "checkpoints_failing_verification": [p.name for p in complete if ckpt.verify(p) is not None],
                "left_after_kill": run_leftovers(out),
            }
            if model_digest(out) is not None:  # killed after its model was written: what a user then tries
                how = "finished before the kill"
                done = subprocess.run(pretrain_command(config, out, "--resume"), env=child_env(), cwd=str(ROOT),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
                refused = done.returncode == 2 and b"has finished" in done.stderr
                code = 0 if refused else done.returncode
            else:
                how = "--resume" if complete else "--overwrite" if out.exists() else "new run"
                extra = {"--resume": ["--resume"], "--overwrite": ["--overwrite"], "new run": []}[how]
                done = subprocess.run(pretrain_command(config, out, *extra), env=child_env(), cwd=str(ROOT),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
                code = done.returncode
                if code != 0:
                    sys.stderr.write(done.stderr.decode("utf-8", "replace"))
            record.update({
                "continued_with": how, "next_run_exit_code": code,
                "same_model_as_uninterrupted": model_digest(out) == expected_model,
                "same_losses_as_uninterrupted": train_losses(out) == expected_losses,
                "left_after_next_run": run_leftovers(out),
            })
            rounds.append(record)
            print(json.dumps(record), flush=True)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    killed = [r for r in rounds if r["killed"]]
    summary = {
        "what": "kill -9 at random points of a pico `vocab-extend pretrain` run (12 steps, a checkpoint every 2), "
                "then --resume (or --overwrite when no checkpoint was complete)",
        "seed": args.seed,
        "runs": len(rounds),
        "killed": len(killed),
        "killed_during_checkpoint_save": sum(1 for r in killed if r["during_checkpoint_save"]),
        "uninterrupted_run_seconds": round(total, 2),
        "resumed": sum(1 for r in rounds if r["continued_with"] == "--resume"),
        "restarted": sum(1 for r in rounds if r["continued_with"] in ("--overwrite", "new run")),
        "checkpoints_failing_verification_after_kill": sum(len(r["checkpoints_failing_verification"])
                                                           for r in rounds),
        "rounds_with_leftovers_after_kill": sum(1 for r in rounds if r["left_after_kill"]),
        "leftovers_after_kill": sum(len(r["left_after_kill"]) for r in rounds),
        "next_runs_ok": sum(1 for r in rounds if r["next_run_exit_code"] == 0),
        "ended_exactly_as_uninterrupted": sum(1 for r in rounds if r["same_model_as_uninterrupted"]
                                              and r["same_losses_as_uninterrupted"]),
        "leftovers_after_next_run": sum(len(r["left_after_next_run"]) for r in rounds),
        "rounds": rounds,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}, indent=2))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="rounds of each part")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--part", choices=("merge", "pretrain", "both"), default="both")
    args = parser.parse_args()
    result: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs shared with other jobs, Python "
                   f"{platform.python_version()}",
    }
    if RESULT.is_file():  # keep the other part's figures when only one part is run
        result.update({k: v for k, v in json.loads(RESULT.read_text(encoding="utf-8")).items()
                       if k in ("merge", "pretrain")})
    if args.part in ("merge", "both"):
        result["merge"] = merge_rounds(args)
    if args.part in ("pretrain", "both"):
        result["pretrain"] = pretrain_rounds(args)
    atomic_write_json(RESULT, result)


if __name__ == "__main__":
    main()
