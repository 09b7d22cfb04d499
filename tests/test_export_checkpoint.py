"""``vocab-extend export-checkpoint``: any checkpoint of a pico run as a Hugging Face folder.

The oracle is the run itself: while the run trains, each checkpoint save also records the logits the
module being trained gives on fixed ids (a script patches ``Checkpointer.save``; under 2 processes every
rank runs the forward and rank 0 keeps the logits). The exported folder, read back by transformers alone,
must give those logits. The runs have a new-rows stage (split rows) and a lora stage (adapters), with a
checkpoint at every step: one inside each stage's shape and one at the boundary between them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
import yaml

from conftest import ROOT
from test_pretrain import _free_port, build_tokenizer, cache_dir, pico_config  # noqa: F401  (cache_dir: a fixture)
from test_pretrain_fsdp import TIED, config_file
from vocab_extend.cli import main as cli_main
from vocab_extend.pretrain import pretrain
from vocab_extend.pretrain.checkpoint import list_checkpoints, write_manifest

STAGES = "new-rows:2,lora:2"  # checkpoints: 1 inside new-rows, 2 at the boundary, 3 inside lora
# Runs the CLI with Checkpointer.save patched to also save the trained module's logits on ids.pt.
RECORDER = """
import os, sys
import torch
from vocab_extend.pretrain import checkpoint
original = checkpoint.Checkpointer.save
ids = torch.load(os.environ["LOGITS_IDS"], weights_only=True)
def save(self, step, trained, optimizer, scheduler, stage_index, *, boundary, extra=None):
    original(self, step, trained, optimizer, scheduler, stage_index, boundary=boundary, extra=extra)
    if boundary and not self.dist.main:
        return  # the plain model of a stage's end is on rank 0 only (under FSDP)
    with torch.no_grad():  # every rank runs the sharded (or DDP) forward
        logits = trained(input_ids=ids).logits
    if self.dist.main:
        torch.save(logits, os.path.join(os.environ["LOGITS_DIR"], f"logits-{step}.pt"))
checkpoint.Checkpointer.save = save
from vocab_extend.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_recording(cache: Path, out: Path, processes: int, **settings) -> dict[int, torch.Tensor]:
    """A pico run on ``processes`` CPU processes (gloo) that records the logits at each checkpoint."""
    config = config_file(cache, out, stages=STAGES, save_every=1, keep_checkpoints=5, **settings)
    ids = out.parent / "ids.pt"
    torch.save(fixed_ids(cache), ids)
    script, logits = out.parent / "recorder.py", out.parent / "logits"
    script.write_text(RECORDER, encoding="utf-8")
    logits.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "LOGITS_IDS": str(ids),
           "LOGITS_DIR": str(logits)}
    command = [sys.executable, str(script), "pretrain", "--config", str(config)]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node",
                   str(processes), "--master_port", str(_free_port()), *command[1:]]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return {int(p.stem.split("-")[1]): torch.load(p, weights_only=True) for p in logits.glob("logits-*.pt")}


def fixed_ids(cache: Path) -> torch.Tensor:
    """Ids of Japanese and English text under the run's tokenizer (new rows among them), two sequences."""
    tokenizer = build_tokenizer(pico_config(cache, cache / "unused"))
    text = "東京は日本の首都です。富士山は日本で一番高い山です。" + "The capital of Japan is Tokyo."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:24]
    assert max(ids) >= 32000 and len(ids) == 24  # the merge's new rows are read too
    return torch.tensor([ids, ids[::-1]])


def export(checkpoint: Path, out: Path, *extra: str) -> int:
    return cli_main(["export-checkpoint", str(checkpoint), str(out), *extra])


