"""The continued-pretraining config: a YAML file, overridable key by key from the command line.

Every top-level key of :class:`PretrainConfig` may appear in the YAML file and be overridden as
``--key value`` (dashes or underscores); values are parsed as YAML, so ``--max-steps 20``,
``--precision bf16``, ``--eval "{ja: corpora/ja}"`` and ``--stages "embeddings:100,lora:200"`` all work.
Unknown keys are rejected with the closest known key.

>>> cfg = config_from_dict({"model": "pico", "train": ["corpora/ja"], "stages": "new-rows:5,full:3"})
>>> [(s.name, s.steps) for s in cfg.stages], cfg.total_steps
([('new-rows', 5), ('full', 3)], 8)
>>> apply_overrides(cfg, {"max_steps": "6"}).total_steps
6
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..corpus import parse_named_spec
from ..errors import VocabExtendError
from ..families.interface import MAX_NEW_MODEL_SIZE
from .fields import check_keys, coerce_fields
from .mixture import check_weights

STAGES = ("new-rows", "embeddings", "lora", "full")
PRECISIONS = ("auto", "fp32", "bf16")
PARALLELISMS = ("ddp", "fsdp")
# LLaMA/Mistral/SmolLM2 names of the attention and MLP projections (LoRA targets).
DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# Larger learning rates only diverge; refused up front rather than found as a NaN loss at step 2.
MAX_LR = 1.0


@dataclass
class StageConfig:
    """One training stage; unset optimiser settings inherit the top-level ones.

    ``new-rows``: only the rows of embeddings/lm_head added by the merge learn (held as parameters of their
    own; the base rows are frozen and stay bit-identical); ``embeddings``: embeddings + lm_head
    (Chinese-LLaMA stage 1; ``split_rows: true`` holds base and new rows apart so that ``new_rows_lr`` can
    give the new rows their own learning rate); ``lora``: LoRA
    on attention and MLP plus trainable embeddings/lm_head, merged into the model when the stage ends
    (stage 2); ``full``: every parameter.
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
class TokenizerMerge:
    """Build the tokenizer on the fly with ``vocab-extend merge`` (cached): used by the pico smoke config."""

    corpus: list[str]
    base: str = "mistral-7b-v0.1"
    vocab_size: int = 3000
    lang: str = "auto"


