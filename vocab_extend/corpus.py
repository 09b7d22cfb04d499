"""Corpus specs: where text comes from.

A *spec* names documents to read, one string each:

- a text file (a document per line; empty lines skipped), a folder (its ``*.txt``, ``*.jsonl``, ``*.json``,
  ``*.parquet`` and ``.gz`` files, sorted), or a glob;
- ``.jsonl`` / ``.json`` files (the ``text`` field, or ``text_field``), ``.parquet`` files, and ``.gz`` of
  any of these;
- ``hf:NAME[:CONFIG][:SPLIT]``, streamed through :mod:`datasets`.

Encodings: UTF-8 (a leading byte-order mark is dropped), and UTF-16 / UTF-32 (either byte order) when the
file starts with their byte-order mark; such files are decoded, whatever their suffix (``.txt``, ``.jsonl``,
``.json``, compressed or not). A UTF-16 file without a byte-order mark is refused with a sentence.

Lines that are not valid UTF-8 (or not valid in their file's encoding), and JSON texts holding a lone
surrogate (``"\\ud800"``, which no UTF-8 can carry), are skipped and counted in :class:`CorpusStats` (the CLI
reports the count). A few never stop a run; a file where they are more than :data:`MAX_SKIPPED_SHARE` of the
lines (and at least :data:`MIN_SKIPPED_TO_REFUSE`) is refused with one sentence, as a file in another
encoding (Shift-JIS, GBK, EUC-KR...) would otherwise train on its garbled rest, unless
``allow_skipped=True`` (``--allow-invalid-lines``). A corrupt ``.gz`` is one sentence naming the file.

>>> import tempfile, os
>>> d = tempfile.mkdtemp(); p = os.path.join(d, "a.txt")
>>> _ = open(p, "w", encoding="utf-8").write("一行目\\n\\n二行目\\n")
>>> list(iter_documents(p))
['一行目', '二行目']
"""

from __future__ import annotations

import codecs
import glob
import gzip
import io
import json
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator, TypeVar

from .console import log
from .errors import VocabExtendError, nesting_error, storage_error
from . import hub

_SUFFIXES = (".txt", ".text", ".jsonl", ".json", ".parquet")

MAX_SKIPPED_SHARE = 0.10  # a file with more skipped lines than this share is refused (unless allowed)
MIN_SKIPPED_TO_REFUSE = 5  # ... and at least this many: a handful of bad lines is noise, not an encoding
EARLY_CHECK_LINES = 1000  # the share is checked from this many lines on, so a big bad file fails early
ALLOW_OPTION = "--allow-invalid-lines"
# byte-order marks, longest first (the UTF-32-LE mark starts with the UTF-16-LE one)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32-LE"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32-BE"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with BOM"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16-LE"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16-BE"),
)
_SNIFF_BYTES = 4096
T = TypeVar("T")
_END = object()
_SURROGATE = re.compile("[\ud800-\udfff]")
_INVALID = "vocab-extend-invalid"
# undecodable bytes in a UTF-16/32 file become a lone surrogate, which marks their line as skipped
codecs.register_error(_INVALID, lambda exc: ("\udfff", exc.end))  # type: ignore[arg-type, return-value]


@dataclass
class CorpusStats:
    """Counts gathered while reading; filled in by :func:`iter_documents`."""

    documents: int = 0
    skipped_non_utf8: int = 0
    files: list[str] = field(default_factory=list)
    lines: int = 0  # non-blank lines (JSON: records) read, the skipped ones included
    encodings: dict[str, str] = field(default_factory=dict)  # file -> encoding, for files not plain UTF-8


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


