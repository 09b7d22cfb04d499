"""The ``--dtype`` names of the model commands, light to import (no torch), so ``--help`` lists them fast.

``auto``: float32 on CPU, the checkpoint's dtype elsewhere; ``checkpoint``: always the checkpoint's dtype; the
others name the torch dtype the weights are cast to (:func:`vocab_extend.model.loading.resolve_dtype`).

>>> DTYPE_CHOICES
('auto', 'checkpoint', 'float32', 'bfloat16', 'float16')
"""

from __future__ import annotations

CAST_DTYPES = ("float32", "bfloat16", "float16")
DTYPE_CHOICES = ("auto", "checkpoint", *CAST_DTYPES)
