"""``pretrain --continue-from RUN``: a finished pico run goes on with more steps or a stage, into a new folder.

The oracle is one longer run of the same config with a constant schedule (``min_lr_ratio: 1`` after a
one-step warmup): the continued run's losses and final weights must equal it exactly, and RUN's files must
be byte for byte what they were. RUN has a checkpoint at its last step, so the continued run trains only the
new steps (counted where the optimiser steps, not from the log, which starts with RUN's records); a run
without one (an older run, or ``checkpoint_at_end: false``) trains the steps after its last checkpoint again.
The refusals and the messages that name ``--continue-from`` need no training.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT
from test_pretrain import cache_dir, losses, pico_config  # noqa: F401  (cache_dir is a fixture)
from vocab_extend.errors import VocabExtendError
from vocab_extend.pretrain import loop as loop_module
from vocab_extend.pretrain import pretrain
from vocab_extend.pretrain.outputs import read_metrics

# A constant learning rate after one warmup step: the schedule does not depend on the run's length.
CONSTANT = dict(stages="full:100", max_steps=4, save_every=2, lr=3e-3, min_lr_ratio=1.0, warmup_steps=1)


def config(cache: Path, out: Path, **extra):
    return pico_config(cache, out, **{**CONSTANT, **extra})


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "model" / "model.safetensors")


@pytest.fixture
def trained(monkeypatch) -> list[int]:
    """The steps (counted from 1) at which the runs of a test step their optimiser."""
    steps: list[int] = []
    original = loop_module.Trainer._step

    def counting(self, model, params, optimizer, scheduler, step, *args):
        steps.append(step + 1)
        return original(self, model, params, optimizer, scheduler, step, *args)

    monkeypatch.setattr(loop_module.Trainer, "_step", counting)
    return steps


@pytest.fixture(scope="module")
def finished(cache_dir, tmp_path_factory) -> Path:  # noqa: F811
    """A finished 4-step run: checkpoints at step 2 and at its last step, 4."""
    out = tmp_path_factory.mktemp("finished") / "run"
    pretrain(config(cache_dir, out))
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step-00000002", "step-00000004"]
    return out


@pytest.fixture(scope="module")
def longer(cache_dir, tmp_path_factory) -> Path:  # noqa: F811
    """The oracle: the same run planned for 8 steps from the start."""
    out = tmp_path_factory.mktemp("longer") / "run"
    pretrain(config(cache_dir, out, max_steps=8))
    return out


def test_four_steps_and_four_more_equal_one_eight_step_run(finished, longer, cache_dir, tmp_path, trained,
                                                           capsys):  # noqa: F811
    before = snapshot(finished)
    out = tmp_path / "more"
    pretrain(config(cache_dir, out, max_steps=8), continue_from=finished)
    assert trained == [5, 6, 7, 8]  # from RUN's checkpoint at its last step: nothing trained again
    assert "from its checkpoint at its last step, step-00000004 (step 4; no step is trained again)" in \
        capsys.readouterr().err
    assert len(losses(longer)) == 8 and losses(out) == losses(longer)
    assert losses(out)[:4] == losses(finished)  # the first four are RUN's
    assert [r["step"] for r in read_metrics(out) if r["kind"] == "train"] == list(range(1, 9))
    expected = weights(longer)
    assert all(torch.equal(tensor, expected[name]) for name, tensor in weights(out).items())
    assert snapshot(finished) == before  # RUN is only read


def test_a_run_without_a_checkpoint_at_its_end_trains_the_steps_after_its_last_again(
        finished, longer, cache_dir, tmp_path, trained, capsys):  # noqa: F811
    """An older run (or one with checkpoint_at_end false) has its last checkpoint before its last step."""
    older = tmp_path / "older"
    shutil.copytree(finished, older)
    shutil.rmtree(older / "checkpoints" / "step-00000004")
    out = tmp_path / "more"
    pretrain(config(cache_dir, out, max_steps=8), continue_from=older)
    assert trained == [3, 4, 5, 6, 7, 8]
    err = capsys.readouterr().err
    assert "from its last checkpoint, step-00000002 (step 2; it has none at its last step, 4, so steps 3-4 are " \
        "trained again)" in err
    assert losses(out) == losses(longer)
    assert [r["step"] for r in read_metrics(out) if r["kind"] == "train"] == list(range(1, 9))
    expected = weights(longer)
    assert all(torch.equal(tensor, expected[name]) for name, tensor in weights(out).items())


def test_a_stage_added_after_the_last_one(finished, cache_dir, tmp_path, trained):  # noqa: F811
    """RUN's stage ran its 4 steps; a new stage follows it, as in one run planned with both stages."""
    one = tmp_path / "one"
    pretrain(config(cache_dir, one, stages="full:4,new-rows:2", max_steps=None))
    trained.clear()
    out = tmp_path / "more"
    pretrain(config(cache_dir, out, stages="full:4,new-rows:2", max_steps=None), continue_from=finished)
    assert trained == [5, 6]
    assert len(losses(one)) == 6 and losses(out) == losses(one)
    expected = weights(one)
    assert all(torch.equal(tensor, expected[name]) for name, tensor in weights(out).items())


