"""Extending byte-level BPE tokenizers (SmolLM2, Llama-3, Qwen style) with a new language.

A byte-level BPE (a ``tokenizer.json`` whose pre-tokenizer maps bytes to GPT-2's printable alphabet) encodes
each pre-token by applying ranked merges, lowest rank first. We train a BPE on the new-language corpus with
the base's own normaliser and pre-tokenizer, then append its tokens after every base id (added and special
tokens included) and *derived* merges after every base merge. The guarantees:

1. *Base ids kept.* The base vocabulary, added tokens and merge list are copied unchanged; new merges come
   after the last base merge, so a new merge fires only where no base merge applies.
2. *Base-language text unchanged.* Every new merge's result contains a whole character of the new scripts,
   or ends in the first bytes of a character whose every possible completion is in the new scripts (``é°``
   can only start 鰀..鰿). Such a merge can only fire inside a pre-token holding a new-script character, so
   text without one (English, code, ASCII digits) tokenizes exactly as before.
3. *Digits.* When the base splits digits (a ``Digits`` pre-tokenizer, ``\\p{N}{1,3}``, or no base token
   with two digits), a new token holding a digit must be that single digit and nothing else.
4. *No dead tokens.* Merges are re-derived, not copied: for each new-model token (in the new model's merge
   order) we segment its bytes with the merges accepted so far; two pieces give the merge that makes it; more
   pieces first get an admissible intermediate (the byte→character merges new characters need). Since every
   later merge ranks higher, a token's own bytes always encode to that token: every added token is made by
   a merge and comes out of encoding its own surface.

Training: ``tokenizers`` directly, not SentencePiece then conversion. Measured on SmolLM2, 16k-token models
on the shared Japanese corpora (``bench/bytelevel_japanese.py``): both reach the same held-out compression
(1.74 chars/token), but SentencePiece pieces are characters, not bytes, and pay no heed to the base's
pre-tokenizer, so the conversion needs 3,477 extra byte-to-character tokens (17,541 added against 14,964)
for the same result: 2,600 more embedding rows to train for nothing. The ``tokenizers`` model is trained
inside the base's own pre-token boundaries and normaliser (any pre-tokenizer, Llama-3's digit rules
included), so nearly every token it learns is kept as is. SentencePiece trains several times faster (10 s against
50 s here on 2 busy cores); it stays available as ``trainer="sentencepiece"`` for that comparison.

>>> from vocab_extend.scripts import JAPANESE
>>> admissible_reason(to_byte_level("東京"), JAPANESE, split_digits=True) is None
True
>>> admissible_reason(to_byte_level("鰯".encode("utf-8")[1:]), JAPANESE, split_digits=True)
'no_new_script_char'
>>> admissible_reason(to_byte_level("鰯".encode("utf-8")[:2]), JAPANESE, split_digits=True) is None
True
>>> admissible_reason(to_byte_level("２０"), JAPANESE, split_digits=True)
'digits'
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping

from tokenizers import Tokenizer
from tqdm.auto import tqdm

from .base import BaseTokenizer
from .errors import VocabExtendError
from .scripts import ScriptSet

NEW_MODEL_FILE = "new_language_tokenizer.json"
SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token")


# --------------------------------------------------------------------------------------------- configuration


@dataclass
class ByteLevelConfig:
    """Settings of the new-language BPE and of the merge.

    ``trainer`` is ``tokenizers`` (default, see the module docstring) or ``sentencepiece`` (kept for the
    comparison in the bench); ``seed`` seeds SentencePiece's sentence sampling (the ``tokenizers`` trainer is
    deterministic without one); ``max_token_length`` caps new tokens, in byte-level characters.
    """

    vocab_size: int = 16_000
    min_frequency: int = 2
    trainer: Literal["tokenizers", "sentencepiece"] = "tokenizers"
    seed: int = 0
    max_token_length: int | None = None
    max_examples: int = 8
    show_progress: bool = True


@dataclass
class MergeOutcome:
    """What :func:`extend_bytelevel` wrote and an account of every new-model token it did not add.

    ``added`` holds the new tokens as written in ``tokenizer.json`` (byte-level strings), in id order;
    ``added_text`` the same as readable text (partial characters shown as ``\\x..`` escapes).
    """

    base_vocab_size: int  # new ids start here: one past the largest base id, added tokens included
    vocab_size: int
    added: list[str]
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    new_model_file: str = NEW_MODEL_FILE
    base_merges: int = 0
    intermediates: int = 0  # added tokens that were not new-model tokens (byte->character steps)
    split_digits: bool = True
    trainer: str = "tokenizers"

    @property
    def added_text(self) -> list[str]:
        return [token_text(t) for t in self.added]


@dataclass
class ByteLevelBase:
    """A byte-level base: its ``tokenizers.Tokenizer`` and the Hugging Face settings around it."""

    tokenizer: Tokenizer
    # bos/eos/unk/pad token strings and chat_template, as written into tokenizer_config.json
    hf_config: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------- the byte-level alphabet


@lru_cache(maxsize=1)
def _byte_maps() -> tuple[dict[int, str], dict[str, int]]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    to_char = bytes_to_unicode()
    return to_char, {c: b for b, c in to_char.items()}


def is_bytelevel(backend) -> bool:
    """Whether a ``tokenizers.Tokenizer`` reads bytes in GPT-2's alphabet (a ByteLevel pre-tokenizer or decoder)."""
    return "ByteLevel" in str(backend.pre_tokenizer) + str(backend.decoder)


