"""Held-out kinds of text for the adaptation benches, scored in units with their spread.

A bits-per-byte figure measured on one file can hold on that file only: on one 50 KB Wikipedia sample
``distill`` closed 56% of the step-0 gap, on another 35%. The adaptation benches therefore score several
kinds of held-out text (:data:`KINDS`: Japanese Wikipedia, short sentences, conversation; English
Wikipedia/news and literature) and give each figure with a 95% bootstrap interval over units of about
``unit_bytes`` of whole documents (:func:`vocab_extend.heldout.bootstrap_interval`, seeded) and, for bits per
byte, the standard error of the ratio over the units. :func:`verdict` says on which kinds a claim holds.

Selection (:func:`split`): a kind is a file of the corpora folder and the share of its documents held out,
chosen by the content hash of :mod:`vocab_extend.heldout` (the same document is held out in every run). A
training file that is also a kind's file loses that share, and a held-out document found verbatim anywhere
in the training text is dropped, so **no held-out document is training text**. Held-out documents come in
the order of their hash (a fixed shuffle), so a byte budget samples the whole file, not its first part.

>>> kind = Kind("k", "ja", "b.txt", 1.0, "")
>>> train, held = split({"a.txt": ["x", "y"], "b.txt": ["q", "x"]}, [kind], ["a.txt"])
>>> train, held          # "x" is in the training file, so it is not held out
({'a.txt': ['x', 'y']}, {'k': ['q']})
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from vocab_extend.corpus import read_documents
from vocab_extend.errors import VocabExtendError
from vocab_extend.heldout import bootstrap_interval, doc_key, heldout
from vocab_extend.model.evaluate.bpb import bits_per_byte, truncate_to_bytes

MICRO = 10**6  # NLL in micro-nats: the bootstrap helper resamples integer columns


@dataclass(frozen=True)
class Kind:
    """One kind of held-out text: ``share`` of the documents of ``path`` (under the corpora folder)."""

    name: str
    lang: str
    path: str
    share: float  # 1.0: the whole file (it is never trained on)
    what: str


# What the Japanese extension and distillation train on (the held-out shares of these files taken out).
TRAIN = ("ja/jaquad_train_wikipedia.txt", "ja/jglue_short_sentences.txt", "ja/tatoeba_sentences.txt")
KINDS = (
    Kind("ja_wikipedia", "ja", "ja/jsquad_test_wikipedia.txt", 1.0, "Wikipedia paragraphs (JSQuAD test)"),
    Kind("ja_short_sentences", "ja", "ja/jglue_short_sentences.txt", 0.05,
         "image captions, NLI pairs and commonsense questions (JGLUE), 5% held out"),
    Kind("ja_conversation", "ja", "ja/tatoeba_sentences.txt", 0.05,
         "everyday conversational sentences (Tatoeba), 5% held out"),
    Kind("en_wikipedia_news", "en", "en/gum_open_license_genres.txt", 1.0,
         "Wikipedia biographies, Wikivoyage, Wikinews, academic, court (GUM)"),
    Kind("en_literature", "en", "en/gutenberg_novels.txt", 1.0, "four 19th-century novels (Project Gutenberg)"),
)
MISSING = {"ja_literature": "the corpora hold no Japanese literature (Wikipedia, short sentences and "
                            "conversation only): no Japanese figure here speaks for literary text"}


def split(docs: Mapping[str, Sequence[str]], kinds: Sequence[Kind],
          train: Sequence[str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``(training documents per training file, held-out documents per kind)`` from the documents of
    each file (``docs``: path -> documents). No held-out document is in the training documents."""
    shares: dict[str, float] = {}
    for kind in kinds:
        shares[kind.path] = max(shares.get(kind.path, 0.0), kind.share)
    kept = {path: [d for d in docs[path] if not heldout(doc_key(d), shares.get(path, 0.0))] for path in train}
    trained = {d for texts in kept.values() for d in texts}
    held: dict[str, list[str]] = {}
    for kind in kinds:
        chosen = {d for d in docs[kind.path] if d and heldout(doc_key(d), kind.share) and d not in trained}
        held[kind.name] = sorted(chosen, key=lambda d: (doc_key(d), d))
    return kept, held


