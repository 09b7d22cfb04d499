"""Any checkpoint of a pretraining run as a Hugging Face model folder (``vocab-extend export-checkpoint``).

A checkpoint (:mod:`.checkpoint`) is DCP shards written by 1 or more processes, in the shape of the stage
that was under way (split rows, LoRA adapters). :func:`export_checkpoint` reads it in one process, whatever
the number of processes that wrote it (DCP reshards the shards into whole tensors), undoes the stage's shape
as the run does when a stage ends (:meth:`~.stages.Stage.finish`: LoRA merged, rows joined) and writes the
folder with the writer of the run's final ``model/`` (:func:`~.model_folder.write_model_folder`), with a
model card that says which run, step, stage and tokens it comes from.

Invariants:

- **Checked first**: a path that is not a checkpoint, a checkpoint whose manifest does not verify, a missing
  run config or tokenizer, an output folder that exists and is not empty (without ``overwrite``) are each one
  sentence, before any model is built.
- **The run's own model**: the model is built from the checkpoint's copy of the run's config (``model:``,
  ``pico:``, tokenizer) and must hold exactly the checkpoint's tensors (names and shapes), so nothing is
  dropped or left at its initial value; the exported folder gives the logits of the model the run trained.
- **The run's own folder**: exporting step ``N`` writes what a run of ``N`` steps would have written as
  ``model/`` (same weights, config, tokenizer files), only the card differs.
- **All or nothing**: written in a staging folder renamed into place (:func:`vocab_extend.staging.staging_folder`).

>>> print(_not_a_checkpoint(Path("runs/none/checkpoints/step-00000040")))
runs/none/checkpoints/step-00000040 does not exist: give a checkpoint folder such as runs/x/checkpoints/step-00000040
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from ..errors import VocabExtendError
from ..metadata import metadata_fields
from ..model.card import read_tokenizer_report, render_card
from ..staging import check_not_an_input, check_output_dir, staging_folder
from ..tokenizer.loader import load_tokenizer
from .checkpoint import (CHECKPOINTS, MANIFEST, MODEL_KEY, PREFIX, RUN_CONFIG, STAGING_PREFIX, load_model_weights,
                         read_state, verify)
from .config import PretrainConfig, config_from_dict
from .dist import quiet
from .model import base_vocab_size, build_model, tokenizer_source
from .model_folder import write_model_folder
from .outputs import read_metrics
from .run_dir import RUN_CONFIG as RUN_FOLDER_CONFIG
from .safe_state import UnsafeCheckpoint, read_metadata
from .stages import StageConfig, stage_for


@dataclass
class CheckpointSource:
    """A checkpoint that verified, with what its run says about it."""

    path: Path  # as the user gave it (written so in the card)
    config: PretrainConfig  # the run's resolved config
    step: int
    stage: StageConfig  # the stage under way (or just ended, at a boundary)
    stage_index: int
    boundary: bool  # the stage ended at this step: the checkpoint holds the plain model
    world_size: int | None  # processes that wrote it
    tokenizer_dir: str
    saved: dict[str, tuple[int, ...]]  # name -> shape of every model tensor it holds

    @property
    def run_dir(self) -> Path | None:
        """The run folder, when the checkpoint sits in its ``checkpoints/``."""
        return self.path.parent.parent if self.path.parent.name == CHECKPOINTS else None

    @property
    def tokens(self) -> int:
        """Tokens the run had trained on at this step (every step reads ``batch_size`` blocks)."""
        return self.step * self.config.data.batch_size * self.config.data.block_size


@dataclass
class ExportSummary:
    output: Path
    source: CheckpointSource
    parameters: int

    def line(self) -> str:
        s = self.source
        written = f", written by {s.world_size} process{'es' if s.world_size != 1 else ''}" if s.world_size else ""
        return (f"wrote {self.output}: step {s.step:,} of {s.config.total_steps:,} (stage {s.stage.name}){written}, "
                f"{self.parameters:,} parameters, {s.tokens:,} tokens seen")


def _not_a_checkpoint(path: Path) -> VocabExtendError | None:
    """Why ``path`` is not a checkpoint folder (with what to give instead), or ``None``."""
    hint = "give a checkpoint folder such as runs/x/checkpoints/step-00000040"
    if not path.is_dir():
        return VocabExtendError(f"{path} {'is a file' if path.exists() else 'does not exist'}: {hint}")
    if (path / CHECKPOINTS).is_dir() or (path / RUN_FOLDER_CONFIG).is_file():
        saved = sorted(p.name for p in (path / CHECKPOINTS).glob(PREFIX + "*") if (p / MANIFEST).is_file())
        which = f"its newest is {path / CHECKPOINTS / saved[-1]}" if saved else "it holds none"
        return VocabExtendError(f"{path} is a run folder, not a checkpoint: give one of its checkpoints ({which})")
    if path.name.startswith(STAGING_PREFIX):
        return VocabExtendError(f"{path} is a checkpoint that was never finished (an interrupted save): give "
                                "a checkpoint without the .tmp- prefix")
    if not (path / MANIFEST).is_file() or not (path / ".metadata").is_file():
        return VocabExtendError(f"{path} is not a checkpoint written by `vocab-extend pretrain` (it has no "
                                f"{MANIFEST} or .metadata): {hint}")
    return None


def _run_config(path: Path) -> PretrainConfig:
    """The run's config: the checkpoint's own copy (checked by its manifest), else the run's ``config.yaml``."""
    candidates = [path / RUN_CONFIG, path.parent.parent / RUN_FOLDER_CONFIG]
    found = next((f for f in candidates if f.is_file()), None)
    if found is None:
        raise VocabExtendError(f"checkpoint {path} holds no {RUN_CONFIG} and its run folder no {RUN_FOLDER_CONFIG}, "
                               "so the model it trained is unknown: export a checkpoint of a run started by "
                               "this version, or copy the run's config.yaml beside its checkpoints/ folder")
    try:
        raw = yaml.safe_load(found.read_text(encoding="utf-8")) or {}
        return config_from_dict(raw)
    except (yaml.YAMLError, VocabExtendError) as exc:
        reason = str(exc).strip().splitlines()[0][:200]
        raise VocabExtendError(f"the run config {found} does not load ({reason}): export a checkpoint whose "
                               "config this version reads") from None


