"""The merge job for byte-level BPE bases (SmolLM2, Llama-3, Qwen): the same CLI, checks and report as the
SentencePiece path, around :func:`vocab_extend.bytelevel.extend_bytelevel`."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

from tokenizers import Tokenizer

from .base import BaseTokenizer
from .bytelevel import ByteLevelConfig, MergeOutcome, bytelevel_checks, extend_bytelevel, load_bytelevel_base
from .corpus import CorpusStats
from .errors import VocabExtendError
from .report import pick_example
from .scripts import detect_language, get_language
from .staging import check_output_dir, staging_folder

if TYPE_CHECKING:
    from .extend import ExtendConfig

DETECT_DOCS = 2_000


def extend_bytelevel_job(config: "ExtendConfig", base_tok: BaseTokenizer) -> Path:
    """Train, merge, write, verify and report for a byte-level base; return the output folder."""
    from .extend import DEFAULT_VOCAB_SIZE, MergedTokenizer, _Collector, _summary, _training_documents, \
        default_output_dir, finish_merge, log

    if config.new_model is not None:
        raise VocabExtendError(
            "--new-model takes a SentencePiece model, which cannot be merged into a byte-level BPE base; "
            "train the new-language model on --corpus instead"
        )
    from .train import TrainConfig

    defaults = TrainConfig()
    sentencepiece_only = [f"--{name.replace('_', '-')}" for name in ("model_type", "character_coverage",
                          "max_sentence_length", "input_sentence_size")
                          if getattr(config.train, name) != getattr(defaults, name)]
    if sentencepiece_only:
        raise VocabExtendError(
            f"{', '.join(sentencepiece_only)} set SentencePiece training, but {base_tok.name} is a byte-level BPE "
            "base whose new-language model is trained with tokenizers: drop them"
        )
    check_output_dir(config.output_dir, config.overwrite)
    base = load_bytelevel_base(base_tok)
    stats = CorpusStats()
    collector = _Collector(config.verify_sample, config.seed)
    docs = collector(_training_documents(config, stats))
    head = list(itertools.islice(docs, DETECT_DOCS))
    if not head:
        raise VocabExtendError(f"corpus {' '.join(config.corpus)} is empty: it has no non-blank text lines")
    scripts = get_language(config.lang) if config.lang != "auto" else detect_language(head)
    target = config.output_dir or default_output_dir(base_tok.name, scripts.name)
    with staging_folder(target, config.overwrite) as tmp:
        outcome: MergeOutcome = extend_bytelevel(
            base_tok, itertools.chain(head, docs), scripts,
            ByteLevelConfig(vocab_size=config.vocab_size or DEFAULT_VOCAB_SIZE, seed=config.seed), tmp,
        )
        if stats.skipped_non_utf8:
            log(f"note: skipped {stats.skipped_non_utf8:,} corpus lines that are not valid UTF-8")
        extended = Tokenizer.from_file(str(tmp / "tokenizer.json"))
        merged = MergedTokenizer(
            kind="bytelevel",
            base_vocab_size=outcome.base_vocab_size,
            vocab_size=outcome.vocab_size,
            added_pieces=len(outcome.added),
            skipped=outcome.skipped,
            examples=outcome.examples,
            new_model_file=outcome.new_model_file,
            report_extra={"new_model_type": f"bpe ({outcome.trainer})", "intermediate_tokens": outcome.intermediates},
            metadata_extra={"trainer": outcome.trainer, "intermediates": outcome.intermediates,
                            "split_digits": outcome.split_digits},
        )

        def verify(texts: dict[str, list[str]]) -> tuple[dict, dict[str, tuple[int, int]]]:
            checks = bytelevel_checks(tmp, base.tokenizer, texts, scripts)
            counts = {name: (_count(base.tokenizer, lines), _count(extended, lines)) for name, lines in texts.items()}
            return checks, counts

        report = finish_merge(tmp, config, base_tok.name, scripts, merged, collector.sample, verify,
                              _example(base.tokenizer, extended, collector.sample, scripts))
    _summary(target, report)
    return target


def _count(tokenizer: Tokenizer, lines: list[str]) -> int:
    return sum(len(e.ids) for e in tokenizer.encode_batch(lines, add_special_tokens=False))


def _readable(tokenizer: Tokenizer, text: str) -> list[str]:
    from .bytelevel import token_text

    return [token_text(t) for t in tokenizer.encode(text, add_special_tokens=False).tokens]


def _example(base: Tokenizer, extended: Tokenizer, lines: list[str], scripts) -> tuple[str, list[str], list[str]] | None:
    text = pick_example(lines, scripts.contains)
    return None if text is None else (text, _readable(base, text), _readable(extended, text))
