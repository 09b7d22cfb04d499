"""Did extending pay? The model the run's starting point was made from, with its own tokenizer, scored on the
run's eval corpora with the same bits-per-byte window, beside the extended model's final figures.

A run that starts from an ``init-model`` folder knows its base model: ``init_embeddings.json`` names it. Bits
per byte compares models with different tokenizers fairly (:mod:`vocab_extend.model.evaluate.bpb`); the token
reduction says how many fewer steps the extended model needs to read or write the same text, and a short
teacher-forced decode (batch 1, KV cache, :mod:`vocab_extend.model.evaluate.decode`) of the same characters with
both models measures the speed-up that buys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..model.evaluate import decode
from ..model.evaluate.bpb import bits_per_byte, context_token_id
from ..model.loading import load_model
from ..tokenizer.loader import load_base_tokenizer
from .evaluation import EvalConfig

INIT_REPORT = "init_embeddings.json"


def base_model_spec(model: str) -> str | None:
    """The base model an ``init-model`` folder was made from; ``None`` when ``model`` is not such a folder."""
    path = Path(model) / INIT_REPORT
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model") if path.is_file() else None
    except ValueError:
        return None


DECODE_CHARS = 400  # characters of held-out text decoded by both models for the speed-up


def compare_with_base(model_spec: str, config: EvalConfig, tokenizer_dir: str | Path,
                      eval_docs: Mapping[str, Sequence[str]],
                      extended_bpb: Mapping[str, float] | None, device: Any, extended: tuple[Any, Any] | None = None,
                      reduction: list[dict[str, Any]] | None = None) -> list[dict[str, Any]] | None:
    """Per eval corpus: the base model's bits per byte (its own tokenizer) and the extended model's; with
    ``extended`` (the final model and its tokenizer), the first row also carries the measured decode speed-up
    on the corpus whose token count fell most."""
    spec = base_model_spec(model_spec)
    if spec is None or not eval_docs or not config.compare_base:
        return None
    model = load_model(spec, device=device, dtype="auto")
    tokenizer = load_base_tokenizer(tokenizer_dir)
    rows = []
    for name, texts in eval_docs.items():
        result = bits_per_byte(model, tokenizer, texts, max_bytes=config.max_bytes,
                               block_size=config.block_size, batch_size=config.batch_size,
                               device=device, progress=False)
        ext_bpb = (extended_bpb or {}).get(name)
        rows.append({"corpus": name, "base_model": spec, "base_bpb": round(result.bpb, 6), "extended_bpb": ext_bpb,
                     "difference": None if ext_bpb is None else round(ext_bpb - result.bpb, 6)})
    if extended is not None and reduction:
        best = max(reduction, key=lambda r: r["reduction"])
        if best["reduction"] > 0 and eval_docs.get(best["corpus"]):
            rows[0]["decode"] = decode_comparison((model, tokenizer), extended, eval_docs[best["corpus"]],
                                                  best["corpus"], device)
    return rows


def decode_comparison(base: tuple[Any, Any], extended: tuple[Any, Any], texts: Sequence[str], corpus: str,
                      device: Any) -> dict[str, Any]:
    """Both models decode the same :data:`DECODE_CHARS` characters of ``texts`` (batch 1, teacher-forced)."""
    text = "\n".join(texts)[:DECODE_CHARS]
    found: dict[str, Any] = {"corpus": corpus}
    for name, (model, tokenizer) in (("base", base), ("extended", extended)):
        was_training = model.training
        model.eval()
        found[name] = decode.measure(model, tokenizer, text, context_token_id(tokenizer), device)
        model.train(was_training)
    found["speedup"] = round(decode.speedup(found["base"], found["extended"]), 3)
    found["token_ratio"] = round(found["base"]["tokens"] / max(found["extended"]["tokens"], 1), 3)
    return found


def paid_section(rows: list[dict[str, Any]], reduction: list[dict[str, Any]] | None) -> list[str]:
    """The report section: bits per byte of both models, their difference and the tokens saved."""
    saved = {r["corpus"]: r["reduction"] for r in reduction or []}
    lines = ["## Did extending pay?", "",
             f"The base model `{rows[0]['base_model']}` with its own tokenizer, against the extended model at the "
             "end of this run, on the same text and window. Lower bits per byte is better; a negative difference "
             "means the extended model predicts the text better than the model it came from.", "",
             "| corpus | base model bpb | extended model bpb | difference | fewer tokens |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        ext = "" if r["extended_bpb"] is None else f"{r['extended_bpb']:.4f}"
        diff = "" if r["difference"] is None else f"{r['difference']:+.4f}"
        fewer = f"{saved[r['corpus']]:.1%}" if r["corpus"] in saved else ""
        lines.append(f"| {r['corpus']} | {r['base_bpb']:.4f} | {ext} | {diff} | {fewer} |")
    speed = rows[0].get("decode")
    if speed:
        b, e = speed["base"], speed["extended"]
        lines += ["", f"Decoding the same {b['chars']} characters of {speed['corpus']} token by token (batch 1, "
                  f"teacher-forced, KV cache): the base model takes {b['tokens']} steps ({b['chars'] / b['seconds']:.1f} "
                  f"characters/s), the extended model {e['tokens']} ({e['chars'] / e['seconds']:.1f} characters/s): "
                  f"**{speed['speedup']:.2f}× faster**, against a token-count ratio of {speed['token_ratio']:.2f}× "
                  "(the limit, less the larger lm_head). One timing on this machine; "
                  "`bench/decode_speed.py` measures batches and repeats."]
    lines.append("")
    return lines