def to_byte_level(text: str | bytes) -> str:
    """Text (or raw bytes) in GPT-2's byte alphabet, as tokens are stored: ``to_byte_level(" a") == "Ġa"``."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    to_char = _byte_maps()[0]
    return "".join(to_char[b] for b in data)


def token_bytes(token: str) -> bytes:
    """The bytes a byte-level token stands for; raises ``KeyError`` on a character outside the alphabet."""
    to_byte = _byte_maps()[1]
    return bytes(to_byte[c] for c in token)


def token_text(token: str) -> str:
    """A token as readable text; bytes that are not a whole character are shown as ``\\x..``."""
    try:
        return token_bytes(token).decode("utf-8", errors="backslashreplace")
    except KeyError:
        return token


def whole_text(token: str) -> str | None:
    """The text of a token made of whole characters; ``None`` when it holds part of a character."""
    try:
        return token_bytes(token).decode("utf-8")
    except (KeyError, UnicodeDecodeError):
        return None


def _utf8_length(lead: int) -> int:
    """Bytes of the character that starts with byte ``lead``; 0 when no character starts with it."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead < 0xE0:
        return 2
    if 0xE0 <= lead < 0xF0:
        return 3
    if 0xF0 <= lead < 0xF5:
        return 4
    return 0


def _split_utf8(data: bytes) -> tuple[list[str], bytes] | None:
    """Whole characters of ``data`` (leading continuation bytes skipped) and the trailing partial character.

    ``None`` when the bytes cannot be part of UTF-8 text.
    """
    i = 0
    while i < len(data) and 0x80 <= data[i] < 0xC0:
        i += 1
    chars: list[str] = []
    while i < len(data):
        size = _utf8_length(data[i])
        if size == 0:
            return None
        if i + size > len(data):
            tail = data[i:]
            if any(not 0x80 <= b < 0xC0 for b in tail[1:]):
                return None
            return chars, tail
        try:
            chars.append(data[i : i + size].decode("utf-8"))
        except UnicodeDecodeError:
            return None
        i += size
    return chars, b""


def _completions(prefix: bytes) -> tuple[int, int]:
    """The code-point range of the characters whose UTF-8 encoding starts with ``prefix`` (a partial char)."""
    lead = prefix[0]
    size = _utf8_length(lead)
    value_bits = {2: 0x1F, 3: 0x0F, 4: 0x07}[size]
    low = lead & value_bits
    for b in prefix[1:]:
        low = (low << 6) | (b & 0x3F)
    missing = size - len(prefix)
    return low << (6 * missing), (low << (6 * missing)) | ((1 << (6 * missing)) - 1)


def _range_in_scripts(lo: int, hi: int, scripts: ScriptSet) -> bool:
    """Whether every code point in ``lo..hi`` belongs to ``scripts`` (ranges may touch each other)."""
    point = lo
    while point <= hi:
        covering = [r_hi for r_lo, r_hi in scripts.ranges if r_lo <= point <= r_hi]
        if not covering:
            return False
        point = max(covering) + 1
    return True


