"""The SentencePiece family's GGUF vocabulary (llama.cpp's ``llama`` tokenizer).

Every piece of ``tokenizer.model`` with its score and type (SentencePiece's piece types use llama.cpp's
numbers); tokens of ``tokenizer.json`` past the model's pieces follow, as user-defined or control tokens.
llama.cpp merges pieces by score, as SentencePiece BPE does; ``add_space_prefix`` says whether the written
normaliser prepends ``▁``.
"""

from __future__ import annotations

import json
from pathlib import Path

from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from ...errors import VocabExtendError
from ..files import folder_json
from ..interface import JsonDict, TokenizerVocab, TokenType

UNUSED_SCORE = -1000.0


def _model(folder: Path, name: str) -> sp_pb2.ModelProto:
    path = folder / name
    if not path.is_file():
        raise VocabExtendError(f"{folder} has no {name}: a SentencePiece model folder needs it "
                               "(as written by `vocab-extend init-model`)")
    proto = sp_pb2.ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception:  # noqa: BLE001 - protobuf raises several types
        proto = None
    if proto is None or not proto.pieces:
        raise VocabExtendError(f"{path} is not a SentencePiece model: write the folder again with "
                               "`vocab-extend init-model`")
    return proto


def _fill_holes(vocab: TokenizerVocab, upto: int) -> None:
    while len(vocab.tokens) < upto:
        vocab.tokens.append(f"[PAD{len(vocab.tokens)}]")
        vocab.types.append(TokenType.UNUSED)
        assert vocab.scores is not None
        vocab.scores.append(UNUSED_SCORE)


def _add_added_tokens(vocab: TokenizerVocab, data: JsonDict) -> None:
    assert vocab.scores is not None
    for added in sorted(data.get("added_tokens") or [], key=lambda a: a["id"]):
        token_id = added["id"]
        kind = TokenType.CONTROL if added.get("special") else TokenType.USER_DEFINED
        if token_id < len(vocab.tokens):
            if vocab.types[token_id] == TokenType.NORMAL:
                vocab.types[token_id] = kind
            continue
        _fill_holes(vocab, token_id)
        vocab.tokens.append(added["content"])
        vocab.types.append(kind)
        vocab.scores.append(UNUSED_SCORE)


def gguf_vocab(folder: Path, model_file: str, pre: str | None) -> TokenizerVocab:
    """The ``llama`` vocabulary of the SentencePiece tokenizer in ``folder``; ``pre`` is refused."""
    folder = Path(folder)
    if pre is not None:
        raise VocabExtendError(f"--pre names the split of a byte-level (gpt2) tokenizer; the tokenizer in "
                               f"{folder} is SentencePiece (llama.cpp's llama tokenizer): drop --pre")
    # a SentencePiece folder may lack tokenizer.json (a slow tokenizer); it then has no added tokens to read
    data = folder_json(folder, "tokenizer.json", missing_ok=True)
    proto = _model(folder, model_file)
    vocab = TokenizerVocab("llama", [p.piece for p in proto.pieces], [int(p.type) for p in proto.pieces],
                           scores=[float(p.score) for p in proto.pieces], pre="default")
    _add_added_tokens(vocab, data)
    normalizer = json.dumps(data.get("normalizer")) + json.dumps(data.get("pre_tokenizer"))
    vocab.add_space_prefix = '"Prepend"' in normalizer or ('"Metaspace"' in normalizer and '"never"' not in normalizer)
    return vocab
