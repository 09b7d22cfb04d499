"""The main job: train a new-language model, merge it into the base tokenizer, export, verify, report.

``vocab-extend merge`` (or ``python scripts/merge_tokenizer.py``) with no arguments merges a Japanese model
trained on the bundled sample corpus into the bundled Mistral-7B v0.1 tokenizer. Everything is built in a
temporary folder beside the output and renamed into place only after every check passed, so a failure or
Ctrl-C never leaves a half-written output folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable
from pathlib import Path
from typing import Iterable, Iterator

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from .base import DEFAULT_BASE, BaseTokenizer, load_sentencepiece_proto, resolve_base
from .corpus import CorpusStats, iter_documents, parse_named_spec, read_documents, resolve_files
from .errors import VocabExtendError
from .export import export_hf
from .merge import NORMAL, MergeResult, merge_sentencepiece, pad_vocab_size
from .metadata import MergeMetadata
from .report import corpus_figures, pick_example, write_report
from .staging import check_output_dir, staging_folder
from .scripts import ScriptSet, detect_language, get_language
from .train import TrainConfig, VocabSizeTooLarge, train_sentencepiece
from .verify import BASE_LANGUAGE_PROBES, raise_on_failure, verify_sentencepiece

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CORPORA = PACKAGE_ROOT / "corpora"
DEFAULT_VOCAB_SIZE = 16_000
NEW_MODEL_FILE = "new_language.model"
# A corpus "supports" a vocabulary when at least this share of the new model's pieces occur twice or more
# in the model's own segmentation of it; below that, the extra pieces are memorised one-off strings.
MIN_SUPPORTED_SHARE = 0.5
# Corpora up to this many characters are kept in memory for the support check; larger ones always pass.
SUPPORT_CHECK_CHARS = 50_000_000


@dataclass
class ExtendConfig:
    """Everything ``vocab-extend merge`` takes; see ``--help`` for each option."""

    base: str = DEFAULT_BASE
    corpus: list[str] = field(default_factory=lambda: [str(SAMPLE_CORPORA / "ja")])
    new_model: Path | None = None
    lang: str = "auto"
    eval: list[str] = field(default_factory=list)
    output_dir: Path | None = None
    overwrite: bool = False
    pad_to_multiple_of: int | None = None
    text_field: str = "text"
    max_docs: int | None = None
    vocab_size: int | None = None  # None: 16,000, lowered automatically for a small corpus
    train: TrainConfig = field(default_factory=TrainConfig)
    verify_sample: int = 2_000
    seed: int = 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Collector:
    """Passes documents through while keeping a seeded sample and, for small corpora, all of them."""

    def __init__(self, sample_size: int, seed: int) -> None:
        self.sample: list[str] = []
        self.everything: list[str] | None = []
        self.sample_size = sample_size
        self.seen = 0
        self.chars = 0
        self._rng = random.Random(seed)

    def __call__(self, docs: Iterable[str]) -> Iterator[str]:
        for doc in docs:
            self.seen += 1
            if len(self.sample) < self.sample_size:
                self.sample.append(doc)
            else:
                j = self._rng.randrange(self.seen)
                if j < self.sample_size:
                    self.sample[j] = doc
            if self.everything is not None:
                self.chars += len(doc)
                self.everything.append(doc)
                if self.chars > SUPPORT_CHECK_CHARS:
                    self.everything = None
            yield doc


def _training_documents(config: ExtendConfig, stats: CorpusStats) -> Iterator[str]:
    """The documents of every --corpus in turn; --max-docs applies to each corpus."""
    for spec in config.corpus:
        own = CorpusStats()
        try:
            yield from iter_documents(spec, text_field=config.text_field, max_docs=config.max_docs, stats=own)
        finally:
            stats.documents += own.documents
            stats.skipped_non_utf8 += own.skipped_non_utf8
            stats.files.extend(own.files)


def corpus_supports(model: sp_pb2.ModelProto, docs: list[str]) -> bool:
    """Whether at least half of ``model``'s learned (multi-character) pieces occur twice or more in ``docs``."""
    processor = spm.SentencePieceProcessor(model_proto=model.SerializeToString())
    counts = Counter(i for ids in processor.encode(docs, num_threads=0) for i in ids)
    learned = [i for i, p in enumerate(model.pieces) if p.type == NORMAL and len(p.piece) > 1]
    return sum(counts[i] >= 2 for i in learned) >= MIN_SUPPORTED_SHARE * len(learned)