def admissible_reason(token: str, scripts: ScriptSet, *, split_digits: bool) -> str | None:
    """``None`` when a merge making ``token`` can only fire inside a pre-token holding a new-script character.

    Otherwise the reason, as counted in :attr:`MergeOutcome.skipped`: ``no_new_script_char`` or ``digits``.
    """
    try:
        parts = _split_utf8(token_bytes(token))
    except KeyError:
        return "not_byte_level"
    if parts is None:
        return "no_new_script_char"
    chars, tail = parts
    in_script = any(scripts.is_script_char(ch) for ch in chars)
    if not in_script and tail:
        in_script = _range_in_scripts(*_completions(tail), scripts)
    if not in_script:
        return "no_new_script_char"
    if split_digits and any(unicodedata.category(ch) == "Nd" for ch in chars):
        if len(chars) != 1 or tail or len(token_bytes(token)) != len(chars[0].encode("utf-8")):
            return "digits"
    return None


# ------------------------------------------------------------------------------------------ loading a base


def _checked(tokenizer: Tokenizer, name: str) -> Tokenizer:
    data = json.loads(tokenizer.to_str())
    model = data.get("model") or {}
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(data.get("pre_tokenizer")):
        raise VocabExtendError(
            f"{name} is not a byte-level BPE tokenizer (BPE model with a ByteLevel pre-tokenizer); "
            "give a SmolLM2, Llama-3 or Qwen style tokenizer.json"
        )
    return tokenizer


def _hf_settings(hf_tokenizer: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key in SPECIAL_KEYS:
        value = getattr(hf_tokenizer, key, None)
        if value is not None:
            settings[key] = str(value)
    template = getattr(hf_tokenizer, "chat_template", None)
    if isinstance(template, str):
        settings["chat_template"] = template
    return settings


def load_bytelevel_base(base: BaseTokenizer) -> ByteLevelBase:
    """The base as a ``tokenizers.Tokenizer`` plus its special tokens and chat template.

    ``base.path`` is a ``tokenizer.json`` (its folder's ``tokenizer_config.json`` is read when present) or a
    GGUF file, whose tokenizer transformers rebuilds. The tokenizer is taken from the Hugging Face wrapper,
    so its post-processor adds BOS/EOS exactly as ``AutoTokenizer`` does for the base. Reading a GGUF file
    takes seconds, so the result is remembered per file (each call gets its own ``Tokenizer``).
    """
    path = Path(base.path)
    if not path.is_file():
        raise VocabExtendError(f"base tokenizer file {path} does not exist: check --base")
    stat = path.stat()
    text, hf_config = _read_base(str(path), stat.st_mtime_ns, stat.st_size, base.name)
    return ByteLevelBase(Tokenizer.from_str(text), dict(hf_config))


@lru_cache(maxsize=4)
def _read_base(path_text: str, mtime_ns: int, size: int, name: str) -> tuple[str, dict[str, Any]]:
    import transformers

    path = Path(path_text)
    try:
        if path.suffix == ".gguf":
            hf = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        elif path.name == "tokenizer.json":
            hf = transformers.PreTrainedTokenizerFast.from_pretrained(str(path.parent))
        else:
            hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path))
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise VocabExtendError(
            f"could not read the tokenizer of {name} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "give a tokenizer.json, a folder holding one, or a GGUF file transformers can read"
        ) from None
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise VocabExtendError(f"{name} did not give a fast (tokenizers) tokenizer; give its tokenizer.json")
    tokenizer = _checked(Tokenizer.from_str(backend.to_str()), name)
    return tokenizer.to_str(), _hf_settings(hf)


def splits_digits(tokenizer: Tokenizer) -> bool:
    """Whether the base keeps numbers in short digit groups (so new tokens must not join digits).

    True for a ``Digits`` pre-tokenizer, a ``\\p{N}{1,3}`` style split, or a vocabulary without any token
    holding two digits (SmolLM2's GGUF tokenizer, which splits digits by never merging them).
    """
    pre = json.dumps(json.loads(tokenizer.to_str()).get("pre_tokenizer"))
    if '"Digits"' in pre or re.search(r"p\{N\}\{1,\d\}", pre):
        return True
    for token in tokenizer.get_vocab():
        try:
            parts = _split_utf8(token_bytes(token))
        except KeyError:  # an added token outside the byte alphabet
            continue
        if parts and sum(unicodedata.category(ch) == "Nd" for ch in parts[0]) >= 2:
            return False
    return True


