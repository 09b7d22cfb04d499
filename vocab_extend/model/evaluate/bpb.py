"""Bits per byte: a tokenizer-independent measure of how well a model predicts text.

Token-level loss cannot compare a base model with its extended version: the extended tokenizer cuts the
same text into fewer, larger tokens. Bits per byte divides the summed negative log-likelihood of all the
tokens of a text by the UTF-8 bytes of that text, so both models are scored on the same denominator::

    bpb = sum(token NLL in nats) / (ln 2 * UTF-8 bytes)

:func:`bits_per_byte` is used both by ``vocab-extend evaluate-bpb`` and by the continued-pretraining loop's
evaluation, so base and extended models are always compared with the same code.

A worked example: a model that gives every byte-level token probability 1/256 costs 8 bits per byte.

>>> import math
>>> r = BpbResult.from_sums(nll_sum=3 * math.log(256), tokens=3, nbytes=3)
>>> round(r.bpb, 6), round(r.loss, 4)
(8.0, 5.5452)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from tqdm.auto import tqdm

from ...console import ticking
from ...errors import VocabExtendError
from ..sizing import check_vocabulary_fits

DEFAULT_MAX_BLOCK = 1024


@dataclass
class BpbResult:
    """Bits per byte of a model on a list of texts, with the sums it was computed from.

    ``loss`` is the mean NLL per scored token in nats (what a training loop logs); ``bpb`` is the summed
    NLL over ``ln 2 × bytes``; ``tokens`` counts scored tokens (BOS is context only and never scored).
    """

    bpb: float
    nll_sum: float
    tokens: int
    bytes: int
    loss: float

    @classmethod
    def from_sums(cls, *, nll_sum: float, tokens: int, nbytes: int) -> "BpbResult":
        bpb = nll_sum / (math.log(2) * nbytes) if nbytes else float("nan")
        loss = nll_sum / tokens if tokens else float("nan")
        return cls(bpb=bpb, nll_sum=nll_sum, tokens=tokens, bytes=nbytes, loss=loss)


def truncate_to_bytes(texts: Sequence[str], max_bytes: int | None) -> list[str]:
    """The first ``max_bytes`` UTF-8 bytes of ``texts``, whole documents in order.

    The document that crosses the limit is cut at the last whole character that fits (never mid-character);
    empty documents are dropped.

    >>> truncate_to_bytes(["abc", "日本語", "xyz"], 8)
    ['abc', '日']
    """
    texts = [t for t in texts if t]
    if max_bytes is None:
        return texts
    if max_bytes <= 0:
        raise VocabExtendError(f"max_bytes must be positive, not {max_bytes}: give a byte budget such as 50000")
    kept: list[str] = []
    left = max_bytes
    for text in texts:
        data = text.encode("utf-8")
        if len(data) <= left:
            kept.append(text)
            left -= len(data)
            continue
        cut = data[:left].decode("utf-8", errors="ignore")
        if cut:
            kept.append(cut)
        break
    return kept


def context_token_id(tokenizer) -> int:
    """The token put in front of every window as context: the tokenizer's BOS, else its EOS.

    Models are pretrained on documents separated by one of these, so it is the natural "start of text"
    context; it is never scored itself.
    """
    for name in ("bos_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    raise VocabExtendError(
        "the tokenizer has neither a BOS nor an EOS token, so the first token of a text has no context: "
        "set tokenizer.bos_token before evaluating"
    )


def windows(ids: Sequence[int], start: int, block_size: int, stride: int) -> list[tuple[list[int], int]]:
    """Sliding windows over one document: ``(window, scored)``, scoring the last ``scored`` tokens of each.

    The first window is the context token and up to ``block_size - 1`` tokens, all scored. Each further
    window scores the next ``stride`` tokens and fills the rest of its ``block_size`` with the tokens before
    them as context, so every token is scored exactly once and, past the first window, with at least
    ``block_size - stride`` tokens of the document before it. A tokenizer that needs more tokens for the
    same text therefore loses no context for it (non-overlapping windows would restart it from nothing).

    >>> windows([1, 2, 3, 4, 5, 6], 0, block_size=4, stride=2)
    [([0, 1, 2, 3], 3), ([2, 3, 4, 5], 2), ([3, 4, 5, 6], 1)]
    """
    ids = list(ids)
    first = block_size - 1
    out = [([start, *ids[:first]], min(first, len(ids)))] if ids else []
    pos = first
    while pos < len(ids):
        new = ids[pos : pos + stride]
        end = pos + len(new)
        out.append((ids[max(0, end - block_size) : end], len(new)))
        pos = end
    return out


def window_settings(model, block_size: int | None, stride: int | None) -> tuple[int, int]:
    """``(block_size, stride)`` with their defaults filled in (the model's context up to 1024; half the
    window), checked against the model's context."""
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    block_size = block_size or (min(int(context), DEFAULT_MAX_BLOCK) if context else DEFAULT_MAX_BLOCK)
    if block_size < 2:
        raise VocabExtendError(f"block_size must be at least 2 (BOS plus one token), not {block_size}")
    if context and block_size > context:
        raise VocabExtendError(f"block_size {block_size} is beyond the model's context of {context} tokens: lower it")
    stride = stride if stride is not None else max(1, block_size // 2)
    if not 1 <= stride < block_size:
        raise VocabExtendError(f"stride must be between 1 and block_size - 1 ({block_size - 1}), not {stride}")
    return block_size, stride


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters
        return torch.device("cpu")


def _batch_nll(model, batch: list[tuple[list[int], int]], device: torch.device) -> tuple[float, int]:
    """Summed NLL (nats) of the scored last tokens of each window of ``batch``, and their count."""
    length = max(len(w) for w, _ in batch)
    input_ids = torch.zeros((len(batch), length), dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    scored = torch.zeros((len(batch), length - 1), dtype=torch.bool)
    for row, (window, count) in enumerate(batch):
        input_ids[row, : len(window)] = torch.tensor(window, dtype=torch.long)
        mask[row, : len(window)] = 1
        scored[row, len(window) - 1 - count : len(window) - 1] = True  # targets are the next tokens
    input_ids, mask, scored = input_ids.to(device), mask.to(device), scored.to(device)
    logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
    targets = input_ids[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return float(nll[scored].double().sum()), int(scored.sum())


def bits_per_byte(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    max_bytes: int | None = None,
    block_size: int | None = None,
    stride: int | None = None,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "bits per byte",
    leave: bool = True,
) -> BpbResult:
    """Bits per byte of ``model`` on ``texts``, each text scored as its own document.

    Each text is encoded without special tokens (text that spells one, such as ``</s>``, is text) and
    scored in sliding windows (:func:`windows`): the first starts with the tokenizer's BOS (else EOS) as
    context only, the others score ``stride`` new tokens (default: half the window) after the document's
    preceding tokens, so every token of the text is scored exactly once. ``block_size`` defaults to the
    model's ``max_position_embeddings`` capped at 1024. ``max_bytes`` keeps the
    first ``max_bytes`` UTF-8 bytes of the corpus (see :func:`truncate_to_bytes`); bytes are counted on the
    texts actually scored. The model runs in eval mode under ``torch.no_grad`` on ``device`` (default: where
    its parameters are) and gets its previous train/eval mode back; logits are upcast to float32. With
    ``progress``, a bar named ``desc`` counts the scored tokens, with their rate and the time left.
    """
    texts = truncate_to_bytes(texts, max_bytes)
    if not texts:
        raise VocabExtendError("there is no text to evaluate: give a corpus with at least one non-empty line")
    block_size, stride = window_settings(model, block_size, stride)
    if batch_size < 1:
        raise VocabExtendError(f"batch_size must be at least 1, not {batch_size}")
    check_vocabulary_fits(model, tokenizer)
    start = context_token_id(tokenizer)
    encoded = tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True)["input_ids"]
    chunks = [w for ids in encoded for w in windows(ids, start, block_size, stride)]
    # Similar lengths together waste less padding; the order is fixed, so results are reproducible.
    chunks.sort(key=lambda item: len(item[0]), reverse=True)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)

    target = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    nll_sum, tokens = 0.0, 0
    try:
        with torch.no_grad(), tqdm(
            total=sum(count for _, count in chunks), desc=desc, unit=" tok", disable=not progress,
            mininterval=1.0, leave=leave,
        ) as bar, ticking(bar):  # a batch can take many seconds on a CPU: the bar's clock keeps moving
            for i in range(0, len(chunks), batch_size):
                batch_nll, batch_tokens = _batch_nll(model, chunks[i : i + batch_size], target)
                nll_sum += batch_nll
                tokens += batch_tokens
                bar.update(batch_tokens)
    finally:
        model.train(was_training)
    return BpbResult.from_sums(nll_sum=nll_sum, tokens=tokens, nbytes=nbytes)
