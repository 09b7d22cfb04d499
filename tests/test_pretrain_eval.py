"""Evaluation sized to the run, the base-model comparison computed once, all_results.json and report_to."""

from __future__ import annotations

import importlib.machinery
import json
import statistics
import sys
import types
from pathlib import Path

import pytest
import torch

from conftest import SAMPLE_EN, SAMPLE_JA, pico_llama_config
from test_model_card import made  # noqa: F401  (the fixture: a merged tokenizer, a pico base, its init-model)
from test_pretrain import cache_dir, pico_config  # noqa: F401  (cache_dir: the module's merge)
from vocab_extend.cli import main
from vocab_extend.corpus import read_documents
from vocab_extend.errors import VocabExtendError
from vocab_extend.pretrain import paid, pretrain
from vocab_extend.pretrain.config import config_from_dict
from vocab_extend.pretrain.evaluation import EvalConfig
from vocab_extend.pretrain.outputs import read_metrics


def run_config(cache: Path, out: Path, **overrides):
    """A pico run of 3 steps of 4 × 32 tokens (384 training tokens), ja held out and en as an eval corpus."""
    return pico_config(cache, out, **{"stages": [{"name": "full", "steps": 3, "lr": 3e-3}],
                                                   **overrides})


def utf8_prefix_bytes(texts: list[str], budget: int) -> int:
    """Bytes of the first ``budget`` UTF-8 bytes of ``texts`` kept whole-character (an oracle of its own)."""
    total = 0
    for text in texts:
        for char in text:
            size = len(char.encode("utf-8"))
            if total + size > budget:
                return total
            total += size
    return total


# ----------------------------------------------------------------------------------------- the budget


@pytest.mark.parametrize("tokens, expected", [
    (2_048, 4_096),      # proportional: 2 bytes per training token
    (100, 4_000),        # a tiny run: raised to the floor
    (1_000_000, 20_000),  # a long run: capped at the ceiling
])
def test_the_budget_grows_with_the_run_between_floor_and_ceiling(tokens, expected):
    assert EvalConfig(max_bytes=20_000).budget(tokens) == expected


def test_the_budget_can_be_switched_off_or_uncapped():
    assert EvalConfig(max_bytes=20_000, bytes_per_token=None).budget(10) == 20_000
    assert EvalConfig(max_bytes=None, bytes_per_token=None).budget(10) is None
    assert EvalConfig(max_bytes=None).budget(1_000_000) == 2_000_000
    assert EvalConfig(max_bytes=1_500).budget(10) == 1_500  # a ceiling under the floor wins
    with pytest.raises(VocabExtendError, match="eval_bytes_per_token must be zero or more"):
        config_from_dict({"model": "pico", "train": ["x"], "eval_bytes_per_token": -1})


