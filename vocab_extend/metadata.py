"""The small metadata file a merge writes next to the tokenizer (``vocab_extend.json``).

Later steps read it to know the base: ``base_kind`` names the tokenizer family that rebuilds the base
tokenizer (whose ids are the first ``base_vocab_size`` ids of the extended one), and ``pad_to_multiple_of``
sizes the embeddings. The file keeps its field names; in code, :attr:`MergeMetadata.first_new_id` and
:attr:`MergeMetadata.tokenizer_size` say which size is meant.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import VocabExtendError
from .jsonfile import read_json_object

METADATA_FILE = "vocab_extend.json"


def pad_vocab_size(size: int, multiple: int | None) -> int:
    """The embedding size after padding ``size`` up to a multiple (``None`` or 1: no padding).

    >>> pad_vocab_size(35_791, 64), pad_vocab_size(35_791, None)
    (35840, 35791)
    """
    if not multiple or multiple <= 1:
        return size
    return -(-size // multiple) * multiple


@dataclass
class MergeMetadata:
    base: str  # what --base named: alias, path or Hub id
    base_kind: str  # the name of the family that reads the base (vocab_extend.families.get_family)
    base_vocab_size: int  # ids below this are the base's, unchanged: the first new id
    vocab_size: int  # size of the extended tokenizer (added/special tokens included), not of the embeddings
    lang: str
    added_pieces: int
    pad_to_multiple_of: int | None = None
    new_model: str = ""  # file name of the new-language model inside the folder
    extra: dict[str, Any] = field(default_factory=dict)
    corpus: list[str] = field(default_factory=list)  # the --corpus specs as given (init-model's distill default)

    @property
    def first_new_id(self) -> int:
        return self.base_vocab_size

    @property
    def tokenizer_size(self) -> int:
        return self.vocab_size

    @property
    def embedding_rows(self) -> int:
        """Rows the embeddings get: the tokenizer size padded to ``pad_to_multiple_of``."""
        return pad_vocab_size(self.vocab_size, self.pad_to_multiple_of)

    def write(self, folder: Path) -> None:
        text = json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        (Path(folder) / METADATA_FILE).write_text(text, encoding="utf-8")


def metadata_fields(folder: str | Path) -> dict[str, Any]:
    """The fields of the folder's ``vocab_extend.json`` as written, ``{}`` when there is none (a model card
    says what a run started from when it can, and nothing when the tokenizer was not written by a merge)."""
    return read_json_object(Path(folder) / METADATA_FILE, missing_ok=True,
                            fix="write the folder again with `vocab-extend merge`")


def read_metadata(folder: str | Path) -> MergeMetadata:
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        raise VocabExtendError(
            f"{folder} has no {METADATA_FILE}: give a folder written by `vocab-extend merge`"
        )
    fix = "write the folder again with `vocab-extend merge`"
    data = read_json_object(path, fix=fix)
    try:
        return MergeMetadata(**data)
    except TypeError as exc:
        raise VocabExtendError(f"{path} is damaged ({exc}): write the folder again with `vocab-extend merge`") from None

