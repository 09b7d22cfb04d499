"""The byte-level BPE family (SmolLM2, Llama-3, Qwen style bases): a ``tokenizer.json`` whose pre-tokenizer
maps bytes to GPT-2's printable alphabet.

A byte-level BPE (a ``tokenizer.json`` whose pre-tokenizer maps bytes to GPT-2's printable alphabet) encodes
each pre-token by applying ranked merges, lowest rank first. We train a BPE on the new-language corpus with
the base's own normaliser and pre-tokenizer, then append its tokens after every base id (added and special
tokens included) and *derived* merges after every base merge. The guarantees:

1. *Base ids kept.* The base vocabulary, added tokens and merge list are copied unchanged; new merges come
   after the last base merge, so a new merge fires only where no base merge applies.
2. *Base-language text unchanged.* Every new merge's result contains a whole character of the new scripts,
   or ends in the first bytes of a character whose every possible completion is in the new scripts (``é°``
   can only start 鰀..鰿). Such a merge can only fire inside a pre-token holding a new-script character, so
   text without one (English, code, ASCII digits) tokenizes exactly as before.
3. *Digits.* When the base splits digits (a ``Digits`` pre-tokenizer, ``\\p{N}{1,3}``, or no base token
   with two digits), a new token holding a digit must be that single digit and nothing else.
4. *No dead tokens.* Merges are re-derived, not copied: for each new-model token (in the new model's merge
   order) we segment its bytes with the merges accepted so far; two pieces give the merge that makes it; more
   pieces first get an admissible intermediate (the byte→character merges new characters need). Since every
   later merge ranks higher, a token's own bytes always encode to that token: every added token is made by
   a merge and comes out of encoding its own surface.

It reads a ``tokenizer.json`` that :func:`.alphabet.is_bytelevel` accepts (a file, or a folder's) and any
GGUF file (a folder's first, when it has no ``tokenizer.json``). Modules: :mod:`.alphabet` (bytes as
characters; which tokens may be merged; the one "is it byte-level" rule), :mod:`.load` (the base, from a
``tokenizer.json`` or a GGUF file), :mod:`.train` (the new-language BPE, with ``tokenizers``), :mod:`.derive`
(pure: the merges that make each new token), :mod:`.write` (the extended ``tokenizer.json`` and the way
back), :mod:`.export` (the GGUF vocabulary). The reference the checks trust is ``tokenizers`` reading the
written ``tokenizer.json``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer

from ...errors import VocabExtendError
from ...scripts import ScriptSet
from ...settings import read_base_settings, wrapper_kwargs
from ...jsonfile import read_json_object
from ..files import TokenizersReference, auto_tokenizer
from ..interface import (DEFAULT_VOCAB_SIZE, SENTENCEPIECE_ONLY, Base, Collector, Extension, HFTokenizer, JsonDict,
                         NativeEncoder, TokenizerSource, TokenizerVocab, TrainOptions, new_model_name)
from .alphabet import is_bytelevel, token_bytes, token_text, whole_text
from .derive import derive_merges
from .export import gguf_vocab
from .load import LoadedBase, load_base, splits_digits
from .train import new_model_candidates, train_new_model
from .widen import chars_per_pretoken, restore_split, widen_split, widened_metadata
from .write import build_extended, cut_to_base, first_new_id

NEW_MODEL_FILE = "new_language_tokenizer.json"
TOKENIZER_FILE = "tokenizer.json"


def is_bytelevel_file(path: Path) -> bool:
    """Whether ``path`` is a ``tokenizer.json`` of a byte-level BPE (unreadable files are not)."""
    try:
        return is_bytelevel(read_json_object(path))
    except (VocabExtendError, AttributeError):
        return False


class ByteLevelFamily:
    name = "bytelevel"
    kind = "a byte-level BPE tokenizer (a tokenizer.json, a folder holding one, or a GGUF file)"
    new_model_file = NEW_MODEL_FILE
    folder_files = (TOKENIZER_FILE,)
    hub_files = (TOKENIZER_FILE,)

    def claims_file(self, path: Path) -> bool:
        path = Path(path)
        return path.suffix == ".gguf" or (path.suffix == ".json" and is_bytelevel_file(path))

    def file_in_folder(self, folder: Path) -> Path | None:
        folder = Path(folder)
        if (folder / TOKENIZER_FILE).is_file():  # a folder's tokenizer.json decides, even beside a GGUF file
            return folder / TOKENIZER_FILE if is_bytelevel_file(folder / TOKENIZER_FILE) else None
        return next(iter(sorted(folder.glob("*.gguf"))), None)

    def claims_tokenizer(self, data: JsonDict) -> bool:
        return is_bytelevel(data)

    def load_base(self, source: TokenizerSource) -> Base[LoadedBase]:
        loaded = load_base(source)
        tokenizer = loaded.tokenizer
        return Base(source.name, self.name, first_new_id(tokenizer), splits_digits(tokenizer), loaded.settings, loaded)

    def check_options(self, options: TrainOptions, base_name: str, new_model: Path | None) -> None:
        defaults = TrainOptions()
        changed = [f"--{name.replace('_', '-')}" for name in SENTENCEPIECE_ONLY
                   if getattr(options, name) != getattr(defaults, name)]
        if changed:
            raise VocabExtendError(
                f"{', '.join(changed)} set SentencePiece training, but {base_name} is a byte-level BPE "
                "base whose new-language model is trained with tokenizers: drop them"
            )
        if options.new_model_size is not None and options.new_model_size <= 256:
            raise VocabExtendError(
                f"--vocab-size {options.new_model_size} leaves no room beyond the 256 byte symbols: raise it (e.g. 16000)"
            )

    def train(self, base: Base[LoadedBase], docs: Iterable[str], options: TrainOptions,
              collector: Collector) -> Tokenizer:
        return train_new_model(base.model.working, docs, vocab_size=options.new_model_size or DEFAULT_VOCAB_SIZE,
                               show_progress=options.show_progress)

    def load_new_model(self, path: Path) -> Tokenizer:
        if not Path(path).is_file():
            raise VocabExtendError(f"--new-model {path} does not exist")
        try:
            model = Tokenizer.from_file(str(path))
        except Exception:  # tokenizers raises a bare Exception on a foreign file
            raise VocabExtendError(
                f"--new-model {path} is not a tokenizers JSON file: give a byte-level BPE tokenizer.json, or "
                "train the new-language model on --corpus instead (a SentencePiece model cannot be merged into "
                "a byte-level BPE base)"
            ) from None
        if json.loads(model.to_str()).get("model", {}).get("type") != "BPE":
            raise VocabExtendError(f"--new-model {path} is not a BPE tokenizer: give a byte-level BPE tokenizer.json")
        return model

    def new_model_text(self, new_model: Tokenizer) -> list[str]:
        return [token_text(t) for t in new_model_candidates(new_model)]

    def describe(self, new_model: Tokenizer) -> str:
        return f"{new_model.get_vocab_size():,} tokens"

    def merge(self, base: Base[LoadedBase], new_model: Tokenizer,
              scripts: ScriptSet) -> Extension[Tokenizer, Tokenizer]:
        """Derived merges after every base merge, new tokens after every base id (pure: writes nothing).

        Example (SmolLM2, 16k Japanese tokens): ids 0..49151 and the 48,900 base merges are unchanged;
        about 15k tokens are appended from id 49152.
        """
        tokenizer = base.model.working
        candidates = new_model_candidates(new_model)
        if not candidates:
            raise VocabExtendError(
                "the new-language model learned no merges: the corpus is empty or too small for its "
                "vocabulary size; add text"
            )
        derivation = derive_merges(tokenizer, candidates, scripts, split_digits=base.splits_digits,
                                   show_progress=True)
        return Extension(
            first_new_id=base.first_new_id,
            added=derivation.added,
            skipped=derivation.skipped,
            examples=derivation.examples,
            model=build_extended(tokenizer, derivation.added, derivation.merges),
            new_model=new_model,
            report_extra={"new_model_type": "bpe (tokenizers)", "intermediate_tokens": derivation.intermediates},
            metadata_extra={"trainer": "tokenizers", "intermediates": derivation.intermediates,
                            "split_digits": base.splits_digits, **widened_metadata(base.model)},
        )

    def extended_base(self, base: Base[LoadedBase], extension: Extension[Tokenizer, Tokenizer]) -> Base[LoadedBase]:
        """The extended tokenizer as the one the next merge trains and merges into (``working``); the checks
        still compare with the base as it is (``tokenizer``)."""
        return dataclasses.replace(base, first_new_id=extension.tokenizer_size,
                                   model=dataclasses.replace(base.model, extended=extension.model))

    def widened_ceiling(self, base: Base[LoadedBase], scripts: ScriptSet, lines: list[str]) -> float | None:
        """Characters per pre-token of ``lines`` once the base's split is widened for ``scripts``."""
        return chars_per_pretoken(widen_split(base.model.tokenizer, scripts), lines)

    def widen_split(self, base: Base[LoadedBase], scripts: ScriptSet) -> Base[LoadedBase]:
        """The base whose pre-tokenizer keeps runs of ``scripts`` whole (:mod:`.widen`); the checks still
        compare with the base as it is."""
        widened = widen_split(base.model.tokenizer, scripts)
        return dataclasses.replace(base, model=dataclasses.replace(base.model, widened=widened,
                                                                   widened_for=scripts.name))

    def derived_settings(self, base: Base[LoadedBase]) -> JsonDict:
        return dict(base.model.derived)

    def write(self, base: Base[LoadedBase], extension: Extension[Tokenizer, Tokenizer], folder: Path) -> None:
        folder = Path(folder)
        extension.model.save(str(folder / "tokenizer.json"))
        for code, new_model in extension.new_models.items():
            new_model.save(str(folder / new_model_name(NEW_MODEL_FILE, code)))
        if not extension.new_models:
            extension.new_model.save(str(folder / NEW_MODEL_FILE))

    def references(self, base: Base[LoadedBase], folder: Path) -> tuple[TokenizersReference, TokenizersReference]:
        written = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        return (TokenizersReference(base.model.tokenizer, token_text, chars_per_pretoken),
                TokenizersReference(written, token_text, chars_per_pretoken))

    def piece_bytes(self, piece: str) -> bytes | None:
        try:
            return token_bytes(piece)
        except KeyError:  # an added token outside the byte alphabet
            return None

    def is_byte_piece(self, piece: str) -> bool:
        """A token holding part of a character (added tokens outside the byte alphabet are text)."""
        data = self.piece_bytes(piece)
        if data is None:
            return False
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False

    def surface(self, base: Base[LoadedBase], piece: str) -> str | None:
        """The text of a token made of whole characters: encoding it alone must give the token."""
        return whole_text(piece)

    def base_hf(self, base: Base[LoadedBase]) -> HFTokenizer:
        """The base as an in-memory Hugging Face tokenizer with its settings."""
        from transformers import PreTrainedTokenizerFast

        config = base.settings.config if base.settings.config is not None else base.model.derived
        return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(base.model.tokenizer.to_str()),
                                       clean_up_tokenization_spaces=False,
                                       **wrapper_kwargs(config, base.settings.files))

    def load_hf(self, source: TokenizerSource) -> HFTokenizer:
        """transformers reads a byte-level base as it is: a GGUF file, or the folder of a ``tokenizer.json``."""
        path = Path(source.path)
        return auto_tokenizer(path.parent, **({"gguf_file": path.name} if path.suffix == ".gguf" else {}))

    def load_folder(self, folder: Path) -> HFTokenizer:
        return auto_tokenizer(folder)

    def native_encoder(self, source: TokenizerSource) -> NativeEncoder | None:
        return None  # transformers' fast tokenizer is tokenizers itself

    def gguf_vocab(self, folder: Path, *, pre: str | None, base: str) -> TokenizerVocab:
        return gguf_vocab(folder, pre, base)

    def base_of_extended(self, folder: Path, first_new_id: int) -> HFTokenizer:
        """The base tokenizer inside an extended folder: its ``tokenizer.json`` cut to ``first_new_id`` ids,
        with the folder's settings; no network or original file needed."""
        from transformers import PreTrainedTokenizerFast

        folder = Path(folder)
        settings = read_base_settings(folder)
        extended = restore_split(Tokenizer.from_file(str(folder / "tokenizer.json")), folder)
        return PreTrainedTokenizerFast(tokenizer_object=cut_to_base(extended, first_new_id),
                                       clean_up_tokenization_spaces=False,
                                       **wrapper_kwargs(settings.config, settings.files))


FAMILY = ByteLevelFamily()
