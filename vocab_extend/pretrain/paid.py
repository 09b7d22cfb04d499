"""Did extending pay? The model the run's starting point was made from, with its own tokenizer, scored on the
run's eval corpora with the same bits-per-byte window, beside the extended model's final figures.

A run that starts from an ``init-model`` folder knows its base model: ``init_embeddings.json`` names it. Bits
per byte compares models with different tokenizers fairly (:mod:`vocab_extend.model.bpb`); the token
reduction says how many fewer steps the extended model needs to read or write the same text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..model.bpb import bits_per_byte
from ..model.loading import load_model
from ..tokenizer.loader import load_base_tokenizer
from .config import PretrainConfig

INIT_REPORT = "init_embeddings.json"


def base_model_spec(model: str) -> str | None:
    """The base model an ``init-model`` folder was made from; ``None`` when ``model`` is not such a folder."""
    path = Path(model) / INIT_REPORT
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model") if path.is_file() else None
    except ValueError:
        return None


def compare_with_base(config: PretrainConfig, tokenizer_dir: str | Path, eval_docs: Mapping[str, Sequence[str]],
                      extended_bpb: Mapping[str, float] | None, device: Any) -> list[dict[str, Any]] | None:
    """Per eval corpus: the base model's bits per byte (its own tokenizer) and the extended model's."""
    spec = base_model_spec(config.model)
    if spec is None or not eval_docs or not config.compare_base:
        return None
    model = load_model(spec, device=device, dtype="auto")
    tokenizer = load_base_tokenizer(tokenizer_dir)
    rows = []
    for name, texts in eval_docs.items():
        result = bits_per_byte(model, tokenizer, texts, max_bytes=config.eval_max_bytes,
                               block_size=config.eval_block_size, batch_size=config.eval_batch_size,
                               device=device, progress=False)
        extended = (extended_bpb or {}).get(name)
        rows.append({"corpus": name, "base_model": spec, "base_bpb": round(result.bpb, 6),
                     "extended_bpb": extended, "difference": None if extended is None else round(extended - result.bpb, 6)})
    return rows


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
    lines += ["", "Decoding speed (characters per second) is measured by `bench/decode_speed.py`.", ""]
    return lines
