"""The SentencePiece family on the bundled Mistral base: what only this family has (its files, SentencePiece
known answers), and the shared corpora in Chinese and Korean. The guarantees themselves are tested for both
families in test_guarantees.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sentencepiece as spm

from conftest import Merged, _package_folder, english_lines, shared_corpus
from vocab_extend.corpus import read_documents
from vocab_extend.scripts import CHINESE, JAPANESE, KOREAN
from vocab_extend.tokenizer.job import ExtendConfig, extend_tokenizer

OUTPUT_FILES = {
    "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "new_language.model", "vocab_extend.json", "report.json", "report.md", "token_reduction.png", "run.json",
}
sentencepiece_only = pytest.mark.parametrize("merged", ["sentencepiece"], indirect=True)


@sentencepiece_only
def test_writes_every_output_file(merged: Merged) -> None:
    assert {p.name for p in merged.folder.iterdir()} == OUTPUT_FILES
    config = json.loads((merged.folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["add_bos_token"] is True and config["tokenizer_class"] == "PreTrainedTokenizerFast"


@sentencepiece_only
def test_added_pieces_are_new_japanese_pieces(merged: Merged) -> None:
    oracle = merged.oracle
    added = [piece for _, piece in oracle.added()]
    assert all(JAPANESE.contains(p) for p in added)
    assert len(set(added)) == len(added) and not set(added) & set(oracle.base_vocab())


@sentencepiece_only
def test_digits_inside_japanese_stay_split(merged: Merged) -> None:
    pieces = merged.oracle.ext_sp.encode("2007年に１２３人が来た。", out_type=str)
    assert pieces[:5] == ["▁", "2", "0", "0", "7"]
    digits = [p for p in pieces if any(ch.isdigit() for ch in p) and not p.startswith("<0x")]
    assert all(len(p.strip("▁")) == 1 for p in digits)


def _base_sp() -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(_package_folder("mistral_common") / "data" / "tokenizer.model.v1"))


def _assert_base_language_unchanged(out: Path, lines: list[str]) -> None:
    ext = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    base = _base_sp()
    assert ext.encode(lines) == base.encode(lines)


def test_shared_corpora_keep_every_guarantee(tmp_path: Path) -> None:
    ja = shared_corpus("ja/tatoeba_sentences.txt")
    en = shared_corpus("en")
    out = tmp_path / "shared"
    extend_tokenizer(ExtendConfig(
        corpus=[str(ja)], new_model_size=4000, output_dir=out, verify_sample=3000,
        eval=[f"ja={shared_corpus('ja/jsquad_test_wikipedia.txt')}", f"en={en}"],
    ))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["checks"]["base_language_unchanged"]["checked"] > 30_000
    assert report["corpora"]["en"]["reduction"] == 0
    assert report["corpora"]["ja"]["reduction"] > 0.2
    _assert_base_language_unchanged(out, read_documents(str(shared_corpus("en/ud_ewt_train_web.txt"))))


@pytest.mark.parametrize("lang, train, held_out, vocab_size", [
    # Lu Xun's essays end lines in a private-use character that SentencePiece would merge with 。
    ("zh", "zh/luxun_essays_memoirs.txt", "zh/tatoeba_sentences.txt", 8000),
    ("ko", "ko/ud_kaist_sentences.txt", "ko/tatoeba_sentences.txt", 4000),
])
def test_chinese_and_korean_keep_every_guarantee(tmp_path: Path, lang: str, train: str, held_out: str,
                                                 vocab_size: int) -> None:
    from transformers import AutoTokenizer

    out = tmp_path / lang
    extend_tokenizer(ExtendConfig(
        corpus=[str(shared_corpus(train))], new_model_size=vocab_size, output_dir=out, lang=lang,
        eval=[f"{lang}={shared_corpus(held_out)}", f"en={shared_corpus('en/ud_ewt_train_web.txt')}"],
    ))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["corpora"]["en"]["reduction"] == 0
    assert report["corpora"][lang]["reduction"] > 0.2
    _assert_base_language_unchanged(out, english_lines())
    scripts = {"zh": CHINESE, "ko": KOREAN}[lang]
    ext = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    assert all(scripts.contains(ext.id_to_piece(i)) for i in range(32000, ext.get_piece_size()))
    lines = read_documents(str(shared_corpus(held_out)))[:500]
    hf = AutoTokenizer.from_pretrained(str(out))
    assert hf(lines)["input_ids"] == [[1] + ids for ids in ext.encode(lines)]
