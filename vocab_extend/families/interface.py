"""The face every tokenizer family shows the pipeline, and the records that pass between them.

A *family* is one kind of base tokenizer (SentencePiece BPE, byte-level BPE). The merge job
(:mod:`vocab_extend.tokenizer.job`) and the model side only talk to a :class:`Family`; adding a third family
(a Unigram or a tiktoken-format base) means adding one folder under ``families/`` that implements these
methods and registering it (:func:`vocab_extend.families.register`).

What only a family knows, with the method that answers it::

    claims_file(path) / file_in_folder(folder)      which files it reads (the registry asks every family)
    claims_tokenizer(tokenizer.json as a dict)      whether a Hugging Face tokenizer follows its conventions
    folder_files, hub_files                         the tokenizer files of a written folder; to ask the Hub for
    load_base(source)            -> Base            the base tokenizer and the settings it carries
    check_options(options, base)                    refuse options that do not apply, before any work
    train(base, docs, options)   -> new model       or load_new_model(path)
    merge(base, new, scripts)    -> Extension       pure: writes nothing
    extended_base(base, ext)     -> Base            the base with an extension applied (the next language's)
    write(base, extension, dir)                     tokenizer files + the new-language model
    derived_settings(base)       -> dict            HF config for a base without config files
    references(base, dir)        -> (base, ext)     encoders the checks compare against
    load_hf(source), load_folder(dir)               a base file / a written folder as a Hugging Face tokenizer
    base_of_extended(dir, size)  -> HF tokenizer    the base, rebuilt from an extended folder (model side)
    native_encoder(source)                          its own library's encoder, for measuring (or None)
    gguf_vocab(dir, pre, base)   -> TokenizerVocab  the vocabulary llama.cpp stores in a GGUF file

Type variables name the family's own objects: ``BaseModel`` (what :meth:`Family.load_base` keeps, e.g. a
SentencePiece proto), ``NewModel`` (the new-language model) and ``Merged`` (the merged object).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generic, Hashable, Iterable, Protocol, Sequence, TypeVar

from ..scripts import ScriptSet
from ..settings import BaseSettings

if TYPE_CHECKING:  # transformers is imported when a tokenizer is loaded, not to name its type
    from transformers import PreTrainedTokenizerBase as HFTokenizer
else:
    HFTokenizer = Any

BaseModel = TypeVar("BaseModel")
NewModel = TypeVar("NewModel")
Merged = TypeVar("Merged")
JsonDict = dict[str, Any]
"""A JSON object as read from a file (``tokenizer.json``, ``tokenizer_config.json``)."""


@dataclass(frozen=True)
class TokenizerSource:
    """Where a base tokenizer lives and which family reads it.

    ``name`` is what the user passed (an alias, path or Hub id) and is written into the merge metadata;
    ``family`` the registered name of the family that claimed ``path``, the one file it reads (a SentencePiece
    ``.model``, a ``tokenizer.json``, a ``.gguf`` file...).
    """

    name: str
    family: str
    path: Path


@dataclass
class TrainOptions:
    """Settings of the new-language model, for whichever family trains it.

    ``new_model_size``: pieces of the new-language model (``None``: 16,000, lowered for a small corpus where the
    family can); ``seed``: the family's random seed; ``widen_split``: the family's ``widen_split(base,
    scripts)`` widens the base's split for the new script before training (families without one refuse it).
    The other fields are SentencePiece training settings, refused by families that do not train with
    SentencePiece when they differ from these defaults.
    """

    new_model_size: int | None = None
    seed: int = 0
    model_type: str = "bpe"
    character_coverage: float = 0.9995
    max_sentence_length: int = 16_384
    input_sentence_size: int = 2_000_000
    show_progress: bool = True
    widen_split: bool = False  # keep the new script's letters and marks in one pre-token (byte-level bases)


DEFAULT_VOCAB_SIZE = 16_000
# No new-language model needs more pieces; larger sizes only make a trainer allocate memory it cannot get.
MAX_NEW_MODEL_SIZE = 1_000_000
SENTENCEPIECE_ONLY = ("model_type", "character_coverage", "max_sentence_length", "input_sentence_size")


@dataclass
class Base(Generic[BaseModel]):
    """A loaded base tokenizer.

    ``first_new_id``: one past the largest base id (added and special tokens included) — the first id an
    extension may use; ``splits_digits``: whether the base keeps numbers in single digits (or short groups);
    ``settings``: the HF settings files of the base folder, carried into the output; ``model``: the
    family's own object (a SentencePiece proto, a ``tokenizers.Tokenizer``).
    """

    name: str
    family: str
    first_new_id: int
    splits_digits: bool
    settings: BaseSettings
    model: BaseModel


@dataclass
class Extension(Generic[Merged, NewModel]):
    """The one record of a merge: what would be appended to the base, and why the rest was not.

    ``added``: the new pieces as the tokenizer stores them, in id order from ``first_new_id``;
    ``skipped``: reason → count of new-model pieces not added; ``examples``: reason → a few of them;
    ``model``: the family's merged object; ``new_model``: the new-language model it came from;
    ``report_extra``/``metadata_extra``: family-specific figures for ``report.json``/``vocab_extend.json``.
    """

    first_new_id: int
    added: list[str]
    skipped: Counter[str]
    examples: dict[str, list[str]]
    model: Merged
    new_model: NewModel
    report_extra: JsonDict = field(default_factory=dict)
    metadata_extra: JsonDict = field(default_factory=dict)
    new_models: dict[str, NewModel] = field(default_factory=dict)
    """Several languages merged one after the other: language code → its new-language model, each written
    as :func:`new_model_name` (``new_language.th.model``) instead of the one ``new_model`` file."""

    @property
    def tokenizer_size(self) -> int:
        return self.first_new_id + len(self.added)


def new_model_name(file_name: str, code: str) -> str:
    """The file of language ``code``'s new-language model when a merge holds several.

    >>> new_model_name("new_language.model", "th"), new_model_name("new_language_tokenizer.json", "vi")
    ('new_language.th.model', 'new_language_tokenizer.vi.json')
    """
    stem, dot, suffix = file_name.rpartition(".")
    return f"{stem}.{code}.{suffix}" if dot else f"{file_name}.{code}"


# An entry of ``Reference.entries`` keyed ``(RANK_KEY, piece)`` is a piece's rank (a SentencePiece score): the
# merge may re-rank a base piece that holds a character of the new scripts, since only text with that
# character can form it; every other entry must stay as it is.
RANK_KEY = "rank"


class Reference(Protocol):
    """An encoder the checks trust: SentencePiece itself, or ``tokenizers`` reading the written file.

    ``encode`` treats text that spells a special token as text, as SentencePiece does.
    """

    def encode(self, lines: Sequence[str], *, specials: bool) -> list[list[int]]: ...

    def encode_both(self, lines: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        """``(with special tokens, without)`` — one pass where the family can."""
        ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def pieces(self, text: str) -> list[str]: ...

    def entries(self) -> dict[Hashable, object]:
        """Every entry of the vocabulary (and merge list) the base must keep unchanged, by a stable key."""
        ...

    def split_ceiling(self, lines: Sequence[str]) -> float | None:
        """Characters per pre-token of ``lines``: the most chars/token any vocabulary can reach with this
        tokenizer's split (BPE never merges across pre-tokens); None where the family has no such split."""
        ...


