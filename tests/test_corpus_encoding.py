"""Corpus encodings: UTF-16/32 read by their byte-order mark, wrong encodings refused, never a traceback."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from conftest import SAMPLE_JA
from vocab_extend.cli import main
from vocab_extend.corpus import CorpusStats, iter_documents, read_documents
from vocab_extend.errors import VocabExtendError

DOCS = ["東京は晴れ。", "Second document", "三番目の文書です", "emoji 😀 outside the BMP"]


def _bom_and_text(encoding: str) -> bytes:
    text = "\n".join(DOCS) + "\r\n"
    return ("\ufeff" + text).encode(encoding)  # the explicit-order codecs write no BOM of their own


@pytest.mark.parametrize("encoding, label", [
    ("utf-16-le", "UTF-16-LE"), ("utf-16-be", "UTF-16-BE"), ("utf-32-le", "UTF-32-LE"), ("utf-32-be", "UTF-32-BE"),
    ("utf-8", "UTF-8 with BOM"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_text_with_a_byte_order_mark_is_decoded(tmp_path: Path, encoding: str, label: str, gz: bool) -> None:
    path = tmp_path / ("c.txt.gz" if gz else "c.txt")
    data = _bom_and_text(encoding)
    path.write_bytes(gzip.compress(data) if gz else data)
    stats = CorpusStats()
    assert list(iter_documents(str(path), stats=stats)) == DOCS
    assert stats.skipped_non_utf8 == 0 and stats.encodings == {str(path): label}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-32"])
def test_json_and_jsonl_with_a_byte_order_mark(tmp_path: Path, encoding: str) -> None:
    (tmp_path / "a.jsonl").write_bytes(
        "\n".join(json.dumps({"text": d}, ensure_ascii=False) for d in DOCS).encode(encoding))
    (tmp_path / "b.json").write_bytes(json.dumps([{"text": d} for d in DOCS], ensure_ascii=False).encode(encoding))
    assert read_documents(str(tmp_path / "a.jsonl")) == DOCS
    assert read_documents(str(tmp_path / "b.json")) == DOCS


def test_utf16_without_a_byte_order_mark_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes("Plain English text that was saved as UTF-16.\n".encode("utf-16-le") * 20)
    with pytest.raises(VocabExtendError, match=r"looks like UTF-16 without a byte-order mark.*iconv -f UTF-16LE"):
        read_documents(str(path))


def test_undecodable_bytes_in_utf16_skip_their_line_only(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    bad = "\ufeffgood one\n".encode("utf-16-le") + b"\x00\xd8" + "x\n".encode("utf-16-le")  # a lone surrogate
    path.write_bytes(bad + "good two\n".encode("utf-16-le"))
    stats = CorpusStats()
    assert list(iter_documents(str(path), stats=stats)) == ["good one", "good two"]
    assert stats.skipped_non_utf8 == 1


def _shift_jis_file(path: Path, bad: int, good: int) -> None:
    lines = ["日本語の行です。"] * bad  # Shift-JIS bytes are not UTF-8
    path.write_bytes(b"".join(line.encode("shift_jis") + b"\n" for line in lines)
                     + "".join(f"line {i}\n" for i in range(good)).encode("ascii"))


@pytest.mark.parametrize("bad, good, refused", [(11, 89, True), (10, 90, False), (4, 0, False), (5, 0, True)])
def test_share_of_skipped_lines(tmp_path: Path, bad: int, good: int, refused: bool) -> None:
    """More than 10% of a file's lines (and at least 5) undecodable: the file is refused."""
    path = tmp_path / "sjis.txt"
    _shift_jis_file(path, bad, good)
    if refused:
        with pytest.raises(VocabExtendError) as info:
            list(iter_documents(str(path)))
        assert str(info.value).startswith(f"{path}: {bad} of {bad + good} lines are not valid UTF-8 (more than 10%)")
        assert "--allow-invalid-lines" in str(info.value)
    stats = CorpusStats()
    assert len(list(iter_documents(str(path), stats=stats, allow_skipped=True))) == good
    assert stats.skipped_non_utf8 == bad and stats.lines == bad + good


def test_a_big_file_in_another_encoding_is_refused_early(tmp_path: Path) -> None:
    path = tmp_path / "sjis.txt"
    _shift_jis_file(path, 5000, 0)
    seen = []
    with pytest.raises(VocabExtendError, match=r"1,000 of 1,000 lines read so far are not valid UTF-8"):
        for doc in iter_documents(str(path)):
            seen.append(doc)


