"""The loop of token distillation: contexts, the teacher's pass, the optimised new input rows, the cap, the
transfer to the rows no context reached and the output rows of untied models (see
:mod:`vocab_extend.model.init.distill` for the method and its measured effect).

Invariants: base rows are never written; every draw is seeded (context choice, batch order, base samples), so
the same inputs give bit-identical rows; the model's training mode and ``requires_grad`` flags are restored.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from tqdm.auto import tqdm

from ...evaluate.bpb import context_token_id
from .config import DistillConfig
from .contexts import select_contexts, token_spans
from .outputs import base_language_states, cap_rows, first_pieces, fit_output_rows, leak
from .passes import Context, Teacher, student_loss, teacher_pass
from .transfer import transfer_rows


@dataclass
class DistillReport:
    """What :func:`distill_embeddings` did (kept in ``init_embeddings.json`` under ``distill``)."""

    contexts: int = 0
    student_tokens: int = 0
    teacher_tokens: int = 0
    input_rows_distilled: int = 0  # new tokens in a context an optimiser step used
    rows_transferred: int = 0  # the other new tokens (with a span) given the distilled rows' correction
    output_rows_fitted: int = 0
    loss_first_pass: float = float("nan")  # mean distillation loss over the first pass through the contexts
    loss_last_pass: float = float("nan")  # ... and over the last one
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _capped(rows: torch.Tensor, start: torch.Tensor, states: torch.Tensor | None, lse: torch.Tensor | None,
            config: DistillConfig) -> tuple[torch.Tensor, int]:
    """``cap_rows`` on the base-language samples when there are any (tied models), else the rows as they are."""
    if states is None or lse is None or not len(states):
        return rows, 0
    return cap_rows(rows, start, states, lse, config.base_logit_cap)


def output_examples(contexts: Sequence[Context], teacher: Teacher, base_vocab_size: int,
                    limit: int) -> dict[int, list[tuple[torch.Tensor, float]]]:
    """Per new token: up to ``limit`` pairs (teacher state before its span, ``log p(span) + lse``)."""
    assert teacher.span_logprob is not None
    examples: dict[int, list[tuple[torch.Tensor, float]]] = {}
    for c, hidden, score in zip(contexts, teacher.targets, teacher.span_logprob):
        for j in range(1, len(c.student)):
            t = c.student[j]
            if t >= base_vocab_size and len(examples.setdefault(t, [])) < limit:
                examples[t].append((hidden[j - 1], float(score[j])))
    return examples


def distill_embeddings(model, tokenizer, base_tokenizer, base_vocab_size: int, texts: Sequence[str],
                       config: DistillConfig | None = None) -> DistillReport:
    """Distil the new input rows (and fit the new output rows of untied models) of an already resized
    ``model`` whose new rows hold their ``mean`` init, from contexts in ``texts``. Base rows are untouched."""
    config = config or DistillConfig()
    started = time.perf_counter()
    report = DistillReport()
    spans = token_spans(tokenizer, base_tokenizer, base_vocab_size)
    contexts = _contexts(tokenizer, texts, spans, base_vocab_size, config)
    if not contexts:
        report.notes.append("no new token occurs in the corpus: every new row keeps its mean init")
        return report
    report.contexts = len(contexts)
    report.student_tokens = sum(len(c.student) for c in contexts)
    report.teacher_tokens = sum(len(c.teacher) for c in contexts)
    with _frozen(model):
        _distill(model, tokenizer, spans, contexts, base_vocab_size, config, report)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _contexts(tokenizer, texts: Sequence[str], spans: list[list[int] | None], base_vocab_size: int,
              config: DistillConfig) -> list[Context]:
    """The context windows of the first ``max_corpus_bytes`` UTF-8 bytes of ``texts``."""
    budget, kept = config.max_corpus_bytes, []
    for text in texts:
        if budget <= 0:
            break
        kept.append(text.encode("utf-8")[:budget].decode("utf-8", errors="ignore"))
        budget -= len(kept[-1].encode("utf-8"))
    encoded = tokenizer(kept, add_special_tokens=False, split_special_tokens=True)["input_ids"] if kept else []
    return select_contexts(encoded, spans, base_vocab_size, context_token_id(tokenizer), config)


@contextmanager
def _frozen(model) -> Iterator[None]:
    """``model`` in eval mode with no parameter requiring gradients; both restored afterwards."""
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
        model.train(was_training)


@dataclass
class _Run:
    """What one distillation holds between its steps."""

    contexts: list[Context]
    teacher: Teacher
    new_ids: torch.Tensor  # sorted new ids that occur in a context
    rows: torch.nn.Parameter  # their input rows, optimised (float32)
    first: torch.Tensor | None  # first base piece of every id (joint tied loss only)
    base_states: torch.Tensor | None  # hidden states on base-model samples (tied models)
    base_lse: torch.Tensor | None


def _distill(model, tokenizer, spans: list[list[int] | None], contexts: list[Context], base_vocab_size: int,
             config: DistillConfig, report: DistillReport) -> None:
    """The teacher's pass, the optimisation of the input rows, then the rows written and the output side."""
    input_weight = model.get_input_embeddings().weight
    output_module = model.get_output_embeddings()
    tied = output_module is None or output_module.weight is input_weight
    joint = tied and config.tied_output_weight > 0
    teacher = teacher_pass(model, contexts, base_vocab_size, with_logits=not tied or joint,
                           batch_size=config.batch_size, progress=config.progress)
    new_ids = torch.tensor(sorted({t for c in contexts for t in c.student if t >= base_vocab_size}))
    rows = torch.nn.Parameter(input_weight.detach()[new_ids].float().clone())
    first = first_pieces(spans, input_weight.shape[0], base_vocab_size) if joint else None
    base_states, base_lse = _base_samples(model, tokenizer, base_vocab_size, contexts[0].student[0], joint,
                                          config, report)
    run = _Run(contexts, teacher, new_ids, rows, first, base_states, base_lse)
    used = _optimise(model, run, base_vocab_size, joint, config, report)
    _write_input_rows(input_weight, run, used, spans, base_vocab_size, config, report)
    if not tied:
        examples = output_examples(contexts, teacher, base_vocab_size, config.max_output_contexts)
        report.output_rows_fitted = fit_output_rows(output_module.weight, examples, config.output_ridge)
    elif joint:
        report.notes.append(f"tied embeddings: each row distilled for reading and fitted to its output targets "
                            f"(output weight {config.tied_output_weight})")
    else:
        report.notes.append("tied embeddings: input rows distilled, which are also the output rows")