def load(corpora: Path, kinds: Sequence[Kind] = KINDS,
         train: Sequence[str] = TRAIN) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """:func:`split` on the files under ``corpora``, read as the merge reads them."""
    paths = sorted({*train, *(k.path for k in kinds)})
    missing = [p for p in paths if not (corpora / p).is_file()]
    if missing:
        raise VocabExtendError(f"{corpora} has no {', '.join(missing)}: pass --corpora with a folder laid out as "
                               "<lang>/<name>.txt (bench/README.md says how to get equivalent public text)")
    return split({p: read_documents(str(corpora / p)) for p in paths}, kinds, train)


def write_training(train_docs: Mapping[str, Sequence[str]], folder: Path) -> list[str]:
    """The training documents written one per line under ``folder`` (same relative paths); their paths."""
    out = []
    for rel, texts in train_docs.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        out.append(str(path))
    return out


def refuse_trained_on(specs: Sequence[str], corpora: Path, kinds: Sequence[Kind] = KINDS) -> None:
    """Raise when a tokenizer's recorded training corpus is a held-out kind's whole file."""
    whole = {(corpora / k.path).resolve(): k.name for k in kinds}
    for spec in specs:
        name = whole.get(Path(spec).resolve())
        if name:
            raise VocabExtendError(f"the tokenizer was trained on {spec}, which holds the held-out {name} text: "
                                   "let the bench merge its own, or merge on the training shares only")


def units(docs: Sequence[str], max_bytes: int, unit_bytes: int) -> list[list[str]]:
    """The first ``max_bytes`` of ``docs`` as units of consecutive whole documents of at least
    ``unit_bytes`` each (the last one may be shorter): what the spread is resampled over.

    >>> units(["aa", "b", "cc", "dd"], 7, 3)
    [['aa', 'b'], ['cc', 'dd']]
    """
    out: list[list[str]] = []
    size = 0
    for doc in truncate_to_bytes(docs, max_bytes):
        if not out or size >= unit_bytes:
            out.append([])
            size = 0
        out[-1].append(doc)
        size += len(doc.encode("utf-8"))
    return out


@dataclass
class UnitScores:
    """Summed NLL (nats), UTF-8 bytes and scored tokens of each unit of one kind, for one model."""

    nll: list[float]
    bytes: list[int]
    tokens: list[int]
    seconds: float

    def totals(self) -> dict:
        nll, nbytes = sum(self.nll), sum(self.bytes)
        return {"bpb": round(nll / (math.log(2) * nbytes), 5), "nll_sum": round(nll, 4), "bytes": nbytes,
                "tokens": sum(self.tokens), "units": len(self.nll), "seconds": round(self.seconds, 1)}


def score(model, tokenizer, kind_units: Sequence[Sequence[str]]) -> UnitScores:
    """Each unit scored by :func:`~vocab_extend.model.evaluate.bpb.bits_per_byte` (each document its own
    text, as the project's evaluation scores it): the unit sums add up to the whole sample's."""
    start = time.perf_counter()
    results = [bits_per_byte(model, tokenizer, list(unit), progress=False) for unit in kind_units]
    return UnitScores([r.nll_sum for r in results], [r.bytes for r in results], [r.tokens for r in results],
                      time.perf_counter() - start)


def ratio_standard_error(ys: Sequence[float], xs: Sequence[float]) -> float | None:
    """Standard error of ``sum(ys) / sum(xs)`` over units (linearised), ``None`` below two units.

    >>> round(ratio_standard_error([1, 2, 3, 4], [1, 1, 1, 1]), 4)   # the mean's: stdev / sqrt(n)
    0.6455
    """
    y, x = np.asarray(ys, dtype=np.float64), np.asarray(xs, dtype=np.float64)
    if y.size < 2:
        return None
    ratio = y.sum() / x.sum()
    return float(math.sqrt(y.size / (y.size - 1) * ((y - ratio * x) ** 2).sum()) / x.sum())


