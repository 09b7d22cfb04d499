"""Every guarantee, for both tokenizer families, on real text, against oracles that are not vocab_extend:
SentencePiece and ``tokenizers`` reading the files, and ``AutoTokenizer``.

One merge per family per session (``merged`` in conftest.py): Mistral-7B's SentencePiece BPE and SmolLM2's
byte-level BPE, each extended with the bundled Japanese sample (``news.txt`` held out).
"""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import pytest

from conftest import HELD_OUT_JA, SAMPLE_JA, TRAIN_JA, Merged, english_lines
from vocab_extend.cli import main
from vocab_extend.corpus import read_documents

TRICKY = [
    "東京都の人口は約1400万人です。", " 先頭に空白", "  二つの空白  と末尾 ", "English then 日本語 mixed 123",
    "改行\nを含む\t行", "", "🎉絵文字と𠮷野家", "ｶﾀｶﾅ半角とＡＢＣ全角", "東京" + " " * 20 + "大阪",
    "HTMLの<s>タグと</s>と<|im_start|>の話",
]


def japanese_lines() -> list[str]:
    return [line for path in sorted(SAMPLE_JA.glob("*.txt")) for line in read_documents(str(path))]


def test_every_base_token_keeps_its_id_and_piece(merged: Merged) -> None:
    oracle = merged.oracle
    vocab = oracle.written.get_vocab(with_added_tokens=True)
    base_vocab = oracle.base_vocab()
    assert base_vocab and all(vocab.get(piece) == i for piece, i in base_vocab.items())
    if merged.family == "sentencepiece":
        # A base piece may be re-ranked only if it holds a Japanese character (all at U+3000 and above here);
        # vocab_extend.json gives back the base score of every re-ranked piece.
        meta = json.loads((merged.folder / "vocab_extend.json").read_text(encoding="utf-8"))
        reranked = {int(i): score for i, score in meta["extra"].get("base_scores", {}).items()}
        for i in range(oracle.base_size):
            piece = oracle.base_sp.id_to_piece(i)
            assert oracle.ext_sp.id_to_piece(i) == piece
            assert reranked.get(i, oracle.ext_sp.get_score(i)) == oracle.base_sp.get_score(i)
            assert i not in reranked or any(ord(ch) >= 0x3000 for ch in piece), piece
        sp = oracle.base_sp
        top = max(sp.get_score(i) for i in range(oracle.base_size)
                  if not (sp.is_control(i) or sp.is_byte(i) or sp.is_unknown(i)))
        assert reranked and all(oracle.ext_sp.get_score(i) > top for i in reranked)  # above every base piece
    else:
        base_merges = json.loads(oracle.base_tok.to_str())["model"]["merges"]
        assert json.loads(oracle.written.to_str())["model"]["merges"][: len(base_merges)] == base_merges
    added = oracle.added()
    assert [i for i, _ in added] == list(range(oracle.base_size, oracle.base_size + len(added)))
    assert len(added) > 1000


def test_base_language_text_tokenizes_exactly_as_before(merged: Merged) -> None:
    lines = english_lines()
    assert merged.oracle.encode(lines, extended=True) == merged.oracle.encode(lines, extended=False)


def test_no_japanese_line_needs_more_tokens_than_with_the_base(merged: Merged) -> None:
    lines = japanese_lines() + TRICKY
    ext = merged.oracle.encode(lines, extended=True, specials=False)
    base = merged.oracle.encode(lines, extended=False, specials=False)
    worse = [line for line, e, b in zip(lines, ext, base) if len(e) > len(b)]
    assert not worse, worse[:3]
    assert sum(map(len, ext)) < 0.7 * sum(map(len, base))


def test_no_added_piece_joins_a_digit_to_anything(merged: Merged) -> None:
    for _, piece in merged.oracle.added():
        data = merged.oracle.piece_bytes(piece)
        text = data.decode("utf-8", errors="ignore")
        if any(unicodedata.category(ch) == "Nd" for ch in text):
            assert data.decode("utf-8", errors="replace") == text and len(text) == 1, piece
    ids = merged.oracle.encode(["2007年に１２３人が来た。"], extended=True, specials=False)[0]
    base_digits = merged.oracle.encode(["2007"], extended=False, specials=False)[0]
    assert len(ids) > len(base_digits)


def test_every_added_piece_is_produced(merged: Merged) -> None:
    """The written tokenizer's own (Rust) BPE turns each added piece's string into that piece, and real
    training text uses most of them."""
    written = merged.oracle.written
    dead = [piece for _, piece in merged.oracle.added()
            if [t.value for t in written.model.tokenize(piece)] != [piece]]
    assert not dead, dead[:5]
    used = {i for ids in merged.oracle.encode([line for p in TRAIN_JA for line in read_documents(str(p))],
                                               extended=True) for i in ids}
    added = [i for i, _ in merged.oracle.added()]
    assert sum(i in used for i in added) > 0.8 * len(added)


@pytest.fixture(scope="module")
def hf_tokenizers(merged: Merged):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(merged.folder))


def test_autotokenizer_matches_the_reference_on_real_and_tricky_text(merged: Merged, hf_tokenizers) -> None:
    hf = hf_tokenizers
    lines = japanese_lines() + english_lines() + TRICKY
    ids = hf(lines, split_special_tokens=True)["input_ids"]
    assert ids == merged.oracle.encode(lines, extended=True)


def test_decode_of_encode_gives_the_text_back(merged: Merged, hf_tokenizers) -> None:
    hf = hf_tokenizers
    for line in japanese_lines()[:200] + english_lines() + TRICKY:
        ids = hf(line, split_special_tokens=True)["input_ids"]
        assert hf.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False) == line
        plain = merged.oracle.encode([line], extended=True, specials=False)[0]
        assert merged.oracle.decode(plain, extended=True) == line


