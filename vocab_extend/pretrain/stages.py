"""What learns in each stage: ``new-rows``, ``embeddings``, ``lora``, ``full``.

:func:`prepare_stage` freezes and unfreezes parameters (wrapping the model with peft LoRA for ``lora``) and
returns the model to train and its trainable parameters; :func:`finish_stage` undoes the stage's shape when
it ends (LoRA merged into the weights, split rows joined back).

``new-rows`` holds the base rows of the embeddings and lm_head as frozen parameters and the added rows as
parameters of their own (:mod:`.rows`): only the new rows have gradients and AdamW state, and the base rows
stay bit-identical whatever the weight decay. ``embeddings`` with ``split_rows: true`` uses the same split
with both halves trainable, so ``new_rows_lr`` can give the new rows their own learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import VocabExtendError
from .config import StageConfig
from .rows import has_split_rows, join_rows, split_rows


@dataclass
class PreparedStage:
    model: torch.nn.Module  # the model to train (a peft model in a lora stage)
    params: list[torch.nn.Parameter]  # trainable, deduplicated (tied embeddings appear once)
    no_decay: set[int] = field(default_factory=set)  # ids of parameters that must not get weight decay
    lr: dict[int, float] = field(default_factory=dict)  # ids of parameters with a learning rate of their own

    @property
    def trainable(self) -> int:
        """Parameters that learn (elements; a parameter shared by two modules counts once)."""
        return sum(p.numel() for p in self.params)


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
    if stage.split_rows and stage.name != "embeddings":
        raise VocabExtendError(f"split_rows is a setting of the embeddings stage (new-rows always splits), "
                               f"not of {stage.name}")
    if stage.name == "embeddings" and stage.split_rows:
        check_stage(model, StageConfig("new-rows", stage.steps), base_vocab_size)
    if stage.new_rows_lr is not None and not (stage.name == "new-rows" or stage.split_rows):
        raise VocabExtendError("new_rows_lr needs the new rows as their own parameters: use it in a new-rows "
                               "stage or an embeddings stage with split_rows: true")
    if stage.name not in ("full", "embeddings", "new-rows", "lora"):  # config validation makes this unreachable
        raise VocabExtendError(f"unknown stage {stage.name!r}")


def prepare_stage(model: torch.nn.Module, stage: StageConfig, base_vocab_size: int | None) -> PreparedStage:
    """Set up ``model`` for ``stage``; see the module docstring."""
    check_stage(model, stage, base_vocab_size)
    for p in model.parameters():
        p.requires_grad_(False)
    matrices = embedding_matrices(model)
    lr: dict[int, float] = {}
    if stage.name == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    elif stage.name == "new-rows" or stage.split_rows:
        assert base_vocab_size is not None  # check_stage
        new = split_rows(model, base_vocab_size, train_base=stage.name == "embeddings")
        if stage.new_rows_lr is not None:
            lr = {id(p): stage.new_rows_lr for p in new}
    elif stage.name == "embeddings":
        for p in matrices:
            p.requires_grad_(True)
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
    return PreparedStage(model, params, lr=lr)


def _unique(params) -> list[torch.nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def finish_stage(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model after a stage: LoRA merged into the weights, split rows joined back."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    if has_split_rows(model):
        model = join_rows(model)
    for p in model.parameters():
        p.requires_grad_(False)
    return model

