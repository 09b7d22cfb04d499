"""Training the new-language BPE with ``tokenizers``, inside the base's own normaliser and pre-tokenizer.

Measured on SmolLM2, 16k-token models on the shared Japanese corpora (``bench/bytelevel_japanese.py``):
a SentencePiece model converted to bytes reaches the same held-out compression (1.74 chars/token), but its
pieces are characters, not bytes, and pay no heed to the base's pre-tokenizer, so the conversion needs 3,477
extra byte-to-character tokens (17,541 added against 14,964) for the same result. The ``tokenizers`` model is
trained inside the base's own pre-token boundaries (Llama-3's digit rules included), so nearly every token it
learns is kept as is. A corpus with fewer pairs that occur at least ``min_frequency`` (2) times than the size
asked gives fewer tokens, with a note saying so.

The trainer's memory grows with the distinct pre-tokens it counts (about 75 MB per MB of Japanese), so the
merge gives it the content-hashed training sample (:mod:`vocab_extend.tokenizer.sampling`), never a whole
large corpus.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from tqdm.auto import tqdm

from ...console import log
from ...errors import VocabExtendError
from ..files import merge_pairs


def _progress(texts: Iterable[str], show: bool) -> Iterator[str]:
    total = len(texts) if isinstance(texts, list) else None
    with tqdm(total=total, desc="reading corpus", unit=" docs", mininterval=1.0, disable=not show) as bar:
        for text in texts:
            bar.update(1)
            yield text


def train_new_model(base: Tokenizer, texts: Iterable[str], *, vocab_size: int, min_frequency: int = 2,
                    max_token_length: int | None = None, show_progress: bool = True) -> Tokenizer:
    """A byte-level BPE trained on ``texts`` with the base's normaliser and pre-tokenizer."""
    if vocab_size <= 256:
        raise VocabExtendError(
            f"--vocab-size {vocab_size} leaves no room beyond the 256 byte symbols: raise it (e.g. 16000)"
        )
    model = Tokenizer(models.BPE())
    model.normalizer = base.normalizer
    model.pre_tokenizer = base.pre_tokenizer
    model.decoder = base.decoder
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress and isinstance(texts, list),  # its bars: counting pairs, merges with an ETA
        max_token_length=max_token_length,
    )
    length = len(texts) if isinstance(texts, list) else None
    model.train_from_iterator(_progress(texts, show_progress), trainer, length=length)
    trained = model.get_vocab_size()
    if trained < vocab_size:
        log(f"note: trained {trained:,} tokens, not the {vocab_size:,} asked: the corpus has no more pairs of "
            f"symbols that occur at least {min_frequency} times (the trainer's minimum frequency); add text for more")
    return model


def new_model_candidates(model: Tokenizer) -> list[str]:
    """The tokens a trained BPE made, in the order its merges made them."""
    return [a + b for a, b in merge_pairs(model)]
