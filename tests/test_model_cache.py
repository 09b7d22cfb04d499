"""The converted-model cache (``vocab_extend.model.cache``) and ``vocab-extend cache [--clean]``, on a small
fake cache under ``VOCAB_EXTEND_CACHE``: entries keyed by content, hashes remembered, path-keyed entries of
earlier versions renamed or cleaned, entries in use kept, nothing outside the cache touched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vocab_extend.cli import main
from vocab_extend.model import cache


@pytest.fixture()
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VOCAB_EXTEND_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _gguf(path: Path, content: bytes = b"GGUF fake model") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _entry(folder: Path, size: int = 1000) -> Path:
    """A complete-looking converted folder."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * size)
    return folder


def test_same_content_at_two_paths_is_one_entry(root, tmp_path):
    first = _gguf(tmp_path / "venv-a" / "m.Q4.gguf")
    second = _gguf(tmp_path / "venv-b" / "m.Q4.gguf")
    other = _gguf(tmp_path / "venv-c" / "m.Q4.gguf", b"GGUF another model")
    digest = hashlib.sha256(b"GGUF fake model").hexdigest()
    assert cache.entry_for(first) == cache.entry_for(second) == root / "gguf" / f"m.Q4-sha256-{digest[:16]}"
    assert cache.entry_for(other) != cache.entry_for(first)


def test_a_hash_is_computed_once_per_path_size_and_time(root, tmp_path, monkeypatch):
    model = _gguf(tmp_path / "m.gguf")
    calls = []
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda f, name: calls.append(name) or real(f, name))
    first = cache.content_hash(model)
    assert cache.content_hash(model) == first and len(calls) == 1
    index = json.loads((root / "gguf" / "index.json").read_text())
    assert index["files"][str(model.resolve())]["sha256"] == first
    model.write_bytes(b"GGUF changed model")  # new size and time: hashed again
    assert cache.content_hash(model) != first and len(calls) == 2
    (root / "gguf" / "index.json").write_text("{damaged")  # a damaged index costs a hash, nothing else
    assert cache.content_hash(model) == hashlib.sha256(b"GGUF changed model").hexdigest() and len(calls) == 3


def test_the_path_keyed_entry_of_an_earlier_version_is_renamed_not_converted_again(root, tmp_path):
    model = _gguf(tmp_path / "m.gguf")
    old = _entry(cache.legacy_folder(model))
    folder = cache.entry_for(model)
    assert not old.exists() and cache.is_complete(folder)
    info = json.loads((folder / "entry.json").read_text())
    assert info["sha256"] == cache.content_hash(model) and info["source_name"] == "m.gguf"
    # another path's old entry is left alone (listed as keyed by path, removed by --clean)
    stray = _entry(root / "gguf" / f"other-{'a' * 20}")
    assert cache.entry_for(_gguf(tmp_path / "other.gguf", b"x")) != stray and stray.exists()


def _fake_cache(root: Path) -> dict[str, Path]:
    gguf = root / "gguf"
    content = _entry(gguf / f"m-sha256-{'b' * 16}", 3 * 2**20)
    (content / "entry.json").write_text(json.dumps({"source_name": "m.gguf", "sha256": "b" * 64}))
    by_path = _entry(gguf / f"m-{'c' * 20}", 2**20)
    leftover = _entry(gguf / f".m-sha256-{'d' * 16}.4242-0123abcd-xyz.tmp", 2**20)
    (gguf / "index.json").write_text("{}")
    outside = root.parent / "keep.txt"
    outside.write_text("not the cache's")
    (root / "other-tool").mkdir()
    return {"content": content, "by_path": by_path, "leftover": leftover, "outside": outside,
            "other": root / "other-tool"}