def _train(config: ExtendConfig, base: sp_pb2.ModelProto, docs: Iterator[str],
           collector: _Collector) -> sp_pb2.ModelProto:
    """Train the new-language model; without an explicit --vocab-size, shrink it to what the corpus supports."""
    first = next(docs, None)
    if first is None:
        raise VocabExtendError(f"corpus {' '.join(config.corpus)} is empty: it has no non-blank text lines")
    requested = config.vocab_size or DEFAULT_VOCAB_SIZE
    try:
        model = train_sentencepiece(itertools.chain([first], docs), base, _train_config(config, requested))
        everything = collector.everything
        if everything is None or config.train.model_type != "bpe" or corpus_supports(model, everything):
            return model
        start = requested * 3 // 4
    except VocabSizeTooLarge as exc:
        if collector.everything is None:
            raise
        start = exc.largest
    size, model = _largest_supported(config, base, collector.everything, start)
    if config.vocab_size is not None:
        raise VocabSizeTooLarge(config.vocab_size, size)
    log(f"note: the corpus supports about {size:,} new-model pieces, not {requested:,}; using {size:,}")
    return model


def _train_config(config: ExtendConfig, vocab_size: int) -> TrainConfig:
    return dataclasses.replace(config.train, vocab_size=vocab_size, seed=config.seed)


