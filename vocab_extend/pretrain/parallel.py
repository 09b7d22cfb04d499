"""How a stage's model is spread over the processes: ``parallelism: ddp`` or ``fsdp`` (PyTorch FSDP2).

- ``ddp``: every process holds the whole model; gradients are averaged (DistributedDataParallel).
- ``fsdp``: :func:`torch.distributed.fsdp.fully_shard` on every decoder layer (the model's
  ``_no_split_modules``) and on the root, so each process holds ``1/W`` of the parameters, gradients and
  AdamW state. On GPUs under ``precision: auto|bf16`` the layers compute in bf16 with gradients reduced in
  fp32 (``MixedPrecisionPolicy``); on CPUs (gloo) everything is fp32.

Between stages the model is plain again (LoRA merged, split rows joined): :func:`gather` collects the trained
model's full state dict onto rank 0's CPU (``cpu_offload``), which fills a parameter-less copy of the stage's
model taken before sharding (:func:`skeleton`); the other ranks keep that copy on the meta device and get
their shards back from rank 0 when the next stage is sharded (``broadcast_from_rank0``). So rank 0 holds the
whole model once, in CPU memory, and the other ranks never do.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from ..errors import VocabExtendError
from .dist import Dist, quiet

PARALLELISMS = ("ddp", "fsdp")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class ParallelConfig:
    """The ``parallel`` section: how the processes share the work, and in what precision."""

    parallelism: str = "ddp"  # several processes: ddp (a replica each) or fsdp (FSDP2 shards)
    precision: str = "auto"  # auto: fp32 on CPU, bf16 autocast on GPU
    micro_batch_size: int | None = None  # per rank per forward pass; default: the whole rank share
    device: str | None = None  # default: cuda when available

    def check(self) -> None:
        """Known names and a positive micro-batch; one sentence each."""
        if self.parallelism not in PARALLELISMS:
            raise VocabExtendError(
                f"parallelism {self.parallelism!r} is unknown: choose one of {', '.join(PARALLELISMS)}")
        if self.precision not in PRECISIONS:
            raise VocabExtendError(f"precision {self.precision!r} is unknown: choose one of {', '.join(PRECISIONS)}")
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise VocabExtendError(f"micro_batch_size must be positive, not {self.micro_batch_size!r}")


def bf16(precision: str, device: torch.device) -> bool:
    """Whether to compute in bf16: on GPUs under ``auto``, anywhere under ``bf16``."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast(precision: str, device: torch.device):
    """bf16 autocast when :func:`bf16` says so; full precision otherwise."""
    if bf16(precision, device):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class Wrapped:
    """The module the steps run, and (sharded only) the unsharded skeleton :func:`gather` fills."""

    module: nn.Module
    shape: nn.Module | None = None

    @property
    def sharded(self) -> bool:
        """Whether the parameters are new objects (shards), which a stage must :meth:`~.stages.Stage.rebind`."""
        return self.shape is not None


class Parallel:
    """The run's parallelism; the one place that knows ``ddp`` from ``fsdp``."""

    def __init__(self, config: ParallelConfig, dist: Dist) -> None:
        self.config, self.dist = config, dist
        check_parallelism(config.parallelism, dist)
        self.sharding = config.parallelism == "fsdp" and dist.world > 1

    def train_autocast(self):
        """The context of a training forward pass: under FSDP the mixed-precision policy casts the layers."""
        return contextlib.nullcontext() if self.sharding else autocast(self.config.precision, self.dist.device)

    def eval_autocast(self):
        return autocast(self.config.precision, self.dist.device)

    def wrap(self, model: nn.Module) -> Wrapped:
        """``model`` on the device: itself (one process), in DDP, or sharded (with its skeleton kept)."""
        shape = skeleton(model) if self.sharding else None
        return Wrapped(wrap(model, self.dist, self.config.parallelism, self.config.precision), shape)

    def unwrap(self, wrapped: Wrapped) -> nn.Module | None:
        """The plain model again once a stage is over (gathered onto rank 0 when it was sharded), or ``None``
        when the module the steps ran is already the plain model's wrapper."""
        return gather(wrapped.module, wrapped.shape, self.dist) if wrapped.shape is not None else None


