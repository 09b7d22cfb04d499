"""Measuring tokenization efficiency: tokens, characters and bytes per token, reduction, byte fallback.

Any number of tokenizers (base files such as SentencePiece ``.model`` files, Hugging Face folders or
``tokenizer.json`` files, Hub ids, bundled aliases) on any corpora; the first tokenizer is the reference for ``reduction``
(1 − tokens / reference tokens). Tokens are counted without BOS/EOS. A corpus that is the training text of a
merged tokenizer (its ``vocab_extend.json`` records it) is labelled ``training text``, with a note that
held-out figures are the ones to quote; every other row carries its size and a 95% bootstrap interval over
documents (seeded: the same inputs give the same JSON).

``vocab-extend measure --tokenizer base=mistral-7b-v0.1 --tokenizer ext=outputs/x --corpus ja=corpora/ja``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from tqdm.auto import tqdm

from ..atomic import atomic_write_json
from ..corpus import parse_named_spec, read_documents
from ..errors import VocabExtendError
from ..families import byte_piece_rule, get_family
from ..heldout import bootstrap_interval
from ..locks import output_lock
from ..metadata import METADATA_FILE, read_metadata
from ..plots import plot_chars_per_token
from ..staging import check_output_file
from .labels import AS_GIVEN, QUOTE_NOTE, TRAINED_ON, TRAINING_TEXT, is_training_text, training_files
from .loader import family_source, load_tokenizer

BATCH = 1024


@dataclass
class Encoder:
    """A tokenizer reduced to what measuring needs."""

    name: str
    encode_batch: Callable[[list[str]], list[list[int]]]
    fallback_ids: frozenset[int]  # ids that stand for a lone byte rather than text
    vocab_size: int
    engine: str = "tokenizers"  # what encodes: "sentencepiece", "transformers" or "tokenizers"


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
    tok = load_tokenizer(spec)
    vocab = tok.get_vocab()

    def encode(texts: list[str]) -> list[list[int]]:
        return tok(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    return Encoder(name, encode, _fallback_ids(vocab, tok.backend_tokenizer), len(vocab), "transformers")


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


def measure_corpus(encoder: Encoder, texts: Sequence[str], reference_tokens: int | None = None,
                   progress: bool = True, per_document: list[int] | None = None) -> CorpusStats:
    """Encode ``texts`` in batches and count; ``per_document`` (when given) gets each document's tokens."""
    tokens = fallback = 0
    seconds = 1e-9  # encoding only: counting byte-fallback tokens is not the tokenizer's time
    with tqdm(total=len(texts), desc=f"encoding with {encoder.name}", unit=" docs", disable=not progress,
              leave=False) as bar:
        for i in range(0, len(texts), BATCH):
            batch = list(texts[i : i + BATCH])
            start = time.perf_counter()
            encoded = encoder.encode_batch(batch)
            seconds += time.perf_counter() - start
            for ids in encoded:
                tokens += len(ids)
                if per_document is not None:
                    per_document.append(len(ids))
                fallback += sum(1 for t in ids if t in encoder.fallback_ids)
            bar.update(len(batch))
    chars = sum(len(t) for t in texts)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    tokens_safe = max(tokens, 1)
    return CorpusStats(
        tokens=tokens,
        chars=chars,
        bytes=n_bytes,
        chars_per_token=chars / tokens_safe,
        bytes_per_token=n_bytes / tokens_safe,
        byte_fallback_share=fallback / tokens_safe,
        reduction=1 - tokens / reference_tokens if reference_tokens else 0.0,
        chars_per_second=chars / seconds,
        bytes_per_second=n_bytes / seconds,
        tokens_per_second=tokens / seconds,
        engine=encoder.engine,
    )


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


def _labelled(stats: CorpusStats, label: str, chars: list[int], tokens: list[int],
              reference: list[int] | None) -> dict[str, object]:
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
        texts = read_documents(spec, max_docs=max_docs, text_field=text_field, allow_skipped=allow_invalid_lines)
        label = TRAINING_TEXT if is_training_text(spec, trained) else AS_GIVEN
        chars = [len(text) for text in texts]
        reference: list[int] | None = None
        results[corpus_name] = {}
        for encoder in encoders:
            tokens: list[int] = []
            stats = measure_corpus(encoder, texts, None if reference is None else sum(reference), progress, tokens)
            results[corpus_name][encoder.name] = _labelled(stats, label, chars, tokens, reference)
            reference = reference if reference is not None else tokens
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
