#!/usr/bin/env python3
"""Does extending pay? SmolLM2-135M continued on Japanese with its own tokenizer and extended, at equal compute.

Arms (``--arms``), all from the same pretrained model on the same training text (the Japanese training files,
plus ``--replay-weight`` of English replay from ``--replay``, a file that is not the English eval text) with
the same block size and batch:

- ``base``: the model with its own tokenizer, continued with the shared stages (``--stages``, default
  ``full``);
- ``mean`` / ``distill``: the model extended by ``vocab-extend merge`` and ``vocab-extend init-model --method
  mean|distill``, then ``new-rows`` (``--new-rows-steps``) and the same shared stages.

Every arm is built and trained by the project's own commands (``merge``, ``init-model``, ``pretrain``), and
evaluated by the pretraining loop every ``--eval-every`` steps on several held-out kinds of text
(``bench/heldout_kinds.py``: Japanese Wikipedia, short sentences and conversation, English Wikipedia/news and
literature; the Japanese training files lose the held-out share of the two that are also kinds, so neither
the merge, nor ``distill``, nor the training ever reads a held-out document). The curves of the Wikipedia
kinds keep the names ``ja`` and ``en``. At the end of each arm its final model scores ``--kind-bytes`` of every
kind in units of whole documents, so each end figure, and each extended arm's difference from the base arm,
comes with a 95% bootstrap interval, and ``summary`` says on which kinds the extended arm ends at most the
base. A training step costs ``6 N T + 6 L T d`` FLOPs (Kaplan et al. 2020: ``T`` tokens in
the batch, ``L`` layers of width ``d``, ``N`` the parameters a token's forward pass multiplies by: everything
but the input embedding lookup, so the lm_head counts with all its rows). The extended model's larger lm_head
makes its step dearer, so the ``base`` arm runs as many more steps as give it at least the same training
FLOPs; every step is counted at ``6 N T`` although a ``new-rows`` step needs no weight gradients of the frozen
layers (the count is conservative for the extended arms). Characters of Japanese text seen are the Japanese
share of the tokens trained on times the arm's characters per token on the Japanese training files (EOS
included, as packed).

English replay (10% of the blocks by default, as continued-pretraining recipes mix in some of the base
language) is what keeps the base language in place: without it, one run of the ``mean`` arm lost 2.7% on
held-out English (the new tied rows learn to score high wherever a Japanese-trained state appears).

Writes ``bench/results/extension_pays.json`` (curves, FLOPs per step, the equal-FLOPs comparison, where the
Japanese curves cross, English end against start) and ``bench/results/extension_pays.png``. Targets: the
extended arm's held-out Japanese bits per byte at most the base arm's at equal FLOPs (else: where the curves
cross, or that they do not within the run), and each arm's English bits per byte at the end within 2% of its
start.

    nice python bench/extension_pays.py        # base, mean, distill: 75, 70, 70 steps, about 80 minutes on 2 shared cores
    nice python bench/extension_pays.py --arms base mean --tokenizer DIR --work-dir DIR
    nice python bench/extension_pays.py --threads 2 --new-rows-steps 25 --stages full:100   # 2 idle cores

The defaults fit 2 CPU cores shared with another job (about 45 tokens/s: 12 s a step, 23 minutes an arm with
its evaluations); ``--tokenizer`` reuses a merge (the script's own merge takes about 2 minutes) and
``--work-dir`` keeps the models and runs.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed one
sys.path.insert(0, str(ROOT / "bench"))
import heldout_kinds as hk  # noqa: E402
from vocab_extend.atomic import atomic_write_bytes, atomic_write_json  # noqa: E402  (after the path is set)

TRAIN = list(hk.TRAIN)
# the curve of each held-out kind; the Wikipedia kinds keep the names the curves always had
EVAL = {{"ja_wikipedia": "ja", "en_wikipedia_news": "en"}.get(k.name, k.name): k.name for k in hk.KINDS}
JA = [name for name, kind in EVAL.items() if kind.startswith("ja")]
REPLAY = "en/ud_ewt_train_web.txt"
ARMS = ("base", "mean", "distill")
RESULT = ROOT / "bench" / "results" / "extension_pays.json"


# ------------------------------------------------------------------------------------------- FLOPs


def model_shape(folder_or_spec: str) -> dict[str, int]:
    """Layers, width, lm_head rows and the parameters that are neither input embeddings nor lm_head."""
    from vocab_extend.model.loading import load_model

    model = load_model(folder_or_spec, device="cpu", dtype="float32")
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    body = total - embedding.numel() - (0 if head is embedding else head.numel())
    shape = {"layers": model.config.num_hidden_layers, "width": model.config.hidden_size,
             "lm_head_rows": head.shape[0], "body_params": body, "tied": head is embedding}
    del model
    return shape


def flops_per_step(shape: dict[str, int], block: int, batch: int) -> int:
    """``6 N T + 6 L T d`` with ``N`` = body + lm_head parameters, ``T`` = tokens of a step."""
    tokens = block * batch
    n = shape["body_params"] + shape["lm_head_rows"] * shape["width"]
    return 6 * n * tokens + 6 * shape["layers"] * block * shape["width"] * tokens


def chars_per_token(tokenizer, texts: list[str]) -> float:
    """Characters per packed token of the training text (every document followed by EOS, as packed)."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return sum(len(t) for t in texts) / (sum(len(i) for i in ids) + len(texts))


