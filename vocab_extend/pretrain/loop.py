"""The training loop: stages in sequence, AdamW with warmup + cosine, gradient accumulation, DDP.

One process or many: under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE`` > 1) the model is wrapped in
DistributedDataParallel (gloo on CPU, NCCL on GPU). ``batch_size`` is the global batch: at step ``s`` the
run reads blocks ``s*B .. s*B+B-1`` of its fixed shuffled order (:class:`~.data.PackedBlocks`); rank ``r``
of ``W`` takes the ``r``-th of ``W`` equal slices and splits it into micro-batches. Every block has
``block_size`` tokens, so the mean of the ranks' mean losses is the global mean loss, and a 2-process run
follows the 1-process run with the same global batch (up to float rounding).

Each stage gets a fresh AdamW and a schedule of linear warmup then cosine decay to ``lr * min_lr_ratio``
over the steps the stage runs. Checkpoints hold everything needed to continue bit-for-bit
(:mod:`.checkpoint`); a ``lora`` stage is merged into the weights when it ends, before any checkpoint of
that step, so a checkpoint at a stage boundary holds a plain model.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

from ..errors import VocabExtendError
from ..staging import staging_folder
from . import checkpoint as ckpt
from .config import PretrainConfig, StageConfig
from .data import PackedBlocks, build_training_blocks, eval_documents, exclusion_set
from .model import base_vocab_size, build_merged_tokenizer, build_model, tokenizer_source
from .outputs import MetricsLog, token_reduction_rows, write_report
from .stages import check_stage, finish_stage, is_lora, prepare_stage

MODEL_DIR = "model"
RUN_CONFIG = "config.yaml"  # the run's resolved config; --resume checks it against the new one
RUN_MARKERS = ("metrics.jsonl", ckpt.CHECKPOINTS, MODEL_DIR, RUN_CONFIG)  # a folder --overwrite may delete
# Settings that decide the losses: a resumed run must keep them (evaluation, logging and checkpointing may
# change, and so may the number of processes and the micro-batch size).
TRAJECTORY_KEYS = ("model", "tokenizer", "tokenizer_merge", "pico", "base_vocab_size", "train", "eval",
                   "heldout_fraction", "text_field", "max_docs", "block_size", "streaming", "shuffle_buffer",
                   "stages", "max_steps", "batch_size", "lr", "warmup_steps", "min_lr_ratio", "weight_decay",
                   "adam_betas", "adam_eps", "max_grad_norm", "precision", "seed")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab_extend.json")


@dataclass
class Dist:
    """The process group of a run (world size 1 when not launched by torchrun/accelerate)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def mean(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world


def setup_dist(device: str | None) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise VocabExtendError(f"device {device!r} is not a torch device: use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise VocabExtendError(f"device {device!r} asks for a GPU but torch sees none: use --device cpu")
        if dev.index is None:  # each process of a torchrun/accelerate launch takes its own GPU
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, dev)


def lr_lambda(warmup: int, total: int, min_ratio: float):
    """Linear warmup from 1/warmup to 1, then cosine from 1 down to ``min_ratio`` at ``total`` steps.

    >>> f = lr_lambda(2, 10, 0.1)
    >>> [round(f(s), 3) for s in (0, 1, 2, 10)]
    [0.5, 1.0, 1.0, 0.1]
    """

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def make_optimizer(config: PretrainConfig, stage: StageConfig, prepared, steps: int):
    decay = config.stage_setting(stage, "weight_decay")
    groups = [
        {"params": [p for p in prepared.params if p.ndim >= 2 and id(p) not in prepared.no_decay],
         "weight_decay": decay},
        {"params": [p for p in prepared.params if p.ndim < 2 or id(p) in prepared.no_decay], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=config.stage_setting(stage, "lr"), betas=tuple(config.adam_betas),
                                  eps=config.adam_eps)
    warmup = min(config.stage_setting(stage, "warmup_steps"), steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(warmup, steps, config.stage_setting(stage, "min_lr_ratio")))
    return optimizer, scheduler


def _micro_batches(config: PretrainConfig, dist: Dist) -> tuple[int, int]:
    """(sequences per rank per step, micro-batch size)."""
    if config.batch_size % dist.world:
        raise VocabExtendError(
            f"batch_size {config.batch_size} does not split over {dist.world} processes: use a multiple of {dist.world}")
    per_rank = config.batch_size // dist.world
    micro = config.micro_batch_size or per_rank
    if per_rank % micro:
        raise VocabExtendError(
            f"micro_batch_size {micro} does not divide the {per_rank} sequences each process gets per step: "
            "choose a divisor")
    return per_rank, micro


def _autocast(config: PretrainConfig, device: torch.device):
    use_bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    if use_bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _prepare_output(config: PretrainConfig, resume: bool) -> tuple[Path, Path | None]:
    out = Path(config.output_dir)
    latest = ckpt.latest_checkpoint(out) if resume else None
    if resume and latest is None:
        raise VocabExtendError(f"--resume: {out} holds no checkpoint to resume from; drop --resume to start a run")
    if out.exists() and not out.is_dir():
        raise VocabExtendError(f"output folder {out} is a file: choose another --output-dir")
    if out.exists() and any(out.iterdir()) and not resume:
        if not any((out / name).exists() for name in RUN_MARKERS):
            raise VocabExtendError(
                f"output folder {out} holds files that are not a pretraining run: choose another --output-dir")
        if not config.overwrite:
            raise VocabExtendError(
                f"output folder {out} already holds a run: pass --resume to continue it, --overwrite to "
                "start over, or another --output-dir")
    return out, latest


def check_resume(config: PretrainConfig, out: Path, checkpoint: Path, step: int) -> None:
    """Refuse to resume with settings that change the run's losses, or from past the run's last step."""
    if (out / MODEL_DIR).is_dir():
        raise VocabExtendError(
            f"--resume: the run in {out} has finished (its {MODEL_DIR}/ is written); start a new run with "
            "--overwrite or another --output-dir")
    saved_file = out / RUN_CONFIG
    if saved_file.is_file():
        saved = yaml.safe_load(saved_file.read_text(encoding="utf-8")) or {}
        now = _plain(config.to_dict())
        for key in TRAJECTORY_KEYS:
            if key in saved and _plain(saved[key]) != now[key]:
                raise VocabExtendError(
                    f"--resume: the run in {out} was started with {key} {_short(saved[key])}, not "
                    f"{_short(now[key])}; resume with the same settings, or start a new run with --overwrite")
    if step >= config.total_steps:
        raise VocabExtendError(
            f"--resume: {checkpoint} is at step {step}, but this run has only {config.total_steps} steps: "
            "resume with the max_steps the run was started with")


def _short(value: Any) -> str:
    """A setting as one short phrase: stages as ``new-rows:10,full:10``, anything else cut to 80 characters.

    >>> _short([{"name": "new-rows", "steps": 10, "lr": 0.003}, {"name": "full", "steps": 5}])
    'new-rows:10,full:5'
    """
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        return ",".join(f"{v['name']}:{v.get('steps')}" for v in value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _plain(value: Any) -> Any:
    """``value`` as YAML would give it back (tuples as lists, dataclasses as mappings)."""
    return yaml.safe_load(yaml.safe_dump(value))


class Trainer:
    """One run; :func:`pretrain` is the public entry point."""

    def __init__(self, config: PretrainConfig, *, resume: bool = False) -> None:
        self.config = config
        self.dist = setup_dist(config.device)
        self.out, self.resume_from = _prepare_output(config, resume)

    def _claim_output(self) -> None:
        """Start the run's folder once every check has passed (replacing an old run under --overwrite)."""
        if self.dist.main:
            if self.config.overwrite and self.resume_from is None and self.out.exists():
                shutil.rmtree(self.out)
            self.out.mkdir(parents=True, exist_ok=True)
            if self.resume_from is None:
                text = yaml.safe_dump(_plain(self.config.to_dict()), sort_keys=False, allow_unicode=True)
                (self.out / RUN_CONFIG).write_text(text, encoding="utf-8")
        self.dist.barrier()

    def log(self, message: str) -> None:
        if self.dist.main:
            tqdm.write(message, file=sys.stderr)

    # ------------------------------------------------------------------------------------------ setup
    def _setup(self) -> None:
        from ..tokenizer.loader import load_tokenizer

        config, dist = self.config, self.dist
        if config.tokenizer_merge is not None:
            if dist.main:
                build_merged_tokenizer(config)
            dist.barrier()
        self.tokenizer_dir = tokenizer_source(config)
        self.tokenizer = load_tokenizer(self.tokenizer_dir)
        self.eval_docs = eval_documents(config)
        exclude = exclusion_set(self.eval_docs)
        # The main process builds the on-disk cache; the others load it once it is there.
        if config.streaming or dist.main:
            self.blocks: PackedBlocks = build_training_blocks(config, self.tokenizer, exclude, is_main=True)
        if not config.streaming and dist.world > 1:
            dist.barrier()
            if not dist.main:
                self.blocks = build_training_blocks(config, self.tokenizer, exclude, is_main=False)
        self.base_rows = base_vocab_size(config)
        self.model = build_model(config, self.tokenizer)
        if config.gradient_checkpointing:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            self.model.config.use_cache = False
        if self.blocks.tokens is not None:
            self.log(f"training data: {self.blocks.num_blocks:,} blocks of {config.block_size} tokens "
                     f"({self.blocks.tokens:,} tokens); eval corpora: {', '.join(self.eval_docs) or 'none'}")

    # ----------------------------------------------------------------------------------------- eval
    def evaluate(self, model: torch.nn.Module, step: int) -> None:
        from ..model.bpb import bits_per_byte

        if self.dist.main and self.eval_docs:
            bpb, loss = {}, {}
            for name, texts in self.eval_docs.items():
                with _autocast(self.config, self.dist.device):
                    result = bits_per_byte(model, self.tokenizer, texts, max_bytes=self.config.eval_max_bytes,
                                           block_size=self.config.eval_block_size,
                                           batch_size=self.config.eval_batch_size,
                                           device=self.dist.device, progress=False)
                bpb[name], loss[name] = round(result.bpb, 6), round(result.loss, 6)
            self.metrics.write({"kind": "eval", "step": step, "bpb": bpb, "loss": loss})
            self.log(f"step {step}: bits per byte " + ", ".join(f"{k} {v:.4f}" for k, v in bpb.items()))
        self.dist.barrier()

    # ------------------------------------------------------------------------------------ checkpoint
    def save_checkpoint(self, model: torch.nn.Module, optimizer, scheduler, step: int, stage_index: int) -> None:
        staging = ckpt.staging_path(self.out, step)
        if self.dist.main:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        self.dist.barrier()
        ckpt.write_rank_state(staging, self.dist.rank)
        if self.dist.main:
            state = {"step": step, "optimizer_stage": stage_index, "lora": is_lora(model),
                     "data_position": step * self.config.batch_size, "world_size": self.dist.world}
            ckpt.write_main_state(staging, model, optimizer, scheduler, state)
        self.dist.barrier()
        if self.dist.main:
            ckpt.publish(staging, self.config.keep_checkpoints)
        self.dist.barrier()

    # ---------------------------------------------------------------------------------------- train
    def train(self) -> Path:
        config, dist = self.config, self.dist
        self._setup()
        per_rank, micro = _micro_batches(config, dist)
        plan = config.stage_plan()
        for stage, _, _ in plan:
            check_stage(self.model, stage, self.base_rows)
        start_step, state = 0, None
        if self.resume_from is not None:
            state = ckpt.read_state(self.resume_from)
            start_step = state["step"]
            check_resume(config, self.out, self.resume_from, start_step)
            self.log(f"resuming from {self.resume_from} (step {start_step})")
        self._claim_output()
        self.metrics = MetricsLog(self.out, resume_step=start_step if state else None,
                                  tensorboard=config.tensorboard) if dist.main else None
        model = self.model.to(dist.device)
        total = config.total_steps
        if state is None and config.eval_at_start:
            self.evaluate(model, 0)
        bar = tqdm(total=total, initial=start_step, desc="pretraining", unit="step", disable=not (
            dist.main and config.progress), dynamic_ncols=True)
        step = start_step
        for index, (stage, first, steps) in enumerate(plan):
            if first + steps <= start_step:
                continue
            resuming_here = state is not None and first <= start_step
            mid_stage = resuming_here and start_step > first
            if resuming_here and not state["lora"]:
                ckpt.load_model_weights(self.resume_from, model)
            if not mid_stage:  # the same LoRA initialisation on every rank, resumed or not
                torch.manual_seed(config.seed + 1000 * index)
            prepared = prepare_stage(model, stage, self.base_rows)
            model = prepared.model.to(dist.device)
            if resuming_here and state["lora"]:
                ckpt.load_model_weights(self.resume_from, model)
            optimizer, scheduler = make_optimizer(config, stage, prepared, steps)
            if mid_stage:  # continue this stage's optimiser and every rank's RNG
                ckpt.load_trainer_state(self.resume_from, optimizer, scheduler)
                ckpt.load_rng_state(self.resume_from, dist.rank)
            else:  # a stage starts: fresh optimiser, per-rank seeded RNG (dropout), as in an uninterrupted run
                torch.manual_seed(config.seed + 1000 * index + 1 + dist.rank)
            trained = model
            if dist.world > 1:
                trained = torch.nn.parallel.DistributedDataParallel(
                    model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
            left = first + steps - max(step, first)
            self.log(f"stage {index + 1}/{len(plan)}: {stage.name}, {left} steps" + (
                f" (of {steps}, resumed)" if left < steps else "") + ", "
                     f"{prepared.trainable:,} trainable parameters")
            model.train()
            while step < first + steps:
                record = self._step(trained, prepared, optimizer, scheduler, step, per_rank, micro)
                record["stage"] = stage.name
                step += 1
                if dist.main:
                    if step % config.log_every == 0 or step == total:
                        self.metrics.write(record)
                    bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}",
                                    tok_s=f"{record['tokens_per_s']:,.0f}")
                    bar.update(1)
                if step == first + steps:
                    model = finish_stage(model)
                if (config.eval_every and step % config.eval_every == 0) or step == total:
                    self.evaluate(model, step)
                if config.save_every and step % config.save_every == 0 and step < total:
                    self.save_checkpoint(model, optimizer, scheduler, step, index)
            del trained
        bar.close()
        self.model = model
        return self._finish(model)

    def _step(self, model, prepared, optimizer, scheduler, step: int, per_rank: int, micro: int) -> dict[str, Any]:
        config, dist = self.config, self.dist
        started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        batch = self.blocks.get(step * config.batch_size + dist.rank * per_rank, per_rank)
        inputs = torch.from_numpy(batch).to(dist.device)
        accum = per_rank // micro
        loss_sum = 0.0
        for i in range(accum):
            chunk = inputs[i * micro:(i + 1) * micro]
            sync = i == accum - 1 or dist.world == 1
            context = contextlib.nullcontext() if sync else model.no_sync()
            with context:
                with _autocast(config, dist.device):
                    loss = model(input_ids=chunk, labels=chunk, use_cache=False).loss
                (loss / accum).backward()
            loss_sum += float(loss.detach())
        prepared.mask_grads()
        grad_norm = None
        if config.max_grad_norm:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(prepared.params, config.max_grad_norm))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = dist.mean(loss_sum / accum)
        elapsed = time.perf_counter() - started
        record = {"kind": "train", "step": step + 1, "loss": round(loss_value, 6), "lr": lr,
                  "tokens_per_s": round(config.batch_size * config.block_size / max(elapsed, 1e-9), 1)}
        if grad_norm is not None:
            record["grad_norm"] = round(grad_norm, 6)
        return record

    # --------------------------------------------------------------------------------------- finish
    def _finish(self, model: torch.nn.Module) -> Path:
        from ..metadata import METADATA_FILE
        from ..tokenizer.loader import load_base_tokenizer

        config = self.config
        target = self.out / MODEL_DIR
        if self.dist.main:
            with staging_folder(target, overwrite=True) as tmp:
                model.save_pretrained(tmp, safe_serialization=True)
                self.tokenizer.save_pretrained(tmp)
                source = Path(self.tokenizer_dir)
                for name in TOKENIZER_FILES:  # the merge's own files, byte for byte, where there are any
                    if source.is_dir() and (source / name).is_file():
                        shutil.copy2(source / name, tmp / name)
            reduction = None
            if (Path(self.tokenizer_dir) / METADATA_FILE).is_file() and self.eval_docs:
                try:
                    base = load_base_tokenizer(self.tokenizer_dir)
                    reduction = token_reduction_rows(self.tokenizer, base, self.eval_docs)
                except VocabExtendError as exc:
                    self.log(f"note: no token-reduction table ({exc})")
            write_report(self.out, config.to_dict(), reduction)
            self.metrics.close()
            self.log(f"wrote {target} and {self.out / 'report.md'}")
        self.dist.barrier()
        return target


def pretrain(config: PretrainConfig, *, resume: bool = False) -> Path:
    """Run continued pretraining as ``config`` says; return the folder of the final model.

    Outputs in ``config.output_dir``: ``metrics.jsonl``, ``tensorboard/``, ``checkpoints/``, ``report.md``
    with ``bpb.png`` and ``loss.png``, and ``model/`` (safetensors + tokenizer, Hugging Face layout).
    """
    return Trainer(config, resume=resume).train()
