"""Checkpoints: model, optimiser, scheduler, RNG states and data position, written atomically.

A checkpoint is a folder ``checkpoints/step-00000040`` written with ``torch.distributed.checkpoint``
(DCP): every rank writes its own shard of the model being trained (LoRA adapters or split rows included
while such a stage is under way) and of the AdamW state into ``*.distcp`` files, described by DCP's
``.metadata``; beside them ``scheduler.pt``, ``rng-rank<R>.pt`` (each rank's Python, NumPy, torch and CUDA
generator states), ``state.json`` (step, stage, data position, world size) and ``run_config.yaml`` (the
run's resolved config, which the resume guard reads). DCP reshards on load, so a checkpoint written by 2
processes resumes on 1 and the other way round.

A checkpoint is written under a temporary name (``.tmp-step-*``), then ``manifest.json`` (size and SHA-256
of every other file) last, then renamed into place: a crash, even ``kill -9``, never leaves a checkpoint
that looks whole, and a checkpoint damaged later (a truncated or edited file, a deleted one) fails
:func:`verify`, so ``--resume`` falls back to the newest one that verifies.

>>> step_of(Path("checkpoints/step-00000040"))
40
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import warnings
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import VocabExtendError, free_space

CHECKPOINTS = "checkpoints"
MODEL_KEY, OPTIM_KEY = "model", "optimizer"
PREFIX = "step-"
STAGING_PREFIX = ".tmp-" + PREFIX
MANIFEST = "manifest.json"  # written last: its presence marks a complete checkpoint
RUN_CONFIG = "run_config.yaml"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence what DCP and the state-dict functions say about process groups (expected here: one process
    without a group, gloo on CPU)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(process group|ProcessGroup|_get_pg_default_device).*")
        yield


def step_of(path: Path) -> int:
    return int(path.name[len(PREFIX):])


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoints of a run that were written whole (they have a manifest), oldest first; not verified."""
    folder = Path(output_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir()
             if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()
             and (p / MANIFEST).is_file()]
    return sorted(found, key=step_of)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(staging: Path) -> int:
    """Record the size and SHA-256 of every file in ``staging`` (rank 0, after every rank wrote its files);
    returns the checkpoint's size in bytes."""
    files = {}
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        files[path.relative_to(staging).as_posix()] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    text = json.dumps({"files": files}, indent=1, sort_keys=True) + "\n"
    (staging / MANIFEST).write_text(text, encoding="utf-8")
    return sum(f["size"] for f in files.values())


