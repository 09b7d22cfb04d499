"""Several languages in one merge (SeaLLM / Sailor style): which corpus is which language, and how the
languages' merges add up.

``--corpus th=FILE --corpus vi=FILE`` marks each corpus with its language (a prefix that is a code of the
language table; a corpus without one is read as today), ``--lang th,vi`` names the languages and their order,
``--vocab-size th=8000,vi=8000`` gives each its own budget (one number: each language gets it).

The default, *sequential*, trains one new-language model per language and merges them one after the other:
each language's model is merged into the base extended by the languages before it (the family's
``extended_base``), so each language gets its own budget and keeps the pieces of its own model. The written
tokenizer is checked against the *original* base with the union of the languages' own characters: a line
with none of them tokenizes exactly as before. *Joint* (``--multilingual joint``) trains one model on every
corpus with the summed budget and admits pieces of any of the languages.

>>> plan = language_plan("auto", ["th=a.txt", "vi=b.txt", "th=c.txt"], {"vi": 8000}, None)
>>> [(p.code, p.corpus, p.size) for p in plan]
[('th', ['a.txt', 'c.txt'], None), ('vi', ['b.txt'], 8000)]
>>> language_plan("auto", ["corpora/ja"], {}, None) is None
True
>>> union_scripts([ScriptSet("th", ((0x0E01, 0x0E3A),)), ScriptSet("vi", ((0x0E30, 0x0E40), (0x1EA0, 0x1EF9)))])
ScriptSet(name='th+vi', ranges=((3585, 3648), (7840, 7929)))
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..console import log
from ..corpus import CorpusStats
from ..errors import VocabExtendError
from ..families import widen_split
from ..families.interface import DEFAULT_VOCAB_SIZE, AnyFamily, Base, Extension, TrainOptions, new_model_name
from ..scripts import LANGUAGES, ScriptSet, get_language
from .inputs import (Collector, ExtendConfig, Prepared, eval_corpora, first_documents, new_model, reference_lines,
                     sampled_texts, training_documents)
from .language import (check_added, choose_language, language_report, language_section, own_characters, union_scripts,
                       widened_scripts)

MODES = ("sequential", "joint")
SEPARATORS = (",", "+")  # --lang th,vi; vocab_extend.json's lang "th+vi" (read back by pretraining) too
MAX_EXAMPLES = 8


@dataclass(frozen=True)
class LanguagePlan:
    """One language of a several-language merge: its code, its corpora and its budget (None: the default)."""

    code: str
    corpus: list[str]
    size: int | None


def listed_languages(lang: str) -> list[str]:
    """The codes ``--lang`` names (``[]`` for auto); an unknown or repeated code is one sentence."""
    if lang == "auto":
        return []
    codes = [code.strip() for code in lang.replace("+", ",").split(",")]
    for code in codes:
        get_language(code)
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise VocabExtendError(f"--lang {lang} names {repeated[0]} twice: name each language once")
    return codes


def corpus_language(spec: str) -> tuple[str | None, str]:
    """``("th", "FILE")`` for ``th=FILE`` when ``th`` is a code of the language table, else ``(None, spec)``.

    >>> corpus_language("th=wiki.txt"), corpus_language("data/a=b.txt"), corpus_language("hf:x:th=y")
    (('th', 'wiki.txt'), (None, 'data/a=b.txt'), (None, 'hf:x:th=y'))
    """
    code, sep, rest = spec.partition("=")
    if sep and rest and code in LANGUAGES and not spec.startswith("hf:"):
        return code, rest
    return None, spec


def parse_sizes(value: str | None) -> tuple[int | None, dict[str, int]]:
    """``--vocab-size``: one number for every language, or ``th=8000,vi=8000``; anything else is one sentence.

    >>> parse_sizes("16000"), parse_sizes("th=8000,vi=6000"), parse_sizes(None)
    ((16000, {}), (None, {'th': 8000, 'vi': 6000}), (None, {}))
    """
    if value is None:
        return None, {}
    try:
        if "=" not in value:
            return int(value), {}
        sizes: dict[str, int] = {}
        for part in value.split(","):
            code, _, number = part.partition("=")
            sizes[code.strip()] = int(number)
    except ValueError:
        raise VocabExtendError(f"--vocab-size {value}: give a number (16000) or one per language "
                               "(th=8000,vi=8000)") from None
    unknown = sorted(code for code in sizes if code not in LANGUAGES)
    if unknown:
        raise VocabExtendError(f"--vocab-size {value} gives a size for {unknown[0]!r}, which is not a language "
                               f"code: use codes of --lang ({', '.join(sorted(LANGUAGES))})")
    return None, sizes


def _prefixed(corpus: Sequence[str]) -> dict[str, list[str]]:
    """Corpora by language, in the order the languages first appear; mixing marked and plain is refused."""
    marked: dict[str, list[str]] = {}
    plain = []
    for spec in corpus:
        code, rest = corpus_language(spec)
        if code is None:
            plain.append(spec)
        else:
            marked.setdefault(code, []).append(rest)
    if marked and plain:
        raise VocabExtendError(f"--corpus {plain[0]} has no language prefix while others have one: mark every "
                               "corpus, e.g. --corpus th=FILE --corpus vi=FILE")
    return marked


def _check_languages(listed: list[str], marked: dict[str, list[str]], sizes: dict[str, int]) -> list[str]:
    order = listed or list(marked)
    for code in marked:
        if code not in order:
            raise VocabExtendError(f"--corpus {code}=... marks a corpus as {code}, which --lang "
                                   f"{','.join(listed)} does not name: add it to --lang or drop that corpus")
    for code in order:
        if code not in marked:
            raise VocabExtendError(f"--lang names {code} but no corpus is marked {code}: add --corpus {code}=FILE")
    for code in sizes:
        if code not in order:
            raise VocabExtendError(f"--vocab-size gives a size for {code}, which this merge does not extend "
                                   f"({', '.join(order)}): drop it or add its corpus")
    return order


def language_plan(lang: str, corpus: Sequence[str], sizes: dict[str, int], new_model: object, *,
                  mode: str = "sequential") -> list[LanguagePlan] | None:
    """The languages of the merge and their corpora and budgets; None when no corpus is marked with a
    language (one language, as without this module). Every bad combination is one sentence, before any work."""
    listed = listed_languages(lang)
    marked = _prefixed(corpus)
    if mode not in MODES:
        raise VocabExtendError(f"--multilingual {mode}: choose {' or '.join(MODES)}")
    if not marked:
        if len(listed) > 1:
            raise VocabExtendError(f"--lang {lang} names several languages: mark each corpus with its language, "
                                   "e.g. --corpus th=FILE --corpus vi=FILE")
        if mode != "sequential":
            raise VocabExtendError(f"--multilingual {mode} merges several languages: mark each corpus with its "
                                   "language, e.g. --corpus th=FILE --corpus vi=FILE")
        if sizes:
            raise VocabExtendError("--vocab-size per language needs corpora marked with their language "
                                   "(--corpus th=FILE): give one number instead")
        return None
    order = _check_languages(listed, marked, sizes)
    if len(order) > 1 and new_model is not None:
        raise VocabExtendError("--new-model is one language's model, but the corpora are marked with several "
                               "languages: merge them without --new-model")
    return [LanguagePlan(code, marked[code], sizes.get(code)) for code in order]


def _summed(extras: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Family figures of several merges: counts added up, tables joined (an entry as the first merge that has
    it has it: the base scores of pieces two languages re-rank), anything else as the first merge has it."""
    combined: dict[str, Any] = {}
    for extra in extras:
        for key, value in extra.items():
            if key not in combined:
                combined[key] = value
            elif isinstance(value, int) and not isinstance(value, bool):
                combined[key] += value
            elif isinstance(value, dict) and isinstance(combined[key], dict):  # the first merge's entry wins
                combined[key] = {**value, **combined[key]}
    return combined


