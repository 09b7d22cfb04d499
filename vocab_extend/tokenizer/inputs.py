"""What a merge reads: its options, its corpora and the new-language model trained on them.

:class:`ExtendConfig` is everything ``vocab-extend merge`` takes. The training documents of every ``--corpus``
pass through with their content-hashed held-out share kept out (:func:`training_documents`; 5%, or 20% of a
small one: :func:`default_heldout_fraction`); the report measures the held-out share, the ``--eval``
corpora (by default the training sample and the bundled English) and the ``--keep`` corpora;
:func:`new_model` trains (or loads) the new-language model on the documents after checking or detecting the
language on the first of them.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..console import log
from ..corpus import CorpusStats, iter_documents, parse_named_spec, read_documents, resolve_files
from ..errors import VocabExtendError
from ..families import widen_split
from ..families.interface import AnyFamily, Base, Extension, TrainOptions
from ..heldout import doc_key, heldout
from ..scripts import ScriptSet
from ..sources import DEFAULT_BASE
from .checks import BASE_LANGUAGE_PROBES
from .language import choose_language, widened_scripts

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_CORPORA = PACKAGE_ROOT / "corpora"
# Corpora up to this many characters are kept in memory (the SentencePiece support check); larger ones are not.
KEEP_CHARS = 50_000_000
# Documents read before training to detect the language (and to fail early on a corpus without any).
DETECT_DOCS = 2_000
# Share of the training documents kept out of training and reported on (content-hashed, see heldout.py) ...
DEFAULT_HELDOUT_FRACTION = 0.05
# ... and of a small corpus (local files of SMALL_CORPUS_MIN_BYTES to SMALL_CORPUS_BYTES, such as the bundled
# sample): 5% of it is a handful of documents, too few for a figure that holds on other text. Below the minimum,
# training needs every document it can get (and the interval in the report says how sure the figure is).
SMALL_CORPUS_BYTES = 1_000_000
SMALL_CORPUS_MIN_BYTES = 64 * 1024
SMALL_CORPUS_HELDOUT_FRACTION = 0.2
# Held-out documents kept in memory for the report; the rest are still kept out of training.
HELDOUT_KEEP = 20_000


@dataclass
class ExtendConfig:
    """Everything ``vocab-extend merge`` takes; see ``--help`` for each option.

    ``new_model_size``: pieces of the new-language model (``None``: 16,000, lowered automatically for a
    small corpus where the family can); ``train``: the family's training settings.
    """

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
    new_model_size: int | None = None
    train: TrainOptions = field(default_factory=TrainOptions)
    verify_sample: int = 2_000
    seed: int = 0
    allow_invalid_lines: bool = False
    heldout_fraction: float | None = None  # None: default_heldout_fraction(corpus)
    total_vocab_size: int | None = None  # --total-vocab-size: base size + new_model_size, set once the base is read
    keep: list[str] = field(default_factory=list)
    lang_sizes: dict[str, int] = field(default_factory=dict)  # --vocab-size th=8000,vi=8000
    multilingual: str = "sequential"  # several languages: one model each, merged in turn; or "joint"

    def train_options(self) -> TrainOptions:
        return dataclasses.replace(self.train, new_model_size=self.new_model_size, seed=self.seed)


def default_heldout_fraction(specs: Sequence[str]) -> float:
    """The held-out share when ``--heldout-fraction`` is not given: :data:`SMALL_CORPUS_HELDOUT_FRACTION` for a
    corpus of local files of :data:`SMALL_CORPUS_MIN_BYTES` to :data:`SMALL_CORPUS_BYTES` in all,
    :data:`DEFAULT_HELDOUT_FRACTION` otherwise (``hf:`` corpora included).

    >>> default_heldout_fraction([str(SAMPLE_CORPORA / "ja")]), default_heldout_fraction(["hf:wikipedia"])
    (0.2, 0.05)
    """
    if not specs or any(spec.startswith("hf:") for spec in specs):
        return DEFAULT_HELDOUT_FRACTION
    try:
        size = sum(path.stat().st_size for spec in specs for path in resolve_files(spec))
    except OSError:
        return DEFAULT_HELDOUT_FRACTION
    small = SMALL_CORPUS_MIN_BYTES <= size < SMALL_CORPUS_BYTES
    return SMALL_CORPUS_HELDOUT_FRACTION if small else DEFAULT_HELDOUT_FRACTION


class Collector:
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
                if self.chars > KEEP_CHARS:
                    self.everything = None
            yield doc


def training_documents(config: ExtendConfig, stats: CorpusStats,
                       held_out: list[str] | None = None) -> Iterator[str]:
    """The documents of every --corpus in turn; --max-docs applies to each corpus. Documents of the held-out
    share go to ``held_out`` (the first :data:`HELDOUT_KEEP` of them) instead of training."""
    for spec in config.corpus:
        own = CorpusStats()
        try:
            for doc in iter_documents(spec, text_field=config.text_field, max_docs=config.max_docs, stats=own,
                                      allow_skipped=config.allow_invalid_lines):
                if config.heldout_fraction and heldout(doc_key(doc), config.heldout_fraction):
                    if held_out is not None and len(held_out) < HELDOUT_KEEP:
                        held_out.append(doc)
                    continue
                yield doc
        finally:
            stats.documents += own.documents
            stats.skipped_non_utf8 += own.skipped_non_utf8
            stats.lines += own.lines
            stats.encodings.update(own.encodings)
            stats.files.extend(own.files)


def eval_corpora(config: ExtendConfig, languages: Sequence[tuple[str, list[str], list[str]]]) -> dict[str, list[str]]:
    """The corpora the report measures: each language's held-out share, the --eval corpora (by default each
    language's training sample, named as such, and the bundled English). ``languages``: (code, training
    sample, held-out documents) per language."""
    specs = [parse_named_spec(e) for e in config.eval]
    corpora: dict[str, list[str]] = {}
    for lang, _, held_out in languages:
        if held_out:
            corpora[f"{lang} (held out)"] = held_out
    if not specs:
        for lang, train_sample, _ in languages:
            corpora[f"{lang} ({'corpus' if config.new_model else 'training'} sample)"] = train_sample
        if (SAMPLE_CORPORA / "en").is_dir():
            specs = [("en", str(SAMPLE_CORPORA / "en"))]
    for name, spec in specs:
        corpora[name] = read_documents(spec, text_field=config.text_field, max_docs=config.max_docs,
                                       allow_skipped=config.allow_invalid_lines)
    return corpora


def keep_corpora(config: ExtendConfig) -> dict[str, list[str]]:
    """The ``--keep`` corpora: base-language text whose lines must tokenize as before (and whose letters a
    Latin-script language never owns)."""
    return {f"base-language reference {name}": read_documents(spec, text_field=config.text_field,
                                                              max_docs=config.max_docs,
                                                              allow_skipped=config.allow_invalid_lines)
            for name, spec in map(parse_named_spec, config.keep)}


def reference_lines(config: ExtendConfig) -> list[str]:
    """The base-language reference text: the bundled English sample, the built-in lines and ``--keep``."""
    lines = list(BASE_LANGUAGE_PROBES)
    if (SAMPLE_CORPORA / "en").is_dir():
        lines += read_documents(str(SAMPLE_CORPORA / "en"))
    for docs in keep_corpora(config).values():
        lines += docs
    return lines


def first_documents(config: ExtendConfig, docs: Iterator[str], held_out: list[str]) -> list[str]:
    """The first :data:`DETECT_DOCS` training documents, which the language is checked or detected on; a
    corpus that gives none is one sentence."""
    head = list(itertools.islice(docs, DETECT_DOCS))
    if not head and held_out:
        raise VocabExtendError(f"--heldout-fraction {config.heldout_fraction} leaves no document of "
                               f"{' '.join(config.corpus)} for training: lower it, or add text")
    if not head:
        raise VocabExtendError(f"corpus {' '.join(config.corpus)} is empty: it has no non-blank text lines")
    return head


@dataclass
class Prepared:
    """A merge ready to be written: the base it is written and checked against, the extension, the characters
    it may change text of, the corpora the report measures, the training samples the checks add (name →
    lines) and the report's extra sections."""

    base: Base
    extension: Extension
    scripts: ScriptSet
    corpora: dict[str, list[str]]
    samples: dict[str, list[str]]
    extra: dict[str, Any]


