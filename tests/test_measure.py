"""measure_tokenizers: known token counts, reduction against the first tokenizer, JSON and plot outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sentencepiece as spm

from conftest import SAMPLE_EN, SAMPLE_JA
from vocab_extend.families import resolve_tokenizer
from vocab_extend.cli import main
from vocab_extend.corpus import read_documents
from vocab_extend.tokenizer.job import ExtendConfig, extend_tokenizer
from vocab_extend.tokenizer.measure import measure_tokenizers


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("m") / "ext"
    extend_tokenizer(ExtendConfig(corpus=[str(SAMPLE_JA)], output_dir=out))
    return out


def test_counts_match_sentencepiece_and_reduction_is_relative_to_the_first(extended: Path) -> None:
    results = measure_tokenizers(
        {"base": "mistral-7b-v0.1", "extended": str(extended), "extended-sp": str(extended / "tokenizer.model")},
        {"ja": str(SAMPLE_JA), "en": str(SAMPLE_EN)}, progress=False,
    )
    ja_docs = read_documents(str(SAMPLE_JA))
    base_sp = spm.SentencePieceProcessor(model_file=str(resolve_tokenizer().path))
    ext_sp = spm.SentencePieceProcessor(model_file=str(extended / "tokenizer.model"))
    base_tokens = sum(map(len, base_sp.encode(ja_docs)))
    ext_tokens = sum(map(len, ext_sp.encode(ja_docs)))
    ja = results["ja"]
    assert ja["base"]["tokens"] == base_tokens and ja["base"]["reduction"] == 0
    assert ja["extended"]["tokens"] == ja["extended-sp"]["tokens"] == ext_tokens
    assert ja["extended"]["reduction"] == pytest.approx(1 - ext_tokens / base_tokens)
    assert ja["base"]["chars_per_token"] == pytest.approx(sum(map(len, ja_docs)) / base_tokens)
    # the base spells characters it lacks in bytes; the extension needs far fewer of those
    assert ja["base"]["byte_fallback_share"] > ja["extended"]["byte_fallback_share"]
    assert results["en"]["extended"]["tokens"] == results["en"]["base"]["tokens"]


def test_cli_writes_json_and_plot(extended: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["measure", "--tokenizer", "base=mistral-7b-v0.1", "--tokenizer", f"ext={extended}",
                 "--corpus", f"ja={SAMPLE_JA}", "--json", str(tmp_path / "m.json"), "--plot", str(tmp_path / "m.png")])
    assert code == 0
    data = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert set(data["ja"]) == {"base", "ext"}
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    assert "| ja | training text | ext |" in capsys.readouterr().out


def test_unknown_tokenizer_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measure", "--tokenizer", f"x={tmp_path / 'missing'}", "--corpus", f"ja={SAMPLE_JA}"]) == 2
    assert "error:" in capsys.readouterr().err


def test_repeated_names_and_plain_json_files(extended: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measure", "--tokenizer", str(extended / "tokenizer.json"), "--tokenizer",
                 str(extended / "tokenizer.json"), "--corpus", f"ja={SAMPLE_JA}"]) == 2
    assert "given twice" in capsys.readouterr().err
    from tokenizers import Tokenizer

    small = Tokenizer.from_file(str(extended / "tokenizer.json"))
    small.add_tokens(["今日は晴れ"])
    small.save(str(tmp_path / "other.json"))
    results = measure_tokenizers({"file": str(tmp_path / "other.json"), "folder": str(extended)},
                                 {"ja": str(SAMPLE_JA)}, progress=False)
    assert results["ja"]["file"]["tokens"] <= results["ja"]["folder"]["tokens"]
    from vocab_extend.tokenizer.measure import load_encoder

    assert load_encoder("f", str(tmp_path / "other.json")).vocab_size == \
        load_encoder("d", str(extended)).vocab_size + 1


def test_bad_tokenizer_files_and_outputs_are_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "notes.txt"
    script.write_text("not a tokenizer", encoding="utf-8")
    assert main(["measure", "--tokenizer", f"a={script}", "--corpus", f"ja={SAMPLE_JA}"]) == 2
    assert "is not a SentencePiece model" in capsys.readouterr().err
    # a mistyped path under an existing folder is a missing path, not a Hub id to wait for
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    assert main(["measure", "--tokenizer", "a=outputs/typo", "--corpus", f"ja={SAMPLE_JA}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["measure", "--tokenizer", "a=mistral-7b-v0.1", "--corpus", f"ja={SAMPLE_JA}",
                 "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_special_token_text_is_counted_as_text(extended: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "special.txt"
    corpus.write_text("東京</s>大阪<s>\n", encoding="utf-8")
    results = measure_tokenizers({"hf": str(extended), "sp": str(extended / "tokenizer.model")},
                                 {"x": str(corpus)}, progress=False)
    assert results["x"]["hf"]["tokens"] == results["x"]["sp"]["tokens"]
