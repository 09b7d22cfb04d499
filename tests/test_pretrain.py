"""Continued pretraining on a pico LLaMA with a real merged Japanese tokenizer and the sample corpora."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import ROOT, SAMPLE_EN, SAMPLE_JA
from vocab_extend.cli import main as cli_main
from vocab_extend.errors import VocabExtendError
from vocab_extend.pretrain import load_config, pretrain
from vocab_extend.pretrain import loop as loop_module
from vocab_extend.pretrain.config import apply_overrides, config_from_dict
from vocab_extend.pretrain.data import build_training_blocks, doc_key, eval_documents, exclusion_set
from vocab_extend.pretrain.data import training_documents
from vocab_extend.pretrain.model import build_merged_tokenizer, build_model
from vocab_extend.pretrain.checkpoint import read_model_tensors
from vocab_extend.pretrain.outputs import read_metrics

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pretrain-cache")


def pico_config(cache_dir: Path, output_dir: Path, **overrides):
    """A run small enough for a few seconds on 2 CPU cores; the tokenizer is merged once per module."""
    data = dict(
        model="pico",
        pico={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "max_position_embeddings": 64},
        tokenizer_merge={"corpus": [str(SAMPLE_JA)], "vocab_size": 3000, "lang": "ja"},
        train=[f"ja={SAMPLE_JA}"], heldout_fraction=0.1, eval={"en": str(SAMPLE_EN)},
        block_size=32, batch_size=4, stages=[{"name": "full", "steps": 3, "lr": 3e-3}], warmup_steps=1,
        eval_every=0, eval_at_start=False, eval_max_bytes=1500, save_every=0, progress=False,
        tensorboard=False, cache_dir=str(cache_dir), output_dir=str(output_dir),
    )
    data.update(overrides)
    return config_from_dict(data)


def losses(output_dir: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(output_dir) if r["kind"] == "train"]


# ------------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_loads(path):
    config = load_config(path)
    assert config.data.train and config.stages and config.total_steps > 0
    assert config.output_dir.startswith("runs/")


def test_shipped_configs_cover_the_three_examples():
    assert {p.stem for p in CONFIGS} >= {"pico-smoke", "smollm2-ja", "llama-7b-ja-gpu"}
    assert load_config(ROOT / "configs" / "pico-smoke.yaml").model.name == "pico"


def test_overrides_parse_as_yaml_and_cap_the_stages():
    config = load_config(ROOT / "configs" / "pico-smoke.yaml",
                         {"max-steps": "12", "output_dir": "runs/x", "precision": "fp32"})
    assert config.max_steps == 12 and config.output_dir == "runs/x" and config.parallel.precision == "fp32"
    assert [(s.name, first, n) for s, first, n in config.stage_plan()] == [("new-rows", 0, 10), ("full", 10, 2)]
    changed = apply_overrides(config, {"stages": "embeddings:4,lora:2", "eval": "{ja: corpora/ja}"})
    assert [(s.name, s.steps) for s in changed.stages] == [("embeddings", 4), ("lora", 2)]
    assert changed.eval.corpora == {"ja": "corpora/ja"}


def test_cli_options_reach_the_config(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(loop_module, "pretrain", lambda config, resume: seen.update(config=config, resume=resume))
    code = cli_main(["pretrain", "--config", str(ROOT / "configs" / "pico-smoke.yaml"), "--max-steps", "20",
                     "--output-dir", str(tmp_path / "x"), "--resume"])
    assert code == 0 and seen["resume"] is True
    assert seen["config"].max_steps == 20 and seen["config"].output_dir == str(tmp_path / "x")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": ["a"], "lerning_rate": 1}, "unknown config key 'lerning_rate'"),
        ({"train": ["a"], "lr_warmup": 1}, "unknown config key"),
        ({"train": ["a"], "stages": [{"name": "full", "steps": 2, "lr_min": 1}]}, "unknown stage key 'lr_min'"),
        ({"train": ["a"], "stages": "frozen:3"}, "unknown stage 'frozen'"),
        ({"train": ["a"], "precision": "fp8"}, "precision 'fp8' is unknown"),
        ({}, "no training corpus"),
        # values of the wrong type are named, not found as a TypeError deep inside the run
        ({"train": ["a"], "pico": "small"}, "pico must be a mapping"),
        ({"train": 5}, "train must be a corpus spec or a list of them"),
        ({"train": ["a"], "eval": [5]}, "eval must be a corpus spec"),
        ({"train": ["a"], "eval": {"en": 5}}, "eval maps names to corpus specs"),
        ({"train": ["a"], "model": 5}, "model must be text, not 5"),
        ({"train": ["a"], "push_to_hub": ["x"]}, "push_to_hub must be text"),
        ({"train": ["a"], "tokenizer_merge": {"corpus": "a", "vocab_size": "big"}},
         "tokenizer_merge: vocab_size must be a whole number, not 'big'"),
        ({"train": ["a"], "tokenizer_merge": {"corpus": "a", "vocab_size": 10**12}}, "vocab_size .* out of range"),
        ({"train": ["a"], "tokenizer_merge": {"corpus": 5}}, "corpus must be a corpus spec"),
        ({"train": ["a"], "tokenizer": "t", "tokenizer_merge": {"corpus": "a"}}, "both tokenizer and tokenizer_merge"),
        ({"train": ["a"], "stages": [{"name": "lora", "steps": 2, "lora_r": 0}]}, "lora_r must be positive"),
        ({"train": ["a"], "stages": [{"name": "lora", "steps": 2, "lora_dropout": 2}]}, "lora_dropout in"),
        ({"train": ["a"], "stages": [{"name": "lora", "steps": 2, "lora_targets": "q_proj"}]},
         "lora_targets must be a list"),
        ({"train": ["a"], "seed": -1}, r"seed must be a whole number in \[0, 2\*\*32\)"),
        ({"train": ["a"], "seed": 2**70}, "seed must be"),
        ({"train": ["a"], "num_proc": 0}, "num_proc must be positive"),
        ({"train": ["a"], "base_vocab_size": -1}, "base_vocab_size must be positive"),
        # the sections: misplaced, doubled and unknown keys (tests/test_pretrain_config.py has the rest)
        ({"train": ["a"], "optim": {"save_every": 5}},
         "optim: save_every is not a setting of the optim section: it is checkpoint.every"),
        ({"train": ["a"], "eval": {"eval_every": 5}}, "eval: eval_every is written every inside the eval section"),
        ({"train": ["a"], "lr": 0.1, "optim": {"lr": 0.2}}, "lr and optim.lr set the same setting: keep one"),
        ({"train": ["a"], "data": {"batchsize": 4}}, "unknown data key 'batchsize' \\(did you mean 'batch_size'\\?\\)"),
        ({"train": ["a"], "optimizer": {"lr": 0.1}}, "unknown config key 'optimizer' \\(did you mean 'optim'\\?\\)"),
        ({"train": ["a"], "parallel": "fsdp"}, "parallel must be a mapping of its settings"),
        ({"data": {"train": ["a"]}, "checkpoint": {"keep": 0}}, "keep_checkpoints must be positive, not 0"),
        ({"train": ["a"], "model": {"name": 5}}, "model must be text, not 5"),
    ],
)
def test_bad_config_values_are_one_sentence(data, message):
    with pytest.raises(VocabExtendError, match=message) as info:
        config_from_dict(data)
    assert "\n" not in str(info.value)


def test_unknown_option_and_missing_config_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [corpora/ja]\nbatch_sise: 4\n", encoding="utf-8")
    assert cli_main(["pretrain", "--config", str(bad)]) == 2
    assert "did you mean 'batch_size'" in capsys.readouterr().err
    assert cli_main(["pretrain", "--config", str(tmp_path / "missing.yaml")]) == 2
    capsys.readouterr()
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    assert cli_main(["pretrain", "--config", str(tmp_path / "binary.yaml")]) == 2
    assert "error: config file" in capsys.readouterr().err
    assert cli_main(["pretrain", "--config", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text("train: [corpora/ja]\n", encoding="utf-8")
    assert cli_main(["pretrain", "--config", str(good), "--cache-dir", str(bad)]) == 2
    assert f"cache_dir {bad} is a file" in capsys.readouterr().err
    assert cli_main(["pretrain", "--config", str(bad), "--eval-evry", "5"]) == 2
    assert "unknown option --eval-evry (did you mean --eval-every?)" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- data


def test_train_and_eval_documents_never_overlap(tmp_path):
    config = pico_config(tmp_path, tmp_path / "run", heldout_fraction=0.2, eval={"ja_news": str(SAMPLE_JA / "news.txt")})
    evals = eval_documents(config.data, config.eval)
    exclude = exclusion_set(evals)
    train = list(training_documents(config.data.train, exclude=exclude, fraction=0.2, text_field="text", max_docs=None))
    assert set(evals) == {"ja", "ja_news"} and evals["ja"] and train
    assert not {doc_key(t) for t in train} & exclude
    news = set(evals["ja_news"])
    assert not news & set(train)
    # held-out documents come from the training corpus: together with train they cover it
    assert len(train) + len(set(evals["ja"]) | news) >= 300


def test_packing_puts_eos_between_documents_and_caches(cache_dir, tmp_path):
    config = pico_config(cache_dir, tmp_path / "run")
    tokenizer = build_tokenizer(config)
    exclude = exclusion_set(eval_documents(config.data, config.eval))
    blocks = build_training_blocks(config.data, config.seed, tokenizer, exclude)
    first = blocks.get(0, 2)
    assert first.shape == (2, 32)
    flat = blocks.dataset[: blocks.num_blocks]["input_ids"].reshape(-1)
    assert (flat == tokenizer.eos_token_id).sum() >= 200  # one EOS per document
    cached = list(Path(cache_dir).iterdir())
    again = build_training_blocks(config.data, config.seed, tokenizer, exclude)
    assert list(Path(cache_dir).iterdir()) == cached and again.num_blocks == blocks.num_blocks
    assert (again.get(0, 2) == first).all()
    # another block size is another cache entry
    other = build_training_blocks(apply_overrides(config, {"block_size": "16"}).data, 0, tokenizer, exclude)
    assert other.num_blocks > blocks.num_blocks


def build_tokenizer(config):
    from vocab_extend.tokenizer.loader import load_tokenizer

    return load_tokenizer(str(build_merged_tokenizer(config.model, config.data)))


def test_streaming_runs(cache_dir, tmp_path):
    out = tmp_path / "run"
    pretrain(pico_config(cache_dir, out, streaming=True, shuffle_buffer=50, stages="full:2"))
    assert len(losses(out)) == 2 and all(torch.isfinite(torch.tensor(losses(out))))


# -------------------------------------------------------------------------------------------- stages


def initial_and_final(cache_dir, out, stages, **overrides):
    config = pico_config(cache_dir, out, stages=stages, **overrides)
    pretrain(config)
    initial = build_model(config.model, build_tokenizer(config), config.seed).state_dict()
    final = load_file(str(out / "model" / "model.safetensors"))
    return initial, final


def test_new_rows_stage_keeps_base_rows_bit_identical(cache_dir, tmp_path):
    initial, final = initial_and_final(cache_dir, tmp_path / "run", "new-rows:3")
    base = json.loads((tmp_path / "run" / "model" / "vocab_extend.json").read_text())["base_vocab_size"]
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        assert torch.equal(final[name][:base], initial[name][:base])
        assert not torch.equal(final[name][base:], initial[name][base:])
    assert torch.equal(final["model.layers.0.self_attn.q_proj.weight"], initial["model.layers.0.self_attn.q_proj.weight"])


def test_new_rows_stage_counts_only_the_new_rows_as_trainable():
    from transformers import LlamaConfig, LlamaForCausalLM

    from vocab_extend.pretrain.config import StageConfig
    from vocab_extend.pretrain.stages import prepare_stage

    def model():
        return LlamaForCausalLM(LlamaConfig(vocab_size=120, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                            num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False))

    assert prepare_stage(model(), StageConfig("new-rows", 1), 100).trainable == 2 * 20 * 16
    assert prepare_stage(model(), StageConfig("embeddings", 1), 100).trainable == 2 * 120 * 16


def test_embeddings_stage_freezes_transformer_blocks(cache_dir, tmp_path):
    initial, final = initial_and_final(cache_dir, tmp_path / "run", "embeddings:2")
    changed = {k for k in initial if not torch.equal(initial[k], final[k])}
    assert changed == {"model.embed_tokens.weight", "lm_head.weight"}


def test_lora_stage_is_merged_into_the_saved_model(cache_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    initial, final = initial_and_final(cache_dir, tmp_path / "run", "lora:2", gradient_checkpointing=True)
    assert set(final) == set(initial)  # a plain model: no adapter tensors left
    changed = {k for k in initial if not torch.equal(initial[k], final[k])}
    assert "model.layers.0.self_attn.q_proj.weight" in changed and "model.layers.1.mlp.down_proj.weight" in changed
    assert "model.embed_tokens.weight" in changed and "model.norm.weight" not in changed
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model")
    assert model.get_input_embeddings().weight.shape[0] == final["model.embed_tokens.weight"].shape[0]


# ------------------------------------------------------------------------------- resume and outputs


class Crash(Exception):
    pass


def crash_then_resume(config, crash_step: int, monkeypatch) -> list[float]:
    """Run ``config``, crash before step ``crash_step`` (0-based), resume; return the losses logged before."""
    original = loop_module.Trainer._step

    def crashing(self, model, prepared, optimizer, scheduler, step, *args):
        if step == crash_step:
            raise Crash
        return original(self, model, prepared, optimizer, scheduler, step, *args)

    monkeypatch.setattr(loop_module.Trainer, "_step", crashing)
    with pytest.raises(Crash):
        pretrain(config)
    monkeypatch.setattr(loop_module.Trainer, "_step", original)
    before = losses(Path(config.output_dir))
    pretrain(config, resume=True)
    return before


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(cache_dir, tmp_path, monkeypatch):
    stages = "new-rows:3,lora:3"
    full = tmp_path / "full"
    pretrain(pico_config(cache_dir, full, stages=stages, save_every=2))
    expected = losses(full)
    assert len(expected) == 6

    cut = tmp_path / "cut"
    # crash after the checkpoint at step 4, in the middle of the lora stage
    before = crash_then_resume(pico_config(cache_dir, cut, stages=stages, save_every=2), 4, monkeypatch)
    assert before == expected[:4]
    assert losses(cut) == expected  # exactly, not approximately
    a = load_file(str(full / "model" / "model.safetensors"))
    b = load_file(str(cut / "model" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_tied_embeddings_and_resume_at_a_stage_boundary(cache_dir, tmp_path, monkeypatch):
    """One matrix serves as embeddings and lm_head (as in SmolLM2): new-rows keeps its base rows; a resume
    from the checkpoint that ends the new-rows stage starts the lora stage (same LoRA initialisation)
    exactly as an uninterrupted run."""
    pico = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 64, "tie_word_embeddings": True}
    settings = dict(pico=pico, stages="new-rows:2,lora:1", save_every=2)
    full, cut = tmp_path / "full", tmp_path / "cut"
    pretrain(pico_config(cache_dir, full, **settings))
    crash_then_resume(pico_config(cache_dir, cut, **settings), 2, monkeypatch)
    assert losses(cut) == losses(full) and len(losses(full)) == 3
    a = load_file(str(full / "model" / "model.safetensors"))
    b = load_file(str(cut / "model" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the LoRA delta merged in depends on its initialisation
    config = pico_config(cache_dir, tmp_path / "x", pico=pico)
    initial = build_model(config.model, build_tokenizer(config), config.seed).model.embed_tokens.weight
    saved = read_model_tensors(cut / "checkpoints" / "step-00000002")
    matrices = [t for k, t in saved.items() if k in ("model.embed_tokens.weight", "lm_head.weight")]
    after_new_rows = matrices[0]
    assert all(torch.equal(m, after_new_rows) for m in matrices)  # one tied matrix, listed under its names
    assert torch.equal(after_new_rows[:32000], initial[:32000])
    assert not torch.equal(after_new_rows[32000:], initial[32000:])


def test_outputs_metrics_report_and_model(cache_dir, tmp_path):
    out = tmp_path / "run"
    pretrain(pico_config(cache_dir, out, stages="new-rows:2,full:2", eval_every=2, eval_at_start=True,
                         save_every=2, keep_checkpoints=1, tensorboard=True))
    records = read_metrics(out)
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    for r in train:
        assert isinstance(r["loss"], float) and r["lr"] > 0 and r["tokens_per_s"] > 0
    assert [r["stage"] for r in train] == ["new-rows", "new-rows", "full", "full"]
    assert [r["step"] for r in evals] == [0, 2, 4]
    for r in evals:
        assert set(r["bpb"]) == {"ja", "en"} and all(0 < v < 20 for v in r["bpb"].values())
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "Token reduction" in report and "| ja |" in report and "bpb.png" in report
    assert (out / "bpb.png").stat().st_size > 0 and list((out / "tensorboard").iterdir())
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000004"]  # the last step's; keep 1
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    text = "東京は日本の首都です。"
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text
    # an existing run is not overwritten without --resume or --overwrite; other folders never are
    with pytest.raises(VocabExtendError, match="already holds a run"):
        pretrain(pico_config(cache_dir, out))
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(VocabExtendError, match="not a pretraining run"):
        pretrain(pico_config(cache_dir, tmp_path, overwrite=True))
    assert (tmp_path / "notes.txt").is_file()


# ------------------------------------------------------------------------------------------ bad input


def test_bad_inputs_are_one_sentence(cache_dir, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    cases = [
        (dict(pico={"hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32000}),
         r"the tokenizer has 3\d,\d{3} tokens but the model only 32,000 embedding rows"),
        (dict(train=[str(empty)]), "is empty"),
        (dict(block_size=128), "block_size 128 is beyond the model's context of 64 tokens"),
        (dict(stages="new-rows:2", base_vocab_size=40000), "is more than the tokenizer.s 3"),
        (dict(stages="full:2", base_vocab_size=40000), "is more than the tokenizer.s 3"),
        (dict(batch_size=4, micro_batch_size=3), "micro_batch_size 3 does not divide"),
        (dict(stages=[{"name": "full", "steps": 1}, {"name": "lora", "steps": 1, "lora_targets": ["foo"]}]),
         "none of the LoRA targets"),
        (dict(pico={"hidden_size": 30, "num_attention_heads": 4}), "hidden_size 30 does not split into"),
        (dict(pico={"num_hidden_layers": -1}), "num_hidden_layers must be a whole number of at least 1, not -1"),
        (dict(pico={"hidden_size": 0}), "hidden_size must be a whole number of at least 1, not 0"),
        (dict(pico={"rms_norm_eps": -1}), r"not a valid LlamaConfig \(Field .rms_norm_eps. expected float"),
        (dict(eval_block_size=128, eval_at_start=True), "eval_block_size 128 is beyond the model's context of 64"),
    ]
    for i, (overrides, message) in enumerate(cases):
        with pytest.raises(VocabExtendError, match=message) as info:
            pretrain(pico_config(cache_dir, tmp_path / f"run{i}", **overrides))
        assert "\n" not in str(info.value)
        assert not (tmp_path / f"run{i}").exists(), "a rejected run left an output folder"


@pytest.mark.parametrize("overrides, message", [
    (dict(adam_betas=[2, 3]), "adam_betas must be two numbers"),
    (dict(micro_batch_size=-1), "micro_batch_size must be positive"),
    (dict(eval_batch_size=0), "eval_batch_size must be positive"),
    (dict(save_every=-5), "save_every must be zero or more"),
    (dict(eval_block_size=1), "eval_block_size must be at least 2"),
    (dict(stages="full:2", lr=0), "lr must be positive"),
    (dict(device="gpu:zero"), "is not a torch device"),
])
def test_bad_settings_are_one_sentence(cache_dir, tmp_path, overrides, message):
    with pytest.raises(VocabExtendError, match=message):
        pretrain(pico_config(cache_dir, tmp_path / "run", **overrides))
    assert not (tmp_path / "run").exists()


def test_rejected_overwrite_keeps_the_old_run(cache_dir, tmp_path):
    out = tmp_path / "run"
    pretrain(pico_config(cache_dir, out, stages="full:1"))
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(VocabExtendError, match="beyond the model's context"):
        pretrain(pico_config(cache_dir, out, overwrite=True, block_size=128))
    assert sorted(p.name for p in out.iterdir()) == before and (out / "model" / "model.safetensors").is_file()


def test_resume_refuses_settings_that_change_the_losses(cache_dir, tmp_path):
    out = tmp_path / "run"
    pretrain(pico_config(cache_dir, out, stages="full:4", save_every=2))
    assert yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))["data"]["batch_size"] == 4
    with pytest.raises(VocabExtendError, match="has finished"):
        pretrain(pico_config(cache_dir, out, stages="full:4", save_every=2), resume=True)
    shutil.rmtree(out / "model")  # as if the run had stopped after its checkpoint at step 2
    shutil.rmtree(out / "checkpoints" / "step-00000004")
    with pytest.raises(VocabExtendError, match="started with stages full:4, not full:6"):
        pretrain(pico_config(cache_dir, out, stages="full:6", save_every=2), resume=True)
    with pytest.raises(VocabExtendError, match="started with batch_size 4, not 8"):
        pretrain(pico_config(cache_dir, out, stages="full:4", save_every=2, batch_size=8), resume=True)
    with pytest.raises(VocabExtendError, match="started with max_steps None, not 2"):
        pretrain(pico_config(cache_dir, out, stages="full:4", save_every=2, max_steps=2), resume=True)
    (out / "config.yaml").unlink()  # the checkpoint's own copy of the config still guards the resume
    with pytest.raises(VocabExtendError, match="started with batch_size 4, not 8"):
        pretrain(pico_config(cache_dir, out, stages="full:4", save_every=2, batch_size=8), resume=True)
    (out / "checkpoints" / "step-00000002" / "run_config.yaml").unlink()  # and that copy is in the manifest
    with pytest.raises(VocabExtendError, match=r"no checkpoint to resume from \(1 damaged checkpoint"):
        pretrain(pico_config(cache_dir, out, stages="full:4", save_every=2, batch_size=8), resume=True)


# ----------------------------------------------------------------------------------------- scale-out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(cache_dir, tmp_path):
    """torchrun with 2 CPU processes and the same global batch follows the single-process losses."""
    common = dict(stages="full:3", batch_size=4, micro_batch_size=1)
    single = tmp_path / "single"
    pretrain(pico_config(cache_dir, single, **common))
    # a cache of its own: the first process builds the packed data while the second waits for it
    config = pico_config(tmp_path / "ddp-cache", tmp_path / "ddp", **common).to_dict()
    config_file = tmp_path / "ddp.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
               "--master_port", str(_free_port()), "-m", "vocab_extend.cli", "pretrain", "--config", str(config_file)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = losses(single), losses(tmp_path / "ddp")
    assert len(one) == len(two) == 3
    for a, b in zip(one, two):
        assert abs(a - b) <= 0.02 * abs(a)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["locked", "bad-config"])
def test_under_torchrun_a_refusal_is_one_sentence_and_status_2_on_every_rank(cache_dir, tmp_path, case):
    """Rank 0 refuses (another process holds the run folder) or the config is bad: every rank prints the same
    sentence and exits 2, no rank dies of a lost peer, and torchrun's summary shows the sentence."""
    out = tmp_path / "run"
    config = pico_config(cache_dir, out, stages="full:2").to_dict()
    if case == "bad-config":
        config["model"]["pico"] = {"num_hidden_layers": -1}
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom vocab_extend.locks import output_lock\n"
         f"with output_lock({str(out)!r}):\n    print('held', flush=True)\n    time.sleep(300)"],
        stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
    try:
        assert holder.stdout.readline().strip() == "held"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                   "--master_port", str(_free_port()), "-m", "vocab_extend.cli", "pretrain", "--config",
                   str(config_file)]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    finally:
        holder.kill()
        holder.wait()
    sentence = "is writing" if case == "locked" else "num_hidden_layers must be a whole number of at least 1"
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and len(set(errors)) == 1 and sentence in errors[0], done.stderr[-3000:]
    assert "Connection closed" not in done.stderr and "RuntimeError" not in done.stderr
    assert done.stderr.count("exitcode  : 2 ") == 2, done.stderr[-3000:]  # both ranks, none killed
    assert done.stderr.count(f"traceback : {errors[0]}") == 2  # torchrun's summary names the sentence
    assert not (out / "metrics.jsonl").exists() and not (out / "config.yaml").exists()


