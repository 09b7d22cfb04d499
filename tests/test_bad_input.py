"""Bad input gets one clear sentence from the CLI (exit 2), never a traceback or a half-written folder."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from conftest import SAMPLE_JA
from vocab_extend.tokenizer import job as extend
from vocab_extend.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["merge", *args])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.startswith(("error:", "interrupted:"))][-1]


def test_missing_corpus(capsys, tmp_path: Path) -> None:
    code, msg = run_cli(capsys, "--corpus", str(tmp_path / "nope.txt"), "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "does not exist" in msg
    assert not (tmp_path / "o").exists()


def test_empty_corpus(capsys, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    code, msg = run_cli(capsys, "--corpus", str(empty), "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "is empty" in msg
    assert not (tmp_path / "o").exists()


def test_non_utf8_lines_are_skipped_and_counted(capsys, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.txt"
    text = SAMPLE_JA.joinpath("conversation.txt").read_bytes()
    mixed.write_bytes(text + b"\xff\xfe broken line\n" + "日本語の行です。\n".encode("shift_jis"))
    code = main(["merge", "--corpus", str(mixed), "--output-dir", str(tmp_path / "o")])
    assert code == 0
    assert "skipped 2 corpus lines that are not valid UTF-8" in capsys.readouterr().err


def test_vocab_size_the_corpus_cannot_support(capsys, tmp_path: Path) -> None:
    code, msg = run_cli(capsys, "--corpus", str(SAMPLE_JA / "news.txt"), "--vocab-size", "16000",
                        "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "too small for --vocab-size 16000" in msg and "works)" in msg
    named = int(msg.split("(--vocab-size ")[1].split(" works")[0])
    # the size named is the one the automatic choice takes, whatever was asked, and it works
    code, again = run_cli(capsys, "--corpus", str(SAMPLE_JA / "news.txt"), "--vocab-size", "9000",
                          "--output-dir", str(tmp_path / "o"))
    assert code == 2 and f"(--vocab-size {named} works)" in again
    assert main(["merge", "--corpus", str(SAMPLE_JA / "news.txt"), "--vocab-size", str(named),
                 "--output-dir", str(tmp_path / "o")]) == 0
    auto = main(["merge", "--corpus", str(SAMPLE_JA / "news.txt"), "--output-dir", str(tmp_path / "auto")])
    assert auto == 0 and f"about {named:,} new-model pieces" in capsys.readouterr().err


def test_base_that_is_not_sentencepiece(capsys, tmp_path: Path) -> None:
    bogus = tmp_path / "tokenizer.model"
    bogus.write_text("this is not a model", encoding="utf-8")
    code, msg = run_cli(capsys, "--base", str(bogus), "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "not a SentencePiece model" in msg and "byte-level" in msg


def test_unknown_base(capsys, tmp_path: Path) -> None:
    code, msg = run_cli(capsys, "--base", "no-such-alias", "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "bundled alias" in msg


def test_existing_output_needs_overwrite(capsys, tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    code, msg = run_cli(capsys, "--corpus", str(SAMPLE_JA), "--output-dir", str(out))
    assert code == 2 and "already exists" in msg and "--overwrite" in msg
    assert (out / "keep.txt").read_text(encoding="utf-8") == "mine"


def test_new_model_that_is_not_sentencepiece(capsys, tmp_path: Path) -> None:
    bogus = tmp_path / "chinese_sp.model"
    bogus.write_bytes(b"\x00\x01garbage")
    code, msg = run_cli(capsys, "--new-model", str(bogus), "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "not a SentencePiece model" in msg


def test_unknown_language(capsys, tmp_path: Path) -> None:
    code, msg = run_cli(capsys, "--lang", "xx", "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "unknown language" in msg


def test_ctrl_c_leaves_no_partial_output(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(extend, "verify_folder", interrupted)
    out = tmp_path / "o"
    code, msg = run_cli(capsys, "--corpus", str(SAMPLE_JA / "news.txt"), "--output-dir", str(out))
    assert code == 130 and "no output was written" in msg
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_atomically(tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "stale.txt").write_text("old", encoding="utf-8")
    assert main(["merge", "--corpus", str(SAMPLE_JA / "news.txt"), "--output-dir", str(out),
                 "--overwrite"]) == 0
    assert not (out / "stale.txt").exists() and (out / "tokenizer.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["o"]


def test_new_model_from_another_project_is_merged(tmp_path: Path) -> None:
    """--new-model skips training; a unigram model (as Chinese-LLaMA published) is merged, dead pieces dropped."""
    from vocab_extend.families.sentencepiece import parse_model
    from vocab_extend.families import resolve_tokenizer
    from vocab_extend.corpus import read_documents
    from vocab_extend.families.sentencepiece.train import TrainConfig, train_sentencepiece

    base = parse_model(resolve_tokenizer().path, "model")
    unigram = train_sentencepiece(read_documents(str(SAMPLE_JA)), base,
                                  TrainConfig(vocab_size=2500, model_type="unigram"))
    path = tmp_path / "unigram.model"
    path.write_bytes(unigram.SerializeToString())
    out = tmp_path / "o"
    assert main(["merge", "--new-model", str(path), "--output-dir", str(out)]) == 0
    import json

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["new_model_type"] == "unigram"
    assert report["dead_pieces_dropped"] > 0
    from tokenizers import Tokenizer

    written = Tokenizer.from_file(str(out / "tokenizer.json"))
    added = [t for t, i in written.get_vocab().items() if i >= report["base_vocab_size"]]
    assert len(added) == report["added_pieces"] > 0
    assert all([t.value for t in written.model.tokenize(piece)] == [piece] for piece in added)


def test_gzip_jsonl_corpus(tmp_path: Path) -> None:
    import json

    lines = SAMPLE_JA.joinpath("news.txt").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "docs.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps({"body": line}, ensure_ascii=False) + "\n")
    out = tmp_path / "o"
    assert main(["merge", "--corpus", str(path), "--text-field", "body", "--output-dir", str(out)]) == 0


def test_malformed_jsonl_names_the_line(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "docs.jsonl"
    bad.write_text('{"text": "良い行"}\n{"text": broken\n', encoding="utf-8")
    code, msg = run_cli(capsys, "--corpus", str(bad), "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "line 2 is not valid JSON" in msg


def test_max_docs_applies_to_each_corpus(tmp_path: Path) -> None:
    from vocab_extend.corpus import CorpusStats
    from vocab_extend.tokenizer.job import ExtendConfig, training_documents as _training_documents

    config = ExtendConfig(corpus=[str(SAMPLE_JA / "news.txt"), str(SAMPLE_JA / "narrative.txt")], max_docs=5,
                          heldout_fraction=0)
    stats = CorpusStats()
    docs = list(_training_documents(config, stats))
    assert len(docs) == 10 and stats.documents == 10
    assert docs[5] == SAMPLE_JA.joinpath("narrative.txt").read_text(encoding="utf-8").splitlines()[0]


def test_special_token_text_is_verified_as_text(tmp_path: Path) -> None:
    corpus = tmp_path / "ja.txt"
    lines = SAMPLE_JA.joinpath("news.txt").read_text(encoding="utf-8").splitlines()
    corpus.write_text("\n".join(lines + ["HTMLの<s>タグと</s>と<unk>の話"]) + "\n", encoding="utf-8")
    assert main(["merge", "--corpus", str(corpus), "--output-dir", str(tmp_path / "o"),
                 "--eval", f"ja={corpus}"]) == 0


def test_default_output_folder_names() -> None:
    from vocab_extend.tokenizer.job import default_output_dir

    assert default_output_dir("mistral-7b-v0.1", "ja") == Path("outputs/mistral-7b-v0.1-ja")
    assert default_output_dir("mistralai/Mistral-7B-v0.1", "ja") == Path("outputs/mistralai--Mistral-7B-v0.1-ja")
    assert default_output_dir(str(SAMPLE_JA.parent), "zh") == Path("outputs/corpora-zh")


def test_eval_without_a_name_fails_before_training(capsys, tmp_path: Path, monkeypatch) -> None:
    import vocab_extend.families.sentencepiece as sentencepiece_family

    monkeypatch.setattr(sentencepiece_family, "train_supported",
                        lambda *a, **k: pytest.fail("trained before checking --eval"))
    code, msg = run_cli(capsys, "--eval", "ja", "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "give LANG=SPEC" in msg
    code, msg = run_cli(capsys, "--eval", f"ja={tmp_path / 'missing.txt'}", "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "does not exist" in msg
    assert not (tmp_path / "o").exists()


def test_sentencepiece_training_options_on_a_bytelevel_base(capsys, tmp_path: Path) -> None:
    code, msg = run_cli(capsys, "--base", "smollm2-135m", "--model-type", "unigram", "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "--model-type set SentencePiece training" in msg
    assert not (tmp_path / "o").exists()


def test_base_language_is_checked_when_no_eval_corpus_has_any(tmp_path: Path) -> None:
    import json

    out = tmp_path / "o"
    assert main(["merge", "--eval", f"ja={SAMPLE_JA}", "--output-dir", str(out)]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(report["corpora"]) == {"ja", "ja (held out)"}
    assert report["checks"]["base_language_unchanged"]["checked"] >= 6


@pytest.mark.parametrize("target", ["corpus", "corpus_parent", "base_folder"])
def test_overwrite_never_deletes_an_input_of_merge(capsys, tmp_path: Path, target: str) -> None:
    import shutil

    from vocab_extend.families import resolve_tokenizer

    corpus = tmp_path / "ja"
    shutil.copytree(SAMPLE_JA, corpus)
    base = tmp_path / "base"
    base.mkdir()
    shutil.copy(resolve_tokenizer().path, base / "tokenizer.model")
    output = {"corpus": corpus, "corpus_parent": tmp_path, "base_folder": base}[target]
    before = sorted(p.name for p in output.rglob("*"))
    code, msg = run_cli(capsys, "--base", str(base), "--corpus", str(corpus), "--output-dir", str(output),
                        "--overwrite")
    assert code == 2 and "an input of this command" in msg
    assert sorted(p.name for p in output.rglob("*")) == before


def test_measure_and_bpb_json_may_not_replace_an_input(capsys, tmp_path: Path) -> None:
    import shutil

    corpus = tmp_path / "ja.txt"
    shutil.copy(SAMPLE_JA / "news.txt", corpus)
    code = main(["measure", "--tokenizer", "mistral-7b-v0.1", "--corpus", f"ja={corpus}", "--json", str(corpus)])
    assert code == 2 and "an input of this command" in capsys.readouterr().err
    assert corpus.read_bytes() == (SAMPLE_JA / "news.txt").read_bytes()


def test_utf16_corpus_is_read_as_text(tmp_path: Path) -> None:
    lines = SAMPLE_JA.joinpath("news.txt").read_text(encoding="utf-8")
    corpus = tmp_path / "news16.txt"
    corpus.write_bytes(lines.encode("utf-16"))  # with a byte-order mark
    out = tmp_path / "o"
    assert main(["merge", "--corpus", str(corpus), "--output-dir", str(out), "--vocab-size", "1500"]) == 0
    again = tmp_path / "o8"
    plain = tmp_path / "news8.txt"
    plain.write_text(lines, encoding="utf-8")
    assert main(["merge", "--corpus", str(plain), "--output-dir", str(again), "--vocab-size", "1500"]) == 0
    assert (out / "tokenizer.json").read_bytes() == (again / "tokenizer.json").read_bytes()


@pytest.mark.parametrize("argv, message", [
    (["--verify-sample", "0"], "--verify-sample 0 must be at least 1"),
    (["--seed", "-1"], "--seed -1 must be between 0"),
    (["--input-sentence-size", "-1"], "--input-sentence-size -1 must be 0"),
    (["--vocab-size", "99999999999999999999999"], "beyond what any corpus supports"),
    (["--base", "smollm2-135m", "--vocab-size", "1000000000"], "beyond what any corpus supports"),
    (["--character-coverage", "2"], "between 0.98 and 1.0"),
    (["--max-docs", "0"], "--max-docs 0 must be at least 1"),
])
def test_numbers_out_of_range_are_refused_before_any_work(capsys, tmp_path: Path, argv, message) -> None:
    code, msg = run_cli(capsys, *argv, "--output-dir", str(tmp_path / "o"))
    assert code == 2 and message in msg and msg.count("\n") <= 1
    assert "Traceback" not in msg and not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, message", [
    (["--device", "tpu9"], "is not a torch device"),
    (["--block-size", "0"], "--block-size 0 must be at least 2"),
    (["--batch-size", "0"], "--batch-size 0 must be at least 1"),
])
def test_evaluate_bpb_settings_are_checked_before_loading(capsys, tmp_path: Path, argv, message) -> None:
    code = main(["evaluate-bpb", "--model", str(tmp_path), "--corpus", f"ja={SAMPLE_JA}", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_held_out_documents_are_kept_out_of_training(tmp_path: Path) -> None:
    """The default merge reports on a content-hashed share it never trained on (the same lines every run)."""
    import json

    from vocab_extend.heldout import doc_key, heldout

    out = tmp_path / "o"
    assert main(["merge", "--output-dir", str(out)]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    lines = [line for p in sorted(SAMPLE_JA.glob("*.txt")) for line in p.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    assert report["heldout_fraction"] == 0.2  # a small corpus holds out a fifth, so the figure rests on enough text
    held = [line for line in lines if heldout(doc_key(line), report["heldout_fraction"])]
    assert held and report["corpora"]["ja (held out)"]["chars"] == sum(map(len, held))
    assert {"ja (held out)", "ja (training sample)", "en"} == set(report["corpora"])
    held_out, trained = report["corpora"]["ja (held out)"], report["corpora"]["ja (training sample)"]
    assert 0 < held_out["reduction"] < trained["reduction"]  # text it never saw gains less, honestly
    assert "held out" in (out / "report.md").read_text(encoding="utf-8")
    everything = tmp_path / "all"
    assert main(["merge", "--output-dir", str(everything), "--heldout-fraction", "0"]) == 0
    assert (everything / "new_language.model").read_bytes() != (out / "new_language.model").read_bytes()


def test_heldout_fraction_that_leaves_nothing_to_train_on(capsys, tmp_path: Path) -> None:
    from vocab_extend.heldout import doc_key, heldout

    line = next(t for t in (f"今日は{i}回目の晴れです。" for i in range(100)) if heldout(doc_key(t), 0.5))
    corpus = tmp_path / "one.txt"
    corpus.write_text(line + "\n", encoding="utf-8")
    code, msg = run_cli(capsys, "--corpus", str(corpus), "--heldout-fraction", "0.5", "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "leaves no document" in msg
    code, msg = run_cli(capsys, "--heldout-fraction", "0.9", "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "between 0 and 0.5" in msg


def test_training_options_with_new_model_are_refused(capsys, tmp_path: Path) -> None:
    from vocab_extend.families import resolve_tokenizer

    code, msg = run_cli(capsys, "--new-model", str(resolve_tokenizer().path), "--vocab-size", "8000",
                        "--model-type", "unigram", "--output-dir", str(tmp_path / "o"))
    assert code == 2 and "--vocab-size, --model-type set training, but --new-model skips training" in msg


def test_a_foreign_tokenizer_json_is_one_sentence(capsys, tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text('{"not": "a tokenizer"}', encoding="utf-8")
    assert main(["measure", "--tokenizer", str(tmp_path / "tokenizer.json"), "--corpus", str(SAMPLE_JA)]) == 2
    assert "error: could not load the tokenizer" in capsys.readouterr().err


@pytest.mark.parametrize("config, message", [
    (dict(seed=-1), r"--seed must be a whole number in \[0, 2\*\*32\)"),
    (dict(seed=2**40), "--seed must be"),
    (dict(pad_to_multiple_of=-1), "--pad-to-multiple-of must be a positive integer"),
])
def test_init_model_numbers_out_of_range(config, message) -> None:
    from vocab_extend.errors import VocabExtendError
    from vocab_extend.model.init.embeddings import InitConfig

    with pytest.raises(VocabExtendError, match=message):
        InitConfig(**config)