@dataclass
class PretrainConfig:
    """Everything a continued-pretraining run takes. See ``configs/*.yaml`` for commented examples."""

    # --- model and tokenizer
    model: str = "pico"  # "pico" (a tiny LLaMA built in code), a model folder, a .gguf, alias or Hub id
    tokenizer: str | None = None  # a tokenizer folder; default: the model's own
    tokenizer_merge: TokenizerMerge | None = None  # build the tokenizer with `vocab-extend merge` instead
    pico: dict[str, Any] = field(default_factory=dict)  # LlamaConfig settings of the pico model
    base_vocab_size: int | None = None  # rows below this are the base's; default: the tokenizer's metadata
    # --- data
    train: list[str] = field(default_factory=list)  # corpus specs (NAME=SPEC or SPEC)
    train_weights: dict[str, float] = field(default_factory=dict)  # NAME -> weight: a weighted mixture
    eval: dict[str, str] = field(default_factory=dict)  # name -> corpus spec
    heldout_fraction: float = 0.0  # documents of the training corpora held out and evaluated
    text_field: str = "text"  # the field holding the text in json/parquet/hf corpora
    max_docs: int | None = None  # per corpus
    block_size: int = 128  # training sequence length in tokens
    streaming: bool = False  # stream the training corpora (larger than memory); no on-disk cache
    shuffle_buffer: int = 10_000  # streaming only
    num_proc: int | None = None  # tokenization processes; default: up to 8, one per 2,000 documents
    cache_dir: str | None = None  # packed-dataset cache; default: the datasets cache
    # --- optimisation
    stages: list[StageConfig] = field(default_factory=lambda: [StageConfig("full", 100)])
    max_steps: int | None = None  # stop after this many steps in total (stages cut short)
    batch_size: int = 8  # global batch, in sequences of block_size tokens; shared by the ranks
    micro_batch_size: int | None = None  # per rank per forward pass; default: the whole rank share
    lr: float = 3e-4
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.0
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    adam_eps: float = 1e-8
    max_grad_norm: float | None = 1.0
    precision: str = "auto"  # auto: fp32 on CPU, bf16 autocast on GPU
    gradient_checkpointing: bool = False
    parallelism: str = "ddp"  # several processes: ddp (a replica each) or fsdp (FSDP2 shards)
    seed: int = 0  # model init (pico), data order, LoRA init and dropout
    device: str | None = None  # default: cuda when available
    # --- evaluation, logging, checkpoints
    eval_every: int = 50  # steps; 0: only at the end
    eval_max_bytes: int | None = 200_000  # per eval corpus
    eval_batch_size: int = 8
    eval_block_size: int | None = None  # bits-per-byte window; default: the model's context, at most 1024
    eval_at_start: bool = True
    log_every: int = 1
    save_every: int = 50  # steps; 0: only the final model
    keep_checkpoints: int = 2
    output_dir: str = "runs/pretrain"
    overwrite: bool = False
    progress: bool = True
    tensorboard: bool = True
    push_to_hub: str | None = None  # also upload model/ (with its model card) to this Hub repo at the end
    compare_base: bool = True  # at the end, score the model an init-model start was made from (report.md)

    @property
    def total_steps(self) -> int:
        planned = sum(s.steps for s in self.stages)
        return min(planned, self.max_steps) if self.max_steps is not None else planned

    def stage_plan(self) -> list[tuple[StageConfig, int, int]]:
        """``(stage, first_step, steps_run)`` for every stage that runs, after ``max_steps``."""
        plan, start, left = [], 0, self.total_steps
        for stage in self.stages:
            run = min(stage.steps, left)
            if run <= 0:
                break
            plan.append((stage, start, run))
            start += run
            left -= run
        return plan

    def stage_setting(self, stage: StageConfig, name: str) -> Any:
        value = getattr(stage, name)
        return getattr(self, name) if value is None else value

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_stages(value: Any) -> list[StageConfig]:
    """Stages from a list of mappings, or the shorthand ``"embeddings:100,lora:200"``."""
    if isinstance(value, str):
        value = [dict(zip(("name", "steps"), part.strip().split(":", 1))) for part in value.split(",")]
    if not isinstance(value, list) or not value:
        raise VocabExtendError("stages must be a non-empty list of {name, steps} or a string like 'embeddings:100'")
    stages = []
    for item in value:
        if not isinstance(item, Mapping) or "name" not in item or "steps" not in item:
            raise VocabExtendError(f"stage {item!r} needs a name and a number of steps, e.g. embeddings:100")
        check_keys(item, StageConfig, "stage")
        stage = StageConfig(**coerce_fields(dict(item), StageConfig, f"stage {item.get('name')}"))
        if stage.name not in STAGES:
            raise VocabExtendError(f"unknown stage {stage.name!r}: choose one of {', '.join(STAGES)}")
        try:
            stage.steps = int(stage.steps)
        except (TypeError, ValueError):
            raise VocabExtendError(f"stage {stage.name} has steps {stage.steps!r}: give a whole number") from None
        if stage.steps < 0:
            raise VocabExtendError(f"stage {stage.name} has {stage.steps} steps: give zero or more")
        stages.append(stage)
    return stages


def _as_list(value: Any, key: str) -> list[str]:
    """A corpus spec or a list of them as a list; anything else is one sentence."""
    if isinstance(value, str):
        return [value]
    if value is None or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
        return list(value or [])
    raise VocabExtendError(f"{key} must be a corpus spec or a list of them (text), not {value!r}")


def _as_eval(value: Any) -> dict[str, str]:
    if isinstance(value, Mapping):
        bad = [v for v in value.values() if not isinstance(v, str)]
        if bad:
            raise VocabExtendError(f"eval maps names to corpus specs (text), not to {bad[0]!r}")
        return {str(k): v for k, v in value.items()}
    return dict(parse_named_spec(v) for v in _as_list(value, "eval"))