def _check_tokenizer(config: PretrainConfig, path: Path) -> str:
    """The run's tokenizer folder (or model spec); one sentence when a local one is gone."""
    source = tokenizer_source(config.model, config.data)
    built = config.model.tokenizer_merge is not None
    if (built and not (Path(source) / "tokenizer.json").is_file()) or \
            (config.model.tokenizer and not Path(source).expanduser().exists()):
        what = "built by tokenizer_merge in the data cache" if built else "the config's tokenizer"
        raise VocabExtendError(f"the tokenizer of the run of {path} ({what}, {source}) is not there: run the export "
                               "from the folder the run was started in, or restore that tokenizer folder")
    return source


def open_checkpoint(path: str | Path) -> CheckpointSource:
    """The checkpoint at ``path`` checked (a checkpoint, whole, its config and tokenizer there); no model."""
    path = Path(path)
    problem = _not_a_checkpoint(path)
    if problem is not None:
        raise problem
    damage = verify(path)
    if damage is not None:
        raise VocabExtendError(f"checkpoint {path} is damaged ({damage}): export another checkpoint of the run")
    state = read_state(path)
    config = _run_config(path)
    step, index, plan = int(state["step"]), int(state.get("optimizer_stage", 0)), config.stage_plan()
    if not 0 <= index < len(plan) or not plan[index][1] < step <= plan[index][1] + plan[index][2]:
        raise VocabExtendError(f"checkpoint {path} is at step {step} of stage {index + 1}, which its run config does "
                               f"not have ({len(plan)} stages, {config.total_steps} steps): export another checkpoint")
    stage, first, steps = plan[index]
    return CheckpointSource(path=path, config=config, step=step, stage=stage, stage_index=index,
                            boundary=bool(state.get("boundary", step == first + steps)),
                            world_size=state.get("world_size"), tokenizer_dir=_check_tokenizer(config, path),
                            saved=_saved_shapes(path))


def check_output(output: Path, overwrite: bool, inputs: list[Any]) -> bool:
    """Refuse an output folder that exists and is not empty (unless ``overwrite``), or that is or holds an
    input; returns whether an existing folder may be replaced (it is empty, or ``overwrite``)."""
    if output.exists() and not output.is_dir():
        raise VocabExtendError(f"{output} is a file: give a folder to write the model into")
    replace = overwrite or (output.is_dir() and not any(output.iterdir()))
    check_not_an_input(output, inputs)
    if output.exists() and not replace:
        raise VocabExtendError(f"{output} already exists and is not empty: pass --overwrite to replace it, or "
                               "choose another output folder")
    check_output_dir(output, replace, inputs)
    return replace


def _saved_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every model tensor in the checkpoint's DCP metadata (read as plain data only)."""
    prefix = MODEL_KEY + "."
    try:
        entries = read_metadata(path).state_dict_metadata
    except UnsafeCheckpoint:
        raise VocabExtendError(f"checkpoint {path} holds more than plain data in its .metadata, which could run "
                               "code when loaded, so it is not exported: export only checkpoints written by "
                               "vocab-extend") from None
    return {key[len(prefix):]: tuple(entry.size) for key, entry in entries.items()
            if key.startswith(prefix) and hasattr(entry, "size")}