def combine(first_new_id: int, codes: Sequence[str], extensions: Sequence[Extension],
            family: AnyFamily) -> Extension:
    """One extension of the original base from the languages' merges in turn: every added piece in order,
    the skips summed, the last merged model (which holds them all) and each language's new model."""
    skipped: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for extension in extensions:
        skipped.update(extension.skipped)
        for reason, pieces in extension.examples.items():
            examples.setdefault(reason, []).extend(pieces)
    languages = {code: {"added_pieces": len(ext.added), "new_model": new_model_name(family.new_model_file, code)}
                 for code, ext in zip(codes, extensions)}
    last = extensions[-1]
    return Extension(
        first_new_id=first_new_id,
        added=[piece for extension in extensions for piece in extension.added],
        skipped=skipped,
        examples={reason: pieces[:MAX_EXAMPLES] for reason, pieces in examples.items()},
        model=last.model,
        new_model=last.new_model,
        report_extra=_summed(e.report_extra for e in extensions),
        metadata_extra={**_summed(e.metadata_extra for e in extensions), "languages": languages},
        new_models={code: ext.new_model for code, ext in zip(codes, extensions)},
    )


def pieces_by_language(family: AnyFamily, added: Sequence[str], sets: Sequence[ScriptSet]) -> dict[str, int]:
    """How many added pieces hold a character of each language (a joint model's pieces, counted by script;
    a piece of two scripts counts for both)."""
    counts = {s.name: 0 for s in sets}
    for piece in added:
        text = (family.piece_bytes(piece) or b"").decode("utf-8", errors="ignore")
        for s in sets:
            counts[s.name] += s.contains(text)
    return counts


