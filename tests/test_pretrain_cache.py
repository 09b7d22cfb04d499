"""The packed-data cache verifies its entries: a damaged entry is noted, rebuilt and never trained on; records
that are not valid UTF-8 text are noted as merge notes them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from test_pretrain import cache_dir, losses, pico_config  # noqa: F401  (cache_dir is a fixture)
from vocab_extend.pretrain import pretrain
from vocab_extend.pretrain import cache as cache_module
from vocab_extend.pretrain.cache import RECORD


def _private_cache(cache_dir: Path, tmp_path: Path) -> tuple[Path, Path]:  # noqa: F811
    """A clean run on the shared cache, then a copy of that cache to damage; (clean run, copied entry)."""
    clean = tmp_path / "clean"
    pretrain(pico_config(cache_dir, clean))
    private = tmp_path / "cache"
    shutil.copytree(cache_dir, private)
    entries = [p.parent for p in private.glob(f"*/{RECORD}")]
    assert len(entries) == 1
    return clean, entries[0]


def _rerun(private: Path, out: Path, capfd) -> str:
    cache_module._VERIFIED.clear()  # as a new process: the entry is hashed on its first use
    capfd.readouterr()
    pretrain(pico_config(private.parent, out))
    return capfd.readouterr().err


def test_bit_rot_in_a_cached_entry_is_noted_rebuilt_and_never_trained_on(cache_dir, tmp_path, capfd):  # noqa: F811
    clean, entry = _private_cache(cache_dir, tmp_path)
    arrow = next(entry.glob("*.arrow"))
    data = bytearray(arrow.read_bytes())
    # the token ids are int32 in one buffer: find the first rows and nudge 1,024 ids by one, the size unchanged
    import datasets

    first = np.asarray(datasets.load_from_disk(str(entry))[:40]["input_ids"], dtype=np.int32).tobytes()
    start = bytes(data).find(first)
    assert start > 0
    ids = np.frombuffer(bytes(data[start:start + 4 * 1024]), dtype=np.int32).copy()
    ids += np.where(ids % 2 == 0, 1, -1).astype(np.int32)
    data[start:start + 4 * 1024] = ids.tobytes()
    arrow.write_bytes(bytes(data))
    err = _rerun(entry, tmp_path / "rot", capfd)
    notes = [line for line in err.splitlines() if line.startswith("note: the packed-data cache entry")]
    assert len(notes) == 1 and "does not match its recorded hash" in notes[0] and notes[0].endswith(": rebuilt")
    assert losses(tmp_path / "rot") == losses(clean)
    assert "rebuilt" not in _rerun(entry, tmp_path / "again", capfd)  # the rebuilt entry verifies


@pytest.mark.parametrize("damage", ["truncate", "record"])
def test_a_truncated_entry_or_a_lost_record_is_rebuilt(cache_dir, tmp_path, capfd, damage):  # noqa: F811
    clean, entry = _private_cache(cache_dir, tmp_path)
    if damage == "truncate":
        arrow = next(entry.glob("*.arrow"))
        arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    else:
        (entry / RECORD).write_text("{not json", encoding="utf-8")
    err = _rerun(entry, tmp_path / "rerun", capfd)
    assert "Traceback" not in err
    reason = "holds" if damage == "truncate" else "missing or unreadable"
    assert any(line.startswith("note: the packed-data cache entry") and reason in line and line.endswith("rebuilt")
               for line in err.splitlines())
    assert losses(tmp_path / "rerun") == losses(clean)
    assert json.loads((entry / RECORD).read_text(encoding="utf-8"))["files"]


def test_records_that_are_not_utf8_text_are_noted(cache_dir, tmp_path, capfd):  # noqa: F811
    corpus = tmp_path / "ja.jsonl"
    lines = [json.dumps({"text": f"日本語の文書です。番号は{i}です。" * 3}, ensure_ascii=False) for i in range(60)]
    lines.insert(5, '{"text": "lone \\ud800 surrogate"}')
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    capfd.readouterr()
    pretrain(pico_config(cache_dir, tmp_path / "run", train=[f"ja={corpus}"], heldout_fraction=0.0,
                         stages="full:1"))
    err = capfd.readouterr().err
    assert "note: skipped 1 training corpus lines or records that are not valid UTF-8 text" in err
    pretrain(pico_config(cache_dir, tmp_path / "stream", train=[f"ja={corpus}"], heldout_fraction=0.0,
                         stages="full:1", streaming=True, shuffle_buffer=8))
    assert "note: skipping training lines or records that are not valid UTF-8 text" in capfd.readouterr().err
