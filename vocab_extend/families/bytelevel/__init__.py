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

Modules: :mod:`.alphabet` (bytes as characters; which tokens may be merged), :mod:`.load` (the base, from a
``tokenizer.json`` or a GGUF file), :mod:`.train` (the new-language BPE, with ``tokenizers``), :mod:`.derive`
(pure: the merges that make each new token), :mod:`.write` (the extended ``tokenizer.json`` and the way
back). The reference the checks trust is ``tokenizers`` reading the written ``tokenizer.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from tokenizers import Tokenizer

from ...errors import VocabExtendError
from ...scripts import ScriptSet
from ...settings import read_base_settings, wrapper_kwargs
from ...sources import TokenizerSource, is_sentencepiece_file
from ..interface import DEFAULT_VOCAB_SIZE, SENTENCEPIECE_ONLY, Base, Collector, Extension, TrainOptions
from .alphabet import token_bytes, token_text, whole_text
from .derive import derive_merges
from .load import load_base, merge_pairs, splits_digits
from .train import new_model_candidates, train_new_model
from .write import build_extended, cut_to_base, first_new_id

NEW_MODEL_FILE = "new_language_tokenizer.json"


class TokenizersReference:
    """``tokenizers`` itself reading a ``tokenizer.json``: the encoder ``AutoTokenizer`` must agree with."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.encode_special_tokens = True  # text that spells a special token is text

    def encode(self, lines: Sequence[str], *, specials: bool) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(lines), add_special_tokens=specials)]

    def encode_both(self, lines: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        return self.encode(lines, specials=True), self.encode(lines, specials=False)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def pieces(self, text: str) -> list[str]:
        return [token_text(t) for t in self.tokenizer.encode(text, add_special_tokens=False).tokens]

    def entries(self) -> dict[Any, Any]:
        entries: dict[Any, Any] = {("token", t): i for t, i in self.tokenizer.get_vocab(with_added_tokens=True).items()}
        entries.update({("merge", rank): pair for rank, pair in enumerate(merge_pairs(self.tokenizer))})
        return entries


class ByteLevelFamily:
    name = "bytelevel"
    new_model_file = NEW_MODEL_FILE

    def load_base(self, source: TokenizerSource) -> Base:
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
        if new_model is not None and Path(new_model).is_file() and is_sentencepiece_file(Path(new_model)):
            raise VocabExtendError(
                "--new-model takes a SentencePiece model here, which cannot be merged into a byte-level BPE base; "
                "give a byte-level BPE tokenizer.json, or train the new-language model on --corpus instead"
            )
        if options.new_model_size is not None and options.new_model_size <= 256:
            raise VocabExtendError(
                f"--vocab-size {options.new_model_size} leaves no room beyond the 256 byte symbols: raise it (e.g. 16000)"
            )

    def train(self, base: Base, docs: Iterable[str], options: TrainOptions, collector: Collector) -> Any:
        return train_new_model(base.model.tokenizer, docs, vocab_size=options.new_model_size or DEFAULT_VOCAB_SIZE,
                               show_progress=options.show_progress)

    def load_new_model(self, path: Path) -> Any:
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

    def new_model_text(self, new_model: Any) -> list[str]:
        return [token_text(t) for t in new_model_candidates(new_model)]

    def describe(self, new_model: Any) -> str:
        return f"{new_model.get_vocab_size():,} tokens"

    def merge(self, base: Base, new_model: Any, scripts: ScriptSet) -> Extension:
        """Derived merges after every base merge, new tokens after every base id (pure: writes nothing).

        Example (SmolLM2, 16k Japanese tokens): ids 0..49151 and the 48,900 base merges are unchanged;
        about 15k tokens are appended from id 49152.
        """
        tokenizer = base.model.tokenizer
        candidates = new_model_candidates(new_model)
        if not candidates:
            raise VocabExtendError(
                "the new-language model learned no merges: the corpus is empty or too small for its "
                "vocabulary size; add text"
            )
        derivation = derive_merges(tokenizer, candidates, scripts, split_digits=base.splits_digits,
                                   show_progress=True)
        if not derivation.added:
            raise VocabExtendError(
                f"the new model has no tokens with {scripts.name} characters to add: check --lang and the corpus"
            )
        return Extension(
            first_new_id=base.first_new_id,
            added=derivation.added,
            skipped=derivation.skipped,
            examples=derivation.examples,
            model=build_extended(tokenizer, derivation.added, derivation.merges),
            new_model=new_model,
            report_extra={"new_model_type": "bpe (tokenizers)", "intermediate_tokens": derivation.intermediates},
            metadata_extra={"trainer": "tokenizers", "intermediates": derivation.intermediates,
                            "split_digits": base.splits_digits},
        )

    def derived_settings(self, base: Base) -> dict[str, Any]:
        return dict(base.model.derived)

    def write(self, base: Base, extension: Extension, folder: Path) -> None:
        folder = Path(folder)
        extension.model.save(str(folder / "tokenizer.json"))
        extension.new_model.save(str(folder / NEW_MODEL_FILE))

    def references(self, base: Base, folder: Path) -> tuple[TokenizersReference, TokenizersReference]:
        written = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        return TokenizersReference(base.model.tokenizer), TokenizersReference(written)

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

    def surface(self, base: Base, piece: str) -> str | None:
        """The text of a token made of whole characters: encoding it alone must give the token."""
        return whole_text(piece)

    def base_hf(self, base: Base):
        """The base as an in-memory Hugging Face tokenizer with its settings."""
        from transformers import PreTrainedTokenizerFast

        config = base.settings.config if base.settings.config is not None else base.model.derived
        return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(base.model.tokenizer.to_str()),
                                       clean_up_tokenization_spaces=False,
                                       **wrapper_kwargs(config, base.settings.files))

    def base_of_extended(self, folder: Path, first_new_id: int):
        """The base tokenizer inside an extended folder: its ``tokenizer.json`` cut to ``first_new_id`` ids,
        with the folder's settings; no network or original file needed."""
        from transformers import PreTrainedTokenizerFast

        folder = Path(folder)
        settings = read_base_settings(folder)
        extended = Tokenizer.from_file(str(folder / "tokenizer.json"))
        return PreTrainedTokenizerFast(tokenizer_object=cut_to_base(extended, first_new_id),
                                       clean_up_tokenization_spaces=False,
                                       **wrapper_kwargs(settings.config, settings.files))


FAMILY = ByteLevelFamily()