# ------------------------------------------------------------------------------------------ curves


def interpolate(xs: list[float], ys: list[float], x: float) -> float | None:
    """Linear interpolation of the curve ``(xs, ys)`` (xs ascending) at ``x``; ``None`` outside it."""
    if not xs or x < xs[0] or x > xs[-1]:
        return None
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ys[-1]


def compare(a: dict, b: dict, corpus: str) -> dict:
    """Arm ``b`` against arm ``a`` at equal FLOPs: the difference at every eval point of either arm inside
    the common range, whether ``b`` is at most ``a`` at the end of that range, and where the curves cross."""
    ax, ay = a["flops"], a["bpb"][corpus]
    bx, by = b["flops"], b["bpb"][corpus]
    end = min(ax[-1], bx[-1])
    grid = sorted({x for x in ax + bx if x <= end})
    points = [(x, interpolate(bx, by, x) - interpolate(ax, ay, x)) for x in grid]
    crossings = []
    for (x0, d0), (x1, d1) in zip(points, points[1:]):
        if d0 == 0 or (d0 > 0) != (d1 > 0) and d1 != 0:
            x = x0 if d0 == 0 else x0 + (x1 - x0) * d0 / (d0 - d1)
            crossings.append({"flops": x, "from": "above" if d0 > 0 else "below" if d0 < 0 else "equal"})
    final = points[-1][1]
    return {"at_flops": end, "difference_at_end": round(final, 5), "b_at_most_a_at_end": final <= 0,
            "b_at_most_a_everywhere_after_start": all(d <= 0 for x, d in points if x > 0),
            "differences": [{"flops": x, "difference": round(d, 5)} for x, d in points],
            "crossings": crossings,
            "crossing": ("the curves cross at " + ", ".join(f"{c['flops']:.3g} FLOPs" for c in crossings))
            if crossings else "the curves do not cross within the run"}