def _base_samples(model, tokenizer, base_vocab_size: int, start: int, joint: bool, config: DistillConfig,
                  report: DistillReport) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Tied models with the joint loss: hidden states and log-normalisers on base-model samples read without a
    new token (``None, None`` otherwise)."""
    if not (joint and config.base_samples):
        return None, None
    states, lse = base_language_states(model, tokenizer, base_vocab_size, start, config.base_samples,
                                       config.base_sample_length, config.seed, config.progress)
    if len(states):
        report.notes.append(f"{len(states) // config.base_sample_length} of {config.base_samples} "
                            "base-model samples read without a new token: the new rows' mass there is penalised")
    else:
        report.notes.append("no base-model sample was free of new tokens: no base-language penalty or cap")
    return states, lse


def _optimise(model, run: _Run, base_vocab_size: int, joint: bool, config: DistillConfig,
              report: DistillReport) -> set[int]:
    """``config.steps`` Adam steps of ``run.rows`` on batches of contexts in a seeded order; the new ids a
    step used."""
    contexts, teacher, rows, new_ids = run.contexts, run.teacher, run.rows, run.new_ids
    input_weight = model.get_input_embeddings().weight
    penalised = run.base_states is not None and len(run.base_states)
    scale: list[float] = []  # the two losses at the mean init (first step), as units
    optimiser = torch.optim.Adam([rows], lr=config.lr)
    order: list[int] = []
    shuffler = random.Random(config.seed + 1)
    losses: list[float] = []
    used: set[int] = set()
    for step in tqdm(range(config.steps), desc="distill: input rows", disable=not config.progress):
        if len(order) < config.batch_size:
            fresh = list(range(len(contexts)))
            shuffler.shuffle(fresh)
            order.extend(fresh)
        picked, order = order[:config.batch_size], order[config.batch_size:]
        used.update(t for i in picked for t in contexts[i].student if t >= base_vocab_size)
        loss, out = student_loss(model, [contexts[i] for i in picked], [teacher.targets[i] for i in picked],
                                 rows, new_ids, base_vocab_size,
                                 [teacher.span_logp[i] for i in picked] if joint else None, run.first)
        losses.append(loss.item())
        if out is not None and penalised:
            head = input_weight.detach()[base_vocab_size:].float().index_put((new_ids - base_vocab_size,), rows)
            chunk = slice(step * 512 % len(run.base_states), step * 512 % len(run.base_states) + 512)
            out = out + config.base_leak_weight * leak(run.base_states[chunk], run.base_lse[chunk], head)
        if out is not None:
            if not scale:
                scale = [max(loss.item(), 1e-12), max(out.item(), 1e-12)]
            loss = loss / scale[0] + config.tied_output_weight * out / scale[1]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    per_pass = -(-len(contexts) // config.batch_size)
    if losses:
        report.loss_first_pass = sum(losses[:per_pass]) / len(losses[:per_pass])
        report.loss_last_pass = sum(losses[-per_pass:]) / len(losses[-per_pass:])
    report.input_rows_distilled = len(used)
    return used


def _write_input_rows(input_weight: torch.Tensor, run: _Run, used: set[int], spans: list[list[int] | None],
                      base_vocab_size: int, config: DistillConfig, report: DistillReport) -> None:
    """The optimised rows (capped) into ``input_weight``; then, with ``transfer``, the correction they took
    given to the new tokens no step used."""
    new_ids, base_states, base_lse = run.new_ids, run.base_states, run.base_lse
    start = input_weight.detach()[new_ids].float()
    final, capped = _capped(run.rows.detach(), start, base_states, base_lse, config)
    with torch.no_grad():
        input_weight[new_ids] = final.to(input_weight.dtype)
    if config.transfer and used:
        others = torch.tensor([t for t in range(base_vocab_size, min(len(spans), input_weight.shape[0]))
                               if spans[t] is not None and t not in used], dtype=torch.long)
        learned = torch.isin(new_ids, torch.tensor(sorted(used)))
        mean_rows = input_weight.detach()[others].float()
        moved, more = _capped(transfer_rows(start[learned], final[learned], mean_rows, config.transfer_ridge),
                              mean_rows, base_states, base_lse, config)
        with torch.no_grad():
            input_weight[others] = moved.to(input_weight.dtype)
        report.rows_transferred, capped = len(others), capped + more
        report.notes.append(f"{len(others)} new tokens without a context given the distilled rows' correction "
                            "(a ridge map from mean rows)")
    if base_states is not None and len(base_states):
        report.notes.append(f"{capped} rows pulled back towards mean: they scored above the cap on "
                            "base-language samples")
