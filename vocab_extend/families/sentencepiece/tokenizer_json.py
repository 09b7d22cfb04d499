"""The ``tokenizer.json`` of a SentencePiece BPE model.

transformers' automatic conversion of a bare ``tokenizer.model`` adds no BOS and treats leading spaces
differently from SentencePiece, so we build ``tokenizer.json`` ourselves: the BPE vocabulary and a merge
list built from the pieces' scores, SentencePiece's normaliser (prepend ``▁``, spaces to ``▁``), byte
fallback, and a template that adds BOS (and EOS when the base's settings say so). The checks of
:mod:`vocab_extend.tokenizer.checks` compare the result with SentencePiece itself.

>>> from sentencepiece import sentencepiece_model_pb2 as pb
>>> proto = pb.ModelProto()
>>> for text, score in [("a", 0.0), ("b", -1.0), ("ab", 5.0)]:
...     piece = proto.pieces.add(); piece.piece = text; piece.score = score
>>> bpe_merges(proto)
[('a', 'b')]
"""

from __future__ import annotations

from typing import Any, Mapping

from sentencepiece import sentencepiece_model_pb2 as sp_pb2
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, processors
from tokenizers.models import BPE

from ...settings import wrapper_kwargs

WHITESPACE = "\u2581"
NORMAL = sp_pb2.ModelProto.SentencePiece.NORMAL
CONTROL = sp_pb2.ModelProto.SentencePiece.CONTROL
UNKNOWN = sp_pb2.ModelProto.SentencePiece.UNKNOWN


def bpe_merges(proto: sp_pb2.ModelProto) -> list[tuple[str, str]]:
    """Every pair (left, right) whose concatenation is a mergeable piece, highest-scoring result first.

    SentencePiece merges the adjacent pair whose concatenation has the highest score (leftmost on ties);
    a Hugging Face BPE applies the lowest-ranked merge first, so ranking merges by the result's score
    reproduces SentencePiece's choices.
    """
    ids = {p.piece: i for i, p in enumerate(proto.pieces) if p.type == NORMAL}
    ranked: list[tuple[float, int, int, int, str, str]] = []
    for piece, piece_id in ids.items():
        score = proto.pieces[piece_id].score
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in ids and right in ids:
                ranked.append((-score, piece_id, ids[left], ids[right], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def build_hf_tokenizer(proto: sp_pb2.ModelProto, *, add_bos: bool = True, add_eos: bool = False) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` that segments like SentencePiece with ``proto``."""
    vocab = {p.piece: i for i, p in enumerate(proto.pieces)}
    spec, norm = proto.trainer_spec, proto.normalizer_spec
    unk = proto.pieces[spec.unk_id].piece if spec.unk_id >= 0 else None
    model = BPE(
        vocab=vocab,
        merges=bpe_merges(proto),
        unk_token=unk,
        fuse_unk=True,
        byte_fallback=spec.byte_fallback,
    )
    tokenizer = Tokenizer(model)
    steps: list[normalizers.Normalizer] = []
    if norm.remove_extra_whitespaces:
        steps += [normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), " ")]
    if norm.add_dummy_prefix:
        steps.append(normalizers.Prepend(WHITESPACE))
    steps.append(normalizers.Replace(" ", WHITESPACE))
    if norm.name not in ("identity", "") or norm.precompiled_charsmap:
        steps.insert(0, normalizers.Precompiled(norm.precompiled_charsmap))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = None
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace(WHITESPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
        + ([decoders.Strip(" ", 1, 0)] if norm.add_dummy_prefix else [])
    )
    specials = []
    for i, p in enumerate(proto.pieces):
        if p.type in (CONTROL, UNKNOWN):
            specials.append(AddedToken(p.piece, special=True, normalized=False))
    tokenizer.add_special_tokens(specials)
    bos = proto.pieces[spec.bos_id].piece if spec.bos_id >= 0 else None
    eos = proto.pieces[spec.eos_id].piece if spec.eos_id >= 0 else None
    single, pair, special = "$A", "$B", []
    if add_bos and bos:
        single, pair = f"{bos} {single}", f"{single} {bos} $B"
        special.append((bos, spec.bos_id))
    if add_eos and eos:
        single, pair = f"{single} {eos}", f"{pair} {eos}"
        special.append((eos, spec.eos_id))
    if add_bos and bos:
        pair = f"{bos} {pair}"
    tokenizer.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=special)
    return tokenizer


def special_tokens(proto: sp_pb2.ModelProto) -> dict[str, str]:
    """``{"bos_token": "<s>", ...}`` for the BOS, EOS, UNK and PAD pieces the model has."""
    spec = proto.trainer_spec
    ids = {"bos_token": spec.bos_id, "eos_token": spec.eos_id, "unk_token": spec.unk_id, "pad_token": spec.pad_id}
    return {key: proto.pieces[i].piece for key, i in ids.items() if i >= 0}


def bos_eos(settings: Mapping[str, Any] | None) -> tuple[bool, bool]:
    """Whether the tokenizer adds BOS and EOS: the base's ``add_bos_token``/``add_eos_token`` settings,
    LLaMA's defaults (BOS, no EOS) when it names none."""
    settings = settings or {}
    return bool(settings.get("add_bos_token", True)), bool(settings.get("add_eos_token", False))


def derived_settings(proto: sp_pb2.ModelProto) -> dict[str, Any]:
    """The ``tokenizer_config.json`` of a bare ``.model`` base: LLaMA's conventions and its special pieces."""
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1_000_000_000_000_000_019_884_624_838_656,
        "padding_side": "left",
        **special_tokens(proto),
    }


def hf_tokenizer(proto: sp_pb2.ModelProto, settings: Mapping[str, Any] | None = None,
                 files: Mapping[str, bytes] | None = None):
    """An in-memory Hugging Face tokenizer that segments like SentencePiece with ``proto``.

    ``settings`` (a ``tokenizer_config.json``) decide BOS/EOS, the special tokens and the chat template;
    without them it adds BOS, as LLaMA's tokenizer does.
    """
    from transformers import PreTrainedTokenizerFast

    add_bos, add_eos = bos_eos(settings)
    kwargs = {**special_tokens(proto), **wrapper_kwargs(settings, files)}
    return PreTrainedTokenizerFast(tokenizer_object=build_hf_tokenizer(proto, add_bos=add_bos, add_eos=add_eos),
                                   clean_up_tokenization_spaces=False, **kwargs)