def checkpoint_size(path: Path) -> int | None:
    """The size in bytes of a complete checkpoint, from its manifest."""
    try:
        files = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))["files"]
        return sum(int(f["size"]) for f in files.values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def verify(path: Path) -> str | None:
    """Why the checkpoint at ``path`` cannot be trusted (a missing, truncated or changed file), or ``None``."""
    path = Path(path)
    try:
        files = json.loads((path / MANIFEST).read_text(encoding="utf-8"))["files"]
        items = [(str(name), int(entry["size"]), str(entry["sha256"])) for name, entry in files.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"its {MANIFEST} is unreadable"
    for name, size, sha in items:
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != size:
            return f"{name} has {file.stat().st_size:,} bytes, not {size:,}"
        if _sha256(file) != sha:
            return f"{name} has changed since it was written"
    if "state.json" not in files:
        return "it has no state.json"
    return None


def newest_good_checkpoint(output_dir: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest checkpoint that verifies, and the newer ones skipped with the reason for each."""
    skipped: list[tuple[Path, str]] = []
    for path in reversed(list_checkpoints(output_dir)):
        reason = verify(path)
        if reason is None:
            return path, skipped
        skipped.append((path, reason))
    return None, skipped


def sweep_staging(output_dir: Path) -> list[Path]:
    """Remove the ``.tmp-step-*`` folders a crashed or interrupted save left (the caller holds the run's
    lock, so no live process is writing them); returns what was removed."""
    folder = Path(output_dir) / CHECKPOINTS
    found = sorted(folder.glob(STAGING_PREFIX + "*")) if folder.is_dir() else []
    for path in found:
        shutil.rmtree(path, ignore_errors=True)
    return found


def estimate_size(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> int:
    """Bytes a checkpoint of ``model`` (and AdamW's two moments of its trainable parameters) takes."""
    params = list(model.parameters())
    size = sum(p.numel() * p.element_size() for p in params)
    size += sum(b.numel() * b.element_size() for b in model.buffers())
    if optimizer is not None:
        size += 2 * sum(p.numel() * 4 for p in params if p.requires_grad)
    return size


def free_bytes(folder: Path) -> int:
    """Free space where ``folder`` (or its nearest existing parent) lives (0 when it cannot be read)."""
    return free_space(Path(folder)) or 0


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
    return Path(output_dir) / CHECKPOINTS / f"{STAGING_PREFIX}{step:08d}"


def clear(staging: Path) -> None:
    """An empty staging folder (a crashed attempt at the same step is discarded)."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)


def write_rank_state(staging: Path, rank: int) -> None:
    """Every rank writes its RNG state into the staging folder (created by rank 0 beforehand)."""
    torch.save(rng_state(), staging / f"rng-rank{rank}.pt")


@quiet()
def write_state(staging: Path, trained: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                dist_main: bool, *, model_only: bool = False) -> None:
    """Every rank writes its shard of the model (and optimiser) with DCP into ``staging``.

    ``trained`` is the module the steps ran (plain, DDP or FSDP). ``model_only`` (at a stage boundary, where
    the next stage starts a fresh optimiser) saves the plain model, which only rank 0 holds under FSDP.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_state_dict

    if model_only:
        state = {MODEL_KEY: get_model_state_dict(trained) if dist_main else {}}
    else:
        model_state, optim_state = get_state_dict(trained, optimizer)
        state = {MODEL_KEY: model_state, OPTIM_KEY: optim_state}
    with quiet():
        dcp.save(state, checkpoint_id=str(staging))


def write_main_state(staging: Path, scheduler: Any, state: dict[str, Any], run_config: str) -> None:
    """Rank 0 writes the scheduler, ``state.json`` and the run's resolved config (YAML text)."""
    if scheduler is not None:
        torch.save(scheduler.state_dict(), staging / "scheduler.pt")
    (staging / RUN_CONFIG).write_text(run_config, encoding="utf-8")
    (staging / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def publish(staging: Path, keep: int) -> Path:
    """Rename the staging folder (its manifest written) into place and delete all but the newest ``keep``
    checkpoints: at most ``keep`` complete checkpoints remain, plus one while the next is being written."""
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


@quiet()
def load_model_weights(path: Path, model: torch.nn.Module) -> None:
    """Load the checkpoint's model into ``model`` (plain, DDP or FSDP; any number of processes)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

    state = get_model_state_dict(model)
    try:
        with quiet():
            dcp.load({MODEL_KEY: state}, checkpoint_id=str(path))
    except (RuntimeError, KeyError, ValueError) as exc:
        raise VocabExtendError(
            f"checkpoint {path} does not fit the model ({str(exc).strip().splitlines()[0][:120]}): resume with "
            "the config the run was started with") from None
    set_model_state_dict(model, state)


@quiet()
def load_trainer_state(path: Path, trained: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       scheduler: Any) -> None:
    """Load model and optimiser shards (resharded to this run's processes) and the scheduler."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(trained, optimizer)
    with quiet():
        dcp.load({MODEL_KEY: model_state, OPTIM_KEY: optim_state}, checkpoint_id=str(path))
    set_state_dict(trained, optimizer, model_state_dict=model_state, optim_state_dict=optim_state)
    scheduler.load_state_dict(torch.load(Path(path) / "scheduler.pt", weights_only=False))


def read_model_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's model tensors, whole, in one process (for inspection and tests)."""
    import tempfile

    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory() as tmp, quiet():
        dcp_to_torch_save(str(path), f"{tmp}/all.pt")
        return torch.load(f"{tmp}/all.pt", weights_only=False)[MODEL_KEY]


def load_rng_state(path: Path, rank: int) -> None:
    rng_file = Path(path) / f"rng-rank{rank}.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=False))
