"""bench/scaling.py: the synthetic corpus generator is deterministic, keeps its held-out documents out, and is
not the source repeated; the measured runner reports a child's peak RSS and stops it at the limit."""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import scaling  # noqa: E402
import scaling_corpus  # noqa: E402
import scaling_floor  # noqa: E402
import scaling_report  # noqa: E402

SOURCE = ROOT / "corpora" / "ja"  # the bundled sample: always there
SIZE = 60_000


def _held_out_by_rule(folder: Path, fraction: float) -> set[str]:
    """The documents the generator must hold out, by the documented rule, computed here independently: files
    named ``*test*`` whole, else a BLAKE2b-64 content hash below ``fraction`` × 2⁶⁴."""
    held = set()
    for path in sorted(folder.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            doc = line.strip()
            key = int.from_bytes(hashlib.blake2b(doc.encode("utf-8"), digest_size=8).digest(), "big")
            if doc and ("test" in path.stem or key < fraction * 2**64):
                held.add(doc)
    return held


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, scaling_corpus.Source]:
    source = scaling_corpus.load_source(SOURCE)
    folder = tmp_path_factory.mktemp("scaling")
    first = scaling_corpus.generate(source, SIZE, 0, folder / "a.txt")
    second = scaling_corpus.generate(source, SIZE, 0, folder / "b.txt")
    other = scaling_corpus.generate(source, SIZE, 1, folder / "c.txt")
    return Path(first.path), Path(second.path), Path(other.path), source


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_text(generated) -> None:
    first, second, other, _ = generated
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    assert SIZE <= first.stat().st_size < SIZE + 10_000  # whole documents, stopping once the size is reached


def test_held_out_documents_never_appear_in_the_corpus(generated) -> None:
    first, _, other, source = generated
    expected = _held_out_by_rule(SOURCE, scaling_corpus.HOLDOUT_FRACTION)
    assert expected and {d for docs in source.held_out.values() for d in docs} == expected
    for path in (first, other):
        text = path.read_text(encoding="utf-8")
        lines = set(text.splitlines())
        generated_sentences = set(re.findall(r"[^。！？!?\n]*[。！？!?]+[」』）)]*", text))
        for doc in expected:
            assert doc not in lines
            assert len(doc) < 30 or doc not in text
            held_sentences = re.findall(r"[^。！？!?]*[。！？!?]+[」』）)]*", doc)
            assert not generated_sentences & set(held_sentences)


def test_the_corpus_is_new_text_not_the_source_repeated(generated) -> None:
    first, _, _, _ = generated
    source_lines = {line.strip() for path in SOURCE.glob("*.txt") for line in path.read_text("utf-8").splitlines()}
    lines = first.read_text(encoding="utf-8").splitlines()
    copied = sum(line in source_lines for line in lines)
    assert copied < 0.5 * len(lines)
    assert len(set(lines)) > 0.8 * len(lines)


def test_the_generator_is_reused_only_for_the_same_settings(tmp_path: Path) -> None:
    source = scaling_corpus.load_source(SOURCE)
    path = tmp_path / "x.txt"
    scaling_corpus.generate(source, 5_000, 0, path)
    path.write_text("stale\n", encoding="utf-8")  # same settings: the sidecar says it is done, kept as is
    assert scaling_corpus.generate(source, 5_000, 0, path).bytes >= 5_000
    assert path.read_text(encoding="utf-8") == "stale\n"
    assert scaling_corpus.generate(source, 6_000, 0, path).bytes >= 6_000  # other settings: written again
    assert path.read_text(encoding="utf-8") != "stale\n"


needs_time = pytest.mark.skipif(not shutil.which(scaling.TIME), reason="GNU time is not installed")


@needs_time
def test_the_runner_reports_the_child_peak_rss_not_the_parent(tmp_path: Path) -> None:
    ballast = bytearray(300_000_000)  # this process is large; the child's figure must not inherit it
    ballast[::4096] = b"1" * len(ballast[::4096])
    grow = "x = bytearray(150_000_000); x[::4096] = b'1' * len(x[::4096])"
    run = scaling.run_measured([sys.executable, "-c", grow], tmp_path / "a.log", 10**11)
    assert run["exit"] == 0 and not run["killed_at_max_rss"]
    assert 0.15 <= run["peak_rss_gb"] < 0.3
    del ballast


@needs_time
def test_the_runner_stops_a_child_past_the_limit(tmp_path: Path) -> None:
    grow = "import time; x = bytearray(400_000_000); x[::4096] = b'1' * len(x[::4096]); time.sleep(60)"
    run = scaling.run_measured([sys.executable, "-c", grow], tmp_path / "a.log", 200_000_000)
    assert run["killed_at_max_rss"] and run["exit"] != 0
    assert run["wall_s"] < 50


