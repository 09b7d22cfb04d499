"""Training the new-language SentencePiece model with the base model's own conventions.

The trainer reads documents from an iterator or a list (the merge gives it the content-hashed training sample,
see :mod:`vocab_extend.tokenizer.sampling`; no temporary copy of the corpus is written); when they hold more
than ``input_sentence_size`` sentences SentencePiece samples that many, shuffled with a fixed seed, so the
same inputs always give the same model. SentencePiece reports no progress while it trains: a line shows the
time elapsed.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2
from tqdm.auto import tqdm

from ...errors import VocabExtendError

# Options copied from the base model so the new pieces follow the same segmentation rules.
_INHERITED_TRAINER_OPTIONS = (
    "byte_fallback",
    "split_digits",
    "split_by_unicode_script",
    "split_by_number",
    "split_by_whitespace",
    "treat_whitespace_as_suffix",
    "allow_whitespace_only_pieces",
    "max_sentencepiece_length",
)


@dataclass
class TrainConfig:
    """Settings of the new-language SentencePiece model.

    ``model_type`` is ``bpe`` (default, the base's algorithm) or ``unigram``; ``input_sentence_size`` caps the
    sentences SentencePiece samples from a large corpus (0: use all).
    """

    vocab_size: int = 16_000
    model_type: str = "bpe"
    character_coverage: float = 0.9995
    max_sentence_length: int = 16_384
    input_sentence_size: int = 2_000_000
    shuffle_input_sentence: bool = True
    seed: int = 0
    num_threads: int = 0  # 0: all cores


def trainer_options(base: sp_pb2.ModelProto, config: TrainConfig) -> dict[str, object]:
    """The keyword arguments passed to ``SentencePieceTrainer.train``."""
    spec, norm = base.trainer_spec, base.normalizer_spec
    options: dict[str, object] = {name: getattr(spec, name) for name in _INHERITED_TRAINER_OPTIONS}
    options.update(
        model_type=config.model_type,
        vocab_size=config.vocab_size,
        character_coverage=config.character_coverage,
        max_sentence_length=config.max_sentence_length,
        input_sentence_size=config.input_sentence_size,
        shuffle_input_sentence=config.shuffle_input_sentence,
        num_threads=config.num_threads or os.cpu_count() or 1,
        normalization_rule_name=norm.name or "identity",
        add_dummy_prefix=norm.add_dummy_prefix,
        remove_extra_whitespaces=norm.remove_extra_whitespaces,
        unk_id=spec.unk_id,
        bos_id=spec.bos_id,
        eos_id=spec.eos_id,
        pad_id=spec.pad_id,
        unk_piece=spec.unk_piece or "<unk>",
        bos_piece=spec.bos_piece or "<s>",
        eos_piece=spec.eos_piece or "</s>",
        minloglevel=2,
    )
    if norm.name == "user_defined" or norm.precompiled_charsmap and norm.name not in ("nmt_nfkc", "nfkc"):
        # A custom charsmap cannot be named; train without normalisation (the base normalises at encode time).
        options["normalization_rule_name"] = "identity"
    return options


def _progress(texts: Iterable[str], max_sentence_length: int, show: bool) -> Iterator[str]:
    total = len(texts) if isinstance(texts, list) else None
    with tqdm(total=total, desc="reading corpus", unit=" docs", mininterval=1.0, disable=not show) as bar:
        for text in texts:
            bar.update(1)
            # SentencePiece treats a newline as a sentence break; long documents are cut into lines the
            # trainer accepts instead of being dropped whole.
            for line in text.splitlines():
                while len(line.encode("utf-8")) > max_sentence_length:
                    cut = max_sentence_length // 4
                    yield line[:cut]
                    line = line[cut:]
                if line.strip():
                    yield line


class _Ticker:
    """A progress line with the elapsed time while SentencePiece trains, which itself reports nothing
    (minutes on a large corpus)."""

    def __init__(self, disable: bool) -> None:
        self.disable = disable
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.disable or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with tqdm(desc="training SentencePiece", bar_format="{desc}: {elapsed}", mininterval=1.0) as bar:
            while not self._done.wait(1.0):
                bar.refresh()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


def train_sentencepiece(
    texts: Iterable[str], base: sp_pb2.ModelProto, config: TrainConfig | None = None, *,
    progress: bool | None = None,
) -> sp_pb2.ModelProto:
    """Train a SentencePiece model on ``texts`` following ``base``'s conventions; return its proto.

    ``progress``: show the reading bar and the training time (default: unless ``texts`` is a list, as an
    in-memory retraining at a smaller size is)."""
    show = not isinstance(texts, list) if progress is None else progress
    config = config or TrainConfig()
    if config.model_type not in ("bpe", "unigram"):
        raise VocabExtendError(f"model type {config.model_type!r} is not supported: use bpe or unigram")
    buffer = io.BytesIO()
    options = trainer_options(base, config)
    spm.set_random_generator_seed(config.seed)
    reading_error: list[BaseException] = []
    ticker = _Ticker(disable=not show)

    def sentences() -> Iterator[str]:
        # SentencePiece turns an exception inside the iterator into a RuntimeError; keep the original.
        try:
            yield from _progress(texts, config.max_sentence_length, show)
        except BaseException as exc:
            reading_error.append(exc)
            raise
        ticker.start()  # everything is read: the trainer works silently from here

    try:
        spm.SentencePieceTrainer.train(sentence_iterator=sentences(), model_writer=buffer, **options)
    except RuntimeError as exc:
        if reading_error:
            raise reading_error[0] from None
        raise _explain_training_error(exc, config) from None
    finally:
        ticker.stop()
    proto = sp_pb2.ModelProto()
    proto.ParseFromString(buffer.getvalue())
    return proto


class VocabSizeTooLarge(VocabExtendError):
    """The corpus cannot fill the requested vocabulary; ``largest`` is the biggest size that works."""

    def __init__(self, requested: int, largest: int) -> None:
        super().__init__(
            f"the corpus is too small for --vocab-size {requested}: it supports about {largest:,} new-model "
            f"pieces (--vocab-size {largest} works); lower --vocab-size or add text"
        )
        self.requested, self.largest = requested, largest


def _explain_training_error(exc: RuntimeError, config: TrainConfig) -> VocabExtendError:
    message = str(exc)
    found = re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", message)
    if found:
        return VocabSizeTooLarge(config.vocab_size, int(found.group(2)))
    if "sentences_.empty()" in message:
        return VocabExtendError("the corpus is empty: it has no non-blank text lines")
    found = re.search(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)", message)
    if found:
        return VocabExtendError(
            f"--vocab-size {config.vocab_size} is smaller than the {found.group(2)} characters the corpus needs "
            "(plus byte and control pieces): raise --vocab-size"
        )
    return VocabExtendError(f"SentencePiece training failed: {message.strip().splitlines()[-1]}")


# A corpus "supports" a vocabulary when at least this share of the new model's pieces occur twice or more
# in the model's own segmentation of it; below that, the extra pieces are memorised one-off strings.
MIN_SUPPORTED_SHARE = 0.5


def corpus_supports(model: sp_pb2.ModelProto, docs: list[str]) -> bool:
    """Whether at least half of ``model``'s learned (multi-character) pieces occur twice or more in ``docs``."""
    processor = spm.SentencePieceProcessor(model_proto=model.SerializeToString())
    counts = Counter(i for ids in processor.encode(docs, num_threads=0) for i in ids)
    normal = sp_pb2.ModelProto.SentencePiece.NORMAL
    learned = [i for i, p in enumerate(model.pieces) if p.type == normal and len(p.piece) > 1]
    return sum(counts[i] >= 2 for i in learned) >= MIN_SUPPORTED_SHARE * len(learned)


def train_supported(texts: Iterable[str], base: sp_pb2.ModelProto, config: TrainConfig, *,
                    explicit_size: bool, everything: Callable[[], list[str] | None],
                    log: Callable[[str], None], progress: bool = True) -> sp_pb2.ModelProto:
    """Train at ``config.vocab_size``; when the corpus cannot support it, the largest size that it can.

    ``everything()`` gives the whole corpus once it has been read (``None`` when it was too large to keep,
    which always passes). The size the corpus supports is searched from SentencePiece's own bound, so it is
    the same whatever was asked: without ``explicit_size`` it is used, with a note; with it (the user named
    the size) it is named in the error.
    """
    requested = config.vocab_size
    try:
        model = train_sentencepiece(texts, base, config, progress=progress)
        docs = everything()
        if docs is None or config.model_type != "bpe" or corpus_supports(model, docs):
            return model
    except VocabSizeTooLarge:
        docs = everything()
        if docs is None:
            raise
    size, model = _largest_supported(config, base, docs, _trainable_bound(config, base, docs))
    if explicit_size and size > requested:  # support is not quite monotone in the size: stay below the ask
        size, model = _largest_supported(config, base, docs, requested)
    if explicit_size:
        raise VocabSizeTooLarge(requested, size)
    log(f"note: the corpus supports about {size:,} new-model pieces, not the {requested:,} asked (beyond that most "
        f"pieces occur once: memorised strings, not words); using {size:,}; add text for more")
    return model


def _trainable_bound(config: TrainConfig, base: sp_pb2.ModelProto, docs: list[str]) -> int:
    """The largest vocabulary SentencePiece agrees to train on ``docs`` (it says so when asked for more)."""
    try:
        train_sentencepiece(docs, base, dataclasses.replace(config, vocab_size=1_000_000))
    except VocabSizeTooLarge as exc:
        return exc.largest
    return 1_000_000


SIZE_STEP = 100  # supported sizes are searched on this grid, so the answer does not depend on the start


def _largest_supported(config: TrainConfig, base: sp_pb2.ModelProto, docs: list[str],
                       start: int) -> tuple[int, sp_pb2.ModelProto]:
    """The largest multiple of :data:`SIZE_STEP` up to ``start`` that trains and that the corpus supports,
    and its model, by bisection (support grows less likely with size). Because the grid is fixed, an
    explicit ``--vocab-size`` that is too large is told the same size the automatic choice uses.
    """
    def attempt(size: int) -> sp_pb2.ModelProto | None:
        try:
            model = train_sentencepiece(docs, base, dataclasses.replace(config, vocab_size=size))
        except VocabSizeTooLarge:
            return None
        except VocabExtendError:
            return None
        return model if config.model_type != "bpe" or corpus_supports(model, docs) else None

    low, high = 1, start // SIZE_STEP  # in steps; ``high`` may or may not work
    best: tuple[int, sp_pb2.ModelProto] | None = None
    if high >= low and (model := attempt(high * SIZE_STEP)) is not None:
        return high * SIZE_STEP, model
    while low < high:
        middle = (low + high) // 2
        model = attempt(middle * SIZE_STEP)
        if model is not None:
            best, low = (middle * SIZE_STEP, model), middle + 1
        else:
            high = middle
    if best is None:
        raise VocabExtendError("the corpus is too small to train a new-language model: add text")
    return best
