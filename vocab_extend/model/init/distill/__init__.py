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

The package: :mod:`.config` (the budget and settings, light to import so ``init-model --help`` does not load
torch), :mod:`.contexts` (the spans and the context windows), :mod:`.rows` (the loop:
:func:`~.rows.distill_embeddings`), :mod:`.passes` (the teacher's and the student's passes),
:mod:`.outputs` (the output side) and :mod:`.transfer` (the rows no context reached).
"""

from __future__ import annotations

from .config import DistillConfig

__all__ = ["DistillConfig"]
