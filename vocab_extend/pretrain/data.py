"""Training data: documents → tokens → packed blocks, cached on disk, streamed through in bounded memory.

Each document is encoded without special tokens and followed by EOS; the token stream is cut into blocks of
``block_size`` tokens (the tail of each group of 10,000 documents that does not fill a block is dropped;
:func:`~.stream.pack_blocks`). Documents are read, encoded (by the tokenizers library on all cores) and
written to disk in batches (:func:`~.cache.write_blocks`), so memory stays bounded at any corpus size. The
packed dataset is saved under ``cache_dir/<key>``, where the key hashes the tokenizer, the corpus files
(path, size, modification time), the exclusions and the block size, so a second run loads it instantly.

Train and eval never overlap: every document of an eval corpus is removed from training (by content
hash), and ``heldout_fraction`` moves a fixed, content-hashed share of the training documents to an eval
corpus named after the training corpus.

>>> heldout(doc_key("一行目"), 0.0), heldout(doc_key("一行目"), 0.999999)
(False, True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
from tqdm.auto import tqdm

from ..corpus import CorpusStats, iter_documents, parse_named_spec, resolve_files
from ..console import log
from ..errors import VocabExtendError
from ..heldout import doc_key, heldout
from ..locks import waiting_lock
from .cache import PACKED, entry_problem, read_record, record_entry, write_blocks
from .evaluation import EvalConfig
from .mixture import MixedBlocks, Mixture, check_weights
from .stream import PackCounts, StreamedBlocks, pack_blocks

CACHE_VERSION = "3"  # 3: entries carry a record of their files' sizes and hashes (.cache)


@dataclass
class DataConfig:
    """The ``data`` section: the training corpora and how they become batches of blocks."""

    train: list[str] = field(default_factory=list)  # corpus specs (NAME=SPEC or SPEC)
    train_weights: dict[str, float] = field(default_factory=dict)  # NAME -> weight: a weighted mixture
    heldout_fraction: float = 0.0  # documents of the training corpora held out and evaluated
    text_field: str = "text"  # the field holding the text in json/parquet/hf corpora
    max_docs: int | None = None  # per corpus
    block_size: int = 128  # training sequence length in tokens
    batch_size: int = 8  # global batch, in sequences of block_size tokens; shared by the ranks
    streaming: bool = False  # stream the training corpora (larger than memory); no on-disk cache
    shuffle_buffer: int = 10_000  # streaming only
    # tokenization processes for a tokenizer not backed by the tokenizers library (default: one per core, up
    # to 8); a tokenizers-backed one (every fast tokenizer) encodes on all cores in the library's own threads
    num_proc: int | None = None
    cache_dir: str | None = None  # packed-dataset cache; default: the datasets cache

    def check(self) -> None:
        """Checks that need no tokenizer and no file contents; each failure is one sentence."""
        if not self.train:
            raise VocabExtendError("the config has no training corpus: set train to one or more corpus specs")
        if self.train_weights:
            if not isinstance(self.train_weights, Mapping):
                raise VocabExtendError(
                    "train_weights must map training-corpus names to weights, e.g. {ja: 0.9, en: 0.1}")
            self.train_weights = check_weights([parse_named_spec(v)[0] for v in self.train], self.train_weights)
        for name in ("batch_size", "block_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise VocabExtendError(f"{name} must be a positive whole number, not {value!r}")
        if self.block_size < 2:
            raise VocabExtendError(f"block_size must be at least 2, not {self.block_size}")
        if self.num_proc is not None and self.num_proc < 1:
            raise VocabExtendError(f"num_proc must be positive, not {self.num_proc}")
        if self.cache_dir is not None and Path(self.cache_dir).exists() and not Path(self.cache_dir).is_dir():
            raise VocabExtendError(f"cache_dir {self.cache_dir} is a file: give a folder")
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise VocabExtendError(f"heldout_fraction must be in [0, 1), not {self.heldout_fraction}")


def cache_root(data: DataConfig) -> Path:
    """Where the packed data (and merged tokenizers) are cached."""
    return Path(data.cache_dir) if data.cache_dir else default_cache_dir()


def training_documents(
    specs: tuple[str, ...] | list[str], *, exclude: frozenset[int], fraction: float, text_field: str,
    max_docs: int | None, stats: CorpusStats | None = None,
) -> Iterator[str]:
    """The training documents: eval documents and the held-out share left out (``stats`` counts what was
    read and skipped)."""
    for value in specs:
        _, spec = parse_named_spec(value)
        for text in iter_documents(spec, text_field=text_field, max_docs=max_docs, stats=stats):
            key = doc_key(text)
            if key not in exclude and not heldout(key, fraction):
                yield text


def eval_documents(data: DataConfig, evaluation: EvalConfig) -> dict[str, list[str]]:
    """Each eval corpus's documents; held-out training documents under their training corpus's name."""
    corpora: dict[str, list[str]] = {}
    stats = CorpusStats()
    for name, spec in evaluation.corpora.items():
        corpora[name] = _eval_corpus(spec, data, stats)
    note_skipped(stats.skipped_non_utf8, "eval")
    if data.heldout_fraction > 0:
        for value in data.train:
            name, spec = parse_named_spec(value)
            docs = _heldout_documents(data, spec, evaluation.max_bytes)
            # an eval corpus of the same name keeps its name; the held-out documents are evaluated beside it,
            # and training corpora that share a name share one held-out corpus
            corpora.setdefault(name if name not in evaluation.corpora else f"{name} (held out)", []).extend(docs)
    return corpora


def _eval_corpus(spec: str, data: DataConfig, stats: CorpusStats) -> list[str]:
    """The documents of eval corpus ``spec``; the lines skipped as not UTF-8 are counted in ``stats``.

    Each corpus counts its own documents (``max_docs`` applies to each), then adds its skips to ``stats``."""
    own = CorpusStats()
    docs = list(iter_documents(spec, text_field=data.text_field, max_docs=data.max_docs, stats=own))
    stats.skipped_non_utf8 += own.skipped_non_utf8
    if not docs:
        extra = f" ({own.skipped_non_utf8} lines were not UTF-8)" if own.skipped_non_utf8 else ""
        raise VocabExtendError(f"corpus {spec} is empty: it has no non-blank text lines{extra}")
    return docs


def note_skipped(count: int, which: str) -> None:
    """The note ``merge`` prints too: records left out because they are not valid UTF-8 text."""
    if count:
        log(f"note: skipped {count:,} {which} corpus lines or records that are not valid UTF-8 text")


def _heldout_documents(data: DataConfig, spec: str, budget: int | None) -> list[str]:
    """The held-out share of corpus ``spec``, up to ``budget`` bytes."""
    docs, size, seen = [], 0, 0
    for text in iter_documents(spec, text_field=data.text_field, max_docs=data.max_docs):
        seen += 1
        if heldout(doc_key(text), data.heldout_fraction):
            docs.append(text)
            size += len(text.encode("utf-8"))
            if budget is not None and size >= budget:
                break
    if not seen:
        raise VocabExtendError(f"corpus {spec} is empty: it has no non-blank text lines")
    if not docs:
        raise VocabExtendError(f"heldout_fraction {data.heldout_fraction} leaves no document of {spec} for eval: "
                               "raise it or give eval corpora")
    return docs


def tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(f"{text}|{tokenizer.eos_token_id}".encode("utf-8")).hexdigest()


def _corpus_fingerprint(spec: str) -> list[Any]:
    if spec.startswith("hf:"):
        return [spec]
    out: list[Any] = []
    for path in resolve_files(spec):
        stat = path.stat()
        out.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return out


def cache_key(data: DataConfig, tokenizer, exclude: frozenset[int]) -> str:
    """The on-disk cache key of the packed training set."""
    parts = {
        "version": CACHE_VERSION,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "corpora": [_corpus_fingerprint(parse_named_spec(v)[1]) for v in data.train],
        "text_field": data.text_field,
        "max_docs": data.max_docs,
        "heldout_fraction": data.heldout_fraction,
        "exclude": hashlib.sha256(np.array(sorted(exclude), dtype=np.uint64).tobytes()).hexdigest(),
        "block_size": data.block_size,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:24]


def default_cache_dir() -> Path:
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / "vocab_extend_packed"


@dataclass
class PackedBlocks:
    """The packed training blocks, read in a fixed shuffled order: epoch ``e`` is a permutation seeded by
    ``seed + e``, so position ``k`` of the run is always the same block (exact resume, any world size)."""

    dataset: Any  # datasets.Dataset (numpy format)
    block_size: int
    seed: int
    num_blocks: int
    _perms: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def get(self, start: int, count: int) -> np.ndarray:
        """Blocks ``start .. start + count - 1`` of the run's order, as an ``(count, block_size)`` array."""
        rows = []
        for k in range(start, start + count):
            epoch, pos = divmod(k, self.num_blocks)
            if epoch not in self._perms:
                rng = np.random.default_rng(self.seed + epoch)
                self._perms = {epoch: rng.permutation(self.num_blocks)}
            rows.append(int(self._perms[epoch][pos]))
        return np.asarray(self.dataset[rows]["input_ids"], dtype=np.int64).reshape(count, self.block_size)

    @property
    def tokens(self) -> int | None:
        return None if self.num_blocks is None else self.num_blocks * self.block_size


