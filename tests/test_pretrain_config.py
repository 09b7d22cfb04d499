"""The pretraining config by component: sections, the flat form mapped into them, and the stage registry."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import ROOT
from test_pretrain import build_tokenizer, cache_dir, losses, pico_config  # noqa: F401  (cache_dir is a fixture)
from vocab_extend.cli import main as cli_main
from vocab_extend.errors import VocabExtendError
from vocab_extend.pretrain import pretrain
from vocab_extend.pretrain.config import FLAT, SECTIONS, PretrainConfig, config_from_dict, load_config, nest
from vocab_extend.pretrain.model import build_model
from vocab_extend.pretrain.options import options
from vocab_extend.pretrain.run_dir import check_resume
from vocab_extend.pretrain.stages import STAGES, Stage

# configs/pico-smoke.yaml as it was written before the sections, every key at the top level
FLAT_PICO = """
model: pico
pico: {hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4,
       num_key_value_heads: 2}
tokenizer_merge: {base: mistral-7b-v0.1, corpus: corpora/ja, vocab_size: 3000, lang: ja}
train: [ja=corpora/ja]
heldout_fraction: 0.1
eval: {en: corpora/en}
block_size: 64
batch_size: 8
stages:
  - {name: new-rows, steps: 10, lr: 3.0e-3}
  - {name: full, steps: 10, lr: 1.0e-3}
warmup_steps: 2
eval_every: 10
eval_max_bytes: 20000
save_every: 10
output_dir: runs/pico-smoke
"""


def test_the_flat_form_maps_into_the_sections_of_the_shipped_config():
    flat = config_from_dict(yaml.safe_load(FLAT_PICO))
    assert flat == load_config(ROOT / "configs" / "pico-smoke.yaml")  # the shipped file is in sections
    assert flat.model.name == "pico" and flat.eval.corpora == {"en": "corpora/en"} and flat.eval.every == 10
    assert flat.checkpoint.every == 10 and flat.optim.warmup_steps == 2 and flat.data.block_size == 64
    assert config_from_dict(flat.to_dict()) == flat  # the sectioned form of config.yaml reads back the same


@pytest.mark.parametrize("key", sorted(FLAT))
def test_every_flat_key_lands_in_its_section(key):
    section, name = FLAT[key]
    value = {"stages": [{"name": "full", "steps": 1}], "eval": {"en": "x"}, "model": "pico"}.get(key, 1)
    expected = {section: {name: value}} if section else {name: value}
    if key == "eval":
        expected = {"eval": {"corpora": {"en": "x"}}}
    assert nest({key: value}) == expected


def test_the_table_covers_every_setting_once():
    fields = [(s, f.name) for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]
    run = [(None, f.name) for f in dataclasses.fields(PretrainConfig)
           if f.name not in SECTIONS]
    assert sorted(FLAT.values(), key=str) == sorted(fields + run, key=str) and len(FLAT) == 50


def test_the_options_read_from_source_are_the_config_s_keys_and_defaults():
    """``--help`` reads the settings from the components' source (no torch): the same keys and defaults."""
    found = options()
    assert [(o.key, o.section, o.name) for o in found] == [(k, *v) for k, v in FLAT.items()]
    default = PretrainConfig()
    for o in found:
        value = getattr(getattr(default, o.section) if o.section else default, o.name)
        if o.key == "stages":
            assert o.shown == ",".join(f"{s.name}:{s.steps}" for s in value) == "full:100"
        else:
            assert o.default == value, o.key
        assert o.help and "StageConfig(" not in o.shown


def test_pretrain_help_imports_no_heavy_library_and_prints_defaults_readably():
    code = ("import sys, contextlib, io\n"
            "from vocab_extend.pretrain import cli\n"
            "heavy = [m for m in ('torch', 'transformers', 'datasets', 'peft') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "from vocab_extend.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
            "    main(['pretrain', '--help'])\n"
            "print(out.getvalue())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "StageConfig" not in text and "(default: full:100)" in text and "(default: [0.9, 0.95])" in text


def test_sections_and_flat_keys_mix_and_options_override_both(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text("model: {name: pico}\ntrain: [corpora/ja]\neval: {every: 4, corpora: {en: corpora/en}}\n"
                    "optim: {lr: 0.001}\nwarmup_steps: 3\n", encoding="utf-8")
    config = load_config(path, {"eval-every": "7", "lr": "0.002", "checkpoint.keep": "5"})
    assert config.eval.every == 7 and config.optim.lr == 0.002 and config.optim.warmup_steps == 3
    assert config.checkpoint.keep == 5 and config.eval.corpora == {"en": "corpora/en"}


def test_a_misplaced_key_in_a_yaml_file_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("train: [corpora/ja]\ncheckpoint: {save_every: 5}\n", encoding="utf-8")
    assert cli_main(["pretrain", "--config", str(path)]) == 2
    assert "error: checkpoint: save_every is written every inside the checkpoint section" in capsys.readouterr().err


def test_resume_guard_reads_the_flat_config_of_an_older_run(tmp_path):
    out, checkpoint = tmp_path / "run", tmp_path / "run" / "checkpoints" / "step-00000002"
    checkpoint.mkdir(parents=True)
    (checkpoint / "run_config.yaml").write_text(FLAT_PICO, encoding="utf-8")
    same = config_from_dict(yaml.safe_load(FLAT_PICO))
    check_resume(same, out, checkpoint)
    with pytest.raises(VocabExtendError, match="started with batch_size 8, not 4"):
        check_resume(dataclasses.replace(same, data=dataclasses.replace(same.data, batch_size=4)), out, checkpoint)


class NormsStage(Stage):
    """A toy stage: only the RMSNorm weights learn."""

    name = "norms"

    def unfreeze(self, model, base_rows):
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.requires_grad_(True)
        return model, {}


def test_a_stage_registered_from_a_test_trains_only_its_parameters(cache_dir, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setitem(STAGES, NormsStage.name, NormsStage)
    out = tmp_path / "run"
    config = pico_config(cache_dir, out, stages="norms:2,new-rows:1")
    pretrain(config)
    initial = build_model(config.model, build_tokenizer(config), config.seed).state_dict()
    final = load_file(str(out / "model" / "model.safetensors"))
    changed = {k for k in initial if not torch.equal(initial[k], final[k])}
    norms = {k for k in initial if k.endswith("norm.weight")}
    assert changed == norms | {"model.embed_tokens.weight", "lm_head.weight"} and len(norms) == 5
    assert len(losses(out)) == 3


def test_an_unknown_stage_names_the_registered_ones():
    with pytest.raises(VocabExtendError, match="unknown stage 'norms': choose one of full, new-rows, embeddings, lora"):
        config_from_dict({"train": ["a"], "stages": "norms:2"})