# ----------------------------------------------------------------------------------- training the new model


def _texts(texts: Iterable[str] | Callable[[], Iterable[str]]) -> Iterable[str]:
    return texts() if callable(texts) else texts


def _progress(texts: Iterable[str], show: bool) -> Iterator[str]:
    with tqdm(desc="reading corpus", unit=" docs", mininterval=1.0, disable=not show) as bar:
        for text in texts:
            bar.update(1)
            yield text


def train_new_model(base: Tokenizer, texts: Iterable[str], config: ByteLevelConfig) -> Tokenizer:
    """A byte-level BPE trained on ``texts`` with the base's normaliser and pre-tokenizer."""
    from tokenizers import models, pre_tokenizers, trainers

    if config.vocab_size <= 256:
        raise VocabExtendError(
            f"--vocab-size {config.vocab_size} leaves no room beyond the 256 byte symbols: raise it (e.g. 16000)"
        )
    model = Tokenizer(models.BPE())
    model.normalizer = base.normalizer
    model.pre_tokenizer = base.pre_tokenizer
    model.decoder = base.decoder
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        max_token_length=config.max_token_length,
    )
    model.train_from_iterator(_progress(texts, config.show_progress), trainer)
    return model


def _sentencepiece_candidates(texts: Iterable[str], config: ByteLevelConfig) -> list[str]:
    """New-model tokens from a SentencePiece BPE instead (for comparison): pieces in score order."""
    import io
    import os

    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2

    buffer = io.BytesIO()
    spm.set_random_generator_seed(config.seed)
    lines = (line for text in _progress(texts, config.show_progress) for line in text.splitlines() if line.strip())
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=lines,
            model_writer=buffer,
            model_type="bpe",
            vocab_size=config.vocab_size,
            character_coverage=0.9995,
            split_digits=True,
            add_dummy_prefix=False,
            normalization_rule_name="identity",
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise VocabExtendError(f"SentencePiece training failed: {str(exc).strip().splitlines()[-1]}") from None
    proto = sp_pb2.ModelProto()
    proto.ParseFromString(buffer.getvalue())
    normal = sp_pb2.ModelProto.SentencePiece.NORMAL
    return [to_byte_level(p.piece.replace("\u2581", " ")) for p in proto.pieces if p.type == normal]


def _merge_pairs(tokenizer: Tokenizer) -> list[tuple[str, str]]:
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges]  # type: ignore[misc]


def _new_model_candidates(model: Tokenizer) -> list[str]:
    """The tokens a trained BPE made, in the order its merges made them."""
    return [a + b for a, b in _merge_pairs(model)]


# ------------------------------------------------------------------------------------- deriving the merges


def bpe_segment(word: str, ranks: Mapping[tuple[str, str], int]) -> list[str]:
    """Byte-level BPE of one pre-token: repeatedly merge the lowest-ranked adjacent pair (leftmost on ties).

    >>> bpe_segment("abc", {("b", "c"): 0, ("a", "bc"): 1, ("a", "b"): 2})
    ['abc']
    """
    symbols = list(word)
    while len(symbols) > 1:
        best_rank, best_i = None, -1
        for i in range(len(symbols) - 1):
            rank = ranks.get((symbols[i], symbols[i + 1]))
            if rank is not None and (best_rank is None or rank < best_rank):
                best_rank, best_i = rank, i
        if best_rank is None:
            break
        symbols[best_i : best_i + 2] = [symbols[best_i] + symbols[best_i + 1]]
    return symbols


