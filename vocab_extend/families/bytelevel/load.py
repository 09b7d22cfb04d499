"""Loading a byte-level base: a ``tokenizer.json`` (its folder's settings files beside it) or a GGUF file.

The tokenizer is taken from the Hugging Face wrapper, so its post-processor adds BOS/EOS exactly as
``AutoTokenizer`` does for the base. Reading a GGUF file takes seconds, so the result is remembered per file
(each call gets its own ``Tokenizer``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from ...console import log
from ...errors import VocabExtendError, error_summary, load_errors
from ...settings import NO_MAX_LENGTH, SPECIAL_KEYS, BaseSettings, read_base_settings
from ..interface import TokenizerSource
from .alphabet import _split_utf8, is_bytelevel, token_bytes


@dataclass
class LoadedBase:
    """A byte-level base: its ``tokenizers.Tokenizer``, its folder's settings files, and the settings the
    Hugging Face wrapper derives when there are none (special tokens, chat template). ``tokenizer`` stays the
    base as it is: the checks compare against it."""

    tokenizer: Tokenizer
    settings: BaseSettings
    derived: dict[str, Any]
    widened: Tokenizer | None = None  # the base with --widen-split's pre-tokenizer, which training and merges use
    widened_for: str = ""  # the languages whose characters the widened split keeps whole ("th", "th+vi")
    extended: Tokenizer | None = None  # the base extended by the languages merged before (several languages)

    @property
    def working(self) -> Tokenizer:
        """The tokenizer new tokens are trained and merged into: the base extended by the languages merged
        before, else the widened one, else the base itself."""
        if self.extended is not None:
            return self.extended
        return self.widened if self.widened is not None else self.tokenizer


def _checked(tokenizer: Tokenizer, name: str) -> Tokenizer:
    if not is_bytelevel(tokenizer):
        raise VocabExtendError(
            f"{name} is not a byte-level BPE tokenizer (BPE model with a ByteLevel pre-tokenizer); "
            "give a SmolLM2, Llama-3 or Qwen style tokenizer.json"
        )
    return tokenizer


def _derived(hf_tokenizer: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"clean_up_tokenization_spaces": False, "model_max_length": NO_MAX_LENGTH}
    for key in SPECIAL_KEYS:
        value = getattr(hf_tokenizer, key, None)
        if value is not None:
            settings[key] = str(value)
    template = getattr(hf_tokenizer, "chat_template", None)
    if isinstance(template, str):
        settings["chat_template"] = template
    return settings


def load_base(source: TokenizerSource) -> LoadedBase:
    """The base named by ``source``: a ``tokenizer.json`` (with its folder's settings files) or a GGUF file,
    whose tokenizer transformers rebuilds."""
    path = Path(source.path)
    if not path.is_file():
        raise VocabExtendError(f"base tokenizer file {path} does not exist: check --base")
    stat = path.stat()
    text, derived = _read_base(str(path), stat.st_mtime_ns, stat.st_size, source.name)
    settings = read_base_settings(path.parent) if path.name == "tokenizer.json" else BaseSettings()
    return LoadedBase(Tokenizer.from_str(text), settings, dict(derived))


@lru_cache(maxsize=4)
def _read_base(path_text: str, mtime_ns: int, size: int, name: str) -> tuple[str, dict[str, Any]]:
    import transformers

    path = Path(path_text)
    try:
        if path.suffix == ".gguf":  # transformers reads every field of the file: seconds, so say so first
            log(f"reading the tokenizer of {name} from its GGUF file ({size / 2**20:,.0f} MB)")
            hf = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        elif path.name == "tokenizer.json":
            hf = transformers.PreTrainedTokenizerFast.from_pretrained(str(path.parent))
        else:
            hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path))
    except load_errors() as exc:
        raise VocabExtendError(
            f"could not read the tokenizer of {name} ({error_summary(exc)}); "
            "give a tokenizer.json, a folder holding one, or a GGUF file transformers can read"
        ) from None
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise VocabExtendError(f"{name} did not give a fast (tokenizers) tokenizer; give its tokenizer.json")
    tokenizer = _checked(Tokenizer.from_str(backend.to_str()), name)
    return tokenizer.to_str(), _derived(hf)


def splits_digits(tokenizer: Tokenizer) -> bool:
    """Whether the base keeps numbers in short digit groups (so new tokens must not join digits).

    True for a ``Digits`` pre-tokenizer, a ``\\p{N}{1,3}`` style split, or a vocabulary without any token
    holding two digits (SmolLM2's GGUF tokenizer, which splits digits by never merging them).
    """
    pre = json.dumps(json.loads(tokenizer.to_str()).get("pre_tokenizer"))
    if '"Digits"' in pre or re.search(r"p\{N\}\{1,\d\}", pre):
        return True
    for token in tokenizer.get_vocab():
        try:
            parts = _split_utf8(token_bytes(token))
        except KeyError:  # an added token outside the byte alphabet
            continue
        if parts and sum(unicodedata.category(ch) == "Nd" for ch in parts[0]) >= 2:
            return False
    return True
