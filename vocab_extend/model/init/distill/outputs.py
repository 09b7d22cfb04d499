"""The output side of token distillation: what the extended model should predict.

*Untied* models get each new output row in closed form (:func:`fit_output_rows`, see ``distill.py``).

A *tied* row is read *and* predicted, so distilling it for reading alone lets its logit drift. Three terms
tie the student's predictions to the frozen base model's (all in nats, the student's softmax taken over the
whole extended vocabulary, base rows fixed):

- **the token itself**: the squared difference between the student's log-probability of the next token
  ``t`` and the teacher's log-probability of ``t``'s span (its base pieces, read one by one);
- **the first piece**: the KL divergence from the teacher's next-piece distribution to the student's,
  each extended token counted under the first base piece of its span. The text that follows is the same
  whichever tokenizer reads it, so the probability of "the next text starts with piece x" should not change:
  new tokens may only take mass from the pieces they start with;
- **base-language text**: on text the extended tokenizer reads exactly as the base does (no new token;
  sampled from the base model itself, so no second corpus is needed), the student's hidden states *are* the
  teacher's and the only change is the mass the new rows take, ``log(1 + sum_new exp(logit) / Z_base)``
  nats per token: exactly the loss extending adds there, which is penalised.

Example: the base reads 東京都 as 東 + 京 + 都 (byte pieces in SmolLM2). If the student gives the new tokens
東京 and 東京都 together more probability than the base gives "東...", the first-piece term pushes them down;
if 東京都 gets less than the base's p(東)p(京|東)p(都|東京), the token term pushes it up; a row that also
scores high after "The weather is" costs on the base-language samples.
"""

from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm

from ...evaluate.decode import cache_argument


def first_pieces(spans: Sequence[list[int] | None], size: int, base_vocab_size: int) -> torch.Tensor:
    """For each of ``size`` extended ids, the base id its span starts with; ids without a span (special
    tokens, padding rows) map to ``base_vocab_size``, a bucket the teacher never predicts.

    >>> first_pieces([[0], [1], [1, 0], None], 5, 2).tolist()
    [0, 1, 1, 2, 2]
    """
    out = torch.full((size,), base_vocab_size, dtype=torch.long)
    for token_id, span in enumerate(spans[:size]):
        if span:
            out[token_id] = span[0]
    return out


def output_loss(logits: torch.Tensor, nxt: torch.Tensor, span_logp: torch.Tensor, teacher_logits: torch.Tensor,
                first: torch.Tensor) -> torch.Tensor:
    """Token term + first-piece term at positions whose student logits (over the extended vocabulary) are
    ``logits``, next tokens ``nxt``, teacher span log-probabilities ``span_logp`` and teacher logits (over the
    base vocabulary) ``teacher_logits``."""
    logp = torch.log_softmax(logits, dim=1)
    token = (logp.gather(1, nxt[:, None])[:, 0] - span_logp).square().mean()
    teacher = torch.log_softmax(teacher_logits, dim=1)
    buckets = teacher.shape[1] + 1
    marginal = torch.zeros((len(logits), buckets), dtype=logp.dtype).index_add(1, first, logp.exp())
    student = marginal[:, :-1].clamp(min=1e-30).log()
    first_piece = (teacher.exp() * (teacher - student)).sum(1).mean()
    return token + first_piece


def leak(states: torch.Tensor, base_lse: torch.Tensor, new_rows: torch.Tensor) -> torch.Tensor:
    """Nats per token the new rows take from text read without them: ``log(1 + sum exp(new logits) / Z)``
    at hidden states ``states`` whose base-vocabulary log-normaliser is ``base_lse``."""
    return torch.nn.functional.softplus(torch.logsumexp(states @ new_rows.T, dim=1) - base_lse).mean()


