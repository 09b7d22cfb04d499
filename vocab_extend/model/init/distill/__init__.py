"""Token distillation: new embedding rows learnt from the frozen base model reading the base pieces.

``mean`` gives a new token the average of its pieces' rows, but a base model does not store a multi-piece
word in its embeddings: it builds it in its first layers while reading the pieces. Token distillation (Dobler
et al., ICLR 2026) therefore *optimises* each new input row so that the model reading the new token behaves
as the model reading its pieces:

- **contexts**: windows of ``context_length`` extended-tokenizer tokens of a corpus, chosen (seeded) so that
  each new token occurs in up to ``contexts_per_token`` of them;
- **teacher**: the frozen model with its base rows reading the same window as base pieces (every token
  replaced by its *span*, the base tokenizer's pieces of its piece string, whitespace marker included);
- **student**: the same frozen model reading the window's token ids, every new id looking up a trainable row
  that starts from ``mean``;
- **loss**: mean squared error between the student's last hidden state after each token and the teacher's
  after the last piece of that token's span (all positions: later tokens also read the new ones).

Only the new rows that occur in a context get gradients; base rows are never written (bit-identical), and
new tokens without a context get the distilled rows' correction (``distill_transfer.py``: a ridge map from
``mean`` rows to distilled ones learnt on the tokens that had one; off with ``transfer=False``, then they keep
``mean``).

Output rows of *untied* models are fitted in closed form: in a context ``h`` (the teacher's hidden state
before the span) the base model gives the whole span ``s = (p1, ..., pk)`` the log-probability
``log p(s|h) = logit(p1) - lse(h) + sum log p(pi|...)``. A row ``w`` whose logit is
``w·h = log p(s|h) + lse(h)`` gives the new token the same probability relative to the base vocabulary, so
``w`` is the ridge regression of those targets on the contexts where the token occurs, shrunk towards
``mean``: ``w = w0 + Hᵀ(HHᵀ + λI)⁻¹(y - Hw0)`` with ``λ = output_ridge × mean ||h||²``.

*Tied models* (one matrix for input and output, as SmolLM2) cannot take the closed-form output fit: it
would overwrite the distilled input row. Their rows are optimised for both at once: the hidden-state loss
plus ``tied_output_weight`` times the output loss of ``distill_outputs.py`` (the student's softmax over the
whole extended vocabulary against the teacher's probabilities of the spans and of their first pieces, plus
the mass the new rows take on base-language text sampled from the base model), each divided by its value
at the ``mean`` init so that the weight is a ratio. Rows that still score far above the base vocabulary on
those samples are then pulled back towards ``mean`` (``base_logit_cap``). Held-out Japanese bits per byte
at step 0, SmolLM2-135M + 16k Japanese, 128 contexts and 24 steps (``mean``: 3.0905, English 1.0606): input
distillation only 3.123; unnormalised logit targets 3.104; the output loss without the cap 3.035 with
English at +4.4%, the rows taking up to e^14 times the base vocabulary's mass after some English words;
with the cap (2% of the rows moved) 2.983, English +0.05%. At the defaults (512 contexts, 64 steps):
3.034 with ``lr`` 5e-3 (26% of the rows capped), 2.922 with 1e-3 (the default; 12% capped), English +0.09%;
with the rows no context reached given the distilled rows' correction (``distill_transfer.py``) 2.796,
English +0.11%.

Everything is seeded (context choice, batch order) and runs on the CPU in float32, so the same inputs give
bit-identical rows. Example (SmolLM2-135M, one Japanese token)::

    東京 -> student reads [東京]; teacher reads [æĿ±, äº¬] (byte-level pieces of 東 and 京); the row of 東京
    moves until the hidden state after 東京 equals the one after 京 — in every context it was sampled in.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
from tqdm.auto import tqdm

from ....errors import VocabExtendError
from ...evaluate.bpb import context_token_id
from .outputs import base_language_states, cap_rows, first_pieces, fit_output_rows, leak
from .passes import Context, Teacher, student_loss, teacher_pass
from .transfer import transfer_rows


@dataclass
class DistillConfig:
    """The budget and settings of token distillation.

    Measured with the defaults on SmolLM2-135M + 15k Japanese tokens, 2 idle CPU cores: 512 contexts, 48k
    teacher tokens (3.8 min), 64 steps of 16 windows with the tied output loss (7.2 s each), the transfer to
    the other 9,962 rows and the cap: 12.5 min in all.
    """

    contexts_per_token: int = 4
    """A context window is kept while it holds a new token seen in fewer than this many kept windows."""
    max_contexts: int = 512
    """At most this many context windows in all (the main cost: one teacher pass over each)."""
    context_length: int = 32
    """Extended-tokenizer tokens per context window (the teacher reads about 3x as many base pieces)."""
    steps: int = 64
    """Optimiser steps (each on ``batch_size`` windows, cycling through the windows in a seeded order)."""
    batch_size: int = 16
    """Context windows per optimiser step."""
    lr: float = 1e-3
    """Adam learning rate of the new input rows."""
    output_ridge: float = 0.1
    """Shrinkage of the output-row fit towards ``mean``, relative to the mean squared norm of the contexts."""
    max_corpus_bytes: int = 4_000_000
    """Only the first this many UTF-8 bytes of the corpus are tokenized and searched for contexts."""
    max_output_contexts: int = 64
    """At most this many occurrences per token in its output-row fit."""
    tied_output_weight: float = 1.0
    """Tied models: weight of the output loss (log-probabilities) beside the hidden-state loss (both relative
    to their values at ``mean``); 0 distils the input side only."""
    base_samples: int = 32
    """Tied models: texts sampled from the base model (and kept when the extended tokenizer reads them without
    a new token) on which the mass the new rows take is penalised; 0 turns that term off."""
    base_sample_length: int = 64
    """Tokens per base-model sample."""
    base_leak_weight: float = 10.0
    """Tied models: weight of that penalty (nats per base-language token) inside the output loss."""
    base_logit_cap: float = -8.0
    """Tied models: on the base-model samples no distilled row may score more than this above the base
    vocabulary's log-normaliser (or than its ``mean`` row did); rows that do are pulled back towards ``mean``."""
    transfer: bool = True
    """Give the new tokens that no context reached the distilled rows' correction (a ridge map from ``mean``
    rows to distilled ones, ``distill_transfer.py``) instead of ``mean``; on tied models they pass the cap too."""
    transfer_ridge: float = 1.0
    """Shrinkage of that map, relative to the variance of the ``mean`` rows (0: plain least squares)."""
    seed: int = 0
    """Seed of the context choice and of the batch order."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        names = {"contexts_per_token": "--distill-contexts", "max_contexts": "max_contexts",
                 "context_length": "context_length", "batch_size": "batch_size",
                 "max_corpus_bytes": "max_corpus_bytes", "max_output_contexts": "max_output_contexts"}
        for name, option in names.items():
            if getattr(self, name) < 1:
                raise VocabExtendError(f"{option} must be at least 1, not {getattr(self, name)}")
        if self.base_samples < 0 or self.base_sample_length < 1 or not self.base_leak_weight >= 0:
            raise VocabExtendError("base_samples must be 0 or more, base_sample_length at least 1 and "
                                   "base_leak_weight 0 or more")
        if self.steps < 0:
            raise VocabExtendError(f"--distill-steps must be 0 or more, not {self.steps}")
        if not self.lr > 0 or not self.output_ridge >= 0 or not self.tied_output_weight >= 0:
            raise VocabExtendError(f"distill lr must be positive, output_ridge and tied_output_weight 0 or more, "
                                   f"not {self.lr}, {self.output_ridge}, {self.tied_output_weight}")
        if not self.transfer_ridge >= 0:
            raise VocabExtendError(f"transfer_ridge must be 0 or more, not {self.transfer_ridge}")


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


def token_spans(tokenizer, base_tokenizer, base_vocab_size: int) -> list[list[int] | None]:
    """The base pieces of every id of ``tokenizer``: ``[id]`` for base ids, the base BPE model's pieces of the
    new token's piece string (whitespace marker kept, so spans concatenate to the text), ``None`` for special
    tokens."""
    model = base_tokenizer.backend_tokenizer.model
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    new_ids = list(range(base_vocab_size, len(tokenizer)))
    spans: list[list[int] | None] = [[i] for i in range(base_vocab_size)]
    for token_id, piece in zip(new_ids, tokenizer.convert_ids_to_tokens(new_ids)):
        if token_id in special or piece is None:
            spans.append(None)
        elif token_id in added:
            spans.append(base_tokenizer(added[token_id].content, add_special_tokens=False)["input_ids"] or None)
        else:
            spans.append([t.id for t in model.tokenize(piece)] or None)
    return spans


def select_contexts(encoded: Sequence[Sequence[int]], spans: Sequence[list[int] | None], base_vocab_size: int,
                    start: int, config: DistillConfig) -> list[Context]:
    """Cut each document into windows of ``context_length`` tokens and keep, in a seeded order, each window
    holding a new token seen in fewer than ``contexts_per_token`` kept windows, up to ``max_contexts``.
    Windows with a token without a span (a special token) are never kept."""
    length = config.context_length
    windows = [ids[i:i + length] for ids in encoded for i in range(0, len(ids), length)]
    order = list(range(len(windows)))
    random.Random(config.seed).shuffle(order)
    seen: dict[int, int] = {}
    kept: list[Context] = []
    for index in order:
        window = windows[index]
        new = [t for t in window if t >= base_vocab_size]
        if not any(seen.get(t, 0) < config.contexts_per_token for t in new):
            continue
        if any(t >= len(spans) or spans[t] is None for t in window):
            continue
        for t in set(new):
            seen[t] = seen.get(t, 0) + 1
        teacher, ends = [start], [0]
        for t in window:
            teacher.extend(spans[t])  # type: ignore[arg-type]
            ends.append(len(teacher) - 1)
        kept.append(Context(student=[start, *window], teacher=teacher, ends=ends))
        if len(kept) >= config.max_contexts:
            break
    return kept


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
    input_weight = model.get_input_embeddings().weight
    output_module = model.get_output_embeddings()
    tied = output_module is None or output_module.weight is input_weight
    spans = token_spans(tokenizer, base_tokenizer, base_vocab_size)
    budget, kept = config.max_corpus_bytes, []
    for text in texts:
        if budget <= 0:
            break
        kept.append(text.encode("utf-8")[:budget].decode("utf-8", errors="ignore"))
        budget -= len(kept[-1].encode("utf-8"))
    encoded = tokenizer(kept, add_special_tokens=False, split_special_tokens=True)["input_ids"] if kept else []
    contexts = select_contexts(encoded, spans, base_vocab_size, context_token_id(tokenizer), config)
    if not contexts:
        report.notes.append("no new token occurs in the corpus: every new row keeps its mean init")
        return report
    report.contexts = len(contexts)
    report.student_tokens = sum(len(c.student) for c in contexts)
    report.teacher_tokens = sum(len(c.teacher) for c in contexts)
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        joint = tied and config.tied_output_weight > 0
        teacher = teacher_pass(model, contexts, base_vocab_size, with_logits=not tied or joint,
                               batch_size=config.batch_size, progress=config.progress)
        new_ids = torch.tensor(sorted({t for c in contexts for t in c.student if t >= base_vocab_size}))
        rows = torch.nn.Parameter(input_weight.detach()[new_ids].float().clone())
        first = first_pieces(spans, input_weight.shape[0], base_vocab_size) if joint else None
        base_states, base_lse = (base_language_states(model, tokenizer, base_vocab_size, contexts[0].student[0],
                                                      config.base_samples, config.base_sample_length, config.seed,
                                                      config.progress)
                                 if joint and config.base_samples else (None, None))
        if base_states is not None and len(base_states):
            report.notes.append(f"{len(base_states) // config.base_sample_length} of {config.base_samples} "
                                "base-model samples read without a new token: the new rows' mass there is penalised")
        elif base_states is not None:
            report.notes.append("no base-model sample was free of new tokens: no base-language penalty or cap")
        scale: list[float] = []  # the two losses at the mean init (first step), as units
        optimiser = torch.optim.Adam([rows], lr=config.lr)
        order: list[int] = []
        shuffler = random.Random(config.seed + 1)
        per_pass = -(-len(contexts) // config.batch_size)
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
                                     [teacher.span_logp[i] for i in picked] if joint else None, first)
            losses.append(loss.item())
            if out is not None and base_states is not None and len(base_states):
                head = input_weight.detach()[base_vocab_size:].float().index_put(
                    (new_ids - base_vocab_size,), rows)
                chunk = slice(step * 512 % len(base_states), step * 512 % len(base_states) + 512)
                out = out + config.base_leak_weight * leak(base_states[chunk], base_lse[chunk], head)
            if out is not None:
                if not scale:
                    scale = [max(loss.item(), 1e-12), max(out.item(), 1e-12)]
                loss = loss / scale[0] + config.tied_output_weight * out / scale[1]
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if losses:
            report.loss_first_pass = sum(losses[:per_pass]) / len(losses[:per_pass])
            report.loss_last_pass = sum(losses[-per_pass:]) / len(losses[-per_pass:])
        report.input_rows_distilled = len(used)
        start = input_weight.detach()[new_ids].float()
        final, capped = _capped(rows.detach(), start, base_states, base_lse, config)
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
        if not tied:
            examples = output_examples(contexts, teacher, base_vocab_size, config.max_output_contexts)
            report.output_rows_fitted = fit_output_rows(output_module.weight, examples, config.output_ridge)
        elif joint:
            report.notes.append(f"tied embeddings: each row distilled for reading and fitted to its output targets "
                                f"(output weight {config.tied_output_weight})")
        else:
            report.notes.append("tied embeddings: input rows distilled, which are also the output rows")
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
        model.train(was_training)
    report.seconds = round(time.perf_counter() - started, 2)
    return report