def plot(curves: dict[str, dict], path: Path, title: str) -> None:
    """Held-out bits per byte against training FLOPs and characters seen, Japanese and English."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(EVAL), 2, figsize=(10, 3.2 * len(EVAL)), dpi=100)
    for row, corpus in enumerate(EVAL):
        for col, (key, label) in enumerate((("flops", "training FLOPs"), ("chars", "Japanese characters seen"))):
            ax = axes[row][col]
            for arm, c in curves.items():
                ax.plot(c[key], c["bpb"][corpus], marker="o", markersize=3, label=arm)
            ax.set_xlabel(label)
            ax.set_ylabel(f"held-out {corpus} bits per byte")
            ax.grid(alpha=0.3)
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())
    plt.close(fig)


# -------------------------------------------------------------------------------------------- arms


def _cli(argv: list[str]) -> None:
    from vocab_extend.cli import main as cli

    print("vocab-extend " + " ".join(argv), flush=True)
    code = cli(argv)
    if code:
        raise SystemExit(f"error: vocab-extend {argv[0]} exited with {code}")


def stage_list(shorthand: str, lr: float) -> list[dict]:
    from vocab_extend.pretrain.stages import parse_stages

    return [{"name": s.name, "steps": s.steps, "lr": s.lr or lr} for s in parse_stages(shorthand)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokenizer", type=Path, default=None, help="an extended tokenizer folder to reuse")
    parser.add_argument("--vocab-size", type=int, default=16_000)
    parser.add_argument("--merge-max-docs", type=int, default=None, help="documents the merge reads per file (default: all)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--stages", default="full:50", help="the stages every arm runs, e.g. embeddings:30,full:70")
    parser.add_argument("--new-rows-steps", type=int, default=20, help="the extended arms' first stage")
    parser.add_argument("--epochs", type=float, default=None,
                        help="instead of --stages and --new-rows-steps: the extended arms see this many epochs of "
                             "the Japanese training text, --new-rows-share of their steps in new-rows, the rest full")
    parser.add_argument("--new-rows-share", type=float, default=0.2, help="with --epochs: the new-rows share of steps")
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate of the shared stages")
    parser.add_argument("--new-rows-lr", type=float, default=5e-4)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--micro-batch-size", type=int, default=None, help="sequences per forward pass (default: all)")
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--eval-max-bytes", type=int, default=10_000, help="UTF-8 bytes per kind at each eval")
    parser.add_argument("--kind-bytes", type=int, default=50_000,
                        help="UTF-8 bytes per held-out kind scored with its spread at the end of each arm (0: none)")
    parser.add_argument("--unit-bytes", type=int, default=1_000, help="bytes of whole documents per resampled unit")
    parser.add_argument("--max-docs", type=int, default=2_000, help="documents read per training file (0: all)")
    parser.add_argument("--replay", default=REPLAY, help="English training text replayed in every arm (under --corpora)")
    parser.add_argument("--replay-weight", type=float, default=0.1,
                        help="share of the training blocks taken from --replay (0: Japanese only)")
    parser.add_argument("--distill-steps", type=int, default=None, help="init-model --distill-steps")
    parser.add_argument("--distill-contexts", type=int, default=None, help="init-model --distill-contexts")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on cores shared with other jobs, more threads wait on a busy core)")
    parser.add_argument("--device", default="cpu", help="where the arms train: cpu, cuda, cuda:N")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="the loop's precision (auto: bf16 autocast on a GPU, fp32 on a CPU)")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="seconds the whole script may take: the arms' steps are scaled down (equally, keeping "
                             "equal FLOPs) so that the estimate from a short probe run of the base model fits")
    parser.add_argument("--probe-steps", type=int, default=6, help="with --time-budget: steps of the probe run")
    parser.add_argument("--pico-model", action="store_true",
                        help="smoke runs: a randomly initialised 2-layer LLaMA with --model's tokenizer in its place")
    parser.add_argument("--prepare-only", action="store_true", help="merge and init-model only, then stop")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the tokenizer and init-<arm> models already in --work-dir")
    parser.add_argument("--work-dir", type=Path, default=None, help="models and runs (default: a temporary folder)")
    parser.add_argument("--note", default=None, help="a sentence recorded in the JSON (e.g. why the setting is reduced)")
    parser.add_argument("--json", type=Path, default=RESULT)
    args = parser.parse_args()
    if not 0 <= args.replay_weight < 1:
        raise SystemExit(f"error: --replay-weight must be at least 0 and below 1, not {args.replay_weight}")
    if not args.corpora.is_dir():
        raise SystemExit(f"error: {args.corpora} does not exist: pass --corpora with a folder laid out as "
                         "<lang>/<name>.txt (bench/README.md says how to get equivalent public text)")
    if args.replay in {k.path for k in hk.KINDS}:
        raise SystemExit(f"error: --replay {args.replay} is held-out text (bench/heldout_kinds.py): replay another file")
    return args


def _made(folder: Path) -> bool:
    """Whether a folder that ``merge`` / ``init-model`` writes is there (they write it whole or not at all)."""
    return (folder / "vocab_extend.json").is_file() or (folder / "config.json").is_file()


def pico_model(spec: str, folder: Path) -> str:
    """A 2-layer LLaMA of width 32 with random weights and the tokenizer of ``spec``, tied as SmolLM2 is, in
    ``folder`` (kept and reused): the same path as the real model, in seconds on a CPU."""
    if (folder / "config.json").is_file():
        return str(folder)
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from vocab_extend.staging import staging_folder
    from vocab_extend.tokenizer.loader import load_tokenizer

    tokenizer = load_tokenizer(spec)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))
    with staging_folder(folder, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return str(folder)


def prepare(args, work: Path, train_files: list[str], eval_files: dict[str, str]) -> tuple[dict, dict]:
    """The extended tokenizer (``merge``) and each extended arm's model (``init-model``), reused from
    ``work`` with ``--reuse``; returns the arms' models and the seconds each ``init-model`` took."""
    extended = [a for a in args.arms if a != "base"]
    if args.pico_model:
        args.model = pico_model(args.model, work / "pico-base")
    folder = args.tokenizer
    if folder is not None:
        from vocab_extend.metadata import read_metadata

        hk.refuse_trained_on(read_metadata(folder).corpus, args.corpora)
    if folder is None and extended:
        folder = work / "tokenizer"
        limit = ["--max-docs", str(args.merge_max_docs)] if args.merge_max_docs else []
        if not (args.reuse and _made(folder)):
            _cli(["merge", "--base", args.model, *[x for f in train_files for x in ("--corpus", f)], *limit,
                  "--vocab-size", str(args.vocab_size), "--lang", "ja", "--heldout-fraction", "0",
                  *[x for n, f in eval_files.items() for x in ("--eval", f"{n}={f}")],
                  "--output-dir", str(folder), "--overwrite"])
    init_seconds, models = {}, {"base": args.model}
    for arm in extended:
        target = work / f"init-{arm}"
        models[arm] = str(target)
        if args.reuse and _made(target):
            print(f"arm {arm}: reusing {target}", flush=True)
            continue
        extra = ["--corpus", train_files[0]] if arm == "distill" else []
        for flag, value in (("--distill-steps", args.distill_steps), ("--distill-contexts", args.distill_contexts)):
            if arm == "distill" and value is not None:
                extra += [flag, str(value)]
        start = time.perf_counter()
        _cli(["init-model", "--model", args.model, "--tokenizer", str(folder), "--method", arm, *extra,
              "--output-dir", str(target), "--overwrite"])
        init_seconds[arm] = round(time.perf_counter() - start, 1)
    return models, init_seconds


