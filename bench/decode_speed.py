#!/usr/bin/env python3
"""Benchmark of decoding speed: characters per second of SmolLM2-135M with its own and the extended tokenizer.

Decodes the same held-out Japanese text token by token with a KV cache, teacher-forced (each step is fed the
text's next token, so both tokenizers produce exactly the same characters and the work per step is a real
decoding step: one token through the model and the full lm_head), for the base model with its own tokenizer
and for the extended model (``mean`` init; the speed does not depend on the init), at each batch size: the
first ``batch × --max-bytes`` bytes of held-out text, which each arm decodes as ``batch`` consecutive rows of
its own tokens. ``--rows equal-tokens`` (default) cuts the arm's encoding of that text into rows of equal
token counts, as a server with continuous batching keeps every slot busy; ``--rows equal-bytes`` gives row
``i`` the ``i``-th piece of ``--max-bytes`` bytes for both arms, and a batch then takes as many steps as its
longest row (padding, which costs the arm whose rows are less even). Either way both arms decode exactly the
same characters. Reports characters per second, the speed-up, and its ratio to the token-count ratio (the
limit, less the larger lm_head). Target: at least 0.9 of the token-count ratio. Timings are the median of
``--runs``, the arms alternating; on a machine shared with other jobs use several runs.

    python bench/decode_speed.py --tokenizer DIR --json bench/results/decode_speed.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = "ja/jsquad_test_wikipedia.txt"


def segments(texts: list[str], count: int, max_bytes: int) -> list[str]:
    """``count`` consecutive pieces of the corpus of about ``max_bytes`` UTF-8 bytes each (whole characters)."""
    text = "\n".join(texts)
    out, position = [], 0
    for _ in range(count):
        piece, size = [], 0
        while position < len(text) and size + len(text[position].encode("utf-8")) <= max_bytes:
            size += len(text[position].encode("utf-8"))
            piece.append(text[position])
            position += 1
        out.append("".join(piece))
    return out


def equal_rows(ids: list[int], count: int) -> list[list[int]]:
    """``ids`` cut into ``count`` consecutive rows whose lengths differ by at most one.

    >>> equal_rows([1, 2, 3, 4, 5], 2)
    [[1, 2, 3], [4, 5]]
    """
    size, extra = divmod(len(ids), count)
    rows, position = [], 0
    for i in range(count):
        width = size + (i < extra)
        rows.append(ids[position:position + width])
        position += width
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokenizer", type=Path, required=True, help="extended tokenizer folder (vocab-extend merge)")
    parser.add_argument("--max-bytes", type=int, default=1500, help="UTF-8 bytes of Japanese per batch row")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rows", choices=("equal-tokens", "equal-bytes"), default="equal-tokens",
                        help="how a batch's text is cut into rows (see above)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads (on cores shared with other jobs, 1 avoids waiting on a busy core)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    from vocab_extend.corpus import read_documents
    from vocab_extend.model.init.embeddings import InitConfig, init_embeddings
    from vocab_extend.model.evaluate.bpb import context_token_id
    from vocab_extend.model.evaluate.decode import decode_seconds
    from vocab_extend.metadata import read_metadata
    from vocab_extend.model.loading import load_model
    from vocab_extend.tokenizer.loader import load_tokenizer

    torch.set_num_threads(args.threads)
    meta = read_metadata(args.tokenizer)
    extended = AutoTokenizer.from_pretrained(str(args.tokenizer))
    base_tokenizer = load_tokenizer(args.model)
    base_model = load_model(args.model, device="cpu").eval()
    extended_model = copy.deepcopy(base_model)
    init_embeddings(extended_model, extended, base_tokenizer, meta.base_vocab_size, InitConfig(method="mean"))
    extended_model.eval()
    texts = read_documents(str(args.corpora / EVAL))
    arms = {"base": (base_model, base_tokenizer), "extended": (extended_model, extended)}
    results: dict[str, dict] = {}
    for batch in args.batch_sizes:
        rows_text = segments(texts, batch, args.max_bytes)
        chars = sum(len(t) for t in rows_text)
        entry: dict[str, dict] = {}
        if args.rows == "equal-bytes":
            encoded = {name: tokenizer(rows_text, add_special_tokens=False)["input_ids"]
                       for name, (_, tokenizer) in arms.items()}
        else:  # the pieces joined are the same text, so each arm's rows together decode the same characters
            encoded = {name: equal_rows(tokenizer("".join(rows_text), add_special_tokens=False)["input_ids"], batch)
                       for name, (_, tokenizer) in arms.items()}
        times: dict[str, list[float]] = {name: [] for name in arms}
        for _ in range(args.runs):  # the arms alternate, so a change in machine load hits both
            for name, (model, tokenizer) in arms.items():
                start = context_token_id(tokenizer)
                times[name].append(decode_seconds(model, encoded[name], start, start))
        for name in arms:
            rows, seconds = encoded[name], statistics.median(times[name])
            tokens = sum(len(r) for r in rows)
            entry[name] = {"tokens": tokens, "steps": max(len(r) for r in rows), "seconds": round(seconds, 3),
                           "chars_per_second": round(chars / seconds, 2),
                           "tokens_per_second": round(tokens / seconds, 2)}
            print(f"batch {batch} {name}: {tokens} tokens, {chars / seconds:.1f} chars/s", flush=True)
        speedup = entry["extended"]["chars_per_second"] / entry["base"]["chars_per_second"]
        token_ratio = entry["base"]["tokens"] / entry["extended"]["tokens"]
        results[str(batch)] = {"characters": chars, **entry, "speedup": round(speedup, 4),
                               "token_count_ratio": round(token_ratio, 4),
                               "step_count_ratio": round(entry["base"]["steps"] / entry["extended"]["steps"], 4),
                               "speedup_over_token_ratio": round(speedup / token_ratio, 4)}
    figures = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, cpu, float32",
        "model": args.model, "base_vocab_size": meta.base_vocab_size, "extended_vocab_size": len(extended),
        "eval_corpus": EVAL, "max_bytes_per_row": args.max_bytes, "rows": args.rows, "timing_runs": args.runs,
        "torch_threads": args.threads,
        "results": results,
        "targets": {f"batch_{b}_speedup_at_least_0.9_of_token_ratio": r["speedup_over_token_ratio"] >= 0.9
                    for b, r in results.items()},
    }
    print(json.dumps({b: {k: r[k] for k in ("speedup", "token_count_ratio", "speedup_over_token_ratio")}
                      for b, r in results.items()}, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
