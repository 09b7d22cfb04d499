"""Output folders: inputs are never replaced, a dead writer's leftovers are swept, failures leave nothing."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest

from safety_tools import dead_pid, start_child
from vocab_extend import atomic
from vocab_extend.atomic import HOST_TAG, leftovers, sweep_leftovers
from vocab_extend.errors import StorageError, VocabExtendError
from vocab_extend.locks import lock_path
from vocab_extend.staging import check_output_dir, check_output_file, staging_folder


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Path]:
    corpus = tmp_path / "corpora" / "ja"
    corpus.mkdir(parents=True)
    (corpus / "a.txt").write_text("東京\n", encoding="utf-8")
    base = tmp_path / "base"
    base.mkdir()
    (base / "tokenizer.model").write_bytes(b"base model")
    return {"corpus": corpus, "base": base}


# ------------------------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("case, relation", [
    ("same", "is"), ("parent", "contains"), ("inside", "is inside"), ("symlink", "is"), ("file-parent", "contains"),
])
def test_overwrite_never_replaces_an_input(tmp_path: Path, inputs: dict[str, Path], case: str, relation: str) -> None:
    corpus, base = inputs["corpus"], inputs["base"]
    given: list = [("corpus", str(corpus)), ("base", str(base / "tokenizer.model"))]
    if case == "same":
        target = corpus
    elif case == "parent":
        target = tmp_path / "corpora"
    elif case == "inside":
        target = corpus / "out"
    elif case == "symlink":
        target = tmp_path / "link"
        target.symlink_to(corpus, target_is_directory=True)
    else:  # an input file inside the target
        target = base
        given = [("base", str(base / "tokenizer.model"))]
    before = _tree(tmp_path)
    label = "base" if case == "file-parent" else "corpus"
    sentence = rf"^output folder {target} {relation} the {label} .*, an input of this command \(.*\): choose"
    with pytest.raises(VocabExtendError, match=sentence):
        with staging_folder(target, overwrite=True, inputs=given) as tmp:
            (tmp / "x").write_text("new", encoding="utf-8")
    with pytest.raises(VocabExtendError, match=relation):
        check_output_dir(target, True, given)
    assert _tree(tmp_path) == before  # nothing deleted, nothing written


def test_unrelated_and_non_path_inputs_are_fine(tmp_path: Path, inputs: dict[str, Path]) -> None:
    given = [("corpus", str(inputs["corpus"])), ("corpus", "hf:wikimedia/wikipedia:20231101.ja"),
             ("base", "mistral-v1"), ("corpus", str(tmp_path / "corpora" / "*.txt"))]
    with staging_folder(tmp_path / "corpora-out", overwrite=False, inputs=given) as tmp:
        (tmp / "x").write_text("new", encoding="utf-8")
    assert (tmp_path / "corpora-out" / "x").is_file()
    # a glob input stands for its fixed folder: an output inside it is refused
    with pytest.raises(VocabExtendError, match="is inside the corpus"):
        check_output_dir(tmp_path / "corpora" / "out", False, given)


def test_output_files_are_checked_like_folders(tmp_path: Path, inputs: dict[str, Path]) -> None:
    corpus_file = inputs["corpus"] / "a.txt"
    with pytest.raises(VocabExtendError, match=rf"^output file {corpus_file} is the corpus .*: choose another"):
        check_output_file(corpus_file, [("corpus", str(corpus_file))])
    with pytest.raises(VocabExtendError, match=r"is inside the corpus .*become part of it"):
        check_output_file(inputs["corpus"] / "bpb.json", [("corpus", str(inputs["corpus"]))])
    with pytest.raises(VocabExtendError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(VocabExtendError, match="which is a file"):
        check_output_file(corpus_file / "bpb.json")
    check_output_file(tmp_path / "results" / "bpb.json", [("corpus", str(inputs["corpus"]))])
    assert not (tmp_path / "results").exists()


# ------------------------------------------------------------------------------------------- all or nothing


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_leaves_the_target_as_it_was(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old", encoding="utf-8")
    with pytest.raises(type(error)):
        with staging_folder(target, overwrite=True) as tmp:
            (tmp / "new.txt").write_text("new", encoding="utf-8")
            raise error
    assert _tree(target) == {"old.txt": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder, no lock file


@pytest.mark.parametrize("exchange_works", [True, False])
def test_overwrite_replaces_the_whole_folder(tmp_path: Path, monkeypatch, exchange_works: bool) -> None:
    calls = []
    real = atomic.exchange

    def exchange(a, b):
        calls.append((a, b))
        return real(a, b) if exchange_works else False

    monkeypatch.setattr(atomic, "exchange", exchange)
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old", encoding="utf-8")
    with staging_folder(target, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new", encoding="utf-8")
    assert _tree(target) == {"new.txt": b"new"} and len(calls) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_disk_full_inside_the_block_is_one_sentence(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old", encoding="utf-8")
    with pytest.raises(StorageError) as info:
        with staging_folder(target, overwrite=True) as tmp:
            (tmp / "weights.bin").write_bytes(b"w" * 3 * 1024 * 1024)
            raise OSError(errno.ENOSPC, "No space left on device")
    message = str(info.value)
    assert message.startswith(f"cannot write {target}: no space left on the device (at least 3.0 MiB needed, ")
    assert " free)" in message and "\n" not in message
    assert _tree(target) == {"old.txt": b"old"} and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("error, phrase", [
    (RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: \"No space "
                  "left on device\" })"), "no space left on the device"),
    (RuntimeError("write failed: Read-only file system"), "read-only file system"),
])
def test_library_errors_quoting_the_os_error_are_one_sentence(tmp_path: Path, error: Exception, phrase: str) -> None:
    with pytest.raises(StorageError, match=phrase):
        with staging_folder(tmp_path / "out", overwrite=False):
            raise error
    assert list(tmp_path.iterdir()) == []


def test_other_errors_stay_what_they_are(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        with staging_folder(tmp_path / "out", overwrite=False):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", "somewhere")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- leftovers


def _name(pid: int, suffix: str = "-abcd1234.tmp", name: str = "out") -> str:
    return f".{name}.{pid}-{HOST_TAG}{suffix}"


def test_sweep_removes_only_what_dead_writers_left(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    gone, alive = dead_pid(), os.getpid()
    (tmp_path / _name(gone)).mkdir()
    (tmp_path / _name(gone) / "part.bin").write_bytes(b"x")
    (tmp_path / _name(gone, ".old")).mkdir()  # target exists: the swap finished, .old is waste
    (tmp_path / _name(alive)).mkdir()  # a live writer's
    (tmp_path / ".out.abcd1234.tmp").mkdir()  # an earlier version's, no owner recorded
    (tmp_path / _name(gone, name="other")).mkdir()  # another target's
    swept = sweep_leftovers(target)
    assert sorted(p.name for p in swept) == sorted([_name(gone), _name(gone, ".old")])
    assert sorted(p.name for p in leftovers(target)) == sorted([_name(alive), ".out.abcd1234.tmp"])
    # the holder of the lock also clears names without an owner
    assert [p.name for p in sweep_leftovers(target, locked=True)] == [".out.abcd1234.tmp"]
    assert (tmp_path / _name(alive)).is_dir() and (tmp_path / _name(gone, name="other")).is_dir()


def test_an_interrupted_two_rename_swap_puts_the_previous_output_back(tmp_path: Path) -> None:
    target = tmp_path / "out"
    old = tmp_path / _name(dead_pid(), ".old")
    old.mkdir()
    (old / "tokenizer.json").write_text("previous", encoding="utf-8")
    with pytest.raises(VocabExtendError, match="already exists"):
        with staging_folder(target, overwrite=False):
            pass
    assert _tree(target) == {"tokenizer.json": b"previous"} and leftovers(target) == []


@pytest.mark.parametrize("how", ["kill", "term"])
def test_kill_during_staging_then_the_next_run_sweeps(tmp_path: Path, how: str) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old", encoding="utf-8")
    marker = tmp_path / "marker"
    proc = start_child("stage" if how == "kill" else "cli-stage", target, marker)
    staged = Path(marker.read_text())
    assert staged.is_dir() and staged.parent == tmp_path
    proc.send_signal(signal.SIGKILL if how == "kill" else signal.SIGTERM)
    code = proc.wait()
    assert _tree(target) == {"old.txt": b"old"}  # the target is never partial
    if how == "term":  # handled like Ctrl-C: nothing left behind at all
        assert code == 143 and proc.stderr.read().decode().splitlines()[-1] == "interrupted: no output was written"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["marker", "out"]
        return
    assert code == -signal.SIGKILL
    assert staged.is_dir() and lock_path(target).exists()  # kill -9 cannot be cleaned up after...
    with staging_folder(target, overwrite=True) as tmp:  # ... but the next write sweeps it
        (tmp / "new.txt").write_text("new", encoding="utf-8")
    assert _tree(target) == {"new.txt": b"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marker", "out"]
