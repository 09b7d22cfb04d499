"""Measuring tokenization efficiency: tokens, characters and bytes per token, reduction, byte fallback.

Any number of tokenizers (base files such as SentencePiece ``.model`` files, Hugging Face folders or
``tokenizer.json`` files, Hub ids, bundled aliases) on any corpora; the first tokenizer is the reference for ``reduction``
(1 − tokens / reference tokens). Tokens are counted without BOS/EOS. Each corpus is streamed once, in batches
that every tokenizer encodes in turn (a Hugging Face tokenizer by its Rust encoder, on all cores, one batch
ahead of the counting: :mod:`.batches`); only per-document counts are kept, never the corpus. A corpus that is the training text of a
merged tokenizer (its ``vocab_extend.json`` records it) is labelled ``training text``, with a note that
held-out figures are the ones to quote; every other row carries its size and a 95% bootstrap interval over
documents (seeded: the same inputs give the same JSON).

``vocab-extend measure --tokenizer base=mistral-7b-v0.1 --tokenizer ext=outputs/x --corpus ja=corpora/ja``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..atomic import atomic_write_json
from ..console import log
from ..corpus import CorpusStats as ReadStats, iter_documents, parse_named_spec
from ..errors import VocabExtendError
from ..families import byte_piece_rule, get_family
from ..heldout import bootstrap_interval
from ..locks import output_lock
from ..metadata import METADATA_FILE, read_metadata
from ..plots import plot_chars_per_token
from ..staging import check_output_file
from .batches import BatchEncoder, ahead, chunks, flatten
from .labels import AS_GIVEN, QUOTE_NOTE, TRAINED_ON, TRAINING_TEXT, is_training_text, training_files
from .loader import family_source, load_tokenizer

BATCH = 1024  # documents per encoder call
BATCH_CHARS = 1 << 19  # ... and at most this many characters (a longer document is a call of its own)


@dataclass
class Encoder:
    """A tokenizer reduced to what measuring needs: ``run`` encodes a batch (id lists, or ``tokenizers``
    encodings)."""

    name: str
    run: Callable[[list[str]], Sequence[Any]]
    fallback_ids: frozenset[int]  # ids that stand for a lone byte rather than text
    vocab_size: int
    engine: str = "tokenizers"  # what encodes: "sentencepiece", "transformers" or "tokenizers"

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """The id list of each text."""
        return [list(getattr(s, "ids", s)) for s in self.run(texts)]


@dataclass
class CorpusStats:
    tokens: int
    chars: int
    bytes: int
    chars_per_token: float
    bytes_per_token: float
    byte_fallback_share: float
    reduction: float
    # encoding time only, with the engine below: compare speeds within one engine. Characters (or bytes) per
    # second is the fair speed: a tokenizer that needs fewer tokens for the same text is not penalised.
    chars_per_second: float
    bytes_per_second: float
    tokens_per_second: float
    engine: str = ""


def _fallback_ids(vocab: Mapping[str, int], backend: object) -> frozenset[int]:
    """Byte-fallback ids: ``<0xNN>`` pieces, or partial characters in a byte-level BPE."""
    is_byte_piece = byte_piece_rule(backend)
    return frozenset(i for t, i in vocab.items() if is_byte_piece(t))


def _from_hf(name: str, spec: str) -> Encoder:
    """The tokenizer's own ids (``split_special_tokens``: special-token text is text), by its Rust encoder
    when it has one (engine ``tokenizers``), else by its call (``transformers``)."""
    tok = load_tokenizer(spec)
    vocab = tok.get_vocab()
    encoder = BatchEncoder(tok)
    return Encoder(name, encoder.run, _fallback_ids(vocab, tok.backend_tokenizer), len(vocab),
                   "tokenizers" if encoder.fast else "transformers")


def _named(values: list[str], what: str) -> dict[str, str]:
    pairs = [parse_named_spec(v) for v in values]
    names = [name for name, _ in pairs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise VocabExtendError(f"{what} name {repeated[0]!r} is given twice: name each one, e.g. NAME=PATH")
    return dict(pairs)


def load_encoder(name: str, spec: str) -> Encoder:
    """Load ``spec`` (file, folder, Hub id or bundled alias) as an :class:`Encoder`.

    A base file whose family has an encoder of its own (SentencePiece models: ``.model`` files, the alias, a
    folder holding only ``tokenizer.model``) is measured with it; everything else through
    :func:`vocab_extend.tokenizer.loader.load_tokenizer`.
    """
    source = family_source(spec)
    native = get_family(source.family).native_encoder(source) if source is not None else None
    if native is None:
        return _from_hf(name, spec)
    return Encoder(name, native.encode_batch, native.fallback_ids, native.vocab_size, native.engine)


@dataclass
class _Tally:
    """One tokenizer's counts on one corpus, batch by batch."""

    fallback_ids: np.ndarray  # a lookup: id -> stands for a lone byte
    per_document: list[np.ndarray] = field(default_factory=list)  # tokens of each document, per batch
    fallback: int = 0
    seconds: float = 1e-9  # encoding only: counting byte-fallback tokens is not the tokenizer's time

    def add(self, encoded: Sequence[Any], seconds: float) -> None:
        ids, lengths = flatten(encoded)
        self.per_document.append(lengths)
        self.seconds += seconds
        if len(ids) and int(ids.max()) >= len(self.fallback_ids):  # an id past the vocabulary: never a byte
            self.fallback_ids = np.pad(self.fallback_ids, (0, int(ids.max()) + 1 - len(self.fallback_ids)))
        self.fallback += int(np.count_nonzero(self.fallback_ids[ids]))

    def tokens(self) -> np.ndarray:
        return np.concatenate(self.per_document) if self.per_document else np.zeros(0, dtype=np.int64)


