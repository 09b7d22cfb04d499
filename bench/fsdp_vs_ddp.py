#!/usr/bin/env python3
"""FSDP2 vs DDP on 2 CPU processes (gloo): tokens/s, and per-process memory of parameters + gradients +
AdamW state; and the AdamW state of ``new-rows`` (new rows as their own parameters) vs a gradient mask.

Each setting is one ``torchrun --nproc_per_node 2`` run of ``vocab-extend pretrain`` (stage ``full``, fp32)
through a small wrapper that, after every step, counts on each rank the bytes of the parameters it holds
(its shards under FSDP, a whole replica under DDP), of their gradients (one fp32 gradient per trainable
element held, alive from backward to ``zero_grad``) and of the AdamW moments, and keeps the peak. Tokens/s
is the median over the steps of the run's ``metrics.jsonl`` (first ``--skip`` steps left out). The
``new-rows`` figure counts the AdamW moments after one step of the split parameters (what the loop does)
and of the same two matrices trained whole with a gradient mask (what the loop did before).

    python bench/fsdp_vs_ddp.py --json bench/results/fsdp_vs_ddp.json
    python bench/fsdp_vs_ddp.py --models pico smollm2 --steps 6
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed one
from vocab_extend.atomic import atomic_write_json  # noqa: E402  (after the path is set)
SETUPS = {
    "pico": dict(model="pico", pico={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4,
                                     "num_attention_heads": 4, "num_key_value_heads": 2},
                 tokenizer_merge={"corpus": [str(ROOT / "corpora" / "ja")], "vocab_size": 3000, "lang": "ja"},
                 block_size=64, batch_size=8, micro_batch_size=4),
    "smollm2": dict(model="smollm2-135m", block_size=64, batch_size=4, micro_batch_size=2),
}
WRAPPER = """
import json, os, sys
import torch
from vocab_extend.pretrain import loop

def local_bytes(t):
    t = t.to_local() if hasattr(t, "to_local") else t
    return t.numel() * t.element_size()

original = loop.Trainer._step
peak = {"params": 0, "grads": 0, "optimizer": 0, "total": 0}

def step(self, model, params, optimizer, scheduler, step, *args):
    record = original(self, model, params, optimizer, scheduler, step, *args)
    held = sum(local_bytes(p) for p in {id(p): p for p in model.parameters()}.values())
    grads = sum(local_bytes(p) for p in params)  # fp32 gradients of the trainable elements held
    moments = sum(local_bytes(v) for s in optimizer.state.values() for k, v in s.items() if torch.is_tensor(v) and v.ndim)
    now = {"params": held, "grads": grads, "optimizer": moments, "total": held + grads + moments}
    if now["total"] > peak["total"]:
        peak.update(now)
    with open(os.environ["BENCH_OUT"] + f".rank{self.dist.rank}.json", "w") as fh:
        json.dump(peak, fh)
    return record

loop.Trainer._step = step
from vocab_extend.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(name: str, parallelism: str, steps: int, skip: int, tmp: Path) -> dict:
    data = dict(SETUPS[name])
    data.update(train=[str(ROOT / "corpora" / "ja")], stages=[{"name": "full", "steps": steps}], lr=3e-4,
                warmup_steps=1, eval={}, eval_every=0, eval_at_start=False, save_every=0, progress=False,
                tensorboard=False, cache_dir=str(tmp / "cache"), output_dir=str(tmp / f"{name}-{parallelism}"),
                parallelism=parallelism, precision="fp32", device="cpu", overwrite=True)
    config = tmp / f"{name}-{parallelism}.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    (tmp / "wrapper.py").write_text(WRAPPER, encoding="utf-8")
    out = tmp / f"{name}-{parallelism}-mem"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "BENCH_OUT": str(out)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(_port()), str(tmp / "wrapper.py"), "pretrain", "--config", str(config)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    records = [json.loads(line) for line in (tmp / f"{name}-{parallelism}" / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["tokens_per_s"] for r in records if r["kind"] == "train"][skip:]
    memory = [json.loads(Path(f"{out}.rank{r}.json").read_text()) for r in range(2)]
    return {"tokens_per_s": statistics.median(speeds), "memory_per_rank": memory,
            "peak_bytes": max(m["total"] for m in memory)}


def new_rows_optimizer_bytes() -> dict:
    """AdamW moments after one step: split new rows vs the whole matrices with a gradient mask."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from vocab_extend.pretrain.stages import StageConfig, prepare_stage

    # a Mistral-7B-like vocabulary (32,000 base rows + 18,000 new) on a small hidden size
    base, rows, hidden = 32_000, 50_000, 64

    def model():
        torch.manual_seed(0)
        return LlamaForCausalLM(LlamaConfig(vocab_size=rows, hidden_size=hidden, intermediate_size=128,
                                            num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2))

    def state_bytes(optimizer) -> int:
        return sum(v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values()
                   if torch.is_tensor(v) and v.ndim)

    ids = torch.randint(0, rows, (1, 16))
    split = model()
    prepared = prepare_stage(split, StageConfig("new-rows", 1), base)
    opt = torch.optim.AdamW(prepared.params)
    split(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    masked = model()
    matrices = [masked.model.embed_tokens.weight, masked.lm_head.weight]
    wanted = {id(p) for p in matrices}
    for p in masked.parameters():
        p.requires_grad_(id(p) in wanted)
    opt_mask = torch.optim.AdamW(matrices, weight_decay=0.0)
    masked(input_ids=ids, labels=ids).loss.backward()
    for p in matrices:
        p.grad[:base].zero_()
    opt_mask.step()
    ours, mask = state_bytes(opt), state_bytes(opt_mask)
    return {"base_rows": base, "rows": rows, "hidden": hidden, "split_bytes": ours, "mask_bytes": mask,
            "ratio": round(ours / mask, 4), "expected_ratio": round((rows - base) / rows, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["pico"], choices=sorted(SETUPS))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--skip", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)", "processes": 2,
                     "backend": "gloo", "precision": "fp32", "stage": "full", "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            ddp = run(name, "ddp", args.steps, args.skip, Path(tmp))
            fsdp = run(name, "fsdp", args.steps, args.skip, Path(tmp))
            results["models"][name] = {
                "ddp": ddp, "fsdp": fsdp,
                "tokens_per_s_ratio_fsdp_over_ddp": round(fsdp["tokens_per_s"] / ddp["tokens_per_s"], 3),
                "memory_ratio_fsdp_over_ddp": round(fsdp["peak_bytes"] / ddp["peak_bytes"], 3)}
            print(name, json.dumps(results["models"][name]["tokens_per_s_ratio_fsdp_over_ddp"]),
                  results["models"][name]["memory_ratio_fsdp_over_ddp"], flush=True)
    results["new_rows_optimizer_state"] = new_rows_optimizer_bytes()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, results)


if __name__ == "__main__":
    main()
