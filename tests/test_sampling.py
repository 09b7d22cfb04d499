"""The training sample (``merge --sample-chars``): deterministic, within its budget, independent of the order of
the input, bounded in memory while a corpus of any size streams through it, and the only text the trainer gets."""

from __future__ import annotations

import hashlib
import json
import random
import tracemalloc
from pathlib import Path
from typing import Iterator

import pytest

from vocab_extend.cli import main
from vocab_extend.corpus import CorpusStats
from vocab_extend.errors import VocabExtendError
from vocab_extend.tokenizer import inputs
from vocab_extend.tokenizer.inputs import Collector, ExtendConfig, bounded_documents, new_model, training_documents
from vocab_extend.tokenizer.sampling import BudgetSampler, check_budget, sample_key

KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
KANJI = "日本語東京大阪京都学校先生時間今年会社電話新聞映画音楽天気"


def documents(count: int, seed: int = 0, low: int = 20, high: int = 120) -> Iterator[str]:
    """``count`` made-up Japanese lines, all different, generated one at a time (never held as a list)."""
    rng = random.Random(seed)
    pool = ["".join(rng.choice(KANA if rng.random() < 0.7 else KANJI) for _ in range(rng.randint(low, high)))
            for _ in range(500)]
    for index in range(count):
        yield f"{pool[rng.randrange(len(pool))]}。{index}"


def sampled(docs: list[str], budget: int, seed: int = 0) -> list[str]:
    return BudgetSampler(budget, seed).add_all(docs).documents()


def smallest_keys_within(docs: list[str], budget: int, seed: int = 0) -> list[str]:
    """The oracle: sort by key, take documents while they fit (the first always)."""
    picked, total = [], 0
    for doc in sorted(docs, key=lambda d: sample_key(d, seed)):
        if picked and total + len(doc) > budget:
            break
        picked.append(doc)
        total += len(doc)
    return picked


def test_the_sample_is_the_documents_of_smallest_key_that_fit_the_budget() -> None:
    docs = list(documents(3_000))
    for budget in (50, 1_000, 30_000, 100_000):
        assert sampled(docs, budget) == smallest_keys_within(docs, budget)


def test_same_corpus_same_sample_and_reordered_or_split_input_gives_the_same_sample() -> None:
    """Reordering the lines (or reading them from several files in any order) changes nothing: a sampled corpus
    is given to the trainer in key order."""
    docs = list(documents(2_000))
    first = sampled(docs, 20_000)
    assert sampled(docs, 20_000) == first
    shuffled = docs[:]
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert sampled(shuffled, 20_000) == first
    halves = BudgetSampler(20_000)
    halves.add_all(docs[1_000:]).add_all(docs[:1_000])
    assert halves.documents() == first
    assert sampled(docs, 20_000, seed=1) != first  # --seed draws another sample


def test_a_corpus_within_the_budget_passes_whole_in_its_order() -> None:
    docs = list(documents(500))
    sampler = BudgetSampler(sum(map(len, docs)))
    assert sampler.add_all(docs).documents() == docs
    assert sampler.stats.whole and sampler.stats.sampled_chars == sampler.stats.read_chars


def test_the_budget_holds_with_at_most_one_document_over_it() -> None:
    docs = list(documents(1_000))
    for budget in (100, 5_000, 40_000):
        sampler = BudgetSampler(budget)
        picked = sampler.add_all(docs).documents()
        assert sum(map(len, picked)) == sampler.stats.sampled_chars <= budget
        assert not sampler.stats.whole and sampler.stats.read_documents == 1_000
    giant = "長" * 10_000  # larger than the budget: kept alone when its key is the smallest, never with others
    sampler = BudgetSampler(1_000)
    picked = sampler.add_all([giant, *docs[:50]]).documents()
    assert sum(map(len, picked)) <= 1_000 + len(giant)
    assert picked == smallest_keys_within([giant, *docs[:50]], 1_000)


def test_memory_stays_bounded_while_a_large_corpus_streams_through() -> None:
    """About 11M characters (23 MB as Python strings) stream through a 100,000-character sampler: it never holds
    more than the budget and one document, and Python's allocations stay a small fraction of the corpus."""
    budget, longest = 100_000, 140
    sampler = BudgetSampler(budget)
    tracemalloc.start()
    try:
        peak_held = 0
        for doc in documents(120_000, low=60, high=130):
            sampler.add(doc)
            peak_held = max(peak_held, sampler.held_chars)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sampler.stats.read_chars > 10_000_000
    assert peak_held <= budget + longest
    assert peak_bytes < 6_000_000, peak_bytes  # a list of the corpus would take over 20 MB
    assert sampler.stats.sampled_chars <= budget


