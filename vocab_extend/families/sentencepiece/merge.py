"""Merging a new-language SentencePiece model into a SentencePiece BPE base.

The merge keeps the base model intact and appends only pieces that are safe and live:

1. *Base ids kept.* Base pieces keep their ids, text and types; new pieces get ids after them. Base pieces
   without a character of the new language's scripts keep their scores too.
2. *Base-language text unchanged.* A SentencePiece BPE encoder merges two adjacent symbols whenever their
   concatenation is a piece, highest score first, so a piece's score only matters in text that contains the
   piece. Every added piece, and every base piece whose score changes (5.), has at least one character of
   the new language's scripts, hence text without such characters is segmented exactly as before.
3. *Digits.* When the base splits digits, no added piece longer than one character contains a digit, so
   ``2007年`` still costs the same four digit tokens plus ``年``.
4. *No dead pieces.* A piece is producible iff encoding its own surface alone yields that piece (context
   can only take characters away from it) and each of its characters is a piece (otherwise only
   SentencePiece, not a Hugging Face BPE, can merge it). Pieces that fail are dropped, repeatedly, until
   every added piece is producible in the final vocabulary.
5. *Scores.* The new model's pieces keep its order and are scored above every other base piece, so in
   new-language text the new model's merges fire first and reproduce its segmentation: the added pieces, and
   the base pieces the new model also learned that hold a character of its scripts (Mistral has 2,000 such
   Cyrillic pieces; left at their base scores they fire after the new merges, and the new pieces built on
   them die). Scores are consecutive integers, exact in float32 and far from the −1e9 of whitespace-run
   pieces. ``vocab_extend.json`` keeps the base scores of re-ranked pieces (:data:`BASE_SCORES_KEY`), so the
   base can be rebuilt from the merged folder (:func:`restore_base_scores`).

>>> from vocab_extend.scripts import JAPANESE
>>> admissible("▁東京", JAPANESE, split_digits=True)
True
>>> admissible("2007年", JAPANESE, split_digits=True), admissible("——", JAPANESE, split_digits=True)
(False, False)
"""

from __future__ import annotations

import copy
import unicodedata
from collections import Counter

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from ...errors import VocabExtendError
from ...scripts import ScriptSet
from ..interface import Extension

NORMAL = sp_pb2.ModelProto.SentencePiece.NORMAL
USER_DEFINED = sp_pb2.ModelProto.SentencePiece.USER_DEFINED
_MERGEABLE_TYPES = (NORMAL, USER_DEFINED)
WHITESPACE = "\u2581"


def has_digit(piece: str) -> bool:
    return any(unicodedata.category(ch) == "Nd" for ch in piece)


def admissible(piece: str, scripts: ScriptSet, *, split_digits: bool) -> bool:
    """Whether ``piece`` may be added without touching base-language text or digit splitting."""
    if not scripts.contains(piece):
        return False
    if split_digits and has_digit(piece) and len(piece.replace(WHITESPACE, "")) > 1:
        return False
    if split_digits and has_digit(piece) and piece.startswith(WHITESPACE):
        return False
    return True


def _new_model_order(new: sp_pb2.ModelProto) -> list[str]:
    """Mergeable pieces of the new model, most important first (BPE: merge order; unigram: score)."""
    pieces = [(i, p) for i, p in enumerate(new.pieces) if p.type in _MERGEABLE_TYPES]
    if new.trainer_spec.model_type == sp_pb2.TrainerSpec.UNIGRAM:
        pieces.sort(key=lambda item: (-item[1].score, item[0]))
    return [p.piece for _, p in pieces]


# One entry of the merged order: a piece to append (None) or a base piece re-ranked (its id).
Ranked = tuple[str, int | None]
# vocab_extend.json's extra key: the base scores of the base pieces the merge re-ranked (id → score).
BASE_SCORES_KEY = "base_scores"


def _build(base: sp_pb2.ModelProto, ranked: list[Ranked]) -> sp_pb2.ModelProto:
    """``base`` with ``ranked``'s new pieces appended and its base pieces re-scored, all in ``ranked``'s order
    above every base score."""
    merged = sp_pb2.ModelProto()
    merged.CopyFrom(base)
    top = max((p.score for p in base.pieces if p.type == NORMAL), default=0.0)
    top = float(int(top))  # integer scores stay exact in float32
    for rank, (piece, base_id) in enumerate(ranked):
        score = top + len(ranked) - rank
        if base_id is not None:
            merged.pieces[base_id].score = score
            continue
        new_piece = merged.pieces.add()
        new_piece.piece = piece
        new_piece.score = score
        new_piece.type = NORMAL
    merged.trainer_spec.vocab_size = len(merged.pieces)
    return merged


def restore_base_scores(proto: sp_pb2.ModelProto, extra: dict[str, object]) -> sp_pb2.ModelProto:
    """A copy of a merged ``proto`` whose re-ranked base pieces have their base scores back (``extra``:
    ``vocab_extend.json``'s ``extra``); cut to the base's size, it is the base again."""
    restored = copy.deepcopy(proto)
    scores = extra.get(BASE_SCORES_KEY) or {}
    assert isinstance(scores, dict)
    for base_id, score in scores.items():
        restored.pieces[int(base_id)].score = float(score)
    return restored


