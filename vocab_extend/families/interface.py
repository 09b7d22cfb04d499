"""The face every tokenizer family shows the pipeline, and the records that pass between them.

A *family* is one kind of base tokenizer (SentencePiece BPE, byte-level BPE). The merge job
(:mod:`vocab_extend.tokenizer.job`) only talks to a :class:`Family`; adding a third family (a Unigram or a
tiktoken-format base) means adding one folder under ``families/`` that implements these methods and one line
in :data:`vocab_extend.families.FAMILIES`.

The pipeline, with the method that does each step::

    load_base(source)            -> Base            the base tokenizer and the settings it carries
    check_options(options, base)                    refuse options that do not apply, before any work
    train(base, docs, options)   -> new model       or load_new_model(path)
    merge(base, new, scripts)    -> Extension       pure: writes nothing
    write(base, extension, dir)                     tokenizer files + the new-language model
    derived_settings(base)       -> dict            HF config for a base without config files
    references(base, dir)        -> (base, ext)     encoders the checks compare against
    base_of_extended(dir, size)  -> HF tokenizer    the base, rebuilt from an extended folder (model side)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

from ..scripts import ScriptSet
from ..settings import BaseSettings
from ..sources import TokenizerSource


@dataclass
class TrainOptions:
    """Settings of the new-language model, for whichever family trains it.

    ``new_model_size``: pieces of the new-language model (``None``: 16,000, lowered for a small corpus where the
    family can); ``seed``: the family's random seed. The other fields are SentencePiece training settings,
    refused by families that do not train with SentencePiece when they differ from these defaults.
    """

    new_model_size: int | None = None
    seed: int = 0
    model_type: str = "bpe"
    character_coverage: float = 0.9995
    max_sentence_length: int = 16_384
    input_sentence_size: int = 2_000_000
    show_progress: bool = True


DEFAULT_VOCAB_SIZE = 16_000
# No new-language model needs more pieces; larger sizes only make a trainer allocate memory it cannot get.
MAX_NEW_MODEL_SIZE = 1_000_000
SENTENCEPIECE_ONLY = ("model_type", "character_coverage", "max_sentence_length", "input_sentence_size")


@dataclass
class Base:
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
    model: Any


@dataclass
class Extension:
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
    model: Any
    new_model: Any
    report_extra: dict[str, Any] = field(default_factory=dict)
    metadata_extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokenizer_size(self) -> int:
        return self.first_new_id + len(self.added)


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

    def entries(self) -> dict[Any, Any]: ...


class Collector(Protocol):
    """What training may ask of the documents it has read: all of them, when the corpus was small."""

    everything: list[str] | None


class Family(Protocol):
    name: str
    new_model_file: str

    def load_base(self, source: TokenizerSource) -> Base: ...

    def check_options(self, options: TrainOptions, base_name: str, new_model: Path | None) -> None: ...

    def train(self, base: Base, docs: Iterable[str], options: TrainOptions, collector: Collector) -> Any: ...

    def load_new_model(self, path: Path) -> Any: ...

    def new_model_text(self, new_model: Any) -> list[str]: ...

    def describe(self, new_model: Any) -> str: ...

    def merge(self, base: Base, new_model: Any, scripts: ScriptSet) -> Extension: ...

    def write(self, base: Base, extension: Extension, folder: Path) -> None: ...

    def derived_settings(self, base: Base) -> dict[str, Any]: ...

    def references(self, base: Base, folder: Path) -> tuple[Reference, Reference]: ...

    def piece_bytes(self, piece: str) -> bytes | None: ...

    def is_byte_piece(self, piece: str) -> bool: ...

    def surface(self, base: Base, piece: str) -> str | None: ...

    def base_hf(self, base: Base) -> Any: ...

    def base_of_extended(self, folder: Path, first_new_id: int) -> Any: ...


Log = Callable[[str], None]
