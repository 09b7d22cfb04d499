"""Pretraining when things go wrong: damaged checkpoints, a full disk, Ctrl-C while saving, shared caches.

The oracle is an uninterrupted run of the same config: a run that falls back to an older checkpoint, or
that is resumed after its disk filled up, must end with bit-identical weights and the same losses.
"""

from __future__ import annotations

import errno
import shutil
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from safety_tools import start_child, tmpfs
from test_pretrain import cache_dir, losses, pico_config  # noqa: F401  (cache_dir is a fixture)
from vocab_extend.errors import StorageError, VocabExtendError
from vocab_extend.locks import waiting_lock
from vocab_extend.pretrain import checkpoint as ckpt
from vocab_extend.pretrain import loop as loop_module
from vocab_extend.pretrain import pretrain
from vocab_extend.pretrain.outputs import read_metrics

SETTINGS = dict(stages="full:6", save_every=2, keep_checkpoints=3)


def run_config(cache: Path, out: Path, **extra):
    return pico_config(cache, out, **{**SETTINGS, **extra})


@pytest.fixture(scope="module")
def reference(cache_dir, tmp_path_factory) -> Path:  # noqa: F811
    """An uninterrupted run: checkpoints at steps 2, 4 and its last step, 6, then the final model."""
    out = tmp_path_factory.mktemp("reference") / "run"
    pretrain(run_config(cache_dir, out))
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["step-00000002", "step-00000004", "step-00000006"]
    return out


def same_model(a: Path, b: Path) -> bool:
    x, y = load_file(str(a / "model" / "model.safetensors")), load_file(str(b / "model" / "model.safetensors"))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def stopped_copy(reference: Path, tmp_path: Path) -> Path:
    """The reference run as if it had stopped after its checkpoint at step 4 (no final model yet)."""
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    shutil.rmtree(out / "model")
    shutil.rmtree(out / "checkpoints" / "step-00000006")
    return out


def eval_records(out: Path) -> list[dict]:
    return [r for r in read_metrics(out) if r["kind"] == "eval"]


