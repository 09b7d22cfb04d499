"""The tokenizer and model a run starts from, and the checks that they fit together and the data.

``model: pico`` builds a tiny LLaMA in code, sized to the tokenizer (settings under ``pico:``); any other
value is loaded by :func:`vocab_extend.models.load_model` (a folder written by ``vocab-extend init-model``,
a GGUF file, the alias ``smollm2-135m`` or a Hub id) in float32. ``tokenizer_merge:`` builds the tokenizer
with ``vocab-extend merge`` into the cache (once per settings).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch

from ..console import log
from ..errors import VocabExtendError
from ..families.interface import MAX_NEW_MODEL_SIZE
from ..locks import waiting_lock
from ..metadata import METADATA_FILE, pad_vocab_size, read_metadata
from ..model.loading import load_model
from ..model.sizing import check_vocabulary_fits
from ..tokenizer.job import ExtendConfig, extend_tokenizer
from .data import DataConfig, _corpus_fingerprint, cache_root
from .fields import check_keys, coerce_fields

PICO_DEFAULTS: dict[str, Any] = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    max_position_embeddings=512, tie_word_embeddings=False, rms_norm_eps=1e-5,
)


@dataclass
class TokenizerMerge:
    """Build the tokenizer on the fly with ``vocab-extend merge`` (cached): used by the pico smoke config."""

    corpus: list[str]
    base: str = "mistral-7b-v0.1"
    vocab_size: int = 3000
    lang: str = "auto"


@dataclass
class ModelConfig:
    """The ``model`` section: the model and tokenizer a run starts from."""

    FLAT: ClassVar[dict[str, str]] = {"name": "model"}  # flat (top-level) names, as in older configs

    name: str = "pico"  # "pico" (a tiny LLaMA built in code), a model folder, a .gguf, alias or Hub id
    tokenizer: str | None = None  # a tokenizer folder; default: the model's own
    tokenizer_merge: TokenizerMerge | None = None  # build the tokenizer with `vocab-extend merge` instead
    pico: dict[str, Any] = field(default_factory=dict)  # LlamaConfig settings of the pico model
    base_vocab_size: int | None = None  # rows below this are the base's; default: the tokenizer's metadata
    gradient_checkpointing: bool = False  # recompute activations in the backward pass (less memory)

    def check(self) -> None:
        """Checks that need no model; each failure is one sentence."""
        if self.base_vocab_size is not None and self.base_vocab_size < 1:
            raise VocabExtendError(f"base_vocab_size must be positive, not {self.base_vocab_size}")
        merge = self.tokenizer_merge
        if merge is not None and not 100 <= merge.vocab_size <= MAX_NEW_MODEL_SIZE:
            raise VocabExtendError(f"tokenizer_merge: vocab_size {merge.vocab_size} is out of range: use 100 to "
                                   f"{MAX_NEW_MODEL_SIZE:,} (16000 is typical)")
        if merge is not None and self.tokenizer is not None:
            raise VocabExtendError("the config sets both tokenizer and tokenizer_merge: keep one")
        if self.name == "pico":
            check_pico(self.pico)


# pico settings that count something: whole numbers of at least 1
PICO_COUNTS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
               "max_position_embeddings", "head_dim", "vocab_size", "pad_to_multiple_of")


def check_pico(pico: Mapping[str, Any]) -> None:
    """The pico settings, checked before anything is read or written; each problem is one sentence.

    >>> check_pico({"num_hidden_layers": -1})
    Traceback (most recent call last):
    ...
    vocab_extend.errors.VocabExtendError: pico: num_hidden_layers must be a whole number of at least 1, not -1
    >>> check_pico({"hidden_size": 30, "num_attention_heads": 4})
    Traceback (most recent call last):
    ...
    vocab_extend.errors.VocabExtendError: pico: hidden_size 30 does not split into num_attention_heads 4 heads: use a multiple of 4
    """
    settings = {**PICO_DEFAULTS, **pico}
    for name in PICO_COUNTS:
        value = settings.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise VocabExtendError(f"pico: {name} must be a whole number of at least 1, not {value!r}")
    hidden, heads, kv = settings["hidden_size"], settings["num_attention_heads"], settings["num_key_value_heads"]
    if settings.get("head_dim") is None and hidden % heads:
        raise VocabExtendError(f"pico: hidden_size {hidden} does not split into num_attention_heads {heads} heads: "
                               f"use a multiple of {heads}")
    if heads % kv:
        raise VocabExtendError(f"pico: num_attention_heads {heads} is not a multiple of num_key_value_heads {kv}")


def parse_merge(merge: Any) -> TokenizerMerge | None:
    """The ``tokenizer_merge`` setting from a mapping (``None`` stays ``None``)."""
    if merge is None or isinstance(merge, TokenizerMerge):
        return merge
    if not isinstance(merge, Mapping) or "corpus" not in merge:
        raise VocabExtendError("tokenizer_merge needs at least a corpus, e.g. {corpus: corpora/ja}")
    check_keys(merge, TokenizerMerge, "tokenizer_merge")
    corpus = merge["corpus"]
    if isinstance(corpus, str):
        corpus = [corpus]
    elif not (isinstance(corpus, (list, tuple)) and all(isinstance(c, str) for c in corpus)):
        raise VocabExtendError(f"tokenizer_merge: corpus must be a corpus spec or a list of them (text), not {corpus!r}")
    return TokenizerMerge(**coerce_fields({**merge, "corpus": list(corpus)}, TokenizerMerge, "tokenizer_merge"))


def merged_tokenizer_dir(model: ModelConfig, data: DataConfig) -> Path:
    """Where ``tokenizer_merge`` builds (or has built) its tokenizer."""
    merge = model.tokenizer_merge
    assert merge is not None
    key = json.dumps({"merge": vars(merge), "corpora": [_corpus_fingerprint(c) for c in merge.corpus],
                      "heldout_fraction": data.heldout_fraction}, sort_keys=True)
    return cache_root(data) / "tokenizers" / hashlib.sha256(key.encode()).hexdigest()[:24]


def build_merged_tokenizer(model: ModelConfig, data: DataConfig) -> Path:
    """Run ``vocab-extend merge`` for ``tokenizer_merge`` unless its cached output exists."""
    target = merged_tokenizer_dir(model, data)
    if not (target / "tokenizer.json").is_file():
        merge = model.tokenizer_merge
        assert merge is not None
        target.parent.mkdir(parents=True, exist_ok=True)
        with waiting_lock(target, say=log):  # two runs sharing the cache: one merges, the other waits for it
            if not (target / "tokenizer.json").is_file():
                # the documents the run holds out are held out of the tokenizer's training too (same hash)
                extend_tokenizer(ExtendConfig(base=merge.base, corpus=list(merge.corpus), lang=merge.lang,
                                              new_model_size=merge.vocab_size, output_dir=target, overwrite=True,
                                              heldout_fraction=data.heldout_fraction))
    return target


def tokenizer_source(model: ModelConfig, data: DataConfig) -> str:
    """The tokenizer folder (or model spec) the run's tokenizer is read from."""
    if model.tokenizer_merge is not None:
        return str(merged_tokenizer_dir(model, data))
    if model.tokenizer:
        return model.tokenizer
    if model.name == "pico":
        raise VocabExtendError("model: pico needs a tokenizer: set tokenizer (a folder) or tokenizer_merge")
    return model.name


