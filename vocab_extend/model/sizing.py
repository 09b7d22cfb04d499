"""How many embedding rows a model has for a tokenizer, and the check that the two belong together.

Rows below ``first_new_id`` are the base's; the tokenizer's size padded to ``pad_to_multiple_of`` is the
number of rows after ``init-model`` (:func:`vocab_extend.metadata.pad_vocab_size`).

>>> from types import SimpleNamespace
>>> model = SimpleNamespace(get_input_embeddings=lambda: SimpleNamespace(num_embeddings=35_840))
>>> check_vocabulary_fits(model, range(35_791))  # 49 padding rows: fits
"""

from __future__ import annotations

from ..errors import VocabExtendError
from ..metadata import pad_vocab_size

# A model may have a few unused embedding rows (padding to a multiple of 64 or 128); this many means the
# model was made for another vocabulary.
MAX_PADDING_ROWS = 1024

__all__ = ["MAX_PADDING_ROWS", "check_vocabulary_fits", "pad_vocab_size"]


def check_vocabulary_fits(model, tokenizer) -> None:
    """The model's embeddings must hold every token id, and not be made for a much larger vocabulary."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise VocabExtendError(
            f"the tokenizer has {len(tokenizer):,} tokens but the model only {rows:,} embedding rows: resize the "
            "model to the extended tokenizer first with `vocab-extend init-model`"
        )
    if rows - len(tokenizer) >= MAX_PADDING_ROWS:
        raise VocabExtendError(
            f"the model has {rows:,} embedding rows but the tokenizer only {len(tokenizer):,} tokens: it is not "
            "the tokenizer this model was made for (pass the right --tokenizer)"
        )
