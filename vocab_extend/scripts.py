"""Unicode script sets of the languages we extend to.

The merge only admits pieces that contain at least one character of the new language's scripts, which is
what keeps text without such characters tokenized exactly as before.

>>> JAPANESE.contains("東京")
True
>>> JAPANESE.contains("Tokyo 2007")
False
>>> detect_language(["今日は晴れです。", "カレーを食べた"]).name
'ja'
"""

from __future__ import annotations

from collections import Counter
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable

from .errors import VocabExtendError

# (first, last) code points, inclusive.
_HAN = [
    (0x3400, 0x4DBF),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x3FFFF),  # Extensions B onwards, compatibility supplement
    (0x2E80, 0x2FDF),  # CJK Radicals Supplement, Kangxi Radicals
    (0x3005, 0x3007),  # 々 〆 〇
]
_CJK_PUNCT = [
    (0x3000, 0x303F),  # CJK Symbols and Punctuation: 、。「」『』【】〜
    (0xFF00, 0xFFEF),  # Halfwidth and Fullwidth Forms: （）！？ｱ
    (0xFE30, 0xFE4F),  # CJK Compatibility Forms
]
_KANA = [
    (0x3040, 0x309F),  # Hiragana
    (0x30A0, 0x30FF),  # Katakana (includes ー and ・)
    (0x31F0, 0x31FF),  # Katakana Phonetic Extensions
    (0x1B000, 0x1B16F),  # Kana Supplement / Extended
]
_HANGUL = [
    (0xAC00, 0xD7AF),  # Hangul Syllables
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x3130, 0x318F),  # Hangul Compatibility Jamo
    (0xA960, 0xA97F),  # Hangul Jamo Extended-A
    (0xD7B0, 0xD7FF),  # Hangul Jamo Extended-B
]
_BOPOMOFO = [(0x3100, 0x312F), (0x31A0, 0x31BF)]


@dataclass(frozen=True, eq=False)
class ScriptSet:
    """A language and the code-point ranges of its scripts."""

    name: str
    ranges: tuple[tuple[int, int], ...]

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        return re.compile("[" + "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in self.ranges) + "]")

    def is_script_char(self, ch: str) -> bool:
        return self._pattern.fullmatch(ch) is not None

    def contains(self, text: str) -> bool:
        """True when ``text`` has at least one character of these scripts."""
        return self._pattern.search(text) is not None


JAPANESE = ScriptSet("ja", tuple(_HAN + _KANA + _CJK_PUNCT))
CHINESE = ScriptSet("zh", tuple(_HAN + _BOPOMOFO + _CJK_PUNCT))
KOREAN = ScriptSet("ko", tuple(_HANGUL + _HAN + _CJK_PUNCT))
LANGUAGES: dict[str, ScriptSet] = {s.name: s for s in (JAPANESE, CHINESE, KOREAN)}


def detect_language(texts: Iterable[str], max_chars: int = 200_000) -> ScriptSet:
    """Guess ja/zh/ko from a sample of text: kana means Japanese, Hangul Korean, Han alone Chinese."""
    counts: Counter[str] = Counter()
    seen = 0
    for text in texts:
        for ch in text:
            cp = ord(ch)
            if any(lo <= cp <= hi for lo, hi in _KANA):
                counts["kana"] += 1
            elif any(lo <= cp <= hi for lo, hi in _HANGUL):
                counts["hangul"] += 1
            elif any(lo <= cp <= hi for lo, hi in _HAN):
                counts["han"] += 1
        seen += len(text)
        if seen >= max_chars:
            break
    if counts["hangul"] > max(counts["kana"], counts["han"] * 0.2):
        return KOREAN
    if counts["kana"] > 0.05 * (counts["kana"] + counts["han"]):
        return JAPANESE
    if counts["han"]:
        return CHINESE
    raise VocabExtendError(
        "the corpus has no Japanese, Chinese or Korean characters; check --corpus, or name the language "
        "with --lang"
    )


def get_language(name: str) -> ScriptSet:
    try:
        return LANGUAGES[name]
    except KeyError:
        raise VocabExtendError(
            f"unknown language {name!r}: choose one of {', '.join(sorted(LANGUAGES))} or 'auto'"
        ) from None