def test_yaml_numbers_written_as_text_are_read_as_numbers(tmp_path):
    from vocab_extend.pretrain.config import load_config

    config = load_config(ROOT / "configs" / "pico-smoke.yaml",
                         {"lr": "3e-4", "stages": "[{name: full, steps: 2, lr: 1e-4}]", "overwrite": "true"})
    assert config.optim.lr == pytest.approx(3e-4) and config.stages[0].lr == pytest.approx(1e-4)
    assert config.overwrite is True
    with pytest.raises(VocabExtendError, match="lr must be a number"):
        load_config(ROOT / "configs" / "pico-smoke.yaml", {"lr": "fast"})


def test_an_eval_corpus_named_like_the_training_corpus_keeps_the_held_out_share(cache_dir, tmp_path):
    config = pico_config(cache_dir, tmp_path / "x", eval={"ja": str(SAMPLE_JA / "news.txt"), "en": str(SAMPLE_EN)})
    corpora = eval_documents(config.data, config.eval)
    assert set(corpora) == {"ja", "en", "ja (held out)"}
    assert corpora["ja (held out)"] and not set(corpora["ja (held out)"]) & set(corpora["ja"]) - set(corpora["en"])
    # two training corpora of one name, no eval corpus of that name: one held-out corpus under the name
    config = pico_config(cache_dir, tmp_path / "y", train=[f"ja={SAMPLE_JA / 'news.txt'}", f"ja={SAMPLE_JA}"])
    assert set(eval_documents(config.data, config.eval)) == {"ja", "en"}


