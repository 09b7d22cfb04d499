"""The last tracebacks become one sentence, disk-full messages add up, and a full disk leaves no lock file.

- a JSON corpus nested too deeply for the parser (``merge``, ``measure``, ``evaluate-bpb``);
- ``export-gguf`` onto a full disk (numpy reports the short write without its errno);
- a GGUF without a tokenizer whose config does not validate, as ``merge --base`` or ``init-model --model``;
- the sizes a disk-full message states (needed > free, in one unit), checked with known numbers;
- ``measure`` and ``evaluate-bpb`` on a full disk leave no ``.lock`` file.

Each failure is exit status 2, one ``error:`` line, and nothing left where the output would have gone. A full
disk is a real tmpfs where mounting is allowed, and an ``OSError(ENOSPC)`` raised by a patched write elsewhere.
"""

from __future__ import annotations

import errno
import gc
import os
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLE_JA, pico_llama_config
from safety_tools import tmpfs
from vocab_extend import locks
from vocab_extend.cli import main
from vocab_extend.errors import StorageError, human_sizes, json_nesting, space_detail, storage_error
from vocab_extend.locks import OutputLock, lock_path

DEEP = 100_000


def one_sentence(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI; assert exit 2 with one ``error:`` line and no traceback; return that line."""
    code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err[-2000:]
    return errors[0]


@pytest.fixture(scope="module")
def extended(tmp_path_factory) -> dict[str, Path]:
    """A merged tokenizer (Mistral + Japanese) and a pico model extended to it."""
    import torch
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("robust")
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(pico_llama_config(32000)).save_pretrained(root / "pico")
    assert main(["merge", "--corpus", str(SAMPLE_JA), "--vocab-size", "1500", "--max-docs", "200",
                 "--output-dir", str(root / "tok")]) == 0
    assert main(["init-model", "--model", str(root / "pico"), "--tokenizer", str(root / "tok"),
                 "--output-dir", str(root / "model")]) == 0
    return {"tok": root / "tok", "model": root / "model"}


# ------------------------------------------------------------------------------------------- deep JSON


DEEP_FILES = {
    "array.json": ("[" * DEEP + "]" * DEEP, 1),
    "field.json": ('{"text": ' + "[" * DEEP + "]" * DEEP + "}", 1),
    "records.jsonl": ('{"text": "一行目"}\n\n{"text": "二行目"}\n{"text": ' + "[" * DEEP + "]" * DEEP + "}\n", 4),
}


@pytest.mark.parametrize("name", sorted(DEEP_FILES))
@pytest.mark.parametrize("command", ["merge", "measure", "evaluate-bpb"])
def test_deeply_nested_json_is_one_sentence_naming_the_line(capsys, tmp_path: Path, extended, command: str,
                                                            name: str) -> None:
    text, line = DEEP_FILES[name]
    corpus = tmp_path / name
    corpus.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    argv = {
        "merge": ["merge", "--corpus", str(corpus), "--output-dir", str(out)],
        "measure": ["measure", "--tokenizer", f"ext={extended['tok']}", "--corpus", f"ja={corpus}",
                    "--json", str(out)],
        "evaluate-bpb": ["evaluate-bpb", "--model", str(extended["model"]), "--corpus", f"ja={corpus}",
                         "--json", str(out)],
    }[command]
    message = one_sentence(capsys, argv)
    assert message.startswith(f"error: {corpus} line {line} nests JSON ") and "levels deep" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no output, no lock


def test_json_nesting_ignores_brackets_in_strings() -> None:
    assert json_nesting('{"a": "[[[[\\"[["}') == (1, 1)
    assert json_nesting('[\n[\n[1]],\n [[[[2]]]]]') == (5, 4)


# ------------------------------------------------------------------------------------------- GGUF export


def short_write(message: str):
    """A ``GGUFWriter.write_tensor_data`` that writes part of the first tensor, then fails as a full disk does."""
    def write(self, tensor, *args, **kwargs):
        self.fout[0].write(b"\0" * 1000)
        raise OSError(message) if "requested" in message else OSError(errno.ENOSPC, message)
    return write


@pytest.mark.parametrize("message", ["1050752 requested and 154096 written", "No space left on device"],
                         ids=["numpy short write", "ENOSPC"])
def test_export_onto_a_full_disk_is_one_sentence(capsys, tmp_path: Path, extended, monkeypatch, message) -> None:
    import gguf

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensor_data", short_write(message))
    out = tmp_path / "gguf"
    line = one_sentence(capsys, ["export-gguf", "--model", str(extended["model"]), "--output", str(out / "m.gguf")])
    assert line.startswith(f"error: cannot write {out}: no space left on the device (")
    assert list(out.iterdir()) == []  # no temporary file, no lock


def test_export_onto_a_real_full_disk(capsys, tmp_path: Path, extended) -> None:
    with tmpfs(tmp_path / "tiny", "1m") as disk:
        line = one_sentence(capsys, ["export-gguf", "--model", str(extended["model"]), "--output",
                                     str(disk / "m.gguf")])
        assert f"cannot write {disk}: no space left on the device (the disk filled up after " in line
        (written, unit), (free, free_unit) = stated(line.split("(the disk filled up after ")[1])
        assert unit == free_unit and free >= written  # the partial file's space is given back at once
        assert list(disk.iterdir()) == []
        gc.collect()  # the failed export's GGUF writer still holds the deleted file open: close it to unmount


# ------------------------------------------------------------------------------------------- GGUF base


def bad_gguf(path: Path, heads: int) -> Path:
    """A llama GGUF header without tokenizer keys; ``heads`` attention heads for a hidden size of 32."""
    import gguf

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_context_length(64)
    writer.add_embedding_length(32)
    writer.add_block_count(1)
    writer.add_feed_forward_length(64)
    if heads < 0:
        writer.add_int32("llama.attention.head_count", heads)  # add_head_count writes an unsigned number
    else:
        writer.add_head_count(heads)
    writer.add_head_count_kv(1)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tensor("token_embd.weight", np.zeros((10, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


GGUF_CASES = {"5 heads": (5, "not a multiple of the number of attention heads (5)"),
              "-3 heads": (-3, "not a multiple of the number of attention heads (-3)"),
              "0 heads": (0, "ZeroDivisionError")}


@pytest.mark.parametrize("case", sorted(GGUF_CASES))
def test_gguf_whose_config_does_not_validate_as_merge_base(capsys, tmp_path: Path, case: str) -> None:
    heads, reason = GGUF_CASES[case]
    base = bad_gguf(tmp_path / "bad.gguf", heads)
    line = one_sentence(capsys, ["merge", "--base", str(base), "--corpus", str(SAMPLE_JA),
                                 "--output-dir", str(tmp_path / "out")])
    assert line.startswith(f"error: could not read the tokenizer of {base} (") and reason in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gguf"]


@pytest.mark.parametrize("case", sorted(GGUF_CASES))
def test_gguf_whose_config_does_not_validate_as_init_model(capsys, tmp_path: Path, extended, case: str) -> None:
    heads, reason = GGUF_CASES[case]
    model = bad_gguf(tmp_path / "bad.gguf", heads)
    line = one_sentence(capsys, ["init-model", "--model", str(model), "--tokenizer", str(extended["tok"]),
                                 "--output-dir", str(tmp_path / "out")])
    assert line.startswith(f"error: could not load model '{model}' (") and reason in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gguf"]


def test_a_gguf_cut_short_is_one_sentence(capsys, tmp_path: Path) -> None:
    whole = bad_gguf(tmp_path / "whole.gguf", 4).read_bytes()
    base = tmp_path / "cut.gguf"
    base.write_bytes(whole[:24])
    line = one_sentence(capsys, ["merge", "--base", str(base), "--corpus", str(SAMPLE_JA),
                                 "--output-dir", str(tmp_path / "out")])
    assert "struct.error" in line and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- sizes


MIB = 2**20
SIZES = re.compile(r"([\d,.]+) (B|KiB|MiB|GiB)")


def stated(detail: str) -> list[tuple[float, str]]:
    return [(float(number.replace(",", "")), unit) for number, unit in SIZES.findall(detail)]


@pytest.mark.parametrize("needed, free", [(3 * MIB, 3 * MIB - 4096), (3 * MIB, 3 * MIB - 100), (MIB, 256 * 1024),
                                          (914, 0), (5 * MIB, 0), (2 * 1024**3, 2 * 1024**3 - MIB)])
def test_needed_above_free_is_visible_in_one_unit(needed: int, free: int) -> None:
    detail = space_detail(free, needed=needed)
    (need, need_unit), (have, have_unit) = stated(detail)
    assert " to write, only " in detail and need_unit == have_unit and need > have, detail


def test_what_was_written_when_the_size_is_not_known() -> None:
    detail = space_detail(3 * MIB + 4096, written=3 * MIB)  # was "at least 3.0 MiB needed, 3.0 MiB free"
    assert detail == " (the disk filled up after 3.000 MiB was written: more is needed than the 3.004 MiB free)"
    assert space_detail(0, written=MIB) == " (the disk filled up after 1.0 MiB was written: more is needed)"
    assert space_detail(None, written=MIB) == " (the disk filled up after 1.0 MiB was written: more is needed)"


@pytest.mark.parametrize("free, needed, written", [(5 * MIB, 914, None), (50 * 1024**3, None, 3 * MIB),
                                                   (50 * 1024**3, None, None)])
def test_more_free_than_needed_names_what_stood_in_the_way(free, needed, written) -> None:
    detail = space_detail(free, needed=needed, written=written)  # was "914 B needed, 5.0 MiB free"
    assert "refused with " in detail and "a quota, the file system's reserved space or other files" in detail


def test_free_space_alone() -> None:
    assert space_detail(1000) == " (1000 B free)" and space_detail(None) == ""


def test_human_sizes_keep_different_sizes_apart() -> None:
    assert human_sizes(3 * MIB, 3 * MIB) == ["3.0 MiB", "3.0 MiB"]
    assert human_sizes(3 * MIB, 3 * MIB - 100) == ["3,145,728 B", "3,145,628 B"]
    assert human_sizes(914, 100) == ["914 B", "100 B"]
    assert human_sizes(5 * MIB, 10) == ["5,242,880 B", "10 B"]  # 10 B is not 0.000 MiB


def test_storage_error_sentences(tmp_path: Path, monkeypatch) -> None:
    from vocab_extend import errors

    monkeypatch.setattr(errors, "free_space", lambda folder: 3 * MIB - 20_000)
    full = storage_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path, needed=3 * MIB)
    assert str(full) == (f"cannot write {tmp_path}: no space left on the device (3.00 MiB to write, only 2.98 MiB "
                         "free); free some space or choose another output location")
    quota = storage_error(OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path, needed=3 * MIB)
    assert str(quota).startswith(f"cannot write {tmp_path}: disk quota exceeded (3.0 MiB to write); ")
    short = storage_error(OSError("1050752 requested and 154096 written"), tmp_path, written=154096)
    assert isinstance(short, StorageError) and "no space left on the device" in str(short)
    assert storage_error(OSError("12 requested and 12 written elsewhere"), tmp_path) is None


# ------------------------------------------------------------------------------------------- locks


def disk_full_pwrite(monkeypatch) -> None:
    """The lock file is created (an inode), but recording its holder finds the disk full."""
    def pwrite(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(locks.os, "pwrite", pwrite)


@pytest.mark.parametrize("flock", [True, False], ids=["flock", "O_EXCL"])
def test_a_lock_the_disk_cannot_record_leaves_no_file(tmp_path: Path, monkeypatch, flock: bool) -> None:
    if not flock:
        monkeypatch.setattr(locks, "fcntl", None)
    disk_full_pwrite(monkeypatch)
    target = tmp_path / "out.json"
    with pytest.raises(StorageError, match="no space left on the device"):
        OutputLock(target).acquire()
    assert list(tmp_path.iterdir()) == [] and not locks.holds_lock(target)
    monkeypatch.undo()
    with OutputLock(target):  # and the next run takes it
        assert lock_path(target).exists()
    assert list(tmp_path.iterdir()) == []


def measure_and_bpb(extended: dict[str, Path], folder: Path) -> list[list[str]]:
    return [["measure", "--tokenizer", f"ext={extended['tok']}", "--corpus", f"ja={SAMPLE_JA}", "--max-docs", "5",
             "--json", str(folder / "measure.json")],
            ["evaluate-bpb", "--model", str(extended["model"]), "--corpus", f"ja={SAMPLE_JA}", "--max-docs", "2",
             "--json", str(folder / "bpb.json")]]


def test_measure_and_evaluate_bpb_on_a_full_disk_leave_no_lock_file(capsys, tmp_path: Path, extended,
                                                                     monkeypatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    disk_full_pwrite(monkeypatch)
    for argv in measure_and_bpb(extended, out):
        assert "no space left on the device" in one_sentence(capsys, argv)
        assert list(out.iterdir()) == []


def test_measure_and_evaluate_bpb_on_a_real_full_disk(capsys, tmp_path: Path, extended) -> None:
    with tmpfs(tmp_path / "tiny", "256k") as disk:
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # fill it to the last byte
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        for argv in measure_and_bpb(extended, disk):
            assert "no space left on the device" in one_sentence(capsys, argv)
            assert [p.name for p in disk.iterdir()] == ["filler"]


def test_every_reader_notes_the_lines_it_skips(tmp_path, capsys) -> None:
    """measure, evaluate-bpb, init-model and merge's eval corpora read through read_documents: a line that is
    not UTF-8 is left out with a note, as merge's training corpus does."""
    from vocab_extend.corpus import read_documents

    path = tmp_path / "mixed.txt"
    path.write_bytes("first line\n".encode() + b"\xff\xfe broken\n" + "third line\n".encode())
    assert read_documents(str(path), allow_skipped=True) == ["first line", "third line"]
    err = capsys.readouterr().err
    assert "note: skipped 1 lines of" in err and "not valid UTF-8" in err
