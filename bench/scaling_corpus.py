"""Synthetic Japanese corpora of any size for ``bench/scaling.py``: real clauses recombined, seeded, streamed.

Source documents (one per line) are first split into a held-out share and a generating pool: a file whose
name contains ``test`` is held out whole, every other file keeps :data:`HOLDOUT_FRACTION` of its documents
out by content hash (``vocab_extend.heldout``). Every sentence of a held-out document is also struck from the
pool, so no held-out sentence can be copied into the corpus.

A generated document takes a pool document as its template (uniformly, so the mix of kinds and lengths is
the source's) and rewrites it clause by clause: a clause is kept as it is with probability
``1 - MUTATE_CLAUSE``, otherwise each of its bunsetsu-like phrases (a run without hiragana and the hiragana
after it) is swapped with probability ``SWAP_PHRASE`` for a phrase drawn from the whole pool (weighted by
occurrence). Most clauses of a large corpus are therefore new, as in real text, where the number of distinct
pre-tokens keeps growing with the corpus, while the characters, words and their frequencies stay those of
real Japanese. A generated document with a held-out sentence is dropped.

Invariants: the same source files, size and seed give byte-identical files; nothing but the pool is held in
memory (the output is written as it is generated); no generated sentence equals a held-out sentence.

>>> phrases("日本の漫画家である。")
['日本の', '漫画家である', '。']
>>> clauses("雨が降った。しかし、彼は出かけた。")
['雨が降った。', 'しかし、', '彼は出かけた。']
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from vocab_extend.atomic import atomic_file, atomic_write_json
from vocab_extend.heldout import doc_key, heldout
from vocab_extend.jsonfile import read_json_object

HOLDOUT_FRACTION = 0.1
MUTATE_CLAUSE = 0.7
SWAP_PHRASE = 0.3
GENERATOR_VERSION = 1
_ENDS = "。！？!?"
_SENTENCE = re.compile(f"[^{_ENDS}]*[{_ENDS}]+[」』）)]*|[^{_ENDS}]+")
_CLAUSE = re.compile(f"[^、，,；;{_ENDS}]*[、，,；;{_ENDS}]+[」』）)]*|[^、，,；;{_ENDS}]+")
_PHRASE = re.compile("[^ぁ-ゖ]*[ぁ-ゖ]+|[^ぁ-ゖ]+")
_TAIL = re.compile(f"[、，,；;{_ENDS}」』）)]+$")
# Distinct clauses are counted over the first this many generated clauses (a bounded set of hashes).
TRACK_CLAUSES = 2_000_000


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, each with its end marks (and closing brackets)."""
    return [s for s in _SENTENCE.findall(text) if s.strip()]


def clauses(text: str) -> list[str]:
    """The clauses of ``text``, each with the comma or end mark that closes it."""
    return [c for c in _CLAUSE.findall(text) if c]


def phrases(clause: str) -> list[str]:
    """Bunsetsu-like pieces of a clause: a run without hiragana and the hiragana that follows it."""
    return _PHRASE.findall(clause)


@dataclass
class Source:
    """The generating pool and the held-out documents (per source file stem) of a source folder."""

    pool: list[str]
    phrases: list[str]
    held_out: dict[str, list[str]]
    held_out_sentences: set[str]
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256

    def held_out_figures(self) -> dict[str, dict[str, int]]:
        return {kind: {"documents": len(docs), "chars": sum(map(len, docs))} for kind, docs in self.held_out.items()}


