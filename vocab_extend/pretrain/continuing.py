"""``--continue-from RUN``: a finished run goes on with more steps or stages, in a new output folder.

A finished run (its ``model/`` written) continues from its newest checkpoint that verifies, read as
``--resume`` reads one: model, optimiser, schedule, every rank's RNG states and the data position. A run
checkpointed (``save_every`` > 0) with ``checkpoint.at_end`` (the default) has a checkpoint at its last step,
so the continued run trains only the new steps. A run without one (``at_end: false``, or written before
there was one) continues from its last checkpoint before the end, and the steps after it are trained again,
from the same state on the same data (:func:`start_line` says which). Either way the new folder holds one
run from step 1 (its log starts with a copy of RUN's records up to the checkpoint). RUN itself is only
read, so the new folder must be another one, neither inside RUN nor holding it.

What may change is the length: ``--max-steps`` (in all, not added) or ``--stages``. The stages RUN ran stay
as they ran, in the same order with the same settings; only the last may run longer, and stages may follow
it. Every other setting that decides the losses is RUN's (:data:`~.run_dir.TRAJECTORY_KEYS`). A stage that
runs longer has its schedule re-planned over its new length (warmup then cosine, as in any run); a stage
that follows starts as in one run, with a fresh AdamW and its own schedule (:func:`stage_change`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from ..errors import VocabExtendError
from . import checkpoint as ckpt
from .config import PretrainConfig, config_from_dict
from .dist import Dist
from .run_dir import (MODEL_DIR, RUN_CONFIG, RUN_MARKERS, TRAJECTORY_KEYS, changed_setting, prepare_output,
                      saved_config, short)
from .stages import StageConfig

FLAG = "--continue-from"
# What a continued run may change: its length. Every other setting that decides the losses stays RUN's.
LENGTH_KEYS = ("stages", "max_steps")


def run_config_file(run: Path) -> Path:
    """RUN's ``config.yaml``: the config a continued run starts from when no ``--config`` is given."""
    run = Path(run)
    _check_is_run(run)
    if not (run / RUN_CONFIG).is_file():
        raise VocabExtendError(f"{FLAG}: {run} holds no {RUN_CONFIG}: give the run's config with --config")
    return run / RUN_CONFIG


def prepare_continue(config: PretrainConfig, run: Path, resume: bool, dist: Dist) -> tuple[Path, Path]:
    """The new output folder and RUN's checkpoint the run continues from, every check passed; nothing is
    written (the output folder is claimed as for a new run, ``--overwrite`` included)."""
    run = Path(run)
    if resume:
        raise VocabExtendError(f"--resume continues an unfinished run in its own folder and {FLAG} a finished "
                               "one into a new folder: give one of them")
    _check_is_run(run)
    out = Path(config.output_dir)
    if _nested(out, run):
        where = ("is" if out.resolve() == run.resolve() else "is inside" if run.resolve() in out.resolve().parents
                 else "holds")
        raise VocabExtendError(f"{FLAG}: the output folder {out} {where} the run it continues ({run}), which is "
                               "only read: give a new --output-dir")
    if not (run / MODEL_DIR).is_dir():
        raise VocabExtendError(f"{FLAG}: the run in {run} has not finished (no {MODEL_DIR}/): continue it in its "
                               f"own folder with --resume --output-dir {run}")
    checkpoint, skipped = ckpt.resume_point(run, dist)
    if checkpoint is None:
        damaged = f" ({skipped} damaged checkpoint(s) skipped)" if skipped else " (it ran with save_every 0)"
        raise VocabExtendError(f"{FLAG}: {run} holds no checkpoint to continue from{damaged}, so its optimiser "
                               f"state is gone: start a new run from its model with --model {run / MODEL_DIR}")
    check_continue(config, run, checkpoint)
    prepare_output(config, False, dist)
    return out, checkpoint


def start_line(run: Path, checkpoint: Path, step: int, out: Path) -> str:
    """The line a continued run starts with: where it starts, and which steps of RUN it trains again.

    A run of 4 steps with a checkpoint at step 4 trains no step again; with its last one at step 2
    (``at_end: false``, or an older run), steps 3-4 are trained again.
    """
    ran = sum(steps for _, _, steps in _saved_plan(run, checkpoint))
    if step >= ran:
        return (f"continuing {run} from its checkpoint at its last step, {checkpoint.name} (step {step}; no step is "
                f"trained again), in {out}")
    again = f"step {ran} is" if step + 1 == ran else f"steps {step + 1}-{ran} are"
    return (f"continuing {run} from its last checkpoint, {checkpoint.name} (step {step}; it has none at its last "
            f"step, {ran}, so {again} trained again), in {out}")