def test_a_run_that_ended_in_a_split_rows_stage_goes_on_with_another(cache_dir, tmp_path, trained):  # noqa: F811
    """RUN's checkpoint at its last step holds the new-rows stage's own shape of the model (split rows) and
    its optimiser: the continued run ends that stage from it, then starts the next as one run does."""
    stages = "new-rows:2,full:2"
    one, run, out = tmp_path / "one", tmp_path / "run", tmp_path / "more"
    pretrain(config(cache_dir, one, stages=stages, max_steps=None))
    pretrain(config(cache_dir, run, stages="new-rows:2", max_steps=None))
    trained.clear()
    pretrain(config(cache_dir, out, stages=stages, max_steps=None), continue_from=run)
    assert trained == [3, 4]
    assert len(losses(one)) == 4 and losses(out) == losses(one)
    expected = weights(one)
    assert all(torch.equal(tensor, expected[name]) for name, tensor in weights(out).items())


def test_the_command_line_takes_runs_config_and_warns_of_nothing(finished, longer, tmp_path):
    """Without --config the run's own config.yaml is read; the continued run saves and loads checkpoints, and
    its stderr holds no library warning (DCP's single-process warning is silenced where it is raised)."""
    out = tmp_path / "more"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, "-m", "vocab_extend.cli", "pretrain", "--continue-from", str(finished),
                           "--max-steps", "8", "--output-dir", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    assert f"continuing {finished}" in done.stderr
    assert losses(out) == losses(longer)
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step-00000006", "step-00000008"]


# -------------------------------------------------------------------------------------------- refusals


def refused(cache: Path, run: Path, out: Path, **extra) -> str:
    with pytest.raises(VocabExtendError) as info:
        pretrain(config(cache, out, **{"max_steps": 8, **extra}), continue_from=run)
    return str(info.value)


def test_what_is_not_a_finished_run_is_refused(finished, cache_dir, tmp_path):  # noqa: F811
    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    assert "is not a pretraining run" in refused(cache_dir, other, tmp_path / "a")
    assert "does not exist" in refused(cache_dir, tmp_path / "missing", tmp_path / "a")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(finished, unfinished)
    shutil.rmtree(unfinished / "model")  # as a run stopped after its last checkpoint, before model/, leaves it
    message = refused(cache_dir, unfinished, tmp_path / "a")
    assert "has not finished" in message and f"--resume --output-dir {unfinished}" in message
    bare = tmp_path / "bare"
    pretrain(config(cache_dir, bare, save_every=0, max_steps=1))
    message = refused(cache_dir, bare, tmp_path / "a")
    assert "holds no checkpoint to continue from (it ran with save_every 0)" in message
    assert f"--model {bare / 'model'}" in message
    assert not (tmp_path / "a").exists()


def test_settings_that_would_change_the_losses_are_refused(finished, cache_dir, tmp_path):  # noqa: F811
    before = snapshot(finished)
    out = tmp_path / "a"
    assert "ran with lr 0.003, not 0.001" in refused(cache_dir, finished, out, lr=1e-3)
    assert "ran with batch_size 4, not 8" in refused(cache_dir, finished, out, batch_size=8)
    message = refused(cache_dir, finished, out, stages="lora:100")
    assert "ran the stages full:4" in message and "not lora:8" in message
    message = refused(cache_dir, finished, out, stages=[{"name": "full", "steps": 100, "lr": 1e-3}])
    assert message.endswith("stage 1 (full) ran with lr None, not 0.001")  # the stage's own lr is a change
    message = refused(cache_dir, finished, out, max_steps=4)
    assert "ran 4 steps and this run has 4" in message and "--max-steps" in message
    assert "is the run it continues" in refused(cache_dir, finished, finished)
    assert "is inside the run it continues" in refused(cache_dir, finished, finished / "more")
    assert "holds the run it continues" in refused(cache_dir, finished, finished.parent, overwrite=True)
    with pytest.raises(VocabExtendError, match="give one of them"):
        pretrain(config(cache_dir, out, max_steps=8), resume=True, continue_from=finished)
    assert snapshot(finished) == before and not out.exists()


# -------------------------------------------------------------------------- messages naming the way on


def test_resume_on_a_finished_run_says_how_to_continue_it(finished, cache_dir, tmp_path):  # noqa: F811
    with pytest.raises(VocabExtendError) as info:
        pretrain(config(cache_dir, finished), resume=True)
    message = str(info.value)
    assert "has finished" in message and f"--continue-from {finished} --output-dir" in message
    assert "--overwrite" in message


def test_a_new_run_into_a_finished_run_says_it_has_finished(finished, cache_dir, tmp_path):  # noqa: F811
    assert (finished / "checkpoints" / "step-00000002").is_dir() and (finished / "model").is_dir()
    with pytest.raises(VocabExtendError) as info:
        pretrain(config(cache_dir, finished))
    message = str(info.value)
    assert "already holds a run: it has finished" in message and "no checkpoint" not in message
    assert f"--continue-from {finished} --output-dir" in message and "--overwrite" in message
