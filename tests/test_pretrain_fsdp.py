"""FSDP2 on 2 CPU processes (gloo) against 1 process; DCP checkpoints across kill -9 and process counts.

Every run here has all four stages (new-rows, embeddings, lora, full; 5 steps each), so one comparison
covers each stage; the reference is the single-process run with the same global batch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import ROOT, SAMPLE_EN, SAMPLE_JA
from test_pretrain import _free_port, cache_dir, losses, pico_config  # noqa: F401  (cache_dir is a fixture)
from vocab_extend.errors import VocabExtendError
from vocab_extend.pretrain import pretrain
from vocab_extend.pretrain.checkpoint import list_checkpoints
from vocab_extend.pretrain.outputs import read_metrics

STAGES = "new-rows:5,embeddings:5,lora:5,full:5"
# a weighted mixture with base-language replay, so the runs also show it draws the same blocks on 1 and 2
COMMON = dict(stages=STAGES, batch_size=4, micro_batch_size=1, weight_decay=0.1, eval={},
              train=[f"ja={SAMPLE_JA}", f"en={SAMPLE_EN}"], train_weights={"ja": 0.8, "en": 0.2})
TIED = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 64, "tie_word_embeddings": True}
# A script that runs the CLI but kills its own process with SIGKILL when step ``KILL_AT`` (0-based) begins.
KILLER = """
import os, signal, sys
from vocab_extend.pretrain import loop
original = loop.Trainer._step
def step(self, model, params, optimizer, scheduler, step, *args):
    if step == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, model, params, optimizer, scheduler, step, *args)
loop.Trainer._step = step
from vocab_extend.cli import main
sys.exit(main(sys.argv[1:]))
"""


def config_file(cache: Path, out: Path, **overrides) -> Path:
    data = {**COMMON, **overrides}
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(pico_config(cache, out, **data).to_dict()), encoding="utf-8")
    return path


def launch(config: Path, processes: int, *extra: str, kill_at: int | None = None) -> subprocess.CompletedProcess:
    """Run ``vocab-extend pretrain`` on ``processes`` CPU processes (torchrun when more than one)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if kill_at is not None:
        script = config.parent / "killer.py"
        script.write_text(KILLER, encoding="utf-8")
        target = [str(script)]
        env["KILL_AT"] = str(kill_at)
    else:
        target = ["-m", "vocab_extend.cli"]
    command = [sys.executable, *target, "pretrain", "--config", str(config), *extra]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node",
                   str(processes), "--master_port", str(_free_port()), *command[1:]]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if kill_at is None:
        assert done.returncode == 0, done.stderr[-3000:]
    else:
        assert done.returncode != 0, "the run was not killed"
    return done


def close(a: list[float], b: list[float], rel: float = 1e-4) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= rel * abs(x) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One packed-data cache, built by a single process before any multi-process run reads it."""
    return tmp_path_factory.mktemp("fsdp-cache")


@pytest.fixture(scope="module")
def single_run(shared_cache, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "run"
    pretrain(pico_config(shared_cache, out, **COMMON))
    return out


@pytest.fixture(scope="module")
def fsdp_run(shared_cache, single_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fsdp") / "run"
    launch(config_file(shared_cache, out, parallelism="fsdp", save_every=3), 2)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied+checkpointing"])
def test_fsdp_on_two_processes_follows_one_process_in_every_stage(shared_cache, single_run, tmp_path, tied,
                                                                  request):
    extra = dict(pico=TIED, gradient_checkpointing=True) if tied else {}
    if tied:
        single, out = tmp_path / "single", tmp_path / "fsdp"
        pretrain(pico_config(shared_cache, single, **COMMON, **extra))
        launch(config_file(shared_cache, out, parallelism="fsdp", **extra), 2)
    else:
        single, out = single_run, request.getfixturevalue("fsdp_run")
    one, two = losses(single), losses(out)
    assert len(one) == 20 and close(one, two), (one, two)
    records = [r for r in read_metrics(out) if r["kind"] == "train"]
    assert [r["corpus_blocks"] for r in records] == [r["corpus_blocks"] for r in read_metrics(single)
                                                     if r["kind"] == "train"]
    drawn = records[-1]["corpus_blocks"]
    assert sum(drawn.values()) == 80 and abs(drawn["ja"] / 80 - 0.8) <= 0.02
    stages = [r["stage"] for r in records]
    assert stages == ["new-rows"] * 5 + ["embeddings"] * 5 + ["lora"] * 5 + ["full"] * 5
    a = load_file(str(single / "model" / "model.safetensors"))
    b = load_file(str(out / "model" / "model.safetensors"))
    assert set(a) == set(b)  # a plain HF model: no adapters, no split rows, no FSDP prefixes
    assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5) for k in a)


@pytest.mark.slow
def test_kill_9_then_resume_on_the_same_and_another_number_of_processes(shared_cache, single_run, fsdp_run,
                                                                       tmp_path):
    reference = losses(single_run)
    # 2 FSDP processes, killed at step 8 (after the checkpoint at step 6, inside the embeddings stage)
    cut = tmp_path / "cut"
    config = config_file(shared_cache, cut, parallelism="fsdp", save_every=3)
    launch(config, 2, kill_at=8)
    assert [p.name for p in list_checkpoints(cut)] == ["step-00000003", "step-00000006"]
    assert len(list((cut / "checkpoints" / "step-00000006").glob("*.distcp"))) == 2  # one shard per rank
    copy = tmp_path / "cut-on-one"
    shutil.copytree(cut, copy)
    launch(config, 2, "--resume")  # 2 -> 2: the same losses, exactly
    assert losses(cut) == losses(fsdp_run)
    launch(config_file(shared_cache, copy, save_every=3), 1, "--resume")  # 2 -> 1
    assert close(losses(copy), reference)

    # 1 process killed at step 13 (after the checkpoint at step 12, inside the lora stage), resumed on 2
    one = tmp_path / "one"
    launch(config_file(shared_cache, one, save_every=4), 1, kill_at=13)
    assert list_checkpoints(one)[-1].name == "step-00000012"
    launch(config_file(shared_cache, one, save_every=4, parallelism="fsdp"), 2, "--resume")
    assert losses(one)[:12] == reference[:12] and close(losses(one), reference)


def test_fsdp_on_one_process_is_one_sentence(cache_dir, tmp_path):
    with pytest.raises(VocabExtendError, match="parallelism fsdp needs several processes") as info:
        pretrain(pico_config(cache_dir, tmp_path / "run", parallelism="fsdp"))
    assert "\n" not in str(info.value) and not (tmp_path / "run").exists()


def test_a_batch_that_does_not_split_over_the_processes_is_one_sentence():
    from vocab_extend.pretrain.dist import Dist, micro_batches
    from vocab_extend.pretrain.parallel import check_parallelism

    with pytest.raises(VocabExtendError, match="batch_size 4 does not split over 3 processes: use a multiple of 3"):
        micro_batches(4, None, Dist(world=3))
    assert micro_batches(6, 1, Dist(world=3)) == (2, 1)
    check_parallelism("fsdp", Dist(world=2))  # no error: fsdp on two processes


def test_unknown_parallelism_is_one_sentence(tmp_path):
    from vocab_extend.pretrain.config import config_from_dict

    with pytest.raises(VocabExtendError, match="parallelism 'zero3' is unknown: choose one of ddp, fsdp"):
        config_from_dict({"train": ["a"], "parallelism": "zero3"})