@dataclass
class _Derivation:
    base_vocab: dict[str, int]
    ranks: dict[tuple[str, str], int]
    scripts: ScriptSet
    split_digits: bool
    max_examples: int
    added: list[str] = field(default_factory=list)
    merges: list[tuple[str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    intermediates: int = 0

    def __post_init__(self) -> None:
        self.known = set(self.base_vocab)

    def skip(self, reason: str, token: str) -> None:
        self.skipped[reason] += 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < self.max_examples:
            bucket.append(token_text(token))

    def add(self, token: str, left: str, right: str) -> None:
        self.ranks[(left, right)] = len(self.ranks)
        self.merges.append((left, right))
        self.added.append(token)
        self.known.add(token)

    def _intermediate(self, pieces: list[str]) -> bool:
        """Add the first adjacent pair of ``pieces`` that is admissible, new and live on its own."""
        for left, right in zip(pieces, pieces[1:]):
            joined = left + right
            if joined in self.known or admissible_reason(joined, self.scripts, split_digits=self.split_digits):
                continue
            if bpe_segment(joined, self.ranks) == [left, right]:
                self.add(joined, left, right)
                self.intermediates += 1
                return True
        return False

    def offer(self, token: str) -> None:
        if token in self.base_vocab:
            self.skip("already_in_base", token)
            return
        if token in self.known:  # already added as an intermediate step
            return
        reason = admissible_reason(token, self.scripts, split_digits=self.split_digits)
        if reason is None and not set(token) <= self.known:
            reason = "byte_not_in_base"  # the base cannot encode one of its bytes (e.g. SmolLM2 and 0xF1)
        if reason:
            self.skip(reason, token)
            return
        pieces = bpe_segment(token, self.ranks)
        while len(pieces) > 2:
            if not self._intermediate(pieces):
                self.skip("unreachable", token)
                return
            pieces = bpe_segment(token, self.ranks)
        self.add(token, pieces[0], pieces[1])


def derive_merges(
    base: Tokenizer,
    candidates: Iterable[str],
    scripts: ScriptSet,
    *,
    split_digits: bool,
    max_examples: int = 8,
    show_progress: bool = False,
) -> _Derivation:
    """New tokens and the merges that make them from the base's own segmentation (module docstring, 2-4)."""
    ranks = {pair: rank for rank, pair in enumerate(_merge_pairs(base))}
    vocab = json.loads(base.to_str())["model"]["vocab"]
    derivation = _Derivation(vocab, ranks, scripts, split_digits, max_examples)
    for token in tqdm(list(candidates), desc="deriving merges", unit=" tokens", disable=not show_progress):
        derivation.offer(token)
    return derivation


# ---------------------------------------------------------------------------------------------- the writer


def first_new_id(base: Tokenizer) -> int:
    """One past the largest base id, added and special tokens included."""
    return max(base.get_vocab(with_added_tokens=True).values()) + 1


def build_extended(base: Tokenizer, added: list[str], merges: list[tuple[str, str]]) -> Tokenizer:
    """The base tokenizer with ``added`` appended after every base id and ``merges`` after every base merge."""
    data = json.loads(base.to_str())
    start = first_new_id(base)
    vocab = data["model"]["vocab"]
    # Added tokens beyond the model vocabulary (Llama-3's specials) get their ids from its size when loaded;
    # listing them in the vocabulary pins their ids once new tokens follow them.
    for special in data.get("added_tokens", []):
        vocab.setdefault(special["content"], special["id"])
    for offset, token in enumerate(added):
        vocab[token] = start + offset
    string_merges = bool(data["model"]["merges"]) and isinstance(data["model"]["merges"][0], str)
    data["model"]["merges"].extend(f"{a} {b}" if string_merges else [a, b] for a, b in merges)
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))


def _write_json(path: Path, data: object) -> None:
    from .export import _write_json as write

    write(path, data)