def config_from_dict(data: Mapping[str, Any]) -> PretrainConfig:
    """A validated :class:`PretrainConfig` from a mapping (a parsed YAML file)."""
    data = {str(k).replace("-", "_"): v for k, v in dict(data or {}).items()}
    check_keys(data, PretrainConfig, "config")
    if "stages" in data:
        data["stages"] = parse_stages(data["stages"])
    if "train" in data:
        data["train"] = _as_list(data["train"], "train")
    if "eval" in data:
        data["eval"] = _as_eval(data["eval"])
    merge = data.get("tokenizer_merge")
    if merge is not None:
        if not isinstance(merge, Mapping) or "corpus" not in merge:
            raise VocabExtendError("tokenizer_merge needs at least a corpus, e.g. {corpus: corpora/ja}")
        check_keys(merge, TokenizerMerge, "tokenizer_merge")
        merge = coerce_fields({**merge, "corpus": _as_list(merge["corpus"], "tokenizer_merge: corpus")},
                              TokenizerMerge, "tokenizer_merge")
        data["tokenizer_merge"] = TokenizerMerge(**merge)
    config = PretrainConfig(**coerce_fields(data, PretrainConfig, "config"))
    validate(config)
    return config


def validate(config: PretrainConfig) -> None:
    """Checks that need no model or data; each failure is one sentence."""
    if not config.train:
        raise VocabExtendError("the config has no training corpus: set train to one or more corpus specs")
    if config.train_weights:
        if not isinstance(config.train_weights, Mapping):
            raise VocabExtendError("train_weights must map training-corpus names to weights, e.g. {ja: 0.9, en: 0.1}")
        config.train_weights = check_weights([parse_named_spec(v)[0] for v in config.train], config.train_weights)
    if config.parallelism not in PARALLELISMS:
        raise VocabExtendError(
            f"parallelism {config.parallelism!r} is unknown: choose one of {', '.join(PARALLELISMS)}")
    if config.precision not in PRECISIONS:
        raise VocabExtendError(f"precision {config.precision!r} is unknown: choose one of {', '.join(PRECISIONS)}")
    positive = {"batch_size": config.batch_size, "block_size": config.block_size, "log_every": config.log_every}
    for name, value in positive.items():
        if not isinstance(value, int) or value < 1:
            raise VocabExtendError(f"{name} must be a positive whole number, not {value!r}")
    if config.block_size < 2:
        raise VocabExtendError(f"block_size must be at least 2, not {config.block_size}")
    at_least = {"eval_batch_size": (config.eval_batch_size, 1), "keep_checkpoints": (config.keep_checkpoints, 1),
                "micro_batch_size": (config.micro_batch_size, 1), "eval_every": (config.eval_every, 0),
                "save_every": (config.save_every, 0), "eval_max_bytes": (config.eval_max_bytes, 1), "eval_block_size": (config.eval_block_size, 2)}
    for name, (value, low) in at_least.items():
        if value is not None and value < low:
            need = {0: "zero or more", 1: "positive"}.get(low, f"at least {low}")
            raise VocabExtendError(f"{name} must be {need}, not {value!r}")
    for where, stage in [("config", None), *((f"stage {s.name}", s) for s in config.stages)]:
        source = stage or config
        for f in dataclasses.fields(source):
            value = getattr(source, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise VocabExtendError(f"{where}: {f.name} must be a finite number, not {value!r}")
        if source.lr is not None and source.lr <= 0:
            raise VocabExtendError(f"{where}: lr must be positive, not {source.lr!r}")
        if source.lr is not None and source.lr > MAX_LR:
            raise VocabExtendError(f"{where}: lr {source.lr!r} is far above any learning rate that trains: "
                                   f"use at most {MAX_LR} (3e-4 is typical)")
        if source.warmup_steps is not None and source.warmup_steps < 0:
            raise VocabExtendError(f"{where}: warmup_steps must be zero or more, not {source.warmup_steps!r}")
        if source.min_lr_ratio is not None and not 0 <= source.min_lr_ratio <= 1:
            raise VocabExtendError(f"{where}: min_lr_ratio must be between 0 and 1, not {source.min_lr_ratio!r}")
        if stage is not None and stage.name == "lora" and (stage.lora_r < 1 or stage.lora_alpha <= 0
                                                           or not 0 <= stage.lora_dropout < 1):
            raise VocabExtendError(f"{where}: lora_r must be positive, lora_alpha positive and lora_dropout in "
                                   f"[0, 1), not {stage.lora_r}, {stage.lora_alpha}, {stage.lora_dropout}")
        if stage is not None and stage.new_rows_lr is not None and stage.new_rows_lr <= 0:
            raise VocabExtendError(f"{where}: new_rows_lr must be positive, not {stage.new_rows_lr!r}")
        if source.weight_decay is not None and source.weight_decay < 0:
            raise VocabExtendError(f"{where}: weight_decay must be zero or more, not {source.weight_decay!r}")
    betas = config.adam_betas
    if (not isinstance(betas, (list, tuple)) or len(betas) != 2
            or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas)):
        raise VocabExtendError(f"adam_betas must be two numbers in [0, 1), such as [0.9, 0.95], not {betas!r}")
    if config.adam_eps <= 0:
        raise VocabExtendError(f"adam_eps must be positive, not {config.adam_eps!r}")
    if config.max_grad_norm is not None and config.max_grad_norm <= 0:
        raise VocabExtendError(f"max_grad_norm must be positive (or null for no clipping), not {config.max_grad_norm!r}")
    if config.max_steps is not None and config.max_steps < 0:
        raise VocabExtendError(f"max_steps must be zero or more, not {config.max_steps}")
    if not 0 <= config.seed < 2**32:
        raise VocabExtendError(f"seed must be a whole number in [0, 2**32), not {config.seed}")
    for name, value in (("num_proc", config.num_proc), ("base_vocab_size", config.base_vocab_size)):
        if value is not None and value < 1:
            raise VocabExtendError(f"{name} must be positive, not {value}")
    merge = config.tokenizer_merge
    if merge is not None and not 100 <= merge.vocab_size <= MAX_NEW_MODEL_SIZE:
        raise VocabExtendError(f"tokenizer_merge: vocab_size {merge.vocab_size} is out of range: use 100 to "
                               f"{MAX_NEW_MODEL_SIZE:,} (16000 is typical)")
    if merge is not None and config.tokenizer is not None:
        raise VocabExtendError("the config sets both tokenizer and tokenizer_merge: keep one")
    if config.cache_dir is not None and Path(config.cache_dir).exists() and not Path(config.cache_dir).is_dir():
        raise VocabExtendError(f"cache_dir {config.cache_dir} is a file: give a folder")
    if not 0.0 <= config.heldout_fraction < 1.0:
        raise VocabExtendError(f"heldout_fraction must be in [0, 1), not {config.heldout_fraction}")
    if config.total_steps == 0:
        raise VocabExtendError("the stages add up to zero steps: give at least one stage with steps > 0")


