"""Every headline figure is labelled (held out, training sample, training text, eval, as given); text not
trained on carries its size and a seeded bootstrap interval; notes say when fewer pieces are trained or added
than asked; ``--vocab-size`` and ``--total-vocab-size`` say what they count."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

import pytest

from conftest import HELD_OUT_JA, SAMPLE_EN, SAMPLE_JA
from vocab_extend.cli import main
from vocab_extend.heldout import bootstrap_interval
from vocab_extend.tokenizer import cli as merge_cli
from vocab_extend.tokenizer.inputs import (DEFAULT_HELDOUT_FRACTION, SMALL_CORPUS_HELDOUT_FRACTION,
                                           default_heldout_fraction)
from vocab_extend.tokenizer.labels import pieces_notes, row_line
from vocab_extend.tokenizer.measure import format_table, measure_tokenizers


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo's merge (the bundled sample, default options) and what it printed."""
    out = tmp_path_factory.mktemp("demo") / "out"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["merge", "--output-dir", str(out)]) == 0
    return out, err.getvalue()


def test_the_demo_holds_out_enough_text_and_says_how_sure_it_is(demo: tuple[Path, str]) -> None:
    out, printed = demo
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["heldout_fraction"] == SMALL_CORPUS_HELDOUT_FRACTION
    held = report["corpora"]["ja (held out)"]
    assert held["label"] == "held out" and held["documents"] >= 50 and held["chars"] >= 4_000
    low, high = held["ci95_chars_per_token_extended"]
    assert low < held["chars_per_token_extended"] < high and high - low < 0.2
    low, high = held["ci95_reduction"]
    assert low < held["reduction"] < high
    trained = report["corpora"]["ja (training sample)"]
    assert trained["label"] == "training sample" and "ci95_reduction" not in trained
    assert report["corpora"]["en"]["label"] == "eval"
    assert f"95% CI {held['ci95_chars_per_token_extended'][0]:.2f}" in printed
    assert f"{held['documents']} documents, {held['chars']:,} characters" in printed
    assert "quote the held-out ones" in printed
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert f"*ja (held out)*: {held['documents']} documents, {held['chars']:,} characters kept out" in markdown
    assert "bootstrap" in markdown


