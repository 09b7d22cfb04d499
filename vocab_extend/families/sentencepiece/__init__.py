"""The SentencePiece BPE family (LLaMA-2, Mistral, Gemma style bases): ``tokenizer.model`` + our own
``tokenizer.json``.

It reads a file that parses as a SentencePiece model with pieces (any name: ``tokenizer.model.v1`` too), and
a folder's ``tokenizer.model`` when it is one (Llama-3 folders hold a tiktoken file of that name). Modules:
:mod:`.train` (the new-language model, with the base's own conventions), :mod:`.merge` (pure: which pieces
are appended, and their scores), :mod:`.tokenizer_json` (the Hugging Face tokenizer that segments like
SentencePiece), :mod:`.export` (the GGUF vocabulary). The reference the checks trust is SentencePiece itself
reading the written ``tokenizer.model``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Hashable, Iterable, Sequence

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from ...console import log
from ...errors import VocabExtendError
from ...jsonfile import read_json_object
from ...scripts import ScriptSet
from ...settings import BaseSettings, read_base_settings
from ..files import auto_tokenizer
from ..interface import (DEFAULT_VOCAB_SIZE, RANK_KEY, Base, Collector, Extension, HFTokenizer, JsonDict,
                         NativeEncoder, TokenizerSource, TokenizerVocab, TrainOptions, new_model_name)
from .export import gguf_vocab
from .merge import merge_sentencepiece, restore_base_scores
from .tokenizer_json import WHITESPACE, bos_eos, build_hf_tokenizer, derived_settings, hf_tokenizer
from .train import TrainConfig, train_supported

NEW_MODEL_FILE = "new_language.model"
MODEL_FILE = "tokenizer.model"
# A serialised model starts with its pieces (field 1, length-delimited): anything else is not read further.
FIRST_BYTE = 0x0A


def is_sentencepiece_file(path: Path) -> bool:
    """Whether ``path`` parses as a SentencePiece model with pieces (Llama-3's tiktoken file does not)."""
    try:
        with open(path, "rb") as handle:
            if handle.read(1) != bytes([FIRST_BYTE]):
                return False
        proto = sp_pb2.ModelProto()
        proto.ParseFromString(Path(path).read_bytes())
    except Exception:  # protobuf raises DecodeError and others on foreign files; OSError on unreadable ones
        return False
    return bool(proto.pieces)


def parse_model(path: Path, what: str) -> sp_pb2.ModelProto:
    """A SentencePiece model file as a proto; anything else is one sentence."""
    proto = sp_pb2.ModelProto()
    try:
        proto.ParseFromString(Path(path).read_bytes())
    except Exception:  # protobuf's DecodeError and friends on a foreign file
        raise VocabExtendError(f"{what} {path} is not a SentencePiece model file") from None
    if not proto.pieces:
        raise VocabExtendError(f"{what} {path} is not a SentencePiece model file (no pieces)")
    return proto


def is_byte_piece(piece: str) -> bool:
    """``<0xE6>``-style byte-fallback pieces."""
    return len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">")