def plan_stages(args, flops: dict[str, int], ja_tokens: float, scale: float = 1.0) -> dict[str, list[dict]]:
    """Each arm's stages: the extended arms ``new-rows`` then the shared stages (from ``--epochs`` when
    given), the base arm the shared stages stretched to at least the extended arms' FLOPs; ``scale`` shortens
    every arm alike (for ``--time-budget``)."""
    extended = [a for a in args.arms if a != "base"]
    if args.epochs is not None:
        per_step = args.block_size * args.batch_size * (1 - args.replay_weight)
        total = max(2, math.floor(math.ceil(args.epochs * ja_tokens / per_step) * scale))
        new_rows = min(total - 1, max(1, round(total * args.new_rows_share))) if extended else 0
        shared, new_rows_steps = [{"name": "full", "steps": total - new_rows, "lr": args.lr}], new_rows
    else:
        shared = [dict(s, steps=max(1, math.floor(s["steps"] * scale))) for s in stage_list(args.stages, args.lr)]
        new_rows_steps = max(1, math.floor(args.new_rows_steps * scale))
    shared_steps = sum(s["steps"] for s in shared)
    stages = {arm: [{"name": "new-rows", "steps": new_rows_steps, "lr": args.new_rows_lr}, *shared]
              for arm in extended}
    if "base" in args.arms:
        extended_total = (new_rows_steps + shared_steps) * flops[extended[0]] if extended else 0
        steps = max(shared_steps, math.ceil(extended_total / flops["base"]))
        base_stages = [dict(s) for s in shared]
        base_stages[-1]["steps"] += steps - shared_steps
        stages["base"] = base_stages
    return stages


