"""measure streams its corpora: every figure equals an independent count (each document encoded alone by the
tokenizer's own call, byte pieces found by their spelling), over many batches; a corpus is read at most a
few batches ahead of the encoding, never held whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import SAMPLE_JA
from vocab_extend.corpus import iter_documents
from vocab_extend.heldout import bootstrap_interval
from vocab_extend.tokenizer import measure
from vocab_extend.tokenizer.loader import load_tokenizer
from vocab_extend.tokenizer.measure import measure_tokenizers

BYTE_PIECE = re.compile(r"<0x[0-9A-F]{2}>")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mistral-7B's tokenizer as a Hugging Face folder (measured through the Rust encoder)."""
    out = tmp_path_factory.mktemp("tok") / "mistral"
    load_tokenizer("mistral-7b-v0.1").save_pretrained(out)
    return out


def test_figures_equal_an_independent_count(folder: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(measure, "BATCH", 7)  # many batches, and a last one that is not full
    docs = list(iter_documents(str(SAMPLE_JA))) + ["東京</s>大阪<s>"]
    corpus = tmp_path / "ja.txt"
    corpus.write_text("\n".join(docs) + "\n", encoding="utf-8")
    row = measure_tokenizers({"hf": str(folder), "sp": "mistral-7b-v0.1"}, {"ja": str(corpus)},
                             progress=False)["ja"]
    tok = load_tokenizer(str(folder))
    ids = [tok(d, add_special_tokens=False, split_special_tokens=True)["input_ids"] for d in docs]
    tokens, chars = [len(i) for i in ids], [len(d) for d in docs]
    byte_pieces = sum(bool(BYTE_PIECE.fullmatch(p)) for i in ids for p in tok.convert_ids_to_tokens(i))
    hf = row["hf"]
    assert (hf["engine"], hf["documents"], hf["tokens"], hf["chars"]) == ("tokenizers", len(docs), sum(tokens),
                                                                          sum(chars))
    assert hf["bytes"] == sum(len(d.encode("utf-8")) for d in docs)
    assert hf["byte_fallback_share"] == byte_pieces / sum(tokens) > 0.01
    assert hf["ci95_chars_per_token"] == list(bootstrap_interval([chars, tokens], lambda c, t: c / t))
    # SentencePiece itself agrees, and the reduction against the first tokenizer is zero
    assert (row["sp"]["engine"], row["sp"]["tokens"], row["sp"]["reduction"]) == ("sentencepiece", sum(tokens), 0.0)
    assert row["sp"]["ci95_reduction"] == [0.0, 0.0]


def test_a_corpus_is_read_a_few_batches_ahead_at_most(folder: Path, monkeypatch) -> None:
    """A 5,000-document corpus given as a generator: when batch k is encoded, at most k + 3 batches of
    documents have been read (the one encoded, the next one gathered, one in the making)."""
    monkeypatch.setattr(measure, "BATCH", 50)
    lines = list(iter_documents(str(SAMPLE_JA)))
    read, seen = 0, []

    def documents(spec, **kwargs):
        nonlocal read
        for i in range(5_000):
            read += 1
            kwargs["stats"].documents += 1
            yield lines[i % len(lines)]

    monkeypatch.setattr(measure, "iter_documents", documents)
    load = measure.load_encoder

    def watched(name, spec):
        encoder = load(name, spec)
        run = encoder.run

        def counting(texts):
            seen.append(read)
            return run(texts)
        encoder.run = counting
        return encoder

    monkeypatch.setattr(measure, "load_encoder", watched)
    row = measure_tokenizers({"hf": str(folder)}, {"ja": "ignored"}, progress=False)["ja"]["hf"]
    assert row["documents"] == read == 5_000 and len(seen) == 100
    assert all(count <= (k + 3) * 50 for k, count in enumerate(seen)), seen
