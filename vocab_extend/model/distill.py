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
new tokens without a context keep ``mean``.

Output rows of *untied* models are fitted in closed form: in a context ``h`` (the teacher's hidden state
before the span) the base model gives the whole span ``s = (p1, ..., pk)`` the log-probability
``log p(s|h) = logit(p1) - lse(h) + sum log p(pi|...)``. A row ``w`` whose logit is
``w·h = log p(s|h) + lse(h)`` gives the new token the same probability relative to the base vocabulary, so
``w`` is the ridge regression of those targets on the contexts where the token occurs, shrunk towards
``mean``: ``w = w0 + Hᵀ(HHᵀ + λI)⁻¹(y - Hw0)`` with ``λ = output_ridge × mean ||h||²``.

*Tied models* (one matrix for input and output, as SmolLM2) cannot take the closed-form output fit: it
would overwrite the distilled input row. Their rows are optimised for both at once: the hidden-state loss
plus ``tied_output_weight`` times the squared error of the output targets above (``w·h`` against
``log p(s|h) + lse(h)`` at the teacher's states), each divided by its value at the ``mean`` init so that
the weight is a ratio. On SmolLM2-135M + 16k Japanese with a small budget (128 contexts, 24 steps), held-out
Japanese bits per byte at step 0 were: ``mean`` 3.0905; weight 0 (input distillation only) 3.123; weight 1
(the default) 3.104; weight 10: 3.170. Tied rows distilled this way still score worse than ``mean`` there
(the pico tests, tied and untied, beat it): what a tied row should be is the open problem.

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

from ..errors import VocabExtendError
from .bpb import context_token_id


@dataclass
class DistillConfig:
    """The budget and settings of token distillation.

    The defaults cost about 100k teacher token passes and 65k student token passes (forward and backward),
    sized (an estimate, not yet measured) for SmolLM2-135M + 15k tokens in under 15 minutes on 2 idle CPU cores.
    """

    contexts_per_token: int = 4
    """A context window is kept while it holds a new token seen in fewer than this many kept windows."""
    max_contexts: int = 1024
    """At most this many context windows in all (the main cost: one teacher pass over each)."""
    context_length: int = 32
    """Extended-tokenizer tokens per context window (the teacher reads about 3x as many base pieces)."""
    steps: int = 128
    """Optimiser steps (each on ``batch_size`` windows, cycling through the windows in a seeded order)."""
    batch_size: int = 16
    """Context windows per optimiser step."""
    lr: float = 5e-3
    """Adam learning rate of the new input rows."""
    output_ridge: float = 0.1
    """Shrinkage of the output-row fit towards ``mean``, relative to the mean squared norm of the contexts."""
    max_corpus_bytes: int = 4_000_000
    """Only the first this many UTF-8 bytes of the corpus are tokenized and searched for contexts."""
    max_output_contexts: int = 64
    """At most this many occurrences per token in its output-row fit."""
    tied_output_weight: float = 1.0
    """Tied models: weight of the output-target loss beside the hidden-state loss (both relative to ``mean``)."""
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
        if self.steps < 0:
            raise VocabExtendError(f"--distill-steps must be 0 or more, not {self.steps}")
        if not self.lr > 0 or not self.output_ridge >= 0 or not self.tied_output_weight >= 0:
            raise VocabExtendError(f"distill lr must be positive, output_ridge and tied_output_weight 0 or more, "
                                   f"not {self.lr}, {self.output_ridge}, {self.tied_output_weight}")


@dataclass
class DistillReport:
    """What :func:`distill_embeddings` did (kept in ``init_embeddings.json`` under ``distill``)."""

    contexts: int = 0
    student_tokens: int = 0
    teacher_tokens: int = 0
    input_rows_distilled: int = 0  # new tokens in a context an optimiser step used; the others keep ``mean``
    output_rows_fitted: int = 0
    loss_first_pass: float = float("nan")  # mean distillation loss over the first pass through the contexts
    loss_last_pass: float = float("nan")  # ... and over the last one
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class Context:
    """One window: the student's ids and, for each of them, the teacher index of its span's last piece."""

    student: list[int]  # context token first
    teacher: list[int]  # context token first
    ends: list[int]  # len(student); ends[0] = 0


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


def _decoder(model):
    return getattr(model, model.base_model_prefix)


def _pad(rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids, mask


@dataclass
class Teacher:
    """The teacher's hidden states at each student position, and what the output fit needs."""

    targets: list[torch.Tensor]  # per context: (len(student), hidden), the teacher after each span
    span_logprob: list[torch.Tensor] | None  # per context: (len(student),) log p(span_j | before) + lse(before)


@torch.no_grad()
def teacher_pass(model, contexts: Sequence[Context], base_vocab_size: int, *, with_logits: bool,
                 batch_size: int, progress: bool) -> Teacher:
    """Run the frozen model over the teacher sequences (base rows only) and keep the aligned hidden states;
    with ``with_logits``, also each token's output target ``log p(span | before) + lse(before)``."""
    decoder = _decoder(model)
    head = model.get_output_embeddings().weight[:base_vocab_size].float().T if with_logits else None
    targets: list[torch.Tensor] = []
    scores: list[torch.Tensor] = []
    for i in tqdm(range(0, len(contexts), batch_size), desc="distill: teacher", disable=not progress):
        batch = contexts[i:i + batch_size]
        ids, mask = _pad([c.teacher for c in batch])
        hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        for row, c in enumerate(batch):
            targets.append(hidden[row, c.ends].clone())
            if head is None:
                continue
            n = len(c.teacher)
            logits = hidden[row, :n - 1] @ head
            nxt = ids[row, 1:n]
            raw = logits.gather(1, nxt[:, None])[:, 0]
            logp = raw - torch.logsumexp(logits, dim=1)
            score = torch.zeros(len(c.student))
            for j in range(1, len(c.student)):  # span j covers teacher tokens ends[j-1]+1 .. ends[j]
                a, b = c.ends[j - 1], c.ends[j]
                score[j] = raw[a] + logp[a + 1:b].sum()
            scores.append(score)
    return Teacher(targets=targets, span_logprob=scores if with_logits else None)


def student_loss(model, contexts: Sequence[Context], targets: Sequence[torch.Tensor], rows: torch.Tensor,
                 new_ids: torch.Tensor, base_vocab_size: int) -> torch.Tensor:
    """The distillation loss of a batch: MSE between the student's hidden states (new ids reading ``rows``,
    row ``k`` being token ``new_ids[k]``) and the teacher's, over every position after the context token."""
    weight = model.get_input_embeddings().weight
    ids, mask = _pad([c.student for c in contexts])
    local = torch.searchsorted(new_ids, ids.clamp(min=base_vocab_size)).clamp(max=len(new_ids) - 1)
    is_new = (ids >= base_vocab_size) & (new_ids[local] == ids)
    embeds = torch.where(is_new[..., None], rows[local].to(weight.dtype), weight.detach()[ids])
    hidden = _decoder(model)(inputs_embeds=embeds, attention_mask=mask).last_hidden_state.float()
    diff = [hidden[i, 1:len(c.student)] - t[1:] for i, (c, t) in enumerate(zip(contexts, targets))]
    return torch.cat(diff).square().mean()


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


class OutputTargets:
    """The output targets of the picked contexts as one batch: ``rows[local]·states`` should be ``targets``."""

    def __init__(self, contexts: Sequence[Context], teacher: Teacher, new_ids: torch.Tensor,
                 base_vocab_size: int) -> None:
        assert teacher.span_logprob is not None
        self.per_context: list[tuple[list[int], list[torch.Tensor], list[float]]] = []
        index = {int(t): k for k, t in enumerate(new_ids)}
        for c, hidden, score in zip(contexts, teacher.targets, teacher.span_logprob):
            positions = [j for j in range(1, len(c.student)) if c.student[j] >= base_vocab_size]
            self.per_context.append(([index[c.student[j]] for j in positions],
                                     [hidden[j - 1] for j in positions], [float(score[j]) for j in positions]))

    def loss(self, rows: torch.Tensor, picked: Sequence[int]) -> torch.Tensor | None:
        local = [k for i in picked for k in self.per_context[i][0]]
        if not local:
            return None
        states = torch.stack([h for i in picked for h in self.per_context[i][1]])
        targets = torch.tensor([y for i in picked for y in self.per_context[i][2]])
        return ((rows[local] * states).sum(1) - targets).square().mean()


def fit_output_rows(weight: torch.Tensor, contexts: Sequence[Context], teacher: Teacher, base_vocab_size: int,
                    config: DistillConfig) -> int:
    """Ridge fit (towards the current row) of each new output row's logit to ``log p(span) + lse`` at the
    teacher's hidden state before the span; returns how many rows were fitted."""
    examples = output_examples(contexts, teacher, base_vocab_size, config.max_output_contexts)
    with torch.no_grad():
        for t in sorted(examples):
            h = torch.stack([e[0] for e in examples[t]]).double()
            y = torch.tensor([e[1] for e in examples[t]], dtype=torch.float64)
            w0 = weight[t].double()
            ridge = config.output_ridge * float(h.square().sum(1).mean())
            gram = h @ h.T + ridge * torch.eye(len(y), dtype=torch.float64)
            weight[t] = (w0 + h.T @ torch.linalg.solve(gram, y - h @ w0)).to(weight.dtype)
    return len(examples)


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
        outputs = OutputTargets(contexts, teacher, new_ids, base_vocab_size) if joint else None
        scale: list[float] = []  # the two losses at the mean init (first step), as units
        optimiser = torch.optim.Adam([rows], lr=config.lr)
        order: list[int] = []
        shuffler = random.Random(config.seed + 1)
        per_pass = -(-len(contexts) // config.batch_size)
        losses: list[float] = []
        used: set[int] = set()
        for _ in tqdm(range(config.steps), desc="distill: input rows", disable=not config.progress):
            if len(order) < config.batch_size:
                fresh = list(range(len(contexts)))
                shuffler.shuffle(fresh)
                order.extend(fresh)
            picked, order = order[:config.batch_size], order[config.batch_size:]
            used.update(t for i in picked for t in contexts[i].student if t >= base_vocab_size)
            loss = student_loss(model, [contexts[i] for i in picked], [teacher.targets[i] for i in picked],
                                rows, new_ids, base_vocab_size)
            losses.append(loss.item())
            out = outputs.loss(rows, picked) if outputs is not None else None
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
        with torch.no_grad():
            input_weight[new_ids] = rows.detach().to(input_weight.dtype)
        if not tied:
            report.output_rows_fitted = fit_output_rows(output_module.weight, contexts, teacher, base_vocab_size,
                                                        config)
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
