"""An extended LLaMA-architecture HF model folder as one GGUF file for llama.cpp (``vocab-extend export-gguf``,
whose options are in :mod:`.cli`).

The folder is what ``vocab-extend init-model`` (or ``pretrain``) writes, or a plain LLaMA (or Mistral) HF folder:
``config.json``, ``model.safetensors`` (or shards with an index) and the tokenizer files. The file holds

- the LLaMA hyper-parameters llama.cpp reads (context, embedding and feed-forward lengths, blocks, heads,
  rope base, RMS epsilon, vocabulary size, file type);
- the tokenizer (:mod:`vocab_extend.gguf_vocab`), with exactly one entry per embedding row;
- the weights under llama.cpp's names (``token_embd``, ``blk.N.attn_q`` ..., ``output`` unless tied), with
  q/k rows reordered from the HF rotary layout (first halves, then second halves of each head) to GGML's
  (interleaved pairs), which is the layout llama.cpp's rope kernel expects.

Outtypes: ``f32`` (exact), ``f16`` (matrices in half precision, norms in f32) and ``q8_0`` (matrices in
blocks of 32 int8 with one f16 scale; matrices whose rows are not a multiple of 32 stay f16).

Invariants: bad input is one sentence before any tensor is read; the file appears complete or not at all
(written to a hidden temporary name beside it and renamed; a failed write closes and removes it); the input
folder is never changed. A progress bar counts the bytes of tensor data written (about 25 s for SmolLM2 f16 on
2 cores).

>>> permute_rotary(np.arange(8.0).reshape(8, 1), heads=1).ravel().tolist()
[0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ...atomic import atomic_file
from ...errors import VocabExtendError
from ...jsonfile import read_json_object
from ...locks import output_lock
from .gguf_vocab import read_vocab

OUTTYPES = ("f32", "f16", "q8_0")
# model types whose weights are LLaMA's under the same names; llama.cpp runs both as its "llama" architecture
# (Mistral's sliding window is not stored: llama.cpp attends over the whole context)
_LLAMA_TYPES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM"}
_Q8_BLOCK = 32


@dataclass(frozen=True)
class ExportSummary:
    output: Path
    outtype: str
    tokenizer_model: str  # "llama" or "gpt2"
    pre: str | None
    rows: int
    padding: int
    tensors: int
    bytes: int


def export_gguf(model_dir: str | Path, output: str | Path, outtype: str = "f16", *, pre: str | None = None,
                overwrite: bool = False) -> ExportSummary:
    """Write ``model_dir`` as the GGUF file ``output``; see the module docstring for what it holds."""
    import gguf

    model_dir, output = Path(model_dir), Path(output)
    if outtype not in OUTTYPES:
        raise VocabExtendError(f"unknown --outtype {outtype!r}: choose one of {', '.join(OUTTYPES)}")
    if pre is not None and not pre.strip():
        raise VocabExtendError("--pre needs a llama.cpp pre-tokenizer name such as smollm or llama-bpe")
    if not model_dir.is_dir():
        raise VocabExtendError(f"model folder {model_dir} does not exist" if not model_dir.exists()
                               else f"{model_dir} is a file: --model takes a model folder")
    _check_output(output, overwrite, model_dir)
    config = _read_config(model_dir)
    weights = _Weights(model_dir)
    plan = _plan_tensors(config, weights)
    rows = plan["token_embd.weight"][1][0]
    vocab = read_vocab(model_dir, rows, pre=pre)

    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[outtype]
    output.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(output):  # a second export to the same file gets one sentence
        _write(output, model_dir, config, weights, plan, vocab, file_type, outtype, rows)
    return ExportSummary(output, outtype, vocab.model, vocab.pre, rows, vocab.padding, len(plan),
                         output.stat().st_size)


def _write(output: Path, model_dir: Path, config: dict[str, Any], weights, plan, vocab, file_type, outtype: str,
           rows: int) -> None:
    """The GGUF file, written under a temporary name and renamed into place when complete."""
    import gguf

    kinds = {name: _storage(name, shape, outtype) for name, (_, shape) in plan.items()}
    sizes = {name: _nbytes(shape, kinds[name]) for name, (_, shape) in plan.items()}
    with atomic_file(output) as tmp:
        writer = gguf.GGUFWriter(tmp, "llama")
        try:
            _write_hparams(writer, config, model_dir.name, rows, file_type)
            vocab.write(writer)
            for name, (_, shape) in plan.items():
                qtype = kinds[name]
                writer.add_tensor_info(name, shape, np.float32 if qtype == gguf.GGMLQuantizationType.F32 else
                                       np.float16, sizes[name], raw_dtype=qtype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            with tqdm(total=sum(sizes.values()), desc=f"writing {output.name} ({outtype})", unit="B",
                      unit_scale=True, unit_divisor=1024, mininterval=1.0) as bar:
                for name, (source, _) in plan.items():
                    array = _convert(name, weights.load(source), config)
                    writer.write_tensor_data(_encode(array, kinds[name]))
                    bar.update(sizes[name])
        finally:
            writer.close()  # a failed write closes the file before atomic_file removes it


def permute_rotary(weight: np.ndarray, heads: int) -> np.ndarray:
    """Reorder q/k projection rows from HF's rotary layout to GGML's, head by head.

    HF rotates dimension i with i + d/2 inside each head of d dimensions; GGML rotates 2i with 2i + 1. Row
    ``h*d + j`` (first half, j < d/2) moves to ``h*d + 2j`` and row ``h*d + d/2 + j`` to ``h*d + 2j + 1``.
    """
    rows = weight.shape[0]
    return (weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def _check_output(output: Path, overwrite: bool, model_dir: Path) -> None:
    if output.is_dir():
        raise VocabExtendError(f"--output {output} is a folder: give a file name such as model.gguf")
    inside = output.resolve().is_relative_to(model_dir.resolve())
    if output.exists() and inside and output.suffix != ".gguf":
        raise VocabExtendError(f"--output {output} is a file of the model folder {model_dir}, an input of this "
                               "command (--overwrite would replace it): choose another --output")
    if output.exists() and not overwrite:
        raise VocabExtendError(f"{output} already exists: pass --overwrite or choose another --output")
    for parent in output.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise VocabExtendError(f"--output {output} would be inside {parent}, which is a file")
            break


def _read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    if not path.is_file():
        raise VocabExtendError(f"{model_dir} has no config.json: give a Hugging Face model folder")
    config = read_json_object(path)
    architectures = config.get("architectures") or []
    if config.get("model_type") not in _LLAMA_TYPES or any(a not in _LLAMA_TYPES.values() for a in architectures):
        kind = config.get("model_type") or "unknown"
        raise VocabExtendError(f"{model_dir} holds a {kind!r} model ({', '.join(architectures) or 'no architecture'}):"
                               " export-gguf writes LLaMA-architecture models (model_type 'llama' or 'mistral') only")
    for flag in ("attention_bias", "mlp_bias"):
        if config.get(flag):
            raise VocabExtendError(f"{model_dir} sets {flag}: export-gguf writes LLaMA models without biases only")
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        if not isinstance(config.get(key), int):
            raise VocabExtendError(f"{path} has no integer {key}: the folder is not a complete LLaMA config")
    rope = config.get("rope_scaling") or config.get("rope_parameters") or {}
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    if rope_type not in ("default", "linear"):
        raise VocabExtendError(f"{model_dir} uses rope type {rope_type!r}: export-gguf handles the default and "
                               "linear rope only")
    return config


class _Weights:
    """The safetensors weights of a folder (one file or shards), read one tensor at a time."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors import safe_open

        single, index = model_dir / "model.safetensors", model_dir / "model.safetensors.index.json"
        if single.is_file():
            files = [single]
        elif index.is_file():
            try:
                mapping = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            except (OSError, ValueError, KeyError) as exc:
                raise VocabExtendError(f"{index} is damaged ({exc})") from None
            files = sorted({model_dir / f for f in mapping.values()})
        else:
            raise VocabExtendError(f"{model_dir} has no model.safetensors: save the model with safetensors "
                                   "(save_pretrained does by default)")
        self.shapes: dict[str, list[int]] = {}
        self._files: dict[str, Path] = {}
        for file in files:
            try:
                with safe_open(str(file), framework="pt") as handle:
                    for name in handle.keys():
                        self.shapes[name] = list(handle.get_slice(name).get_shape())
                        self._files[name] = file
            except Exception as exc:  # noqa: BLE001 - safetensors raises several types on a bad file
                raise VocabExtendError(f"{file} is not a readable safetensors file ({exc})") from None

    def load(self, name: str) -> np.ndarray:
        import torch
        from safetensors import safe_open

        with safe_open(str(self._files[name]), framework="pt") as handle:
            return handle.get_tensor(name).to(torch.float32).numpy()