def test_cache_lists_entries_with_size_last_use_and_total(root, capsys):
    paths = _fake_cache(root)
    assert main(["cache"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(root / "gguf")
    rows = {line.split()[0]: line for line in out[1:-1]}
    assert set(rows) == {paths["content"].name, paths["by_path"].name, paths["leftover"].name}
    assert "3.0 MiB" in rows[paths["content"].name] and "converted from m.gguf (sha256 bbbbbbbbbbbb...)" in rows[
        paths["content"].name]
    assert "keyed by path" in rows[paths["by_path"].name] and "interrupted" in rows[paths["leftover"].name]
    assert all("used just now" in row for row in rows.values())
    assert out[-1].startswith("3 entries, 5.0 MiB")


def test_empty_cache_says_so(root, capsys):
    assert main(["cache"]) == 0
    assert "empty" in capsys.readouterr().out


def test_clean_removes_entries_and_nothing_else(root, capsys):
    paths = _fake_cache(root)
    assert main(["cache", "--clean"]) == 0
    assert capsys.readouterr().out.startswith(f"removed 3 entries (5.0 MiB) from {root / 'gguf'}")
    assert sorted(p.name for p in (root / "gguf").iterdir()) == []
    assert paths["outside"].read_text() == "not the cache's" and paths["other"].is_dir()


def test_clean_keeps_an_entry_being_read(root, capsys):
    paths = _fake_cache(root)
    with cache.reading(paths["content"]):
        assert main(["cache", "--clean"]) == 0
        out = capsys.readouterr().out
    assert "removed 2 entries" in out and f"kept {paths['content'].name}" in out
    assert cache.is_complete(paths["content"]) and not paths["by_path"].exists()
    assert (root / "gguf" / "index.json").exists()  # something was kept: the index stays


def test_clean_keeps_an_entry_another_process_writes(root, tmp_path):
    paths = _fake_cache(root)
    holder = textwrap.dedent(f"""
        import sys
        from vocab_extend.locks import output_lock
        with output_lock({str(paths['by_path'])!r}):
            print("locked", flush=True)
            sys.stdin.readline()
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=env)
    try:
        assert child.stdout.readline().strip() == "locked"
        removed, kept = cache.clean()
    finally:
        child.communicate("\n", timeout=30)
    assert [e.path for e in kept] == [paths["by_path"]] and len(removed) == 2
    assert cache.is_complete(paths["by_path"]) and not paths["content"].exists()


def test_a_load_marks_the_last_use(root, tmp_path):
    folder = _entry(root / "gguf" / f"m-sha256-{'e' * 16}")
    (folder / "entry.json").write_text("{}")
    os.utime(folder / "entry.json", (1_000_000, 1_000_000))
    with cache.reading(folder):
        pass
    assert (folder / "entry.json").stat().st_mtime > 1_000_000
    assert [e.last_used for e in cache.list_entries()] == [(folder / "entry.json").stat().st_mtime]


@pytest.mark.slow
def test_a_gguf_model_is_converted_once_for_every_path(root, tmp_path, monkeypatch):
    """A pico GGUF loaded from two paths: one conversion, one cache entry, the same weights."""
    import shutil

    import torch
    from transformers import LlamaForCausalLM

    from test_export_gguf import _extended_model
    from vocab_extend.model import loading

    model_dir = _extended_model(tmp_path / "pico", "mistral-7b-v0.1", 32000, tied=False, pad=None)
    first = tmp_path / "a" / "pico.gguf"
    assert main(["export-gguf", "--model", str(model_dir), "--output", str(first), "--outtype", "f32"]) == 0
    second = tmp_path / "b" / "pico.gguf"
    second.parent.mkdir()
    shutil.copy(first, second)
    conversions = []
    real = loading.rebuild_plain
    monkeypatch.setattr(loading, "rebuild_plain", lambda m: conversions.append(1) or real(m))
    one, two = loading.load_model(str(first)), loading.load_model(str(second))
    assert len(conversions) == 1 and len(cache.list_entries()) == 1
    for name, tensor in one.state_dict().items():
        assert torch.equal(tensor, two.state_dict()[name])
    assert isinstance(one, LlamaForCausalLM)
