"""The main job: corpus → train → merge → write → verify → report, the same for every tokenizer family.

``vocab-extend merge`` (or ``python scripts/merge_tokenizer.py``) with no arguments merges a Japanese model
trained on the bundled sample corpus into the bundled Mistral-7B v0.1 tokenizer. The family of the base
(:mod:`vocab_extend.families`) does the family-specific steps; everything else is here, once. Everything is
built in a temporary folder beside the output and renamed into place only after every check passed, so a
failure or Ctrl-C never leaves a half-written output folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..console import log
from ..corpus import CorpusStats, iter_documents, parse_named_spec, read_documents
from ..errors import VocabExtendError
from ..families import check_new_model, get_family, resolve_tokenizer, widen_split
from ..families.interface import AnyFamily, Base, Extension, TrainOptions
from ..heldout import doc_key, heldout
from ..locks import output_lock
from ..metadata import MergeMetadata, pad_vocab_size
from ..scripts import ScriptSet, get_language
from ..sources import DEFAULT_BASE
from ..staging import check_output_dir, staging_folder
from .checks import BASE_LANGUAGE_PROBES, raise_on_failure, verify_folder
from .folder import TokenizerFolder
from .language import choose_language, language_report
from .report import corpus_figures, pick_example, write_report

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_CORPORA = PACKAGE_ROOT / "corpora"
# Corpora up to this many characters are kept in memory (the SentencePiece support check); larger ones are not.
KEEP_CHARS = 50_000_000
# Documents read before training to detect the language (and to fail early on a corpus without any).
DETECT_DOCS = 2_000
# Share of the training documents kept out of training and reported on (content-hashed, see heldout.py).
DEFAULT_HELDOUT_FRACTION = 0.05
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
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION
    keep: list[str] = field(default_factory=list)

    def train_options(self) -> TrainOptions:
        return dataclasses.replace(self.train, new_model_size=self.new_model_size, seed=self.seed)


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


def eval_corpora(config: ExtendConfig, lang: str, train_sample: list[str],
                 held_out: list[str]) -> dict[str, list[str]]:
    """The corpora the report measures: the held-out share, the --eval corpora (by default a training sample,
    named as such, and the bundled English)."""
    specs = [parse_named_spec(e) for e in config.eval]
    corpora: dict[str, list[str]] = {}
    if held_out:
        corpora[f"{lang} (held out)"] = held_out
    if not specs:
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


def default_output_dir(base: str, lang: str) -> Path:
    path = Path(base)
    if path.exists():  # a local file or folder: name it after the file or folder, not the whole path
        path = path.resolve()
        name = path.parent.name if path.is_file() and path.stem == "tokenizer" else path.stem if path.is_file() \
            else path.name
    else:  # an alias or a Hub id (owner/name)
        name = base.replace("/", "--")
    return Path("outputs") / f"{name}-{lang}"


def _new_model(config: ExtendConfig, family: AnyFamily, base: Base, collector: Collector, stats: CorpusStats,
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
        scripts = choose_language(config.lang, texts, reference_lines(config))
        return new, scripts, widen_split(family, base, scripts) if config.train.widen_split else base
    head = list(itertools.islice(docs, DETECT_DOCS))
    if not head and held_out:
        raise VocabExtendError(f"--heldout-fraction {config.heldout_fraction} leaves no document of "
                               f"{' '.join(config.corpus)} for training: lower it, or add text")
    if not head:
        raise VocabExtendError(f"corpus {' '.join(config.corpus)} is empty: it has no non-blank text lines")
    scripts = choose_language(config.lang, head, reference_lines(config))
    if config.train.widen_split:
        base = widen_split(family, base, scripts)
    new = family.train(base, itertools.chain(head, docs), config.train_options(), collector)
    log(f"trained new-language model: {family.describe(new)} in {time.perf_counter() - started:.1f}s")
    return new, scripts, base


def _example(family: AnyFamily, base: Base, folder: Path, lines: list[str],
             scripts: ScriptSet) -> tuple[str, list[str], list[str]] | None:
    text = pick_example(lines, scripts.contains)
    if text is None:
        return None
    base_ref, ext_ref = family.references(base, folder)
    return text, base_ref.pieces(text), ext_ref.pieces(text)


def _metadata(config: ExtendConfig, family: AnyFamily, base: Base, extension: Extension,
              scripts: ScriptSet) -> MergeMetadata:
    return MergeMetadata(
        base=base.name, base_kind=family.name, base_vocab_size=extension.first_new_id,
        vocab_size=extension.tokenizer_size, lang=scripts.name, added_pieces=len(extension.added),
        pad_to_multiple_of=config.pad_to_multiple_of, new_model=family.new_model_file,
        extra=extension.metadata_extra, corpus=[str(spec) for spec in config.corpus],
    )


def _finish(folder: TokenizerFolder, config: ExtendConfig, base: Base, extension: Extension,
            scripts: ScriptSet, sample: list[str], held_out: list[str]) -> dict[str, Any]:
    """Verify the written folder on the eval corpora and the training sample, write the report."""
    tmp, family = folder.path, folder.family
    corpora = eval_corpora(config, scripts.name, sample, held_out)
    texts = dict(corpora)
    if not any(lines is sample for lines in corpora.values()):  # the default eval already is the sample
        texts.setdefault("training sample", sample)
    texts["built-in base-language lines"] = list(BASE_LANGUAGE_PROBES)  # checked even when no eval has any
    texts.update(keep_corpora(config))
    checks, counts = verify_folder(tmp, family, base, texts, scripts)
    raise_on_failure(checks)
    report = {
        "base": base.name,
        "lang": scripts.name,
        "base_vocab_size": extension.first_new_id,
        "vocab_size": extension.tokenizer_size,
        "embedding_size": pad_vocab_size(extension.tokenizer_size, config.pad_to_multiple_of),
        "pad_to_multiple_of": config.pad_to_multiple_of,
        "added_pieces": len(extension.added),
        **extension.report_extra,
        "skipped": dict(sorted(extension.skipped.items())),
        "skipped_examples": dict(sorted(extension.examples.items())),
        "dead_pieces_dropped": extension.skipped.get("dead", 0),
        "heldout_fraction": config.heldout_fraction,
        "checks": checks,
        "corpora": {name: corpus_figures(sum(map(len, lines)), sum(len(t.encode("utf-8")) for t in lines),
                                         *counts[name]) for name, lines in corpora.items()},
    }
    language = language_report(scripts, sample)
    if language["shares_base_script"]:  # what a language of the base's script owns, and its share
        report["language"] = language
    write_report(tmp, report, _example(family, base, tmp, sample, scripts))
    return report


def inputs_of(config: ExtendConfig, base_path: Path) -> list[tuple[str, str]]:
    """Everything the merge reads, which ``--overwrite`` must never replace or delete."""
    found = [("corpus", spec) for spec in config.corpus]
    found += [("eval corpus", parse_named_spec(value)[1]) for value in config.eval]
    found += [("base-language corpus", parse_named_spec(value)[1]) for value in config.keep]
    found += [("base", config.base), ("base", str(base_path))]
    if config.new_model is not None:
        found.append(("new-language model", str(config.new_model)))
    return found


def extend_tokenizer(config: ExtendConfig) -> Path:
    """Run the whole job; return the output folder."""
    source = resolve_tokenizer(config.base)
    family = get_family(source.family)
    family.check_options(config.train_options(), source.name, config.new_model)
    check_new_model(family, config.new_model, source.name)
    if config.lang != "auto":
        get_language(config.lang)
    inputs = inputs_of(config, source.path)
    check_output_dir(config.output_dir, config.overwrite, inputs)
    with contextlib.ExitStack() as stack:
        if config.output_dir is not None:  # a second writer is refused now, not after training
            stack.enter_context(output_lock(config.output_dir))
        base = family.load_base(source)
        stats = CorpusStats()
        collector = Collector(config.verify_sample, config.seed)
        held_out: list[str] = []
        new, scripts, base = _new_model(config, family, base, collector, stats, held_out)
        for name, encoding in sorted(stats.encodings.items()):
            log(f"note: read {name} as {encoding}")
        if stats.skipped_non_utf8:
            log(f"note: skipped {stats.skipped_non_utf8:,} corpus lines that are not valid UTF-8")
        started = time.perf_counter()
        extension = family.merge(base, new, scripts)
        target = config.output_dir or default_output_dir(base.name, scripts.name)
        with staging_folder(target, config.overwrite, inputs) as tmp:
            folder = TokenizerFolder(tmp, family, _metadata(config, family, base, extension, scripts))
            folder.write(base, extension)
            report = _finish(folder, config, base, extension, scripts, collector.sample, held_out)
    log(f"merged, written and verified in {time.perf_counter() - started:.1f}s")
    _summary(target, report)
    return target


def _summary(target: Path, report: dict[str, Any]) -> None:
    log(f"wrote {target}: {report['base_vocab_size']:,} + {report['added_pieces']:,} = "
        f"{report['vocab_size']:,} pieces")
    for name, c in report["corpora"].items():
        log(f"  {name}: {c['chars_per_token_base']:.2f} -> {c['chars_per_token_extended']:.2f} chars/token "
            f"({c['reduction']:.1%} fewer tokens)")
    if any(name.endswith("sample)") for name in report["corpora"]):
        log("  (training sample figures are on text the model was trained on; quote the held-out ones)")