def arm_config(args, model: str, stages: list[dict], out: Path, work: Path, files: dict, **overrides):
    """The pretraining config of one arm (or of the probe run, through ``overrides``)."""
    from vocab_extend.pretrain.config import config_from_dict

    data = {"model": model, "train": files["train"], "train_weights": files["weights"], "eval": files["eval"],
            "max_docs": args.max_docs or None, "block_size": args.block_size, "batch_size": args.batch_size,
            "micro_batch_size": args.micro_batch_size, "stages": stages, "lr": args.lr,
            "warmup_steps": args.warmup_steps, "eval_every": args.eval_every, "eval_max_bytes": args.eval_max_bytes,
            "save_every": 0, "compare_base": False, "tensorboard": False, "progress": False, "device": args.device,
            "precision": args.precision, "output_dir": str(out), "overwrite": True,
            "cache_dir": str(work / "cache"), "seed": 0}
    data.update(overrides)
    return config_from_dict(data)


def probe(args, work: Path, files: dict, flops_per_step: int) -> dict:
    """A short run of the base model at the arms' settings: training FLOPs/s (median of the steps after the
    first two) and the seconds a run spends outside its steps (loading, packing, the evaluations at its start
    and end, saving, the report)."""
    from vocab_extend.pretrain import pretrain
    from vocab_extend.pretrain.outputs import read_metrics

    out = work / "runs" / "probe"
    config = arm_config(args, args.model, [{"name": "full", "steps": args.probe_steps, "lr": args.lr}], out, work,
                        files, eval_every=0, eval_at_start=True)  # two evaluations, as every arm has at least
    start = time.perf_counter()
    pretrain(config)
    wall = time.perf_counter() - start
    speeds = [r["tokens_per_s"] for r in read_metrics(out) if r["kind"] == "train"]
    tokens = args.block_size * args.batch_size
    rate = statistics.median(speeds[2:] or speeds)
    overhead = max(0.0, wall - sum(tokens / s for s in speeds))
    return {"steps": len(speeds), "tokens_per_s": round(rate, 1), "flops_per_s": rate / tokens * flops_per_step,
            "overhead_seconds": round(overhead, 1), "wall_seconds": round(wall, 1)}


