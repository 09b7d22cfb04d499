"""Corpus specs: where text comes from.

A *spec* names documents to read, one string each:

- a text file (a document per line; empty lines skipped), a folder (its ``*.txt``, ``*.jsonl``, ``*.json``,
  ``*.parquet`` and ``.gz`` files, sorted), or a glob;
- ``.jsonl`` / ``.json`` files (the ``text`` field, or ``text_field``), ``.parquet`` files, and ``.gz`` of
  any of these;
- ``hf:NAME[:CONFIG][:SPLIT]``, streamed through :mod:`datasets`.

Lines that are not valid UTF-8 are skipped and counted in :class:`CorpusStats` (the CLI reports the count);
they never stop a run.

>>> import tempfile, os
>>> d = tempfile.mkdtemp(); p = os.path.join(d, "a.txt")
>>> _ = open(p, "w", encoding="utf-8").write("一行目\\n\\n二行目\\n")
>>> list(iter_documents(p))
['一行目', '二行目']
"""

from __future__ import annotations

import glob
import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

from .errors import VocabExtendError

_SUFFIXES = (".txt", ".text", ".jsonl", ".json", ".parquet")


@dataclass
class CorpusStats:
    """Counts gathered while reading; filled in by :func:`iter_documents`."""

    documents: int = 0
    skipped_non_utf8: int = 0
    files: list[str] = field(default_factory=list)


def parse_named_spec(value: str) -> tuple[str, str]:
    """Split ``NAME=SPEC`` (as in ``--eval ja=corpora/ja``); a bare SPEC is named after its last path part."""
    if "=" in value and not value.startswith("hf:"):
        name, spec = value.split("=", 1)
        if not name or not spec:
            raise VocabExtendError(f"{value!r} is not NAME=SPEC: give a name and a corpus, e.g. ja=corpora/ja")
        return name, spec
    if value.startswith("hf:"):
        return value.split(":")[1] or value, value
    name = Path(value.rstrip("/")).name
    for suffix in (".gz", ".txt", ".jsonl", ".json", ".parquet", ".model"):  # mistral-7b-v0.1 keeps its ".1"
        name = name[: -len(suffix)] if name.endswith(suffix) and len(name) > len(suffix) else name
    return name or value, value


def _strip_gz(name: str) -> str:
    return name[:-3] if name.endswith(".gz") else name


def resolve_files(spec: str) -> list[Path]:
    """The files a local spec names, in a stable order."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and _strip_gz(p.name).endswith(_SUFFIXES))
        if not files:
            raise VocabExtendError(f"corpus folder {spec} has no .txt/.jsonl/.json/.parquet files")
        return files
    if path.is_file():
        return [path]
    if any(ch in spec for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
        if not files:
            raise VocabExtendError(f"corpus glob {spec} matches no files")
        return files
    raise VocabExtendError(f"corpus {spec} does not exist: give a text file, a folder, a glob or hf:NAME")


def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _iter_lines(path: Path, stats: CorpusStats) -> Iterator[str]:
    with _open_binary(path) as fh:
        for raw in fh:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                stats.skipped_non_utf8 += 1
                continue
            line = line.rstrip("\r\n")
            if line.strip():
                yield line


def _iter_jsonl(path: Path, stats: CorpusStats) -> Iterator[object]:
    for number, line in enumerate(_iter_lines(path, stats), 1):
        try:
            yield json.loads(line)
        except ValueError:
            raise VocabExtendError(f"{path} line {number} is not valid JSON: fix or remove that line") from None


def _iter_json(path: Path, text_field: str, stats: CorpusStats) -> Iterator[str]:
    name = _strip_gz(path.name)
    if name.endswith(".jsonl"):
        records: Iterator[object] = _iter_jsonl(path, stats)
    else:
        with _open_binary(path) as fh:
            try:
                data = json.loads(fh.read().decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise VocabExtendError(f"{path} is not valid UTF-8 JSON ({exc}): fix it or pass it as .jsonl") from None
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        records = iter(data if isinstance(data, list) else [data])
    for record in records:
        if not isinstance(record, dict) or text_field not in record:
            raise VocabExtendError(f"{path} has a record without the field {text_field!r}: pass --text-field")
        text = record[text_field]
        if isinstance(text, str) and text.strip():
            yield text


def _iter_parquet(path: Path, text_field: str) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise VocabExtendError("reading .parquet needs pyarrow: pip install pyarrow") from None
    try:
        table = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid and OSError subclasses
        raise VocabExtendError(f"{path} is not a readable parquet file ({exc})") from None
    if text_field not in table.schema_arrow.names:
        raise VocabExtendError(f"{path} has no column {text_field!r}: pass --text-field")
    for batch in table.iter_batches(columns=[text_field]):
        for text in batch.column(0).to_pylist():
            if isinstance(text, str) and text.strip():
                yield text


def _iter_hf(spec: str, text_field: str) -> Iterator[str]:
    parts = spec[3:].split(":")
    name = parts[0]
    config = parts[1] if len(parts) > 1 and parts[1] else None
    split = parts[2] if len(parts) > 2 and parts[2] else "train"
    try:
        import datasets

        stream = datasets.load_dataset(name, config, split=split, streaming=True)
    except Exception as exc:  # datasets raises many types; the user needs the name and the reason
        raise VocabExtendError(f"could not stream {spec} with datasets ({type(exc).__name__}: {exc})") from exc
    for record in stream:
        text = record.get(text_field)
        if text is None:
            raise VocabExtendError(f"{spec} has no field {text_field!r}: pass --text-field")
        if isinstance(text, str) and text.strip():
            yield text


def iter_documents(
    spec: str,
    *,
    text_field: str = "text",
    max_docs: int | None = None,
    stats: CorpusStats | None = None,
) -> Iterator[str]:
    """Yield the documents of ``spec`` in a stable order, at most ``max_docs`` of them."""
    if max_docs is not None and max_docs < 1:
        raise VocabExtendError(f"max_docs (--max-docs) must be at least 1, not {max_docs}")
    stats = stats if stats is not None else CorpusStats()
    if spec.startswith("hf:"):
        sources: list[Iterator[str]] = [_iter_hf(spec, text_field)]
        stats.files.append(spec)
    else:
        files = resolve_files(spec)
        stats.files.extend(str(f) for f in files)
        sources = []
        for f in files:
            name = _strip_gz(f.name)
            if name.endswith((".jsonl", ".json")):
                sources.append(_iter_json(f, text_field, stats))
            elif name.endswith(".parquet"):
                sources.append(_iter_parquet(f, text_field))
            else:
                sources.append(_iter_lines(f, stats))
    for source in sources:
        for text in source:
            if max_docs is not None and stats.documents >= max_docs:
                return
            stats.documents += 1
            yield text


def read_documents(spec: str, *, max_bytes: int | None = None, **kwargs: object) -> list[str]:
    """All documents of ``spec`` as a list (with ``max_bytes``, those until that many UTF-8 bytes are read);
    raises when there are none."""
    stats = CorpusStats()
    docs: list[str] = []
    size = 0
    for doc in iter_documents(spec, stats=stats, **kwargs):  # type: ignore[arg-type]
        docs.append(doc)
        size += len(doc.encode("utf-8"))
        if max_bytes is not None and size >= max_bytes:
            break
    if not docs:
        extra = f" ({stats.skipped_non_utf8} lines were not UTF-8)" if stats.skipped_non_utf8 else ""
        raise VocabExtendError(f"corpus {spec} is empty: it has no non-blank text lines{extra}")
    return docs