def test_a_run_scores_its_budget_and_says_so(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    pretrain(run_config(cache_dir, out, eval_max_bytes=50_000, eval_min_bytes=500, eval_bytes_per_token=4))
    budget = 4 * 3 * 4 * 32
    err = capsys.readouterr().err
    assert f"eval: the first {budget:,} bytes of each eval corpus (4 per training token × 384 tokens" in err
    (last,) = [r for r in read_metrics(out) if r["kind"] == "eval"]
    assert last["bytes"]["en"] == utf8_prefix_bytes(read_documents(str(SAMPLE_EN)), budget) == budget
    assert budget - 3 <= last["bytes"]["ja"] <= budget  # cut at the last whole character
    summary = json.loads((out / "all_results.json").read_text(encoding="utf-8"))
    assert summary["eval_text"]["en"] == {"label": "eval", "documents": last["documents"]["en"], "bytes": budget}
    assert summary["eval_text"]["ja"]["label"] == "held out"
    en_docs = read_documents(str(SAMPLE_EN))
    whole = sum(1 for i in range(len(en_docs)) if sum(len(d.encode()) for d in en_docs[:i + 1]) <= budget)
    assert last["documents"]["en"] == whole + 1  # the whole documents, and the one cut at the budget


def test_evaluation_shows_a_bar_with_a_rate(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    pretrain(run_config(cache_dir, out, progress=True, eval_max_bytes=1500))
    err = capsys.readouterr().err
    assert "eval en at step 3" in err and "eval ja at step 3" in err and "tok/s" in err


# ----------------------------------------------------------------------- summary and held-out labels


def test_all_results_json_sums_up_the_run(tmp_path, cache_dir):
    out = tmp_path / "run"
    pretrain(run_config(cache_dir, out, eval_max_bytes=1500, eval_at_start=True))
    records = read_metrics(out)
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    summary = json.loads((out / "all_results.json").read_text(encoding="utf-8"))
    assert summary["steps"] == 3 and summary["train_tokens"] == 3 * 4 * 32
    assert summary["final_train_loss"] == train[-1]["loss"]
    assert summary["train_tokens_per_s"] == round(statistics.median(r["tokens_per_s"] for r in train[1:]), 1)
    assert summary["eval_step"] == 3 and summary["eval_bpb"] == evals[-1]["bpb"] and summary["wall_time_s"] > 0
    assert {name: text["label"] for name, text in summary["eval_text"].items()} == {"en": "eval", "ja": "held out"}
    assert summary["resumed_from_step"] is None
    table = (out / "report.md").read_text(encoding="utf-8").split("## Bits per byte")[1].split("\n\n")[1]
    ja = evals[-1]
    row = next(line for line in table.splitlines() if line.startswith("| ja |"))
    assert row.startswith(f"| ja | held out, {ja['documents']['ja']:,} documents, {ja['bytes']['ja']:,} bytes |")
    assert next(line for line in table.splitlines() if line.startswith("| en |")).startswith("| en | eval, ")


# ------------------------------------------------------------------------------ report_to: wandb


class FakeRun:
    def __init__(self, calls: list) -> None:
        self.calls = calls
        self.summary = types.SimpleNamespace(update=lambda values: calls.append(("summary", dict(values))))

    def log(self, values, step=None):
        self.calls.append(("log", step, dict(values)))

    def finish(self):
        self.calls.append(("finish",))


@pytest.fixture()
def fake_wandb(monkeypatch):
    calls: list = []
    module = types.ModuleType("wandb")
    module.__spec__ = importlib.machinery.ModuleSpec("wandb", None)  # libraries that look for it find it
    module.init = lambda **kwargs: calls.append(("init", kwargs)) or FakeRun(calls)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", module)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    return calls


def test_wandb_gets_the_scalars_offline_and_the_summary(tmp_path, cache_dir, fake_wandb):
    out = tmp_path / "run"
    pretrain(run_config(cache_dir, out, eval_max_bytes=1500, report_to=["tensorboard", "wandb"],
                     tensorboard=True))
    (init, kwargs) = fake_wandb[0]
    assert init == "init" and kwargs["mode"] == "offline" and kwargs["dir"] == str(out)
    assert kwargs["project"] == "vocab-extend" and kwargs["config"]["data"]["block_size"] == 32
    logged = [c for c in fake_wandb if c[0] == "log"]
    train = [r for r in read_metrics(out) if r["kind"] == "train"]
    assert [(step, values["train/loss"]) for _, step, values in logged if "train/loss" in values] == \
        [(r["step"], r["loss"]) for r in train]
    (_, step, values) = next(c for c in logged if "eval/bpb/en" in c[2])
    assert step == 3 and "eval/bytes/en" not in values  # sizes are not scalars
    assert fake_wandb[-2] == ("summary", json.loads((out / "all_results.json").read_text(encoding="utf-8")))
    assert fake_wandb[-1] == ("finish",) and list((out / "tensorboard").iterdir())


def test_wandb_mode_set_by_the_user_is_kept(tmp_path, cache_dir, fake_wandb, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    pretrain(run_config(cache_dir, tmp_path / "run", eval_max_bytes=1500, report_to="wandb"))
    assert fake_wandb[0][1]["mode"] == "disabled"


def test_wandb_not_installed_is_one_sentence_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb fails, as when it is not installed
    out = tmp_path / "run"
    assert main(["pretrain", "--model", "pico", "--train", str(SAMPLE_JA), "--report-to", "[wandb]",
                 "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("error: logging: report_to asks for wandb, which is not installed: pip install wandb, "
                           "or leave wandb out of report_to")
    assert not out.exists()
    with pytest.raises(VocabExtendError, match="report_to names tensorboard and wandb"):
        config_from_dict({"model": "pico", "train": ["x"], "report_to": ["mlflow"]})


# ------------------------------------------------------------------- the base comparison, computed once


def test_the_base_score_is_computed_once_per_model_content_and_text(made, monkeypatch, tmp_path):
    from transformers import AutoModelForCausalLM

    from vocab_extend.model.evaluate.bpb import bits_per_byte
    from vocab_extend.tokenizer.loader import load_tokenizer

    tokenizer, model = made
    base = model.parent / "base"
    monkeypatch.setenv("VOCAB_EXTEND_CACHE", str(tmp_path / "cache"))
    docs = {"en": read_documents(str(SAMPLE_EN)), "news": read_documents(str(SAMPLE_JA / "news.txt"))}
    scored, loaded = [], []
    monkeypatch.setattr(paid, "bits_per_byte", lambda *a, **k: scored.append(1) or bits_per_byte(*a, **k))
    monkeypatch.setattr(paid, "load_model", lambda *a, **k: loaded.append(1) or paid_load(*a, **k))

    def compare(max_bytes: int):
        return paid.compare_with_base(str(model), EvalConfig(max_bytes=max_bytes, bytes_per_token=None), tokenizer,
                                      docs, None, "cpu", progress=False)

    first = compare(1200)
    assert len(scored) == 2 and len(loaded) == 1 and not any(r["base_cached"] for r in first)
    expected = bits_per_byte(AutoModelForCausalLM.from_pretrained(str(base)).eval(),
                             load_tokenizer("mistral-7b-v0.1"), docs["en"], max_bytes=1200, progress=False)
    assert first[0]["base_bpb"] == round(expected.bpb, 6)
    second = compare(1200)
    assert len(scored) == 2 and len(loaded) == 1  # read back: nothing scored, the model not even loaded
    assert [r["base_bpb"] for r in second] == [r["base_bpb"] for r in first] and all(r["base_cached"] for r in second)
    compare(1000)  # other text: scored again
    assert len(scored) == 4
    torch.manual_seed(1)  # other weights in the same folder: scored again
    AutoModelForCausalLM.from_config(pico_llama_config(32000)).save_pretrained(base)
    third = compare(1200)
    assert len(scored) == 6 and third[0]["base_bpb"] != first[0]["base_bpb"]
    listing = capture_cache_listing(monkeypatch)
    assert "bits per byte of" in listing and str(base) in listing


paid_load = paid.load_model


def capture_cache_listing(monkeypatch) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["cache"]) == 0
    return buffer.getvalue()