@pytest.mark.parametrize("value", [-1, -10_000_000])
def test_bad_budgets_are_one_sentence(value: int) -> None:
    with pytest.raises(VocabExtendError, match="must be 0 .* or a positive number of characters"):
        check_budget(value)


class Recorder:
    """A family that records what its trainer is given and stops there."""

    name = "recorder"

    def __init__(self) -> None:
        self.texts: object = None
        self.everything: list[str] | None = None

    def train(self, base, texts, options, collector):
        self.texts, self.everything = texts, collector.everything
        raise KeyboardInterrupt  # nothing more to see


def _train_on(tmp_path: Path, budget: int, count: int = 3_000) -> tuple[Recorder, Collector, list[str]]:
    """What the trainer got, the collector, and the held-out documents (filled as the corpus is read)."""
    corpus = tmp_path / "ja.txt"
    corpus.write_text("\n".join(documents(count)) + "\n", encoding="utf-8")
    config = ExtendConfig(corpus=[str(corpus)], lang="ja", sample_chars=budget, heldout_fraction=0.05)
    config.train.show_progress = False
    family, collector, held = Recorder(), Collector(100, 0), []
    with pytest.raises(KeyboardInterrupt):
        new_model(config, family, None, collector, CorpusStats(), held)  # type: ignore[arg-type]
    return family, collector, held


def _not_in(held: list[str], count: int = 3_000) -> list[str]:
    kept_out = set(held)
    return [doc for doc in documents(count) if doc not in kept_out]


def test_the_trainer_gets_only_the_sample(tmp_path: Path) -> None:
    family, collector, held = _train_on(tmp_path, 20_000)
    trained = _not_in(held)
    assert isinstance(family.texts, list) and family.everything is family.texts  # the support check re-reads it
    assert family.texts == smallest_keys_within(trained, 20_000)
    assert collector.sampling is not None and collector.sampling.read_documents == len(trained)
    assert collector.sampling.sampled_chars <= 20_000 < collector.sampling.read_chars


def test_sample_chars_zero_streams_everything_to_the_trainer(tmp_path: Path) -> None:
    family, _, held = _train_on(tmp_path, 0)
    assert not isinstance(family.texts, list)  # a stream, read by the trainer as it goes
    streamed = list(family.texts)  # type: ignore[call-overload]
    assert streamed == _not_in(held)


def test_held_out_text_kept_for_the_report_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "ja.txt"
    corpus.write_text("\n".join(documents(3_000)) + "\n", encoding="utf-8")
    monkeypatch.setattr(inputs, "HELDOUT_KEEP_CHARS", 1_000)
    held: list[str] = []
    config = ExtendConfig(corpus=[str(corpus)], heldout_fraction=0.2)
    trained = list(training_documents(config, CorpusStats(), held))
    assert 0 < sum(map(len, held)) <= 1_000 + max(map(len, held))
    assert len(trained) + len(held) < 3_000  # the rest of the share is still kept out of training


def test_held_out_documents_kept_for_the_report_are_the_first_of_the_share(tmp_path: Path) -> None:
    """At most HELDOUT_KEEP documents of the held-out share are kept for the report (verification encodes each
    of them): the first ones in reading order, found here by the held-out rule computed independently (a
    BLAKE2b-64 content hash below fraction × 2⁶⁴); the rest of the share is still kept out of training."""
    fraction = 0.2
    docs = list(documents(int(inputs.HELDOUT_KEEP / fraction * 1.5), low=5, high=10))
    corpus = tmp_path / "ja.txt"
    corpus.write_text("\n".join(docs) + "\n", encoding="utf-8")
    share = [doc for doc in docs if int.from_bytes(hashlib.blake2b(doc.encode("utf-8"), digest_size=8).digest(),
                                                   "big") < fraction * 2**64]
    assert len(share) > inputs.HELDOUT_KEEP and sum(map(len, share)) < inputs.HELDOUT_KEEP_CHARS
    held: list[str] = []
    trained = list(training_documents(ExtendConfig(corpus=[str(corpus)], heldout_fraction=fraction),
                                      CorpusStats(), held))
    assert held == share[:inputs.HELDOUT_KEEP]
    assert len(trained) == len(docs) - len(share)