@pytest.mark.parametrize("stopped", ["after evaluating", "while evaluating"])
def test_a_run_stopped_after_its_final_checkpoint_resumes_to_the_end_without_training(
        reference, cache_dir, tmp_path, monkeypatch, stopped):  # noqa: F811
    """Killed after the checkpoint at the last step, before model/ was written (say while comparing with
    the base model, or while evaluating at that step): --resume writes model/ and trains no step; the
    evaluation at the last step is made once, with the figures of the uninterrupted run."""
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    shutil.rmtree(out / "model")
    if stopped == "while evaluating":  # the log has no evaluation at step 6 yet
        kept = [line for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
                if '"kind": "eval"' not in line]
        (out / "metrics.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    assert [r["step"] for r in eval_records(reference)] == [6] and not (out / "model").exists()
    monkeypatch.setattr(loop_module.Trainer, "_step", lambda *args: pytest.fail("a step was trained again"))
    pretrain(run_config(cache_dir, out), resume=True)
    assert same_model(out, reference) and losses(out) == losses(reference)
    assert eval_records(out) == eval_records(reference)
    card = (out / "model" / "README.md").read_text(encoding="utf-8")  # its bits per byte included
    assert "bits per byte" in card.lower() and card == (reference / "model" / "README.md").read_text(encoding="utf-8")


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").glob(".tmp-*"))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path: Path) -> None:  # same size, one byte changed: only the hash can tell
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated shard": lambda c: _truncate(next(c.glob("*.distcp"))),
    "flipped byte in a shard": lambda c: _flip(next(c.glob("*.distcp"))),
    "truncated state.json": lambda c: _truncate(c / "state.json"),
    "truncated rng file": lambda c: _truncate(c / "rng-rank0.json"),
    "deleted scheduler": lambda c: (c / "scheduler.json").unlink(),
    "deleted DCP metadata": lambda c: (c / ".metadata").unlink(),
    "garbled manifest": lambda c: (c / "manifest.json").write_text("{not json", encoding="utf-8"),
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_resume_skips_a_damaged_checkpoint_and_matches_the_uninterrupted_run(
        reference, cache_dir, tmp_path, capsys, damage):  # noqa: F811
    out = stopped_copy(reference, tmp_path)
    assert ckpt.verify(out / "checkpoints" / "step-00000004") is None
    DAMAGE[damage](out / "checkpoints" / "step-00000004")
    assert ckpt.verify(out / "checkpoints" / "step-00000004") is not None
    pretrain(run_config(cache_dir, out), resume=True)
    err = capsys.readouterr().err
    assert "--resume: skipping checkpoint step-00000004: " in err
    assert "resuming from " in err and "(step 2)" in err
    assert same_model(out, reference)
    assert losses(out) == losses(reference)


def test_every_checkpoint_damaged_is_one_sentence(reference, cache_dir, tmp_path):  # noqa: F811
    out = stopped_copy(reference, tmp_path)
    for path in ckpt.list_checkpoints(out):
        _truncate(next(path.glob("*.distcp")))
    with pytest.raises(VocabExtendError, match=r"holds no checkpoint to resume from \(2 damaged checkpoint\(s\) "
                                               r"skipped\); pass --overwrite instead of --resume"):
        pretrain(run_config(cache_dir, out), resume=True)


def test_a_fresh_run_on_a_run_without_checkpoints_is_told_to_overwrite(cache_dir, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    (out).mkdir()
    (out / "config.yaml").write_text("model: pico\n", encoding="utf-8")  # as a run that failed at step 1 left
    with pytest.raises(VocabExtendError, match="it has no checkpoint to resume from: pass --overwrite"):
        pretrain(run_config(cache_dir, out))


def test_too_little_free_space_stops_before_a_checkpoint_and_resume_continues(
        reference, cache_dir, tmp_path, monkeypatch):  # noqa: F811
    out = tmp_path / "run"
    real = ckpt.free_bytes
    calls: list[int] = []

    def free(folder: Path) -> int:  # room for the first checkpoint, not for the second
        calls.append(1)
        return real(folder) if len(calls) == 1 else 1000

    monkeypatch.setattr(ckpt, "free_bytes", free)
    with pytest.raises(StorageError) as info:
        pretrain(run_config(cache_dir, out))
    message = str(info.value)
    assert message.startswith(f"cannot write checkpoint step 4 in {out / 'checkpoints'}: it needs about ")
    assert "1000 B is free (the last checkpoint, step-00000002, is kept)" in message
    assert "\n" not in message
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["step-00000002"] and leftovers(out) == []
    monkeypatch.setattr(ckpt, "free_bytes", real)
    pretrain(run_config(cache_dir, out), resume=True)
    assert same_model(out, reference) and losses(out) == losses(reference)


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk full", "ctrl-c"])
def test_a_save_that_fails_midway_leaves_no_partial_checkpoint(cache_dir, tmp_path, monkeypatch, error):  # noqa: F811
    out = tmp_path / "run"
    original = ckpt.write_manifest

    def failing(staging: Path) -> int:
        if staging.name.endswith("00000004"):
            (staging / "part").write_bytes(b"x" * 1000)
            raise error
        return original(staging)

    monkeypatch.setattr(ckpt, "write_manifest", failing)
    expected = StorageError if isinstance(error, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as info:
        pretrain(run_config(cache_dir, out))
    if expected is StorageError:
        assert str(info.value).startswith(f"cannot write {out / 'checkpoints'}: no space left on the device")
        assert "the last checkpoint, step-00000002, is kept" in str(info.value)
    assert leftovers(out) == [] and [p.name for p in ckpt.list_checkpoints(out)] == ["step-00000002"]


def test_a_partial_checkpoint_left_by_a_killed_run_is_swept_on_resume(reference, cache_dir, tmp_path):  # noqa: F811
    out = stopped_copy(reference, tmp_path)
    shutil.rmtree(out / "checkpoints" / "step-00000004")
    partial = out / "checkpoints" / ".tmp-step-00000004"  # what kill -9 during the save at step 4 leaves
    partial.mkdir()
    (partial / "__0_0.distcp").write_bytes(b"half")
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["step-00000002"]
    pretrain(run_config(cache_dir, out), resume=True)
    assert leftovers(out) == [] and same_model(out, reference)


def test_checkpoints_kept_never_exceed_keep_checkpoints(cache_dir, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    pretrain(run_config(cache_dir, out, stages="full:9", keep_checkpoints=2))
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["step-00000008", "step-00000009"]  # 9: the last step
    assert all(ckpt.verify(p) is None for p in ckpt.list_checkpoints(out))


def test_checkpoint_at_end_false_skips_the_last_steps_checkpoint(cache_dir, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    pretrain(run_config(cache_dir, out, stages="full:3", checkpoint_at_end=False))
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["step-00000002"] and (out / "model").is_dir()


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 4 MiB tmpfs: room for the run's config and metrics, not for a checkpoint of the pico model."""
    with tmpfs(tmp_path / "tiny", "4m") as folder:
        yield folder


def test_a_real_full_disk_is_one_sentence_and_leaves_nothing_partial(cache_dir, tiny_disk, monkeypatch):  # noqa: F811
    out = tiny_disk / "run"
    with pytest.raises(StorageError, match=r"cannot write checkpoint step 2 in .*: it needs about .* is free"):
        pretrain(run_config(cache_dir, out))
    assert leftovers(out) == [] and ckpt.list_checkpoints(out) == []
    # past the free-space check (as when another job fills the disk meanwhile): the write itself fails
    monkeypatch.setattr(ckpt, "free_bytes", lambda folder: 1 << 40)
    with pytest.raises(StorageError, match=r"no space left on the device"):
        pretrain(run_config(cache_dir, out, overwrite=True))
    assert leftovers(out) == [] and ckpt.list_checkpoints(out) == []


def test_a_shared_cache_entry_waits_for_its_builder(tmp_path: Path) -> None:
    """The packed-data and merged-tokenizer caches: a second run waits for the first builder, then uses
    what it built, instead of building the same entry at the same time."""
    target = tmp_path / "cache" / "entry"
    holder = start_child("lock", target, tmp_path / "held")
    got = threading.Event()
    said: list[str] = []

    def second() -> None:
        with waiting_lock(target, say=said.append, poll_s=0.05):
            got.set()

    thread = threading.Thread(target=second)
    thread.start()
    try:
        assert not got.wait(1.0), "the lock was taken while another process held it"
        assert said and said[0].startswith("waiting: another vocab-extend process (pid ")
    finally:
        holder.kill()
        holder.wait()
    thread.join(60)
    assert got.is_set() and len(said) == 1


class Payload:
    """What a hostile checkpoint could hold: unpickling it runs a shell command that writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _schedule_payload(checkpoint: Path, marker: Path) -> None:
    (checkpoint / "scheduler.json").unlink()
    torch.save(Payload(marker), checkpoint / "scheduler.pt")  # the name older checkpoints used


def _metadata_payload(checkpoint: Path, marker: Path) -> None:
    import pickle

    (checkpoint / ".metadata").write_bytes(pickle.dumps(Payload(marker)))


def _rng_payload(checkpoint: Path, marker: Path) -> None:
    (checkpoint / "rng-rank0.json").unlink()
    torch.save({"python": Payload(marker)}, checkpoint / "rng-rank0.pt")


@pytest.mark.parametrize("craft", [_schedule_payload, _metadata_payload, _rng_payload],
                         ids=["scheduler.pt", ".metadata", "rng-rank0.pt"])
def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(reference, cache_dir, tmp_path, craft):  # noqa: F811
    """A checkpoint crafted with a pickle payload, its manifest rewritten to match (so it verifies), as one
    found on shared storage: --resume refuses it in one sentence before writing anything, and the payload
    never runs."""
    out = stopped_copy(reference, tmp_path)
    marker = tmp_path / "payload-ran"
    checkpoint = out / "checkpoints" / "step-00000004"
    craft(checkpoint, marker)
    (checkpoint / "manifest.json").unlink()
    ckpt.write_manifest(checkpoint)
    assert ckpt.verify(checkpoint) is None
    before = (out / "metrics.jsonl").read_bytes()
    with pytest.raises(VocabExtendError, match="could run code when loaded, so it is not loaded") as info:
        pretrain(run_config(cache_dir, out), resume=True)
    assert "\n" not in str(info.value)
    assert not marker.exists()
    assert (out / "metrics.jsonl").read_bytes() == before and not (out / "model").exists()


def test_a_checkpoint_in_the_older_pt_format_still_resumes(reference, cache_dir, tmp_path):  # noqa: F811
    """Schedule and RNG states as ``.pt`` files of plain data (what earlier versions wrote) are read with
    ``weights_only=True`` and resume to the same model."""
    import json
    import random

    import numpy as np

    out = stopped_copy(reference, tmp_path)
    checkpoint = out / "checkpoints" / "step-00000004"
    schedule = json.loads((checkpoint / "scheduler.json").read_text(encoding="utf-8"))
    torch.save(schedule, checkpoint / "scheduler.pt")
    rng = json.loads((checkpoint / "rng-rank0.json").read_text(encoding="utf-8"))
    random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
    name, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    from vocab_extend.pretrain.safe_state import _tensor

    torch.save({"python": random.getstate(), "numpy": np.random.get_state(), "torch": _tensor(rng["torch"])},
               checkpoint / "rng-rank0.pt")
    for name in ("scheduler.json", "rng-rank0.json", "manifest.json"):
        (checkpoint / name).unlink()
    ckpt.write_manifest(checkpoint)
    pretrain(run_config(cache_dir, out), resume=True)
    assert same_model(out, reference) and losses(out) == losses(reference)