class Collector(Protocol):
    """What training may ask of the documents it has read: all of them, when the corpus was small."""

    everything: list[str] | None


@dataclass
class NativeEncoder:
    """A tokenizer encoded by its family's own library (``vocab-extend measure``): ``fallback_ids`` are the
    ids that stand for a lone byte; ``engine`` names the library."""

    encode_batch: Callable[[list[str]], list[list[int]]]
    fallback_ids: frozenset[int]
    vocab_size: int
    engine: str


class TokenType(IntEnum):
    """Token types in llama.cpp's numbering (SentencePiece's piece types use the same numbers)."""

    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


@dataclass
class TokenizerVocab:
    """The tokenizer half of a GGUF file as a family states it; lists are indexed by token id.

    ``model``: llama.cpp's tokenizer model (``llama`` for SentencePiece, ``gpt2`` for byte-level BPE);
    ``scores``: per-token scores where the model merges by score; ``merges``: ``"left right"`` in rank order
    where it merges by rank; ``pre``: llama.cpp's name of the split before the model.
    """

    model: str
    tokens: list[str]
    types: list[int]
    scores: list[float] | None = None
    merges: list[str] = field(default_factory=list)
    pre: str | None = None
    add_space_prefix: bool | None = None


class Family(Protocol[BaseModel, NewModel, Merged]):
    """One kind of base tokenizer; see the module docstring for what each method answers."""

    name: str
    kind: str  # what it reads, for messages: "a SentencePiece model (a .model file, ...)"
    new_model_file: str
    folder_files: tuple[str, ...]  # its tokenizer files in a written folder (settings files aside)
    hub_files: tuple[str, ...]  # the files that hold its tokenizer in a Hub repository, asked for in order

    def claims_file(self, path: Path) -> bool:
        """Whether ``path`` is a base tokenizer file this family reads (cheap: never loads a model file)."""
        ...

    def file_in_folder(self, folder: Path) -> Path | None:
        """The file of ``folder`` this family reads as a base, or None."""
        ...

    def claims_tokenizer(self, data: JsonDict) -> bool:
        """Whether a ``tokenizer.json`` (as a dict) follows this family's conventions (byte pieces, spaces)."""
        ...

    def load_base(self, source: TokenizerSource) -> Base[BaseModel]: ...

    def check_options(self, options: TrainOptions, base_name: str, new_model: Path | None) -> None: ...

    def train(self, base: Base[BaseModel], docs: Iterable[str], options: TrainOptions,
              collector: Collector) -> NewModel: ...

    def load_new_model(self, path: Path) -> NewModel: ...

    def new_model_text(self, new_model: NewModel) -> list[str]: ...

    def describe(self, new_model: NewModel) -> str: ...

    def merge(self, base: Base[BaseModel], new_model: NewModel, scripts: ScriptSet) -> Extension[Merged, NewModel]: ...

    def extended_base(self, base: Base[BaseModel], extension: Extension[Merged, NewModel]) -> Base[BaseModel]:
        """``base`` with ``extension`` applied: what the next language of a several-language merge is trained
        with and merged into (its ``first_new_id`` is one past the extension's last piece)."""
        ...

    def write(self, base: Base[BaseModel], extension: Extension[Merged, NewModel], folder: Path) -> None: ...

    def derived_settings(self, base: Base[BaseModel]) -> JsonDict: ...

    def references(self, base: Base[BaseModel], folder: Path) -> tuple[Reference, Reference]: ...

    def piece_bytes(self, piece: str) -> bytes | None: ...

    def is_byte_piece(self, piece: str) -> bool: ...

    def surface(self, base: Base[BaseModel], piece: str) -> str | None: ...

    def base_hf(self, base: Base[BaseModel]) -> HFTokenizer: ...

    def load_hf(self, source: TokenizerSource) -> HFTokenizer:
        """The base file ``source`` as a Hugging Face tokenizer, as this family reads it."""
        ...

    def load_folder(self, folder: Path) -> HFTokenizer:
        """A folder this family wrote (a merge's output, or a model folder holding its files)."""
        ...

    def base_of_extended(self, folder: Path, first_new_id: int) -> HFTokenizer: ...

    def native_encoder(self, source: TokenizerSource) -> NativeEncoder | None:
        """The base file ``source`` encoded by the family's own library, when it has one."""
        ...

    def gguf_vocab(self, folder: Path, *, pre: str | None, base: str) -> TokenizerVocab:
        """The vocabulary of the tokenizer in ``folder`` (``base``: the merge's base name, or ``""``)."""
        ...


AnyFamily = Family[Any, Any, Any]
"""A family whose own objects the caller does not handle (the registry, the job, the model side)."""

Log = Callable[[str], None]