def fit_budget(args, flops: dict[str, int], ja_tokens: float, cpt: dict[str, float], measured: dict,
               began: float) -> tuple[float, dict]:
    """The scale of every arm's steps that makes the estimated time fit 85% of what is left of the budget:
    per arm, its steps × FLOPs per step at the probe's FLOPs/s, its evaluations (the eval tokens, at three
    times the probe's training tokens/s: a forward pass only; Japanese at 3 bytes a character, English at
    4.5 bytes a token; every kind at every eval, and ``--kind-bytes`` of each at the end) and the probe's
    seconds outside its steps."""
    rate = measured["tokens_per_s"]
    kinds_en = len(EVAL) - len(JA)

    def estimate(stages: dict[str, list[dict]]) -> float:
        total = 0.0
        for arm in args.arms:
            steps = sum(s["steps"] for s in stages[arm])
            evals = (steps // args.eval_every if args.eval_every else 0) + 2
            per_byte = len(JA) / (3 * cpt[arm]) + kinds_en / 4.5
            eval_tokens = (evals * args.eval_max_bytes + args.kind_bytes) * per_byte
            total += steps * flops[arm] / measured["flops_per_s"] + eval_tokens / (3 * rate)
        return total + measured["overhead_seconds"] * len(args.arms)

    left = 0.85 * (args.time_budget - (time.perf_counter() - began) - 10)  # 10 s for the summary and the plot
    full = estimate(plan_stages(args, flops, ja_tokens))
    scale = 1.0
    while scale > 0.001 and estimate(plan_stages(args, flops, ja_tokens, scale)) > left:
        scale *= 0.9
    return scale, {"seconds_left": round(left, 1), "estimated_seconds_unscaled": round(full, 1),
                   "estimated_seconds": round(estimate(plan_stages(args, flops, ja_tokens, scale)), 1),
                   "scale": round(scale, 4), "probe": measured}


def run_arm(args, arm: str, model: str, stages: list[dict], work: Path, files: dict, cpt: float,
            flops: int) -> tuple[dict, dict, str]:
    """Train one arm; its curves (bits per byte against steps, FLOPs, characters), its run figures and the
    folder of its final model."""
    from vocab_extend.pretrain import pretrain
    from vocab_extend.pretrain.outputs import read_metrics

    out = work / "runs" / arm
    config = arm_config(args, model, stages, out, work, files)
    print(f"arm {arm}: stages {stages}, {flops:.4g} FLOPs per step, {cpt:.3f} chars/token", flush=True)
    start = time.perf_counter()
    final_model = pretrain(config)
    seconds = time.perf_counter() - start
    records = read_metrics(out)
    evals = [r for r in records if r["kind"] == "eval"]
    train = [r for r in records if r["kind"] == "train"]
    tokens_per_step = args.block_size * args.batch_size
    curve = {"steps": [r["step"] for r in evals], "flops": [r["step"] * flops for r in evals],
             "chars": [round(r["step"] * tokens_per_step * (1 - args.replay_weight) * cpt) for r in evals],
             "bpb": {c: [r["bpb"][c] for r in evals] for c in EVAL}}
    by_stage: dict[str, list[float]] = {}
    for r in train[1:]:
        by_stage.setdefault(r["stage"], []).append(r["tokens_per_s"])
    run = {"model": model if arm == "base" else f"{args.model} + init-model --method {arm}",
           "stages": stages, "steps": train[-1]["step"] if train else 0,
           "flops_per_step": flops, "train_chars_per_token": round(cpt, 4),
           "final_loss": train[-1]["loss"] if train else None, "wall_seconds": round(seconds, 1),
           "median_tokens_per_s": {s: round(statistics.median(v), 1) for s, v in by_stage.items()},
           "en_end_vs_start": round(curve["bpb"]["en"][-1] / curve["bpb"]["en"][0] - 1, 5),
           "end_vs_start": {c: round(v[-1] / v[0] - 1, 5) for c, v in curve["bpb"].items()}}
    print(f"arm {arm}: bpb " + json.dumps(curve["bpb"]) + f" in {seconds:.0f}s", flush=True)
    return curve, run, str(final_model)


def outcome(args, curves: dict, runs: dict) -> tuple[dict, dict, dict]:
    """The equal-FLOPs comparisons of the arms trained so far, the targets, and each arm's final figures."""
    comparisons, targets = {}, {}
    if "base" in curves:
        for arm in [a for a in curves if a != "base"]:
            comparisons[arm] = {c: compare(curves["base"], curves[arm], c) for c in EVAL}
            for c in JA:
                targets[f"{c}_{arm}_at_most_base_at_equal_flops"] = comparisons[arm][c]["b_at_most_a_at_end"]
    for arm in curves:
        for c in [c for c in EVAL if c not in JA]:
            targets[f"{c}_{arm}_end_within_2pct_of_start"] = abs(runs[arm]["end_vs_start"][c]) <= 0.02
    final = {arm: {"steps": c["steps"][-1], "flops": c["flops"][-1], "chars": c["chars"][-1],
                   "bpb_start": {k: v[0] for k, v in c["bpb"].items()},
                   "bpb_end": {k: v[-1] for k, v in c["bpb"].items()}} for arm, c in curves.items()}
    return comparisons, targets, final


def score_end(args, folder: str, kind_units: dict[str, list[list[str]]]) -> dict[str, hk.UnitScores]:
    """An arm's final model on ``--kind-bytes`` of every held-out kind, in units (for the spread)."""
    from vocab_extend.model.loading import load_model
    from vocab_extend.tokenizer.loader import load_tokenizer

    model, tokenizer = load_model(folder, device=args.device), load_tokenizer(folder)
    scores = {curve: hk.score(model, tokenizer, kind_units[kind]) for curve, kind in EVAL.items()}
    print("  end, per kind: " + json.dumps({c: s.totals()["bpb"] for c, s in scores.items()}), flush=True)
    return scores


def end_figures(scores: dict[str, dict[str, hk.UnitScores]]) -> dict:
    """Each arm's end bits per byte per kind with its interval; each extended arm's change against the base
    arm on the same units, and on which Japanese kinds it ends at most the base (:func:`heldout_kinds.verdict`)."""
    out: dict = {"bpb": {arm: {c: hk.bpb_figure(s) for c, s in kinds.items()} for arm, kinds in scores.items()},
                 "change_vs_base": {}, "targets": {}, "summary": []}
    if "base" not in scores:
        return out
    for arm in [a for a in scores if a != "base"]:
        changes = {c: hk.change_figure(s, scores["base"][c]) for c, s in scores[arm].items()}
        out["change_vs_base"][arm] = changes
        verdict = hk.verdict({c: changes[c] for c in JA}, -math.inf, 0.0)
        out["targets"][f"ja_{arm}_at_most_base_at_end"] = verdict
        shown = ", ".join(f"{c} {f['value']:+.1%}" + (f" [{f['ci95'][0]:+.1%}, {f['ci95'][1]:+.1%}]" if f["ci95"] else "")
                          for c, f in changes.items())
        out["summary"].append(f"{arm} against base at the end (bits per byte change): {shown}; "
                              f"at most the base on Japanese: {verdict['summary']}")
    return out


def held_out_files(args, work: Path) -> tuple[list[str], dict[str, str], dict]:
    """The training shares and every held-out kind written under ``work``; the kinds' units for the end
    scoring and their description."""
    train_docs, held = hk.load(args.corpora)
    train_files = hk.write_training(train_docs, work / "train-shares")
    paths = hk.write_training({f"{kind}.txt": held[kind] for kind in EVAL.values()}, work / "heldout")
    kinds = {"kinds": hk.describe(hk.KINDS, held, args.kind_bytes, args.unit_bytes), "kinds_missing": hk.MISSING,
             "curve_of_kind": {kind: curve for curve, kind in EVAL.items()},
             "units": {k: hk.units(held[k], args.kind_bytes, args.unit_bytes) for k in EVAL.values()}
             if args.kind_bytes else {}}
    return train_files, {curve: path for curve, path in zip(EVAL, paths)}, kinds


def main() -> None:
    args = parse_args()
    import torch

    from vocab_extend.corpus import read_documents
    from vocab_extend.tokenizer.loader import load_tokenizer

    torch.set_num_threads(args.threads)
    began, load_at_start = time.perf_counter(), os.getloadavg()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-pays-"))
    work.mkdir(parents=True, exist_ok=True)
    train_files, eval_files, kinds = held_out_files(args, work)
    replay = [f"en={args.corpora / args.replay}"] if args.replay_weight > 0 else []
    files = {"train": [f"ja={f}" for f in train_files] + replay,
             "weights": {"ja": 1 - args.replay_weight, "en": args.replay_weight} if replay else {},
             "eval": eval_files}
    models, init_seconds = prepare(args, work, train_files, files["eval"])
    if args.prepare_only:
        print(f"prepared {', '.join(models)} in {work} ({time.perf_counter() - began:.0f}s)", flush=True)
        return
    extended_arms = [a for a in args.arms if a != "base"]

    # FLOPs per step of each arm, characters per token, and the steps that give every arm the same compute
    shapes = {"base": model_shape(args.model)}
    if extended_arms:
        shapes["extended"] = model_shape(models[extended_arms[0]])
    flops = {arm: flops_per_step(shapes["base" if arm == "base" else "extended"], args.block_size, args.batch_size)
             for arm in args.arms}
    docs = [t for f in train_files for t in read_documents(f, max_docs=args.max_docs or None)]
    cpt = {arm: chars_per_token(load_tokenizer(models[arm]), docs) for arm in args.arms}
    ja_tokens = sum(len(t) for t in docs) / cpt[extended_arms[0] if extended_arms else "base"]
    budget = None
    if args.time_budget is not None:
        measured = probe(args, work, files, flops_per_step(shapes["base"], args.block_size, args.batch_size))
        scale, budget = fit_budget(args, flops, ja_tokens, cpt, measured, began)
        print(f"time budget: {json.dumps(budget)}", flush=True)
    stages = plan_stages(args, flops, ja_tokens, budget["scale"] if budget else 1.0)
    plan = {"ja_training_chars": sum(len(t) for t in docs), "ja_training_tokens": round(ja_tokens),
            "epochs_requested": args.epochs, "time_budget": budget, "stages": stages}
    if args.epochs is not None and extended_arms:
        ja_seen = sum(s["steps"] for s in stages[extended_arms[0]]) * args.block_size * args.batch_size
        plan["epochs_planned"] = round(ja_seen * (1 - args.replay_weight) / ja_tokens, 3)

    curves, runs, end = {}, {}, {}
    for arm in args.arms:
        curves[arm], runs[arm], final_model = run_arm(args, arm, models[arm], stages[arm], work, files, cpt[arm],
                                                      flops[arm])
        if kinds["units"]:
            end[arm] = score_end(args, final_model, kinds["units"])
        plan["held_out"] = {**{k: v for k, v in kinds.items() if k != "units"}, "end_of_run": end_figures(end)}
        done = arm == args.arms[-1]
        write_figures(args, shapes, flops, plan, init_seconds, curves, runs, began, load_at_start, done)


def write_figures(args, shapes: dict, flops: dict, plan: dict, init_seconds: dict, curves: dict, runs: dict,
                  began: float, load_at_start: tuple, done: bool) -> None:
    """The JSON (after every arm, ``"complete": false`` until the last) and, at the end, the plot."""
    comparisons, targets, final = outcome(args, curves, runs)
    held_out = plan.get("held_out")
    replay = args.replay_weight > 0
    plot_path = args.json.with_suffix(".png")
    if done:
        plot(curves, plot_path, f"SmolLM2-135M continued on Japanese"
             f"{f' + {args.replay_weight:.0%} English replay' if replay else ''}: own tokenizer (base) vs extended")
    figures = {
        "complete": done, "arms_done": list(curves),
        "machine": machine(args, load_at_start),
        "model": args.model, "arms": args.arms,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in ("corpora", "tokenizer", "work_dir", "json")},
        "tokenizer": {"vocab_size_new_model": args.vocab_size,
                      "base_rows": shapes["base"]["lm_head_rows"],
                      "extended_rows": shapes["extended"]["lm_head_rows"] if "extended" in shapes else None},
        "training_files": TRAIN, "replay": {"file": args.replay, "weight": args.replay_weight} if replay else None,
        "max_docs_per_file": args.max_docs or None, "eval_corpora": EVAL,
        "eval_max_bytes": args.eval_max_bytes, "eval_every": args.eval_every,
        "block_size": args.block_size, "batch_size": args.batch_size,
        "plan": {k: v for k, v in plan.items() if k != "held_out"}, "note": args.note,
        "flops": {"formula": "6*N*T + 6*L*T*d per step; N = parameters other than the input embeddings "
                             "(the lm_head with all its rows), T = block_size*batch_size, L layers, d width",
                  "shapes": shapes, "per_step": flops},
        "init_seconds": init_seconds, "runs": runs, "curves": curves, "final": final,
        "equal_flops": comparisons, "targets": targets, "held_out": held_out,
        "summary": held_out["end_of_run"]["summary"] if held_out else [],
        "wall_seconds": round(time.perf_counter() - began, 1),
        "plot": plot_path.name if done else None,
    }
    atomic_write_json(args.json, figures)
    if done:
        print(json.dumps({"final": final, "targets": targets, "summary": figures["summary"],
                          "crossing": {a: c["ja"]["crossing"] for a, c in comparisons.items()}}, indent=2))
        print(f"wrote {args.json} and {plot_path}", flush=True)


def machine(args, load_at_start: tuple) -> dict:
    """The host, the device the arms trained on, its dtype, and on a GPU its name and the torch / CUDA versions."""
    import torch

    bf16 = args.precision == "bf16" or (args.precision == "auto" and args.device.startswith("cuda"))
    info = {"platform": platform.platform(), "processor": platform.machine(), "cores": os.cpu_count(),
            "device": args.device, "dtype": "bfloat16 autocast" if bf16 else "float32",
            "torch_threads": args.threads, "load_average_at_start": [round(x, 2) for x in load_at_start]}
    if args.device.startswith("cuda") and torch.cuda.is_available():
        info.update(gpu=torch.cuda.get_device_name(torch.device(args.device)), torch=torch.__version__,
                    cuda=torch.version.cuda)
    return info


if __name__ == "__main__":
    main()