class SentencePieceReference:
    """SentencePiece itself: the encoder the Hugging Face tokenizer must agree with."""

    def __init__(self, proto: sp_pb2.ModelProto, add_bos: bool, add_eos: bool) -> None:
        self.proto = proto
        self.processor = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
        self.add_bos, self.add_eos = add_bos, add_eos

    def encode(self, lines: Sequence[str], *, specials: bool) -> list[list[int]]:
        with_specials, plain = self.encode_both(lines)
        return with_specials if specials else plain

    def encode_both(self, lines: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        plain = self.processor.encode(list(lines), num_threads=0)
        bos = [self.processor.bos_id()] if self.add_bos and self.processor.bos_id() >= 0 else []
        eos = [self.processor.eos_id()] if self.add_eos and self.processor.eos_id() >= 0 else []
        return [bos + line + eos for line in plain], plain

    def decode(self, ids: Sequence[int]) -> str:
        return self.processor.decode(list(ids))

    def pieces(self, text: str) -> list[str]:
        return self.processor.encode(text, out_type=str)

    def entries(self) -> dict[Hashable, object]:
        entries: dict[Hashable, object] = {i: (p.piece, p.type) for i, p in enumerate(self.proto.pieces)}
        entries.update({(RANK_KEY, p.piece): p.score for p in self.proto.pieces})
        return entries

    def split_ceiling(self, lines: Sequence[str]) -> float | None:
        """None: SentencePiece has no pre-tokenizer whose pieces a report could count."""
        return None


Proto = sp_pb2.ModelProto


class SentencePieceFamily:
    name = "sentencepiece"
    kind = "a SentencePiece model (a .model file, or a folder holding tokenizer.model)"
    new_model_file = NEW_MODEL_FILE
    folder_files = (MODEL_FILE, "tokenizer.json")
    hub_files = (MODEL_FILE,)

    def claims_file(self, path: Path) -> bool:
        return is_sentencepiece_file(path)

    def file_in_folder(self, folder: Path) -> Path | None:
        path = Path(folder) / MODEL_FILE
        return path if path.is_file() and is_sentencepiece_file(path) else None

    def claims_tokenizer(self, data: JsonDict) -> bool:
        """A ``tokenizer.json`` converted from SentencePiece: its model falls back to ``<0xNN>`` byte pieces and
        spaces become ``▁`` before it runs."""
        spaces = json.dumps([data.get("normalizer"), data.get("pre_tokenizer")], ensure_ascii=False)
        return bool((data.get("model") or {}).get("byte_fallback")) and WHITESPACE in spaces

    def load_base(self, source: TokenizerSource) -> Base[Proto]:
        proto = parse_model(source.path, "base")
        if proto.trainer_spec.model_type != sp_pb2.TrainerSpec.BPE:
            raise VocabExtendError(
                "the base SentencePiece model is not BPE; vocab-extend merges into BPE bases (LLaMA, Mistral, "
                "Gemma style)"
            )
        path = Path(source.path)
        # settings files only sit beside a model named as in a Hugging Face folder
        settings = read_base_settings(path.parent) if path.name == MODEL_FILE else BaseSettings()
        beyond = sorted(int(i) for i in (settings.value("added_tokens_decoder") or {}) if int(i) >= len(proto.pieces))
        if beyond:
            raise VocabExtendError(
                f"{source.name} adds tokens beyond its SentencePiece model (id {beyond[0]} and on, in "
                "tokenizer_config.json): vocab-extend cannot append pieces after them yet"
            )
        return Base(source.name, self.name, len(proto.pieces), proto.trainer_spec.split_digits, settings, proto)

    def check_options(self, options: TrainOptions, base_name: str, new_model: Path | None) -> None:
        if options.model_type not in ("bpe", "unigram"):
            raise VocabExtendError(f"model type {options.model_type!r} is not supported: use bpe or unigram")
        if options.widen_split:
            raise VocabExtendError(
                f"--widen-split widens a byte-level BPE base's pre-tokenizer, but {base_name} is a SentencePiece "
                "model, whose words already keep their combining marks: drop --widen-split")

    def train(self, base: Base[Proto], docs: Iterable[str], options: TrainOptions, collector: Collector) -> Proto:
        config = TrainConfig(
            vocab_size=options.new_model_size or DEFAULT_VOCAB_SIZE, model_type=options.model_type,
            character_coverage=options.character_coverage, max_sentence_length=options.max_sentence_length,
            input_sentence_size=options.input_sentence_size, seed=options.seed,
        )
        return train_supported(docs, base.model, config, explicit_size=options.new_model_size is not None,
                               everything=lambda: collector.everything, log=log, progress=options.show_progress)

    def load_new_model(self, path: Path) -> Proto:
        if not Path(path).is_file():
            raise VocabExtendError(f"--new-model {path} does not exist")
        return parse_model(path, "--new-model")

    def new_model_text(self, new_model: Proto) -> list[str]:
        return [p.piece for p in new_model.pieces]

    def describe(self, new_model: Proto) -> str:
        return f"{len(new_model.pieces):,} pieces"

    def merge(self, base: Base[Proto], new_model: Proto, scripts: ScriptSet) -> Extension[Proto, Proto]:
        return merge_sentencepiece(base.model, new_model, scripts)

    def extended_base(self, base: Base[Proto], extension: Extension[Proto, Proto]) -> Base[Proto]:
        """The merged proto as the base of the next merge (its pieces are the base's, then the added ones)."""
        return Base(base.name, self.name, len(extension.model.pieces), base.splits_digits, base.settings,
                    extension.model)

    def derived_settings(self, base: Base[Proto]) -> JsonDict:
        return derived_settings(base.model)

    def _bos_eos(self, base: Base[Proto]) -> tuple[bool, bool]:
        return bos_eos(base.settings.config if base.settings.config is not None else derived_settings(base.model))

    def write(self, base: Base[Proto], extension: Extension[Proto, Proto], folder: Path) -> None:
        folder = Path(folder)
        (folder / MODEL_FILE).write_bytes(extension.model.SerializeToString())
        add_bos, add_eos = self._bos_eos(base)
        build_hf_tokenizer(extension.model, add_bos=add_bos, add_eos=add_eos).save(str(folder / "tokenizer.json"))
        for code, new_model in extension.new_models.items():
            (folder / new_model_name(NEW_MODEL_FILE, code)).write_bytes(new_model.SerializeToString())
        if not extension.new_models:
            (folder / NEW_MODEL_FILE).write_bytes(extension.new_model.SerializeToString())

    def references(self, base: Base[Proto], folder: Path) -> tuple[SentencePieceReference, SentencePieceReference]:
        add_bos, add_eos = self._bos_eos(base)
        written = parse_model(Path(folder) / MODEL_FILE, "the written model")
        return (SentencePieceReference(base.model, add_bos, add_eos),
                SentencePieceReference(written, add_bos, add_eos))

    def piece_bytes(self, piece: str) -> bytes | None:
        if is_byte_piece(piece):
            return bytes([int(piece[3:5], 16)])
        return piece.replace("\u2581", " ").encode("utf-8")

    def is_byte_piece(self, piece: str) -> bool:
        return is_byte_piece(piece)

    def surface(self, base: Base[Proto], piece: str) -> str | None:
        """With a dummy prefix, ``▁東京`` is what the normaliser makes of ``東京`` alone; other pieces have
        no text that encodes to them alone."""
        dummy = base.model.normalizer_spec.add_dummy_prefix
        if dummy and piece.startswith("\u2581") and len(piece) > 1 and "\u2581" not in piece[1:]:
            return piece[1:]
        return None

    def base_hf(self, base: Base[Proto]) -> HFTokenizer:
        """The base as an in-memory Hugging Face tokenizer with its settings."""
        return hf_tokenizer(base.model, base.settings.config)

    def load_hf(self, source: TokenizerSource) -> HFTokenizer:
        """Built in memory with the merge's own ``tokenizer.json`` builder, so it adds BOS and segments exactly
        as SentencePiece does (transformers' conversion of a bare ``tokenizer.model`` does neither)."""
        return self.base_hf(self.load_base(source))

    def load_folder(self, folder: Path) -> HFTokenizer:
        return auto_tokenizer(folder)

    def native_encoder(self, source: TokenizerSource) -> NativeEncoder:
        try:
            sp = spm.SentencePieceProcessor(model_file=str(source.path))
        except (RuntimeError, OSError):
            raise VocabExtendError(
                f"tokenizer {source.path} is not a SentencePiece model: give a .model file, a tokenizer folder "
                "or a tokenizer.json") from None
        fallback = frozenset(i for i in range(sp.get_piece_size()) if sp.is_byte(i))
        return NativeEncoder(lambda texts: sp.encode(texts, num_threads=0), fallback, sp.get_piece_size(),
                             "sentencepiece")

    def gguf_vocab(self, folder: Path, *, pre: str | None, base: str) -> TokenizerVocab:
        return gguf_vocab(folder, MODEL_FILE, pre)

    def base_of_extended(self, folder: Path, first_new_id: int) -> HFTokenizer:
        """The base tokenizer inside an extended folder: the merged model cut to the base's pieces (stored
        unchanged, the scores of re-ranked ones in ``vocab_extend.json``), with the folder's settings; no
        network or original file needed."""
        extra = read_json_object(Path(folder) / "vocab_extend.json", missing_ok=True).get("extra") or {}
        proto = restore_base_scores(parse_model(Path(folder) / MODEL_FILE, "the extended tokenizer"), extra)
        del proto.pieces[first_new_id:]
        proto.trainer_spec.vocab_size = first_new_id
        return hf_tokenizer(proto, read_base_settings(Path(folder)).config)


FAMILY = SentencePieceFamily()
