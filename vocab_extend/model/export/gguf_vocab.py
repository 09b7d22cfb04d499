"""The tokenizer half of a GGUF file: what llama.cpp needs to tokenize exactly like the HF folder.

Two families, as llama.cpp names them:

- ``llama`` (SentencePiece): every piece of ``tokenizer.model`` with its score and type (normal, unknown,
  control, user-defined, unused, byte). llama.cpp merges pieces by score, as SentencePiece BPE does.
- ``gpt2`` (byte-level BPE): the pieces of ``tokenizer.json`` spelled in the byte alphabet, the merges in
  rank order, and ``tokenizer.ggml.pre``, the name of the regex that splits text before the merges.

llama.cpp's own converter finds ``pre`` by hashing the ids of a test string that contains CJK characters;
an extended tokenizer encodes those differently, so the hash is unknown and the converter stops. Here the
name is decided from the split itself instead (:func:`pre_tokenizer_name`): the pre-tokenizer steps and
regex in ``tokenizer.json``, else the base recorded in ``vocab_extend.json``.

Invariant: the vocabulary has exactly as many entries as the embedding has rows. Rows past the tokenizer
(padding to a multiple of 64, say) get placeholder names ``[PAD<id>]`` and the type UNUSED, which is what
llama.cpp expects and what keeps it from refusing the file for a size mismatch.

>>> pre_tokenizer_name({"type": "Sequence", "pretokenizers": [
...     {"type": "Digits", "individual_digits": True}, {"type": "ByteLevel", "use_regex": True}]})
'smollm'
>>> pre_tokenizer_name({"type": "Sequence", "pretokenizers": [
...     {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}}, {"type": "ByteLevel", "use_regex": False}]})
'llama-bpe'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf import GGUFWriter, TokenType

from ...errors import VocabExtendError
from ...jsonfile import read_json_object
from ...sources import is_bytelevel

# The split regexes of the byte-level families llama.cpp knows by name (as their tokenizer.json spell them).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
               r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_SPLITS = {LLAMA3_SPLIT: "llama-bpe", QWEN2_SPLIT: "qwen2"}
# base names (alias, Hub id or path, lower-cased) -> llama.cpp pre-tokenizer, for a tokenizer.json that has
# no pre-tokenizer; first match wins
_BASE_NAMES = (("smollm", "smollm"), ("llama-3", "llama-bpe"), ("llama3", "llama-bpe"), ("qwen2", "qwen2"))
PRE_EXAMPLES = "smollm, llama-bpe, qwen2, gpt-2"


@dataclass
class GGUFVocab:
    """Everything ``tokenizer.*`` in a GGUF file holds; lists are indexed by token id."""

    model: str  # "llama" or "gpt2"
    tokens: list[str]
    types: list[int]
    scores: list[float] | None = None
    merges: list[str] = field(default_factory=list)
    pre: str | None = None
    special: dict[str, int] = field(default_factory=dict)  # bos/eos/unk/pad -> id
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: bool | None = None
    chat_template: str | None = None
    padding: int = 0  # placeholder rows past the tokenizer

    def write(self, writer: GGUFWriter) -> None:
        writer.add_tokenizer_model(self.model)
        if self.pre:
            writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        if self.scores is not None:
            writer.add_token_scores(self.scores)
        writer.add_token_types(self.types)
        if self.merges:
            writer.add_token_merges(self.merges)
        setters = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id,
                   "unk": writer.add_unk_token_id, "pad": writer.add_pad_token_id}
        for name, token_id in self.special.items():
            setters[name](token_id)
        writer.add_add_bos_token(self.add_bos)
        writer.add_add_eos_token(self.add_eos)
        if self.add_space_prefix is not None:
            writer.add_add_space_prefix(self.add_space_prefix)
        if self.chat_template:
            writer.add_chat_template(self.chat_template)


def tokenizer_family(folder: Path) -> str:
    """``"sentencepiece"`` or ``"bytelevel"``: from ``vocab_extend.json``, else from the tokenizer files."""
    meta = _read_json(folder / "vocab_extend.json", missing_ok=True)
    if meta.get("base_kind") in ("sentencepiece", "bytelevel"):
        return meta["base_kind"]
    if (folder / "tokenizer.model").is_file() and _sentencepiece_proto(folder / "tokenizer.model", strict=False):
        return "sentencepiece"
    data = _read_json(folder / "tokenizer.json", missing_ok=True)
    if data and is_bytelevel(data):
        return "bytelevel"
    raise VocabExtendError(
        f"{folder} has neither a SentencePiece tokenizer.model nor a byte-level BPE tokenizer.json: "
        "give a folder written by `vocab-extend init-model`"
    )


def pre_tokenizer_name(pre_tokenizer: dict[str, Any] | None, *, base: str = "") -> str | None:
    """llama.cpp's name for the split that ``pre_tokenizer`` (from ``tokenizer.json``) performs, or None.

    The regex decides, since the GGUF must split text as the HF folder does: Llama-3's and Qwen2's split
    regexes by their text, SmolLM's digits-one-by-one before GPT-2's regex by its ``Digits`` step, GPT-2's
    regex alone by a bare ``ByteLevel``. Only a ``tokenizer.json`` without a pre-tokenizer falls back to the
    base's name (or, for a GGUF base file, the name recorded in it). An unknown regex gives None.
    """
    steps = _flatten(pre_tokenizer)
    if not steps:
        lowered = base.lower()
        if lowered.endswith(".gguf") and Path(base).is_file():
            return _gguf_pre(Path(base))
        return next((pre for pattern, pre in _BASE_NAMES if pattern in lowered), None)
    kinds = [s.get("type") for s in steps]
    splits = [s.get("pattern", {}).get("Regex") for s in steps if s.get("type") == "Split"]
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        return _SPLITS.get(splits[0])
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    return None


def read_vocab(folder: Path, rows: int, *, pre: str | None = None) -> GGUFVocab:
    """The GGUF vocabulary of the tokenizer in ``folder``, padded with UNUSED placeholders to ``rows``."""
    folder = Path(folder)
    family = tokenizer_family(folder)
    meta = _read_json(folder / "vocab_extend.json", missing_ok=True)
    # a SentencePiece folder may lack tokenizer.json (a slow tokenizer); it then has no added tokens to read
    data = _read_json(folder / "tokenizer.json", missing_ok=family == "sentencepiece")
    if family == "sentencepiece":
        if pre is not None:
            raise VocabExtendError(f"--pre names the split of a byte-level (gpt2) tokenizer; the tokenizer in "
                                   f"{folder} is SentencePiece (llama.cpp's llama tokenizer): drop --pre")
        vocab = _sentencepiece_vocab(folder, data)
    else:
        vocab = _bytelevel_vocab(data)
        vocab.pre = pre or pre_tokenizer_name(data.get("pre_tokenizer"), base=str(meta.get("base", "")))
        if not vocab.pre:
            raise VocabExtendError(
                f"cannot tell which llama.cpp pre-tokenizer the byte-level tokenizer in {folder} uses "
                f"(base {meta.get('base', 'unknown')!r}): pass --pre NAME (one of llama.cpp's names, e.g. "
                f"{PRE_EXAMPLES})"
            )
    if len(vocab.tokens) > rows:
        raise VocabExtendError(
            f"the tokenizer in {folder} has {len(vocab.tokens):,} tokens but the model only {rows:,} embedding "
            "rows: resize the model with `vocab-extend init-model`"
        )
    vocab.padding = rows - len(vocab.tokens)
    for token_id in range(len(vocab.tokens), rows):
        vocab.tokens.append(f"[PAD{token_id}]")
        vocab.types.append(TokenType.UNUSED)
        if vocab.scores is not None:
            vocab.scores.append(-1000.0)
    _special_settings(folder, vocab)
    return vocab


def _sentencepiece_vocab(folder: Path, data: dict[str, Any]) -> GGUFVocab:
    proto = _sentencepiece_proto(folder / "tokenizer.model", strict=True)
    tokens = [p.piece for p in proto.pieces]
    scores = [float(p.score) for p in proto.pieces]
    # SentencePiece piece types use llama.cpp's numbers: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    # 6 byte
    types = [int(p.type) for p in proto.pieces]
    for added in sorted(data.get("added_tokens") or [], key=lambda a: a["id"]):
        token_id = added["id"]
        kind = TokenType.CONTROL if added.get("special") else TokenType.USER_DEFINED
        if token_id < len(tokens):
            if types[token_id] == TokenType.NORMAL:
                types[token_id] = kind
            continue
        _fill_holes(tokens, types, token_id, scores)
        tokens.append(added["content"])
        types.append(kind)
        scores.append(-1000.0)
    normalizer = json.dumps(data.get("normalizer")) + json.dumps(data.get("pre_tokenizer"))
    prefix = '"Prepend"' in normalizer or ('"Metaspace"' in normalizer and '"never"' not in normalizer)
    return GGUFVocab("llama", tokens, types, scores=scores, pre="default", add_space_prefix=prefix)


def _bytelevel_vocab(data: dict[str, Any]) -> GGUFVocab:
    model = data.get("model") or {}
    by_id: dict[int, tuple[str, int]] = {i: (t, TokenType.NORMAL) for t, i in (model.get("vocab") or {}).items()}
    for added in data.get("added_tokens") or []:
        by_id[added["id"]] = (added["content"], TokenType.CONTROL if added.get("special") else TokenType.USER_DEFINED)
    tokens: list[str] = []
    types: list[int] = []
    for token_id in range(max(by_id) + 1 if by_id else 0):
        token, kind = by_id.get(token_id, (f"[PAD{token_id}]", TokenType.UNUSED))
        tokens.append(token)
        types.append(kind)
    merges = []
    for merge in model.get("merges") or []:
        pair = merge.split(" ") if isinstance(merge, str) else list(merge)
        if len(pair) != 2 or any(" " in part for part in pair):
            raise VocabExtendError(f"tokenizer.json has a merge that llama.cpp cannot store: {merge!r}")
        merges.append(" ".join(pair))
    return GGUFVocab("gpt2", tokens, types, merges=merges)


def _special_settings(folder: Path, vocab: GGUFVocab) -> None:
    """Special ids, add-BOS/EOS and the chat template, as the HF tokenizer of ``folder`` applies them."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # noqa: BLE001 - any loader failure is a damaged folder
        raise VocabExtendError(f"the tokenizer in {folder} does not load ({exc})") from None
    for name in ("bos", "eos", "unk", "pad"):
        token_id = getattr(tokenizer, f"{name}_token_id")
        if token_id is not None:
            vocab.special[name] = int(token_id)
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    bos, eos = vocab.special.get("bos"), vocab.special.get("eos")
    vocab.add_bos = bos is not None and len(full) > len(plain) and full[0] == bos
    vocab.add_eos = eos is not None and len(full) > len(plain) and full[-1] == eos
    template = tokenizer.chat_template
    vocab.chat_template = template if isinstance(template, str) else None