def languages_section(mode: str, sets: Sequence[ScriptSet], added: dict[str, int], sizes: dict[str, int],
                      languages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``report.json``'s ``languages``: per language, the pieces it added, its budget and what it owns
    (``languages``: each one's :func:`.language.language_report`, or :func:`.language.language_section`)."""
    section: dict[str, Any] = {"mode": mode}
    for scripts in sets:
        entry = {"added_pieces": added[scripts.name], "new_model_size": sizes[scripts.name]}
        language = languages[scripts.name]
        section[scripts.name] = {**entry, **(language if language["shares_base_script"] else
                                             {"name": language["name"], "scripts": language["scripts"]})}
    return section


def per_language_samples(sample: list[str], sets: Sequence[ScriptSet]) -> dict[str, list[str]]:
    """A joint model's training sample split by language: the lines with a character of each."""
    return {s.name: [line for line in sample if s.contains(line)] for s in sets}


def _budget(config: ExtendConfig, item: LanguagePlan) -> int | None:
    return item.size or config.new_model_size


def widened_for_all(config: ExtendConfig, family: AnyFamily, base: Base, plan: Sequence[LanguagePlan],
                    reference: Callable[[], list[str]]) -> tuple[Base, TrainOptions]:
    """``--widen-split`` with several languages: the base's split widened once, before any training, for the
    union of the languages' own characters (:func:`.language.widened_scripts`: a run of them is one pre-token;
    a line without any of them cannot match the new alternative and splits as before), and training options
    that do not widen it again."""
    if not config.train.widen_split:
        return base, config.train
    sets = [own_characters(item.code, reference() if LANGUAGES[item.code].shares_base_script else ())
            for item in plan]
    return widen_split(family, base, widened_scripts(sets)), dataclasses.replace(config.train, widen_split=False)


def merge_in_turn(config: ExtendConfig, family: AnyFamily, base: Base, plan: Sequence[LanguagePlan],
                  stats: CorpusStats) -> Prepared:
    """One new-language model per language, each merged into the base extended by the languages before it;
    the result is one extension of the original ``base``, checked with the union of their characters."""
    reference = functools.cache(lambda: reference_lines(config))  # read once, and only if a language needs it
    working, train = widened_for_all(config, family, base, plan, reference)
    extensions, sets = [], []
    samples: dict[str, list[str]] = {}
    languages: dict[str, dict[str, Any]] = {}
    held: dict[str, list[str]] = {}
    sampled: dict[str, Any] = {}
    for item in plan:
        own = dataclasses.replace(config, corpus=item.corpus, lang=item.code, new_model_size=_budget(config, item),
                                  train=train)
        collector = Collector(config.verify_sample, config.seed)
        held[item.code] = []
        new, scripts, _ = new_model(own, family, working, collector, stats, held[item.code])
        extension = family.merge(working, new, scripts)
        log(f"{item.code}: {len(extension.added):,} pieces merged after id {working.first_new_id - 1:,}")
        languages[item.code] = language_section(family, working, new, extension, scripts, collector.sample,
                                                held[item.code], reference)
        working = family.extended_base(working, extension)
        extensions.append(extension)
        sets.append(scripts)
        samples[item.code] = collector.sample
        sampled[item.code] = collector.sampling.as_dict() if collector.sampling else {}
    codes = [item.code for item in plan]
    combined = combine(base.first_new_id, codes, extensions, family)
    sizes = {item.code: _budget(config, item) or DEFAULT_VOCAB_SIZE for item in plan}
    added = {code: len(extension.added) for code, extension in zip(codes, extensions)}
    section = languages_section("sequential", sets, added, sizes, languages)
    corpora = eval_corpora(config, [(code, samples[code], held[code]) for code in codes])
    return Prepared(base, combined, union_scripts(sets), corpora,
                    {f"{code} training sample": samples[code] for code in codes},
                    {"languages": section, "sample": sampled})


def _streams(config: ExtendConfig, plan: Sequence[LanguagePlan], stats: CorpusStats,
             held: dict[str, list[str]]) -> tuple[list[ScriptSet], Iterator[str]]:
    """Every language's documents in turn (each with its own held-out share), its language checked first."""
    reference = functools.cache(lambda: reference_lines(config))  # read once, and only if a language needs it
    sets, streams = [], []
    for item in plan:
        own = dataclasses.replace(config, corpus=item.corpus, lang=item.code)
        docs = training_documents(own, stats, held.setdefault(item.code, []))
        head = first_documents(own, docs, held[item.code])
        sets.append(choose_language(item.code, head, reference))
        streams.append(itertools.chain(head, docs))
    return sets, itertools.chain.from_iterable(streams)


def merge_jointly(config: ExtendConfig, family: AnyFamily, base: Base, plan: Sequence[LanguagePlan],
                  stats: CorpusStats) -> Prepared:
    """One new-language model trained on every corpus with the summed budget; pieces of any language."""
    held: dict[str, list[str]] = {}
    sets, docs = _streams(config, plan, stats, held)
    scripts = union_scripts(sets)
    if config.train.widen_split:  # a run of any language's own characters is one pre-token
        base = widen_split(family, base, widened_scripts(sets))
    sizes = {item.code: _budget(config, item) or DEFAULT_VOCAB_SIZE for item in plan}
    collector = Collector(config.verify_sample, config.seed)
    started = time.perf_counter()
    options = dataclasses.replace(config.train_options(), new_model_size=sum(sizes.values()))
    files = dataclasses.replace(config, corpus=[spec for item in plan for spec in item.corpus])  # no LANG= marks
    new = family.train(base, sampled_texts(files, collector(docs), collector), options, collector)
    log(f"trained one new-language model for {scripts.name}: {family.describe(new)} in "
        f"{time.perf_counter() - started:.1f}s")
    extension = family.merge(base, new, scripts)
    samples = per_language_samples(collector.sample, sets)
    added = pieces_by_language(family, extension.added, sets)
    for s in sets:
        check_added(s, added[s.name])
    section = languages_section("joint", sets, added, sizes,
                                {s.name: language_report(s, samples[s.name]) for s in sets})
    extension.metadata_extra = {**extension.metadata_extra, "languages": {
        code: {"added_pieces": section[code]["added_pieces"]} for code in sizes}}
    corpora = eval_corpora(config, [(s.name, samples[s.name], held[s.name]) for s in sets])
    sampled = {scripts.name: collector.sampling.as_dict()} if collector.sampling else {}
    return Prepared(base, extension, scripts, corpora, {f"{s.name} training sample": samples[s.name] for s in sets},
                    {"languages": section, "sample": sampled})
