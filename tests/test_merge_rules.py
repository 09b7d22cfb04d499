"""Known answers for the merge rules: admissible pieces, dead pieces, scores, unigram new models."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from vocab_extend.families.sentencepiece import parse_model
from vocab_extend.families import resolve_tokenizer
from vocab_extend.errors import VocabExtendError
from vocab_extend.families.sentencepiece.tokenizer_json import build_hf_tokenizer
from vocab_extend.families.sentencepiece.merge import (BASE_SCORES_KEY, _build, admissible, merge_sentencepiece,
                                                       restore_base_scores)
from vocab_extend.metadata import pad_vocab_size
from vocab_extend.scripts import CHINESE, JAPANESE, KOREAN, detect_language, get_language
from vocab_extend.tokenizer.checks import BASE_LANGUAGE_PROBES


@pytest.fixture(scope="module")
def base() -> sp_pb2.ModelProto:
    return parse_model(resolve_tokenizer("mistral-7b-v0.1").path, "model")


def new_model(pieces: list[str], model_type: int = sp_pb2.TrainerSpec.BPE) -> sp_pb2.ModelProto:
    proto = sp_pb2.ModelProto()
    proto.trainer_spec.model_type = model_type
    for rank, piece in enumerate(pieces):
        p = proto.pieces.add()
        p.piece, p.score, p.type = piece, -float(rank), sp_pb2.ModelProto.SentencePiece.NORMAL
    return proto


@pytest.mark.parametrize("piece", ["2007", "▁3", "......", "——", "”;", "2007年", "▁1月", "km"])
def test_pieces_chinese_llama_slips_in_are_refused(piece: str) -> None:
    assert not admissible(piece, JAPANESE, split_digits=True)


@pytest.mark.parametrize("piece", ["▁東京", "した", "。", "「", "ー", "１"])
def test_japanese_pieces_are_admitted(piece: str) -> None:
    assert admissible(piece, JAPANESE, split_digits=True)


def test_digits_are_allowed_when_the_base_does_not_split_them() -> None:
    assert admissible("2007年", JAPANESE, split_digits=False)


def test_dead_piece_is_dropped(base) -> None:
    # 京都 outranks 東京, so "東京都庁" segments as 東|京都|庁 and can never become one piece.
    result = merge_sentencepiece(base, new_model(["京都", "東京", "東京都庁", "2007", "▁the"]), JAPANESE)
    assert result.added == ["京都", "東京"]
    assert result.skipped == {"dead": 1, "no_new_script_char": 1, "already_in_base": 1}
    assert result.examples["dead"] == ["東京都庁"]


def test_unigram_pieces_without_a_split_are_dropped(base) -> None:
    unigram = new_model(["東京都庁", "東京", "都庁", "庁"], sp_pb2.TrainerSpec.UNIGRAM)
    assert merge_sentencepiece(base, unigram, JAPANESE).added == ["東京都庁", "東京", "都庁", "庁"]
    lonely = new_model(["東京都庁"], sp_pb2.TrainerSpec.UNIGRAM)
    with pytest.raises(VocabExtendError, match="can be produced"):
        merge_sentencepiece(base, lonely, JAPANESE)


def test_new_scores_sit_above_the_base_and_follow_the_new_order(base) -> None:
    result = merge_sentencepiece(base, new_model(["東京", "京都", "大阪", "阪"]), JAPANESE)
    scores = [p.score for p in result.model.pieces[len(base.pieces) :]]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4
    assert min(scores) > max(p.score for p in base.pieces if p.type == 1)
    sp = spm.SentencePieceProcessor(model_proto=result.model.SerializeToString())
    assert sp.encode("京都と東京へ", out_type=str) == ["▁", "京都", "と", "東京", "へ"]


def test_merge_list_reproduces_sentencepiece(base) -> None:
    result = merge_sentencepiece(base, new_model(["東京", "京都", "東京都", "▁東京"]), JAPANESE)
    sp = spm.SentencePieceProcessor(model_proto=result.model.SerializeToString())
    hf = build_hf_tokenizer(result.model)
    for text in ["東京都と京都", "京都東京", "the 東京都 tower", "  東京"]:
        assert hf.encode(text).ids == [1] + sp.encode(text)


def test_pad_vocab_size() -> None:
    assert pad_vocab_size(34_729, 64) == 34_752
    assert pad_vocab_size(34_752, 64) == 34_752
    assert pad_vocab_size(34_729, None) == 34_729


def test_language_detection() -> None:
    assert detect_language(["これは日本語の文です。"]) is JAPANESE
    assert detect_language(["这是一个中文句子。"]) is CHINESE
    assert detect_language(["이것은 한국어 문장입니다."]) is KOREAN


def test_piece_with_a_character_outside_the_vocabulary_is_dead(base) -> None:
    # A Chinese corpus that ends lines in a private-use character teaches "。\ue4c2"; SentencePiece can merge
    # 。 with the unknown character, a Hugging Face BPE byte-falls it back first: the piece must not be added.
    result = merge_sentencepiece(base, new_model(["发电", "。\ue4c2", "电。"]), CHINESE)
    assert result.added == ["发电", "电。"]
    assert result.examples["dead"] == ["。\ue4c2"]
    sp = spm.SentencePieceProcessor(model_proto=result.model.SerializeToString())
    hf = build_hf_tokenizer(result.model)
    for text in ["发电。\ue4c2", "。\ue4c2", "\ue4c2。发电"]:
        assert hf.encode(text).ids == [1] + sp.encode(text)


def test_base_pieces_the_new_model_learned_take_its_rank_and_come_back(base) -> None:
    # ст is a Mistral piece (id 608, score -349): in the merge it ranks where the new model put it, above the
    # pieces the new model learned after it, and vocab_extend.json keeps its base score.
    russian = get_language("ru")
    result = merge_sentencepiece(base, new_model(["ст", "ол", "стол", "!"]), russian)
    assert result.added == ["ол", "стол"] and result.skipped == {"already_in_base": 2}  # "!" keeps its score
    scores = {p.piece: p.score for p in result.model.pieces}
    top = max(p.score for p in base.pieces if p.type == 1)
    assert scores["ст"] > scores["ол"] > scores["стол"] > top and scores["!"] == base.pieces[base_id(base, "!")].score
    assert result.metadata_extra == {BASE_SCORES_KEY: {"608": -349.0}}
    assert result.report_extra["base_pieces_reranked"] == 1
    restored = restore_base_scores(result.model, result.metadata_extra)
    del restored.pieces[len(base.pieces):]
    restored.trainer_spec.vocab_size = len(base.pieces)
    assert restored.SerializeToString() == base.SerializeToString()


def base_id(base: sp_pb2.ModelProto, piece: str) -> int:
    return next(i for i, p in enumerate(base.pieces) if p.piece == piece)


def _without(script: str, rng: random.Random, n: int) -> list[str]:
    """Lines of random characters from every block but ``script``'s: letters, marks, digits, spaces, symbols."""
    own = get_language(script)
    pool = [chr(c) for c in list(range(0x20, 0x250)) + list(range(0x370, 0x3FF)) + list(range(0x530, 0x5FF))
            + list(range(0x600, 0x6FF)) + list(range(0x900, 0x97F)) + list(range(0xE00, 0xE7F))
            + list(range(0x1E00, 0x1EFF)) + list(range(0x2000, 0x206F)) + list(range(0x3040, 0x30FF))
            + list(range(0x4E00, 0x4F00)) + list(range(0xAC00, 0xAD00))]
    pool = [ch for ch in pool if not own.contains(ch)] + [" "] * 40
    return ["".join(rng.choices(pool, k=rng.randint(1, 60))) for _ in range(n)]


