"""Decoding speed: characters per second of a model decoding a text token by token with a KV cache.

The decode is *teacher-forced*: each step is fed the text's next token, so two models with different
tokenizers produce exactly the same characters, and each step is a real decoding step (one token through
the model and its full lm_head). The speed-up of an extended model over its base is then the ratio of their
characters per second; its limit is the token-count ratio (fewer steps), less the cost of the larger lm_head.

>>> round(speedup({"chars": 300, "seconds": 10.0}, {"chars": 300, "seconds": 4.0}), 2)
2.5
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm


def cache_argument(model: torch.nn.Module, cache: Any) -> dict[str, Any]:
    """``{name: cache}`` with the name this transformers version's ``forward`` takes a KV cache by (``cache``
    since 5.x's rename, ``past_key_values`` before)."""
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    return {name: cache}


def decode_seconds(model: torch.nn.Module, rows: Sequence[Sequence[int]], start: int, pad: int,
                   device: Any = "cpu", progress: str | None = None) -> float:
    """Seconds to decode ``rows`` (right-padded with ``pad``) one token per step with a KV cache, after a
    ``start`` token; a batch takes as many steps as its longest row. With ``progress``, a bar of that name
    counts the steps (its update costs microseconds against the milliseconds of a step)."""
    from transformers import DynamicCache

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width + 1), pad, dtype=torch.long)
    ids[:, 0] = start
    for i, r in enumerate(rows):
        ids[i, 1:len(r) + 1] = torch.tensor(list(r), dtype=torch.long)
    ids = ids.to(device)
    synchronize = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    synchronize()
    began = time.perf_counter()
    with torch.inference_mode():
        cache = DynamicCache()
        for step in tqdm(range(width), desc=progress, unit=" step", disable=progress is None, leave=False,
                         mininterval=1.0):
            model(input_ids=ids[:, step:step + 1], use_cache=True, **cache_argument(model, cache))
    synchronize()
    return time.perf_counter() - began


def measure(model: torch.nn.Module, tokenizer, text: str, start: int, device: Any = "cpu",
            progress: str | None = None) -> dict[str, Any]:
    """Characters, tokens and seconds of a batch-1 teacher-forced decode of ``text`` (after a short warm-up);
    ``progress`` names a bar of the decode's steps."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    decode_seconds(model, [ids[:4] or [start]], start, start, device)  # first-call costs out of the timing
    seconds = decode_seconds(model, [ids], start, start, device, progress)
    return {"chars": len(text), "tokens": len(ids), "seconds": round(seconds, 4)}


def speedup(base: dict[str, Any], extended: dict[str, Any]) -> float:
    """How many times more characters per second the extended model decodes."""
    return (extended["chars"] / extended["seconds"]) / (base["chars"] / base["seconds"])
