"""Streamed training data resumes in O(1): it seeks to the checkpoint's position instead of re-reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_pretrain import cache_dir, crash_then_resume, losses, pico_config  # noqa: F401
from vocab_extend.errors import VocabExtendError
from vocab_extend.pretrain import pretrain
from vocab_extend.pretrain import stream as stream_module


@pytest.fixture
def reads(monkeypatch):
    """Every document the streams read, as (file name, byte offset after it), per StreamedBlocks instance."""
    log: list[list] = []  # [instance, [(file, offset), ...]] in order of creation
    init, original = stream_module.StreamedBlocks.__init__, stream_module.StreamedBlocks._file_documents

    def creating(self, *args, **kwargs):
        init(self, *args, **kwargs)
        log.append([self, []])

    def recording(self, name, pos):
        entry = next(e for e in log if e[0] is self)
        for text, after in original(self, name, pos):
            entry[1].append((Path(name).name, after))
            yield text, after

    monkeypatch.setattr(stream_module.StreamedBlocks, "__init__", creating)
    monkeypatch.setattr(stream_module.StreamedBlocks, "_file_documents", recording)
    return log


def settings(cache_dir, out, **extra):
    data = dict(streaming=True, shuffle_buffer=40, stages="full:22", save_every=20, batch_size=4)
    return pico_config(cache_dir, out, **{**data, **extra})


def test_streamed_resume_seeks_and_reads_nothing_twice(cache_dir, tmp_path, monkeypatch, reads):
    full = tmp_path / "full"
    pretrain(settings(cache_dir, full))
    expected = losses(full)
    cut = tmp_path / "cut"
    crash_then_resume(settings(cache_dir, cut), 21, monkeypatch)  # crash after the checkpoint at step 20
    assert losses(cut) == expected  # exactly: the stream, its buffer and its tokens carried over
    with np.load(cut / "checkpoints" / "step-00000020" / stream_module.STATE_FILE) as data:
        meta = json.loads(bytes(data["0/meta"]).decode("utf-8"))
    assert meta["cursor"] == 20 * 4 and meta["position"]["epoch"] == 0
    before, after = reads[-2][1], reads[-1][1]  # the crashed run, the resumed run
    position = meta["position"]
    order = [Path(f).name for f in reads[-1][0].files[position["spec"]]]
    here = (position["file"], position["offset"])
    # the resumed run reads only what comes after the checkpoint's place, and far less than the run before it
    assert all((order.index(name), offset) > here for name, offset in after)
    assert len(before) > 250 and len(after) < len(before) / 5


def test_a_streamed_checkpoint_without_its_position_is_one_sentence(cache_dir, tmp_path, monkeypatch):
    import shutil

    import vocab_extend.pretrain.checkpoint as checkpoint

    out = tmp_path / "run"
    with monkeypatch.context() as patch:  # a checkpoint written without the stream's position
        patch.setattr(checkpoint, "save_stream_state", lambda blocks, folder: None)
        pretrain(settings(cache_dir, out, stages="full:3", save_every=2))
    shutil.rmtree(out / "model")  # as if the run had stopped after its checkpoint at step 2
    with pytest.raises(VocabExtendError, match="holds no stream position") as info:
        pretrain(settings(cache_dir, out, stages="full:3", save_every=2), resume=True)
    assert "\n" not in str(info.value)


def test_max_docs_applies_to_each_eval_corpus(tmp_path) -> None:
    """Two eval corpora under --max-docs each give their own documents (a count shared across corpora once
    left the second one empty)."""
    from vocab_extend.pretrain.data import DataConfig, eval_documents
    from vocab_extend.pretrain.evaluation import EvalConfig

    for name in ("a", "b"):
        (tmp_path / f"{name}.txt").write_text("".join(f"{name} line {i}\n" for i in range(5)), encoding="utf-8")
    data = DataConfig(train=[], max_docs=3, heldout_fraction=0.0)
    evaluation = EvalConfig(corpora={"a": str(tmp_path / "a.txt"), "b": str(tmp_path / "b.txt")})
    docs = eval_documents(data, evaluation)
    assert docs == {"a": ["a line 0", "a line 1", "a line 2"], "b": ["b line 0", "b line 1", "b line 2"]}
