"""Files and folders written all at once; a full disk, a read-only place or no permission is one sentence."""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path

import pytest

from safety_tools import dead_pid, tmpfs, try_mount, umount
from vocab_extend import atomic, staging
from vocab_extend.atomic import HOST_TAG, atomic_write_bytes, atomic_write_json, atomic_write_text, leftovers
from vocab_extend.errors import StorageError
from vocab_extend.locks import OutputLock
from vocab_extend.staging import check_output_dir, staging_folder


def test_atomic_write_replaces_and_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    atomic_write_text(path, "first\n")
    os.chmod(path, 0o640)
    atomic_write_json(path, {"lang": "日本語", "tokens": 3})
    assert json.loads(path.read_text(encoding="utf-8")) == {"lang": "日本語", "tokens": 3}
    assert "日本語" in path.read_text(encoding="utf-8")  # readable, not \\u escapes
    assert (path.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_json_never_gets_nan(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"loss": 1.0})
    with pytest.raises(ValueError):
        atomic_write_json(path, {"loss": math.nan})
    assert json.loads(path.read_text(encoding="utf-8")) == {"loss": 1.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_disk_full_mid_write_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "bpb.json"
    path.write_text("old", encoding="utf-8")
    real_write = os.write
    calls = []

    def write(fd: int, data) -> int:  # the first chunk lands, then the disk is full
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data[: len(data) // 2]))

    monkeypatch.setattr(atomic.os, "write", write)
    with pytest.raises(StorageError) as info:
        atomic_write_bytes(path, b"x" * 4096)
    assert str(info.value).startswith(f"cannot write {tmp_path}: no space left on the device (4.0 KiB to write, ")
    assert path.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bpb.json"]


def test_ctrl_c_mid_write_leaves_the_old_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.json"
    path.write_text("old", encoding="utf-8")

    def fsync(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "new")
    assert path.read_text(encoding="utf-8") == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_no_permission_is_one_sentence(tmp_path: Path, monkeypatch) -> None:
    def mkstemp(**kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    with pytest.raises(StorageError, match=rf"cannot write {tmp_path}: permission denied; choose"):
        atomic_write_text(tmp_path / "a.json", "x")


def test_a_dead_writers_temp_file_is_swept_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    stale = tmp_path / f".report.md.{dead_pid()}-{HOST_TAG}-k2j4h5g6.tmp"
    stale.write_text("half", encoding="utf-8")
    atomic_write_text(path, "# report\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"] and leftovers(path) == []


def test_read_only_location_found_before_work(tmp_path: Path, monkeypatch) -> None:
    """Without a read-only mount (not root, or a strict container): the check reads os.access/statvfs."""
    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(staging.os, "access", lambda path, mode: False)
    monkeypatch.setattr(staging.os, "statvfs", lambda path: ReadOnly())
    with pytest.raises(StorageError, match=rf"cannot write {tmp_path}: it is on a read-only file system"):
        check_output_dir(tmp_path / "new" / "out", False)


# ------------------------------------------------------------------------------------------- real mounts


@pytest.fixture()
def read_only(tmp_path: Path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "existing").mkdir()
    if not (try_mount(["--bind", str(folder), str(folder)])
            and try_mount(["-o", "remount,bind,ro", str(folder)])):
        umount(folder)
        pytest.skip("cannot make a read-only bind mount here")
    try:
        yield folder
    finally:
        umount(folder)


def test_read_only_mount(read_only: Path) -> None:
    target = read_only / "out"
    with pytest.raises(StorageError, match=rf"cannot write {read_only}: it is on a read-only file system"):
        check_output_dir(target, False)
    with pytest.raises(StorageError, match="read-only file system"):
        OutputLock(target).acquire()
    with pytest.raises(StorageError, match="read-only file system"):
        atomic_write_text(read_only / "existing" / "a.json", "{}")
    assert sorted(p.name for p in read_only.iterdir()) == ["existing"]


@pytest.fixture()
def tiny_disk(tmp_path: Path):
    with tmpfs(tmp_path / "tiny", "256k") as folder:
        yield folder


def test_full_tmpfs(tiny_disk: Path) -> None:
    with pytest.raises(StorageError, match=rf"cannot write {tiny_disk}: no space left .*1.0 MiB to write"):
        atomic_write_bytes(tiny_disk / "big.bin", b"x" * 1024 * 1024)
    with pytest.raises(StorageError, match=rf"cannot write {tiny_disk / 'out'}: no space left .*free\)"):
        with staging_folder(tiny_disk / "out", overwrite=False) as tmp:
            (tmp / "model.safetensors").write_bytes(b"x" * 1024 * 1024)
    assert list(tiny_disk.iterdir()) == []  # nothing partial, no temp, no lock


def test_merge_into_a_read_only_location_is_one_sentence_before_training(capsys, read_only: Path) -> None:
    from conftest import SAMPLE_JA
    from vocab_extend.cli import main

    code = main(["merge", "--corpus", str(SAMPLE_JA / "news.txt"), "--output-dir", str(read_only / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.splitlines() == [f"error: cannot write {read_only}: it is on a read-only file system; "
                                              "choose a writable output location"]