def build_training_blocks(data: DataConfig, seed: int, tokenizer, exclude: frozenset[int], *, is_main: bool = True,
                          batch_size: int | None = None) -> Any:
    """Tokenize and pack the training corpora (or load them from the cache); see the module docstring.

    In a multi-process run only the main process builds the cache (``is_main``); the others wait at a
    barrier outside this function and then load it. ``streaming: true`` gives a
    :class:`~.stream.StreamedBlocks` instead (read in whole batches of ``batch_size``, default the run's).
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise VocabExtendError("the tokenizer has no EOS token to separate documents: set eos_token")
    if data.streaming:
        def keep(text: str) -> bool:
            key = doc_key(text)
            return key not in exclude and not heldout(key, data.heldout_fraction)

        return StreamedBlocks(data.train, tokenizer, block_size=data.block_size, batch_size=batch_size or
                              data.batch_size, buffer_size=data.shuffle_buffer, seed=seed, keep=keep,
                              text_field=data.text_field, max_docs=data.max_docs)
    target = cache_root(data) / cache_key(data, tokenizer, exclude)
    if is_main:
        problem = _ensure_entry(data, tokenizer, exclude, target, eos)
        dataset = _load_entry(target)
        if dataset is None:  # it verified, yet datasets cannot read it: rebuilt once
            problem = _ensure_entry(data, tokenizer, exclude, target, eos, unreadable=True)
            dataset = _load_entry(target)
        if problem:
            log(f"note: the packed-data cache entry {target} was damaged ({problem}): rebuilt")
    else:  # the main process has just verified (or built) the entry: its sizes are checked here
        problem = entry_problem(target, hash_files=False) if target.is_dir() else "it was not written"
        dataset = None if problem else _load_entry(target)
    if dataset is None:
        raise VocabExtendError(f"the packed training data {target} cannot be read ({problem or 'unreadable'}): "
                               "check the main process's error")
    if is_main:
        note_skipped(int(((read_record(target) or {}).get("notes") or {}).get("skipped") or 0), "training")
    return PackedBlocks(dataset, data.block_size, seed, len(dataset))


def _load_entry(target: Path) -> Any:
    """The cached dataset, or ``None`` when ``datasets`` cannot read it."""
    import datasets

    try:
        return datasets.load_from_disk(str(target)).with_format("numpy")
    except Exception:  # pyarrow and datasets raise many types for a damaged folder; the entry is rebuilt
        return None


def _ensure_entry(data: DataConfig, tokenizer, exclude: frozenset[int], target: Path, eos: int, *,
                  unreadable: bool = False) -> str | None:
    """Make the cache entry ``target`` whole: built when missing, rebuilt when it does not verify
    (:mod:`.cache`); returns what was wrong with the entry that was there, if anything. Two runs sharing a
    cache: one builds the entry (holding its lock), the other waits and uses it."""
    root, key = target.parent, target.name
    if target.is_dir() and not unreadable and entry_problem(target) is None:
        return None
    root.mkdir(parents=True, exist_ok=True)
    with waiting_lock(target, say=log):
        for dead in root.glob(f".{key}-*"):  # what a builder killed mid-way left (we hold the lock)
            shutil.rmtree(dead, ignore_errors=True)
        problem = ("datasets cannot read it" if unreadable else entry_problem(target)) if target.is_dir() else None
        if target.is_dir() and problem is None:
            return None  # another run built it while this one waited
        if target.is_dir():  # damaged: moved aside (a name the sweep above removes), then rebuilt
            aside = tempfile.mkdtemp(prefix=f".{key}-damaged-", dir=root)
            os.replace(target, aside)
            shutil.rmtree(aside, ignore_errors=True)
        _build_packed(data, tokenizer, exclude, root, key, target, eos)
        entry_problem(target)  # hashed once here: this run's load needs no second pass
    return problem


def _build_packed(data: DataConfig, tokenizer, exclude: frozenset[int], root: Path, key: str, target: Path,
                  eos: int) -> None:
    """Tokenize and pack the training corpora into the cache entry ``target`` (written whole or not at all),
    in batches: memory holds a few batches of documents and blocks, whatever the corpora's size."""
    stats = CorpusStats()  # filled in as the documents are read
    documents = training_documents(data.train, exclude=exclude, fraction=data.heldout_fraction,
                                   text_field=data.text_field, max_docs=data.max_docs, stats=stats)
    counts = PackCounts()
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        with tqdm(desc="packing", unit=" tokens", unit_scale=True, leave=False) as bar:
            blocks = pack_blocks(documents, tokenizer, eos, data.block_size, num_proc=data.num_proc, counts=counts,
                                 progress=bar.update)
            written = write_blocks(blocks, tmp, fingerprint=f"{key}-pack")
        if counts.documents == 0:
            raise VocabExtendError(f"the training corpora {', '.join(data.train)} have no documents left for training")
        if written == 0:
            raise VocabExtendError(
                f"the training corpora hold {counts.tokens} tokens, less than one block of {data.block_size}: "
                "add text or lower block_size"
            )
        record_entry(tmp / PACKED, {"skipped": stats.skipped_non_utf8})
        os.replace(tmp / PACKED, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def exclusion_set(eval_docs: dict[str, list[str]]) -> frozenset[int]:
    return frozenset(doc_key(t) for docs in eval_docs.values() for t in docs)


def corpus_groups(specs: list[str]) -> dict[str, list[str]]:
    """Training specs by corpus name (``ja=a``, ``ja=b`` are one corpus ``ja``), in order of first mention."""
    groups: dict[str, list[str]] = {}
    for value in specs:
        groups.setdefault(parse_named_spec(value)[0], []).append(value)
    return groups


def build_mixture(data: DataConfig, seed: int, tokenizer, exclude: frozenset[int], *, is_main: bool = True):
    """One :class:`PackedBlocks` per training corpus (each cached on its own, each with its own shuffled
    order), drawn from as ``train_weights`` says (:mod:`.mixture`)."""
    groups = corpus_groups(data.train)
    corpora = [build_training_blocks(dataclasses.replace(data, train=specs), seed + 7919 * (i + 1), tokenizer,
                                     exclude, is_main=is_main, batch_size=1)
               for i, specs in enumerate(groups.values())]
    names = list(groups)
    mixture = Mixture(names, [data.train_weights[n] for n in names], seed)
    return MixedBlocks(mixture, corpora, data.block_size, data.batch_size)


def build_data(data: DataConfig, seed: int, tokenizer, exclude: frozenset[int], *, is_main: bool = True):
    """The run's training blocks: a weighted mixture when ``train_weights`` is set, else one packed set."""
    build = build_mixture if data.train_weights else build_training_blocks
    return build(data, seed, tokenizer, exclude, is_main=is_main)
