"""The checks every merge ends with, written once for both families.

One failure fails the run and nothing is written. Each check is made by something other than the code that
built the merge — the written files read back, the family's reference encoder (SentencePiece itself, or
``tokenizers`` reading the written ``tokenizer.json``), ``AutoTokenizer`` — and reports
``{"passed": bool, "checked": int, "failed": int, "examples": [...]}``:

- ``base_ids_unchanged``: every base entry (SentencePiece: piece and type per id, and the score of every
  piece without a character of the new scripts; byte-level: every token id and every merge) is the same in
  the written tokenizer;
- ``base_language_unchanged``: lines with no character of the new scripts get the base's ids;
- ``digits_split``: when the base splits digits, no piece of the written vocabulary from the first new id on
  joins a digit to anything (scanned in the file, not taken from the merge);
- ``no_dead_pieces``: the written tokenizer's own BPE model turns each added piece's string into that one
  piece, and a piece with a text of its own (``▁東京`` ← ``東京``) is what encoding that text alone gives;
- ``hf_matches_reference``: ``AutoTokenizer.from_pretrained(folder)`` ids equal the reference's, BOS/EOS
  included, with text that spells a special token read as text on both sides;
- ``roundtrip``: ``decode(encode(x))`` with both tokenizers gives what the base's own round trip gives
  (``x`` itself, or ``x`` normalised by a base with an NFKC/NFC normaliser);
- ``base_settings_kept``: every setting of the base's tokenizer files is in the written ones (see
  :mod:`vocab_extend.settings`), special tokens keep their ids, and the chat template gives the base's ids
  on a conversation without new-language text.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from tokenizers import Tokenizer
from tqdm.auto import tqdm

from ..errors import VocabExtendError
from ..families.interface import RANK_KEY, AnyFamily, Base, Reference
from ..scripts import ScriptSet
from ..settings import (CHAT_TEMPLATE_FILE, REPLACED_KEYS, SPECIAL_KEYS, SPECIAL_MAP_FILE, read_base_settings,
                        token_text, tokenizer_config)
from .folder import TokenizerFolder

MAX_EXAMPLES = 3
NAMES = ("base_ids_unchanged", "base_language_unchanged", "digits_split", "no_dead_pieces",
         "hf_matches_reference", "roundtrip", "base_settings_kept")
# Base-language lines every verification checks, whatever the eval corpora hold: prose, digits, code and
# the punctuation runs that one-off merges let in.
BASE_LANGUAGE_PROBES = (
    "The quick brown fox jumps over the lazy dog.",
    "In 2007, 3.14159 and 1,234,567 were typed as digits ... and ...... or —— or ”; too.",
    "  leading spaces, trailing spaces  ",
    "    def f(x):\n        return x ** 2  # indented code",
    "Ünïcödé façade — naïve café ½ № ∑ €12.50, EU, ISS, kW, JR",
    "tabs\tand\nnewlines, <s> and </s> as text",
)
# A conversation without new-language text, for the chat-template comparison.
CHAT_PROBE = (
    {"role": "user", "content": "What is 2 + 2? Answer in one line."},
    {"role": "assistant", "content": "2 + 2 = 4."},
    {"role": "user", "content": "And 10 * 12?"},
)


@dataclass
class Check:
    checked: int = 0
    failed: int = 0
    examples: list[str] = field(default_factory=list)

    def record(self, ok: bool, example: str = "") -> None:
        self.checked += 1
        if not ok:
            self.failed += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(example[:200])

    def as_dict(self) -> dict[str, object]:
        return {"passed": self.failed == 0, **asdict(self)}


def joins_digit(data: bytes) -> bool:
    """Whether a piece's bytes hold a decimal digit together with anything else (a space, another
    character, part of a character).

    >>> joins_digit("3".encode()), joins_digit(" 3".encode()), joins_digit("3年".encode()), joins_digit("年".encode())
    (False, True, True, False)
    """
    text = data.decode("utf-8", errors="ignore")
    if not any(unicodedata.category(ch) == "Nd" for ch in text):
        return False
    try:
        return len(data.decode("utf-8")) != 1
    except UnicodeDecodeError:
        return True


# Per corpus, the tokens of each line: (base, extended).
Counts = dict[str, tuple[list[int], list[int]]]


def _added_pieces(written: Tokenizer, first_new_id: int) -> list[tuple[int, str]]:
    vocab = written.get_vocab(with_added_tokens=True)
    return sorted((i, piece) for piece, i in vocab.items() if i >= first_new_id)


def _check_vocabulary(checks: dict[str, Check], family: AnyFamily, base: Base, written: Tokenizer,
                      base_ref: Reference, ext_ref: Reference, scripts: ScriptSet) -> None:
    ext_entries = ext_ref.entries()
    for key, value in base_ref.entries().items():
        reranked = isinstance(key, tuple) and key[0] == RANK_KEY and scripts.contains(str(key[1]))
        checks["base_ids_unchanged"].record(reranked or ext_entries.get(key) == value, f"{key!r}: {value!r}")
    plain = Tokenizer.from_str(written.to_str())
    plain.encode_special_tokens = True
    for token_id, piece in _added_pieces(written, base.first_new_id):
        data = family.piece_bytes(piece)
        ok = not base.splits_digits or data is None or not joins_digit(data)
        checks["digits_split"].record(ok, piece)
        alive = [t.value for t in written.model.tokenize(piece)] == [piece]
        surface = family.surface(base, piece)
        if alive and surface is not None:
            alive = plain.encode(surface, add_special_tokens=False).ids == [token_id]
        checks["no_dead_pieces"].record(alive, piece)


def _check_lines(checks: dict[str, Check], hf: Any, base_ref: Reference, ext_ref: Reference, lines: list[str],
                 scripts: ScriptSet) -> tuple[list[int], list[int]]:
    """Check ``lines``; return their token counts (base, extended) without BOS/EOS."""
    (ours, plain), (theirs, base_plain) = ext_ref.encode_both(lines), base_ref.encode_both(lines)
    hf_ids = hf(lines, add_special_tokens=True, return_attention_mask=False,
                split_special_tokens=True)["input_ids"]
    hf_text = hf.batch_decode(hf_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    for i, line in enumerate(lines):
        if not scripts.contains(line):
            checks["base_language_unchanged"].record(ours[i] == theirs[i], line)
        checks["hf_matches_reference"].record(hf_ids[i] == ours[i], line)
        base_text = base_ref.decode(base_plain[i])
        expected = line if base_text == line else base_text  # a normalising base: its own round trip
        checks["roundtrip"].record(hf_text[i] == expected and ext_ref.decode(plain[i]) == expected, line)
    return [len(ids) for ids in base_plain], [len(ids) for ids in plain]


CHECK_BATCH = 1_000  # lines checked at once (the progress bar moves by this many)


def _check_text(checks: dict[str, Check], hf: Any, base_ref: Reference, ext_ref: Reference,
                texts: Mapping[str, Sequence[str]], scripts: ScriptSet, progress: bool) -> Counts:
    counts: Counts = {}
    total = sum(len(lines) for lines in texts.values())
    with tqdm(total=total, desc="verifying", unit=" lines", mininterval=1.0, disable=not progress) as bar:
        for name, lines in texts.items():
            lines = list(lines)
            counts[name] = ([], [])
            for start in range(0, len(lines), CHECK_BATCH):
                base_counts, extended_counts = _check_lines(checks, hf, base_ref, ext_ref,
                                                            lines[start:start + CHECK_BATCH], scripts)
                counts[name][0].extend(base_counts)
                counts[name][1].extend(extended_counts)
                bar.update(len(base_counts))
    return counts


def _chat_ids(tokenizer: Any) -> object:
    try:
        return tokenizer.apply_chat_template(list(CHAT_PROBE), tokenize=True, return_dict=False)
    except Exception as exc:  # a template may refuse a conversation; then both must refuse it alike
        return f"raises {type(exc).__name__}"


def _check_settings(check: Check, family: AnyFamily, base: Base, folder: Path, hf: Any) -> None:
    written = read_base_settings(folder)
    expected = tokenizer_config(base.settings.config, family.derived_settings(base))
    for key, value in sorted(expected.items()):
        ok = key in (written.config or {}) and json.dumps(written.config[key]) == json.dumps(value)
        if base.settings.config is not None and key not in REPLACED_KEYS:
            ok = ok and json.dumps(base.settings.config.get(key)) == json.dumps(value)
        check.record(ok, f"{key} = {json.dumps(value)[:80]}")
    for name in (SPECIAL_MAP_FILE, CHAT_TEMPLATE_FILE):
        if name in base.settings.files:
            check.record(written.files.get(name) == base.settings.files[name], name)
    base_hf = family.base_hf(base)
    for key in SPECIAL_KEYS:
        text = token_text(expected.get(key))
        if text is not None:
            check.record(hf.convert_tokens_to_ids(text) == base_hf.convert_tokens_to_ids(text), f"{key} {text}")
    if getattr(base_hf, "chat_template", None) or getattr(hf, "chat_template", None):
        check.record(_chat_ids(hf) == _chat_ids(base_hf), "chat template on an English conversation")


def verify_folder(folder: Path, family: AnyFamily, base: Base, texts: Mapping[str, Sequence[str]],
                  scripts: ScriptSet, *, progress: bool = False) -> tuple[dict[str, dict[str, object]], Counts]:
    """Run every check on ``folder`` (which holds the written tokenizer files), encoding the lines
    :data:`CHECK_BATCH` at a time (``progress``: with a bar of the lines checked, their rate and the ETA).

    Returns the checks and ``{corpus: (base tokens, extended tokens)}`` per line, counted without BOS/EOS.
    """
    checks = {name: Check() for name in NAMES}
    base_ref, ext_ref = family.references(base, folder)
    written = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    _check_vocabulary(checks, family, base, written, base_ref, ext_ref, scripts)
    hf = TokenizerFolder(Path(folder), family).load()  # the written folder, as Hugging Face loads it
    counts = _check_text(checks, hf, base_ref, ext_ref, texts, scripts, progress)
    _check_settings(checks["base_settings_kept"], family, base, Path(folder), hf)
    return {name: check.as_dict() for name, check in checks.items()}, counts


def raise_on_failure(checks: Mapping[str, Mapping[str, object]]) -> None:
    """Raise one sentence naming the first failed check, its count and an example."""
    for name, result in checks.items():
        if not result["passed"]:
            example = (result["examples"] or [""])[0]  # type: ignore[index]
            raise VocabExtendError(
                f"verification failed: {name} failed on {result['failed']} of {result['checked']} "
                f"(for example {example!r}); nothing was written — please report this with your inputs"
            )