def check_parallelism(parallelism: str, dist: Dist) -> None:
    if parallelism == "fsdp" and dist.world == 1:
        raise VocabExtendError(
            "parallelism fsdp needs several processes (launch with torchrun --nproc_per_node N); one process "
            "trains unsharded with parallelism ddp")


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The modules FSDP shards one by one: instances of the model's ``_no_split_modules`` classes."""
    names: set[str] = set()
    for m in model.modules():
        names.update(getattr(m, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise VocabExtendError(f"{type(model).__name__} names no decoder-layer class (_no_split_modules): FSDP "
                               "cannot shard it layer by layer; use parallelism ddp")
    return layers


def mixed_precision(precision: str, device: torch.device):
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if bf16(precision, device):
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def skeleton(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters are on the meta device (no memory); buffers are copied."""
    from torch.utils.hooks import RemovableHandle

    memo: dict[int, object] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for m in model.modules():  # hook handles kept as attributes (peft, checkpointing) are shared, not copied
        for value in vars(m).values():
            if isinstance(value, RemovableHandle):
                memo[id(value)] = value
    return copy.deepcopy(model, memo)


def shard(model: nn.Module, dist: Dist, precision: str) -> nn.Module:
    """FSDP2 over ``model`` in place; rank 0's values (the only real ones) are broadcast into the shards."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    from torch.distributed.fsdp import fully_shard

    full = model.state_dict() if dist.main else {}
    policy = mixed_precision(precision, dist.device)
    for layer in decoder_layers(model):
        fully_shard(layer, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    with quiet():
        set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
    _materialise_buffers(model, dist)
    return model


def _materialise_buffers(model: nn.Module, dist: Dist) -> None:
    """Buffers (rotary tables...) to the device, equal to rank 0's."""
    for module in model.modules():
        for name, buf in list(module._buffers.items()):
            if buf is None:
                continue
            moved = buf.to(dist.device) if not buf.is_meta else torch.empty_like(buf, device=dist.device)
            torch.distributed.broadcast(moved, src=0)
            module._buffers[name] = moved


def wrap(model: nn.Module, dist: Dist, parallelism: str, precision: str) -> nn.Module:
    """The module the steps run: ``model`` itself (one process), DDP around it, or ``model`` sharded."""
    if dist.world == 1:
        return model.to(dist.device)
    if parallelism == "fsdp":
        return shard(model, dist, precision)
    model = model.to(dist.device)
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)


def gradient_sync(trained: nn.Module, sync: bool):
    """Context for one micro-batch's backward: gradients are reduced only when ``sync`` (the last one)."""
    if is_sharded(trained):
        trained.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()
    if sync or not isinstance(trained, nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return trained.no_sync()


def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float) -> float:
    """The total gradient norm before clipping, over every rank's shards."""
    norm = torch.nn.utils.clip_grad_norm_(list(params), max_norm)
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return float(norm)


def gather(trained: nn.Module, shape: nn.Module, dist: Dist) -> nn.Module:
    """The sharded ``trained`` as the unsharded ``shape`` (its :func:`skeleton`): real on rank 0, meta elsewhere."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    with quiet():
        full = get_model_state_dict(trained, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if dist.main:
        shared: dict[int, list[str]] = {}  # tied weights: one parameter under several names
        for name, p in shape.named_parameters(remove_duplicate=False):
            shared.setdefault(id(p), []).append(name)
        shape.load_state_dict(full, strict=False, assign=True)
        for names in shared.values():  # assign=True put a tensor of its own under each name: tie them again
            for name in names[1:]:
                owner, _, leaf = name.rpartition(".")
                setattr(shape.get_submodule(owner), leaf, shape.get_parameter(names[0]))
        missing = [n for n, p in shape.named_parameters() if p.is_meta]
        if missing:
            raise RuntimeError(f"gathered state dict lacks {missing[:3]}")
    return shape
