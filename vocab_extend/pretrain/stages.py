"""What learns in each stage: ``new-rows``, ``embeddings``, ``lora``, ``full``.

:func:`prepare_stage` freezes and unfreezes parameters (wrapping the model with peft LoRA for ``lora``) and
returns the model to train, its trainable parameters and a gradient mask to apply after every backward
pass; :func:`finish_stage` merges LoRA into the weights when a ``lora`` stage ends.

The ``new-rows`` mask zeroes the gradient of the base rows of the embeddings and lm_head. With AdamW a
parameter entry whose gradient is always zero gets exactly zero update (its moments stay zero) as long as
its weight decay is zero, so the stage uses no weight decay on those matrices and the base rows stay
bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import VocabExtendError
from .config import StageConfig


@dataclass
class PreparedStage:
    model: torch.nn.Module  # the model to train (a peft model in a lora stage)
    params: list[torch.nn.Parameter]  # trainable, deduplicated (tied embeddings appear once)
    no_decay: set[int]  # ids of parameters that must not get weight decay
    mask_grads: Callable[[], None]  # call after backward, before clipping
    frozen_rows: int = 0  # new-rows: the base rows of each trainable matrix, which the mask keeps fixed

    @property
    def trainable(self) -> int:
        """Parameters that actually learn (the masked base rows not counted)."""
        return sum(p.numel() - self.frozen_rows * p[0].numel() for p in self.params)


def embedding_matrices(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The input embedding and lm_head weights, once each (one matrix when they are tied)."""
    found: list[torch.nn.Parameter] = []
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        weight = getattr(module, "weight", None) if module is not None else None
        if weight is not None and all(weight is not w for w in found):
            found.append(weight)
    return found


def _lora_targets(model: torch.nn.Module, wanted: list[str]) -> list[str]:
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in wanted if t in present]
    if not targets:
        raise VocabExtendError(
            f"none of the LoRA targets {wanted} is a module of this model: set lora_targets in the stage"
        )
    return targets


def check_stage(model: torch.nn.Module, stage: StageConfig, base_vocab_size: int | None) -> None:
    """Raise the error :func:`prepare_stage` would raise for ``stage``, without touching ``model``.

    The run checks every stage before it writes anything, so a bad stage never leaves a half-started run.
    """
    if stage.name == "lora":
        _lora_targets(model, stage.lora_targets)
    elif stage.name == "new-rows":
        rows = embedding_matrices(model)[0].shape[0]
        if base_vocab_size is None:
            raise VocabExtendError(
                "the new-rows stage needs the base vocabulary size: use a tokenizer folder written by "
                "`vocab-extend merge` or set base_vocab_size"
            )
        if not 0 < base_vocab_size < rows:
            raise VocabExtendError(
                f"base_vocab_size {base_vocab_size} leaves no new rows in embeddings of {rows} rows: "
                "the new-rows stage needs an extended model"
            )
    elif stage.name not in ("full", "embeddings"):  # config validation makes this unreachable
        raise VocabExtendError(f"unknown stage {stage.name!r}")


def prepare_stage(model: torch.nn.Module, stage: StageConfig, base_vocab_size: int | None) -> PreparedStage:
    """Set up ``model`` for ``stage``; see the module docstring."""
    check_stage(model, stage, base_vocab_size)
    for p in model.parameters():
        p.requires_grad_(False)
    matrices = embedding_matrices(model)
    mask: Callable[[], None] = lambda: None
    no_decay: set[int] = set()
    if stage.name == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    elif stage.name in ("embeddings", "new-rows"):
        for p in matrices:
            p.requires_grad_(True)
        if stage.name == "new-rows":
            assert base_vocab_size is not None  # check_stage
            no_decay = {id(p) for p in matrices}

            def mask() -> None:
                for p in matrices:
                    if p.grad is not None:
                        p.grad[:base_vocab_size].zero_()

    elif stage.name == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=stage.lora_r, lora_alpha=stage.lora_alpha, lora_dropout=stage.lora_dropout,
            target_modules=_lora_targets(model, stage.lora_targets), bias="none", task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
        for p in matrices:  # trainable embeddings/lm_head in place, as Chinese-LLaMA stage 2
            p.requires_grad_(True)
    params = [p for p in _unique(model.parameters()) if p.requires_grad]
    frozen = base_vocab_size if stage.name == "new-rows" and base_vocab_size else 0
    return PreparedStage(model, params, no_decay, mask, frozen)


def _unique(params) -> list[torch.nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def finish_stage(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model after a stage: LoRA merged into the weights (a no-op for other stages)."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def is_lora(model: torch.nn.Module) -> bool:
    return hasattr(model, "merge_and_unload")
