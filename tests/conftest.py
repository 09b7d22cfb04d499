"""Shared fixtures: the project's sample corpora, the optional shared corpora, pico models."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_JA = ROOT / "corpora" / "ja"
SAMPLE_EN = ROOT / "corpora" / "en"
SHARED = ROOT.parent / "shared" / "corpora"


def shared_corpus(relative: str) -> Path:
    """A file or folder of the shared corpora beside the checkout; skips the test when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"shared corpus {relative} not present")
    return path


def pico_llama_config(vocab_size: int, **overrides):
    """A LLaMA config small enough to train in seconds on a CPU."""
    from transformers import LlamaConfig

    settings = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )
    settings.update(overrides)
    return LlamaConfig(**settings)


@pytest.fixture(scope="session")
def sample_ja() -> Path:
    return SAMPLE_JA


@pytest.fixture(scope="session")
def sample_en() -> Path:
    return SAMPLE_EN