def _lookup(ids: frozenset[int], size: int) -> np.ndarray:
    table = np.zeros(max(size, max(ids, default=-1) + 1), dtype=bool)
    table[list(ids)] = True
    return table


def _encode_all(encoders: Sequence[Encoder]) -> Callable[[list[str]], list[tuple[Sequence[Any], float]]]:
    """Encodes a batch with every tokenizer in turn, timing each."""
    def encode(texts: list[str]) -> list[tuple[Sequence[Any], float]]:
        results = []
        for encoder in encoders:
            start = time.perf_counter()
            encoded = encoder.run(texts)
            results.append((encoded, time.perf_counter() - start))
        return results
    return encode


def count_corpus(encoders: Sequence[Encoder], documents: Iterable[str], *, progress: bool = True,
                 desc: str = "encoding") -> tuple[np.ndarray, int, list[_Tally]]:
    """Stream ``documents`` once, in batches every tokenizer encodes (one batch ahead of the counting):
    ``(characters of each document, UTF-8 bytes in all, each tokenizer's tally)``."""
    tallies = [_Tally(_lookup(e.fallback_ids, e.vocab_size)) for e in encoders]
    chars: list[np.ndarray] = []
    n_bytes = 0
    with tqdm(desc=desc, unit=" docs", disable=not progress, leave=False) as bar:
        for texts, results, _ in ahead(_encode_all(encoders), chunks(documents, BATCH, BATCH_CHARS)):
            chars.append(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
            n_bytes += len("\n".join(texts).encode("utf-8")) - (len(texts) - 1)
            for tally, (encoded, seconds) in zip(tallies, results):
                tally.add(encoded, seconds)
            bar.update(len(texts))
    return (np.concatenate(chars) if chars else np.zeros(0, dtype=np.int64)), n_bytes, tallies


def corpus_stats(tally: _Tally, chars: int, n_bytes: int, reference_tokens: int | None, engine: str) -> CorpusStats:
    """The figures of one tokenizer on one corpus from its tally."""
    tokens = int(tally.tokens().sum())
    tokens_safe = max(tokens, 1)
    return CorpusStats(
        tokens=tokens,
        chars=chars,
        bytes=n_bytes,
        chars_per_token=chars / tokens_safe,
        bytes_per_token=n_bytes / tokens_safe,
        byte_fallback_share=tally.fallback / tokens_safe,
        reduction=1 - tokens / reference_tokens if reference_tokens else 0.0,
        chars_per_second=chars / tally.seconds,
        bytes_per_second=n_bytes / tally.seconds,
        tokens_per_second=tokens / tally.seconds,
        engine=engine,
    )


def corpus_documents(spec: str, **kwargs: Any) -> Iterator[str]:
    """The documents of ``spec`` (``iter_documents``' keywords), streamed; after the last one, a corpus with
    none is one sentence, and lines skipped as not UTF-8 are noted."""
    stats = ReadStats()
    yield from iter_documents(spec, stats=stats, **kwargs)
    if not stats.documents:
        extra = f" ({stats.skipped_non_utf8} lines were not UTF-8)" if stats.skipped_non_utf8 else ""
        raise VocabExtendError(f"corpus {spec} is empty: it has no non-blank text lines{extra}")
    if stats.skipped_non_utf8:  # every command that reads a corpus says what it left out, as merge does
        log(f"note: skipped {stats.skipped_non_utf8:,} lines of {spec} that are not valid UTF-8")


def trained_on(tokenizers: Mapping[str, str]) -> set[Path]:
    """The training files of every tokenizer that is a merge's folder (or a file in one): the ``corpus`` its
    ``vocab_extend.json`` records."""
    specs: list[str] = []
    for spec in tokenizers.values():
        path = Path(spec).expanduser()
        folder = path if path.is_dir() else path.parent
        if path.exists() and (folder / METADATA_FILE).is_file():
            try:
                specs += read_metadata(folder).corpus
            except VocabExtendError:
                continue
    return training_files(specs)


def _labelled(stats: CorpusStats, label: str, chars: np.ndarray, tokens: np.ndarray,
              reference: np.ndarray | None) -> dict[str, object]:
    """A row of the results: the figures, the label, the documents and, on text not trained on, the 95%
    bootstrap intervals over documents of chars/token and (against the first tokenizer) of the reduction."""
    row: dict[str, object] = {**asdict(stats), "label": label, "documents": len(chars)}
    if label not in TRAINED_ON:
        interval = bootstrap_interval([chars, tokens], lambda c, t: c / t)
        row["ci95_chars_per_token"] = None if interval is None else list(interval)
        if reference is not None:
            interval = bootstrap_interval([reference, tokens], lambda r, t: 1 - t / r)
            row["ci95_reduction"] = None if interval is None else list(interval)
    return row


def measure_tokenizers(
    tokenizers: Mapping[str, str], corpora: Mapping[str, str], *, max_docs: int | None = None,
    text_field: str = "text", progress: bool = True, allow_invalid_lines: bool = False,
) -> dict[str, dict[str, dict[str, object]]]:
    """``{corpus: {tokenizer: stats}}`` for every pair; reduction is relative to the first tokenizer. Each row
    is labelled ``training text`` (the corpus is, or is files of, the training corpus a merged tokenizer's
    ``vocab_extend.json`` records) or ``as given``, with its documents and, when not training text, its
    95% bootstrap intervals."""
    if not tokenizers:
        raise VocabExtendError("give at least one --tokenizer NAME=PATH")
    if not corpora:
        raise VocabExtendError("give at least one --corpus LANG=SPEC")
    encoders = [load_encoder(name, spec) for name, spec in tokenizers.items()]
    trained = trained_on(tokenizers)
    results: dict[str, dict[str, dict[str, object]]] = {}
    for corpus_name, spec in corpora.items():
        documents = corpus_documents(spec, max_docs=max_docs, text_field=text_field, allow_skipped=allow_invalid_lines)
        chars, n_bytes, tallies = count_corpus(encoders, documents, progress=progress, desc=f"encoding {corpus_name}")
        label = TRAINING_TEXT if is_training_text(spec, trained) else AS_GIVEN
        reference = tallies[0].tokens()
        results[corpus_name] = {}
        for index, (encoder, tally) in enumerate(zip(encoders, tallies)):
            stats = corpus_stats(tally, int(chars.sum()), n_bytes, int(reference.sum()) if index else None,
                                 encoder.engine)
            row = _labelled(stats, label, chars, tally.tokens(), reference if index else None)
            results[corpus_name][encoder.name] = row
    return results


def _cell(value: float, interval: object, spec: str) -> str:
    inside = f" ({format(interval[0], spec)}–{format(interval[1], spec)})" if isinstance(interval, list) else ""
    return f"{format(value, spec)}{inside}"


def format_table(results: Mapping[str, Mapping[str, Mapping[str, object]]]) -> str:
    """A Markdown table of the results, each row labelled, with its size and 95% intervals; a note under it
    when a corpus is training text."""
    lines = [
        "| corpus | label | tokenizer | documents | chars | tokens | chars/token (95% CI) | bytes/token "
        "| reduction (95% CI) | byte fallback | chars/s | engine |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    trained = []
    for corpus, by_tok in results.items():
        for name, s in by_tok.items():
            lines.append(
                f"| {corpus} | {s['label']} | {name} | {s['documents']:,} | {s['chars']:,} | {s['tokens']:,} "
                f"| {_cell(s['chars_per_token'], s.get('ci95_chars_per_token'), '.3f')} | {s['bytes_per_token']:.3f} "
                f"| {_cell(s['reduction'], s.get('ci95_reduction'), '.1%')} | {s['byte_fallback_share']:.1%} "
                f"| {s['chars_per_second']:,.0f} | {s['engine']} |"
            )
            if s["label"] in TRAINED_ON and corpus not in trained:
                trained.append(corpus)
    if trained:
        lines += ["", f"{', '.join(trained)}: {QUOTE_NOTE}."]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tokenizer", action="append", default=[], metavar="NAME=PATH",
                        help="a tokenizer: .model file, HF folder, tokenizer.json, Hub id or alias (repeat)")
    parser.add_argument("--corpus", action="append", default=[], metavar="LANG=SPEC",
                        help="a corpus spec, as in `vocab-extend merge --corpus` (repeat)")
    parser.add_argument("--max-docs", type=int, default=None, help="read at most this many documents per corpus")
    parser.add_argument("--text-field", default="text", help="field holding the text in json/parquet/hf corpora")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    parser.add_argument("--plot", type=Path, default=None, help="write a chars/token bar chart to this PNG")
    parser.add_argument("--allow-invalid-lines", action="store_true",
                        help="accept corpus files where more than 10%% of the lines are not valid UTF-8 (skipped)")


def run(args: argparse.Namespace) -> int:
    tokenizers = _named(args.tokenizer, "--tokenizer")
    corpora = _named(args.corpus, "--corpus")
    inputs = [("tokenizer", spec) for spec in tokenizers.values()] + [("corpus", spec) for spec in corpora.values()]
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        if path is not None:
            if path.is_dir():
                raise VocabExtendError(f"{option} {path} is a folder: give a file name")
            check_output_file(path, inputs)
    results = measure_tokenizers(tokenizers, corpora, max_docs=args.max_docs, text_field=args.text_field,
                                 allow_invalid_lines=args.allow_invalid_lines)
    print(format_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(args.json):
            atomic_write_json(args.json, results)
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(args.plot):
            plot_chars_per_token(results, args.plot)
    return 0
