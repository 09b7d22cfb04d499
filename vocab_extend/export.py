"""Writing the Hugging Face tokenizer files for a SentencePiece BPE model.

transformers' automatic conversion of a bare ``tokenizer.model`` adds no BOS and treats leading spaces
differently from SentencePiece, so we write ``tokenizer.json`` ourselves: the BPE vocabulary and a merge
list built from the pieces' scores, SentencePiece's normaliser (prepend ``▁``, spaces to ``▁``), byte
fallback, and a template that adds BOS. :mod:`vocab_extend.verify` checks the result against SentencePiece.
"""

from __future__ import annotations

import json
from pathlib import Path

from sentencepiece import sentencepiece_model_pb2 as sp_pb2
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, processors
from tokenizers.models import BPE

WHITESPACE = "\u2581"
CONTROL = sp_pb2.ModelProto.SentencePiece.CONTROL
UNKNOWN = sp_pb2.ModelProto.SentencePiece.UNKNOWN
USER_DEFINED = sp_pb2.ModelProto.SentencePiece.USER_DEFINED
BYTE = sp_pb2.ModelProto.SentencePiece.BYTE


def bpe_merges(proto: sp_pb2.ModelProto) -> list[tuple[str, str]]:
    """Every pair (left, right) whose concatenation is a mergeable piece, highest-scoring result first.

    SentencePiece merges the adjacent pair whose concatenation has the highest score (leftmost on ties);
    a Hugging Face BPE applies the lowest-ranked merge first, so ranking merges by the result's score
    reproduces SentencePiece's choices.
    """
    ids = {p.piece: i for i, p in enumerate(proto.pieces) if p.type in (sp_pb2.ModelProto.SentencePiece.NORMAL,)}
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


def hf_tokenizer(proto: sp_pb2.ModelProto):  # -> transformers.PreTrainedTokenizerFast
    """An in-memory Hugging Face tokenizer that segments like SentencePiece with ``proto`` (BOS added)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=build_hf_tokenizer(proto), **special_tokens(proto))


def export_hf(
    proto: sp_pb2.ModelProto,
    output_dir: Path,
    *,
    add_bos: bool = True,
    add_eos: bool = False,
    model_max_length: int | None = None,
) -> None:
    """Write ``tokenizer.model``, ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "tokenizer.model").write_bytes(proto.SerializeToString())
    tokenizer = build_hf_tokenizer(proto, add_bos=add_bos, add_eos=add_eos)
    tokenizer.save(str(output_dir / "tokenizer.json"))
    special_map = special_tokens(proto)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": add_bos,
        "add_eos_token": add_eos,
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length or 1_000_000_000_000_000_019_884_624_838_656,
        "padding_side": "left",
        **special_map,
    }
    _write_json(output_dir / "tokenizer_config.json", config)
    _write_json(output_dir / "special_tokens_map.json", special_map)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
