"""A third tokenizer family, defined here alone, goes through merge → verify → init-model.

The toy family is character-level: its ``tokenizer.json`` is a BPE without merges that falls back to
``<0xNN>`` bytes, so every character in the vocabulary is one token and every other character is its UTF-8
bytes. Its new-language model is the list of the corpus's characters, most frequent first. It is registered
through :func:`vocab_extend.families.register`; no package file names it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import pytest
import torch
from tokenizers import Tokenizer, decoders
from tokenizers.models import BPE

from conftest import SAMPLE_JA, pico_llama_config
from vocab_extend.cli import main
from vocab_extend.errors import VocabExtendError
from vocab_extend.families import register, resolve_tokenizer, unregister
from vocab_extend.families.files import TokenizersReference
from vocab_extend.families.interface import (Base, Collector, Extension, JsonDict, NativeEncoder, TokenizerSource,
                                             TokenizerVocab, TrainOptions)
from vocab_extend.scripts import ScriptSet
from vocab_extend.settings import BaseSettings, read_base_settings, wrapper_kwargs
from vocab_extend.tokenizer.folder import TokenizerFolder

BYTES = [f"<0x{b:02X}>" for b in range(256)]
ASCII = [chr(c) for c in range(32, 127)]
NEW_MODEL_FILE = "new_language_chars.json"


def char_tokenizer(vocab: Sequence[str]) -> Tokenizer:
    tokenizer = Tokenizer(BPE(vocab={piece: i for i, piece in enumerate(vocab)}, merges=[], byte_fallback=True))
    tokenizer.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    return tokenizer


def is_char_tokenizer(data: JsonDict) -> bool:
    model = data.get("model") or {}
    return (model.get("type") == "BPE" and model.get("byte_fallback") is True and not model.get("merges")
            and data.get("pre_tokenizer") is None and data.get("normalizer") is None)


def hf(tokenizer: Tokenizer, settings: BaseSettings | None = None):
    from transformers import PreTrainedTokenizerFast

    settings = settings or BaseSettings()
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tokenizer.to_str()),
                                   clean_up_tokenization_spaces=False, **wrapper_kwargs(settings.config, settings.files))


class CharFamily:
    name = "toychars"
    kind = "a character-level tokenizer.json"
    new_model_file = NEW_MODEL_FILE
    folder_files = ("tokenizer.json",)
    hub_files = ("tokenizer.json",)

    def claims_file(self, path: Path) -> bool:
        try:
            return path.suffix == ".json" and is_char_tokenizer(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return False

    def file_in_folder(self, folder: Path) -> Path | None:
        path = folder / "tokenizer.json"
        return path if path.is_file() and self.claims_file(path) else None

    def claims_tokenizer(self, data: JsonDict) -> bool:
        return is_char_tokenizer(data)

    def load_base(self, source: TokenizerSource) -> Base[Tokenizer]:
        tokenizer = Tokenizer.from_file(str(source.path))
        return Base(source.name, self.name, tokenizer.get_vocab_size(), True, BaseSettings(), tokenizer)

    def check_options(self, options: TrainOptions, base_name: str, new_model: Path | None) -> None:
        pass

    def train(self, base: Base[Tokenizer], docs: Iterable[str], options: TrainOptions,
              collector: Collector) -> list[str]:
        counts = Counter(ch for doc in docs for ch in doc)
        return [ch for ch, _ in counts.most_common(options.new_model_size or 500)]

    def load_new_model(self, path: Path) -> list[str]:
        return json.loads(Path(path).read_text(encoding="utf-8"))

    def new_model_text(self, new_model: list[str]) -> list[str]:
        return new_model

    def describe(self, new_model: list[str]) -> str:
        return f"{len(new_model)} characters"

    def merge(self, base: Base[Tokenizer], new_model: list[str], scripts: ScriptSet) -> Extension[Tokenizer, list[str]]:
        vocab = base.model.get_vocab()
        added = [ch for ch in new_model if ch not in vocab and scripts.contains(ch)]
        skipped = Counter({"not_added": len(new_model) - len(added)})
        order = sorted(vocab, key=vocab.__getitem__)
        return Extension(base.first_new_id, added, skipped, {}, char_tokenizer(order + added), new_model)

    def write(self, base: Base[Tokenizer], extension: Extension[Tokenizer, list[str]], folder: Path) -> None:
        extension.model.save(str(folder / "tokenizer.json"))
        (folder / NEW_MODEL_FILE).write_text(json.dumps(extension.new_model, ensure_ascii=False), encoding="utf-8")

    def derived_settings(self, base: Base[Tokenizer]) -> JsonDict:
        return {"clean_up_tokenization_spaces": False}

    def references(self, base: Base[Tokenizer], folder: Path) -> tuple[TokenizersReference, TokenizersReference]:
        return TokenizersReference(base.model), TokenizersReference(Tokenizer.from_file(str(folder / "tokenizer.json")))

    def piece_bytes(self, piece: str) -> bytes | None:
        return bytes([int(piece[3:5], 16)]) if self.is_byte_piece(piece) else piece.encode("utf-8")

    def is_byte_piece(self, piece: str) -> bool:
        return piece in BYTES

    def surface(self, base: Base[Tokenizer], piece: str) -> str | None:
        return None if self.is_byte_piece(piece) else piece

    def base_hf(self, base: Base[Tokenizer]):
        return hf(base.model, base.settings)

    def load_hf(self, source: TokenizerSource):
        return hf(Tokenizer.from_file(str(source.path)))

    def load_folder(self, folder: Path):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder))

    def base_of_extended(self, folder: Path, first_new_id: int):
        vocab = Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab()
        return hf(char_tokenizer(sorted((p for p, i in vocab.items() if i < first_new_id), key=vocab.__getitem__)),
                  read_base_settings(folder))

    def native_encoder(self, source: TokenizerSource) -> NativeEncoder | None:
        return None

    def gguf_vocab(self, folder: Path, *, pre: str | None, base: str) -> TokenizerVocab:
        raise VocabExtendError("llama.cpp has no character-level tokenizer")


@pytest.fixture
def toy_family():
    family = register(CharFamily())
    try:
        yield family
    finally:
        unregister(family.name)


def test_a_registered_family_goes_through_merge_verify_and_init_model(toy_family, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    base_file = tmp_path / "base" / "tokenizer.json"
    base_file.parent.mkdir()
    char_tokenizer(BYTES + ASCII).save(str(base_file))
    source = resolve_tokenizer(str(base_file.parent))
    assert (source.family, source.path) == (toy_family.name, base_file)

    merged = tmp_path / "merged"
    assert main(["merge", "--base", str(base_file), "--corpus", str(SAMPLE_JA), "--vocab-size", "300",
                 "--output-dir", str(merged)]) == 0
    report = json.loads((merged / "report.json").read_text(encoding="utf-8"))
    assert all(check["passed"] for check in report["checks"].values()), report["checks"]
    folder = TokenizerFolder.open(merged)
    assert folder.family is toy_family and folder.merged.first_new_id == len(BYTES + ASCII)
    assert report["added_pieces"] > 100
    text = "東京 and Tokyo"
    assert folder.load_base()(text)["input_ids"] == hf(Tokenizer.from_file(str(base_file)))(text)["input_ids"]

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(pico_llama_config(len(BYTES + ASCII))).save_pretrained(tmp_path / "pico")
    out = tmp_path / "model"
    assert main(["init-model", "--model", str(tmp_path / "pico"), "--tokenizer", str(merged),
                 "--output-dir", str(out)]) == 0
    rows = json.loads((out / "config.json").read_text())["vocab_size"]
    assert rows == folder.merged.tokenizer_size
    for path in folder.files():
        assert (out / path.name).read_bytes() == path.read_bytes()
    assert TokenizerFolder.open(out).family is toy_family


def test_a_family_name_is_registered_once(toy_family) -> None:
    with pytest.raises(VocabExtendError, match="registered already"):
        register(CharFamily())