def _micro(scores: UnitScores) -> list[int]:
    return [round(v * MICRO) for v in scores.nll]


def _interval(columns: list[list[int]], statistic: Callable[..., np.ndarray]) -> list[float] | None:
    found = bootstrap_interval(columns, statistic)
    return list(found) if found else None


def bpb_figure(scores: UnitScores) -> dict:
    """Bits per byte of one kind with its 95% bootstrap interval and standard error over units."""
    scale = math.log(2) * MICRO
    ci = _interval([_micro(scores), scores.bytes], lambda n, b: n / (scale * b))
    se = ratio_standard_error(scores.nll, scores.bytes)
    return {**scores.totals(), "ci95": ci, "se": round(se / math.log(2), 5) if se is not None else None}


def change_figure(arm: UnitScores, base: UnitScores) -> dict:
    """``arm``'s bits per byte against ``base``'s on the same units, ``arm / base - 1``, with its interval."""
    value = sum(arm.nll) / sum(base.nll) - 1
    return {"value": round(value, 5), "ci95": _interval([_micro(arm), _micro(base)], lambda a, b: a / b - 1)}


def gap_closed_figure(arm: UnitScores, mean: UnitScores, base: UnitScores) -> dict:
    """The share of the step-0 gap (``mean`` above ``base``) that ``arm`` closes, with its interval:
    ``(mean - arm) / (mean - base)`` in bits per byte on the same units (1: as good as the base)."""
    m, a, b = sum(mean.nll), sum(arm.nll), sum(base.nll)
    value = (m - a) / (m - b) if m != b else float("nan")
    ci = _interval([_micro(arm), _micro(mean), _micro(base)], lambda a, m, b: (m - a) / (m - b))
    return {"value": round(value, 4), "ci95": ci}


def verdict(figures: Mapping[str, Mapping], low: float, high: float) -> dict:
    """On which kinds a figure lies in ``[low, high]``: ``holds`` where its whole interval does, ``fails``
    where none of it does, ``unclear`` otherwise (no interval: the point value decides), and a sentence
    that names the kinds when it holds on some only.

    >>> v = verdict({"a": {"value": 0.6, "ci95": [0.55, 0.7]}, "b": {"value": 0.3, "ci95": [0.2, 0.4]}}, 0.5, 1e9)
    >>> v["holds_on"], v["fails_on"], v["summary"]
    (['a'], ['b'], 'holds on a only (1 of 2 kinds)')
    """
    out: dict[str, list[str]] = {"holds_on": [], "fails_on": [], "unclear_on": []}
    for name, figure in figures.items():
        lo, hi = figure.get("ci95") or (figure["value"], figure["value"])
        state = "holds_on" if low <= lo and hi <= high else "fails_on" if hi < low or lo > high else "unclear_on"
        out[state].append(name)
    held, total = out["holds_on"], len(figures)
    if len(held) == total:
        summary = f"holds on every kind ({total})"
    elif not held:
        summary = f"holds on no kind (fails on {len(out['fails_on'])}, unclear on {len(out['unclear_on'])})"
    else:
        summary = f"holds on {', '.join(held)} only ({len(held)} of {total} kinds)"
    values = [f["value"] for f in figures.values()]
    return {**out, "range": [min(values), max(values)] if values else None, "summary": summary}


def describe(kinds: Sequence[Kind], held: Mapping[str, Sequence[str]], max_bytes: int, unit_bytes: int) -> dict:
    """What each kind is, how much of it there is and how much is scored (for the JSON)."""
    out = {}
    for kind in kinds:
        docs = held[kind.name]
        out[kind.name] = {"lang": kind.lang, "file": kind.path, "share_held_out": kind.share, "what": kind.what,
                          "documents_held_out": len(docs),
                          "bytes_held_out": sum(len(d.encode("utf-8")) for d in docs),
                          "bytes_scored": sum(len(d.encode("utf-8")) for d in truncate_to_bytes(docs, max_bytes)),
                          "unit_bytes": unit_bytes}
    return out