def test_bare_overwrite_flag_and_resume_without_checkpoint(tmp_path, capsys):
    from vocab_extend.cli import main

    out = tmp_path / "run"
    out.mkdir()
    code = main(["pretrain", "--config", str(ROOT / "configs" / "pico-smoke.yaml"), "--output-dir", str(out),
                 "--resume", "--overwrite"])
    assert code == 2 and "holds no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("overrides, message", [
    (dict(stages="full:2", lr=float("inf")), "lr must be a finite number"),
    (dict(stages="full:2", lr=1e30), "far above any learning rate that trains"),
    (dict(stages="full:2", weight_decay=float("nan")), "weight_decay must be a finite number"),
])
def test_non_finite_and_absurd_settings_are_refused_up_front(cache_dir, tmp_path, overrides, message):
    with pytest.raises(VocabExtendError, match=message):
        pretrain(pico_config(cache_dir, tmp_path / "run", **overrides))
    assert not (tmp_path / "run").exists()


def test_a_diverging_run_stops_with_one_sentence(cache_dir, tmp_path, monkeypatch):
    """A NaN loss (here forced at the second step) ends the run: no NaN model, metrics stay valid JSON."""
    real_step = loop_module.Trainer._step
    calls = []

    def diverging(self, *args, **kwargs):
        record = real_step(self, *args, **kwargs)
        calls.append(record["step"])
        if len(calls) >= 2:
            record["loss"] = float("nan")
        return record

    monkeypatch.setattr(loop_module.Trainer, "_step", diverging)
    out = tmp_path / "run"
    with pytest.raises(VocabExtendError, match="training diverged at step 2 \\(loss nan\\)"):
        pretrain(pico_config(cache_dir, out))
    assert not (out / "model").exists()
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # valid JSON: no bare NaN
    assert [r["step"] for r in records if r["kind"] == "train"] == [1]


def test_final_model_has_a_model_card(cache_dir, tmp_path):
    from huggingface_hub import ModelCard

    out = tmp_path / "run"
    pretrain(pico_config(cache_dir, out, eval_every=0))
    card = ModelCard.load(out / "model" / "README.md")
    assert card.data.library_name == "transformers" and card.data.language == ["ja"]
    assert "vocab-extend" in card.data.tags
    text = card.text
    assert "`full` 3 steps" in text and "tokens seen: 384" in text  # 3 steps x 4 sequences x 32 tokens
    assert "Bits per byte" in text and "| en |" in text


def test_a_second_run_on_the_same_folder_is_refused(cache_dir, tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(  # a first run, still going, holds the run folder
        [sys.executable, "-c", "import sys, time\nfrom vocab_extend.locks import output_lock\n"
         f"with output_lock({str(out)!r}):\n    print('held', flush=True)\n    time.sleep(120)"],
        stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(VocabExtendError, match="is writing"):
            pretrain(pico_config(cache_dir, out))
    finally:
        holder.kill()
        holder.wait()
    assert not (out / "metrics.jsonl").exists()
