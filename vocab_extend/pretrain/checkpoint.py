"""Checkpoints: model, optimiser, scheduler, RNG states and data position, written atomically.

A checkpoint is a folder ``checkpoints/step-00000040`` holding ``model.safetensors`` (the model being
trained, LoRA adapters included when a ``lora`` stage is under way), ``trainer.pt`` (optimiser and
scheduler), ``rng-rank<R>.pt`` (each rank's Python, NumPy, torch and CUDA generator states) and
``state.json`` (step, stage, data position). It is written under a temporary name and renamed when
complete, so a crash never leaves a checkpoint that looks whole.

>>> step_of(Path("checkpoints/step-00000040"))
40
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import VocabExtendError

CHECKPOINTS = "checkpoints"
PREFIX = "step-"


def step_of(path: Path) -> int:
    return int(path.name[len(PREFIX):])


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    folder = Path(output_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / "state.json").is_file()]
    return sorted(found, key=step_of)


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def staging_path(output_dir: Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f".tmp-{PREFIX}{step:08d}"


def clear(staging: Path) -> None:
    """An empty staging folder (a crashed attempt at the same step is discarded)."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)


def write_rank_state(staging: Path, rank: int) -> None:
    """Every rank writes its RNG state into the staging folder (created by rank 0 beforehand)."""
    torch.save(rng_state(), staging / f"rng-rank{rank}.pt")


def write_main_state(
    staging: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, state: dict[str, Any]
) -> None:
    """Rank 0 writes the model, optimiser, scheduler and ``state.json``."""
    from safetensors.torch import save_model

    save_model(model, str(staging / "model.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, staging / "trainer.pt")
    (staging / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def publish(staging: Path, keep: int) -> Path:
    """Rename the staging folder into place and delete all but the newest ``keep`` checkpoints."""
    final = staging.parent / staging.name[len(".tmp-"):]
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    if keep > 0:
        for old in list_checkpoints(staging.parent.parent)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_state(path: Path) -> dict[str, Any]:
    return json.loads((Path(path) / "state.json").read_text(encoding="utf-8"))


def load_model_weights(path: Path, model: torch.nn.Module) -> None:
    from safetensors.torch import load_model

    missing, unexpected = load_model(model, str(Path(path) / "model.safetensors"), strict=False)
    if missing or unexpected:
        raise VocabExtendError(
            f"checkpoint {path} does not fit the model ({len(missing)} missing, {len(unexpected)} unexpected "
            "tensors): resume with the config the run was started with"
        )


def load_trainer_state(path: Path, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
    trainer = torch.load(Path(path) / "trainer.pt", weights_only=False)
    optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])


def load_rng_state(path: Path, rank: int) -> None:
    rng_file = Path(path) / f"rng-rank{rank}.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=False))
