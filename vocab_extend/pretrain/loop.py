"""The training loop: stages in sequence, AdamW with warmup + cosine, gradient accumulation, DDP or FSDP2.

One process or many: under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE`` > 1) the model is wrapped in
DistributedDataParallel or sharded with FSDP2 (:class:`~.parallel.Parallel`), over gloo on CPU and NCCL on
GPU. ``batch_size`` is the global batch: at step ``s`` the run reads blocks ``s*B .. s*B+B-1`` of its fixed
order (:class:`~.data.PackedBlocks`, :class:`~.mixture.MixedBlocks` or :class:`~.stream.StreamedBlocks`);
rank ``r`` of ``W`` takes the ``r``-th of ``W`` equal slices and splits it into micro-batches. Every block
has ``block_size`` tokens, so the mean of the ranks' mean losses is the global mean loss, and a 2-process
run follows the 1-process run with the same global batch (up to float rounding).

Each stage (:mod:`.stages`) gets a fresh AdamW and a schedule of linear warmup then cosine decay to
``lr * min_lr_ratio`` over the steps the stage runs. :meth:`Trainer.train` only sequences the steps; the
components decide when to log (:mod:`.metrics`), evaluate (:mod:`.evaluation`) and checkpoint
(:mod:`.checkpoint`). A stage's own shape (LoRA adapters, split rows, FSDP shards) is undone when the stage
ends, before any checkpoint of that step, so a checkpoint at a stage boundary holds a plain model; only the
checkpoint at the run's last step is taken before, in the stage's shape with its optimiser, and a run that
starts from it ends that stage from it, then goes on with the next (or the same stage, longer).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import VocabExtendError
from ..locks import output_lock
from ..metadata import METADATA_FILE
from ..model.card import push_folder
from ..staging import staging_folder
from ..tokenizer.loader import load_base_tokenizer, load_tokenizer
from .checkpoint import Checkpointer, list_checkpoints
from .config import PretrainConfig, load_config
from .continuing import prepare_continue, run_config_file, start_line
from .data import build_data, corpus_groups, eval_documents, exclusion_set
from .dist import exit_refused, micro_batches, setup_dist
from .evaluation import Validator
from .metrics import MetricsLogger
from .mixture import MixedBlocks
from .model import base_vocab_size, build_merged_tokenizer, build_model, check_fit, tokenizer_source
from .model_folder import write_model_folder
from .optim import make_optimizer
from .outputs import read_metrics, token_reduction_rows
from .report import run_card, write_report
from .paid import compare_with_base
from .parallel import Parallel, Wrapped, clip_grad_norm, gradient_sync
from .run_dir import MODEL_DIR, check_resume, claim_output, prepare_output, run_config_text
from .stages import PreparedStage, Stage, StageConfig, stage_for

@dataclass
class Running:
    """A stage under way: the stage, its model, the module the steps run, what trains and how."""

    stage: Stage
    model: torch.nn.Module
    wrapped: Wrapped
    prepared: PreparedStage
    optimizer: torch.optim.Optimizer
    scheduler: Any


class Trainer:
    """One run; :func:`pretrain` is the public entry point."""

    def __init__(self, config: PretrainConfig, *, resume: bool = False, continue_from: Path | None = None) -> None:
        self.config = config
        self.dist = setup_dist(config.parallel.device)
        self.continue_from = None if continue_from is None else Path(continue_from)
        self.logged_eval: dict[str, float] | None = None  # the last evaluation, when only the log holds it
        if self.continue_from is not None:  # a finished run goes on from its checkpoint, into a new folder
            self.out, self.resume_from = prepare_continue(config, self.continue_from, resume, self.dist)
        else:
            self.out, self.resume_from = prepare_output(config, resume, self.dist)

    # ------------------------------------------------------------------------------------------ setup
    def _setup(self) -> None:
        """Tokenizer, eval documents, training blocks and model, each checked."""
        config, dist = self.config, self.dist
        if config.model.tokenizer_merge is not None:
            with dist.together():
                if dist.main:
                    build_merged_tokenizer(config.model, config.data)
        self.tokenizer_dir = tokenizer_source(config.model, config.data)
        self.tokenizer = load_tokenizer(self.tokenizer_dir)
        self.eval_docs = eval_documents(config.data, config.eval)
        exclude = exclusion_set(self.eval_docs)
        # The main process builds the on-disk cache; the others load it once it is there.
        with dist.together():
            if config.data.streaming or dist.main:
                self.blocks = build_data(config.data, config.seed, self.tokenizer, exclude, is_main=True)
        if not config.data.streaming and not dist.main:
            self.blocks = build_data(config.data, config.seed, self.tokenizer, exclude, is_main=False)
        names = list(corpus_groups(config.data.train))
        self.corpus_blocks = (self.blocks.counts if isinstance(self.blocks, MixedBlocks)
                              else (lambda n: {names[0]: n}) if len(names) == 1 else None)
        self.base_rows = base_vocab_size(config.model, config.data)
        if self.base_rows is not None and self.base_rows > len(self.tokenizer):
            raise VocabExtendError(f"base_vocab_size {self.base_rows} is more than the tokenizer's "
                                   f"{len(self.tokenizer):,} tokens: leave it unset (the merge metadata says it)")
        self.model = build_model(config.model, self.tokenizer, config.seed)
        check_fit(self.model, self.tokenizer, config.data.block_size, config.eval.block_size)

    def _start(self) -> tuple[int, int]:
        """Every check, then the output folder and the components; returns (per-rank sequences, micro-batch)."""
        config, dist = self.config, self.dist
        # the checks that need neither model nor data come before tokenizing and loading
        per_rank, micro = micro_batches(config.data.batch_size, config.parallel.micro_batch_size, dist)
        self.parallel = Parallel(config.parallel, dist)
        self._setup()
        for stage, _, _ in config.stage_plan():
            stage_for(stage).check(self.model, self.base_rows)
        if self.resume_from is not None and self.continue_from is None:
            check_resume(config, self.out, self.resume_from)
        self.checkpointer = Checkpointer(config.checkpoint, dist, self.out, self.resume_from, config.total_steps,
                                         run_config_text(config))
        self.checkpointer.restore_data(self.blocks)
        with dist.together():
            if dist.main:
                claim_output(config, self.out, resuming=self.continue_from is None and self.resume_from is not None,
                             continue_from=self.continue_from)
        self._start_components()
        return per_rank, micro

    def _start_components(self) -> None:
        config, start = self.config, self.checkpointer.start_step
        self.metrics = MetricsLogger(config.logging, config.total_steps, self.dist, self.out, start,
                                     resumed=self.resume_from is not None)
        self.validator = Validator(config.eval, config.total_steps, self.dist, self.tokenizer, self.eval_docs,
                                   self.metrics, self.parallel.eval_autocast,
                                   train_tokens=config.total_steps * config.data.batch_size * config.data.block_size)
        if self.continue_from is not None and self.resume_from is not None and self.dist.main:
            self.metrics.message(start_line(self.continue_from, self.resume_from, start, self.out))
        elif self.resume_from is not None:
            done = " (the last step: nothing is left to train)" if start == config.total_steps else ""
            self.metrics.message(f"resuming from {self.resume_from} (step {start}){done}")
        if self.blocks.tokens is not None:
            self.metrics.message(
                f"training data: {self.blocks.num_blocks:,} blocks of {config.data.block_size} tokens "
                f"({self.blocks.tokens:,} tokens); eval corpora: {', '.join(self.eval_docs) or 'none'}")

    # --------------------------------------------------------------------------------------- stages
    def _start_stage(self, model: torch.nn.Module, index: int, config: StageConfig, first: int,
                     steps: int) -> Running:
        """The stage's model prepared and wrapped, its trainable parameters, optimiser and schedule."""
        seed, dist, start = self.config.seed, self.dist, self.checkpointer.start_step
        resuming_here = self.checkpointer.state is not None and first <= start
        mid_stage = resuming_here and start > first  # the checkpoint holds this stage's shape of the model
        if resuming_here and not mid_stage and self.checkpointer.plain_model:
            self.checkpointer.load_model(model)  # else the stage before ended at the checkpoint and gave it
        if not mid_stage:  # the same LoRA initialisation on every rank, resumed or not
            torch.manual_seed(seed + 1000 * index)
        stage = stage_for(config)
        prepared = stage.prepare(model, self.base_rows)
        wrapped = self.parallel.wrap(prepared.model)
        if wrapped.sharded:
            prepared = stage.rebind(prepared, wrapped.module)
        model = prepared.model.to(dist.device)
        optimizer, scheduler = make_optimizer(self.config.optim, config, prepared.params, prepared.no_decay,
                                              steps, prepared.lr)
        if mid_stage:  # continue this stage's model, optimiser and every rank's RNG
            self.checkpointer.load_trainer(wrapped.module, optimizer, scheduler)
        else:  # a stage starts: fresh optimiser, per-rank seeded RNG (dropout), as in an uninterrupted run
            torch.manual_seed(seed + 1000 * index + 1 + dist.rank)
        left = first + steps - max(start, first)
        ran = f"{left} steps" + (f" (of {steps}, resumed)" if left < steps else "")
        self.metrics.message(
            f"stage {index + 1}/{len(self.config.stage_plan())}: {config.name}, "
            + (f"{ran}, {prepared.trainable:,} trainable parameters" if left else "ended at the checkpoint")
            + (f", sharded over {dist.world} processes" if wrapped.sharded else ""))
        wrapped.module.train()
        return Running(stage, model, wrapped, prepared, optimizer, scheduler)

    def _end_stage(self, run: Running) -> torch.nn.Module:
        """The plain model once a stage is over (gathered onto rank 0 when it was sharded)."""
        gathered = self.parallel.unwrap(run.wrapped)
        return run.stage.finish(run.model if gathered is None else gathered)

    # ---------------------------------------------------------------------------------------- train
    def train(self) -> Path:
        """The whole run; rank 0 holds the run folder's lock throughout, so a second run on it is refused
        (on every rank, in the same sentence)."""
        with contextlib.ExitStack() as held:
            with self.dist.together():
                if self.dist.main:
                    held.enter_context(output_lock(self.out))
            return self._train()

    def _train(self) -> Path:
        per_rank, micro = self._start()
        model = self.model.to(self.dist.device)
        step = self.checkpointer.start_step
        if self.checkpointer.state is None and self.validator.should_validate(0):
            self.validator.validate(model, 0)
        for index, (stage, first, steps) in enumerate(self.config.stage_plan()):
            end = first + steps
            if end < step or (end == step and self.checkpointer.plain_model):
                continue  # ran before the checkpoint (one of the plain model at its end starts the next stage)
            run = self._start_stage(model, index, stage, first, steps)
            if step == end:  # the checkpoint was taken at this stage's last step, in its shape: end the stage
                model = self._end_stage(run)
            while step < end:
                record = self._step(run.wrapped.module, run.prepared.params, run.optimizer, run.scheduler, step,
                                    per_rank, micro)
                record["stage"] = stage.name
                self._stop_if_diverged(record)
                step += 1
                self.metrics.train_step(record)
                saving = self.checkpointer.saves_at(step)
                if saving == "end":  # before the stage's shape is undone: with its optimiser, schedule and RNG
                    self._save(step, run, index, boundary=False)
                if step == end:
                    model = run.model = self._end_stage(run)
                    run.wrapped = Wrapped(model)
                if self.validator.should_validate(step):
                    self.validator.validate(run.model, step)
                if saving == "every":  # at a stage's end: the plain model, as the next stage starts afresh
                    self._save(step, run, index, boundary=step == end)
            del run
        if self.checkpointer.start_step == self.config.total_steps:
            self._validate_after_final_checkpoint(model)
        self.model = model
        return self._finish(model)

    def _save(self, step: int, run: Running, index: int, boundary: bool) -> None:
        """A checkpoint of step ``step`` (``run.wrapped`` is the plain model at a boundary)."""
        extra = {"data_position": step * self.config.data.batch_size, "parallelism": self.config.parallel.parallelism}
        self.checkpointer.save(step, run.wrapped.module, run.optimizer, run.scheduler, index, boundary=boundary,
                               extra=extra)

    def _validate_after_final_checkpoint(self, model: torch.nn.Module) -> None:
        """A run resumed from its checkpoint at the last step trains nothing. The evaluation at that step
        comes after the checkpoint, so it is done here unless the log holds it (the run was stopped later,
        while comparing or writing ``model/``); its figures go on the model card either way."""
        total = self.config.total_steps
        logged = []
        if self.dist.main:
            logged = [r for r in read_metrics(self.out) if r["kind"] == "eval" and r["step"] == total]
        if not self.dist.from_main(bool(logged)) and self.validator.should_validate(total):
            self.validator.validate(model, total)
        elif logged:
            self.logged_eval = dict(logged[-1].get("bpb") or {})

    def _stop_if_diverged(self, record: dict[str, Any]) -> None:
        """A non-finite loss or gradient norm ends the run with one sentence (every rank sees the same value:
        both are reduced over the processes), before anything from that step is logged or saved."""
        bad = {k: record.get(k) for k in ("loss", "grad_norm")
               if record.get(k) is not None and not math.isfinite(record[k])}
        if not bad:
            return
        saved = list_checkpoints(self.out)
        last = f"the last checkpoint is {saved[-1].name}" if saved else "no checkpoint was written"
        what = ", ".join(f"{k} {v}" for k, v in bad.items())
        raise VocabExtendError(f"training diverged at step {record['step']} ({what}); nothing of this step was "
                               f"saved and {last}: lower lr (or set max_grad_norm) and start again")

    def _step(self, model, params, optimizer, scheduler, step: int, per_rank: int, micro: int) -> dict[str, Any]:
        """One optimiser step over the global batch of ``step`` (0-based); returns its training record."""
        data, dist, max_norm = self.config.data, self.dist, self.config.optim.max_grad_norm
        started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        batch = self.blocks.get(step * data.batch_size + dist.rank * per_rank, per_rank)
        inputs = torch.from_numpy(batch).to(dist.device)
        accum = per_rank // micro
        loss_sum = 0.0
        for i in range(accum):
            chunk = inputs[i * micro:(i + 1) * micro]
            with gradient_sync(model, i == accum - 1):
                with self.parallel.train_autocast():
                    loss = model(input_ids=chunk, labels=chunk, use_cache=False).loss
                (loss / accum).backward()
            loss_sum += float(loss.detach())
        grad_norm = clip_grad_norm(params, max_norm) if max_norm else None
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = dist.mean(loss_sum / accum)
        elapsed = time.perf_counter() - started
        record = {"kind": "train", "step": step + 1, "loss": round(loss_value, 6), "lr": lr,
                  "tokens_per_s": round(data.batch_size * data.block_size / max(elapsed, 1e-9), 1)}
        if grad_norm is not None:
            record["grad_norm"] = round(grad_norm, 6)
        if self.corpus_blocks is not None:
            record["corpus_blocks"] = self.corpus_blocks((step + 1) * data.batch_size)
        return record

    # --------------------------------------------------------------------------------------- finish
    def _finish(self, model: torch.nn.Module) -> Path:
        """The final ``model/`` folder, ``report.md`` and (if asked) the upload; rank 0 writes."""
        config, target = self.config, self.out / MODEL_DIR
        if self.dist.main:
            with staging_folder(target, overwrite=True) as tmp:
                write_model_folder(tmp, model, self.tokenizer, Path(self.tokenizer_dir),
                                   run_card(config, Path(self.tokenizer_dir), self._last_eval()))
            self._report(model)
            self.metrics.message(f"wrote {target} and {self.out / 'report.md'}")
            if config.push_to_hub:
                self.metrics.message(f"pushed to {push_folder(target, config.push_to_hub)}")
        self.metrics.close()
        self.dist.barrier()
        return target

    def _last_eval(self) -> dict[str, float] | None:
        """Bits per byte of the run's last evaluation (read from the log when this process made none)."""
        return self.metrics.last_eval() or self.logged_eval

    def _report(self, model: torch.nn.Module) -> None:
        """``report.md``: token reduction, bits per byte, and the comparison with the base model."""
        reduction = None
        if (Path(self.tokenizer_dir) / METADATA_FILE).is_file() and self.eval_docs:
            try:
                base = load_base_tokenizer(self.tokenizer_dir)
                reduction = token_reduction_rows(self.tokenizer, base, self.eval_docs)
            except VocabExtendError as exc:
                self.metrics.message(f"note: no token-reduction table ({exc})")
        compared = compare_with_base(self.config.model.name, self.validator.config, self.tokenizer_dir, self.eval_docs,
                                     self._last_eval(), self.dist.device, (model, self.tokenizer), reduction,
                                     self.metrics.progress)
        write_report(self.out, self.config, reduction, compared, self.metrics)


