#!/usr/bin/env python3
"""Benchmark of the continued-pretraining loop: training tokens/s of ours vs the Hugging Face Trainer.

Both train the same model on the same packed blocks (the loop's own cache), with the same global batch,
micro-batch, AdamW settings, warmup + cosine schedule, gradient clipping and precision (fp32 on CPU), one
process. Throughput is measured per optimiser step (forward, backward, clipping, optimiser step and the
batch fetch), the first ``--skip`` steps dropped as warm-up; each figure is the median over the steps of
``--runs`` alternating runs. Target: ours / Trainer >= 1.0.

    python bench/pretrain_throughput.py --json bench/results/pretrain_throughput.json
    python bench/pretrain_throughput.py --models pico --runs 5 --steps 20

MFU (model FLOPs utilisation) is only meaningful on a GPU: with ``--device cuda`` and ``--peak-tflops``
(e.g. 989 for an H100 SXM in bf16 dense) the script reports
``MFU = tokens/s × (6 × parameters + 12 × layers × hidden × block_size) / peak``, the PaLM-paper estimate
(6 FLOPs per parameter per token for forward + backward, plus attention scores). On a CPU it is reported
as not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUPS = {
    # name: (config overrides, steps default)
    "pico": dict(
        model="pico",
        pico={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2},
        tokenizer_merge={"corpus": [str(ROOT / "corpora" / "ja")], "vocab_size": 3000, "lang": "ja"},
        block_size=64, batch_size=8, micro_batch_size=4,
    ),
    "smollm2": dict(model="smollm2-135m", block_size=128, batch_size=4, micro_batch_size=2),
}


def _config(name: str, steps: int, cache_dir: str, output_dir: str, device: str):
    from vocab_extend.pretrain.config import config_from_dict

    data = dict(SETUPS[name])
    data.update(
        train=[str(ROOT / "corpora" / "ja")], stages=[{"name": "full", "steps": steps}], lr=3e-4, warmup_steps=2,
        min_lr_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0, eval_every=0, eval_at_start=False, save_every=0,
        eval=[], progress=False, tensorboard=False, cache_dir=cache_dir, output_dir=output_dir, device=device,
        precision="auto",
    )
    return config_from_dict(data)


def run_ours(config, skip: int) -> tuple[list[float], int]:
    from vocab_extend.pretrain import pretrain
    from vocab_extend.pretrain.outputs import read_metrics

    pretrain(config)
    train = [r for r in read_metrics(Path(config.output_dir)) if r["kind"] == "train"]
    return [r["tokens_per_s"] for r in train[skip:]], _params(config)


def _params(config) -> int:
    from safetensors.torch import load_file

    return sum(t.numel() for t in load_file(str(Path(config.output_dir) / "model" / "model.safetensors")).values())


def run_trainer(config, skip: int) -> list[float]:
    """The HF Trainer on the same model, blocks, batch and optimiser."""
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from vocab_extend.tokenizer.loader import load_tokenizer
    from vocab_extend.pretrain.data import build_training_blocks, eval_documents, exclusion_set
    from vocab_extend.pretrain.model import build_merged_tokenizer, build_model, tokenizer_source

    data, optim, parallel = config.data, config.optim, config.parallel
    if config.model.tokenizer_merge is not None:
        build_merged_tokenizer(config.model, data)
    tokenizer = load_tokenizer(tokenizer_source(config.model, data))
    blocks = build_training_blocks(data, config.seed, tokenizer, exclusion_set(eval_documents(data, config.eval)))
    model = build_model(config.model, tokenizer, config.seed)
    steps = config.total_steps
    order = blocks.get(0, steps * data.batch_size)  # the loop's own order, so both see the same tokens
    dataset = [{"input_ids": torch.from_numpy(row), "labels": torch.from_numpy(row)} for row in order]
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.start)

    micro = parallel.micro_batch_size or data.batch_size
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=micro, gradient_accumulation_steps=data.batch_size // micro,
            max_steps=steps, learning_rate=optim.lr, adam_beta1=optim.adam_betas[0], adam_beta2=optim.adam_betas[1],
            adam_epsilon=optim.adam_eps, weight_decay=0.0, max_grad_norm=optim.max_grad_norm,
            lr_scheduler_type="cosine", warmup_steps=optim.warmup_steps, logging_steps=1, save_strategy="no",
            report_to=[], use_cpu=parallel.device == "cpu", seed=config.seed, dataloader_num_workers=0,
            disable_tqdm=True, optim="adamw_torch",
            bf16=str(parallel.device).startswith("cuda"),  # the same precision as our loop's "auto"
        )
        Trainer(model=model, args=args, train_dataset=dataset, callbacks=[Timer()]).train()
    tokens = data.batch_size * data.block_size
    return [tokens / t for t in times[skip:]]


def mfu(tokens_per_s: float, params: int, config, peak_tflops: float | None, device: str) -> float | None:
    if not device.startswith("cuda") or not peak_tflops:
        return None
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(Path(config.output_dir) / "model")
    flops_per_token = 6 * params + 12 * c.num_hidden_layers * c.hidden_size * config.data.block_size
    return tokens_per_s * flops_per_token / (peak_tflops * 1e12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps per run (default: pico 12, smollm2 6)")
    parser.add_argument("--skip", type=int, default=1, help="warm-up steps left out of the figures")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each loop")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the accelerator's peak, for MFU")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from vocab_extend.pretrain.dist import setup_dist

    setup_dist(args.device)
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        for name in args.models:
            steps = args.steps or (12 if name == "pico" else 6)
            runs = args.runs
            ours, theirs, params = [], [], 0
            for i in range(runs):
                with tempfile.TemporaryDirectory() as out:
                    config = _config(name, steps, cache, str(Path(out) / "run"), args.device)
                    speeds, params = run_ours(config, args.skip)
                    ours += speeds
                    theirs += run_trainer(config, args.skip)
                    mfu_value = mfu(statistics.median(speeds), params, config, args.peak_tflops, args.device)
            o, t = statistics.median(ours), statistics.median(theirs)
            results[name] = {
                "ours_tokens_per_s": round(o, 1), "trainer_tokens_per_s": round(t, 1), "ratio": round(o / t, 3),
                "steps_measured": len(ours), "runs": runs, "steps_per_run": steps,
                "global_batch": config.data.batch_size, "micro_batch": config.parallel.micro_batch_size,
                "block_size": config.data.block_size, "parameters": params,
                "mfu": None if mfu_value is None else round(mfu_value, 4),
            }
            print(f"{name}: ours {o:,.0f} tokens/s, HF Trainer {t:,.0f} tokens/s, ratio {o / t:.2f} "
                  f"(median of {len(ours)} steps)" + ("" if mfu_value is None else f", MFU {mfu_value:.1%}"))
    report = {
        "benchmark": "pretrain_throughput",
        "device": args.device,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "mfu": "not measured (needs a GPU: --device cuda --peak-tflops N)" if not args.device.startswith("cuda")
        else "see each model",
        "results": results,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