@dataclass
class _Tally:
    """One file's counts, for the skipped-share rule."""

    path: Path
    unit: str  # "lines" or "records"
    allow_skipped: bool
    lines: int = 0
    skipped: int = 0

    def check(self, final: bool) -> None:
        """Refuse the file when its skipped share is too large (``final``: the whole file was read)."""
        if self.allow_skipped or self.skipped < MIN_SKIPPED_TO_REFUSE or self.skipped <= MAX_SKIPPED_SHARE * self.lines:
            return
        if not final and self.lines < EARLY_CHECK_LINES:
            return
        what = "are not valid UTF-8" if self.unit == "lines" else "have text that is not valid Unicode"
        raise VocabExtendError(
            f"{self.path}: {self.skipped:,} of {self.lines:,} {self.unit}{'' if final else ' read so far'} {what} "
            f"(more than {MAX_SKIPPED_SHARE:.0%}), so it is probably in another encoding: convert it to UTF-8 "
            f"(e.g. iconv -f SHIFT_JIS -t UTF-8) or pass {ALLOW_OPTION} to skip them"
        )


def _gzip_error(path: Path, exc: BaseException) -> VocabExtendError | None:
    corrupt = isinstance(exc, (OSError, EOFError, zlib.error)) and storage_error(exc, path) is None
    if path.name.endswith(".gz") and corrupt:
        return VocabExtendError(f"{path} is not a readable gzip file ({exc}): re-download or re-compress it")
    return None


def _read_error(path: Path, exc: BaseException) -> BaseException:
    """One sentence for a corrupt .gz or an unreadable file; other errors unchanged."""
    error = _gzip_error(path, exc) or storage_error(exc, path, writing=False)
    return error if error is not None else exc


def _loads(text: str, path: Path, line: int = 1) -> object:
    """``json.loads``; JSON nested too deeply for the parser is one sentence naming the file and line."""
    try:
        return json.loads(text)
    except RecursionError:
        raise nesting_error(path, text, line) from None


def detect_encoding(head: bytes, path: Path) -> tuple[str, str | None]:
    """(codec, label) for a file starting with ``head``; label ``None`` for plain UTF-8."""
    for bom, codec, label in _BOMS:
        if head.startswith(bom):
            return codec, label
    even, odd = head[0::2], head[1::2]
    if len(head) >= 16:
        zero_even, zero_odd = even.count(0) / len(even), odd.count(0) / len(odd)
        if max(zero_even, zero_odd) >= 0.3 and min(zero_even, zero_odd) <= 0.02:
            order = "LE" if zero_odd > zero_even else "BE"
            raise VocabExtendError(
                f"{path} looks like UTF-16 without a byte-order mark (every other byte is zero): convert it to "
                f"UTF-8, e.g. iconv -f UTF-16{order} -t UTF-8"
            )
    return "utf-8", None


def _one_ahead(lines: Iterable[T]) -> Iterator[T]:
    """``lines``, each given only once the next one was read: a truncated .gz fails as a corrupt file before
    its cut-off last line is parsed."""
    iterator = iter(lines)
    previous = next(iterator, _END)
    while previous is not _END:
        following = next(iterator, _END)
        yield previous  # type: ignore[misc]
        previous = following


def _decoded_lines(path: Path, stats: CorpusStats) -> Iterator[str | None]:
    """The file's lines without their line ends; ``None`` for a line that cannot be decoded."""
    try:
        with _open_binary(path) as fh:
            codec, label = detect_encoding(fh.read(_SNIFF_BYTES), path)
            fh.seek(0)
            if label is not None:
                stats.encodings[str(path)] = label
            if codec in ("utf-16", "utf-32"):
                for line in _one_ahead(io.TextIOWrapper(fh, encoding=codec, errors=_INVALID, newline="\n")):
                    yield None if _SURROGATE.search(line) else line.rstrip("\r\n")
                return
            first = True
            for raw in _one_ahead(fh):
                if first:
                    raw = raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw
                    first = False
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield None
                    continue
                yield line.rstrip("\r\n")
    except VocabExtendError:
        raise
    except Exception as exc:
        raise _read_error(path, exc) from None


def _skip(stats: CorpusStats, tally: _Tally) -> None:
    stats.skipped_non_utf8 += 1
    tally.skipped += 1
    tally.check(final=False)


def _count(stats: CorpusStats, tally: _Tally) -> None:
    stats.lines += 1
    tally.lines += 1


