"""The small metadata file a merge writes next to the tokenizer (``vocab_extend.json``).

Later steps read it to know the base: :func:`load_base_tokenizer` rebuilds the base tokenizer, whose ids
are the first ``base_vocab_size`` ids of the extended one, and ``pad_to_multiple_of`` sizes the embeddings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import VocabExtendError

METADATA_FILE = "vocab_extend.json"


@dataclass
class MergeMetadata:
    base: str  # what --base named: alias, path or Hub id
    base_kind: str  # "sentencepiece" or "bytelevel"
    base_vocab_size: int  # ids below this are the base's, unchanged
    vocab_size: int  # size of the extended tokenizer (added/special tokens included)
    lang: str
    added_pieces: int
    pad_to_multiple_of: int | None = None
    new_model: str = ""  # file name of the new-language model inside the folder
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: Path) -> None:
        text = json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        (Path(folder) / METADATA_FILE).write_text(text, encoding="utf-8")


def read_metadata(folder: str | Path) -> MergeMetadata:
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        raise VocabExtendError(
            f"{folder} has no {METADATA_FILE}: give a folder written by `vocab-extend merge`"
        )
    try:
        return MergeMetadata(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise VocabExtendError(f"{path} is damaged ({exc}): write the folder again with `vocab-extend merge`") from None


def load_base_tokenizer(folder: str | Path):  # -> transformers.PreTrainedTokenizerBase
    """The base tokenizer of an extended tokenizer folder, as a Hugging Face tokenizer.

    SentencePiece bases are rebuilt from the merged ``tokenizer.model`` cut to ``base_vocab_size`` pieces
    (base pieces are stored unchanged), so no network or original file is needed.
    """
    meta = read_metadata(folder)
    if meta.base_kind == "sentencepiece":
        from sentencepiece import sentencepiece_model_pb2 as sp_pb2

        from .export import hf_tokenizer

        proto = sp_pb2.ModelProto()
        proto.ParseFromString((Path(folder) / "tokenizer.model").read_bytes())
        del proto.pieces[meta.base_vocab_size :]
        proto.trainer_spec.vocab_size = meta.base_vocab_size
        return hf_tokenizer(proto)
    if meta.base_kind == "bytelevel":
        from .bytelevel import load_base_tokenizer as load_bytelevel_base

        return load_bytelevel_base(folder, meta)
    raise VocabExtendError(f"{folder}/{METADATA_FILE} names an unknown base kind {meta.base_kind!r}")
