"""One writer per output folder: a second writer is refused in one sentence, a dead writer's lock is taken over."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
from pathlib import Path

import pytest

from conftest import SAMPLE_JA
from safety_tools import dead_pid, start_child
from vocab_extend import locks
from vocab_extend.atomic import leftovers
from vocab_extend.cli import main
from vocab_extend.errors import VocabExtendError
from vocab_extend.locks import OutputLock, holds_lock, lock_path, output_lock
from vocab_extend.staging import staging_folder


@pytest.fixture()
def child_procs():
    procs = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_lock_file_beside_the_target_records_pid_and_host_and_goes_away(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "x"  # its parent does not exist yet
    with output_lock(target):
        record = json.loads(lock_path(target).read_text(encoding="utf-8"))
        assert lock_path(target) == tmp_path / "runs" / ".x.lock"
        assert record == {"pid": os.getpid(), "host": socket.gethostname()}
        assert holds_lock(target)
    assert not lock_path(target).exists() and not holds_lock(target)
    assert not target.exists()


def test_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with output_lock(target):
        with output_lock(target):  # a command locks early, staging_folder locks again
            assert lock_path(target).exists()
        assert lock_path(target).exists() and holds_lock(target)
    assert not lock_path(target).exists()


def test_second_writer_gets_one_sentence_naming_the_first(tmp_path: Path, child_procs) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("theirs", encoding="utf-8")
    proc = start_child("lock", target, tmp_path / "held")
    child_procs.append(proc)
    expected = f"another vocab-extend process (pid {proc.pid}) is writing {target}: wait for it"
    with pytest.raises(VocabExtendError) as info:
        OutputLock(target).acquire()
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)
    with pytest.raises(VocabExtendError, match=r"another vocab-extend process \(pid \d+\)"):
        with staging_folder(target, overwrite=True) as tmp:
            (tmp / "keep.txt").write_text("mine", encoding="utf-8")
    assert (target / "keep.txt").read_text(encoding="utf-8") == "theirs"
    assert leftovers(target) == []


def test_lock_of_a_killed_writer_is_taken_over(tmp_path: Path, child_procs) -> None:
    target = tmp_path / "out"
    proc = start_child("lock", target, tmp_path / "held")
    child_procs.append(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(lock_path(target).read_text(encoding="utf-8"))["pid"] == proc.pid  # stale file left
    with output_lock(target) as lock:
        assert lock.took_over is not None and lock.took_over.pid == proc.pid
        assert json.loads(lock_path(target).read_text(encoding="utf-8"))["pid"] == os.getpid()
    assert not lock_path(target).exists()


def test_without_flock_the_lock_file_is_created_exclusively(tmp_path: Path, monkeypatch, child_procs) -> None:
    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(locks.fcntl, "flock", no_flock)
    target = tmp_path / "out"
    # a lock file left by a process that is gone: taken over
    stale = dead_pid()
    lock_path(target).write_text(json.dumps({"pid": stale, "host": socket.gethostname()}), encoding="utf-8")
    with output_lock(target) as lock:
        assert lock.took_over is not None and lock.took_over.pid == stale
        assert json.loads(lock_path(target).read_text(encoding="utf-8"))["pid"] == os.getpid()
    assert not lock_path(target).exists()
    # a lock file of a process that runs: refused
    proc = start_child("lock", tmp_path / "other", tmp_path / "held")  # any live process will do
    child_procs.append(proc)
    lock_path(target).write_text(json.dumps({"pid": proc.pid, "host": socket.gethostname()}), encoding="utf-8")
    with pytest.raises(VocabExtendError, match=rf"another vocab-extend process \(pid {proc.pid}\) is writing"):
        OutputLock(target).acquire()
    # ... and one from another machine is not judged from here
    lock_path(target).write_text(json.dumps({"pid": stale, "host": "elsewhere"}), encoding="utf-8")
    with pytest.raises(VocabExtendError, match=rf"\(pid {stale} on host elsewhere\)"):
        OutputLock(target).acquire()


@pytest.mark.slow
def test_two_merges_into_one_folder(capsys, tmp_path: Path, child_procs) -> None:
    out = tmp_path / "o"
    proc = start_child("lock", out, tmp_path / "held")
    child_procs.append(proc)
    code = main(["merge", "--corpus", str(SAMPLE_JA / "news.txt"), "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    expected = f"error: another vocab-extend process (pid {proc.pid}) is writing {out}: wait for it"
    assert [line for line in err.splitlines() if line.startswith("error:")][0].startswith(expected)
    assert not out.exists() and leftovers(out) == []
    proc.kill()
    proc.wait()
    assert main(["merge", "--corpus", str(SAMPLE_JA / "news.txt"), "--output-dir", str(out)]) == 0
    assert (out / "tokenizer.json").is_file() and not lock_path(out).exists() and leftovers(out) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a Linux /proc")
@pytest.mark.parametrize("target", ["/proc/vocab-extend-out", "/proc/vocab-extend/out"])
def test_a_location_where_no_file_can_be_made_is_one_sentence(target: str) -> None:
    with pytest.raises(VocabExtendError, match=r"^cannot (write|create) /proc.*choose another output location"):
        OutputLock(target).acquire()
