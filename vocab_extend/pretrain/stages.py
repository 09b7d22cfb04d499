"""What learns in each stage: one small class per stage, found by name in :data:`STAGES`.

A :class:`Stage` says which parameters train (:meth:`Stage.prepare`), what must hold before the run writes
anything (:meth:`Stage.check`), how its trainable parameters are found again once the model is sharded
(:meth:`Stage.rebind`) and how its shape is undone when it ends (:meth:`Stage.finish`: LoRA merged into the
weights, split rows joined back). Adding a stage is one class and one line in :data:`STAGES`
(``docs/pretraining.md`` has the recipe).

- ``new-rows``: only the rows of embeddings and lm_head that a merge added learn. The base rows are frozen
  parameters of their own (:mod:`.rows`): no gradient, no AdamW state, bit-identical whatever the weight
  decay.
- ``embeddings``: embeddings + lm_head (Chinese-LLaMA stage 1); ``split_rows: true`` holds base and new
  rows apart (both trained) so that ``new_rows_lr`` can give the new rows their own learning rate.
- ``lora``: peft LoRA on attention and MLP plus trainable embeddings/lm_head (stage 2).
- ``full``: every parameter.

>>> sorted(STAGES)
['embeddings', 'full', 'lora', 'new-rows']
>>> stage_for(StageConfig("full", 3)).name
'full'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Iterable, Mapping

import torch

from ..errors import VocabExtendError
from .fields import check_keys, coerce_fields
from .rows import has_split_rows, join_rows, split_rows

# LLaMA/Mistral/SmolLM2 names of the attention and MLP projections (LoRA targets).
DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class StageConfig:
    """One entry of the ``stages`` section; unset optimiser settings inherit those of the ``optim`` section.

    The settings after ``weight_decay`` belong to some stages only (:attr:`Stage.settings` says which).
    """

    name: str
    steps: int
    lr: float | None = None
    warmup_steps: int | None = None
    min_lr_ratio: float | None = None
    weight_decay: float | None = None
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))
    split_rows: bool = False  # embeddings stage: base and new rows as separate parameters
    new_rows_lr: float | None = None  # new-rows / split embeddings: the new rows' learning rate


@dataclass
class PreparedStage:
    model: torch.nn.Module  # the model to train (a peft model in a lora stage)
    params: list[torch.nn.Parameter]  # trainable, deduplicated (tied embeddings appear once)
    no_decay: set[int] = field(default_factory=set)  # ids of parameters that must not get weight decay
    lr: dict[int, float] = field(default_factory=dict)  # ids of parameters with a learning rate of their own
    names: dict[int, str] = field(default_factory=dict)  # id -> name, taken before any wrapping

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


def _unique(params: Iterable[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


class Stage:
    """A stage of training; subclasses set :attr:`name` and :meth:`unfreeze` (and maybe the others)."""

    name: ClassVar[str] = ""
    settings: ClassVar[tuple[str, ...]] = ()  # stage-only settings of StageConfig this stage accepts

    def __init__(self, config: StageConfig) -> None:
        self.config = config

    def check_settings(self) -> None:
        """Refuse settings out of range, before any model or data is loaded (one sentence each)."""
        rate = self.config.new_rows_lr
        if rate is not None and rate <= 0:
            raise VocabExtendError(f"stage {self.name}: new_rows_lr must be positive, not {rate!r}")

    def check(self, model: torch.nn.Module, base_rows: int | None) -> None:
        """Raise what :meth:`prepare` would raise, without touching ``model`` (the run checks every stage
        before it writes anything, so a bad stage never leaves a half-started run)."""
        defaults = StageConfig(self.config.name, 0)
        for name in ("split_rows", "new_rows_lr"):
            if name not in self.settings and getattr(self.config, name) != getattr(defaults, name):
                raise VocabExtendError(_MISPLACED[name].format(stage=self.name))

    def unfreeze(self, model: torch.nn.Module, base_rows: int | None) -> tuple[torch.nn.Module, dict[int, float]]:
        """Make the stage's parameters trainable (all are frozen on entry); return the model to train and
        the learning rates of parameters that have their own."""
        raise NotImplementedError

    def prepare(self, model: torch.nn.Module, base_rows: int | None) -> PreparedStage:
        """Set up ``model`` for this stage: freeze everything, then :meth:`unfreeze` what learns."""
        self.check(model, base_rows)
        for p in model.parameters():
            p.requires_grad_(False)
        model, lr = self.unfreeze(model, base_rows)
        params = [p for p in _unique(model.parameters()) if p.requires_grad]
        names = {id(p): n for n, p in model.named_parameters()}
        return PreparedStage(model, params, lr=lr, names=names)

    def rebind(self, prepared: PreparedStage, wrapped: torch.nn.Module) -> PreparedStage:
        """``prepared`` with its parameters replaced by those ``wrapped`` (the model sharded) holds now,
        found by the names they had before sharding; per-parameter settings follow them."""
        now = dict(wrapped.named_parameters())
        new = {id(p): now[prepared.names[id(p)]] for p in prepared.params}
        return PreparedStage(prepared.model, [new[id(p)] for p in prepared.params],
                             no_decay={id(new[i]) for i in prepared.no_decay},
                             lr={id(new[i]): v for i, v in prepared.lr.items()}, names=prepared.names)

    def finish(self, model: torch.nn.Module) -> torch.nn.Module:
        """The plain model after the stage: LoRA merged into the weights, split rows joined, all frozen."""
        return finish_stage(model)


_MISPLACED = {
    "split_rows": "split_rows is a setting of the embeddings stage (new-rows always splits), not of {stage}",
    "new_rows_lr": "new_rows_lr needs the new rows as their own parameters: use it in a new-rows stage or an "
                   "embeddings stage with split_rows: true",
}


def _check_new_rows(model: torch.nn.Module, base_rows: int | None) -> int:
    rows = embedding_matrices(model)[0].shape[0]
    if base_rows is None:
        raise VocabExtendError("the new-rows stage needs the base vocabulary size: use a tokenizer folder written "
                               "by `vocab-extend merge` or set base_vocab_size")
    if not 0 < base_rows < rows:
        raise VocabExtendError(f"base_vocab_size {base_rows} leaves no new rows in embeddings of {rows} rows: "
                               "the new-rows stage needs an extended model")
    return base_rows


class FullStage(Stage):
    """Every parameter learns."""

    name = "full"

    def unfreeze(self, model, base_rows):
        for p in model.parameters():
            p.requires_grad_(True)
        return model, {}


class NewRowsStage(Stage):
    """Only the added rows of embeddings and lm_head learn, as parameters of their own."""

    name = "new-rows"
    settings = ("new_rows_lr",)

    def check(self, model, base_rows):
        super().check(model, base_rows)
        _check_new_rows(model, base_rows)

    def unfreeze(self, model, base_rows):
        new = split_rows(model, _check_new_rows(model, base_rows), train_base=False)
        rate = self.config.new_rows_lr
        return model, ({id(p): rate for p in new} if rate is not None else {})


class EmbeddingsStage(Stage):
    """Embeddings + lm_head learn; ``split_rows`` holds base and new rows apart (``new_rows_lr``)."""

    name = "embeddings"
    settings = ("split_rows", "new_rows_lr")

    def check(self, model, base_rows):
        if self.config.new_rows_lr is not None and not self.config.split_rows:
            raise VocabExtendError(_MISPLACED["new_rows_lr"])
        if self.config.split_rows:
            _check_new_rows(model, base_rows)

    def unfreeze(self, model, base_rows):
        if not self.config.split_rows:
            for p in embedding_matrices(model):
                p.requires_grad_(True)
            return model, {}
        new = split_rows(model, _check_new_rows(model, base_rows), train_base=True)
        rate = self.config.new_rows_lr
        return model, ({id(p): rate for p in new} if rate is not None else {})


class LoraStage(Stage):
    """peft LoRA on the attention and MLP projections, plus trainable embeddings/lm_head."""

    name = "lora"
    settings = ("lora_r", "lora_alpha", "lora_dropout", "lora_targets")

    def targets(self, model: torch.nn.Module) -> list[str]:
        present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        targets = [t for t in self.config.lora_targets if t in present]
        if not targets:
            raise VocabExtendError(f"none of the LoRA targets {self.config.lora_targets} is a module of this "
                                   "model: set lora_targets in the stage")
        return targets

    def check_settings(self):
        super().check_settings()
        c = self.config
        if c.lora_r < 1 or c.lora_alpha <= 0 or not 0 <= c.lora_dropout < 1:
            raise VocabExtendError(f"stage {self.name}: lora_r must be positive, lora_alpha positive and "
                                   f"lora_dropout in [0, 1), not {c.lora_r}, {c.lora_alpha}, {c.lora_dropout}")

    def check(self, model, base_rows):
        super().check(model, base_rows)
        self.targets(model)

    def unfreeze(self, model, base_rows):
        from peft import LoraConfig, get_peft_model

        c = self.config
        lora = LoraConfig(r=c.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout,
                          target_modules=self.targets(model), bias="none", task_type="CAUSAL_LM")
        matrices = embedding_matrices(model)
        model = get_peft_model(model, lora)
        for p in matrices:  # trainable embeddings/lm_head in place, as Chinese-LLaMA stage 2
            p.requires_grad_(True)
        return model, {}


# name -> class: adding a stage is a class above and a line here
STAGES: dict[str, type[Stage]] = {
    FullStage.name: FullStage,
    NewRowsStage.name: NewRowsStage,
    EmbeddingsStage.name: EmbeddingsStage,
    LoraStage.name: LoraStage,
}


def stage_for(config: StageConfig) -> Stage:
    """The stage that ``config`` names."""
    try:
        return STAGES[config.name](config)
    except KeyError:
        raise VocabExtendError(f"unknown stage {config.name!r}: choose one of {', '.join(STAGES)}") from None


def check_stage(model: torch.nn.Module, stage: StageConfig, base_vocab_size: int | None) -> None:
    """Raise the error :func:`prepare_stage` would raise for ``stage``, without touching ``model``."""
    stage_for(stage).check(model, base_vocab_size)


def prepare_stage(model: torch.nn.Module, stage: StageConfig, base_vocab_size: int | None) -> PreparedStage:
    """Set up ``model`` for ``stage`` (see :class:`Stage`)."""
    return stage_for(stage).prepare(model, base_vocab_size)


def finish_stage(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model after any stage: LoRA merged into the weights, split rows joined back, all frozen."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    if has_split_rows(model):
        model = join_rows(model)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def parse_stages(value: Any) -> list[StageConfig]:
    """The ``stages`` section from a list of mappings, or the shorthand ``"embeddings:100,lora:200"``.

    >>> [(s.name, s.steps) for s in parse_stages("new-rows:5,full:3")]
    [('new-rows', 5), ('full', 3)]
    """
    if isinstance(value, str):
        value = [dict(zip(("name", "steps"), part.strip().split(":", 1))) for part in value.split(",")]
    if not isinstance(value, list) or not value:
        raise VocabExtendError("stages must be a non-empty list of {name, steps} or a string like 'embeddings:100'")
    return [_parse_stage(item) for item in value]


def _parse_stage(item: Any) -> StageConfig:
    if isinstance(item, StageConfig):
        item = asdict(item)
    if not isinstance(item, Mapping) or "name" not in item or "steps" not in item:
        raise VocabExtendError(f"stage {item!r} needs a name and a number of steps, e.g. embeddings:100")
    check_keys(item, StageConfig, "stage")
    stage = StageConfig(**coerce_fields(dict(item), StageConfig, f"stage {item.get('name')}"))
    try:
        stage.steps = int(stage.steps)
    except (TypeError, ValueError):
        raise VocabExtendError(f"stage {stage.name} has steps {stage.steps!r}: give a whole number") from None
    if stage.steps < 0:
        raise VocabExtendError(f"stage {stage.name} has {stage.steps} steps: give zero or more")
    stage_for(stage).check_settings()
    return stage