def test_reranking_pieces_of_a_script_changes_only_text_with_that_script(base, sample_en: Path) -> None:
    # The proof of invariant 2 under re-ranking: every Mistral piece with a Cyrillic letter gets a random score
    # above every base piece; SentencePiece itself must segment every line without Cyrillic as the base does.
    russian = get_language("ru")
    rng = random.Random(0)
    cyrillic = [(p.piece, i) for i, p in enumerate(base.pieces) if russian.contains(p.piece) and p.type == 1]
    assert len(cyrillic) > 1000
    rng.shuffle(cyrillic)
    reranked = spm.SentencePieceProcessor(model_proto=_build(base, cyrillic).SerializeToString())
    plain = spm.SentencePieceProcessor(model_proto=base.SerializeToString())
    english = [line for path in sorted(sample_en.glob("*.txt")) for line in path.read_text("utf-8").splitlines()]
    lines = english + list(BASE_LANGUAGE_PROBES) + _without("ru", rng, 3000)
    assert not any(russian.contains(line) for line in lines)
    assert reranked.encode(lines) == plain.encode(lines)
    russian_lines = ["Москва — столица России, крупнейший по численности населения город страны.",
                     "Вчера вечером мы долго разговаривали о литературе, истории и путешествиях.",
                     "Учёные обнаружили новый вид растений в горах Южной Америки в 2007 году."]
    assert reranked.encode(russian_lines) != plain.encode(russian_lines)  # the re-ranking does act on Cyrillic
