"""The contexts of token distillation: each token's base pieces (its *span*) and the windows of a corpus in
which the new tokens occur, chosen in a seeded order (see :mod:`vocab_extend.model.init.distill`).

Example: with spans 東京 -> (東, 京) and は -> (は,), the window ``[東京, は]`` becomes the student's
``[<s>, 東京, は]`` and the teacher's ``[<s>, 東, 京, は]`` with ends ``[0, 2, 3]``.
"""

from __future__ import annotations

import random
from typing import Sequence

from .config import DistillConfig
from .passes import Context


def token_spans(tokenizer, base_tokenizer, base_vocab_size: int) -> list[list[int] | None]:
    """The base pieces of every id of ``tokenizer``: ``[id]`` for base ids, the base BPE model's pieces of the
    new token's piece string (whitespace marker kept, so spans concatenate to the text), ``None`` for special
    tokens."""
    model = base_tokenizer.backend_tokenizer.model
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    new_ids = list(range(base_vocab_size, len(tokenizer)))
    spans: list[list[int] | None] = [[i] for i in range(base_vocab_size)]
    for token_id, piece in zip(new_ids, tokenizer.convert_ids_to_tokens(new_ids)):
        if token_id in special or piece is None:
            spans.append(None)
        elif token_id in added:
            spans.append(base_tokenizer(added[token_id].content, add_special_tokens=False)["input_ids"] or None)
        else:
            spans.append([t.id for t in model.tokenize(piece)] or None)
    return spans


def select_contexts(encoded: Sequence[Sequence[int]], spans: Sequence[list[int] | None], base_vocab_size: int,
                    start: int, config: DistillConfig) -> list[Context]:
    """Cut each document into windows of ``context_length`` tokens and keep, in a seeded order, each window
    holding a new token seen in fewer than ``contexts_per_token`` kept windows, up to ``max_contexts``.
    Windows with a token without a span (a special token) are never kept."""
    length = config.context_length
    windows = [ids[i:i + length] for ids in encoded for i in range(0, len(ids), length)]
    order = list(range(len(windows)))
    random.Random(config.seed).shuffle(order)
    seen: dict[int, int] = {}
    kept: list[Context] = []
    for index in order:
        window = windows[index]
        new = [t for t in window if t >= base_vocab_size]
        if not any(seen.get(t, 0) < config.contexts_per_token for t in new):
            continue
        if any(t >= len(spans) or spans[t] is None for t in window):
            continue
        for t in set(new):
            seen[t] = seen.get(t, 0) + 1
        teacher, ends = [start], [0]
        for t in window:
            teacher.extend(spans[t])  # type: ignore[arg-type]
            ends.append(len(teacher) - 1)
        kept.append(Context(student=[start, *window], teacher=teacher, ends=ends))
        if len(kept) >= config.max_contexts:
            break
    return kept