def check_continue(config: PretrainConfig, run: Path, checkpoint: Path) -> None:
    """Refuse a continued run whose settings would change the losses of the steps RUN ran (anything but the
    length), whose stages do not extend RUN's, or that is no longer than RUN."""
    keys = tuple(key for key in TRAJECTORY_KEYS if key not in LENGTH_KEYS)
    changed = changed_setting(config, run, checkpoint, keys, FLAG)
    if changed is not None:
        key, before, after = changed
        raise VocabExtendError(f"{FLAG}: {run} ran with {key} {before}, not {after}; a continued run keeps every "
                               "setting that decides the losses and changes only --max-steps or --stages")
    before = _saved_plan(run, checkpoint)
    after = config.stage_plan()
    ran, now = sum(s for _, _, s in before), config.total_steps
    if now <= ran:
        raise VocabExtendError(f"{FLAG}: {run} ran {ran} steps and this run has {now}: give more steps in all with "
                               "--max-steps N, or add stages with --stages")
    change = stage_change(before, after)
    if change is not None:
        raise VocabExtendError(
            f"{FLAG}: {run} ran the stages {_shown(before)}, which a continued run keeps as they ran (only the "
            f"last may run longer, and stages may follow it), not {_shown(after)}: {change}")


def stage_change(before: Sequence[tuple[StageConfig, int, int]],
                 after: Sequence[tuple[StageConfig, int, int]]) -> str | None:
    """Why ``after`` (``(stage, first step, steps run)`` of each stage) does not run the stages of ``before``
    as they ran, the last of them possibly longer, then any others; ``None`` when it does.

    >>> full = StageConfig("full", 100, lr=1e-3)
    >>> stage_change([(full, 0, 4)], [(full, 0, 8)]), stage_change([(full, 0, 4)], [(full, 0, 4), (full, 4, 2)])
    (None, None)
    >>> stage_change([(full, 0, 4)], [(StageConfig("full", 8), 0, 8)])
    'stage 1 (full) ran with lr 0.001, not None'
    >>> stage_change([(StageConfig("new-rows", 4), 0, 4), (full, 4, 4)], [(StageConfig("new-rows", 6), 0, 6)])
    'stage 1 (new-rows) ran 4 steps, not 6'
    """
    for index, (stage, first, steps) in enumerate(before):
        if index >= len(after):
            return f"stage {index + 1} ({stage.name}) is missing"
        new, new_first, new_steps = after[index]
        for name, value in dataclasses.asdict(stage).items():
            if name != "steps" and getattr(new, name) != value:
                now = short(getattr(new, name))
                return f"stage {index + 1} ({stage.name}) ran with {name} {short(value)}, not {now}"
        last = index == len(before) - 1
        if new_first != first or new_steps < steps or (new_steps != steps and not last):
            return f"stage {index + 1} ({stage.name}) ran {steps} steps, not {new_steps}"
    return None


def _saved_plan(run: Path, checkpoint: Path) -> list[tuple[StageConfig, int, int]]:
    """RUN's stage plan, from its saved config."""
    try:
        saved = config_from_dict(saved_config(run, checkpoint, FLAG))
    except VocabExtendError as exc:
        raise VocabExtendError(f"{FLAG}: the config {run} ran with no longer reads ({exc})") from None
    return saved.stage_plan()


def _shown(plan: Sequence[tuple[StageConfig, int, int]]) -> str:
    return short([{"name": stage.name, "steps": steps} for stage, _, steps in plan])


def _check_is_run(run: Path) -> None:
    if not run.is_dir():
        raise VocabExtendError(f"{FLAG}: {run} " + ("is a file" if run.exists() else "does not exist")
                               + ": give the output folder of a finished pretraining run")
    if not any((run / name).exists() for name in RUN_MARKERS):
        raise VocabExtendError(f"{FLAG}: {run} is not a pretraining run (it has no {RUN_CONFIG}, checkpoints/ or "
                               f"{MODEL_DIR}/): give the output folder of a finished run")


def _nested(a: Path, b: Path) -> bool:
    """Whether one of the two folders is the other or inside it."""
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents
