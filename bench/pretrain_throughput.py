#!/usr/bin/env python3
"""Benchmark of the continued-pretraining loop: training tokens/s of ours vs the Hugging Face Trainer.

Both train the same model on the same packed blocks (the loop's own cache), with the same global batch,
micro-batch, AdamW settings, warmup + cosine schedule, gradient clipping and precision (fp32 on CPU), one
process. Throughput is measured per optimiser step (forward, backward, clipping, optimiser step and the
batch fetch), the first ``--skip`` steps dropped as warm-up; each figure is the median over the steps of
``--runs`` alternating runs. Target: ours / Trainer >= 1.0.

    python bench/pretrain_throughput.py --json bench/results/pretrain_throughput.json
    python bench/pretrain_throughput.py --models pico --runs 5 --steps 20

``--models llama-1b`` is a 1B-class LLaMA with random weights (TinyLlama-1.1B's shape: width 2048, 22 layers,
32 heads, 4 KV heads, MLP 5632; the pico model built in code, with the pico setup's merged tokenizer), block
2048, a global batch of 128 blocks (262,144 tokens) in micro-batches of 4, bf16 autocast on a GPU, gradient
checkpointing off. A micro-batch that runs out of GPU memory is retried smaller, then with gradient
checkpointing (each attempt is recorded). ``bench/gpu_check.sh`` runs it without the Trainer:

    python bench/pretrain_throughput.py --models llama-1b --device cuda --no-trainer --runs 1

MFU (model FLOPs utilisation) is only meaningful on a GPU: with ``--device cuda`` the script reports
``MFU = tokens/s × (6 N + 12 L d T) / peak``, the PaLM-paper estimate: 6 FLOPs per multiplied parameter
per token for forward + backward, ``N`` every parameter but the input embeddings (a lookup, not a
multiply; the lm_head counts), plus the attention scores and values (``12 L d T``: ``L`` layers of width
``d``, block ``T``, no causal discount); ``mfu_6n`` leaves the attention term out. The peak is
``--peak-tflops`` or, by default, the dense bf16 peak of the GPU named by ``torch.cuda.get_device_name``
(:data:`PEAK_BF16_TFLOPS`: H100/H200 SXM 989). Well-tuned trainers reach about 40% MFU
(:data:`WELL_TUNED_MFU`); each GPU figure is reported against it. On a CPU MFU is reported as not measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PICO_TOKENIZER = {"corpus": [str(ROOT / "corpora" / "ja")], "vocab_size": 3000, "lang": "ja"}
LLAMA_1B = {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32,
            "num_key_value_heads": 4, "max_position_embeddings": 2048}
SETUPS = {
    # name: config overrides
    "pico": dict(
        model="pico",
        pico={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2},
        tokenizer_merge=PICO_TOKENIZER, block_size=64, batch_size=8, micro_batch_size=4,
    ),
    "smollm2": dict(model="smollm2-135m", block_size=128, batch_size=4, micro_batch_size=2),
    "llama-1b": dict(model="pico", pico=LLAMA_1B, tokenizer_merge=PICO_TOKENIZER, block_size=2048, batch_size=128,
                     micro_batch_size=4),
}
STEPS = {"pico": 12, "smollm2": 6, "llama-1b": 8}  # optimiser steps per run by default
# Dense bf16 peaks (TFLOP/s) by a piece of torch.cuda.get_device_name(); the first match wins, so the
# more specific names come first ("NVIDIA H100 80GB HBM3" is the SXM part, "NVIDIA H100 PCIe" is not).
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0),
                    ("GH200", 989.0), ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0),
                    ("A10", 125.0))
WELL_TUNED_MFU = 0.40


def peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU from its name, ``None`` when the table does not know it.

    >>> peak_tflops("NVIDIA H100 80GB HBM3"), peak_tflops("NVIDIA H100 PCIe"), peak_tflops("NVIDIA H200")
    (989.0, 756.0, 989.0)
    >>> peak_tflops("NVIDIA A100-SXM4-80GB"), peak_tflops("NVIDIA L40S"), peak_tflops("Some GPU") is None
    (312.0, 362.0, True)
    """
    return next((peak for piece, peak in PEAK_BF16_TFLOPS if piece in device_name), None)


