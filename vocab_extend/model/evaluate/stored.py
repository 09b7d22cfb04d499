"""Scores kept on disk: a model's bits per byte, computed once per (model content, tokenizer, text, settings).

A continued-pretraining run compares its model with the base model it was made from
(:mod:`vocab_extend.pretrain.paid`); the base model does not change between runs, so its score on the same
text with the same settings is read back instead of computed again (minutes on a CPU). Layout under
:func:`vocab_extend.model.cache.cache_root`::

    bpb/<24 hex>.json   {"key": {what the score was computed from}, "result": {"bpb", "nll_sum", ...}}

The file's name is the SHA-256 of its canonical key, and **the key names the model by content**
(:func:`model_fingerprint`): a GGUF file by its SHA-256 (:func:`..cache.content_hash`, remembered per path,
size and time), a model folder by the SHA-256 of its config and weight files, a Hub id by the commit of its
snapshot in the local Hub cache. The caller adds what else decides the score (the tokenizer's fingerprint,
the scored texts' hash, window, batch, device, dtype, library versions). A model that cannot be
fingerprinted (a Hub id not in the local cache) is scored every time; a damaged or unreadable file is
scored again and rewritten; a cache that cannot be written costs the next run the score. Files are written
atomically, so two runs that score the same thing at once both leave a whole file. ``vocab-extend cache``
lists them and ``--clean`` removes them.

>>> score_name({"model": {"gguf_sha256": "ab" * 32}, "texts": "cd" * 32})
'bpb-fbc5935409d2c61e916279bd.json'
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ...atomic import atomic_write_json
from ...errors import VocabExtendError
from ...sources import resolve_model
from ..cache import Entry, cache_root, content_hash

SCORES = "bpb"
VERSION = 1
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
MODEL_FILES = ("config.json", "model.safetensors.index.json", "pytorch_model.bin.index.json")


def scores_dir() -> Path:
    return cache_root() / SCORES


def score_name(key: Mapping[str, Any]) -> str:
    """The file name of the score with ``key``: a hash of the key written canonically."""
    text = json.dumps(key, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return f"bpb-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:24]}.json"


def texts_hash(texts: Sequence[str]) -> str:
    """The SHA-256 of ``texts`` as scored: each document's UTF-8 length and bytes, in order."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def model_fingerprint(spec: str) -> dict[str, Any] | None:
    """What the model named by ``spec`` is, by content; ``None`` when it cannot be told without loading it."""
    try:
        source = resolve_model(spec)
    except VocabExtendError:
        return None
    folder = Path(source.folder)
    if source.gguf_file:
        return {"gguf_sha256": content_hash(folder / source.gguf_file)}
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.is_file() and (p.name in MODEL_FILES
                                                                         or p.suffix in WEIGHT_SUFFIXES))
        return {"files": {p.name: content_hash(p) for p in files}} if files else None
    return _hub_fingerprint(source.folder)


def _hub_fingerprint(repo_id: str) -> dict[str, Any] | None:
    """A Hub model by the commit of its snapshot in the local Hub cache (``None`` when it is not there)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a dependency of transformers
        return None
    found = try_to_load_from_cache(repo_id, "config.json")
    return {"hub": repo_id, "commit": Path(found).parent.name} if isinstance(found, str) else None


def load_score(key: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored result for ``key``; ``None`` when there is none, or it is damaged or for another key."""
    path = scores_dir() / score_name(key)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != json.loads(json.dumps(key)):
        return None
    result = stored.get("result")
    if not isinstance(result, dict):
        return None
    try:
        os.utime(path)  # the listing shows the last use
    except OSError:
        pass
    return result


def save_score(key: Mapping[str, Any], result: Mapping[str, Any], about: str) -> Path | None:
    """Keep ``result`` under ``key`` (``about`` says what it is, for the listing); ``None`` when the cache
    cannot be written."""
    path = scores_dir() / score_name(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(path, {"version": VERSION, "about": about, "key": key, "result": dict(result)})
    except OSError:
        return None


@dataclass(frozen=True)
class ScoreEntry(Entry):
    """A stored score, as ``vocab-extend cache`` lists it."""

    def describe(self) -> str:
        return f"bits per byte of {self.source}" if self.source else "a stored bits-per-byte score"


def list_scores() -> list[ScoreEntry]:
    """The stored scores, oldest first."""
    folder = scores_dir()
    found = []
    for path in sorted(folder.glob("bpb-*.json")) if folder.is_dir() else []:
        try:
            stat = path.stat()
            about = json.loads(path.read_text(encoding="utf-8")).get("about", "")
        except (OSError, ValueError, AttributeError):
            about, stat = "", path.stat()
        found.append(ScoreEntry(path, "score", stat.st_size, stat.st_mtime, str(about)))
    return sorted(found, key=lambda e: e.last_used)


def clean_scores() -> list[ScoreEntry]:
    """Remove every stored score (each is rewritten whole, so none is ever half-read); the removed ones."""
    removed = []
    for entry in list_scores():
        try:
            entry.path.unlink()
            removed.append(entry)
        except FileNotFoundError:
            pass
    return removed

