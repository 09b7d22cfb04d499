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
evaluated by the pretraining loop every ``--eval-every`` steps on held-out Japanese and English that are not
in the training files. A training step costs ``6 N T + 6 L T d`` FLOPs (Kaplan et al. 2020: ``T`` tokens in
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
from vocab_extend.atomic import atomic_write_bytes, atomic_write_json  # noqa: E402  (after the path is set)

TRAIN = ["ja/jaquad_train_wikipedia.txt", "ja/jglue_short_sentences.txt", "ja/tatoeba_sentences.txt"]
EVAL = {"ja": "ja/jsquad_test_wikipedia.txt", "en": "en/gum_open_license_genres.txt"}
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

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), dpi=100)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokenizer", type=Path, default=None, help="an extended tokenizer folder to reuse")
    parser.add_argument("--vocab-size", type=int, default=16_000)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--stages", default="full:50", help="the stages every arm runs, e.g. embeddings:30,full:70")
    parser.add_argument("--new-rows-steps", type=int, default=20, help="the extended arms' first stage")
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate of the shared stages")
    parser.add_argument("--new-rows-lr", type=float, default=5e-4)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--eval-max-bytes", type=int, default=10_000, help="UTF-8 bytes scored per eval corpus")
    parser.add_argument("--max-docs", type=int, default=2_000, help="documents read per training file")
    parser.add_argument("--replay", default=REPLAY, help="English training text replayed in every arm (under --corpora)")
    parser.add_argument("--replay-weight", type=float, default=0.1,
                        help="share of the training blocks taken from --replay (0: Japanese only)")
    parser.add_argument("--distill-steps", type=int, default=None, help="init-model --distill-steps")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on cores shared with other jobs, more threads wait on a busy core)")
    parser.add_argument("--work-dir", type=Path, default=None, help="models and runs (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=RESULT)
    args = parser.parse_args()

    import torch

    from vocab_extend.corpus import read_documents
    from vocab_extend.pretrain import pretrain
    from vocab_extend.pretrain.config import config_from_dict
    from vocab_extend.pretrain.outputs import read_metrics
    from vocab_extend.tokenizer.loader import load_tokenizer

    torch.set_num_threads(args.threads)
    if not args.corpora.is_dir():
        raise SystemExit(f"error: {args.corpora} does not exist: pass --corpora with a folder laid out as "
                         "<lang>/<name>.txt (bench/README.md says how to get equivalent public text)")
    began, load_at_start = time.perf_counter(), os.getloadavg()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-pays-"))
    work.mkdir(parents=True, exist_ok=True)
    train_files = [str(args.corpora / f) for f in TRAIN]
    if not 0 <= args.replay_weight < 1:
        raise SystemExit(f"error: --replay-weight must be at least 0 and below 1, not {args.replay_weight}")
    replay = [f"en={args.corpora / args.replay}"] if args.replay_weight > 0 else []
    weights = {"ja": 1 - args.replay_weight, "en": args.replay_weight} if replay else {}
    eval_files = {name: str(args.corpora / f) for name, f in EVAL.items()}
    extended_arms = [a for a in args.arms if a != "base"]

    folder = args.tokenizer
    if folder is None and extended_arms:
        folder = work / "tokenizer"
        _cli(["merge", "--base", args.model, *[x for f in train_files for x in ("--corpus", f)],
              "--vocab-size", str(args.vocab_size), "--lang", "ja", "--heldout-fraction", "0",
              *[x for n, f in eval_files.items() for x in ("--eval", f"{n}={f}")],
              "--output-dir", str(folder), "--overwrite"])
    init_seconds, models = {}, {"base": args.model}
    for arm in extended_arms:
        target = work / f"init-{arm}"
        start = time.perf_counter()
        extra = ["--corpus", train_files[0]] if arm == "distill" else []
        if arm == "distill" and args.distill_steps is not None:
            extra += ["--distill-steps", str(args.distill_steps)]
        _cli(["init-model", "--model", args.model, "--tokenizer", str(folder), "--method", arm, *extra,
              "--output-dir", str(target), "--overwrite"])
        init_seconds[arm], models[arm] = round(time.perf_counter() - start, 1), str(target)

    # FLOPs per step of each arm, and the steps that give the base arm the extended arms' compute
    shapes = {"base": model_shape(args.model)}
    if extended_arms:
        shapes["extended"] = model_shape(models[extended_arms[0]])
    flops = {arm: flops_per_step(shapes["base" if arm == "base" else "extended"], args.block_size, args.batch_size)
             for arm in args.arms}
    shared = stage_list(args.stages, args.lr)
    shared_steps = sum(s["steps"] for s in shared)
    stages = {}
    for arm in extended_arms:
        stages[arm] = [{"name": "new-rows", "steps": args.new_rows_steps, "lr": args.new_rows_lr}, *shared]
    if "base" in args.arms:
        extended_total = (args.new_rows_steps + shared_steps) * flops[extended_arms[0]] if extended_arms else 0
        steps = max(shared_steps, math.ceil(extended_total / flops["base"]))
        base_stages = [dict(s) for s in shared]
        base_stages[-1]["steps"] += steps - shared_steps
        stages["base"] = base_stages

    docs = [t for f in train_files for t in read_documents(f, max_docs=args.max_docs)]
    curves, runs = {}, {}
    for arm in args.arms:
        tokenizer = load_tokenizer(args.model if arm == "base" else models[arm])
        cpt = chars_per_token(tokenizer, docs)
        out = work / "runs" / arm
        config = config_from_dict({
            "model": models[arm], "train": [f"ja={f}" for f in train_files] + replay, "train_weights": weights,
            "eval": eval_files,
            "max_docs": args.max_docs, "block_size": args.block_size, "batch_size": args.batch_size,
            "stages": stages[arm], "lr": args.lr, "warmup_steps": args.warmup_steps,
            "eval_every": args.eval_every, "eval_max_bytes": args.eval_max_bytes, "save_every": 0,
            "compare_base": False, "tensorboard": False, "progress": False, "device": "cpu",
            "output_dir": str(out), "overwrite": True, "cache_dir": str(work / "cache"), "seed": 0})
        print(f"arm {arm}: stages {stages[arm]}, {flops[arm]:.4g} FLOPs per step, {cpt:.3f} chars/token",
              flush=True)
        start = time.perf_counter()
        pretrain(config)
        seconds = time.perf_counter() - start
        records = read_metrics(out)
        evals = [r for r in records if r["kind"] == "eval"]
        train = [r for r in records if r["kind"] == "train"]
        tokens_per_step = args.block_size * args.batch_size
        curves[arm] = {"steps": [r["step"] for r in evals],
                       "flops": [r["step"] * flops[arm] for r in evals],
                       "chars": [round(r["step"] * tokens_per_step * (1 - args.replay_weight) * cpt)
                                 for r in evals],
                       "bpb": {c: [r["bpb"][c] for r in evals] for c in EVAL}}
        by_stage: dict[str, list[float]] = {}
        for r in train[1:]:
            by_stage.setdefault(r["stage"], []).append(r["tokens_per_s"])
        runs[arm] = {"model": models[arm] if arm == "base" else f"{args.model} + init-model --method {arm}",
                     "stages": stages[arm], "steps": train[-1]["step"] if train else 0,
                     "flops_per_step": flops[arm], "train_chars_per_token": round(cpt, 4),
                     "final_loss": train[-1]["loss"] if train else None, "wall_seconds": round(seconds, 1),
                     "median_tokens_per_s": {s: round(statistics.median(v), 1) for s, v in by_stage.items()}}
        start_en, end_en = curves[arm]["bpb"]["en"][0], curves[arm]["bpb"]["en"][-1]
        runs[arm]["en_end_vs_start"] = round(end_en / start_en - 1, 5)
        print(f"arm {arm}: bpb " + json.dumps(curves[arm]["bpb"]) + f" in {seconds:.0f}s", flush=True)

    comparisons, targets = {}, {}
    if "base" in args.arms:
        for arm in extended_arms:
            comparisons[arm] = {c: compare(curves["base"], curves[arm], c) for c in EVAL}
            targets[f"ja_{arm}_at_most_base_at_equal_flops"] = comparisons[arm]["ja"]["b_at_most_a_at_end"]
    for arm in args.arms:
        targets[f"en_{arm}_end_within_2pct_of_start"] = abs(runs[arm]["en_end_vs_start"]) <= 0.02
    final = {arm: {"steps": c["steps"][-1], "flops": c["flops"][-1], "chars": c["chars"][-1],
                   "bpb_start": {k: v[0] for k, v in c["bpb"].items()},
                   "bpb_end": {k: v[-1] for k, v in c["bpb"].items()}} for arm, c in curves.items()}
    plot_path = args.json.with_suffix(".png")
    plot(curves, plot_path, f"SmolLM2-135M continued on Japanese"
         f"{f' + {args.replay_weight:.0%} English replay' if replay else ''}: own tokenizer (base) vs extended")
    figures = {
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "cores": os.cpu_count(),
                    "device": "cpu", "dtype": "float32", "torch_threads": args.threads,
                    "load_average_at_start": [round(x, 2) for x in load_at_start]},
        "model": args.model, "arms": args.arms,
        "settings": {k: v for k, v in vars(args).items() if k not in ("corpora", "tokenizer", "work_dir", "json")},
        "tokenizer": {"vocab_size_new_model": args.vocab_size,
                      "base_rows": shapes["base"]["lm_head_rows"],
                      "extended_rows": shapes["extended"]["lm_head_rows"] if extended_arms else None},
        "training_files": TRAIN, "replay": {"file": args.replay, "weight": args.replay_weight} if replay else None,
        "max_docs_per_file": args.max_docs, "eval_corpora": EVAL,
        "eval_max_bytes": args.eval_max_bytes, "eval_every": args.eval_every,
        "block_size": args.block_size, "batch_size": args.batch_size,
        "flops": {"formula": "6*N*T + 6*L*T*d per step; N = parameters other than the input embeddings "
                             "(the lm_head with all its rows), T = block_size*batch_size, L layers, d width",
                  "shapes": shapes, "per_step": flops},
        "init_seconds": init_seconds, "runs": runs, "curves": curves, "final": final,
        "equal_flops": comparisons, "targets": targets,
        "wall_seconds": round(time.perf_counter() - began, 1),
        "plot": plot_path.name,
    }
    print(json.dumps({"final": final, "targets": targets,
                      "crossing": {a: c["ja"]["crossing"] for a, c in comparisons.items()}}, indent=2))
    atomic_write_json(args.json, figures)
    print(f"wrote {args.json} and {plot_path}", flush=True)


if __name__ == "__main__":
    main()
