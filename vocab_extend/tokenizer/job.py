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
import time
from pathlib import Path
from typing import Any, Mapping

from ..console import log
from ..corpus import CorpusStats, parse_named_spec
from ..errors import VocabExtendError
from ..families import check_new_model, get_family, resolve_tokenizer, widened_ceiling
from ..families.interface import AnyFamily, Base, Extension, TokenizerSource
from ..locks import output_lock
from ..metadata import MergeMetadata, pad_vocab_size
from ..scripts import ScriptSet
from ..staging import check_output_dir, staging_folder
from .checks import BASE_LANGUAGE_PROBES, Counts, raise_on_failure, verify_folder
from .folder import TokenizerFolder
from .inputs import (DEFAULT_HELDOUT_FRACTION, DETECT_DOCS, HELDOUT_KEEP, KEEP_CHARS, PACKAGE_ROOT, SAMPLE_CORPORA,
                     Collector, ExtendConfig, Prepared, default_heldout_fraction, eval_corpora, keep_corpora,
                     new_model, reference_lines, training_documents)
from .labels import (CORPUS_SAMPLE, EVAL, HELD_OUT, TRAINED_NOTE, TRAINED_ON, TRAINING_SAMPLE, TRAINING_TEXT,
                     interval_figures, is_training_text, pieces_notes, row_line, training_files)
from .language import language_section
from .multilang import LanguagePlan, language_plan, merge_in_turn, merge_jointly
from .phases import current_record, phase, recording
from .report import ceiling_figures, ceiling_sentence, corpus_figures, pick_example, write_report, write_run_record

__all__ = ["DEFAULT_HELDOUT_FRACTION", "DETECT_DOCS", "HELDOUT_KEEP", "KEEP_CHARS", "PACKAGE_ROOT", "SAMPLE_CORPORA",
           "Collector", "ExtendConfig", "default_output_dir", "eval_corpora", "extend_tokenizer", "inputs_of",
           "keep_corpora", "reference_lines", "training_documents"]


# --total-vocab-size leaves at least this many pieces for the new-language model (byte-level models start at 256).
MIN_TOTAL_MARGIN = 300


def default_output_dir(base: str, lang: str) -> Path:
    path = Path(base)
    if path.exists():  # a local file or folder: name it after the file or folder, not the whole path
        path = path.resolve()
        name = path.parent.name if path.is_file() and path.stem == "tokenizer" else path.stem if path.is_file() \
            else path.name
    else:  # an alias or a Hub id (owner/name)
        name = base.replace("/", "--")
    return Path("outputs") / f"{name}-{lang}"


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
        pad_to_multiple_of=config.pad_to_multiple_of,
        new_model="" if extension.new_models else family.new_model_file,  # several: extra["languages"] names them
        extra=extension.metadata_extra, corpus=[str(spec) for spec in config.corpus],
    )


def _ceilings(folder: TokenizerFolder, base: Base, scripts: ScriptSet, corpora: Mapping[str, list[str]],
              widen_hint: bool) -> dict[str, dict[str, Any]]:
    """The best chars/token the written tokenizer's split allows on each new-language corpus, and (one
    language, split not widened) what ``--widen-split`` would allow."""
    family = folder.family
    ext_ref = family.references(base, folder.path)[1]
    wider = (lambda lines: widened_ceiling(family, base, scripts, lines)) if widen_hint else None
    return ceiling_figures(ext_ref.split_ceiling, wider, corpora, scripts.contains)


def corpus_label(name: str, config: ExtendConfig, trained: set[Path]) -> str:
    """What the report's corpus ``name`` is: the held-out share, a training sample, or an ``--eval`` corpus
    (``training text`` when its files are training files)."""
    if name.endswith("(held out)"):
        return HELD_OUT
    if name.endswith("(training sample)"):
        return TRAINING_SAMPLE
    if name.endswith("(corpus sample)"):  # --new-model: what it was trained on is not known
        return CORPUS_SAMPLE
    specs = dict(parse_named_spec(value) for value in config.eval)
    return TRAINING_TEXT if name in specs and is_training_text(specs[name], trained) else EVAL