def test_eval_corpora_are_read_up_to_their_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    corpus = tmp_path / "eval.txt"
    corpus.write_text("\n".join(documents(2_000)) + "\n", encoding="utf-8")
    monkeypatch.setattr(inputs, "EVAL_MAX_BYTES", 10_000)
    docs = bounded_documents(ExtendConfig(), str(corpus))
    assert 10_000 <= sum(len(d.encode()) for d in docs) < 10_000 + 500 and len(docs) < 2_000
    assert "measured and checked on its first" in capsys.readouterr().err


def _merge(tmp_path: Path, name: str, *args: str) -> tuple[Path, dict]:
    out = tmp_path / name
    assert main(["merge", "--output-dir", str(out), *args]) == 0  # the bundled corpus: 19,089 characters trained on
    return out, json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_merge_reports_what_it_read_and_sampled_and_zero_trains_on_everything(tmp_path: Path, capsys) -> None:
    whole, report = _merge(tmp_path, "default")
    assert report["sample"]["ja"]["whole"] and report["sample"]["ja"]["budget_chars"] == 10_000_000
    everything, report0 = _merge(tmp_path, "zero", "--sample-chars", "0")
    assert report0["sample"]["ja"]["whole"] and report0["sample"]["ja"]["read_chars"] == \
        report["sample"]["ja"]["read_chars"]
    for name in ("tokenizer.model", "tokenizer.json", "new_language.model"):  # within the budget: the same files
        assert (whole / name).read_bytes() == (everything / name).read_bytes(), name
    capsys.readouterr()
    small, report_small = _merge(tmp_path, "small", "--sample-chars", "10000")
    sample = report_small["sample"]["ja"]
    assert not sample["whole"] and sample["sampled_chars"] <= 10_000 < sample["read_chars"]
    assert f"trained on a content-hashed sample of {sample['sampled_documents']:,}" in capsys.readouterr().err
    assert "- training text (ja): read " in (small / "report.md").read_text(encoding="utf-8")
    run = json.loads((small / "run.json").read_text(encoding="utf-8"))  # times and memory: apart from the report
    assert run["peak_rss_mb"] > 0 and {"reading and sampling", "training", "verification"} <= set(run["phase_seconds"])


@pytest.mark.parametrize("value, expected", [("-5", "--sample-chars -5 must be 0"), ("ten", "invalid int value")])
def test_bad_sample_chars_on_the_command_line(value: str, expected: str, tmp_path: Path, capsys) -> None:
    code = main(["merge", "--sample-chars", value, "--output-dir", str(tmp_path / "o")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and expected in errors[0]
    assert not (tmp_path / "o").exists()


def test_a_corpus_sampled_in_parts_gives_the_sample_of_the_whole(tmp_path: Path) -> None:
    """Each part sampled on its own (started with the cut-off known so far) and the parts absorbed in reading
    order: the same sample, order and counts as one sampler reading everything, copies included."""
    docs = list(documents(3_000))
    docs += random.Random(3).choices(docs, k=600)  # copies, some read long after their first
    for budget in (300, 20_000, 10**6):
        whole = BudgetSampler(budget).add_all(docs)
        expected = whole.documents()
        for cuts in ([1_000, 2_000], [10, 3_500], [1_800]):
            merged = BudgetSampler(budget)
            for start, end in zip([0, *cuts], [*cuts, len(docs)]):
                part = BudgetSampler(budget, cutoff=merged.cutoff).add_all(docs[start:end])
                merged.absorb(part.part())
            assert merged.documents() == expected
            assert merged.stats == whole.stats
            assert merged.smallest(50) == whole.smallest(50)
    assert whole.stats.whole and expected == docs  # within the budget: everything, copies and order kept


def test_a_sampled_corpus_counts_a_line_once_and_trains_on_all_its_copies() -> None:
    docs = list(documents(2_000))
    copies = docs + docs[:500] + docs[:100]
    random.Random(0).shuffle(copies)
    sampler = BudgetSampler(20_000).add_all(copies)
    distinct = smallest_keys_within(docs, 20_000)  # the budget is filled with distinct text
    assert sampler.documents() == [doc for doc in distinct for _ in range(copies.count(doc))]
    assert sampler.stats.sampled_documents == len(distinct) and sampler.stats.sampled_chars <= 20_000
    assert sampler.stats.duplicates == sum(copies.count(doc) - 1 for doc in distinct) > 0
    assert sampler.smallest(10) == distinct[:10]