def _plan_tensors(config: dict[str, Any], weights: _Weights) -> dict[str, tuple[str, list[int]]]:
    """GGUF name -> (HF name, shape) in writing order; refuses tensors a plain LLaMA does not have."""
    import gguf

    blocks = config["num_hidden_layers"]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, blocks)
    tied = bool(config.get("tie_word_embeddings")) or "lm_head.weight" not in weights.shapes
    plan: dict[str, tuple[str, list[int]]] = {}
    for hf_name, shape in weights.shapes.items():
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight",))
        if gguf_name is None:
            raise VocabExtendError(f"the weights hold {hf_name}, which a plain LLaMA model does not have: "
                                   "export-gguf writes LLaMA-architecture models only")
        plan[gguf_name] = (hf_name, shape)
    embd = plan.get("token_embd.weight")
    if embd is None:
        raise VocabExtendError("the weights have no model.embed_tokens.weight: the folder is not a LLaMA model")
    expected = {"output_norm.weight", *(f"blk.{i}.{p}.weight" for i in range(blocks) for p in (
        "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "attn_norm", "ffn_norm"))}
    missing = sorted(expected - set(plan))
    if missing:
        raise VocabExtendError(f"the weights lack {missing[0]} ({len(missing)} missing): the folder is incomplete")
    if "output.weight" in plan and plan["output.weight"][1][0] != embd[1][0]:
        raise VocabExtendError(f"lm_head has {plan['output.weight'][1][0]:,} rows but the embedding "
                               f"{embd[1][0]:,}: resize both with `vocab-extend init-model`")
    order = ["token_embd.weight", *sorted((n for n in plan if n.startswith("blk.")), key=_block_key),
             "output_norm.weight", *(["output.weight"] if "output.weight" in plan else [])]
    return {name: plan[name] for name in order}


def _block_key(name: str) -> tuple[int, str]:
    _, index, rest = name.split(".", 2)
    return int(index), rest


def _write_hparams(writer, config: dict[str, Any], name: str, rows: int, file_type: int) -> None:
    import gguf

    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    rope = config.get("rope_scaling") or config.get("rope_parameters") or {}
    theta = config.get("rope_theta") or rope.get("rope_theta") or 10000.0
    writer.add_name(name)
    writer.add_context_length(int(config.get("max_position_embeddings") or 2048))
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config["hidden_size"] // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_rope_freq_base(float(theta))
    if (rope.get("rope_type") or rope.get("type")) == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps") or 1e-6))
    writer.add_vocab_size(rows)
    writer.add_file_type(int(file_type))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _convert(name: str, array: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    heads = config["num_attention_heads"]
    if name.endswith("attn_q.weight"):
        return permute_rotary(array, heads)
    if name.endswith("attn_k.weight"):
        return permute_rotary(array, config.get("num_key_value_heads") or heads)
    return array


def _storage(name: str, shape: list[int], outtype: str):
    import gguf

    if outtype == "f32" or len(shape) == 1:
        return gguf.GGMLQuantizationType.F32  # norms stay f32, as llama.cpp keeps them
    if outtype == "q8_0" and shape[-1] % _Q8_BLOCK == 0:
        return gguf.GGMLQuantizationType.Q8_0
    return gguf.GGMLQuantizationType.F16


def _nbytes(shape: list[int], qtype) -> int:
    import gguf

    block, size = gguf.GGML_QUANT_SIZES[qtype]
    return int(np.prod(shape)) // block * size


def _encode(array: np.ndarray, qtype) -> np.ndarray:
    import gguf

    if qtype == gguf.GGMLQuantizationType.F32:
        return np.ascontiguousarray(array, dtype=np.float32)
    if qtype == gguf.GGMLQuantizationType.F16:
        return np.ascontiguousarray(array, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(array, dtype=np.float32), qtype)
