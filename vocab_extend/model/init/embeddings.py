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
    :mod:`vocab_extend.distill`): input rows are optimised so the model reading a new token matches the model
    reading its base pieces; output rows of untied models are fitted to the base model's probability of the
    whole piece sequence. Tokens absent from the corpus get the correction the distilled rows took, as a
    ridge map from their ``mean`` rows (:mod:`vocab_extend.model.distill_transfer`).

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

from dataclasses import asdict, dataclass, field
from itertools import accumulate
from typing import Sequence

import torch

from ...errors import VocabExtendError
from ...families import byte_piece_rule
from .distill import DistillConfig, distill_embeddings
from ..sizing import MAX_PADDING_ROWS, pad_vocab_size

METHODS = ("mean", "first", "hewitt", "random", "distill")
WHITESPACE_MARKERS = ("\u2581", "\u0120")  # SentencePiece ▁ and byte-level Ġ
HEWITT_EPSILON = 1e-9  # transformers' scale of the covariance in resize_token_embeddings(mean_resizing=True)


@dataclass
class InitConfig:
    """How to grow and fill the embeddings.

    ``pad_to_multiple_of``: embedding rows are padded up to a multiple of it (``None``: the merge metadata's
    value, 0 or 1: no padding); ``seed`` drives ``hewitt``, ``random`` and ``distill``; ``corpus`` (a corpus
    spec) and ``distill`` (budget) are used by ``distill`` only.
    """

    method: str = "mean"
    pad_to_multiple_of: int | None = None
    seed: int = 0
    corpus: str | None = None
    distill: DistillConfig | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise VocabExtendError(f"unknown --method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 0:
            raise VocabExtendError("--pad-to-multiple-of must be a positive integer (or 0 for no padding)")
        if not 0 <= self.seed < 2**32:
            raise VocabExtendError(f"--seed must be a whole number in [0, 2**32), not {self.seed}")


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


def _mean_rows(weight: torch.Tensor, pieces: Sequence[Sequence[int]], fallback: torch.Tensor) -> torch.Tensor:
    """Row i = mean of ``weight[pieces[i]]`` (float32); empty lists get ``fallback``."""
    if not pieces:
        return weight.new_zeros((0, weight.shape[1]), dtype=torch.float32)
    flat = torch.tensor([i for p in pieces for i in p], dtype=torch.long, device=weight.device)
    lengths = [len(p) for p in pieces]
    offsets = torch.tensor([0, *accumulate(lengths)][:-1], dtype=torch.long, device=weight.device)
    rows = torch.nn.functional.embedding_bag(flat, weight.float(), offsets, mode="mean")
    empty = torch.tensor([n == 0 for n in lengths], device=weight.device)
    rows[empty] = fallback
    return rows


def _first_rows(weight: torch.Tensor, pieces: Sequence[Sequence[int]], fallback: torch.Tensor) -> torch.Tensor:
    return _mean_rows(weight, [p[:1] for p in pieces], fallback)


def _hewitt_rows(base: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` draws from N(mean, 1e-9 × covariance) of ``base`` rows; the mean when not positive definite."""
    base = base.double()
    mean = base.mean(0)
    centered = base - mean
    covariance = centered.T @ centered / base.shape[0]
    noise = torch.randn((count, base.shape[1]), generator=generator, dtype=torch.float64)
    factor, info = torch.linalg.cholesky_ex(HEWITT_EPSILON * covariance)
    if int(info) != 0:
        return mean.expand(count, -1).float()
    return (mean + noise @ factor.T).float()


def _new_rows(method: str, weight: torch.Tensor, base_vocab_size: int, pieces: list[list[int]],
              *, output: bool, std: float, generator: torch.Generator) -> torch.Tensor:
    base = weight[:base_vocab_size]
    fallback = base.float().mean(0)
    count = len(pieces)
    if method == "random":
        return torch.randn((count, weight.shape[1]), generator=generator) * std
    if method == "hewitt":
        return _hewitt_rows(base, count, generator)
    if method == "first" and output:
        return _first_rows(weight, pieces, fallback)
    return _mean_rows(weight, pieces, fallback)


def _fill(weight: torch.Tensor, rows: torch.Tensor, start: int, pad_start: int, base_vocab_size: int) -> None:
    with torch.no_grad():
        weight[start:pad_start] = rows.to(weight.dtype)
        weight[pad_start:] = weight[:base_vocab_size].float().mean(0).to(weight.dtype)


def init_embeddings(model, tokenizer, base_tokenizer, base_vocab_size: int,
                    config: InitConfig | None = None, texts: Sequence[str] | None = None) -> InitReport:
    """Resize ``model`` in place to ``tokenizer`` (padded) and initialise every row from ``base_vocab_size`` on.

    ``tokenizer`` is the extended tokenizer, ``base_tokenizer`` the base one (same ids below
    ``base_vocab_size``). Afterwards ``config.vocab_size`` equals the rows of both matrices, rows below
    ``base_vocab_size`` are bit-identical to before, and rows ``len(tokenizer)`` onward are padding.
    ``texts`` are the contexts of method ``distill`` (required there).
    """
    config = config or InitConfig()
    if config.method == "distill" and texts is None:
        raise VocabExtendError("--method distill needs a corpus in which the new tokens occur: give --corpus SPEC")
    input_embeddings = model.get_input_embeddings()
    old_rows = input_embeddings.weight.shape[0]
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
    size = max(pad_vocab_size(len(tokenizer), config.pad_to_multiple_of), old_rows)
    decomposition = decompose(tokenizer, base_tokenizer, base_vocab_size)
    output_embeddings = model.get_output_embeddings()
    # mean_resizing=False: transformers copies the old rows and draws the new ones at random; we overwrite
    # every new row below, so its (unseeded) draw never reaches the output.
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state as it was
        model.resize_token_embeddings(size, mean_resizing=False)
    input_weight = model.get_input_embeddings().weight
    output_module = model.get_output_embeddings()
    tied = output_module is None or output_module.weight is input_weight
    if output_embeddings is not None and getattr(output_module, "bias", None) is not None:
        raise VocabExtendError("output layers with a bias are not supported yet: please report this model")

    generator = torch.Generator().manual_seed(config.seed)
    std = float(getattr(model.config, "initializer_range", 0.02))
    pad_start = len(tokenizer)
    input_rows = _new_rows(config.method, input_weight, base_vocab_size, decomposition.pieces,
                           output=False, std=std, generator=generator)
    _fill(input_weight, input_rows, base_vocab_size, pad_start, base_vocab_size)
    if not tied:
        output_weight = output_module.weight
        output_rows = _new_rows(config.method, output_weight, base_vocab_size, decomposition.pieces,
                                output=True, std=std, generator=generator)
        _fill(output_weight, output_rows, base_vocab_size, pad_start, base_vocab_size)

    counts = [len(p) for p in decomposition.pieces if p]
    notes = []
    if tied and config.method == "first":
        notes.append("the model ties input and output embeddings: 'first' was applied as 'mean'")
    distilled = {}
    if config.method == "distill":  # the rows hold their mean init (see _new_rows)
        distill_config = config.distill or DistillConfig(seed=config.seed)
        distilled = asdict(distill_embeddings(model, tokenizer, base_tokenizer, base_vocab_size, texts or [],
                                              distill_config))
        notes.extend(distilled["notes"])
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
        distill=distilled,
    )
