"""Documents → packed blocks, in bounded memory: for the cache (:func:`pack_blocks`) and streamed (O(1) resume).

:func:`pack_blocks` gives the blocks of the on-disk cache: documents are read in order, encoded in batches
(:class:`~vocab_extend.tokenizer.batches.BatchEncoder`: the tokenizers library on all cores, one batch
ahead of the reading in a background thread), each followed by EOS; each group of :data:`PACK_DOCS`
documents is cut into ``block_size`` blocks and the tail that does not fill one is dropped. The ids are
exactly those of encoding each document alone and concatenating:

>>> from transformers import PreTrainedTokenizerFast
>>> from tokenizers import Tokenizer, models, pre_tokenizers
>>> tok = Tokenizer(models.WordLevel({"<eos>": 0, "a": 1, "b": 2, "[UNK]": 3}, unk_token="[UNK]"))
>>> tok.pre_tokenizer = pre_tokenizers.Whitespace()
>>> hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>")
>>> [b.tolist() for b in pack_blocks(["a b", "b c a"], hf, 0, 3)]
[[[1, 2, 0], [2, 3, 1]]]

With ``streaming: true`` the corpora are not cached but streamed during training:

``streaming: true`` reads the training corpora once per epoch, never all at once: documents are read in
order (eval documents and the held-out share left out, as in :mod:`.data`), tokenized in batches, each
followed by EOS, cut into ``block_size`` blocks and shuffled through a buffer of ``shuffle_buffer`` blocks
(each incoming block takes the place of a randomly chosen one, which is emitted). When the corpora run out
the next epoch starts from the first file; the buffer carries over.

Every rank reads the whole global batch of each step and keeps its slice, so after step ``s`` the stream
stands at the same place on every rank. Its state there (:meth:`StreamedBlocks.state`) is small and is
saved with the checkpoint: where the reader is (corpus, file, byte offset into a ``.txt`` / ``.jsonl``
file), the tokens read but not yet cut into blocks, the buffer's blocks and the generator's state.
Resuming restores it and seeks to the byte offset, so it reads no document twice however late the
checkpoint (:attr:`StreamedBlocks.documents_read` counts them). Files that cannot be seeked by byte
(gzip, ``.json``, parquet, ``hf:`` datasets) are resumed by skipping the documents already read in the
current file, without tokenizing them.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..console import log
from ..corpus import _SURROGATE, CorpusStats, iter_documents, parse_named_spec, resolve_files
from ..errors import VocabExtendError
from ..tokenizer.batches import IDS, BatchEncoder, ahead, flatten

TOKENIZE_DOCS = 256  # documents per tokenizer call (streaming)
PACK_DOCS = 10_000  # documents per packing group: the tail of each group that does not fill a block is dropped
ENCODE_CHARS = 1 << 19  # characters per encoder call when packing (a longer document is a call of its own)
STATE_FILE = "stream.npz"


@dataclass
class PackCounts:
    """What :func:`pack_blocks` read: documents, and tokens (EOS included)."""

    documents: int = 0
    tokens: int = 0


def _batches(documents: Iterable[str]) -> Iterator[tuple[list[str], bool]]:
    """``documents`` in encoder calls of at most :data:`ENCODE_CHARS` characters (or one document), each
    flagged when it ends a group of :data:`PACK_DOCS` documents (or the documents)."""
    batch: list[str] = []
    size = count = 0
    for text in documents:
        batch.append(text)
        size, count = size + len(text), count + 1
        if count == PACK_DOCS or size >= ENCODE_CHARS:
            ends_group = count == PACK_DOCS
            yield batch, ends_group
            batch, size, count = [], 0, 0 if ends_group else count
    if batch:
        yield batch, True


_WORKER: list[BatchEncoder] = []  # a process of the pool: its encoder


def _start_worker(tokenizer: Any) -> None:
    _WORKER[:] = [BatchEncoder(tokenizer)]


def _encode_in_worker(batch: tuple[list[str], bool]) -> Any:
    return _WORKER[0].run(batch[0])


def _encoded(tokenizer: Any, batches: Iterable[tuple[list[str], bool]],
             num_proc: int | None) -> Iterator[tuple[tuple[list[str], bool], Any, float]]:
    """``(batch, its encodings, seconds)`` in order, encoded one batch ahead: in a background thread by the
    tokenizers library (on all cores), or, for another tokenizer, by ``num_proc`` processes."""
    encoder = BatchEncoder(tokenizer)
    workers = num_proc or max(1, min(8, os.cpu_count() or 1))
    if encoder.fast or workers == 1:
        yield from ahead(lambda batch: encoder.run(batch[0]), batches)
        return
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(tokenizer,)) as pool:
        yield from ahead(_encode_in_worker, batches, executor=pool, depth=2 * workers)


def pack_blocks(documents: Iterable[str], tokenizer: Any, eos: int, block_size: int, *,
                num_proc: int | None = None, counts: PackCounts | None = None,
                progress: Callable[[int], object] | None = None) -> Iterator[np.ndarray]:
    """The packed blocks of ``documents`` as ``(rows, block_size)`` int32 arrays, batch by batch (see the
    module docstring); ``counts`` (when given) counts what was read, ``progress`` gets each batch's tokens."""
    counts = counts if counts is not None else PackCounts()
    carry = np.zeros(0, dtype=IDS)  # this group's tokens not yet in a block
    for (texts, ends_group), encodings, _ in _encoded(tokenizer, _batches(documents), num_proc):
        ids, _ = flatten(encodings, eos)
        counts.documents, counts.tokens = counts.documents + len(texts), counts.tokens + len(ids)
        if progress is not None:
            progress(len(ids))
        tokens = np.concatenate([carry, ids]) if len(carry) else ids
        usable = len(tokens) // block_size * block_size
        carry = tokens[usable:].copy() if not ends_group else carry[:0]
        yield tokens[:usable].reshape(-1, block_size)


