"""The library floors of ``bench/scaling.py``: each library's own trainer, with the settings our merge uses,
on the text our merge trains on. Each runs in its own process (``scaling.py --floor FAMILY``)."""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from vocab_extend.atomic import atomic_write_json
from vocab_extend.corpus import CorpusStats
from vocab_extend.families.interface import DEFAULT_VOCAB_SIZE
from vocab_extend.jsonfile import read_json_object
from vocab_extend.tokenizer.inputs import ExtendConfig, default_heldout_fraction, training_documents
from vocab_extend.tokenizer.sampling import BudgetSampler

BASES = {"sentencepiece": "mistral-7b-v0.1", "bytelevel": "smollm2-135m"}


def merge_sample(docs: Iterable[str], chars: int, seed: int) -> list[str]:
    """The merge's own sample (``vocab_extend.tokenizer.sampling.BudgetSampler``) of ``docs``."""
    return BudgetSampler(chars, seed).add_all(docs).documents()


def _sampler(spec: str) -> Callable[[Iterable[str], int, int], Iterable[str]]:
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise SystemExit(f"error: the merge samples its corpus (--sample-chars) but the bench cannot import its "
                         f"sampler {spec}: pass --sampler MODULE:FUNCTION (called as f(docs, chars, seed))") from None


def merge_documents(corpus: Path) -> Iterator[str]:
    """The documents the merge reads for training, in its order: ``training_documents`` of the merge (the
    corpus read as the merge reads it, without its content-hashed held-out share of the default fraction)."""
    config = ExtendConfig(corpus=[str(corpus)], heldout_fraction=default_heldout_fraction([str(corpus)]))
    return training_documents(config, CorpusStats())


def training_text(corpus: Path, sample_chars: int | None, sampler: str, seed: int = 0) -> Iterable[str]:
    """The documents the merge trains on: the corpus without its held-out share, sampled as the merge does
    (``sample_chars`` None or 0: all of them, streamed)."""
    docs = merge_documents(corpus)
    return _sampler(sampler)(docs, sample_chars, seed) if sample_chars else docs


def floor_setup(folder: Path) -> Path:
    """Written once, outside the measured runs: the SentencePiece options our merge passes the trainer
    (``trainer_options`` on the Mistral base) and SmolLM2's working tokenizer (normaliser, pre-tokenizer)."""
    from vocab_extend.families import get_family, resolve_tokenizer
    from vocab_extend.families.sentencepiece.train import TrainConfig, trainer_options

    folder.mkdir(parents=True, exist_ok=True)
    proto = get_family("sentencepiece").load_base(resolve_tokenizer(BASES["sentencepiece"])).model
    config = TrainConfig()
    options = trainer_options(proto, config)
    atomic_write_json(folder / "sentencepiece.json", {"seed": config.seed, "options": options})
    working = get_family("bytelevel").load_base(resolve_tokenizer(BASES["bytelevel"])).model.working
    working.save(str(folder / "bytelevel-base.json"))
    return folder


def _timed_text(corpus: Path, args: argparse.Namespace) -> tuple[Iterable[str], dict[str, Any]]:
    """The training text, and the seconds taken to read and sample it with the documents and characters of
    the sample (0 seconds and no counts when it streams to the trainer)."""
    started = time.perf_counter()
    texts = training_text(corpus, args.sample_chars, args.sampler)
    if not isinstance(texts, list):
        return texts, {"read_and_sample_s": 0.0}
    return texts, {"read_and_sample_s": time.perf_counter() - started, "sampled_documents": len(texts),
                   "sampled_chars": sum(map(len, texts))}


def floor_sentencepiece(corpus: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """SentencePiece's own trainer with the options our merge passes it, on the merge's training text."""
    import sentencepiece as spm

    setup = read_json_object(args.floor_setup / "sentencepiece.json")
    spm.set_random_generator_seed(setup["seed"])
    texts, read = _timed_text(corpus, args)
    lines = (line for doc in texts for line in doc.splitlines() if line.strip())
    started = time.perf_counter()
    spm.SentencePieceTrainer.train(sentence_iterator=lines, model_prefix=str(out / "floor"), **setup["options"])
    return {**read, "train_wall_s": time.perf_counter() - started}


def floor_sentencepiece_file(corpus: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """SentencePiece's own trainer reading the corpus file itself, with its own sampling: as many shuffled
    sentences (``input_sentence_size``) as the merge's sample has documents (``--floor-sentences``); the
    held-out share is not kept out (the trainer cannot), the other options are our merge's."""
    import sentencepiece as spm

    setup = read_json_object(args.floor_setup / "sentencepiece.json")
    spm.set_random_generator_seed(setup["seed"])
    options = {**setup["options"], "input_sentence_size": args.floor_sentences, "shuffle_input_sentence": True}
    started = time.perf_counter()
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(out / "floor"), **options)
    return {"read_and_sample_s": 0.0, "train_wall_s": time.perf_counter() - started,
            "input_sentence_size": args.floor_sentences}


def floor_bytelevel(corpus: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``tokenizers``' BPE trainer with the settings of our byte-level training
    (``vocab_extend/families/bytelevel/train.py``: 16,000, min_frequency 2, the byte alphabet), inside the
    base's normaliser and pre-tokenizer, on the same text."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    base = Tokenizer.from_file(str(args.floor_setup / "bytelevel-base.json"))
    model = Tokenizer(models.BPE())
    model.normalizer, model.pre_tokenizer, model.decoder = base.normalizer, base.pre_tokenizer, base.decoder
    trainer = trainers.BpeTrainer(vocab_size=DEFAULT_VOCAB_SIZE, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), max_token_length=None)
    texts, read = _timed_text(corpus, args)
    started = time.perf_counter()
    model.train_from_iterator(texts, trainer)
    seconds = time.perf_counter() - started
    model.save(str(out / "floor.json"))
    return {**read, "train_wall_s": seconds, "vocab_size": model.get_vocab_size()}


FLOORS = {"sentencepiece": floor_sentencepiece, "sentencepiece-file": floor_sentencepiece_file,
          "bytelevel": floor_bytelevel}
