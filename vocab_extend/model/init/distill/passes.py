"""The two forward passes of token distillation: the frozen teacher reading base pieces, the student reading
the new tokens through trainable rows (see :mod:`vocab_extend.model.distill`).

A :class:`Context` pairs a window of extended-tokenizer ids with the same text as base pieces; ``ends[j]`` is
the teacher index of the last piece of student token ``j``, so the teacher's hidden state there is the
student's target after token ``j``. Example: student ``[<s>, 東京, は]`` with spans 東京 -> (東, 京) and
は -> (は,) gives teacher ``[<s>, 東, 京, は]`` and ends ``[0, 2, 3]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from tqdm.auto import tqdm

from .outputs import output_loss


@dataclass
class Context:
    """One window: the student's ids and, for each of them, the teacher index of its span's last piece."""

    student: list[int]  # context token first
    teacher: list[int]  # context token first
    ends: list[int]  # len(student); ends[0] = 0



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
    span_logp: list[torch.Tensor] | None = None  # per context: (len(student),) log p(span_j | before)


@torch.no_grad()
def teacher_pass(model, contexts: Sequence[Context], base_vocab_size: int, *, with_logits: bool,
                 batch_size: int, progress: bool) -> Teacher:
    """Run the frozen model over the teacher sequences (base rows only) and keep the aligned hidden states;
    with ``with_logits``, also each token's output target ``log p(span | before) + lse(before)``."""
    decoder = _decoder(model)
    head = model.get_output_embeddings().weight[:base_vocab_size].float().T if with_logits else None
    targets: list[torch.Tensor] = []
    scores: list[torch.Tensor] = []
    logps: list[torch.Tensor] = []
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
            score, whole = torch.zeros(len(c.student)), torch.zeros(len(c.student))
            for j in range(1, len(c.student)):  # span j covers teacher tokens ends[j-1]+1 .. ends[j]
                a, b = c.ends[j - 1], c.ends[j]
                rest = logp[a + 1:b].sum()
                score[j], whole[j] = raw[a] + rest, logp[a] + rest
            scores.append(score)
            logps.append(whole)
    return Teacher(targets=targets, span_logprob=scores if with_logits else None,
                   span_logp=logps if with_logits else None)


def student_loss(model, contexts: Sequence[Context], targets: Sequence[torch.Tensor], rows: torch.Tensor,
                 new_ids: torch.Tensor, base_vocab_size: int, span_logp: Sequence[torch.Tensor] | None = None,
                 first: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The distillation loss of a batch: MSE between the student's hidden states (new ids reading ``rows``,
    row ``k`` being token ``new_ids[k]``) and the teacher's, over every position after the context token.

    With ``span_logp`` and ``first`` (tied models) also :func:`distill_outputs.output_loss` of the student's
    predictions (new rows being ``rows``) at every position."""
    weight = model.get_input_embeddings().weight
    ids, mask = _pad([c.student for c in contexts])
    local = torch.searchsorted(new_ids, ids.clamp(min=base_vocab_size)).clamp(max=len(new_ids) - 1)
    is_new = (ids >= base_vocab_size) & (new_ids[local] == ids)
    embeds = torch.where(is_new[..., None], rows[local].to(weight.dtype), weight.detach()[ids])
    hidden = _decoder(model)(inputs_embeds=embeds, attention_mask=mask).last_hidden_state.float()
    diff = [hidden[i, 1:len(c.student)] - t[1:] for i, (c, t) in enumerate(zip(contexts, targets))]
    loss = torch.cat(diff).square().mean()
    if span_logp is None or first is None:
        return loss, None
    head = weight.detach().index_put((new_ids,), rows.to(weight.dtype)).float()
    states = torch.cat([hidden[i, :len(c.student) - 1] for i, c in enumerate(contexts)])
    nxt = torch.cat([ids[i, 1:len(c.student)] for i, c in enumerate(contexts)])
    teacher_logits = torch.cat([t[:-1] for t in targets]) @ head[:base_vocab_size].T
    return loss, output_loss(states @ head.T, nxt, torch.cat([s[1:] for s in span_logp]), teacher_logits,
                             first[:len(head)])