def test_same_inputs_give_the_same_report_bytes(demo: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = demo
    again = tmp_path / "again"
    assert main(["merge", "--output-dir", str(again)]) == 0
    assert (again / "report.md").read_bytes() == (out / "report.md").read_bytes()
    assert (again / "report.json").read_bytes() == (out / "report.json").read_bytes()
    assert "run" not in json.loads((out / "report.json").read_text(encoding="utf-8"))  # times: run.json


def test_measure_labels_the_training_text_and_gives_intervals_elsewhere(demo: tuple[Path, str], capsys) -> None:
    out, _ = demo
    results = measure_tokenizers({"base": "mistral-7b-v0.1", "ext": str(out)},
                                 {"ja": str(SAMPLE_JA), "news": str(HELD_OUT_JA), "en": str(SAMPLE_EN)},
                                 progress=False)
    assert results["ja"]["ext"]["label"] == results["news"]["ext"]["label"] == "training text"
    assert "ci95_reduction" not in results["ja"]["ext"]
    en = results["en"]["ext"]
    assert en["label"] == "as given" and en["documents"] == 81 and en["ci95_chars_per_token"] is not None
    assert "ci95_reduction" not in results["en"]["base"]  # the reference: no reduction to bound
    table = format_table(results)
    assert "| ja | training text | ext |" in table and "quote held-out figures" in table
    assert main(["measure", "--tokenizer", "base=mistral-7b-v0.1", "--tokenizer", f"ext={out}",
                 "--corpus", f"en={SAMPLE_EN}"]) == 0
    printed = capsys.readouterr().out
    assert "| en | as given | ext |" in printed and "quote held-out" not in printed


def test_a_training_file_given_to_merge_as_eval_is_labelled(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    assert main(["merge", "--corpus", str(SAMPLE_JA), "--eval", f"news={HELD_OUT_JA}", "--output-dir", str(out),
                 "--vocab-size", "2000"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["corpora"]["news"]["label"] == "training text"
    assert "news [training text]" in capsys.readouterr().err


def test_bootstrap_is_seeded_and_brackets_the_figure() -> None:
    chars, tokens = [30, 50, 20, 80, 45, 60], [20, 25, 15, 30, 40, 33]
    first = bootstrap_interval([chars, tokens], lambda c, t: c / t)
    assert first == bootstrap_interval([chars, tokens], lambda c, t: c / t)
    assert first is not None and first[0] <= sum(chars) / sum(tokens) <= first[1]


def test_held_out_share_is_raised_only_for_small_corpora(tmp_path: Path) -> None:
    assert default_heldout_fraction([str(SAMPLE_JA)]) == SMALL_CORPUS_HELDOUT_FRACTION
    assert default_heldout_fraction([str(HELD_OUT_JA)]) == DEFAULT_HELDOUT_FRACTION  # too small to spare 20%
    assert default_heldout_fraction(["hf:wikimedia/wikipedia"]) == DEFAULT_HELDOUT_FRACTION
    big = tmp_path / "big.txt"
    big.write_text("日本語の文です。\n" * 100_000, encoding="utf-8")
    assert default_heldout_fraction([str(big)]) == DEFAULT_HELDOUT_FRACTION


def test_a_note_when_far_fewer_pieces_are_added_than_trained() -> None:
    report = {"added_pieces": 500, "lang": "ja", "skipped": {"already_in_base": 1200, "no_new_script_char": 300}}
    (note,) = pieces_notes(report)
    assert "500 of the 2,000" in note and "1,200 already in the base" in note and "300 without a character" in note
    assert pieces_notes({"added_pieces": 900, "skipped": {"dead": 10}}) == []
    line = row_line("ja (training sample)", {"label": "training sample", "chars_per_token_base": 0.9,
                                             "chars_per_token_extended": 1.9, "reduction": 0.5})
    assert line == "ja (training sample): 0.90 -> 1.90 chars/token (50.0% fewer tokens)"


def test_the_byte_level_trainer_says_when_it_trains_fewer_tokens(capsys) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    from vocab_extend.families.bytelevel.train import train_new_model

    base = Tokenizer(models.BPE())
    base.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    model = train_new_model(base, ["日本語の文です。"] * 3, vocab_size=16_000, show_progress=False)
    err = capsys.readouterr().err
    assert f"trained {model.get_vocab_size():,} tokens, not the 16,000 asked" in err and "at least 2 times" in err


def test_total_vocab_size(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    assert main(["merge", "--total-vocab-size", "34000", "--output-dir", str(out)]) == 0
    err = capsys.readouterr().err
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["total_vocab_size_asked"] == 34_000 and report["new_model_pieces"] == 2_000
    assert report["vocab_size"] == 32_000 + report["added_pieces"] < 34_000
    assert f"--total-vocab-size 34,000 gave {report['vocab_size']:,} pieces" in err
    for argv, words in ((["--total-vocab-size", "32000"], "beyond the base's 32,000: give at least 32,300"),
                        (["--total-vocab-size", "34000", "--vocab-size", "2000"], "give one of them")):
        assert main(["merge", *argv, "--output-dir", str(tmp_path / "x")]) == 2
        assert words in capsys.readouterr().err


def test_every_merge_option_has_help_and_vocab_size_says_what_it_counts() -> None:
    parser = argparse.ArgumentParser()
    merge_cli.add_arguments(parser)
    for action in parser._actions:
        assert action.help, action.option_strings
    helps = {action.option_strings[0]: action.help for action in parser._actions}
    assert "not the total" in helps["--vocab-size"] and "base's size" in helps["--total-vocab-size"]
    for option in ("--model-type", "--character-coverage", "--seed", "--verify-sample", "--heldout-fraction"):
        assert "default" in helps[option]
