"""The adaptation benches' held-out kinds (``bench/heldout_kinds.py``): the selection never overlaps the
training text, and the spread of a figure matches answers worked out by hand."""

from __future__ import annotations

import hashlib
import math
import sys

import pytest

from conftest import ROOT, SHARED

sys.path.insert(0, str(ROOT / "bench"))
import heldout_kinds as hk  # noqa: E402  (bench helpers are not a package)

from vocab_extend.errors import VocabExtendError  # noqa: E402


def _held_by_hash(text: str, share: float) -> bool:
    """The content-hash rule, computed here from its definition (first 64 bits of BLAKE2b < share × 2⁶⁴)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") < share * 2**64


def _tiny_corpus() -> tuple[dict[str, list[str]], list[hk.Kind], list[str]]:
    sentences = [f"文{i}です。" for i in range(400)]
    docs = {
        "ja/wiki_train.txt": [f"記事{i}" for i in range(50)] + ["共通の段落"],
        "ja/short.txt": sentences,                          # trained on, and a kind's file (share 0.3)
        "ja/wiki_test.txt": ["共通の段落", "別の段落", "文3です。", "別の段落2"],  # held out whole
    }
    kinds = [hk.Kind("wiki", "ja", "ja/wiki_test.txt", 1.0, ""), hk.Kind("short", "ja", "ja/short.txt", 0.3, "")]
    return docs, kinds, ["ja/wiki_train.txt", "ja/short.txt"]


def test_held_out_text_is_never_training_text() -> None:
    docs, kinds, train = _tiny_corpus()
    kept, held = hk.split(docs, kinds, train)
    trained = {d for texts in kept.values() for d in texts}
    for name, texts in held.items():
        assert texts and not set(texts) & trained, name
    # the whole-file kind loses exactly the documents that are training text
    assert sorted(held["wiki"]) == ["別の段落", "別の段落2"]
    # the shared file is cut by the hash rule: the held-out share out of training, the rest in it
    expected = [s for s in docs["ja/short.txt"] if _held_by_hash(s, 0.3)]
    assert sorted(held["short"]) == sorted(expected) and 60 < len(expected) < 180
    assert kept["ja/short.txt"] == [s for s in docs["ja/short.txt"] if not _held_by_hash(s, 0.3)]
    assert kept["ja/wiki_train.txt"] == docs["ja/wiki_train.txt"]  # a file no kind reads is trained whole


def test_selection_is_the_same_whatever_the_order() -> None:
    docs, kinds, train = _tiny_corpus()
    shuffled = {path: list(reversed(texts)) for path, texts in docs.items()}
    assert hk.split(docs, kinds, train)[1] == hk.split(shuffled, kinds, train)[1]


def test_written_training_shares_read_back(tmp_path) -> None:
    docs, kinds, train = _tiny_corpus()
    kept, _ = hk.split(docs, kinds, train)
    paths = hk.write_training(kept, tmp_path)
    for path, rel in zip(paths, kept):
        assert open(path, encoding="utf-8").read().splitlines() == kept[rel]


def test_a_tokenizer_trained_on_a_held_out_file_is_refused(tmp_path) -> None:
    kind = hk.Kind("wiki", "ja", "ja/wiki_test.txt", 1.0, "")
    with pytest.raises(VocabExtendError, match="held-out wiki"):
        hk.refuse_trained_on([str(tmp_path / "ja" / "wiki_test.txt")], tmp_path, [kind])
    hk.refuse_trained_on([str(tmp_path / "elsewhere" / "wiki_test.txt")], tmp_path, [kind])  # no error


def test_units_keep_whole_documents_within_the_budget() -> None:
    docs = ["あ" * 10, "い" * 10, "う" * 10, "え" * 10]  # 30 bytes each
    assert hk.units(docs, 100, 50) == [["あ" * 10, "い" * 10], ["う" * 10, "え" * 3]]


def _scores(bpbs: list[float], nbytes: int = 1000) -> hk.UnitScores:
    """Units of ``nbytes`` bytes each whose bits per byte are ``bpbs``."""
    return hk.UnitScores([b * math.log(2) * nbytes for b in bpbs], [nbytes] * len(bpbs), [100] * len(bpbs), 0.0)


def test_bootstrap_interval_of_two_units_spans_them() -> None:
    # resampling two units gives both-first (p = 1/4), mixed (1/2), both-second (1/4): the 2.5th and 97.5th
    # percentiles are the two units' own figures
    figure = hk.bpb_figure(_scores([1.0, 3.0]))
    assert figure["bpb"] == 2.0 and figure["ci95"] == [1.0, 3.0]


def test_identical_units_have_no_spread() -> None:
    figure = hk.bpb_figure(_scores([2.5] * 20))
    assert figure["ci95"] == [2.5, 2.5] and figure["se"] == 0.0


def test_standard_error_is_the_mean_s_for_equal_units() -> None:
    # equal bytes: the ratio is the mean of the units' bits per byte, its error stdev / sqrt(n)
    figure = hk.bpb_figure(_scores([1.0, 2.0, 3.0, 4.0]))
    assert figure["se"] == pytest.approx(math.sqrt(5 / 3) / 2, abs=1e-5)  # stdev 1.2910, n = 4
    assert hk.bpb_figure(_scores([2.0]))["ci95"] is None


def test_gap_closed_and_change_against_known_answers() -> None:
    base, mean, arm = _scores([2.0] * 5), _scores([3.0] * 5), _scores([2.25] * 5)
    assert hk.gap_closed_figure(arm, mean, base) == {"value": 0.75, "ci95": [0.75, 0.75]}
    assert hk.change_figure(mean, base) == {"value": 0.5, "ci95": [0.5, 0.5]}


def test_verdict_names_the_kinds_a_figure_holds_on() -> None:
    figures = {"a": {"value": 0.6, "ci95": [0.55, 0.7]}, "b": {"value": 0.3, "ci95": [0.2, 0.4]},
               "c": {"value": 0.5, "ci95": [0.4, 0.6]}}
    v = hk.verdict(figures, 0.5, math.inf)
    assert (v["holds_on"], v["fails_on"], v["unclear_on"]) == (["a"], ["b"], ["c"])
    assert v["summary"] == "holds on a only (1 of 3 kinds)" and v["range"] == [0.3, 0.6]
    assert hk.verdict({"a": figures["a"]}, 0.5, 1.0)["summary"] == "holds on every kind (1)"


@pytest.mark.skipif(not (SHARED / "ja" / "jsquad_test_wikipedia.txt").is_file(), reason="needs the shared corpora")
def test_shared_kinds_are_large_enough_and_apart_from_training() -> None:
    kept, held = hk.load(SHARED)
    trained = {d for texts in kept.values() for d in texts}
    for kind in hk.KINDS:
        texts = held[kind.name]
        assert sum(len(t.encode("utf-8")) for t in texts) >= 50_000, kind.name
        assert not set(texts) & trained, kind.name


def test_extension_pays_end_figures_per_kind() -> None:
    import extension_pays as pays

    assert pays.EVAL["ja"] == "ja_wikipedia" and pays.EVAL["en"] == "en_wikipedia_news"  # the curves' old names
    assert set(pays.EVAL.values()) == {k.name for k in hk.KINDS} and "ja" in pays.JA and "en" not in pays.JA
    base = {c: _scores([2.0] * 4) for c in pays.EVAL}
    mean = {c: _scores([1.9 if c == "ja" else 2.2] * 4) for c in pays.EVAL}  # better on Wikipedia only
    end = pays.end_figures({"base": base, "mean": mean})
    assert end["change_vs_base"]["mean"]["ja"] == {"value": -0.05, "ci95": [-0.05, -0.05]}
    verdict = end["targets"]["ja_mean_at_most_base_at_end"]
    assert verdict["holds_on"] == ["ja"] and sorted(verdict["fails_on"]) == sorted(c for c in pays.JA if c != "ja")
    assert "holds on ja only" in end["summary"][0]


def test_the_summary_never_reads_a_gain_below_the_base_as_a_gap_closed_backwards() -> None:
    """Where ``mean`` is already below the base, ``(mean - distill) / (mean - base)`` is negative for a distill
    arm that is better still: the summary gives both changes against the base instead of that share."""
    import embedding_init

    def figure(value: float) -> dict:
        return {"value": value, "ci95": [value - 0.01, value + 0.01]}

    figures = {"bpb_change_vs_base": {"mean": {"wiki": figure(0.20), "short": figure(-0.21)},
                                      "distill": {"wiki": figure(0.10), "short": figure(-0.22)}},
               "gap_closed": {"distill": {"wiki": figure(0.5), "short": figure(-0.04)}}}
    line = embedding_init.summary_lines(figures, {})[0]
    assert "wiki 50% [49%, 51%]" in line
    assert "short: no gap (mean -21% [-22%, -20%] against the base, distill -22% [-23%, -21%])" in line
    assert "-4%" not in line
