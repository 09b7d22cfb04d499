"""``merge --new-model FOLDER``: a merge's output folder gives its new-language model; any other folder is
one sentence saying what it must hold (never "does not exist", which it does).

The oracle of the accepted folder is the first merge itself: merging the new-language model it wrote back
into the same base must give its tokenizer byte for byte.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import SAMPLE_JA
from vocab_extend.cli import main

NEWS = SAMPLE_JA / "news.txt"
NEW_MODEL = "new_language.model"  # what a merge into a SentencePiece base writes beside its tokenizer


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small merge into the default SentencePiece base."""
    out = tmp_path_factory.mktemp("first") / "out"
    assert main(["merge", "--corpus", str(NEWS), "--vocab-size", "1500", "--output-dir", str(out)]) == 0
    assert (out / NEW_MODEL).is_file()
    return out


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")][-1]


def test_a_merged_folder_gives_its_new_language_model(first: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "again"
    assert main(["merge", "--new-model", str(first), "--corpus", str(NEWS), "--output-dir", str(out)]) == 0
    assert f"loaded new-language model {first / NEW_MODEL}" in capsys.readouterr().err
    assert (out / "tokenizer.model").read_bytes() == (first / "tokenizer.model").read_bytes()
    assert (out / "tokenizer.json").read_bytes() == (first / "tokenizer.json").read_bytes()


def test_a_folder_without_one_says_what_it_must_hold(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "notes.txt").write_text("no model here", encoding="utf-8")
    assert main(["merge", "--new-model", str(folder), "--output-dir", str(tmp_path / "o")]) == 2
    message = error_line(capsys)
    assert f"--new-model {folder} is a folder without {NEW_MODEL}" in message
    assert "does not exist" not in message and not (tmp_path / "o").exists()


def test_a_folder_of_several_languages_asks_for_one(first: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "several"
    folder.mkdir()
    for code in ("ja", "th"):
        shutil.copy(first / NEW_MODEL, folder / f"new_language.{code}.model")
    assert main(["merge", "--new-model", str(folder), "--output-dir", str(tmp_path / "o")]) == 2
    message = error_line(capsys)
    assert "several languages (new_language.ja.model, new_language.th.model)" in message
    assert f"--new-model {folder / 'new_language.ja.model'}" in message
    (folder / "new_language.th.model").unlink()  # one language's file is that language's model
    out = tmp_path / "one"
    assert main(["merge", "--new-model", str(folder), "--corpus", str(NEWS), "--output-dir", str(out)]) == 0
    assert (out / "tokenizer.model").read_bytes() == (first / "tokenizer.model").read_bytes()