def new_model(config: ExtendConfig, family: AnyFamily, base: Base, collector: Collector, stats: CorpusStats,
              held_out: list[str]) -> tuple[Any, ScriptSet, Base]:
    """Train (or load) the new-language model; the language is detected from the first documents. The base
    comes back with its split widened for the language's script when ``--widen-split`` asks for it."""
    docs = collector(training_documents(config, stats, held_out))
    started = time.perf_counter()
    if config.new_model is not None:
        new = family.load_new_model(Path(config.new_model))
        for _ in docs if config.corpus else ():
            pass
        log(f"loaded new-language model {config.new_model} ({family.describe(new)})")
        texts = collector.sample or family.new_model_text(new)
        scripts = choose_language(config.lang, texts, lambda: reference_lines(config))
        widened = widen_split(family, base, widened_scripts([scripts])) if config.train.widen_split else base
        return new, scripts, widened
    head = first_documents(config, docs, held_out)
    scripts = choose_language(config.lang, head, lambda: reference_lines(config))
    if config.train.widen_split:
        base = widen_split(family, base, widened_scripts([scripts]))
    new = family.train(base, itertools.chain(head, docs), config.train_options(), collector)
    log(f"trained new-language model: {family.describe(new)} in {time.perf_counter() - started:.1f}s")
    return new, scripts, base