def base_vocab_size(model: ModelConfig, data: DataConfig) -> int | None:
    """Rows below this are the base model's: from the config, else the merge metadata of the tokenizer."""
    if model.base_vocab_size is not None:
        return model.base_vocab_size
    folder = Path(tokenizer_source(model, data))
    if (folder / METADATA_FILE).is_file():
        return read_metadata(folder).base_vocab_size
    return None


def _embedding_rows(tokenizer, multiple: int | None) -> int:
    return pad_vocab_size(len(tokenizer), multiple)


def build_model(config: ModelConfig, tokenizer, seed: int) -> torch.nn.Module:
    """The starting model in float32 on CPU, in train mode (``seed`` initialises a pico model)."""
    if config.name == "pico":
        model = _pico(config.pico, tokenizer, seed)
    else:
        model = load_model(config.name, device="cpu", dtype=torch.float32)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    return model.train()


def _pico(pico: Mapping[str, Any], tokenizer, seed: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    settings = {**PICO_DEFAULTS, **pico}
    settings.setdefault("vocab_size", _embedding_rows(tokenizer, settings.pop("pad_to_multiple_of", None)))
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        settings.setdefault(name, getattr(tokenizer, name, None))
    unknown = sorted(set(settings) - set(LlamaConfig().to_dict()))
    if unknown:
        raise VocabExtendError(f"pico: {unknown[0]!r} is not a LlamaConfig setting (hidden_size, "
                               "num_hidden_layers, num_attention_heads... are)")
    torch.manual_seed(seed)
    try:
        return LlamaForCausalLM(LlamaConfig(**settings))
    except Exception as exc:  # transformers raises its own validation errors, not only ValueError
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[-1].split(": ", 1)[-1] if lines else type(exc).__name__  # the cause, after the field
        raise VocabExtendError(f"the pico settings are not a valid LlamaConfig ({reason})") from None


def check_fit(model: torch.nn.Module, tokenizer, block_size: int, eval_block_size: int | None = None) -> None:
    """Tokenizer/model vocabulary and block sizes/context checks, one sentence each."""
    check_vocabulary_fits(model, tokenizer)
    context = getattr(model.config, "max_position_embeddings", None)
    for name, size in (("block_size", block_size), ("eval_block_size", eval_block_size)):
        if context is not None and size is not None and size > context:
            raise VocabExtendError(
                f"{name} {size} is beyond the model's context of {context} tokens: lower {name}"
            )
