"""Did extending pay? The model the run's starting point was made from, with its own tokenizer, scored on the
run's eval corpora with the same bits-per-byte window, beside the extended model's final figures.

A run that starts from an ``init-model`` folder knows its base model: ``init_embeddings.json`` names it. Bits
per byte compares models with different tokenizers fairly (:mod:`vocab_extend.model.evaluate.bpb`); the token
reduction says how many fewer steps the extended model needs to read or write the same text, and a short
teacher-forced decode (batch 1, KV cache, :mod:`vocab_extend.model.evaluate.decode`) of the same characters with
both models measures the speed-up that buys.

**The base model's bits per byte are computed once** per (base model content, base tokenizer, scored text,
window, batch, device, dtype, library versions) and kept in the cache (:mod:`vocab_extend.model.evaluate.stored`,
listed by ``vocab-extend cache``): a second run on the same text reads them back in milliseconds. The text
is the run's eval budget (:meth:`.evaluation.EvalConfig.budget`), the same as the extended model's. The
decode timing is measured afresh every time (a timing kept from another moment would not compare), so the
base model is loaded only when there is a decode to time or a score to compute.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..console import log
from ..model.evaluate import decode, stored
from ..model.evaluate.bpb import BpbResult, bits_per_byte, context_token_id, truncate_to_bytes
from ..model.loading import load_model
from ..tokenizer.loader import load_base_tokenizer
from .data import tokenizer_fingerprint
from .evaluation import EvalConfig

INIT_REPORT = "init_embeddings.json"


def base_model_spec(model: str) -> str | None:
    """The base model an ``init-model`` folder was made from; ``None`` when ``model`` is not such a folder."""
    path = Path(model) / INIT_REPORT
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model") if path.is_file() else None
    except ValueError:
        return None


DECODE_CHARS = 160  # characters decoded by both models for the speed-up (~280 steps of a base model on Japanese)


def compare_with_base(model_spec: str, config: EvalConfig, tokenizer_dir: str | Path,
                      eval_docs: Mapping[str, Sequence[str]],
                      extended_bpb: Mapping[str, float] | None, device: Any, extended: tuple[Any, Any] | None = None,
                      reduction: list[dict[str, Any]] | None = None, progress: bool = True
                      ) -> list[dict[str, Any]] | None:
    """Per eval corpus: the base model's bits per byte (its own tokenizer; stored once computed) and the
    extended model's, on the first ``config.max_bytes`` bytes (the run's budget: pass the sized section);
    with ``extended`` (the final model and its tokenizer), the first row also carries the measured decode
    speed-up on the corpus whose token count fell most."""
    spec = base_model_spec(model_spec)
    if spec is None or not eval_docs or not config.compare_base:
        return None
    tokenizer = load_base_tokenizer(tokenizer_dir)
    model = _Loader(spec, device)
    rows = []
    for name, texts in eval_docs.items():
        result, cached = base_score(model, tokenizer, truncate_to_bytes(texts, config.max_bytes), config, device,
                                    f"base model on {name}" if progress else None)
        ext_bpb = (extended_bpb or {}).get(name)
        rows.append({"corpus": name, "base_model": spec, "base_bpb": round(result.bpb, 6), "extended_bpb": ext_bpb,
                     "difference": None if ext_bpb is None else round(ext_bpb - result.bpb, 6),
                     "base_cached": cached})
    if extended is not None and reduction:
        best = max(reduction, key=lambda r: r["reduction"])
        if best["reduction"] > 0 and eval_docs.get(best["corpus"]):
            rows[0]["decode"] = decode_comparison((model(), tokenizer), extended, eval_docs[best["corpus"]],
                                                  best["corpus"], device, progress)
    return rows


class _Loader:
    """The base model, loaded on first call (a run whose scores are all stored and that times no decode
    never loads it)."""

    def __init__(self, spec: str, device: Any) -> None:
        self.spec, self.device, self.model = spec, device, None

    def __call__(self) -> Any:
        if self.model is None:
            log(f"loading the base model {self.spec} to compare with it")
            self.model = load_model(self.spec, device=self.device, dtype="auto")
        return self.model


def score_key(spec: str, tokenizer, texts: Sequence[str], config: EvalConfig, device: Any) -> dict[str, Any] | None:
    """What a base model's score depends on, by content; ``None`` when the model cannot be fingerprinted."""
    model = stored.model_fingerprint(spec)
    if model is None:
        return None
    return {"what": "bits per byte", "model": model, "tokenizer": tokenizer_fingerprint(tokenizer),
            "context_token": context_token_id(tokenizer), "texts": stored.texts_hash(texts),
            "block_size": config.block_size, "batch_size": config.batch_size, "dtype": "auto",
            "device": torch.device(device).type, "torch": torch.__version__, "transformers": version("transformers")}


def base_score(model: _Loader, tokenizer, texts: Sequence[str], config: EvalConfig, device: Any,
               progress: str | None) -> tuple[BpbResult, bool]:
    """The base model's bits per byte on ``texts`` and whether it was read from the cache (else computed and
    kept there); ``progress`` names the bar of a computation."""
    key = score_key(model.spec, tokenizer, texts, config, device)
    found = stored.load_score(key) if key is not None else None
    if found is not None:
        try:
            return BpbResult(**found), True
        except TypeError:
            pass  # another version's fields: computed again below
    result = bits_per_byte(model(), tokenizer, texts, block_size=config.block_size, batch_size=config.batch_size,
                           device=device, progress=progress is not None, desc=progress or "")
    if key is not None:
        stored.save_score(key, vars(result), f"{model.spec} on {len(texts):,} documents, {result.bytes:,} bytes")
    return result, False


def decode_comparison(base: tuple[Any, Any], extended: tuple[Any, Any], texts: Sequence[str], corpus: str,
                      device: Any, progress: bool = False) -> dict[str, Any]:
    """Both models decode the same :data:`DECODE_CHARS` characters of ``texts`` (batch 1, teacher-forced)."""
    text = "\n".join(texts)[:DECODE_CHARS]
    found: dict[str, Any] = {"corpus": corpus}
    for name, (model, tokenizer) in (("base", base), ("extended", extended)):
        was_training = model.training
        model.eval()
        found[name] = decode.measure(model, tokenizer, text, context_token_id(tokenizer), device,
                                     f"decode timing, {name} model" if progress else None)
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
    if any(r.get("base_cached") for r in rows):
        lines += ["", "The base model's figures were read from the cache: they are computed once per base model, "
                  "text and settings (`vocab-extend cache` lists them)."]
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