def pretrain(config: PretrainConfig, *, resume: bool = False, continue_from: str | Path | None = None) -> Path:
    """Run continued pretraining as ``config`` says; return the folder of the final model.

    Outputs in ``config.output_dir``: ``metrics.jsonl``, ``tensorboard/``, ``checkpoints/``, ``report.md``
    with ``bpb.png`` and ``loss.png``, and ``model/`` (safetensors + tokenizer, Hugging Face layout).
    ``continue_from``: a finished run's folder, continued with more steps or stages (:mod:`.continuing`).
    """
    return Trainer(config, resume=resume, continue_from=None if continue_from is None else Path(continue_from)).train()


def pretrain_from_file(path: str | None, overrides: dict[str, str], *, resume: bool = False,
                       continue_from: str | None = None) -> Path:
    """:func:`pretrain` on the YAML config at ``path`` with ``--key value`` overrides (the command line's run);
    under torchrun with several processes a refusal ends every process alike (:func:`~.dist.exit_refused`).
    With ``continue_from`` and no ``path``, the config is that run's ``config.yaml``."""
    try:
        if continue_from is None:
            return pretrain(load_config(path, overrides), resume=resume)
        config = load_config(path or run_config_file(Path(continue_from)), overrides)
        return pretrain(config, resume=resume, continue_from=continue_from)
    except VocabExtendError as exc:
        exit_refused(str(exc))
        raise
