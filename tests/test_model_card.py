"""Model folders carry a model card with Hub metadata, and can be pushed to the Hub (the Hub is faked here)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch

from conftest import pico_llama_config
from vocab_extend.cli import main


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("card")
    tokenizer = root / "tok"
    assert main(["merge", "--vocab-size", "2000", "--output-dir", str(tokenizer)]) == 0
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(pico_llama_config(32000)).save_pretrained(root / "base")
    out = root / "model"
    assert main(["init-model", "--model", str(root / "base"), "--tokenizer", str(tokenizer),
                 "--output-dir", str(out)]) == 0
    return tokenizer, out


def test_model_card_has_hub_metadata_and_the_figures(made: tuple[Path, Path]) -> None:
    from huggingface_hub import ModelCard

    tokenizer, out = made
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers" and card.data.language == ["ja"]
    assert "vocab-extend" in card.data.tags
    assert card.data.base_model is None  # a local base has no Hub id to name
    report = json.loads((tokenizer / "report.json").read_text(encoding="utf-8"))
    text = card.text
    assert f"{report['added_pieces']:,} ja pieces" in text and "`mean`" in text
    held_out = report["corpora"]["ja (held out)"]
    assert f"{held_out['chars_per_token_extended']:.3f}" in text and "held out" in text
    assert "vocab-extend init-model --model" in text
    assert str(out) not in text  # the output folder is not named: same inputs, same card


def test_written_files_get_the_usual_mode(made: tuple[Path, Path]) -> None:
    _, out = made
    mask = os.umask(0)
    os.umask(mask)
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path.name


def test_known_bases_name_their_hub_id_and_licence() -> None:
    from vocab_extend.model.card import render_card

    card = render_card(title="t", base="smollm2-135m", lang="ko", made=["x"], tokenizer_report=None, bpb={"ko": 1.5},
                       commands=["vocab-extend ..."])
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and card.data.license == "apache-2.0"
    assert "| ko | 1.5000 |" in card.text


def test_push_to_hub_uploads_the_written_folder(made: tuple[Path, Path], tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub

    tokenizer, out = made
    calls: list[tuple[str, object]] = []

    class FakeApi:
        def create_repo(self, repo_id: str, **kwargs: object) -> None:
            calls.append(("create", repo_id))

        def upload_folder(self, *, repo_id: str, folder_path: str, **kwargs: object) -> None:
            calls.append(("upload", (repo_id, sorted(p.name for p in Path(folder_path).iterdir()))))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    target = tmp_path / "pushed"
    assert main(["init-model", "--model", str(out.parent / "base"), "--tokenizer", str(tokenizer),
                 "--output-dir", str(target), "--push-to-hub", "me/pico-ja"]) == 0
    assert calls[0] == ("create", "me/pico-ja")
    repo, files = calls[1][1]  # type: ignore[misc]
    assert repo == "me/pico-ja" and "README.md" in files and "model.safetensors" in files


def test_push_to_hub_offline_is_one_sentence_and_keeps_the_folder(made, tmp_path: Path, monkeypatch, capsys) -> None:
    import huggingface_hub

    tokenizer, out = made

    class OfflineApi:
        def create_repo(self, *args: object, **kwargs: object) -> None:
            raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "HfApi", OfflineApi)
    target = tmp_path / "kept"
    assert main(["init-model", "--model", str(out.parent / "base"), "--tokenizer", str(tokenizer),
                 "--output-dir", str(target), "--push-to-hub", "me/pico-ja"]) == 2
    err = capsys.readouterr().err
    assert "error: could not push" in err and "Traceback" not in err
    assert (target / "model.safetensors").is_file()


def test_a_run_from_an_init_model_folder_reports_whether_extending_paid(made, tmp_path: Path) -> None:
    """report.md compares the extended model with the model it came from, scored independently here."""
    from transformers import AutoModelForCausalLM

    from conftest import SAMPLE_EN, SAMPLE_JA
    from vocab_extend.model.evaluate.bpb import bits_per_byte
    from vocab_extend.pretrain import paid, pretrain
    from vocab_extend.pretrain.config import config_from_dict
    from vocab_extend.tokenizer.loader import load_tokenizer

    tokenizer, out = made
    run = tmp_path / "run"
    config = config_from_dict(dict(
        model=str(out), train=[f"ja={SAMPLE_JA}"], eval={"en": str(SAMPLE_EN), "news": str(SAMPLE_JA / "news.txt")},
        block_size=32, batch_size=4,
        stages=[{"name": "new-rows", "steps": 2, "lr": 1e-3}], warmup_steps=1, eval_every=0, eval_at_start=False,
        eval_max_bytes=1500, save_every=0, progress=False, tensorboard=False, cache_dir=str(tmp_path / "cache"),
        output_dir=str(run)))
    pretrain(config)
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "## Did extending pay?" in report
    base = AutoModelForCausalLM.from_pretrained(str(out.parent / "base")).eval()
    from vocab_extend.corpus import read_documents

    expected = bits_per_byte(base, load_tokenizer("mistral-7b-v0.1"), read_documents(str(SAMPLE_EN)),
                             max_bytes=1500, progress=False)
    section = report.split("## Did extending pay?")[1]
    row = next(line for line in section.splitlines() if line.startswith("| en |"))
    assert row.startswith(f"| en | {expected.bpb:.4f} |") and row.count("|") == 6
    # the decode speed-up is measured on the corpus whose token count fell most: both decode the same text
    text = "\n".join(read_documents(str(SAMPLE_JA / "news.txt")))[:paid.DECODE_CHARS]
    base_steps = len(load_tokenizer("mistral-7b-v0.1")(text, add_special_tokens=False)["input_ids"])
    ext_steps = len(load_tokenizer(str(run / "model"))(text, add_special_tokens=False)["input_ids"])
    assert ext_steps < base_steps
    assert (f"Decoding the same {len(text)} characters of news token by token (batch 1, teacher-forced, KV cache): "
            f"the base model takes {base_steps} steps") in section
    assert f"the extended model {ext_steps} (" in section and "× faster**" in section