@dataclass
class Position:
    """Where the reader stands: the next document is at ``offset`` of file ``file`` of corpus ``spec``."""

    spec: int = 0
    file: int = 0
    offset: int = 0  # bytes into a .txt/.jsonl file; documents into any other source
    docs: int = 0  # documents taken from this corpus so far (for max_docs)
    epoch: int = 0


def _seekable(path: Path) -> bool:
    return path.suffix in (".txt", ".jsonl")


class StreamedBlocks:
    """Blocks of the streamed corpora, read in whole global batches; see the module docstring."""

    num_blocks = None
    tokens = None

    def __init__(self, specs: list[str], tokenizer, *, block_size: int, batch_size: int, buffer_size: int,
                 seed: int, keep, text_field: str, max_docs: int | None) -> None:
        self.specs = [parse_named_spec(v)[1] for v in specs]
        self.files = [[spec] if spec.startswith("hf:") else [str(f) for f in resolve_files(spec)]
                      for spec in self.specs]
        self.encoder, self.eos = BatchEncoder(tokenizer), tokenizer.eos_token_id
        self.block_size, self.batch_size, self.buffer_size = block_size, batch_size, max(1, buffer_size)
        self.keep, self.text_field, self.max_docs = keep, text_field, max_docs
        self.rng = np.random.default_rng(seed)
        self.position = Position()
        self.pending = np.zeros(0, dtype=np.int32)
        self.buffer = np.zeros((self.buffer_size, block_size), dtype=np.int32)
        self.filled = 0
        self.cursor = 0  # blocks emitted so far (positions of the run's order)
        self.documents_read = 0
        self.noted_skip = False
        self._docs: Iterator[tuple[str, Position]] | None = None
        self._batch: tuple[int, np.ndarray] | None = None
        self._epoch_blocks = 0

    # ------------------------------------------------------------------------------------ reading
    def _documents(self) -> Iterator[tuple[str, Position]]:
        """Documents from the current position on, each with the position after it; epochs go on forever."""
        pos = Position(**asdict(self.position))
        while True:
            while pos.spec < len(self.specs):
                files = self.files[pos.spec]
                while pos.file < len(files):
                    for text, after in self._file_documents(files[pos.file], pos):
                        if self.max_docs is not None and pos.docs >= self.max_docs:
                            break
                        pos.offset, pos.docs = after, pos.docs + 1
                        if self.keep(text):
                            yield text, Position(**asdict(pos))
                    if self.max_docs is not None and pos.docs >= self.max_docs:
                        break
                    pos.file, pos.offset = pos.file + 1, 0
                pos.spec, pos.file, pos.offset, pos.docs = pos.spec + 1, 0, 0, 0
            pos = Position(epoch=pos.epoch + 1)
            yield "", Position(**asdict(pos))  # an epoch boundary: nothing to tokenize

    def _file_documents(self, name: str, pos: Position) -> Iterator[tuple[str, int]]:
        """(document, offset after it) from ``pos.offset`` of file ``name``."""
        path = Path(name)
        if not name.startswith("hf:") and _seekable(path):
            with open(path, "rb") as fh:
                fh.seek(pos.offset)
                offset = pos.offset
                for raw in fh:
                    offset += len(raw)
                    try:
                        line = raw.decode("utf-8").rstrip("\r\n")
                    except UnicodeDecodeError:
                        self._skip(path)
                        continue
                    if not line.strip():
                        continue
                    if path.suffix == ".jsonl":
                        try:
                            record = json.loads(line)
                        except ValueError:
                            raise VocabExtendError(f"{path} has a line that is not valid JSON: fix or remove it") from None
                        text = record.get(self.text_field) if isinstance(record, dict) else None
                        if not isinstance(text, str) or not text.strip():
                            continue
                        if _SURROGATE.search(text):  # "\ud800" in JSON: no UTF-8 can carry it
                            self._skip(path)
                            continue
                        line = text
                    self.documents_read += 1
                    yield line, offset
            return
        stats = CorpusStats()
        for number, text in enumerate(iter_documents(name, text_field=self.text_field, stats=stats), 1):
            if stats.skipped_non_utf8:
                self._skip(path)
            self.documents_read += 1
            if number > pos.offset:
                yield text, number

    def _skip(self, path: Path) -> None:
        """A line or record left out as not valid UTF-8 text: noted once per process, as ``merge`` does."""
        if not self.noted_skip:
            log(f"note: skipping training lines or records that are not valid UTF-8 text (the first in {path})")
            self.noted_skip = True

    def _refill(self) -> None:
        """Tokenize the next documents into ``pending``."""
        if self._docs is None:
            self._docs = self._documents()
        texts, last, boundary = [], self.position, False
        for text, after in self._docs:
            last = after
            if not text:  # epoch boundary
                boundary = True
                break
            texts.append(text)
            if len(texts) >= TOKENIZE_DOCS:
                break
        self.position = last
        if texts:
            flat, _ = flatten(self.encoder.run(texts), self.eos)
            self.pending = np.concatenate([self.pending, flat])
        if boundary:  # a whole epoch gave no block (its last documents are tokenized by now): it never will
            if self._epoch_blocks == 0 and self.filled == 0 and self.cursor == 0 and len(self.pending) < self.block_size:
                raise VocabExtendError("the streamed training corpus has less text than one block")
            self._epoch_blocks = 0

    def _next_block(self) -> np.ndarray:
        while True:
            while len(self.pending) < self.block_size:
                self._refill()
            block, self.pending = self.pending[:self.block_size].copy(), self.pending[self.block_size:]
            self._epoch_blocks += 1
            if self.filled < self.buffer_size:
                self.buffer[self.filled] = block
                self.filled += 1
                continue
            i = int(self.rng.integers(self.buffer_size))
            out = self.buffer[i].copy()
            self.buffer[i] = block
            self.cursor += 1
            return out

    def get(self, start: int, count: int) -> np.ndarray:
        """Blocks ``start .. start + count - 1`` of the run's order; reads the whole global batch of that step."""
        first = start - start % self.batch_size
        if self._batch is None or self._batch[0] != first:
            if first < self.cursor:
                raise VocabExtendError(f"the stream is at block {self.cursor} and cannot go back to block {first}")
            while self.cursor < first:
                self._next_block()
            self._batch = (first, np.stack([self._next_block() for _ in range(self.batch_size)]))
        rows = self._batch[1][start - first:start - first + count]
        return rows.astype(np.int64)

    # -------------------------------------------------------------------------------------- state
    def state(self) -> dict[str, np.ndarray]:
        """The stream where it stands (after the last whole batch read)."""
        meta = {"position": asdict(self.position), "cursor": self.cursor, "filled": self.filled,
                "rng": self.rng.bit_generator.state, "epoch_blocks": self._epoch_blocks}
        return {"meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
                "pending": self.pending.copy(), "buffer": self.buffer[:self.filled].copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        meta = json.loads(bytes(state["meta"]).decode("utf-8"))
        self.position, self.cursor, self.filled = Position(**meta["position"]), meta["cursor"], meta["filled"]
        self._epoch_blocks = meta["epoch_blocks"]
        self.rng.bit_generator.state = meta["rng"]
        self.pending = np.asarray(state["pending"], dtype=np.int32)
        self.buffer[:self.filled] = state["buffer"]
        self._docs, self._batch = None, None


def save_state(blocks: Any, folder: Path) -> None:
    """``stream.npz`` in a checkpoint folder: the state of every streamed corpus of ``blocks``."""
    arrays = {f"{i}/{k}": v for i, s in enumerate(streams_of(blocks)) for k, v in s.state().items()}
    if arrays:
        np.savez(folder / STATE_FILE, **arrays)


def load_state(blocks: Any, folder: Path) -> None:
    streams = streams_of(blocks)
    if not streams:
        return
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise VocabExtendError(
            f"--resume: checkpoint {folder} holds no stream position for the streamed training corpora "
            "(it was written without one), so there is no place to seek to: resume with streaming false or "
            "start a new run")
    with np.load(path) as data:
        for i, stream in enumerate(streams):
            stream.restore({k: data[f"{i}/{k}"] for k in ("meta", "pending", "buffer")})


def streams_of(blocks: Any) -> list[StreamedBlocks]:
    if isinstance(blocks, StreamedBlocks):
        return [blocks]
    return [c for c in getattr(blocks, "corpora", []) if isinstance(c, StreamedBlocks)]