def _corpus_rows(config: ExtendConfig, corpora: Mapping[str, list[str]], counts: Counts,
                 ceilings: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The report's ``corpora``: per corpus its label, figures and ceiling; text not trained on also its size in
    documents and the 95% bootstrap intervals."""
    trained = training_files(config.corpus)
    rows = {}
    for name, lines in corpora.items():
        base_tokens, extended_tokens = counts[name]
        label = corpus_label(name, config, trained)
        row = {"label": label, **corpus_figures(sum(map(len, lines)), sum(len(t.encode("utf-8")) for t in lines),
                                                sum(base_tokens), sum(extended_tokens))}
        row["documents"] = len(lines)
        if label not in TRAINED_ON:
            row.update(interval_figures([len(line) for line in lines], base_tokens, extended_tokens))
        rows[name] = {**row, **ceilings.get(name, {})}
    return rows


def _finish(folder: TokenizerFolder, config: ExtendConfig, prepared: Prepared) -> dict[str, Any]:
    """Verify the written folder on the eval corpora and the training samples, write the report."""
    tmp, family = folder.path, folder.family
    base, extension, scripts, corpora = prepared.base, prepared.extension, prepared.scripts, prepared.corpora
    texts = dict(corpora)
    for name, sample in prepared.samples.items():
        if not any(lines is sample for lines in corpora.values()):  # the default eval already is the sample
            texts.setdefault(name, sample)
    texts["built-in base-language lines"] = list(BASE_LANGUAGE_PROBES)  # checked even when no eval has any
    texts.update(keep_corpora(config))
    with phase("verification"):
        checks, counts = verify_folder(tmp, family, base, texts, scripts, progress=config.train.show_progress)
    raise_on_failure(checks)
    ceilings = _ceilings(folder, base, scripts, corpora, len(prepared.samples) == 1 and not config.train.widen_split)
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
        "corpora": _corpus_rows(config, corpora, counts, ceilings),
        **({"total_vocab_size_asked": config.total_vocab_size} if config.total_vocab_size else {}),
        **prepared.extra,
    }
    lines = [line for sample in prepared.samples.values() for line in sample]
    write_report(tmp, report, _example(family, base, tmp, lines, scripts))
    record = current_record()
    if record is not None:  # wall times and peak memory differ between runs: run.json, apart from the report
        write_run_record(tmp, record)
    return report


def _one_language(config: ExtendConfig, family: AnyFamily, base: Base, stats: CorpusStats) -> Prepared:
    """Train (or load) one new-language model and merge it: the merge as it always was."""
    collector = Collector(config.verify_sample, config.seed)
    held_out: list[str] = []
    new, scripts, base = new_model(config, family, base, collector, stats, held_out)
    with phase("merging"):
        extension = family.merge(base, new, scripts)
    language = language_section(family, base, new, extension, scripts, collector.sample, held_out,
                                lambda: reference_lines(config))
    extra = {"language": language} if language["shares_base_script"] else {}  # what it owns, and its share
    if collector.sampling is not None:
        extra["sample"] = {scripts.name: collector.sampling.as_dict()}
    corpora = eval_corpora(config, [(scripts.name, collector.sample, held_out)])
    return Prepared(base, extension, scripts, corpora, {"training sample": collector.sample}, extra)


def inputs_of(config: ExtendConfig, base_path: Path) -> list[tuple[str, str]]:
    """Everything the merge reads, which ``--overwrite`` must never replace or delete."""
    found = [("corpus", spec) for spec in config.corpus]
    found += [("eval corpus", parse_named_spec(value)[1]) for value in config.eval]
    found += [("base-language corpus", parse_named_spec(value)[1]) for value in config.keep]
    found += [("base", config.base), ("base", str(base_path))]
    if config.new_model is not None:
        found.append(("new-language model", str(config.new_model)))
    return found


def _planned(config: ExtendConfig, family: AnyFamily,
             source: TokenizerSource) -> tuple[ExtendConfig, list[LanguagePlan] | None]:
    """The languages of the merge, every option checked before any work; a corpus marked with one
    language is the one-language merge of that language."""
    plan = language_plan(config.lang, config.corpus, config.lang_sizes, config.new_model, mode=config.multilingual)
    if plan is not None and len(plan) == 1:
        config = dataclasses.replace(config, corpus=plan[0].corpus, lang=plan[0].code,
                                     new_model_size=plan[0].size or config.new_model_size)
        plan = None
    if plan is not None and config.total_vocab_size is not None:
        raise VocabExtendError("--total-vocab-size sizes a one-language merge: give each language its "
                               "new-language pieces with --vocab-size th=8000,vi=8000")
    if config.heldout_fraction is None:
        specs = config.corpus if plan is None else [spec for item in plan for spec in item.corpus]
        config = dataclasses.replace(config, heldout_fraction=default_heldout_fraction(specs))
    sizes = [config.new_model_size] if plan is None else [item.size or config.new_model_size for item in plan]
    for size in sizes:
        family.check_options(dataclasses.replace(config.train_options(), new_model_size=size), source.name,
                             config.new_model)
    check_new_model(family, config.new_model, source.name)
    return config, plan


def _sized(config: ExtendConfig, base: Base) -> ExtendConfig:
    """``--total-vocab-size N``: the new-language model gets N − the base's size pieces (the rule: pieces the
    base already has or that are not the language's are skipped, so the total comes out below N, and the
    report says by how much). N must leave at least :data:`MIN_TOTAL_MARGIN` pieces beyond the base."""
    total = config.total_vocab_size
    if total is None:
        return config
    size = base.first_new_id
    if total < size + MIN_TOTAL_MARGIN:
        raise VocabExtendError(f"--total-vocab-size {total:,} leaves {max(total - size, 0):,} pieces beyond the "
                               f"base's {size:,}: give at least {size + MIN_TOTAL_MARGIN:,}")
    log(f"--total-vocab-size {total:,}: training a new-language model of {total - size:,} pieces "
        f"({total:,} − the base's {size:,})")
    return dataclasses.replace(config, new_model_size=total - size)


def _prepare(config: ExtendConfig, family: AnyFamily, base: Base, plan: list[LanguagePlan] | None,
             stats: CorpusStats) -> Prepared:
    """Train (or load) and merge; a corpus too small for ``--total-vocab-size`` says which total it allows."""
    try:
        if plan is None:
            return _one_language(config, family, base, stats)
        merge = merge_jointly if config.multilingual == "joint" else merge_in_turn
        return merge(config, family, base, plan, stats)
    except VocabExtendError as exc:
        largest = getattr(exc, "largest", None)
        if config.total_vocab_size is None or not isinstance(largest, int):
            raise
        raise VocabExtendError(f"the corpus is too small for --total-vocab-size {config.total_vocab_size:,}: it "
                               f"supports about {largest:,} new-language pieces (--total-vocab-size "
                               f"{base.first_new_id + largest} works); lower it or add text") from None


def extend_tokenizer(config: ExtendConfig) -> Path:
    """Run the whole job; return the output folder."""
    source = resolve_tokenizer(config.base)
    family = get_family(source.family)
    config, plan = _planned(config, family, source)
    inputs = inputs_of(config, source.path)
    check_output_dir(config.output_dir, config.overwrite, inputs)
    with contextlib.ExitStack() as stack:
        if config.output_dir is not None:  # a second writer is refused now, not after training
            stack.enter_context(output_lock(config.output_dir))
        stack.enter_context(recording())
        with phase("loading the base"):
            base = family.load_base(source)
        config = _sized(config, base)
        stats = CorpusStats()
        started = time.perf_counter()
        prepared = _prepare(config, family, base, plan, stats)
        for name, encoding in sorted(stats.encodings.items()):
            log(f"note: read {name} as {encoding}")
        if stats.skipped_non_utf8:
            log(f"note: skipped {stats.skipped_non_utf8:,} corpus lines that are not valid UTF-8")
        target = config.output_dir or default_output_dir(base.name, prepared.scripts.name)
        with staging_folder(target, config.overwrite, inputs) as tmp:
            folder = TokenizerFolder(tmp, family, _metadata(config, family, prepared.base, prepared.extension,
                                                            prepared.scripts))
            with phase("writing"):
                folder.write(prepared.base, prepared.extension)
            report = _finish(folder, config, prepared)
    log(f"trained, merged, written and verified in {time.perf_counter() - started:.1f}s")
    _summary(target, report)
    return target


def _summary(target: Path, report: dict[str, Any]) -> None:
    log(f"wrote {target}: {report['base_vocab_size']:,} + {report['added_pieces']:,} = "
        f"{report['vocab_size']:,} pieces")
    for line in pieces_notes(report):
        log(f"  {line}")
    for name, c in report["corpora"].items():
        log(f"  {row_line(name, c)}")
        if c.get("chars_per_token_ceiling") is not None:
            log(f"    {ceiling_sentence(c)}")
    for code, language in (report.get("languages") or {}).items():
        if isinstance(language, dict):
            log(f"  {code}: {language['added_pieces']:,} pieces added")
    if any(c.get("label") in TRAINED_ON for c in report["corpora"].values()):
        log(f"  ({TRAINED_NOTE})")