@quiet()
def _check_fit(model: torch.nn.Module, source: CheckpointSource) -> None:
    """The model holds exactly the checkpoint's tensors (names and shapes): nothing dropped, nothing left out."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    wanted, saved = {name: tuple(t.shape) for name, t in get_model_state_dict(model).items()}, source.saved
    if wanted != saved:
        name = sorted(set(wanted) ^ set(saved) or {n for n in wanted if wanted[n] != saved[n]})[0]
        where = ("only in the checkpoint" if name not in wanted else "not in the checkpoint" if name not in saved
                 else f"{saved[name]} in the checkpoint, {wanted[name]} in the model")
        raise VocabExtendError(f"checkpoint {source.path} does not hold the model its run config builds ({name}: "
                               f"{where}): export a checkpoint of a run started by this version")


def checkpoint_model(source: CheckpointSource, tokenizer: Any) -> torch.nn.Module:
    """The plain model of the checkpoint: built as the run built it, in the stage's shape when the stage was
    under way, loaded from the shards (resharded into whole tensors here), then the stage's shape undone."""
    config = source.config
    with warnings.catch_warnings():  # nothing a user can act on: DCP reads in one process, as meant here,
        warnings.filterwarnings("ignore", message=".*in a single process")  # and deprecations inside peft
        warnings.filterwarnings("ignore", category=FutureWarning)
        model = build_model(config.model, tokenizer, config.seed)
        stage = stage_for(source.stage)
        if not source.boundary:
            model = stage.prepare(model, base_vocab_size(config.model, config.data)).model
        _check_fit(model, source)
        load_model_weights(source.path, model)
        return stage.finish(model) if not source.boundary else model


def _bpb_at(source: CheckpointSource) -> dict[str, float] | None:
    """Bits per byte the run measured at the checkpoint's step, when it evaluated then."""
    if source.run_dir is None:
        return None
    for record in read_metrics(source.run_dir):
        if record.get("kind") == "eval" and record.get("step") == source.step:
            values = {k: v for k, v in (record.get("bpb") or {}).items() if isinstance(v, (int, float))}
            return values or None
    return None


def checkpoint_card(source: CheckpointSource) -> Any:
    """The model card: the run and step it comes from, the stage, tokens seen, what the run started from."""
    config, data = source.config, source.config.data
    meta = metadata_fields(source.tokenizer_dir)
    lang, name = meta.get("lang") or "und", config.model.name
    run = f"the run `{source.run_dir}`" if source.run_dir is not None else "a pretraining run"
    ended = ", the end of that stage" if source.boundary else ""
    made = [f"checkpoint `{source.path.name}` of {run}: step {source.step:,} of {config.total_steps:,}, stage "
            f"`{source.stage.name}`{ended} (not the run's final model unless it is the last step)",
            f"tokens seen: {source.tokens:,} ({source.step:,} steps × {data.batch_size} sequences × "
            f"{data.block_size} tokens)",
            f"the run started from `{name}`" + (f" with `{meta['base']}`'s tokenizer extended by "
                                               f"{meta['added_pieces']:,} {lang} pieces" if meta else ""),
            "stages of the run: " + ", ".join(f"`{s.name}` {n} steps" for s, _, n in config.stage_plan()),
            f"training corpora: {', '.join(data.train)}"]
    return render_card(title=f"Step {source.step:,} of the continued pretraining of {name}", base=name, lang=lang,
                       made=made, tokenizer_report=read_tokenizer_report(Path(source.tokenizer_dir)),
                       bpb=_bpb_at(source), commands=[
                           "vocab-extend pretrain --config config.yaml   # the run's config.yaml",
                           f"vocab-extend export-checkpoint {source.path} OUT"])


def export_checkpoint(checkpoint: str | Path, output: str | Path, *, overwrite: bool = False) -> ExportSummary:
    """Write the checkpoint at ``checkpoint`` as a Hugging Face model folder at ``output`` (see the module)."""
    output = Path(output)
    inputs = [("checkpoint", checkpoint)]
    replace = check_output(output, overwrite, inputs)  # before the checkpoint is hashed
    source = open_checkpoint(checkpoint)
    inputs.append(("tokenizer", source.tokenizer_dir))
    replace = check_output(output, overwrite, inputs)
    tokenizer = load_tokenizer(source.tokenizer_dir)
    model = checkpoint_model(source, tokenizer)
    with staging_folder(output, overwrite=replace, inputs=inputs) as tmp:
        write_model_folder(tmp, model, tokenizer, Path(source.tokenizer_dir), checkpoint_card(source))
    return ExportSummary(output, source, sum(p.numel() for p in model.parameters()))