def test_max_docs_does_not_hide_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes("ok\n".encode() + b"\x82\xa0\n" * 20 + "ok too\n".encode())
    with pytest.raises(VocabExtendError, match="are not valid UTF-8"):
        list(iter_documents(str(path), max_docs=2))


def test_lone_surrogates_in_json_are_skipped_and_counted(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "\\ud800 broken"}\n{"text": "fine"}\n'
                                      '{"text": "\\ud83d\\ude00 a real pair"}\n', encoding="utf-8")
    (tmp_path / "b.json").write_text('[{"text": "ok"}, {"text": "\\udfff"}]', encoding="utf-8")
    stats = CorpusStats()
    docs = list(iter_documents(str(tmp_path), stats=stats, allow_skipped=True))
    assert docs == ["fine", "😀 a real pair", "ok"] and stats.skipped_non_utf8 == 2
    for doc in docs:
        doc.encode("utf-8")  # what every later step does; never a UnicodeEncodeError


@pytest.mark.parametrize("kind", ["garbage", "truncated", "not-gzip"])
@pytest.mark.parametrize("name", ["c.txt.gz", "c.jsonl.gz", "c.json.gz"])
def test_corrupt_gz_is_one_sentence_naming_the_file(tmp_path: Path, kind: str, name: str) -> None:
    records = "".join(json.dumps({"text": f"{i} 行目"}, ensure_ascii=False) + "\n" for i in range(20000))
    content = {
        "garbage": b"\x1f\x8b\x08\x00not really gzip" * 4,
        "truncated": gzip.compress(records.encode("utf-8"))[:20000],
        "not-gzip": records.encode("utf-8"),
    }[kind]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VocabExtendError, match=rf"^{path} is not a readable gzip file \(.*\): re-download"):
        read_documents(str(path))


# ------------------------------------------------------------------------------------------- through the CLI


def test_merge_refuses_a_shift_jis_corpus(capsys, tmp_path: Path) -> None:
    corpus = tmp_path / "sjis.txt"
    corpus.write_bytes(SAMPLE_JA.joinpath("news.txt").read_text(encoding="utf-8").encode("shift_jis", "replace"))
    code = main(["merge", "--corpus", str(corpus), "--output-dir", str(tmp_path / "o")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1
    assert errors[0].startswith(f"error: {corpus}: ") and "are not valid UTF-8" in errors[0]
    assert not (tmp_path / "o").exists()


def test_merge_names_a_corrupt_gz(capsys, tmp_path: Path) -> None:
    corpus = tmp_path / "news.txt.gz"
    corpus.write_bytes(gzip.compress(SAMPLE_JA.joinpath("news.txt").read_bytes())[:300])
    code = main(["merge", "--corpus", str(corpus), "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and f"\nerror: {corpus} is not a readable gzip file" in "\n" + err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_merge_of_a_utf16_corpus_equals_the_utf8_one(tmp_path: Path) -> None:
    text = SAMPLE_JA.joinpath("news.txt").read_text(encoding="utf-8")
    (tmp_path / "utf8").mkdir()
    (tmp_path / "utf16").mkdir()
    (tmp_path / "utf8" / "news.txt").write_text(text, encoding="utf-8")
    (tmp_path / "utf16" / "news.txt").write_bytes(text.encode("utf-16"))
    for name in ("utf8", "utf16"):
        assert main(["merge", "--corpus", str(tmp_path / name), "--output-dir", str(tmp_path / f"out-{name}")]) == 0
    for file in ("tokenizer.json", "tokenizer.model", "new_language.model"):
        assert (tmp_path / "out-utf8" / file).read_bytes() == (tmp_path / "out-utf16" / file).read_bytes()
    assert json.loads((tmp_path / "out-utf16" / "vocab_extend.json").read_text(encoding="utf-8"))["lang"] == "ja"


@pytest.mark.slow
def test_merge_skips_a_lone_surrogate_in_jsonl(capsys, tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    lines = SAMPLE_JA.joinpath("news.txt").read_text(encoding="utf-8").splitlines()
    records = [json.dumps({"text": line}, ensure_ascii=False) for line in lines if line.strip()]
    records.insert(3, '{"text": "壊れた\\ud800行"}')
    corpus.write_text("\n".join(records) + "\n", encoding="utf-8")
    assert main(["merge", "--corpus", str(corpus), "--output-dir", str(tmp_path / "o")]) == 0
    assert "skipped 1 corpus lines" in capsys.readouterr().err
