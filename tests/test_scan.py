"""Reading a large corpus on every core (``vocab_extend/tokenizer/scan.py``) gives exactly what one process
reading it line by line gives: the same training sample in the same order, the same held-out documents, the
same verification sample and counts; a corpus it does not handle the same way falls back to that reader."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from vocab_extend.cli import main
from vocab_extend.corpus import CorpusStats
from vocab_extend.tokenizer import inputs, scan
from vocab_extend.tokenizer.inputs import Collector, ExtendConfig, new_model

from test_sampling import Recorder, documents


def _write_corpus(folder: Path, seed: int = 0) -> list[Path]:
    """Two files of made-up Japanese lines with what a line reader must get right: copies of lines, blank and
    white-space lines, CRLF ends, spaces kept at both ends, and a last line without its line end."""
    rng = random.Random(seed)
    docs = list(documents(1_500, seed=seed))
    lines = []
    for doc in docs:
        lines.append(doc)
        roll = rng.random()
        if roll < 0.1:
            lines.append(rng.choice(docs[:50]))  # a copy
        elif roll < 0.13:
            lines.append(rng.choice(["", "   ", "\u3000"]))
        elif roll < 0.15:
            lines.append(f"  {doc[:10]} ")
    folder.mkdir(parents=True, exist_ok=True)
    first, second = folder / "a.txt", folder / "b.txt"
    half = len(lines) // 2
    first.write_bytes("\r\n".join(lines[:half]).encode("utf-8") + b"\r\n")
    second.write_bytes("\n".join(lines[half:]).encode("utf-8"))  # no line end at the end
    return [first, second]


def _read(folder: Path, budget: int, parallel: bool, monkeypatch: pytest.MonkeyPatch) -> dict:
    """What the trainer, the collector, the held-out list and the corpus counts got."""
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0 if parallel else 10**15)
    monkeypatch.setattr(scan, "CHUNK_BYTES", 3_000)  # many ranges, cut in the middle of files
    config = ExtendConfig(corpus=[str(folder)], lang="ja", sample_chars=budget, heldout_fraction=0.2)
    config.train.show_progress = False
    assert (inputs.parallel_files(config) is not None) == parallel
    family, collector, held, stats = Recorder(), Collector(300, 0), [], CorpusStats()
    scans: list[object] = []
    real = scan.scan_sample
    monkeypatch.setattr(scan, "scan_sample", lambda *a, **k: scans.append(real(*a, **k)) or scans[-1])
    with pytest.raises(KeyboardInterrupt):
        new_model(config, family, None, collector, stats, held)  # type: ignore[arg-type]
    assert collector.sampling is not None
    read_on_every_core = bool(scans and scans[0] is not None)
    return {"read on every core": read_on_every_core, "texts": family.texts,
            "everything": family.everything is family.texts, "held": held, "verification": collector.sample, "sampling": collector.sampling.as_dict(),
            "counts": (collector.seen, collector.chars, stats.documents, stats.lines, stats.files)}


@pytest.mark.parametrize("budget", [5_000, 40_000, 10**7])
def test_every_core_reads_what_one_process_reads(tmp_path: Path, budget: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _write_corpus(tmp_path / "corpus")
    parallel = _read(tmp_path / "corpus", budget, True, monkeypatch)
    sequential = _read(tmp_path / "corpus", budget, False, monkeypatch)
    assert parallel.pop("read on every core") and not sequential.pop("read on every core")
    assert parallel == sequential
    assert parallel["sampling"]["whole"] == (budget == 10**7)
    assert parallel["held"] and parallel["everything"]


def test_a_sampled_corpus_trains_on_its_distinct_lines_of_smallest_key_with_their_copies(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle, computed here from the file alone: non-blank lines; held out where a BLAKE2b-64 content hash
    is below 0.2 × 2⁶⁴; then the distinct lines of smallest seeded, personalised BLAKE2b-64 key that fit, each
    as many times as the corpus has it."""
    files = _write_corpus(tmp_path / "corpus")
    docs = [line.rstrip("\r") for path in files for line in path.read_text(encoding="utf-8").split("\n")]
    docs = [doc for doc in docs if doc.strip() and int.from_bytes(
        hashlib.blake2b(doc.encode(), digest_size=8).digest(), "big") >= 0.2 * 2**64]

    def key(doc: str) -> int:
        return int.from_bytes(hashlib.blake2b(doc.encode(), digest_size=8, salt=bytes(8),
                                              person=b"vx-train-sample").digest(), "big")

    picked, chars = [], 0
    for doc in sorted(set(docs), key=key):
        if picked and chars + len(doc) > 20_000:
            break
        picked.append(doc)
        chars += len(doc)
    found = _read(tmp_path / "corpus", 20_000, True, monkeypatch)
    assert found["read on every core"] and found["texts"] == [doc for doc in picked for _ in range(docs.count(doc))]
    assert found["sampling"]["duplicates"] == sum(docs.count(doc) - 1 for doc in picked) > 0
    assert found["verification"] == picked[:300]


def test_ranges_cover_the_file_and_end_at_line_ends(tmp_path: Path) -> None:
    rng = random.Random(1)
    path = tmp_path / "c.txt"
    data = b"".join(rng.choice([b"a", b"\n", "語".encode(), b"\r\n"]) for _ in range(20_000))
    path.write_bytes(data)
    for chunk in (1, 7, 100, 4_096, 10**6):
        found = scan.ranges(path, chunk)
        assert found[0][0] == 0 and found[-1][1] == len(data)
        assert all(end == start for (_, end), (start, _) in zip(found, found[1:]))
        assert all(data[end - 1:end] == b"\n" for _, end in found[:-1])


def test_a_line_that_is_not_utf8_falls_back_to_the_reader_that_knows_the_rules(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    files = _write_corpus(tmp_path / "corpus")
    with open(files[0], "ab") as fh:
        fh.write(b"\x82\xa0\x82\xa2 shift-jis\n")
    sequential = _read(tmp_path / "corpus", 5_000, False, monkeypatch)
    capsys.readouterr()
    parallel = _read(tmp_path / "corpus", 5_000, True, monkeypatch)
    assert parallel.pop("read on every core") is sequential.pop("read on every core") is False
    assert parallel == sequential
    assert "reading the corpus in one process" in capsys.readouterr().err


def test_a_file_in_another_encoding_is_refused_in_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys) -> None:
    corpus = tmp_path / "sjis.txt"
    corpus.write_bytes("\n".join(documents(3_000)).encode("shift_jis", errors="replace"))
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(scan, "CHUNK_BYTES", 20_000)
    code = main(["merge", "--corpus", str(corpus), "--lang", "ja", "--sample-chars", "5000",
                 "--output-dir", str(tmp_path / "out")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "not valid UTF-8" in errors[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("encoded", [b"\xef\xbb\xbf" + "一行目\n".encode(), "一行目\n".encode("utf-16"),
                                     "line one\n".encode("utf-16-le") * 20])
def test_files_the_line_reader_decodes_its_own_way_are_not_read_on_every_core(tmp_path: Path, encoded: bytes,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.txt").write_bytes(encoded)
    (tmp_path / "b.txt").write_bytes("二行目\n".encode())
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    config = ExtendConfig(corpus=[str(tmp_path)], sample_chars=1_000)
    assert not scan.plain_text_files([tmp_path / "a.txt"]) and scan.plain_text_files([tmp_path / "b.txt"])
    assert inputs.parallel_files(config) is None
