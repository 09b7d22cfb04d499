"""The main job on the bundled Mistral base and the project's Japanese sample: every guarantee, on real text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from conftest import SAMPLE_EN, SAMPLE_JA, shared_corpus
from vocab_extend.base import load_sentencepiece_proto, resolve_base
from vocab_extend.corpus import read_documents
from vocab_extend.extend import ExtendConfig, extend_tokenizer
from vocab_extend.merge import dead_pieces, has_digit
from vocab_extend.scripts import JAPANESE

OUTPUT_FILES = {
    "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "new_language.model", "vocab_extend.json", "report.json", "report.md", "token_reduction.png",
}


@pytest.fixture(scope="module")
def base_proto() -> sp_pb2.ModelProto:
    return load_sentencepiece_proto(resolve_base("mistral-7b-v0.1").path)


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ext") / "mistral-ja"
    extend_tokenizer(ExtendConfig(output_dir=out, eval=[f"ja={SAMPLE_JA}", f"en={SAMPLE_EN}"]))
    return out


@pytest.fixture(scope="module")
def merged(extended: Path) -> sp_pb2.ModelProto:
    return load_sentencepiece_proto(extended / "tokenizer.model")


@pytest.fixture(scope="module")
def hf_tokenizer(extended: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(extended))


def english_lines() -> list[str]:
    lines = read_documents(str(SAMPLE_EN))
    lines += [
        "In 2007, 3.14159 and 1,234,567 were typed as digits ... and ...... or —— or ”; too.",
        "  leading spaces, trailing spaces  ",
        "tabs\tand\nnewlines",
        "Ünïcödé façade — naïve café ½ № ∑",
    ]
    return lines


def test_writes_every_output_file(extended: Path) -> None:
    assert OUTPUT_FILES <= {p.name for p in extended.iterdir()}
    assert not [p for p in extended.parent.iterdir() if p.name.startswith(".")], "temp folder left behind"


def test_base_pieces_keep_ids_scores_and_types(base_proto, merged) -> None:
    assert len(merged.pieces) > len(base_proto.pieces)
    for old, new in zip(base_proto.pieces, merged.pieces):
        assert (old.piece, old.score, old.type) == (new.piece, new.score, new.type)


def test_added_pieces_have_japanese_and_no_joined_digits(base_proto, merged) -> None:
    added = [p.piece for p in merged.pieces[len(base_proto.pieces) :]]
    assert all(JAPANESE.contains(p) for p in added)
    assert not [p for p in added if has_digit(p) and len(p) > 1]
    assert len(set(added)) == len(added)
    assert not set(added) & {p.piece for p in base_proto.pieces}


def test_english_tokenizes_exactly_as_before(base_proto, merged) -> None:
    base_sp = spm.SentencePieceProcessor(model_proto=base_proto.SerializeToString())
    ext_sp = spm.SentencePieceProcessor(model_proto=merged.SerializeToString())
    lines = english_lines()
    assert ext_sp.encode(lines) == base_sp.encode(lines)


def test_digits_inside_japanese_stay_split(merged) -> None:
    sp = spm.SentencePieceProcessor(model_proto=merged.SerializeToString())
    pieces = sp.encode("2007年に１２３人が来た。", out_type=str)
    digits = [p for p in pieces if has_digit(p) and not p.startswith("<0x")]
    assert digits and all(len(p.strip("▁")) == 1 for p in digits)


def test_no_dead_pieces_and_training_text_uses_new_pieces(base_proto, merged) -> None:
    assert dead_pieces(merged, len(base_proto.pieces)) == []
    sp = spm.SentencePieceProcessor(model_proto=merged.SerializeToString())
    used = {i for ids in sp.encode(read_documents(str(SAMPLE_JA))) for i in ids}
    added = range(len(base_proto.pieces), len(merged.pieces))
    assert sum(i in used for i in added) > 0.8 * len(added)


def test_japanese_needs_far_fewer_tokens(extended: Path) -> None:
    report = json.loads((extended / "report.json").read_text(encoding="utf-8"))
    ja, en = report["corpora"]["ja"], report["corpora"]["en"]
    assert ja["chars_per_token_extended"] > 1.5 * ja["chars_per_token_base"]
    assert en["extended_tokens"] == en["base_tokens"]
    assert all(check["passed"] for check in report["checks"].values())
    for key in ("base_vocab_size", "vocab_size", "added_pieces", "checks"):
        assert key in report
    for key in ("chars", "bytes", "base_tokens", "extended_tokens", "chars_per_token_base",
                "chars_per_token_extended", "reduction"):
        assert key in ja


@pytest.mark.parametrize("text", [
    "東京都の人口は約1400万人です。", " 先頭に空白", "  二つの空白  と末尾 ", "English then 日本語 mixed 123",
    "改行\nを含む\t行", "", "🎉絵文字と𠮷野家", "ｶﾀｶﾅ半角とＡＢＣ全角",
    "x" + " " * 17 + "y", "東京" + " " * 20 + "大阪", "    def f():\n        return 1",
])
def test_hf_tokenizer_matches_sentencepiece(hf_tokenizer, merged, text: str) -> None:
    sp = spm.SentencePieceProcessor(model_proto=merged.SerializeToString())
    ids = hf_tokenizer(text)["input_ids"]
    assert ids == [sp.bos_id()] + sp.encode(text)
    assert hf_tokenizer.decode(ids, skip_special_tokens=True) == text
    assert sp.decode(sp.encode(text)) == text


def test_hf_tokenizer_matches_on_real_lines(hf_tokenizer, merged) -> None:
    sp = spm.SentencePieceProcessor(model_proto=merged.SerializeToString())
    lines = read_documents(str(SAMPLE_JA)) + english_lines()
    assert hf_tokenizer(lines)["input_ids"] == [[sp.bos_id()] + ids for ids in sp.encode(lines)]
    assert hf_tokenizer.bos_token == "<s>" and hf_tokenizer.eos_token == "</s>"


def test_same_inputs_give_byte_identical_outputs(extended: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    extend_tokenizer(ExtendConfig(output_dir=again, eval=[f"ja={SAMPLE_JA}", f"en={SAMPLE_EN}"]))
    for name in OUTPUT_FILES:
        assert (again / name).read_bytes() == (extended / name).read_bytes(), name


def test_metadata_rebuilds_the_base_tokenizer(extended: Path, base_proto) -> None:
    from vocab_extend.metadata import load_base_tokenizer, read_metadata

    meta = read_metadata(extended)
    assert (meta.base, meta.base_kind, meta.base_vocab_size) == ("mistral-7b-v0.1", "sentencepiece", 32000)
    base_hf = load_base_tokenizer(extended)
    sp = spm.SentencePieceProcessor(model_proto=base_proto.SerializeToString())
    text = "東京の天気は晴れ。 Weather in Tokyo"
    assert base_hf(text)["input_ids"] == [1] + sp.encode(text)


def test_shared_corpora_keep_every_guarantee(tmp_path: Path) -> None:
    ja = shared_corpus("ja/tatoeba_sentences.txt")
    en = shared_corpus("en")
    out = tmp_path / "shared"
    extend_tokenizer(ExtendConfig(
        corpus=[str(ja)], vocab_size=4000, output_dir=out, verify_sample=3000,
        eval=[f"ja={shared_corpus('ja/jsquad_test_wikipedia.txt')}", f"en={en}"],
    ))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert all(c["passed"] for c in report["checks"].values())
    assert report["checks"]["base_language_unchanged"]["checked"] > 30_000
    assert report["corpora"]["en"]["reduction"] == 0
    assert report["corpora"]["ja"]["reduction"] > 0.2


@pytest.mark.parametrize("lang, train, held_out, vocab_size", [
    # Lu Xun's essays end lines in a private-use character that SentencePiece would merge with 。
    ("zh", "zh/luxun_essays_memoirs.txt", "zh/tatoeba_sentences.txt", 8000),
    ("ko", "ko/ud_kaist_sentences.txt", "ko/tatoeba_sentences.txt", 4000),
])
def test_chinese_and_korean_keep_every_guarantee(tmp_path: Path, lang: str, train: str, held_out: str,
                                                 vocab_size: int) -> None:
    out = tmp_path / lang
    extend_tokenizer(ExtendConfig(
        corpus=[str(shared_corpus(train))], vocab_size=vocab_size, output_dir=out, lang=lang,
        eval=[f"{lang}={shared_corpus(held_out)}", f"en={shared_corpus('en/ud_ewt_train_web.txt')}"],
    ))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert all(c["passed"] for c in report["checks"].values())
    assert report["corpora"]["en"]["reduction"] == 0
    assert report["corpora"][lang]["reduction"] > 0.2