def _surface_checker(proto: sp_pb2.ModelProto) -> spm.SentencePieceProcessor:
    """A processor that segments a piece's own surface: no normalisation, no dummy prefix."""
    check = copy.deepcopy(proto)
    check.normalizer_spec.name = "identity"
    check.normalizer_spec.precompiled_charsmap = b""
    check.normalizer_spec.add_dummy_prefix = False
    check.normalizer_spec.remove_extra_whitespaces = False
    check.trainer_spec.byte_fallback = True
    return spm.SentencePieceProcessor(model_proto=check.SerializeToString())


def dead_pieces(proto: sp_pb2.ModelProto, first_id: int) -> list[str]:
    """Pieces with id >= ``first_id`` that the BPE encoder can never produce.

    A piece with a character that is not itself a piece is dead too: SentencePiece merges such a character
    with its neighbour (``。`` + an unknown private-use character), but a Hugging Face BPE turns it into
    byte-fallback tokens before any merge, so the two tokenizers would disagree on it.
    """
    processor = _surface_checker(proto)
    pieces = [p.piece for p in proto.pieces[first_id:]]
    chars = {p.piece for p in proto.pieces if len(p.piece) == 1 and p.type == NORMAL}
    surfaces = [p.replace(WHITESPACE, " ") for p in pieces]
    encoded = processor.encode(surfaces, num_threads=0)
    return [
        piece for i, (piece, ids) in enumerate(zip(pieces, encoded))
        if ids != [first_id + i] or not chars.issuperset(piece)
    ]


class _Skips:
    """Pieces of the new model not added: reason -> count, and the first few of each reason."""

    def __init__(self, max_examples: int) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.max_examples = max_examples

    def __call__(self, reason: str, piece: str) -> None:
        self.counts[reason] += 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < self.max_examples:
            bucket.append(piece)


def _candidates(base: sp_pb2.ModelProto, new: sp_pb2.ModelProto, scripts: ScriptSet,
                skip: _Skips) -> list[Ranked]:
    """The new model's pieces in its order: those that may be appended, and the base pieces of the new scripts
    it learned too (re-ranked); the others skipped with their reason."""
    split_digits = base.trainer_spec.split_digits
    in_base = {p.piece: i for i, p in enumerate(base.pieces)}
    ranked: list[Ranked] = []
    for piece in _new_model_order(new):
        if piece in in_base:
            skip("already_in_base", piece)
            base_id = in_base[piece]
            if scripts.contains(piece) and base.pieces[base_id].type == NORMAL:
                ranked.append((piece, base_id))
        elif not scripts.contains(piece):
            skip("no_new_script_char", piece)
        elif not admissible(piece, scripts, split_digits=split_digits):
            skip("digits", piece)
        else:
            ranked.append((piece, None))
    return ranked


def _live(base: sp_pb2.ModelProto, ranked: list[Ranked], skip: _Skips) -> tuple[list[Ranked], sp_pb2.ModelProto]:
    """Build, drop the dead appended pieces and build again until every appended piece is live."""
    while True:
        merged = _build(base, ranked)
        dead = set(dead_pieces(merged, len(base.pieces)))
        if not dead:
            return ranked, merged
        for piece, base_id in ranked:
            if base_id is None and piece in dead:
                skip("dead", piece)
        ranked = [(piece, base_id) for piece, base_id in ranked if base_id is not None or piece not in dead]


def merge_sentencepiece(
    base: sp_pb2.ModelProto, new: sp_pb2.ModelProto, scripts: ScriptSet, *, max_examples: int = 8
) -> Extension:
    """The safe, live pieces of ``new`` appended to ``base`` (``Extension.model`` is the merged proto).

    Pure: nothing is written. See the module docstring for the rules. A new model without a piece to add gives
    an extension that adds nothing (whether that is an error is the language's to say:
    :func:`vocab_extend.tokenizer.language.check_added`).
    """
    if base.trainer_spec.model_type != sp_pb2.TrainerSpec.BPE:
        raise VocabExtendError(
            "the base SentencePiece model is not BPE; vocab-extend merges into BPE bases (LLaMA, Mistral, "
            "Gemma style)"
        )
    skip = _Skips(max_examples)
    candidates = _candidates(base, new, scripts, skip)
    ranked, merged = _live(base, candidates, skip)
    added = [piece for piece, base_id in ranked if base_id is None]
    appended = sum(base_id is None for _, base_id in candidates)
    if appended and not added:
        raise VocabExtendError(
            f"none of the new model's {appended} {scripts.name} pieces can be produced by the base's BPE "
            "encoder (a unigram model's pieces need their halves in the vocabulary): train a BPE model instead"
        )
    reranked = {str(base_id): base.pieces[base_id].score for _, base_id in ranked if base_id is not None}
    return Extension(
        first_new_id=len(base.pieces),
        added=added,
        skipped=skip.counts,
        examples=skip.examples,
        model=merged,
        new_model=new,
        report_extra={
            "new_model_pieces": len(new.pieces),
            "new_model_type": sp_pb2.TrainerSpec.ModelType.Name(new.trainer_spec.model_type).lower(),
            "base_pieces_reranked": len(reranked),
        },
        metadata_extra={BASE_SCORES_KEY: reranked} if reranked else {},
    )
