"""Corpus specs: every local format yields the same documents in a stable order."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from vocab_extend.corpus import CorpusStats, iter_documents, parse_named_spec, read_documents
from vocab_extend import hub
from vocab_extend.errors import VocabExtendError

DOCS = ["東京は晴れ。", "Second document", "三番目の文書です"]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_text("\n".join(DOCS[:2]) + "\n\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": DOCS[2]}, ensure_ascii=False) + "\n", encoding="utf-8")
    return tmp_path


def test_folder_reads_every_supported_file_sorted(folder: Path) -> None:
    assert read_documents(str(folder)) == DOCS


def test_glob_and_max_docs(folder: Path) -> None:
    assert read_documents(str(folder / "*.txt")) == DOCS[:2]
    assert list(iter_documents(str(folder), max_docs=2)) == DOCS[:2]


def test_json_gz_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "d.json").write_text(json.dumps([{"text": d} for d in DOCS], ensure_ascii=False), encoding="utf-8")
    with gzip.open(tmp_path / "d.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(DOCS))
    pq.write_table(pa.table({"content": DOCS}), tmp_path / "d.parquet")
    assert read_documents(str(tmp_path / "d.json")) == DOCS
    assert read_documents(str(tmp_path / "d.txt.gz")) == DOCS
    assert read_documents(str(tmp_path / "d.parquet"), text_field="content") == DOCS
    with pytest.raises(VocabExtendError, match="--text-field"):
        read_documents(str(tmp_path / "d.parquet"))


def test_non_utf8_lines_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes("良い\n".encode() + b"\xff\xfe\n" + "also good\n".encode())
    stats = CorpusStats()
    assert list(iter_documents(str(path), stats=stats)) == ["良い", "also good"]
    assert stats.skipped_non_utf8 == 1 and stats.documents == 2


def test_named_specs() -> None:
    assert parse_named_spec("ja=corpora/ja") == ("ja", "corpora/ja")
    assert parse_named_spec("corpora/ja/") == ("ja", "corpora/ja/")
    assert parse_named_spec("hf:wikimedia/wikipedia:20231101.ja:train")[1].startswith("hf:")
    with pytest.raises(VocabExtendError):
        parse_named_spec("=x")


def test_unreachable_hub_dataset_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "unreachable_reason", lambda: None)  # as if online: the Hub is faked
    import datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(VocabExtendError, match="could not stream hf:no-such/dataset"):
        read_documents("hf:no-such/dataset")


def test_hub_dataset_is_streamed_with_its_config_and_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "unreachable_reason", lambda: None)  # as if online: the Hub is faked
    import datasets

    asked = {}

    def fake(name: str, config: str | None, split: str, streaming: bool) -> list[dict[str, str]]:
        asked.update(name=name, config=config, split=split, streaming=streaming)
        return [{"text": d} for d in DOCS]

    monkeypatch.setattr(datasets, "load_dataset", fake)
    assert read_documents("hf:wikimedia/wikipedia:20231101.ja:train", max_docs=2) == DOCS[:2]
    assert asked == {"name": "wikimedia/wikipedia", "config": "20231101.ja", "split": "train", "streaming": True}


def test_max_docs_below_one_is_one_sentence(tmp_path: Path) -> None:
    corpus = tmp_path / "a.txt"
    corpus.write_text("一行目\n", encoding="utf-8")
    with pytest.raises(VocabExtendError, match="must be at least 1"):
        read_documents(str(corpus), max_docs=0)


@pytest.mark.parametrize("value, name", [
    ("mistral-7b-v0.1", "mistral-7b-v0.1"), ("outputs/mistral-7b-v0.1-ja/", "mistral-7b-v0.1-ja"),
    ("data/wiki.txt.gz", "wiki"), ("chinese_sp.model", "chinese_sp"), ("ja=corpora/ja", "ja"),
    ("hf:wikimedia/wikipedia:20231101.ja:train", "wikimedia/wikipedia"),
])
def test_unnamed_specs_are_named_after_their_file_or_folder(value: str, name: str) -> None:
    assert parse_named_spec(value)[0] == name