def _fill_holes(tokens: list[str], types: list[int], upto: int, scores: list[float]) -> None:
    while len(tokens) < upto:
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(TokenType.UNUSED)
        scores.append(-1000.0)


def _flatten(pre_tokenizer: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not pre_tokenizer:
        return []
    if pre_tokenizer.get("type") == "Sequence":
        return [s for step in pre_tokenizer.get("pretokenizers") or [] for s in _flatten(step)]
    return [pre_tokenizer]


def _gguf_pre(path: Path) -> str | None:
    from gguf import GGUFReader

    try:
        field_ = GGUFReader(path).fields.get("tokenizer.ggml.pre")
        return str(field_.contents()) if field_ is not None else None
    except Exception:  # noqa: BLE001 - an unreadable base file just gives no hint
        return None


def _sentencepiece_proto(path: Path, *, strict: bool):
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2

    if not path.is_file():
        if strict:
            raise VocabExtendError(f"{path.parent} has no tokenizer.model: a SentencePiece model folder needs it "
                                   "(as written by `vocab-extend init-model`)")
        return None
    proto = sp_pb2.ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception:  # noqa: BLE001 - protobuf raises several types
        proto = None
    if proto is None or not proto.pieces:
        if strict:
            raise VocabExtendError(f"{path} is not a SentencePiece model: write the folder again with "
                                   "`vocab-extend init-model`")
        return None
    return proto


def _read_json(path: Path, *, missing_ok: bool = False) -> dict[str, Any]:
    if not path.is_file():
        if missing_ok:
            return {}
        raise VocabExtendError(f"{path.parent} has no {path.name}: give a model folder with its tokenizer "
                               "(as written by `vocab-extend init-model`)")
    return read_json_object(path)