def test_an_arm_is_skipped_when_its_extrapolated_rss_passes_the_limit() -> None:
    results = {"20MB": {"size_mb": 20.0, "figures": {"ours-bytelevel": {"peak_rss_gb": 2.0}}}}
    predicted, how = scaling._predicted_rss_gb("ours-bytelevel", 1000.0, results)
    assert predicted == pytest.approx(100.0) and "20 MB" in how
    predicted, _ = scaling._predicted_rss_gb("ours-sentencepiece", 100.0, results)  # no figure: issue 20's
    assert predicted == pytest.approx(scaling.PRIOR_GB_PER_MB["ours-sentencepiece"] * 100)


def _sample_by_rule(corpus: Path, fraction: float, budget: int, seed: int) -> list[str]:
    """The merge's training sample by the documented rules, computed here independently: documents are the
    non-blank lines; the held-out share is a BLAKE2b-64 content hash below ``fraction`` × 2⁶⁴; the sample is
    the distinct documents of smallest seeded, personalised BLAKE2b-64 key, in key order, while they fit the
    budget, each as many times as the corpus has it (all of them, in reading order, when they all fit)."""
    docs = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        doc = line.strip()
        key = int.from_bytes(hashlib.blake2b(doc.encode("utf-8"), digest_size=8).digest(), "big")
        if doc and key >= fraction * 2**64:
            docs.append(doc)

    def sample_key(doc: str) -> int:
        digest = hashlib.blake2b(doc.encode("utf-8"), digest_size=8, salt=seed.to_bytes(8, "big"),
                                 person=b"vx-train-sample").digest()
        return int.from_bytes(digest, "big")

    if sum(map(len, docs)) <= budget:
        return docs
    picked, chars = [], 0
    for doc in sorted(set(docs), key=sample_key):
        if picked and chars + len(doc) > budget:
            break
        picked.append(doc)
        chars += len(doc)
    return [doc for doc in picked for _ in range(docs.count(doc))]


def test_the_floors_train_on_the_merge_s_own_sample(generated) -> None:
    corpus, _, _, _ = generated  # 60 KB: below the small-corpus minimum, so the default 5% is held out
    sampled = scaling_floor.training_text(corpus, 8_000, scaling.DEFAULT_SAMPLER)
    assert sampled == _sample_by_rule(corpus, 0.05, 8_000, 0)
    assert 0 < sum(map(len, set(sampled))) <= 8_000  # the budget counts each distinct line once
    whole = _sample_by_rule(corpus, 0.05, 10**12, 0)
    assert sum(map(len, sampled)) < sum(map(len, whole)) / 2
    assert list(scaling_floor.training_text(corpus, 0, scaling.DEFAULT_SAMPLER)) == whole  # streamed, all


def test_the_file_floor_asks_for_as_many_sentences_as_the_sample_has_documents(tmp_path: Path) -> None:
    corpus = scaling_corpus.Generated(str(tmp_path / "c.txt"), 100, 100, documents=50, chars=5_000, sha256="",
                                      seed=0, distinct_clause_share=1.0)
    args = scaling.parse_args(["--sample-chars", "1000"])
    args.floor_setup = tmp_path
    command = scaling.arm_command("floor-sentencepiece-file", corpus, tmp_path / "out", args)
    assert command[command.index("--floor-sentences") + 1] == "10"  # 1,000 characters at 100 per document
    assert command[command.index("--floor") + 1] == "sentencepiece-file"
    defaults = scaling.parse_args([])
    defaults.floor_setup = tmp_path
    ours = scaling.arm_command("ours-bytelevel", corpus, tmp_path / "out", defaults)
    assert "--sample-chars" not in ours  # defaults: the merge's own budget ...
    floor = scaling.arm_command("floor-bytelevel", corpus, tmp_path / "out", defaults)
    assert floor[floor.index("--sample-chars") + 1] == str(scaling.DEFAULT_SAMPLE_CHARS)  # ... the floors' too


def test_done_when_reads_the_largest_size_against_100_mb() -> None:
    def entry(size: float, rss: float, wall_ratio: float) -> dict:
        return {"size_mb": size, "figures": {"ours-sentencepiece": {"peak_rss_gb": rss}},
                "ratios_ours_over_floor": {"sentencepiece": {"wall_s": wall_ratio}}}

    checks = scaling_report.done_when({"100MB": entry(100.0, 2.0, 1.0), "1GB": entry(1000.0, 2.3, 1.3)})
    line = checks["sentencepiece"]
    assert checks["size_mb"] == 1000.0 and line["rss_at_most_4gb"]
    assert line["rss_over_100mb"] == pytest.approx(1.15) and not line["rss_within_10pct_of_100mb"]
    assert line["wall_over_floor"] == 1.3 and not line["wall_at_most_1_2x"]
    assert "bytelevel" not in checks