def _config(name: str, steps: int, cache_dir: str, output_dir: str, device: str, *, precision: str = "auto",
            micro_batch: int | None = None, checkpointing: bool = False):
    from vocab_extend.pretrain.config import config_from_dict

    data = dict(SETUPS[name])
    if micro_batch is not None:
        data["micro_batch_size"] = micro_batch
    data.update(
        train=[str(ROOT / "corpora" / "ja")], stages=[{"name": "full", "steps": steps}], lr=3e-4, warmup_steps=2,
        min_lr_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0, eval_every=0, eval_at_start=False, save_every=0,
        eval=[], progress=False, tensorboard=False, cache_dir=cache_dir, output_dir=output_dir, device=device,
        precision=precision, gradient_checkpointing=checkpointing,
    )
    return config_from_dict(data)


def run_ours(config, skip: int) -> tuple[list[float], int]:
    from vocab_extend.pretrain import pretrain
    from vocab_extend.pretrain.outputs import read_metrics

    pretrain(config)
    train = [r for r in read_metrics(Path(config.output_dir)) if r["kind"] == "train"]
    return [r["tokens_per_s"] for r in train[skip:]], _params(config)


def _params(config) -> int:
    """Parameters of the saved model, from the safetensors headers (no weights read)."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(Path(config.output_dir) / "model" / "model.safetensors"), framework="pt") as f:
        for key in f.keys():
            shape = f.get_slice(key).get_shape()
            total += int(math.prod(shape))
    return total


def _attempts(micro: int | None, checkpointing: bool) -> list[tuple[int | None, bool]]:
    """The micro-batch / gradient-checkpointing settings to try in order when one runs out of memory.

    >>> _attempts(4, False)
    [(4, False), (2, False), (4, True), (1, True)]
    >>> _attempts(None, True)
    [(None, True)]
    """
    if micro is None:
        return [(None, checkpointing)]
    tries = [(micro, checkpointing), (max(1, micro // 2), checkpointing), (micro, True), (1, True)]
    return list(dict.fromkeys(tries))


def _out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def run_ours_fitting(name: str, steps: int, cache: str, out: Path, args) -> tuple[list[float], int, object, list]:
    """Our loop at the setup's micro-batch, retried smaller and then with gradient checkpointing when a GPU
    runs out of memory; returns the speeds, parameters, the config that ran and every attempt."""
    import gc

    import torch

    default = SETUPS[name].get("micro_batch_size")
    attempts: list[dict] = []
    for i, (micro, checkpointing) in enumerate(_attempts(args.micro_batch or default, args.gradient_checkpointing)):
        config = _config(name, steps, cache, str(out / f"run-{i}"), args.device, precision=args.precision,
                         micro_batch=micro, checkpointing=checkpointing)
        tried = {"micro_batch": micro, "gradient_checkpointing": checkpointing}
        try:
            speeds, params = run_ours(config, args.skip)
        except (RuntimeError, MemoryError) as exc:
            if not _out_of_memory(exc):
                raise
            attempts.append({**tried, "result": "out of memory"})
            print(f"{name}: out of memory at micro-batch {micro}, gradient checkpointing {checkpointing}", flush=True)
        else:
            attempts.append({**tried, "result": "ran"})
            return speeds, params, config, attempts
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    raise SystemExit(f"error: {name} runs out of memory at every micro-batch tried: {attempts}")


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


def flops_per_token(config) -> dict[str, int]:
    """``6 N`` and the attention term ``12 L d T`` of one trained token (see the module docstring)."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(Path(config.output_dir) / "model")
    embedding = c.vocab_size * c.hidden_size
    return {"6n": 6 * (_params(config) - embedding),
            "attention": 12 * c.num_hidden_layers * c.hidden_size * config.data.block_size}


