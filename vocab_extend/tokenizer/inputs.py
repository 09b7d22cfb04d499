"""What a merge reads: its options, its corpora and the new-language model trained on them.

:class:`ExtendConfig` is everything ``vocab-extend merge`` takes. The training documents of every ``--corpus``
pass through with their content-hashed held-out share kept out (:func:`training_documents`; 5%, or 20% of a
small one: :func:`default_heldout_fraction`); the report measures the held-out share, the ``--eval``
corpora (by default the training sample and the bundled English) and the ``--keep`` corpora;
:func:`new_model` trains (or loads) the new-language model after checking or detecting the language on the
first documents: on a content-hashed sample of at most ``--sample-chars`` characters (:mod:`.sampling`), read
while the corpus streams, so what is held in memory is bounded at any corpus size. The held-out share kept for
the report (:data:`HELDOUT_KEEP` documents, :data:`HELDOUT_KEEP_CHARS` characters), the verification sample
(``--verify-sample`` documents) and the ``--eval``/``--keep`` corpora (:data:`EVAL_MAX_BYTES` each) are
bounded too.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from tqdm.auto import tqdm

from ..console import log
from ..corpus import CorpusStats, iter_documents, parse_named_spec, read_documents, resolve_files
from ..errors import VocabExtendError
from ..families import check_new_model, widen_split
from ..families.interface import AnyFamily, Base, Extension, TrainOptions
from ..heldout import doc_key, heldout
from ..scripts import ScriptSet
from ..sources import DEFAULT_BASE
from .checks import BASE_LANGUAGE_PROBES
from .language import choose_language, widened_scripts
from . import scan
from .phases import phase
from .sampling import DEFAULT_SAMPLE_CHARS, KEEP_CHARS, BudgetSampler, Collector, SampleStats

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_CORPORA = PACKAGE_ROOT / "corpora"
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
# Held-out documents kept in memory for the report (verification encodes each of them, the largest cost of a
# merge after reading and training); the rest are still kept out of training. On the 100 MB synthetic corpus of
# bench/scaling.py, chars/token on the first 2,000 held-out documents was within 0.5% of that on all 15,325
# (1.8337 against 1.8265 SentencePiece, 1.8248 against 1.8162 byte-level), inside the report's 95% interval.
HELDOUT_KEEP = 2_000
HELDOUT_KEEP_CHARS = 1_000_000  # ... and at most this many characters of them
# --eval and --keep corpora are read up to this many bytes each (a note says when one is longer).
EVAL_MAX_BYTES = 20_000_000


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
    sample_chars: int = DEFAULT_SAMPLE_CHARS  # --sample-chars: the training sample's budget (0: everything)

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


def training_documents(config: ExtendConfig, stats: CorpusStats,
                       held_out: list[str] | None = None) -> Iterator[str]:
    """The documents of every --corpus in turn; --max-docs applies to each corpus. Documents of the held-out
    share go to ``held_out`` (the first :data:`HELDOUT_KEEP` of them, up to :data:`HELDOUT_KEEP_CHARS`) instead
    of training."""
    held_chars = sum(map(len, held_out or ()))
    for spec in config.corpus:
        own = CorpusStats()
        try:
            for doc in iter_documents(spec, text_field=config.text_field, max_docs=config.max_docs, stats=own,
                                      allow_skipped=config.allow_invalid_lines):
                if config.heldout_fraction and heldout(doc_key(doc), config.heldout_fraction):
                    if held_out is not None and len(held_out) < HELDOUT_KEEP and held_chars < HELDOUT_KEEP_CHARS:
                        held_out.append(doc)
                        held_chars += len(doc)
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
        corpora[name] = bounded_documents(config, spec)
    return corpora


def bounded_documents(config: ExtendConfig, spec: str) -> list[str]:
    """The documents of an ``--eval`` or ``--keep`` corpus, up to :data:`EVAL_MAX_BYTES` (with a note when the
    corpus is longer): the report measures them and the checks encode them, so they are held in memory."""
    docs = read_documents(spec, text_field=config.text_field, max_docs=config.max_docs,
                          allow_skipped=config.allow_invalid_lines, max_bytes=EVAL_MAX_BYTES)
    if sum(len(doc.encode("utf-8")) for doc in docs) >= EVAL_MAX_BYTES:
        log(f"note: {spec} is measured and checked on its first {len(docs):,} documents "
            f"({EVAL_MAX_BYTES // 1_000_000} MB)")
    return docs


def keep_corpora(config: ExtendConfig) -> dict[str, list[str]]:
    """The ``--keep`` corpora: base-language text whose lines must tokenize as before (and whose letters a
    Latin-script language never owns)."""
    return {f"base-language reference {name}": bounded_documents(config, spec)
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
        path = new_model_file(Path(config.new_model), family, base.name)
        new = family.load_new_model(path)
        for _ in docs if config.corpus else ():
            pass
        log(f"loaded new-language model {path} ({family.describe(new)})")
        texts = collector.sample or family.new_model_text(new)
        scripts = choose_language(config.lang, texts, lambda: reference_lines(config))
        widened = widen_split(family, base, widened_scripts([scripts])) if config.train.widen_split else base
        return new, scripts, widened
    files = parallel_files(config)
    if files is None:
        head = first_documents(config, docs, held_out)
    else:  # the language is checked on the first documents before the corpus is read on every core
        probe: list[str] = []
        head = first_documents(config, training_documents(config, CorpusStats(), probe), probe)
    scripts = choose_language(config.lang, head, lambda: reference_lines(config))
    if config.train.widen_split:
        base = widen_split(family, base, widened_scripts([scripts]))
    texts = None if files is None else parallel_texts(config, files, collector, stats, held_out)
    if texts is None:
        texts = sampled_texts(config, itertools.chain(head, docs) if files is None else docs, collector)
    with phase("training"):
        new = family.train(base, texts, config.train_options(), collector)
    if collector.sampling is None:  # the corpus streamed whole to the trainer
        collector.sampling = SampleStats(0, collector.seen, collector.chars, collector.seen, collector.chars)
        log(collector.sampling.sentence())
    log(f"trained new-language model: {family.describe(new)} in {time.perf_counter() - started:.1f}s")
    return new, scripts, base


def new_model_file(path: Path, family: AnyFamily, base_name: str) -> Path:
    """The file ``--new-model`` names: a file as given; in a folder (the output of an earlier merge), the
    new-language model file a merge into the base's family writes there (``new_language.model`` for a
    SentencePiece base, ``new_language_tokenizer.json`` for a byte-level one), or the one language's file of
    a several-language merge (``new_language.ja.model``). A folder without one is one sentence saying what
    it must hold."""
    if not path.is_dir():
        return path
    name = family.new_model_file
    stem, _, suffix = name.rpartition(".")
    found = [path / name] if (path / name).is_file() else sorted(path.glob(f"{stem}.*.{suffix}"))
    if len(found) > 1:
        raise VocabExtendError(
            f"--new-model {path} holds the new-language models of several languages "
            f"({', '.join(p.name for p in found)}): give one of them, e.g. --new-model {found[0]}")
    if not found:
        raise VocabExtendError(
            f"--new-model {path} is a folder without {name}, the new-language model file a merge into "
            f"{base_name} writes: give a new-language model file, or the output folder of such a merge")
    check_new_model(family, found[0], base_name)
    return found[0]


def sampled_texts(config: ExtendConfig, docs: Iterator[str], collector: Collector) -> Iterable[str]:
    """What the new-language model trains on: the content-hashed sample of ``config.sample_chars`` characters
    of ``docs`` (read whole here, holding at most the budget; ``collector.everything`` becomes the sample), or,
    with ``--sample-chars 0``, ``docs`` themselves, streamed to the trainer as it reads them."""
    if not config.sample_chars:
        return docs
    collector.everything = None  # the sample is what the support check re-reads
    collector.keyed = False  # ... and it gives the verification sample
    sampler = BudgetSampler(config.sample_chars, config.seed)
    with phase("reading and sampling"):
        sampler.add_all(reading_progress(docs, corpus_bytes(config), config.train.show_progress))
        sample = sampler.documents()
    return _adopted(collector, sampler, sample)


def _adopted(collector: Collector, sampler: BudgetSampler, sample: list[str]) -> list[str]:
    """``sample``, after telling ``collector`` what was read and sampled and giving it the verification sample."""
    collector.chosen = sampler.smallest(collector.sample_size)
    collector.sampling = sampler.stats
    collector.everything = sample if sampler.stats.sampled_chars <= KEEP_CHARS else None
    log(sampler.stats.sentence())
    return sample


def parallel_files(config: ExtendConfig) -> list[Path] | None:
    """The training corpus's files when they are read on every core (:mod:`.scan`): a sampled corpus of
    plain UTF-8 text files of :data:`.scan.PARALLEL_MIN_BYTES` or more, without ``--max-docs``, on a machine
    with more than one core; None otherwise."""
    if not config.sample_chars or config.max_docs is not None or any(s.startswith("hf:") for s in config.corpus):
        return None
    files = [path for spec in config.corpus for path in resolve_files(spec)]
    big = sum(path.stat().st_size for path in files) >= scan.PARALLEL_MIN_BYTES
    return files if big and scan.worker_count(2) > 1 and scan.plain_text_files(files) else None


def parallel_texts(config: ExtendConfig, files: list[Path], collector: Collector, stats: CorpusStats,
                   held_out: list[str]) -> list[str] | None:
    """The training sample of ``files`` read on every core, with ``collector``, ``stats`` and ``held_out``
    filled as the sequential reader fills them; None (nothing filled) when the corpus needs that reader."""
    with phase("reading and sampling"):
        found = scan.scan_sample(files, fraction=config.heldout_fraction or 0.0, budget=config.sample_chars,
                                 seed=config.seed, keep=HELDOUT_KEEP, keep_chars=HELDOUT_KEEP_CHARS,
                                 show_progress=config.train.show_progress)
        if found is None:
            log("note: reading the corpus in one process (a part of it could not be read on several)")
            return None
        sample = found.sampler.documents()
    held_out.extend(found.held_out)
    stats.documents += found.documents
    stats.lines += found.documents
    stats.files.extend(str(path) for path in files)
    collector.seen, collector.chars = found.sampler.stats.read_documents, found.sampler.stats.read_chars
    return _adopted(collector, found.sampler, sample)


def corpus_bytes(config: ExtendConfig) -> int | None:
    """The training corpus's size on disk less its held-out share, for the reading bar's ETA (None when a
    part is compressed, binary or streamed: the bar then shows the rate only)."""
    if any(spec.startswith("hf:") for spec in config.corpus):
        return None
    files = [path for spec in config.corpus for path in resolve_files(spec)]
    if any(path.suffix in (".gz", ".parquet") for path in files):
        return None
    return int(sum(path.stat().st_size for path in files) * (1 - (config.heldout_fraction or 0.0)))


PROGRESS_EVERY = 1_000  # documents between updates of the reading bar


def reading_progress(docs: Iterable[str], total_bytes: int | None, show: bool) -> Iterator[str]:
    """``docs`` unchanged, with a bar of the bytes read, their rate and (with ``total_bytes``) the ETA."""
    with tqdm(total=total_bytes, desc="reading and sampling corpus", unit="B", unit_scale=True,
              mininterval=1.0, disable=not show) as bar:
        pending = count = 0
        for doc in docs:
            pending += len(doc.encode("utf-8")) + 1
            count += 1
            if count % PROGRESS_EVERY == 0:
                bar.update(pending)
                pending = 0
            yield doc
        bar.update(pending)