def load_config(path: str | Path | None, overrides: Mapping[str, str] | None = None) -> PretrainConfig:
    """Read a YAML config and apply ``--key value`` overrides (values parsed as YAML)."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise VocabExtendError(f"config {path} is a folder: give a YAML file such as configs/pico-smoke.yaml")
        if not path.is_file():
            raise VocabExtendError(f"config file {path} does not exist: give --config configs/NAME.yaml")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise VocabExtendError(f"config file {path} is not UTF-8 text: give a YAML file") from None
        except yaml.YAMLError as exc:
            raise VocabExtendError(f"config file {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
        if loaded is not None and not isinstance(loaded, Mapping):
            raise VocabExtendError(f"config file {path} must be a mapping of keys to values")
        data = dict(loaded or {})
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    data.update(_parse_overrides(overrides or {}))
    return config_from_dict(data)


def _parse_overrides(overrides: Mapping[str, str]) -> dict[str, Any]:
    parsed = {}
    for key, raw in overrides.items():
        key = key.lstrip("-").replace("-", "_")
        try:
            value = yaml.safe_load(raw) if isinstance(raw, str) else raw
        except yaml.YAMLError:
            value = raw
        parsed[key] = value
    return parsed


def apply_overrides(config: PretrainConfig, overrides: Mapping[str, str]) -> PretrainConfig:
    """A new config: ``config`` with ``--key value`` overrides applied and validated."""
    data = config.to_dict()
    data.update(_parse_overrides(overrides))
    return config_from_dict(data)