def write_hf_files(tokenizer: Tokenizer, hf_config: Mapping[str, Any], output_dir: Path) -> None:
    """``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json`` for ``AutoTokenizer``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(output_dir / "tokenizer.json"))
    special_map = {key: hf_config[key] for key in SPECIAL_KEYS if hf_config.get(key) is not None}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,
        "model_max_length": hf_config.get("model_max_length", 1_000_000_000_000_000_019_884_624_838_656),
        **special_map,
    }
    if hf_config.get("chat_template"):
        config["chat_template"] = hf_config["chat_template"]
    _write_json(output_dir / "tokenizer_config.json", config)
    _write_json(output_dir / "special_tokens_map.json", special_map)


def extend_bytelevel(
    base: BaseTokenizer,
    texts: Iterable[str] | Callable[[], Iterable[str]],
    scripts: ScriptSet,
    config: ByteLevelConfig,
    output_dir: Path,
) -> MergeOutcome:
    """Train a new-language BPE on ``texts`` and write the extended tokenizer into ``output_dir``.

    Writes ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json`` and the new-language
    model (``new_language_tokenizer.json``). Example (SmolLM2, 16k Japanese tokens): ids 0..49151 and the
    48,900 base merges are unchanged; about 15k tokens are appended from id 49152.
    """
    if config.trainer not in ("tokenizers", "sentencepiece"):
        raise VocabExtendError(f"trainer {config.trainer!r} is not supported: use tokenizers or sentencepiece")
    loaded = load_bytelevel_base(base)
    tokenizer = loaded.tokenizer
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if config.trainer == "tokenizers":
        new_model = train_new_model(tokenizer, _texts(texts), config)
        candidates = _new_model_candidates(new_model)
        new_model.save(str(output_dir / NEW_MODEL_FILE))
    else:
        candidates = _sentencepiece_candidates(_texts(texts), config)
        _write_json(output_dir / NEW_MODEL_FILE, {"trainer": "sentencepiece", "tokens": candidates})
    if not candidates:
        raise VocabExtendError(
            "the new-language model learned no merges: the corpus is empty or too small for "
            f"--vocab-size {config.vocab_size}; add text"
        )
    digits = splits_digits(tokenizer)
    derivation = derive_merges(
        tokenizer,
        candidates,
        scripts,
        split_digits=digits,
        max_examples=config.max_examples,
        show_progress=config.show_progress,
    )
    if not derivation.added:
        raise VocabExtendError(
            f"the new model has no tokens with {scripts.name} characters to add: check --lang and the corpus"
        )
    extended = build_extended(tokenizer, derivation.added, derivation.merges)
    write_hf_files(extended, loaded.hf_config, output_dir)
    start = first_new_id(tokenizer)
    return MergeOutcome(
        base_vocab_size=start,
        vocab_size=start + len(derivation.added),
        added=derivation.added,
        skipped=derivation.skipped,
        examples=derivation.examples,
        base_merges=len(derivation.ranks) - len(derivation.merges),
        intermediates=derivation.intermediates,
        split_digits=digits,
        trainer=config.trainer,
    )


# ------------------------------------------------------------------------------------------- verification


def _as_tokenizer(tokenizer: Any) -> Tokenizer:
    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise VocabExtendError("the base for the byte-level checks must be a fast (tokenizers) tokenizer")
    return Tokenizer.from_str(backend.to_str())


def bytelevel_checks(
    ext_dir: str | Path,
    base_tok: Any,
    texts_by_corpus: Mapping[str, Iterable[str]],
    scripts: ScriptSet | None = None,
) -> dict[str, dict[str, object]]:
    """Check an extended byte-level folder against its base on real text; same shape as :mod:`verify`.

    ``base_tok`` is the base as a ``tokenizers.Tokenizer`` or a Hugging Face fast tokenizer; ``scripts``
    defaults to the language named in the folder's ``vocab_extend.json``. Checks: ``base_ids_unchanged``
    (every base token and merge), ``base_language_unchanged`` (lines without a new-script character),
    ``digits_split``, ``no_dead_pieces`` (every added token is made by a new merge, and encoding its own
    bytes, or its text when it is whole characters, gives that token), ``hf_matches_reference``
    (``AutoTokenizer`` ids equal ``tokenizers`` ids, special tokens included) and ``roundtrip``.
    """
    from .models import load_tokenizer
    from .verify import Check

    ext_dir = Path(ext_dir)
    if scripts is None:
        from .metadata import read_metadata
        from .scripts import get_language

        scripts = get_language(read_metadata(ext_dir).lang)
    base = _as_tokenizer(base_tok)
    ext = Tokenizer.from_file(str(ext_dir / "tokenizer.json"))
    names = ("base_ids_unchanged", "base_language_unchanged", "digits_split", "no_dead_pieces",
             "hf_matches_reference", "roundtrip")
    checks = {name: Check() for name in names}

    ext_vocab = ext.get_vocab(with_added_tokens=True)
    for token, i in sorted(base.get_vocab(with_added_tokens=True).items(), key=lambda item: item[1]):
        checks["base_ids_unchanged"].record(ext_vocab.get(token) == i, f"id {i}: {token_text(token)!r}")
    base_merges, ext_merges = _merge_pairs(base), _merge_pairs(ext)
    for rank, pair in enumerate(base_merges):
        ok = rank < len(ext_merges) and ext_merges[rank] == pair
        checks["base_ids_unchanged"].record(ok, f"merge {rank}: {pair!r}")

    start = first_new_id(base)
    added = [t for t, i in sorted(ext_vocab.items(), key=lambda item: item[1]) if i >= start]
    made = {a + b for a, b in ext_merges[len(base_merges):]}
    digits = splits_digits(base)
    for token in added:
        ok = admissible_reason(token, scripts, split_digits=digits) != "digits"
        checks["digits_split"].record(ok, token_text(token))
        alive = token in made and [t.value for t in ext.model.tokenize(token)] == [token]
        surface = whole_text(token)
        if alive and surface is not None:
            alive = ext.encode(surface, add_special_tokens=False).ids == [ext_vocab[token]]
        checks["no_dead_pieces"].record(alive, token_text(token))

    hf = load_tokenizer(str(ext_dir))
    for lines in texts_by_corpus.values():
        lines = list(lines)
        ours = ext.encode_batch(lines)
        theirs = base.encode_batch(lines)
        hf_ids = hf(lines, add_special_tokens=True)["input_ids"]
        plain = ext.encode_batch(lines, add_special_tokens=False)
        base_plain = base.encode_batch(lines, add_special_tokens=False)
        for line, enc, base_enc, hf_line, p, bp in zip(lines, ours, theirs, hf_ids, plain, base_plain):
            if not scripts.contains(line):
                checks["base_language_unchanged"].record(enc.ids == base_enc.ids, line)
            checks["hf_matches_reference"].record(hf_line == enc.ids, line)
            # A base normaliser (NFC in Qwen) may change text; then the base's own round trip is the target.
            expected = line if base.decode(bp.ids) == line else base.decode(bp.ids)
            ok = hf.decode(hf_line, skip_special_tokens=True) == expected and ext.decode(p.ids) == expected
            checks["roundtrip"].record(ok, line)
    return {name: check.as_dict() for name, check in checks.items()}


# ------------------------------------------------------------------------------------ reading a folder back


def cut_to_base(extended: Tokenizer, base_vocab_size: int) -> Tokenizer:
    """The base tokenizer inside an extended one: ids below ``base_vocab_size`` and the merges making them.

    Every added merge makes an added token (and no base merge does), so dropping the merges whose result is
    gone leaves exactly the base merge list.
    """
    data = json.loads(extended.to_str())
    vocab = {t: i for t, i in data["model"]["vocab"].items() if i < base_vocab_size}
    data["added_tokens"] = [t for t in data.get("added_tokens", []) if t["id"] < base_vocab_size]
    # Special tokens pinned in the vocabulary by build_extended go back to following it (Llama-3 layout).
    specials = {t["content"] for t in data["added_tokens"]}
    last_plain = max((i for t, i in vocab.items() if t not in specials), default=-1)
    data["model"]["vocab"] = {t: i for t, i in vocab.items() if t not in specials or i < last_plain}
    pairs = _merge_pairs(extended)
    merges = data["model"]["merges"]
    data["model"]["merges"] = [m for m, (a, b) in zip(merges, pairs) if a + b in vocab]
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))


def load_base_tokenizer(folder: str | Path, meta: Any):  # -> transformers.PreTrainedTokenizerFast
    """The base tokenizer of an extended byte-level folder as a Hugging Face tokenizer, offline.

    Rebuilt from the folder's ``tokenizer.json`` cut to ``meta.base_vocab_size`` ids, with the folder's
    special tokens and chat template; no network or original file is needed.
    """
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    extended = Tokenizer.from_file(str(folder / "tokenizer.json"))
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    settings = {k: config[k] for k in (*SPECIAL_KEYS, "chat_template") if config.get(k) is not None}
    return PreTrainedTokenizerFast(
        tokenizer_object=cut_to_base(extended, meta.base_vocab_size),
        clean_up_tokenization_spaces=False,
        **settings,
    )