def check_export_gives_the_run_logits(run: Path, recorded: dict[int, torch.Tensor], ids: torch.Tensor,
                                      tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoints = list_checkpoints(run)
    # every step, the last one's too (the run's final checkpoint)
    assert [p.name for p in checkpoints] == ["step-00000001", "step-00000002", "step-00000003", "step-00000004"]
    assert sorted(recorded) == [1, 2, 3, 4]
    text = "東京は日本の首都です。"
    reference = AutoTokenizer.from_pretrained(run / "model")  # the run's tokenizer, as its model/ holds it
    for checkpoint in checkpoints:
        out = tmp_path / f"export-{checkpoint.name}"
        assert export(checkpoint, out) == 0
        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        expected = recorded[int(checkpoint.name.split("-")[1])]
        assert torch.allclose(logits, expected, rtol=1e-5, atol=1e-5), (checkpoint.name,
                                                                        (logits - expected).abs().max())
        tokenizer = AutoTokenizer.from_pretrained(out)
        assert tokenizer(text)["input_ids"] == reference(text)["input_ids"]
        assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text
        card = (out / "README.md").read_text(encoding="utf-8")
        step = int(checkpoint.name.split("-")[1])
        assert f"checkpoint `{checkpoint.name}`" in card and f"tokens seen: {step * 4 * 32:,}" in card
    # the logits differ from step to step: the comparison tells checkpoints apart
    assert not torch.allclose(recorded[1], recorded[3], atol=1e-3)
    # the last step's checkpoint holds the weights of the run's own model/
    final = load_file(tmp_path / f"export-{checkpoints[-1].name}" / "model.safetensors")
    written = load_file(run / "model" / "model.safetensors")
    assert final.keys() == written.keys() and all(torch.equal(final[k], written[k]) for k in final)


@pytest.fixture(scope="module")
def single_run(cache_dir, tmp_path_factory) -> tuple[Path, dict[int, torch.Tensor]]:
    out = tmp_path_factory.mktemp("single") / "run"
    return out, run_recording(cache_dir, out, 1)


def test_export_of_a_one_process_checkpoint_gives_the_logits_of_the_run(single_run, cache_dir, tmp_path):
    run, recorded = single_run
    check_export_gives_the_run_logits(run, recorded, fixed_ids(cache_dir), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("parallelism", ["fsdp", "ddp"])
def test_export_of_a_two_process_checkpoint_gives_the_logits_of_the_run(cache_dir, single_run, tmp_path,
                                                                        parallelism):
    run = tmp_path / "run"
    recorded = run_recording(cache_dir, run, 2, parallelism=parallelism)
    shards = sorted(p.name for p in (run / "checkpoints" / "step-00000003").glob("*.distcp"))
    assert len(shards) == 2  # one shard per process
    check_export_gives_the_run_logits(run, recorded, fixed_ids(cache_dir), tmp_path)


@pytest.mark.slow
def test_export_of_a_tied_model_gives_the_logits_of_the_run(cache_dir, single_run, tmp_path):
    """One matrix for embeddings and lm_head (as in SmolLM2), split into base and new rows in new-rows."""
    run = tmp_path / "run"
    recorded = run_recording(cache_dir, run, 1, pico=TIED)
    check_export_gives_the_run_logits(run, recorded, fixed_ids(cache_dir), tmp_path)
    assert json.loads((tmp_path / "export-step-00000001" / "config.json").read_text())["tie_word_embeddings"]


def sha256_of_files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_export_of_step_n_is_the_model_folder_of_a_run_of_n_steps(cache_dir, tmp_path):
    """With a constant learning rate, the first N steps of a longer run are a run of N steps: exporting its
    checkpoint at step N writes that run's ``model/``, file for file (only the card says otherwise)."""
    constant = dict(warmup_steps=0, min_lr_ratio=1.0, eval={})
    longer, short = tmp_path / "longer", tmp_path / "short"
    pretrain(pico_config(cache_dir, longer, stages="full:4", save_every=2, **constant))
    pretrain(pico_config(cache_dir, short, stages="full:2", **constant))
    assert export(longer / "checkpoints" / "step-00000002", tmp_path / "export") == 0
    exported, final = sha256_of_files(tmp_path / "export"), sha256_of_files(short / "model")
    assert set(exported) == set(final) and "model.safetensors" in final and "generation_config.json" in final
    assert {k: v for k, v in exported.items() if k != "README.md"} == {k: v for k, v in final.items()
                                                                       if k != "README.md"}
    assert exported["README.md"] != final["README.md"]


# ------------------------------------------------------------------------------------------ bad input


def refused(capsys, *args: str) -> str:
    """The one ``error:`` line of a refused export (status 2)."""
    assert export(*args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def copy_checkpoint(single_run, tmp_path: Path, step: int = 3) -> Path:
    """A copy of a checkpoint outside any run folder."""
    copy = tmp_path / "copied" / f"step-{step:08d}"
    shutil.copytree(single_run[0] / "checkpoints" / f"step-{step:08d}", copy)
    return copy


def rewrite(checkpoint: Path, change) -> None:
    """Change a checkpoint's files, then write its manifest again (as an older or foreign run would have)."""
    (checkpoint / "manifest.json").unlink()
    change(checkpoint)
    write_manifest(checkpoint)


def test_what_is_not_a_checkpoint_is_one_sentence(single_run, tmp_path, capsys):
    run = single_run[0]
    out = tmp_path / "out"
    assert "does not exist" in refused(capsys, tmp_path / "nowhere", out)
    assert "newest is" in refused(capsys, run, out) and "step-00000004" in refused(capsys, run, out)
    (tmp_path / "folder").mkdir()
    assert "not a checkpoint written by" in refused(capsys, tmp_path / "folder", out)
    staging = tmp_path / ".tmp-step-00000004"
    shutil.copytree(run / "checkpoints" / "step-00000003", staging)
    assert "never finished" in refused(capsys, staging, out)
    assert not out.exists()


def test_a_damaged_checkpoint_is_refused_before_any_model_is_built(single_run, tmp_path, capsys, monkeypatch):
    from vocab_extend.pretrain import export as export_module

    monkeypatch.setattr(export_module, "build_model", lambda *a: pytest.fail("a model was built"))
    checkpoint = copy_checkpoint(single_run, tmp_path)
    shard = next(checkpoint.glob("*.distcp"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert "is damaged" in refused(capsys, checkpoint, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(single_run, tmp_path, capsys, monkeypatch):
    from test_pretrain_safety import _metadata_payload
    from vocab_extend.pretrain import export as export_module

    monkeypatch.setattr(export_module, "build_model", lambda *a: pytest.fail("a model was built"))
    checkpoint, marker = copy_checkpoint(single_run, tmp_path), tmp_path / "payload-ran"
    rewrite(checkpoint, lambda c: _metadata_payload(c, marker))
    assert "could run code when loaded, so it is not exported" in refused(capsys, checkpoint, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_missing_run_config_or_tokenizer_is_one_sentence(single_run, tmp_path, capsys):
    no_config = copy_checkpoint(single_run, tmp_path)
    rewrite(no_config, lambda c: (c / "run_config.yaml").unlink())
    assert "holds no run_config.yaml" in refused(capsys, no_config, tmp_path / "out")

    def elsewhere(checkpoint: Path) -> None:
        config = yaml.safe_load((checkpoint / "run_config.yaml").read_text(encoding="utf-8"))
        config["data"]["cache_dir"] = str(tmp_path / "gone")
        (checkpoint / "run_config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")

    no_tokenizer = copy_checkpoint(single_run, tmp_path / "other")
    rewrite(no_tokenizer, elsewhere)
    assert "tokenizer of the run" in refused(capsys, no_tokenizer, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_output_folder_is_written_whole_and_never_clobbered(single_run, tmp_path, capsys, monkeypatch):
    checkpoint = single_run[0] / "checkpoints" / "step-00000002"
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    assert "already exists and is not empty" in refused(capsys, checkpoint, out)
    (tmp_path / "file").write_text("", encoding="utf-8")
    assert "is a file" in refused(capsys, checkpoint, tmp_path / "file")
    (tmp_path / "file").unlink()
    assert (out / "keep.txt").read_text(encoding="utf-8") == "mine"
    assert "inside the checkpoint" in refused(capsys, checkpoint, checkpoint / "hf")

    from vocab_extend.pretrain import export as export_module

    def fails(folder, *args):
        (Path(folder) / "model.safetensors").write_bytes(b"half")
        raise OSError("the disk went away")

    monkeypatch.setattr(export_module, "write_model_folder", fails)
    with pytest.raises(OSError):
        export(checkpoint, out, "--overwrite")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "keep.txt").is_file()  # as it was
    monkeypatch.undo()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(checkpoint, empty) == 0 and (empty / "model.safetensors").is_file()  # an empty folder is fine
    assert export(checkpoint, out, "--overwrite") == 0
    assert not (out / "keep.txt").exists() and json.loads((out / "config.json").read_text())["vocab_size"] > 32000
