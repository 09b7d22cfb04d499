"""Checkpoint files read without running code: JSON state, and DCP read through an allow-list.

A checkpoint may come from shared storage or from someone else, and its manifest only proves that its files
match the manifest beside them. So nothing read from it may run code:

- the schedule and every rank's RNG states are JSON (``scheduler.json``, ``rng-rank<R>.json``); the
  ``.pt`` files of older checkpoints are read with ``torch.load(weights_only=True)``, which builds plain
  data only (NumPy's RNG arrays allowed);
- DCP's ``.metadata`` is a pickle: :class:`SafeReader` unpickles it allowing only DCP's own metadata
  classes, ``torch.Size``, dtypes and layouts, and paths; the non-tensor entries of the optimiser state
  (``lr``, ``betas``...) are read with ``weights_only=True`` (:class:`SafePlanner`).

Anything else is refused before it is built, as one sentence (:class:`UnsafeCheckpoint`).

>>> state = rng_state()
>>> json.loads(json.dumps(state)) == state
True
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint._traverse import set_element
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner, _EmptyStateDictLoadPlanner
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy 1
    from numpy.core.multiarray import _reconstruct

from ..errors import VocabExtendError

SCHEDULER = "scheduler.json"
METADATA_MODULE = "torch.distributed.checkpoint.metadata"
ALLOWED = {("torch", "Size"), ("torch.serialization", "_get_layout"), ("pathlib", "PosixPath"),
           ("pathlib", "PurePosixPath"), ("collections", "OrderedDict"),
           ("torch.distributed.checkpoint.filesystem", "_StorageInfo")}


class UnsafeCheckpoint(VocabExtendError):
    """A checkpoint file holds more than plain data: it is not loaded."""


def refuse(where: Path | str, what: str) -> UnsafeCheckpoint:
    """The one sentence for a checkpoint file that holds more than plain data."""
    return UnsafeCheckpoint(
        f"--resume: {where} holds {what}, which could run code when loaded, so it is not loaded: resume only "
        "from checkpoints written by vocab-extend, or start the run again with --overwrite")


class _MetadataUnpickler(pickle.Unpickler):
    """Builds DCP metadata and nothing else: any other class or function named in the pickle is refused."""

    def find_class(self, module: str, name: str) -> Any:
        found = None
        if module == METADATA_MODULE or (module, name) in ALLOWED:
            found = super().find_class(module, name)
        elif module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            found = getattr(torch, name)
        if found is None or (module == METADATA_MODULE and not isinstance(found, type)):
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed")
        return found


def read_metadata(path: Path) -> Metadata:
    """DCP's ``.metadata`` of the checkpoint at ``path``, built through the allow-list."""
    try:
        with open(Path(path) / ".metadata", "rb") as handle:
            metadata = _MetadataUnpickler(handle).load()
    except OSError as exc:
        raise VocabExtendError(f"--resume: {Path(path) / '.metadata'} cannot be read ({exc.strerror}): resume "
                               "from another checkpoint or start again with --overwrite") from None
    except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, ValueError, TypeError) as exc:
        raise refuse(Path(path) / ".metadata", f"more than checkpoint metadata ({exc})") from None
    if not isinstance(metadata, Metadata):
        raise refuse(Path(path) / ".metadata", f"a {type(metadata).__name__}, not checkpoint metadata")
    return metadata


class SafeReader(FileSystemReader):
    """DCP's file reader, with the metadata read by :func:`read_metadata`."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        metadata = read_metadata(Path(self.path))
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata


class _SafeBytes:
    """``load_bytes`` of a DCP load planner with ``weights_only=True``."""

    def load_bytes(self, read_item: Any, value: io.BytesIO) -> None:
        try:
            obj = torch.load(value, weights_only=True)
        except pickle.UnpicklingError:
            raise refuse("the checkpoint", f"an optimiser entry ({read_item.dest_index.fqn}) that is not plain "
                         "data") from None
        if self.flatten_state_dict:  # type: ignore[attr-defined]
            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], obj)  # type: ignore
        else:
            self.state_dict[read_item.dest_index.fqn] = obj  # type: ignore[attr-defined]


class SafePlanner(_SafeBytes, DefaultLoadPlanner):
    """DCP's default load planner, reading non-tensor entries as plain data only."""


class SafeEmptyPlanner(_SafeBytes, _EmptyStateDictLoadPlanner):
    """DCP's planner that rebuilds a whole state dict from the metadata, as plain data only."""


def _bytes(tensor: torch.Tensor) -> str:
    return base64.b64encode(tensor.numpy().tobytes()).decode("ascii")


def _tensor(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def rng_state() -> dict[str, Any]:
    """This process's Python, NumPy, torch (and CUDA) generator states, as JSON-ready data."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {"python": [version, list(internal), gauss],
                             "numpy": [name, keys.tolist(), pos, has_gauss, cached],
                             "torch": _bytes(torch.get_rng_state())}
    if torch.cuda.is_available():
        state["cuda"] = [_bytes(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` gave (or the tensors and arrays of an older ``.pt`` RNG file)."""
    python, (name, keys, pos, has_gauss, cached) = state["python"], state["numpy"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(_tensor(state["torch"]) if isinstance(state["torch"], str) else state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_tensor(s) if isinstance(s, str) else s for s in state["cuda"]])


def write_json(path: Path, state: Any) -> None:
    path.write_text(json.dumps(state, sort_keys=True) + "\n", encoding="utf-8")


def read_state_file(folder: Path, name: str) -> Any:
    """``name`` (``*.json``) of a checkpoint, or its older ``.pt`` form read as plain data only."""
    path = Path(folder) / name
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    legacy = path.with_suffix(".pt")
    if not legacy.is_file():
        return None
    allowed = [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]  # NumPy's RNG state arrays
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(legacy, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise refuse(legacy, f"more than plain data ({str(exc).strip().splitlines()[0][:200]})") from None


def check_loadable(folder: Path, rank: int) -> None:
    """Refuse a checkpoint whose metadata, schedule or RNG states (this rank's) would not load as plain data,
    before the run writes anything."""
    read_metadata(folder)
    read_state_file(folder, SCHEDULER)
    read_state_file(folder, f"rng-rank{rank}.json")