def gpu_figures(tokens_per_s: float, config, peak: float | None) -> dict:
    """MFU with and without the attention term against ``peak`` TFLOP/s, and against :data:`WELL_TUNED_MFU`."""
    import torch

    flops = flops_per_token(config)
    figures = {"flops_per_token": flops["6n"] + flops["attention"], "flops_per_token_6n": flops["6n"],
               "flops_formula": "6*N + 12*L*d*T per token; N = parameters but the input embeddings",
               "peak_tflops": peak, "max_memory_allocated_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    if peak:
        mfu = tokens_per_s * figures["flops_per_token"] / (peak * 1e12)
        figures.update(mfu=round(mfu, 4), mfu_6n=round(tokens_per_s * flops["6n"] / (peak * 1e12), 4),
                       well_tuned_mfu=WELL_TUNED_MFU, mfu_vs_well_tuned=round(mfu / WELL_TUNED_MFU, 3))
    return figures


def measure(name: str, args, cache: str) -> dict:
    """One setup: ``--runs`` runs of our loop (and of the Trainer unless ``--no-trainer``), medians."""
    steps = args.steps or STEPS[name]
    ours, theirs, attempts = [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as out:
            speeds, params, config, tried = run_ours_fitting(name, steps, cache, Path(out), args)
            ours += speeds
            attempts += tried
            if not args.no_trainer:
                theirs += run_trainer(config, args.skip)
            gpu = gpu_figures(statistics.median(speeds), config, args.peak_tflops) if _cuda(args.device) else None
    o = statistics.median(ours)
    result = {"ours_tokens_per_s": round(o, 1), "steps_measured": len(ours), "runs": args.runs,
              "steps_per_run": steps, "skipped_warmup_steps": args.skip, "global_batch": config.data.batch_size,
              "micro_batch": config.parallel.micro_batch_size, "block_size": config.data.block_size,
              "tokens_per_step": config.data.batch_size * config.data.block_size,
              "gradient_checkpointing": config.model.gradient_checkpointing, "parameters": params,
              "precision": "bf16" if _bf16(args) else "fp32", "attempts": attempts, "mfu": None}
    if theirs:
        t = statistics.median(theirs)
        result.update(trainer_tokens_per_s=round(t, 1), ratio=round(o / t, 3))
    if gpu:
        result.update(gpu)
    line = f"{name}: ours {o:,.0f} tokens/s" + (f", HF Trainer {t:,.0f} tokens/s, ratio {o / t:.2f}" if theirs else "")
    mfu = result["mfu"]
    print(line + f" (median of {len(ours)} steps)" + ("" if mfu is None else
          f", MFU {mfu:.1%} ({result['mfu_vs_well_tuned']:.2f}x the {WELL_TUNED_MFU:.0%} of well-tuned trainers)"),
          flush=True)
    return result


def _cuda(device: str) -> bool:
    return device.startswith("cuda")


def _bf16(args) -> bool:
    return args.precision == "bf16" or (args.precision == "auto" and _cuda(args.device))


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["pico", "smollm2"], choices=list(SETUPS))
    parser.add_argument("--steps", type=int, default=None,
                        help="optimiser steps per run (default: " + ", ".join(f"{k} {v}" for k, v in STEPS.items()) + ")")
    parser.add_argument("--skip", type=int, default=1, help="warm-up steps left out of the figures")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each loop")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                        help="the loop's precision (auto: bf16 autocast on a GPU, fp32 on a CPU)")
    parser.add_argument("--micro-batch", type=int, default=None, help="micro-batch (default: the setup's)")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="start with it on")
    parser.add_argument("--no-trainer", action="store_true", help="time our loop only")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the accelerator's peak, for MFU (default on a GPU: from its name, PEAK_BF16_TFLOPS)")
    parser.add_argument("--json", type=Path, default=None)
    return parser.parse_args()


def machine(device: str) -> dict:
    """The host, and on a GPU its name, memory and the torch / CUDA versions."""
    import torch

    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda}
    if _cuda(device) and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1))
    return info


def main() -> None:
    args = _parse()
    import torch

    from vocab_extend.pretrain.dist import setup_dist

    if _cuda(args.device) and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {args.device} asks for a GPU but torch {torch.__version__} sees none")
    host = machine(args.device)
    if _cuda(args.device) and args.peak_tflops is None:
        args.peak_tflops = peak_tflops(host["gpu"])
    setup_dist(args.device)
    with tempfile.TemporaryDirectory() as cache:
        results = {name: measure(name, args, cache) for name in args.models}
    report = {
        "benchmark": "pretrain_throughput",
        "device": args.device,
        "machine": host,
        "mfu": "not measured (needs a GPU: --device cuda)" if not _cuda(args.device)
        else "see each model" if args.peak_tflops else "not measured (unknown GPU: pass --peak-tflops)",
        "results": results,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
