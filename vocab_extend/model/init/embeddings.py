"""Resizing a model to an extended tokenizer and initialising the new embedding rows.

After a merge the tokenizer has ids the model has never seen. ``vocab-extend init-model`` (or
``python scripts/init_embeddings.py``) grows the input and output embeddings and fills the new rows:

``mean`` (default)
    Each new token's row is the mean of the rows of the base-tokenizer pieces of its own text, for the input
    and for the output embeddings. The pieces come from running the base tokenizer's BPE model on the new
    token's piece string (``▁東京``, or ``Ġ...`` for byte-level BPE), i.e. exactly how the base model saw that
    text inside a word. Two cases are handled deliberately:

    - a leading *bare* whitespace piece (``▁`` or ``Ġ``) is dropped when other pieces follow: it is the
      generic "a word starts here" row, shared by every word of every language, and would pull all
      word-initial tokens toward the same point; it is kept when it is the only piece;
    - byte-fallback pieces (``<0xE6>``) and byte-level bytes are real rows the base model was trained on
      (they are how it read the new script before), so they are kept like any other piece.

``first``
    Input rows as ``mean``; each output row is the output row of the first piece (after the rule above),
    since the probability of the whole token is bounded by that of its first piece.
``hewitt``
    Every new row is drawn from N(mean of the base rows, 1e-9 × their covariance) — transformers'
    ``resize_token_embeddings(mean_resizing=True)``, after Hewitt (2021). New tokens start as an average
    token, so the model's distribution on base text barely moves.
``random``
    N(0, ``initializer_range``), as Chinese-LLaMA did.
``distill``
    ``mean``, then token distillation from the frozen base model on contexts of ``--corpus`` (see
    :mod:`vocab_extend.model.init.distill`): input rows are optimised so the model reading a new token
    matches the model reading its base pieces; output rows of untied models are fitted to the base model's
    probability of the whole piece sequence. Tokens absent from the corpus get the correction the distilled
    rows took, as a ridge map from their ``mean`` rows (:mod:`vocab_extend.model.init.distill.transfer`).

Each method is one function in :mod:`.methods` and one line of its ``METHODS`` registry; this module resizes
the model, splits the new tokens into base pieces and writes the rows the method gives.

*Tied models* (``tie_word_embeddings``, e.g. SmolLM2) have one matrix serving as input and output
embeddings; it is initialised with the input rule, so ``first`` equals ``mean`` there (the report says so).

*Padding rows* (from ``--pad-to-multiple-of``) are never produced by the tokenizer; input and output rows
are the mean of the base rows. For any hidden state the mean row's logit is the mean of the base logits, which
by Jensen's inequality is at most ``logsumexp - ln V``: each padding row takes at most 1/V of the probability
(V = base vocabulary), and in practice far less because real distributions are peaked.

*Base rows* (ids below the base vocabulary size) are copied bit for bit; rows of a base model that were
already padding beyond its tokenizer take the new ids and are re-initialised like any new row. All random
draws use a seeded generator, so the same inputs give byte-identical outputs.

A worked example of the ``mean`` rule for a merged Japanese piece, with Mistral's base pieces::

    ます   -> base pieces ま, す               -> row = (E[ま] + E[す]) / 2
    ▁東京  -> base pieces ▁, 東, 京 (▁ dropped) -> row = (E[東] + E[京]) / 2
    顕     -> base pieces <0xE9>, <0xA1>, <0x95> -> row = mean of the three byte rows
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from ...errors import VocabExtendError
from ...families import byte_piece_rule
from .config import InitConfig
from .methods import METHODS, InitMethod, NewRows
from ..sizing import MAX_PADDING_ROWS, pad_vocab_size

WHITESPACE_MARKERS = ("\u2581", "\u0120")  # SentencePiece ▁ and byte-level Ġ


@dataclass
class InitReport:
    """What :func:`init_embeddings` did, written as ``init_embeddings.json`` next to the model."""

    method: str
    tied: bool
    base_vocab_size: int
    tokenizer_size: int
    embedding_size: int  # rows of both matrices = config.vocab_size
    new_tokens: int
    padding_rows: int
    reused_base_padding_rows: int  # rows the base model had beyond its tokenizer, now new ids
    mean_pieces_per_token: float = 0.0
    tokens_with_byte_pieces: int = 0
    bare_whitespace_dropped: int = 0
    special_new_tokens: int = 0  # added special tokens: initialised with the mean of the base rows
    notes: list[str] = field(default_factory=list)
    distill: dict = field(default_factory=dict)  # DistillReport of method distill


@dataclass
class Decomposition:
    """The base-tokenizer pieces of each new token (ids ``base_vocab_size ...``), after the ``▁`` rule."""

    pieces: list[list[int]]
    byte_tokens: int = 0
    whitespace_dropped: int = 0
    special: int = 0


def decompose(tokenizer, base_tokenizer, base_vocab_size: int) -> Decomposition:
    """Base pieces of every token with an id from ``base_vocab_size`` to ``len(tokenizer) - 1``.

    Model pieces are split by the base tokenizer's own BPE model (no normaliser, no special tokens); added
    tokens holding raw text are encoded as text; special tokens get no pieces (their rows are the mean of
    the base rows). A leading bare ``▁``/``Ġ`` piece is dropped when other pieces follow.
    """
    backend = base_tokenizer.backend_tokenizer
    model = backend.model
    # byte pieces: <0xE6> in SentencePiece bases, bytes that are part of a character in byte-level ones
    is_byte_piece = byte_piece_rule(backend)
    new_ids = list(range(base_vocab_size, len(tokenizer)))
    special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    result = Decomposition(pieces=[])
    for token_id, piece in zip(new_ids, tokenizer.convert_ids_to_tokens(new_ids) if new_ids else []):
        if token_id in special_ids or piece is None:
            result.special += 1
            result.pieces.append([])
            continue
        if token_id in added:  # an added (non-model) token holds raw text: encode it like text
            ids = base_tokenizer(added[token_id].content, add_special_tokens=False)["input_ids"]
            strings = base_tokenizer.convert_ids_to_tokens(ids)
        else:
            found = model.tokenize(piece)
            ids, strings = [t.id for t in found], [t.value for t in found]
        if len(ids) > 1 and strings[0] in WHITESPACE_MARKERS:
            ids, strings = ids[1:], strings[1:]
            result.whitespace_dropped += 1
        if any(is_byte_piece(s) for s in strings):
            result.byte_tokens += 1
        bad = [i for i in ids if not 0 <= i < base_vocab_size]
        if bad or not ids:
            raise VocabExtendError(
                f"new token {piece!r} (id {token_id}) does not split into base tokens: the tokenizer folder's "
                "base does not match its vocab_extend.json; re-run `vocab-extend merge`"
            )
        result.pieces.append(ids)
    return result


def init_embeddings(model, tokenizer, base_tokenizer, base_vocab_size: int,
                    config: InitConfig | None = None, texts: Sequence[str] | None = None) -> InitReport:
    """Resize ``model`` in place to ``tokenizer`` (padded) and initialise every row from ``base_vocab_size`` on.

    ``tokenizer`` is the extended tokenizer, ``base_tokenizer`` the base one (same ids below
    ``base_vocab_size``). Afterwards ``config.vocab_size`` equals the rows of both matrices, rows below
    ``base_vocab_size`` are bit-identical to before, and rows ``len(tokenizer)`` onward are padding.
    ``texts`` are the contexts of a method that refines its rows (``distill``; required there).
    """
    config = config or InitConfig()
    method = METHODS[config.method]
    if method.refine is not None and texts is None:
        raise VocabExtendError(f"--method {config.method} needs a corpus in which the new tokens occur: "
                               "give --corpus SPEC")
    old_rows = _check_sizes(model, tokenizer, base_vocab_size)
    size = max(pad_vocab_size(len(tokenizer), config.pad_to_multiple_of), old_rows)
    decomposition = decompose(tokenizer, base_tokenizer, base_vocab_size)
    tied = _resize(model, size)
    _fill_new_rows(model, method, config.seed, base_vocab_size, len(tokenizer), decomposition.pieces, tied)
    notes = []
    if tied and config.method == "first":
        notes.append("the model ties input and output embeddings: 'first' was applied as 'mean'")
    refined = {}
    if method.refine is not None:  # the rows hold what method.rows gave them
        refined = method.refine(model, tokenizer, base_tokenizer, base_vocab_size, texts or [], config)
        notes.extend(refined["notes"])
    counts = [len(p) for p in decomposition.pieces if p]
    return InitReport(
        method=config.method,
        tied=tied,
        base_vocab_size=base_vocab_size,
        tokenizer_size=len(tokenizer),
        embedding_size=size,
        new_tokens=len(tokenizer) - base_vocab_size,
        padding_rows=size - len(tokenizer),
        reused_base_padding_rows=max(0, min(old_rows, len(tokenizer)) - base_vocab_size),
        mean_pieces_per_token=round(sum(counts) / len(counts), 4) if counts else 0.0,
        tokens_with_byte_pieces=decomposition.byte_tokens,
        bare_whitespace_dropped=decomposition.whitespace_dropped,
        special_new_tokens=decomposition.special,
        notes=notes,
        distill=refined,
    )


def _check_sizes(model, tokenizer, base_vocab_size: int) -> int:
    """The model's embedding rows, once they are known to fit the tokenizer's base (else one sentence)."""
    old_rows = model.get_input_embeddings().weight.shape[0]
    if old_rows < base_vocab_size:
        raise VocabExtendError(
            f"the model has {old_rows} embedding rows but the tokenizer's base has {base_vocab_size} tokens: "
            "give the model whose tokenizer the merge extended"
        )
    if old_rows - base_vocab_size >= MAX_PADDING_ROWS:
        raise VocabExtendError(
            f"the model has {old_rows:,} embedding rows but the tokenizer's base only {base_vocab_size:,} tokens: "
            "it is not the model whose tokenizer the merge extended"
        )
    if len(tokenizer) < base_vocab_size:
        raise VocabExtendError(
            f"the tokenizer has {len(tokenizer)} tokens, fewer than its base's {base_vocab_size}: "
            "give a folder written by `vocab-extend merge`"
        )
    return old_rows


def _resize(model, size: int) -> bool:
    """Resize both embedding matrices to ``size`` rows; whether they are one (tied) matrix."""
    output_embeddings = model.get_output_embeddings()
    # mean_resizing=False: transformers copies the old rows and draws the new ones at random; we overwrite
    # every new row afterwards, so its (unseeded) draw never reaches the output.
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state as it was
        model.resize_token_embeddings(size, mean_resizing=False)
    output_module = model.get_output_embeddings()
    tied = output_module is None or output_module.weight is model.get_input_embeddings().weight
    if output_embeddings is not None and getattr(output_module, "bias", None) is not None:
        raise VocabExtendError("output layers with a bias are not supported yet: please report this model")
    return tied


def _fill_new_rows(model, method: InitMethod, seed: int, base_vocab_size: int, tokenizer_size: int,
                   pieces: list[list[int]], tied: bool) -> None:
    """The method's rows for the new tokens, then the mean of the base rows for the padding rows, in the input
    matrix and (untied) the output matrix, drawing from one generator seeded by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    std = float(getattr(model.config, "initializer_range", 0.02))
    weights = [(model.get_input_embeddings().weight, False)]
    if not tied:
        weights.append((model.get_output_embeddings().weight, True))
    for weight, output in weights:
        rows = method.rows(NewRows(weight, base_vocab_size, pieces, output=output, std=std, generator=generator))
        with torch.no_grad():
            weight[base_vocab_size:tokenizer_size] = rows.to(weight.dtype)
            weight[tokenizer_size:] = weight[:base_vocab_size].float().mean(0).to(weight.dtype)