@torch.no_grad()
def cap_rows(rows: torch.Tensor, start: torch.Tensor, states: torch.Tensor, base_lse: torch.Tensor,
             cap: float) -> tuple[torch.Tensor, int]:
    """Pull each row of ``rows`` back towards its ``start`` row (``start + a(rows - start)``, the largest
    ``a`` in [0, 1]) until its log-probability relative to the base vocabulary, ``h·row - lse(h)``, is at most
    ``max(cap, h·start - lse(h))`` at every base-language state ``h``; returns the rows and how many moved.

    Distilled tied rows can score far above the whole base vocabulary at a few base-language positions (a
    Japanese character after an English word at logit +14 above the normaliser): the cap removes that and
    leaves the other rows as they are.

    >>> h, lse = torch.tensor([[1.0, 0.0]]), torch.tensor([0.0])
    >>> rows, moved = cap_rows(torch.tensor([[-20.0, 1.0], [4.0, 1.0]]), torch.tensor([[-20.0, 0.0], [-20.0, 0.0]]),
    ...                        h, lse, cap=-8.0)
    >>> rows.tolist(), moved
    ([[-20.0, 1.0], [-8.0, 0.5]], 1)
    """
    start_part = states @ start.T - base_lse[:, None]
    limit = start_part.clamp(min=cap)
    gain = states @ (rows - start).T
    room = torch.where(gain > 0, (limit - start_part) / gain.clamp(min=1e-12), torch.full_like(gain, float("inf")))
    alpha = room.min(0).values.clamp(0, 1) if len(states) else torch.ones(len(rows))
    return start + alpha[:, None] * (rows - start), int((alpha < 1).sum())


@torch.no_grad()
def base_language_states(model, tokenizer, base_vocab_size: int, start: int, samples: int, length: int,
                         seed: int, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states (and their base log-normalisers) of ``samples`` texts of ``length`` tokens sampled from
    the base model (base vocabulary only, seeded), keeping those the extended tokenizer reads without a new
    token; empty tensors when none is kept."""
    from transformers import DynamicCache

    generator = torch.Generator().manual_seed(seed)
    head = model.get_output_embeddings().weight[:base_vocab_size].float()
    ids = torch.full((samples, 1), start, dtype=torch.long)
    cache = DynamicCache()
    for _ in tqdm(range(length), desc="distill: base samples", disable=not progress):
        out = model(input_ids=ids[:, -1:], use_cache=True, **cache_argument(model, cache))
        probs = torch.softmax(out.logits[:, -1, :base_vocab_size].float(), dim=1)
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)], dim=1)
    kept = []
    for row in ids:
        text = tokenizer.decode(row[1:].tolist())
        if all(t < base_vocab_size for t in tokenizer(text, add_special_tokens=False)["input_ids"]):
            kept.append(row)
    if not kept:
        return torch.zeros((0, head.shape[1])), torch.zeros(0)
    hidden = getattr(model, model.base_model_prefix)(input_ids=torch.stack(kept)).last_hidden_state.float()
    states = hidden.reshape(-1, hidden.shape[-1])
    return states, torch.logsumexp(states @ head.T, dim=1)


def fit_output_rows(weight: torch.Tensor, examples: dict[int, list[tuple[torch.Tensor, float]]],
                    output_ridge: float) -> int:
    """Ridge fit (towards the current row) of each new output row's logit to ``log p(span) + lse`` at the
    teacher's hidden state before the span; returns how many rows were fitted."""
    with torch.no_grad():
        for t in sorted(examples):
            h = torch.stack([e[0] for e in examples[t]]).double()
            y = torch.tensor([e[1] for e in examples[t]], dtype=torch.float64)
            w0 = weight[t].double()
            ridge = output_ridge * float(h.square().sum(1).mean())
            gram = h @ h.T + ridge * torch.eye(len(y), dtype=torch.float64)
            weight[t] = (w0 + h.T @ torch.linalg.solve(gram, y - h @ w0)).to(weight.dtype)
    return len(examples)
