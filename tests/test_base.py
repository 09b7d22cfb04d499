"""Resolving --base: aliases, files, folders and Hub ids (the Hub is faked: no machine here reaches it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vocab_extend.families import resolve_tokenizer
from vocab_extend import hub
from vocab_extend.errors import VocabExtendError


def test_alias_file_and_folder(tmp_path: Path) -> None:
    alias = resolve_tokenizer("mistral-7b-v0.1")
    assert alias.family == "sentencepiece" and alias.path.name == "tokenizer.model.v1"
    shutil.copy(alias.path, tmp_path / "tokenizer.model")
    assert resolve_tokenizer(str(tmp_path)).path == tmp_path / "tokenizer.model"
    assert resolve_tokenizer(str(tmp_path / "tokenizer.model")).family == "sentencepiece"


def test_hub_id_downloads_the_tokenizer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "unreachable_reason", lambda: None)  # as if online: the Hub is faked
    import huggingface_hub

    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    shutil.copy(resolve_tokenizer().path, snapshot / "tokenizer.model")
    asked: list[tuple[str, str]] = []

    def fake_download(repo_id: str, filename: str, **kwargs: object) -> str:
        asked.append((repo_id, filename))
        if not (snapshot / filename).exists():
            raise FileNotFoundError(filename)
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    base = resolve_tokenizer("mistralai/Mistral-7B-v0.1")
    assert (base.name, base.family) == ("mistralai/Mistral-7B-v0.1", "sentencepiece")
    assert asked == [("mistralai/Mistral-7B-v0.1", name) for name in
                     ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")]


def test_unreachable_hub_id_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "unreachable_reason", lambda: None)  # as if online: the Hub is faked
    import huggingface_hub

    def offline(repo_id: str, filename: str, **kwargs: object) -> str:
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(VocabExtendError, match="the Hub did not give its tokenizer"):
        resolve_tokenizer("someone/some-model")


def test_folder_without_a_tokenizer(tmp_path: Path) -> None:
    with pytest.raises(VocabExtendError, match="is not a SentencePiece model"):
        resolve_tokenizer(str(tmp_path))


def _bytelevel_tokenizer_json(path: Path) -> None:
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE

    tokenizer = Tokenizer(BPE(vocab={"a": 0, "b": 1, "ab": 2}, merges=[("a", "b")]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.save(str(path))


def test_llama3_style_folder_with_a_tiktoken_tokenizer_model(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Llama-3 folders can hold a tiktoken file named tokenizer.model beside their byte-level tokenizer.json."""
    monkeypatch.setattr(hub, "unreachable_reason", lambda: None)  # as if online: the Hub is faked
    import huggingface_hub

    (tmp_path / "tokenizer.model").write_text("IQ== 0\nIg== 1\n", encoding="utf-8")
    _bytelevel_tokenizer_json(tmp_path / "tokenizer.json")
    base = resolve_tokenizer(str(tmp_path))
    assert (base.family, base.path.name) == ("bytelevel", "tokenizer.json")

    def fake_download(repo_id: str, filename: str, **kwargs: object) -> str:
        return str(tmp_path / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    assert resolve_tokenizer("meta-llama/Llama-3.2-1B").family == "bytelevel"
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(VocabExtendError, match="is not a SentencePiece model"):
        resolve_tokenizer(str(tmp_path))


def test_an_unreachable_hub_is_asked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, the first request already says so: the next file is not asked for (each would wait ~25 s)."""
    monkeypatch.setattr(hub, "unreachable_reason", lambda: None)  # as if online: the Hub is faked
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    asked: list[str] = []

    def offline(repo_id: str, filename: str, **kwargs: object) -> str:
        asked.append(filename)
        raise LocalEntryNotFoundError("cannot reach the Hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(VocabExtendError, match="the Hub did not give its tokenizer"):
        resolve_tokenizer("someone/some-model")
    assert asked == ["tokenizer.model"]
