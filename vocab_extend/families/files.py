"""What families whose tokenizer is a ``tokenizer.json`` do alike: load a folder with transformers, read a JSON
file of it, and trust ``tokenizers`` itself as the reference encoder of the checks.

Each family's :meth:`~vocab_extend.families.interface.Family.load_folder` may use :func:`auto_tokenizer`;
the GGUF vocabularies read ``tokenizer.json`` through :func:`folder_json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

from tokenizers import Tokenizer

from ..console import quiet_transformers
from ..errors import VocabExtendError
from ..jsonfile import read_json_object
from .interface import HFTokenizer, JsonDict


def auto_tokenizer(folder: Path, **kwargs: Any) -> HFTokenizer:
    """``AutoTokenizer`` on a local folder (a written folder, or a GGUF file's folder with ``gguf_file=``)."""
    from transformers import AutoTokenizer

    quiet_transformers()
    return AutoTokenizer.from_pretrained(str(folder), **kwargs)


def folder_json(folder: Path, name: str, *, missing_ok: bool = False) -> JsonDict:
    """The JSON object ``folder/name`` (``{}`` when it is missing and ``missing_ok``); one sentence otherwise."""
    path = Path(folder) / name
    if not path.is_file():
        if missing_ok:
            return {}
        raise VocabExtendError(f"{path.parent} has no {path.name}: give a model folder with its tokenizer "
                               "(as written by `vocab-extend init-model`)")
    return read_json_object(path)


def merge_pairs(tokenizer: Tokenizer) -> list[tuple[str, str]]:
    """The merge list of a BPE ``tokenizers.Tokenizer`` as pairs, in rank order (either file format)."""
    merges = json.loads(tokenizer.to_str())["model"].get("merges") or []
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges]  # type: ignore[misc]


class TokenizersReference:
    """``tokenizers`` itself reading a ``tokenizer.json``: the encoder ``AutoTokenizer`` must agree with.

    ``show`` turns a stored token into readable text for :meth:`pieces` (the byte-level family maps its byte
    alphabet back); :meth:`entries` are every token id and every merge, which a merge must keep; ``ceiling``
    counts characters per pre-token for :meth:`split_ceiling` (None: the family names no ceiling).
    """

    def __init__(self, tokenizer: Tokenizer, show: Callable[[str], str] = str,
                 ceiling: Callable[[Tokenizer, list[str]], float | None] | None = None) -> None:
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.encode_special_tokens = True  # text that spells a special token is text
        self.show = show
        self.ceiling = ceiling

    def split_ceiling(self, lines: Sequence[str]) -> float | None:
        return self.ceiling(self.tokenizer, list(lines)) if self.ceiling is not None else None

    def encode(self, lines: Sequence[str], *, specials: bool) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(lines), add_special_tokens=specials)]

    def encode_both(self, lines: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        return self.encode(lines, specials=True), self.encode(lines, specials=False)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def pieces(self, text: str) -> list[str]:
        return [self.show(t) for t in self.tokenizer.encode(text, add_special_tokens=False).tokens]

    def entries(self) -> dict[Hashable, object]:
        entries: dict[Hashable, object] = {("token", t): i for t, i in self.tokenizer.get_vocab(with_added_tokens=True).items()}
        entries.update({("merge", rank): pair for rank, pair in enumerate(merge_pairs(self.tokenizer))})
        return entries