def test_report_figures_agree_with_the_oracle(merged: Merged) -> None:
    report = json.loads((merged.folder / "report.json").read_text(encoding="utf-8"))
    meta = json.loads((merged.folder / "vocab_extend.json").read_text(encoding="utf-8"))
    from transformers import AutoTokenizer

    size = len(AutoTokenizer.from_pretrained(str(merged.folder)))
    assert report["base_vocab_size"] == meta["base_vocab_size"] == merged.oracle.base_size
    assert report["vocab_size"] == meta["vocab_size"] == size == merged.oracle.base_size + report["added_pieces"]
    assert meta["base_kind"] == merged.family and meta["lang"] == "ja"
    held_out = read_documents(str(HELD_OUT_JA))
    ja = report["corpora"]["ja"]
    assert ja["extended_tokens"] == sum(map(len, merged.oracle.encode(held_out, extended=True, specials=False)))
    assert ja["base_tokens"] == sum(map(len, merged.oracle.encode(held_out, extended=False, specials=False)))
    assert ja["chars_per_token_extended"] > 1.25 * ja["chars_per_token_base"]  # held out, from a small sample
    en = report["corpora"]["en"]
    assert en["extended_tokens"] == en["base_tokens"]
    expected = {"base_ids_unchanged", "base_language_unchanged", "digits_split", "no_dead_pieces",
                "hf_matches_reference", "roundtrip", "base_settings_kept"}
    assert set(report["checks"]) == expected and all(c["checked"] > 0 for c in report["checks"].values())
    assert (merged.folder / "report.md").is_file() and (merged.folder / "token_reduction.png").is_file()


def test_same_inputs_give_byte_identical_outputs(merged: Merged, tmp_path: Path) -> None:
    again = tmp_path / "again"
    argv = [a if a != str(merged.folder) else str(again) for a in merged.argv]
    assert main(argv) == 0
    names = sorted(p.name for p in merged.folder.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        if name == "run.json":  # the wall times and peak memory of the machine: the one file that may differ
            first, second = (json.loads((folder / name).read_text(encoding="utf-8")) for folder in (merged.folder, again))
            assert set(first["phase_seconds"]) == set(second["phase_seconds"]) and first["peak_rss_mb"] > 0
            continue
        assert (again / name).read_bytes() == (merged.folder / name).read_bytes(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp folder left behind"


def test_base_tokenizer_is_rebuilt_offline_from_the_folder(merged: Merged) -> None:
    from vocab_extend.tokenizer.loader import load_base_tokenizer

    base = load_base_tokenizer(merged.folder)
    lines = japanese_lines()[:100] + english_lines()
    assert base(lines, split_special_tokens=True)["input_ids"] == merged.oracle.encode(lines, extended=False)
    assert len(base) == merged.oracle.base_size


@pytest.mark.parametrize("tamper", ["swap_base_ids", "drop_setting"])
def test_the_checks_catch_a_broken_folder(merged: Merged, tmp_path: Path, tamper: str) -> None:
    """The verification is not a formality: a folder with two base ids swapped, or a setting dropped, fails."""
    from vocab_extend.families import get_family
    from vocab_extend.scripts import JAPANESE
    from vocab_extend.families import resolve_tokenizer
    from vocab_extend.errors import VocabExtendError
    from vocab_extend.tokenizer.checks import raise_on_failure, verify_folder

    broken = tmp_path / "broken"
    shutil.copytree(merged.folder, broken)
    if tamper == "swap_base_ids":
        data = json.loads((broken / "tokenizer.json").read_text(encoding="utf-8"))
        vocab = data["model"]["vocab"]
        a, b = merged.oracle.encode(["the"], extended=False, specials=False)[0][0], \
            merged.oracle.encode([" of"], extended=False, specials=False)[0][-1]
        ta, tb = [t for t, i in vocab.items() if i in (a, b)]
        vocab[ta], vocab[tb] = vocab[tb], vocab[ta]
        (broken / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        # SentencePiece: tokenizer.json now disagrees with tokenizer.model; byte-level: with the base
        expected = {"sentencepiece": "hf_matches_reference", "bytelevel": "base_ids_unchanged"}[merged.family]
    else:
        config = json.loads((broken / "tokenizer_config.json").read_text(encoding="utf-8"))
        config["model_max_length"] = 77
        (broken / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
        expected = "base_settings_kept"
    family = get_family(merged.family)
    base = family.load_base(resolve_tokenizer(json.loads((broken / "vocab_extend.json").read_text())["base"]))
    checks, _ = verify_folder(broken, family, base, {"en": english_lines()}, JAPANESE)
    assert not checks[expected]["passed"], checks[expected]
    with pytest.raises(VocabExtendError, match=f"verification failed: {expected}"):
        raise_on_failure(checks)


def test_the_base_rebuilt_from_the_folder_is_the_base(merged: Merged) -> None:
    # The model side rebuilds the base from the merged folder (re-ranked pieces get their base scores back
    # from vocab_extend.json): on Japanese text it gives SentencePiece's ids with the base model.
    if merged.family != "sentencepiece":
        pytest.skip("byte-level bases keep every base entry as it is")
    from vocab_extend.families import get_family

    rebuilt = get_family("sentencepiece").base_of_extended(merged.folder, merged.oracle.base_size)
    lines = japanese_lines()[:300]
    ids = rebuilt(lines, add_special_tokens=False)["input_ids"]
    assert ids == merged.oracle.base_sp.encode(lines)
