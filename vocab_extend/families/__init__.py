"""Tokenizer families: one folder each, all with the face of :class:`~vocab_extend.families.interface.Family`.

>>> get_family("bytelevel").new_model_file
'new_language_tokenizer.json'
"""

from __future__ import annotations

from ..errors import VocabExtendError
from .bytelevel import FAMILY as BYTELEVEL
from .interface import Family
from .sentencepiece import FAMILY as SENTENCEPIECE

FAMILIES: dict[str, Family] = {SENTENCEPIECE.name: SENTENCEPIECE, BYTELEVEL.name: BYTELEVEL}


def get_family(name: str) -> Family:
    """The family called ``name`` (as written in ``vocab_extend.json``); one sentence for an unknown one."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise VocabExtendError(
            f"unknown tokenizer family {name!r}: vocab-extend knows {', '.join(FAMILIES)}"
        ) from None