def _file_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def load_source(folder: Path, fraction: float = HOLDOUT_FRACTION) -> Source:
    """Split every ``*.txt`` of ``folder`` into held-out documents and the generating pool."""
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise SystemExit(f"error: {folder} has no .txt files to generate a corpus from")
    held: dict[str, list[str]] = {}
    candidates: list[str] = []
    digests = {}
    for path in files:
        digests[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        whole = "test" in path.stem
        for doc in _file_lines(path):
            if whole or heldout(doc_key(doc), fraction):
                held.setdefault(path.stem, []).append(doc)
            else:
                candidates.append(doc)
    banned = {s for docs in held.values() for doc in docs for s in sentences(doc)}
    pool = []
    for doc in candidates:
        kept = [s for s in sentences(doc) if s not in banned]
        if kept:
            pool.append("".join(kept))
    interned: dict[str, str] = {}
    pieces = [interned.setdefault(p, p) for doc in pool for c in clauses(doc) for p in phrases(_body(c)[0])]
    return Source(pool, pieces, held, banned, digests)


def _body(clause: str) -> tuple[str, str]:
    tail = _TAIL.search(clause)
    return (clause[:tail.start()], tail.group()) if tail else (clause, "")


def _rewrite(template: str, rng: random.Random, pool_phrases: Sequence[str]) -> str:
    out = []
    count = len(pool_phrases)
    for clause in clauses(template):
        if rng.random() >= MUTATE_CLAUSE:
            out.append(clause)
            continue
        body, tail = _body(clause)
        parts = [p if rng.random() >= SWAP_PHRASE else pool_phrases[rng.randrange(count)] for p in phrases(body)]
        out.append("".join(parts) + tail)
    return "".join(out)


def documents(source: Source, seed: int) -> Iterator[str]:
    """Generated documents, endlessly; the same source and seed give the same sequence."""
    rng = random.Random(seed)
    banned = source.held_out_sentences
    while True:
        doc = _rewrite(source.pool[rng.randrange(len(source.pool))], rng, source.phrases).strip()
        if doc and "\n" not in doc and not any(s in banned for s in sentences(doc)):
            yield doc


def parse_size(text: str) -> int:
    """Bytes of a size such as ``20MB``, ``1GB``, ``500KB`` (decimal units).

    >>> parse_size("20MB"), parse_size("1GB"), parse_size("1.5kb")
    (20000000, 1000000000, 1500)
    """
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?B)\s*", text.upper())
    if not found:
        raise SystemExit(f"error: size {text!r} is not a number with KB, MB or GB (20MB, 1GB)")
    return int(float(found.group(1)) * {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}[found.group(2)])


@dataclass
class Generated:
    """A generated corpus file and what it holds."""

    path: str
    target_bytes: int
    bytes: int
    documents: int
    chars: int
    sha256: str
    seed: int
    distinct_clause_share: float  # over the first TRACK_CLAUSES clauses
    settings: dict = field(default_factory=dict)


def _settings(source: Source, target: int, seed: int) -> dict:
    return {"generator_version": GENERATOR_VERSION, "target_bytes": target, "seed": seed,
            "holdout_fraction": HOLDOUT_FRACTION, "mutate_clause": MUTATE_CLAUSE, "swap_phrase": SWAP_PHRASE,
            "source_files": source.files}


def generate(source: Source, target: int, seed: int, path: Path) -> Generated:
    """Write at least ``target`` bytes of whole generated documents to ``path`` (reused when a previous run
    wrote it with the same settings)."""
    settings = _settings(source, target, seed)
    sidecar = path.with_suffix(".json")
    known = read_json_object(sidecar, missing_ok=True) if path.is_file() else None
    if known and known.get("settings") == settings:
        return Generated(**known)
    digest, written, docs, chars = hashlib.sha256(), 0, 0, 0
    seen: set[int] = set()
    tracked = 0
    with atomic_file(path) as tmp, open(tmp, "wb") as out:
        for doc in documents(source, seed):
            data = (doc + "\n").encode("utf-8")
            out.write(data)
            digest.update(data)
            written, docs, chars = written + len(data), docs + 1, chars + len(doc)
            if tracked < TRACK_CLAUSES:
                found = clauses(doc)
                tracked += len(found)
                seen.update(hash(c) for c in found)
            if written >= target:
                break
    result = Generated(str(path), target, written, docs, chars, digest.hexdigest(), seed,
                       round(len(seen) / max(tracked, 1), 4), settings)
    atomic_write_json(sidecar, asdict(result))
    return result
