"""Tokenizer families: one folder each, all with the face of :class:`~vocab_extend.families.interface.Family`,
and the registry that asks them which one reads a file, a folder or a Hugging Face tokenizer.

A family is registered once (:func:`register`); everything else asks the registry, never a family by name:
:func:`resolve_tokenizer` turns ``--base``/``--tokenizer`` into a :class:`TokenizerSource` (the path from
:func:`vocab_extend.sources.locate_tokenizer`, the family from the first family that claims it), and
:func:`byte_piece_rule` answers for a loaded Hugging Face tokenizer.

>>> resolve_tokenizer("mistral-7b-v0.1").family == SENTENCEPIECE.name
True
>>> get_family(BYTELEVEL.name).new_model_file
'new_language_tokenizer.json'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..errors import VocabExtendError
from ..settings import SETTINGS_FILES
from ..scripts import ScriptSet
from ..sources import DEFAULT_BASE, HubQuery, locate_tokenizer
from .bytelevel import FAMILY as BYTELEVEL
from .interface import AnyFamily, Base, TokenizerSource
from .sentencepiece import FAMILY as SENTENCEPIECE

FAMILIES: dict[str, AnyFamily] = {}


def register(family: AnyFamily) -> AnyFamily:
    """Add ``family`` to the registry; it is asked after the families registered before it."""
    if family.name in FAMILIES and FAMILIES[family.name] is not family:
        raise VocabExtendError(f"a tokenizer family named {family.name!r} is registered already")
    FAMILIES[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family registered by :func:`register` (tests that register their own)."""
    FAMILIES.pop(name, None)


register(SENTENCEPIECE)
register(BYTELEVEL)


def get_family(name: str) -> AnyFamily:
    """The family called ``name`` (as written in ``vocab_extend.json``); one sentence for an unknown one."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise VocabExtendError(
            f"unknown tokenizer family {name!r}: vocab-extend knows {', '.join(FAMILIES)}"
        ) from None


def widen_split(family: AnyFamily, base: Base, scripts: ScriptSet) -> Base:
    """``base`` with its split widened for ``scripts`` by the family's own ``widen_split``; a family without
    one is one sentence."""
    widen = getattr(family, "widen_split", None)
    if widen is None:
        raise VocabExtendError(f"--widen-split applies to byte-level BPE bases; {family.kind} has no split to "
                               "widen: drop --widen-split")
    return widen(base, scripts)


def widened_ceiling(family: AnyFamily, base: Base, scripts: ScriptSet, lines: list[str]) -> float | None:
    """Characters per pre-token of ``lines`` if the base's split were widened for ``scripts`` (what
    ``--widen-split`` allows); None for a family without a split to widen, or a split it cannot widen."""
    ceiling = getattr(family, "widened_ceiling", None)
    if ceiling is None:
        return None
    try:
        return ceiling(base, scripts, lines)
    except VocabExtendError:
        return None


def not_claimed(name: str) -> VocabExtendError:
    """The one sentence for a file or folder no family reads, naming what each family reads."""
    kinds = ", nor ".join(family.kind for family in FAMILIES.values())
    return VocabExtendError(f"{name} is not {kinds}")


def claim_file(path: Path) -> AnyFamily | None:
    """The first family that reads the file ``path`` as a base tokenizer, or None."""
    return next((family for family in FAMILIES.values() if family.claims_file(path)), None)


def claim_folder(folder: Path, name: str) -> TokenizerSource | None:
    """The first family that reads a file of ``folder``, with that file; None when none does."""
    for family in FAMILIES.values():
        found = family.file_in_folder(folder)
        if found is not None:
            return TokenizerSource(name, family.name, found)
    return None


def claim(path: Path, name: str) -> TokenizerSource:
    """The family that reads the local file or folder ``path`` (named ``name``); raises when none does."""
    if path.is_dir():
        source = claim_folder(path, name)
        if source is None:
            raise not_claimed(f"folder {name}")
        return source
    family = claim_file(path)
    if family is None:
        raise not_claimed(name)
    return TokenizerSource(name, family.name, path)


def hub_query() -> HubQuery:
    """What a Hub repository is asked for: each family's tokenizer files, in registry order."""
    files = list(dict.fromkeys(name for family in FAMILIES.values() for name in family.hub_files))
    return HubQuery(files, SETTINGS_FILES, lambda path: claim_file(path) is not None)


def resolve_tokenizer(spec: str = DEFAULT_BASE, what: str = "base") -> TokenizerSource:
    """Turn ``--base`` (or ``--tokenizer``) into a :class:`TokenizerSource`; raises with the fix."""
    return claim(locate_tokenizer(spec, what, query=hub_query()), spec)


def byte_piece_rule(backend: object) -> Callable[[str], bool]:
    """Which pieces of a Hugging Face tokenizer (its ``tokenizers`` backend) stand for a lone byte: the rule
    of the first family whose conventions it follows; no piece is a byte for a tokenizer no family claims."""
    data = json.loads(backend.to_str())  # type: ignore[attr-defined]
    family = next((f for f in FAMILIES.values() if f.claims_tokenizer(data)), None)
    return family.is_byte_piece if family is not None else (lambda piece: False)


def check_new_model(family: AnyFamily, path: Path | None, base_name: str) -> None:
    """Refuse a ``--new-model`` file that another family reads: it cannot be merged into ``family``'s base."""
    if path is None or not Path(path).is_file():
        return
    other = claim_file(Path(path))
    if other is not None and other is not family:
        raise VocabExtendError(
            f"--new-model {path} is {other.kind}, which cannot be merged into {base_name}, {family.kind}: give a "
            "new-language model of the base's own kind, or train it on --corpus instead"
        )