def _iter_lines(path: Path, stats: CorpusStats, tally: _Tally) -> Iterator[str]:
    for line in _decoded_lines(path, stats):
        if line is None:
            _count(stats, tally)
            _skip(stats, tally)
        elif line.strip():
            _count(stats, tally)
            yield line
    tally.check(final=True)


def _iter_jsonl(path: Path, stats: CorpusStats, tally: _Tally) -> Iterator[object]:
    number = 0
    for line in _decoded_lines(path, stats):
        number += 1
        if line is None:
            _count(stats, tally)
            _skip(stats, tally)
            continue
        if not line.strip():
            continue
        try:
            yield _loads(line, path, number)
        except ValueError:
            raise VocabExtendError(f"{path} line {number} is not valid JSON: fix or remove that line") from None


def _load_json(path: Path) -> object:
    try:
        with _open_binary(path) as fh:
            raw = fh.read()
    except Exception as exc:
        raise _read_error(path, exc) from None
    codec, _label = detect_encoding(raw[:_SNIFF_BYTES], path)
    try:
        return _loads(raw.decode(codec), path)
    except (UnicodeDecodeError, ValueError) as exc:
        raise VocabExtendError(f"{path} is not valid UTF-8 JSON ({exc}): fix it or pass it as .jsonl") from None


def _iter_json(path: Path, text_field: str, stats: CorpusStats, tally: _Tally) -> Iterator[str]:
    name = _strip_gz(path.name)
    if name.endswith(".jsonl"):
        records: Iterator[object] = _iter_jsonl(path, stats, tally)
    else:
        data = _load_json(path)
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        records = iter(data if isinstance(data, list) else [data])
    for record in records:
        if not isinstance(record, dict) or text_field not in record:
            raise VocabExtendError(f"{path} has a record without the field {text_field!r}: pass --text-field")
        text = record[text_field]
        if isinstance(text, str) and text.strip():
            _count(stats, tally)
            if _SURROGATE.search(text):  # "\\ud800" in JSON: no UTF-8 can carry it
                _skip(stats, tally)
                continue
            yield text
    tally.check(final=True)


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
    offline = hub.unreachable_reason()
    if offline is not None:  # streaming needs the Hub; say so now rather than after the retries
        raise VocabExtendError(f"could not stream {spec}: the Hub cannot be reached ({offline}); connect, or "
                               "give the corpus as local files")
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
    allow_skipped: bool = False,
) -> Iterator[str]:
    """Yield the documents of ``spec`` in a stable order, at most ``max_docs`` of them.

    ``allow_skipped=True`` accepts files with any share of undecodable lines (they are skipped and counted);
    by default a file where they are more than :data:`MAX_SKIPPED_SHARE` is refused.
    """
    if max_docs is not None and max_docs < 1:
        raise VocabExtendError(f"max_docs (--max-docs) must be at least 1, not {max_docs}")
    stats = stats if stats is not None else CorpusStats()
    tallies: list[_Tally | None] = []
    if spec.startswith("hf:"):
        sources: list[Iterator[str]] = [_iter_hf(spec, text_field)]
        tallies.append(None)
        stats.files.append(spec)
    else:
        files = resolve_files(spec)
        stats.files.extend(str(f) for f in files)
        sources = []
        for f in files:
            name = _strip_gz(f.name)
            if name.endswith((".jsonl", ".json")):
                tally = _Tally(f, "records", allow_skipped)
                sources.append(_iter_json(f, text_field, stats, tally))
            elif name.endswith(".parquet"):
                tally = None
                sources.append(_iter_parquet(f, text_field))
            else:
                tally = _Tally(f, "lines", allow_skipped)
                sources.append(_iter_lines(f, stats, tally))
            tallies.append(tally)
    for source, tally in zip(sources, tallies):
        for text in source:
            if max_docs is not None and stats.documents >= max_docs:
                if tally is not None:
                    tally.check(final=True)  # what was read of this file must pass the rule too
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
    if stats.skipped_non_utf8:  # every command that reads a corpus says what it left out, as merge does
        log(f"note: skipped {stats.skipped_non_utf8:,} lines of {spec} that are not valid UTF-8")
    return docs
