"""The tokenizer and model a run starts from, and the checks that they fit together and the data.

``model: pico`` builds a tiny LLaMA in code, sized to the tokenizer (settings under ``pico:``); any other
value is loaded by :func:`vocab_extend.models.load_model` (a folder written by ``vocab-extend init-model``,
a GGUF file, the alias ``smollm2-135m`` or a Hub id) in float32. ``tokenizer_merge:`` builds the tokenizer
with ``vocab-extend merge`` into the cache (once per settings).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from ..console import log
from ..errors import VocabExtendError
from ..locks import waiting_lock
from ..metadata import METADATA_FILE, pad_vocab_size, read_metadata
from ..model.loading import load_model
from ..model.sizing import check_vocabulary_fits
from ..tokenizer.job import ExtendConfig, extend_tokenizer
from .config import PretrainConfig
from .data import _corpus_fingerprint, default_cache_dir

PICO_DEFAULTS: dict[str, Any] = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    max_position_embeddings=512, tie_word_embeddings=False, rms_norm_eps=1e-5,
)


def merged_tokenizer_dir(config: PretrainConfig) -> Path:
    """Where ``tokenizer_merge`` builds (or has built) its tokenizer."""
    merge = config.tokenizer_merge
    assert merge is not None
    key = json.dumps({"merge": vars(merge), "corpora": [_corpus_fingerprint(c) for c in merge.corpus],
                      "heldout_fraction": config.heldout_fraction}, sort_keys=True)
    root = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
    return root / "tokenizers" / hashlib.sha256(key.encode()).hexdigest()[:24]


def build_merged_tokenizer(config: PretrainConfig) -> Path:
    """Run ``vocab-extend merge`` for ``tokenizer_merge`` unless its cached output exists."""
    target = merged_tokenizer_dir(config)
    if not (target / "tokenizer.json").is_file():
        merge = config.tokenizer_merge
        assert merge is not None
        target.parent.mkdir(parents=True, exist_ok=True)
        with waiting_lock(target, say=log):  # two runs sharing the cache: one merges, the other waits for it
            if not (target / "tokenizer.json").is_file():
                # the documents the run holds out are held out of the tokenizer's training too (same hash)
                extend_tokenizer(ExtendConfig(base=merge.base, corpus=list(merge.corpus), lang=merge.lang,
                                              new_model_size=merge.vocab_size, output_dir=target, overwrite=True,
                                              heldout_fraction=config.heldout_fraction))
    return target


def tokenizer_source(config: PretrainConfig) -> str:
    if config.tokenizer_merge is not None:
        return str(merged_tokenizer_dir(config))
    if config.tokenizer:
        return config.tokenizer
    if config.model == "pico":
        raise VocabExtendError("model: pico needs a tokenizer: set tokenizer (a folder) or tokenizer_merge")
    return config.model


def base_vocab_size(config: PretrainConfig) -> int | None:
    """Rows below this are the base model's: from the config, else the merge metadata of the tokenizer."""
    if config.base_vocab_size is not None:
        return config.base_vocab_size
    folder = Path(tokenizer_source(config))
    if (folder / METADATA_FILE).is_file():
        return read_metadata(folder).base_vocab_size
    return None


def _embedding_rows(tokenizer, multiple: int | None) -> int:
    return pad_vocab_size(len(tokenizer), multiple)


def build_model(config: PretrainConfig, tokenizer) -> torch.nn.Module:
    """The starting model in float32 on CPU, in train mode; checked against tokenizer and block size."""
    if config.model == "pico":
        from transformers import LlamaConfig, LlamaForCausalLM

        settings = {**PICO_DEFAULTS, **config.pico}
        settings.setdefault("vocab_size", _embedding_rows(tokenizer, settings.pop("pad_to_multiple_of", None)))
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            settings.setdefault(name, getattr(tokenizer, name, None))
        unknown = sorted(set(settings) - set(LlamaConfig().to_dict()))
        if unknown:
            raise VocabExtendError(f"pico: {unknown[0]!r} is not a LlamaConfig setting (hidden_size, "
                                   "num_hidden_layers, num_attention_heads... are)")
        torch.manual_seed(config.seed)
        try:
            model = LlamaForCausalLM(LlamaConfig(**settings))
        except Exception as exc:  # transformers raises its own validation errors, not only ValueError
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise VocabExtendError(f"the pico settings are not a valid LlamaConfig ({reason})") from None
    else:
        model = load_model(config.model, device="cpu", dtype=torch.float32)
    check_fit(model, tokenizer, config.block_size, config.eval_block_size)
    return model.train()


def check_fit(model: torch.nn.Module, tokenizer, block_size: int, eval_block_size: int | None = None) -> None:
    """Tokenizer/model vocabulary and block sizes/context checks, one sentence each."""
    check_vocabulary_fits(model, tokenizer)
    context = getattr(model.config, "max_position_embeddings", None)
    for name, size in (("block_size", block_size), ("eval_block_size", eval_block_size)):
        if context is not None and size is not None and size > context:
            raise VocabExtendError(
                f"{name} {size} is beyond the model's context of {context} tokens: lower {name}"
            )
