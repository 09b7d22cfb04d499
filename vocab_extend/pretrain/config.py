"""The continued-pretraining config: sections owned by the components, read from YAML, overridable by key.

A config holds one section per component, each a dataclass of the module that uses it: ``model``
(:class:`~.model.ModelConfig`), ``data`` (:class:`~.data.DataConfig`), ``stages`` (a list of
:class:`~.stages.StageConfig`), ``optim`` (:class:`~.optim.OptimConfig`), ``parallel``
(:class:`~.parallel.ParallelConfig`), ``checkpoint`` (:class:`~.checkpoint.CheckpointConfig`), ``eval``
(:class:`~.evaluation.EvalConfig`) and ``logging`` (:class:`~.metrics.LoggingConfig`), beside the run's own
keys (``max_steps``, ``seed``, ``output_dir``, ``overwrite``, ``push_to_hub``). A function is handed the
section it needs, not the whole config.

The older flat form, every setting at the top level (``lr: 3e-4``, ``eval_every: 10``, ``eval: {en: ...}``,
``model: pico``), is read as well and mapped into the sections (:func:`nest`; :data:`FLAT` is the table),
and both forms may be mixed. Every flat key is also a ``--key value`` option; values are parsed as YAML.
``model`` and ``eval`` are both a flat key and a section: ``model: pico`` (text) is the model,
``model: {name: pico}`` the section; ``eval: {en: corpora/en}`` names eval corpora, ``eval: {every: 10}``
(a mapping that uses a setting of the section) is the section. Unknown or misplaced keys are one sentence.

>>> cfg = config_from_dict({"model": "pico", "train": ["corpora/ja"], "stages": "new-rows:5,full:3"})
>>> [(s.name, s.steps) for s in cfg.stages], cfg.total_steps, cfg.data.train
([('new-rows', 5), ('full', 3)], 8, ['corpora/ja'])
>>> apply_overrides(cfg, {"max_steps": "6", "eval_every": "2"}).eval.every
2
>>> nest({"lr": 0.1, "checkpoint": {"every": 5}, "eval": {"en": "corpora/en"}})
{'optim': {'lr': 0.1}, 'checkpoint': {'every': 5}, 'eval': {'corpora': {'en': 'corpora/en'}}}
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..errors import VocabExtendError
from .checkpoint import CheckpointConfig
from .data import DataConfig
from .evaluation import EvalConfig, as_corpora
from .fields import coerce_fields, unknown_key
from .metrics import LoggingConfig
from .model import ModelConfig, TokenizerMerge, parse_merge
from .optim import OptimConfig
from .parallel import ParallelConfig
from .stages import StageConfig, parse_stages

__all__ = ["PretrainConfig", "StageConfig", "TokenizerMerge", "apply_overrides", "config_from_dict", "load_config",
           "nest"]

SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig,
                             "parallel": ParallelConfig, "checkpoint": CheckpointConfig, "eval": EvalConfig,
                             "logging": LoggingConfig}
RUN_KEYS = ("stages", "max_steps", "seed", "output_dir", "overwrite", "push_to_hub")


@dataclass
class PretrainConfig:
    """Everything a continued-pretraining run takes. See ``configs/*.yaml`` for commented examples."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    stages: list[StageConfig] = field(default_factory=lambda: [StageConfig("full", 100)])  # e.g. new-rows:10,full:10
    optim: OptimConfig = field(default_factory=OptimConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    max_steps: int | None = None  # stop after this many steps in total (stages cut short)
    seed: int = 0  # model init (pico), data order, LoRA init and dropout
    output_dir: str = "runs/pretrain"  # the run folder: metrics, checkpoints, report, model/
    overwrite: bool = False  # replace a run already in output_dir
    push_to_hub: str | None = None  # also upload model/ (with its model card) to this Hub repo at the end

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

    def to_dict(self) -> dict[str, Any]:
        """The config in the sectioned form (what ``config.yaml`` of a run holds)."""
        return dataclasses.asdict(self)


def _flat_table() -> dict[str, tuple[str | None, str]]:
    """flat key -> (section, field); ``None`` for the run's own keys."""
    table: dict[str, tuple[str | None, str]] = {key: (None, key) for key in RUN_KEYS}
    for section, cls in SECTIONS.items():
        names = getattr(cls, "FLAT", {})
        for f in dataclasses.fields(cls):
            table[names.get(f.name, f.name)] = (section, f.name)
    return table


FLAT = _flat_table()
FLAT_NAME = {path: key for key, path in FLAT.items()}  # (section, field) -> flat key


def _is_section(key: str, value: Any) -> bool:
    """Whether the top-level ``key: value`` is a section rather than the flat setting of the same name."""
    if key not in FLAT:
        return True
    if not isinstance(value, Mapping):
        return False
    if key == "eval":  # a mapping of corpus names, unless it uses a setting of the section
        cls = SECTIONS[key]
        known = {f.name for f in dataclasses.fields(cls)} | set(getattr(cls, "FLAT", {}).values())
        return any(str(k).replace("-", "_") in known for k in value)
    return True


def _section_items(section: str, value: Any) -> list[tuple[str, Any]]:
    """The settings of one section mapping; a key that belongs elsewhere is one sentence naming its place."""
    if not isinstance(value, Mapping):
        raise VocabExtendError(f"{section} must be a mapping of its settings, not {value!r}")
    fields = [f.name for f in dataclasses.fields(SECTIONS[section])]
    items = []
    for raw, item in value.items():
        key = str(raw).replace("-", "_")
        if key not in fields:
            raise _misplaced(section, key, fields)
        items.append((key, item))
    return items


def _misplaced(section: str, key: str, fields: list[str]) -> VocabExtendError:
    place = FLAT.get(key)
    if place is not None and place[0] == section:
        return VocabExtendError(f"{section}: {key} is written {place[1]} inside the {section} section")
    if place is not None:
        where = f"{place[0]}.{place[1]}" if place[0] else "a top-level key"
        return VocabExtendError(f"{section}: {key} is not a setting of the {section} section: it is {where} "
                                f"({key} at the top level)")
    return unknown_key(key, fields, section)


def nest(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """A config mapping (flat, sectioned or mixed) in the sectioned form, not yet checked; a setting given
    twice (``lr`` and ``optim.lr``) is one sentence."""
    out: dict[str, Any] = {}
    seen: dict[tuple[str | None, str], str] = {}
    for raw, value in dict(data or {}).items():
        key = str(raw).replace("-", "_")
        if key in SECTIONS and _is_section(key, value):
            places = [((key, name), f"{key}.{name}", item) for name, item in _section_items(key, value)]
        elif key in FLAT:
            places = [(FLAT[key], key, value)]
        else:
            raise unknown_key(key, [*FLAT, *(s for s in SECTIONS if s not in FLAT)], "config")
        for (section, name), label, item in places:
            if (section, name) in seen:
                raise VocabExtendError(f"{seen[section, name]} and {label} set the same setting: keep one")
            seen[section, name] = label
            (out.setdefault(section, {}) if section else out)[name] = item
    return out


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the settings of ``over`` (both sectioned) put over it."""
    out = {k: dict(v) if k in SECTIONS else v for k, v in base.items()}
    for key, value in over.items():
        if key in SECTIONS:
            out.setdefault(key, {}).update(value)
        else:
            out[key] = value
    return out


def _section(name: str, values: dict[str, Any]) -> Any:
    """One section's dataclass from its (sectioned) settings, values parsed and type-checked."""
    cls = SECTIONS[name]
    if name == "data" and "train" in values:
        values["train"] = _as_list(values["train"], "train")
    if name == "eval" and "corpora" in values:
        values["corpora"] = as_corpora(values["corpora"])
    if name == "model" and "tokenizer_merge" in values:
        values["tokenizer_merge"] = parse_merge(values["tokenizer_merge"])
    shown = {f.name: FLAT_NAME[name, f.name] for f in dataclasses.fields(cls)}
    return cls(**coerce_fields(values, cls, "config", shown))


def _as_list(value: Any, key: str) -> list[str]:
    """A corpus spec or a list of them as a list; anything else is one sentence."""
    if isinstance(value, str):
        return [value]
    if value is None or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
        return list(value or [])
    raise VocabExtendError(f"{key} must be a corpus spec or a list of them (text), not {value!r}")


def build(nested: Mapping[str, Any]) -> PretrainConfig:
    """A validated :class:`PretrainConfig` from the sectioned form (:func:`nest`)."""
    kwargs: dict[str, Any] = {name: _section(name, dict(nested.get(name, {}))) for name in SECTIONS}
    run = {key: nested[key] for key in RUN_KEYS if key in nested}
    if "stages" in run:
        run["stages"] = parse_stages(run["stages"])
    kwargs.update(coerce_fields(run, PretrainConfig, "config"))
    config = PretrainConfig(**kwargs)
    validate(config)
    return config


def config_from_dict(data: Mapping[str, Any]) -> PretrainConfig:
    """A validated :class:`PretrainConfig` from a mapping (a parsed YAML file, flat or sectioned)."""
    return build(nest(data))


def validate(config: PretrainConfig) -> None:
    """Checks that need no model or data; each failure is one sentence."""
    config.data.check()
    for name in SECTIONS:
        section = getattr(config, name)
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise VocabExtendError(f"config: {FLAT_NAME[name, f.name]} must be a finite number, not {value!r}")
    config.optim.check(config.stages)
    for section in (config.model, config.parallel, config.checkpoint, config.eval, config.logging):
        section.check()
    if config.max_steps is not None and config.max_steps < 0:
        raise VocabExtendError(f"max_steps must be zero or more, not {config.max_steps}")
    if not 0 <= config.seed < 2**32:
        raise VocabExtendError(f"seed must be a whole number in [0, 2**32), not {config.seed}")
    if config.total_steps == 0:
        raise VocabExtendError("the stages add up to zero steps: give at least one stage with steps > 0")


def load_config(path: str | Path | None, overrides: Mapping[str, str] | None = None) -> PretrainConfig:
    """Read a YAML config and apply ``--key value`` overrides (values parsed as YAML)."""
    data: Mapping[str, Any] = {}
    if path is not None:
        data = _read_yaml(Path(path))
    return build(_merged(nest(data), nest(_parse_overrides(overrides or {}))))


def _read_yaml(path: Path) -> Mapping[str, Any]:
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
    return loaded or {}


def _parse_overrides(overrides: Mapping[str, str]) -> dict[str, Any]:
    """``--key value`` overrides as a config mapping; ``section.key`` names a setting of a section."""
    parsed: dict[str, Any] = {}
    for key, raw in overrides.items():
        key = key.lstrip("-").replace("-", "_")
        try:
            value = yaml.safe_load(raw) if isinstance(raw, str) else raw
        except yaml.YAMLError:
            value = raw
        section, dot, name = key.partition(".")
        if dot:
            parsed.setdefault(section, {})[name] = value
        else:
            parsed[key] = value
    return parsed


def apply_overrides(config: PretrainConfig, overrides: Mapping[str, str]) -> PretrainConfig:
    """A new config: ``config`` with ``--key value`` overrides applied and validated."""
    return build(_merged(nest(config.to_dict()), nest(_parse_overrides(overrides))))