def _largest_supported(config: ExtendConfig, base: sp_pb2.ModelProto, docs: list[str],
                       start: int) -> tuple[int, sp_pb2.ModelProto]:
    """The largest vocabulary from ``start`` down (steps of 3/4) that the corpus supports, and its model."""
    size = start
    while size >= 100:
        try:
            model = train_sentencepiece(docs, base, _train_config(config, size))
        except VocabSizeTooLarge as exc:
            size = min(exc.largest, size * 3 // 4)
            continue
        except VocabExtendError:
            break
        if config.train.model_type != "bpe" or corpus_supports(model, docs):
            return size, model
        size = size * 3 // 4
    raise VocabExtendError("the corpus is too small to train a new-language model: add text")


def _load_new_model(path: Path) -> sp_pb2.ModelProto:
    if not path.is_file():
        raise VocabExtendError(f"--new-model {path} does not exist")
    proto = sp_pb2.ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception:
        raise VocabExtendError(f"--new-model {path} is not a SentencePiece model file") from None
    if not proto.pieces:
        raise VocabExtendError(f"--new-model {path} is not a SentencePiece model file (no pieces)")
    return proto


def _eval_corpora(config: ExtendConfig, lang: str, train_sample: list[str]) -> dict[str, list[str]]:
    specs = [parse_named_spec(e) for e in config.eval]
    corpora: dict[str, list[str]] = {}
    if not specs:
        corpora[f"{lang} ({'corpus' if config.new_model else 'training'} sample)"] = train_sample
        if (SAMPLE_CORPORA / "en").is_dir():
            specs = [("en", str(SAMPLE_CORPORA / "en"))]
    for name, spec in specs:
        corpora[name] = read_documents(spec, text_field=config.text_field, max_docs=config.max_docs)
    return corpora


def _figures(corpora: dict[str, list[str]], counts: dict[str, tuple[int, int]]) -> dict:
    return {
        name: corpus_figures(sum(map(len, lines)), sum(len(t.encode("utf-8")) for t in lines), *counts[name])
        for name, lines in corpora.items()
    }


def default_output_dir(base: str, lang: str) -> Path:
    path = Path(base)
    if path.exists():  # a local file or folder: name it after the file or folder, not the whole path
        path = path.resolve()
        name = path.parent.name if path.is_file() and path.stem == "tokenizer" else path.stem if path.is_file() \
            else path.name
    else:  # an alias or a Hub id (owner/name)
        name = base.replace("/", "--")
    return Path("outputs") / f"{name}-{lang}"


def extend_tokenizer(config: ExtendConfig) -> Path:
    """Run the whole job; return the output folder."""
    base_tok = resolve_base(config.base)
    if base_tok.kind == "bytelevel":
        from .bytelevel_job import extend_bytelevel_job

        return extend_bytelevel_job(config, base_tok)
    return _extend_sentencepiece(config, base_tok)


def _extend_sentencepiece(config: ExtendConfig, base_tok: BaseTokenizer) -> Path:
    base = load_sentencepiece_proto(base_tok.path)
    if config.lang != "auto":
        get_language(config.lang)
    check_output_dir(config.output_dir, config.overwrite)
    stats = CorpusStats()
    collector = _Collector(config.verify_sample, config.seed)
    started = time.perf_counter()
    if config.new_model is not None:
        new = _load_new_model(Path(config.new_model))
        for _ in collector(_training_documents(config, stats)) if config.corpus else ():
            pass
        log(f"loaded new-language model {config.new_model} ({len(new.pieces):,} pieces)")
    else:
        new = _train(config, base, collector(_training_documents(config, stats)), collector)
        log(f"trained new-language model: {len(new.pieces):,} pieces in {time.perf_counter() - started:.1f}s")
    if stats.skipped_non_utf8:
        log(f"note: skipped {stats.skipped_non_utf8:,} corpus lines that are not valid UTF-8")
    sample = collector.sample
    scripts: ScriptSet = (
        get_language(config.lang) if config.lang != "auto"
        else detect_language(sample or [p.piece for p in new.pieces])
    )
    merge_started = time.perf_counter()
    result: MergeResult = merge_sentencepiece(base, new, scripts)
    target = config.output_dir or default_output_dir(base_tok.name, scripts.name)
    with staging_folder(target, config.overwrite) as tmp:
        export_hf(result.proto, tmp)
        (tmp / NEW_MODEL_FILE).write_bytes(new.SerializeToString())
        merged = MergedTokenizer(
            kind="sentencepiece",
            base_vocab_size=result.base_vocab_size,
            vocab_size=result.vocab_size,
            added_pieces=len(result.added),
            skipped=result.skipped,
            examples=result.examples,
            new_model_file=NEW_MODEL_FILE,
            report_extra={
                "new_model_pieces": len(new.pieces),
                "new_model_type": sp_pb2.TrainerSpec.ModelType.Name(new.trainer_spec.model_type).lower(),
            },
        )

        def verify(texts: dict[str, list[str]]) -> tuple[dict, dict[str, tuple[int, int]]]:
            counts: dict[str, tuple[int, int]] = {}
            return verify_sentencepiece(tmp, base, result.proto, texts, scripts, counts), counts

        report = finish_merge(tmp, config, base_tok.name, scripts, merged, sample, verify,
                              _example(base, result.proto, sample, scripts))
        log(f"merged, exported and verified in {time.perf_counter() - merge_started:.1f}s")
    _summary(target, report)
    return target


@dataclass
class MergedTokenizer:
    """What a merge wrote, whichever path (SentencePiece or byte-level) made it."""

    kind: str  # "sentencepiece" or "bytelevel"
    base_vocab_size: int
    vocab_size: int
    added_pieces: int
    skipped: Counter[str]
    examples: dict[str, list[str]]
    new_model_file: str
    report_extra: dict[str, Any] = field(default_factory=dict)
    metadata_extra: dict[str, Any] = field(default_factory=dict)


Verifier = Callable[[dict[str, list[str]]], tuple[dict, dict[str, tuple[int, int]]]]


def finish_merge(tmp: Path, config: ExtendConfig, base_name: str, scripts: ScriptSet, merged: MergedTokenizer,
                 sample: list[str], verify: Verifier,
                 example: tuple[str, list[str], list[str]] | None) -> dict[str, Any]:
    """Write the metadata, verify on the eval corpora and the training sample, write the report.

    ``verify`` returns the checks and ``{corpus: (base tokens, extended tokens)}``; a failed check raises.
    """
    MergeMetadata(
        base=base_name,
        base_kind=merged.kind,
        base_vocab_size=merged.base_vocab_size,
        vocab_size=merged.vocab_size,
        lang=scripts.name,
        added_pieces=merged.added_pieces,
        pad_to_multiple_of=config.pad_to_multiple_of,
        new_model=merged.new_model_file,
        extra=merged.metadata_extra,
    ).write(tmp)
    corpora = _eval_corpora(config, scripts.name, sample)
    texts = dict(corpora)
    if not any(lines is sample for lines in corpora.values()):  # the default eval already is the sample
        texts.setdefault("training sample", sample)
    texts["built-in base-language lines"] = list(BASE_LANGUAGE_PROBES)  # checked even when no eval has any
    checks, counts = verify(texts)
    raise_on_failure(checks)
    report = {
        "base": base_name,
        "lang": scripts.name,
        "base_vocab_size": merged.base_vocab_size,
        "vocab_size": merged.vocab_size,
        "embedding_size": pad_vocab_size(merged.vocab_size, config.pad_to_multiple_of),
        "pad_to_multiple_of": config.pad_to_multiple_of,
        "added_pieces": merged.added_pieces,
        **merged.report_extra,
        "skipped": dict(sorted(merged.skipped.items())),
        "skipped_examples": dict(sorted(merged.examples.items())),
        "dead_pieces_dropped": merged.skipped.get("dead", 0),
        "checks": checks,
        "corpora": _figures(corpora, counts),
    }
    write_report(tmp, report, example)
    return report


def _example(base: sp_pb2.ModelProto, merged: sp_pb2.ModelProto, lines: list[str],
             scripts: ScriptSet) -> tuple[str, list[str], list[str]] | None:
    text = pick_example(lines, scripts.contains)
    if text is None:
        return None
    base_sp = spm.SentencePieceProcessor(model_proto=base.SerializeToString())
    merged_sp = spm.SentencePieceProcessor(model_proto=merged.SerializeToString())
    return text, base_sp.encode(text, out_type=str), merged_sp.encode(text, out_type=str)


def _summary(target: Path, report: dict) -> None:
    log(f"wrote {target}: {report['base_vocab_size']:,} + {report['added_pieces']:,} = "
        f"{report['vocab_size']:,} pieces")
    for name, c in report["corpora"].items():
        log(f"  {name}: {c['chars_per_token_base']:.2f} -> {c['chars_per_token_extended']:.2f} chars/token "
            f"({c['reduction']:.1%} fewer tokens)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", default=DEFAULT_BASE,
                        help=f"SentencePiece .model, folder, tokenizer.json, GGUF, Hub id or alias (default {DEFAULT_BASE})")
    parser.add_argument("--corpus", action="append", default=None, metavar="SPEC",
                        help="training text: file, folder, glob, .jsonl/.json/.parquet(.gz) or hf:NAME[:CONFIG][:SPLIT] "
                             "(repeat; default: the bundled corpora/ja sample)")
    parser.add_argument("--new-model", type=Path, default=None,
                        help="merge this SentencePiece model (BPE or unigram) instead of training one")
    parser.add_argument("--vocab-size", type=int, default=None,
                        help=f"pieces of the new-language model (default {DEFAULT_VOCAB_SIZE:,}, lowered for a small corpus)")
    parser.add_argument("--model-type", choices=("bpe", "unigram"), default="bpe")
    parser.add_argument("--lang", default="auto", help="new language: ja, zh, ko or auto (detected from the corpus)")
    parser.add_argument("--eval", action="append", default=[], metavar="LANG=SPEC",
                        help="corpus to measure and verify on (repeat; default: training sample + bundled English)")
    parser.add_argument("--output-dir", type=Path, default=None, help="output folder (default outputs/<base>-<lang>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--pad-to-multiple-of", type=int, default=None,
                        help="record an embedding size padded to this multiple (used by init-model)")
    parser.add_argument("--text-field", default="text", help="field holding the text in json/parquet/hf corpora")
    parser.add_argument("--max-docs", type=int, default=None, help="read at most this many documents per corpus")
    parser.add_argument("--character-coverage", type=float, default=TrainConfig.character_coverage)
    parser.add_argument("--max-sentence-length", type=int, default=TrainConfig.max_sentence_length,
                        help="longest line (bytes) the trainer takes; longer documents are cut")
    parser.add_argument("--input-sentence-size", type=int, default=TrainConfig.input_sentence_size,
                        help="sentences sampled from a large corpus for training (0: all)")
    parser.add_argument("--verify-sample", type=int, default=2_000,
                        help="training-corpus lines sampled for the final verification")
    parser.add_argument("--seed", type=int, default=0)


def config_from_args(args: argparse.Namespace) -> ExtendConfig:
    if args.vocab_size is not None and args.vocab_size < 100:
        raise VocabExtendError(f"--vocab-size {args.vocab_size} is too small: use at least 100")
    if args.max_sentence_length < 64:
        raise VocabExtendError(f"--max-sentence-length {args.max_sentence_length} is too small: use at least 64 bytes")
    if args.pad_to_multiple_of is not None and args.pad_to_multiple_of < 1:
        raise VocabExtendError("--pad-to-multiple-of must be a positive integer")
    for value in args.eval:  # checked now, not after training
        if "=" not in value or value.startswith("hf:"):
            raise VocabExtendError(f"--eval {value}: give LANG=SPEC, e.g. --eval ja=held_out_ja.txt")
        _, spec = parse_named_spec(value)
        if not spec.startswith("hf:"):
            resolve_files(spec)
    corpus = args.corpus if args.corpus is not None else ExtendConfig().corpus
    if args.corpus is None and not Path(corpus[0]).exists():
        raise VocabExtendError("the bundled sample corpus is not installed here: pass --corpus")
    return ExtendConfig(
        base=args.base,
        corpus=corpus,
        new_model=args.new_model,
        lang=args.lang,
        eval=args.eval,
        output_dir=args.output_dir,
        overwrite=args.overwrite,
        pad_to_multiple_of=args.pad_to_multiple_of,
        text_field=args.text_field,
        max_docs=args.max_docs,
        vocab_size=args.vocab_size,
        train=TrainConfig(
            model_type=args.model_type,
            character_coverage=args.character_coverage,
            max_sentence_length=args.max_sentence_length,
            input_sentence_size=args.input_sentence_size,
        ),
        verify_sample=args.verify_sample,
        seed=args.seed,
    )


def run(args: argparse.Namespace) -> int:
    extend_tokenizer(config_from_args(args))
    return 0
