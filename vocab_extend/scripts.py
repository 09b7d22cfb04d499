"""The languages we extend to, as data: each names the Unicode scripts whose characters make a piece its own.

The merge only admits pieces that contain at least one of the language's *own characters*, which is what
keeps text without such characters tokenized exactly as before. A language is one row of :data:`TABLE`: an
ISO 639 code, a name and its Unicode scripts (the Script property, as the ``regex`` module knows it). A
character belongs to a language's scripts when its Script is one of them, or when its Script_Extensions
name one of them and not Latin (Devanagari's danda ``।`` is Common but used only by Indic scripts; the
middle dot ``·``, which English text uses too, is not Greek's). Japanese, Chinese and Korean keep their
hand-made tables (CJK punctuation and fullwidth forms included).

Languages written in the base language's own script (Latin: Vietnamese, Indonesian, Turkish ...) cannot be
told from English by script. Their own characters are the letters of their script that the base-language
reference text never uses (:meth:`Language.script_set` with ``exclude``): for Vietnamese, ``ơ``, ``ư``,
``đ`` and the tone-marked vowels; English lines, which hold none of them, tokenize as before. The combining
accents (Script Inherited) are theirs too, so decomposed (NFD) text, whose ``ế`` is ``e`` + U+0302 +
U+0301, still has letters of its own; the base's normaliser decides whether composed and decomposed
spellings meet (Mistral's and SmolLM2's keep them apart).

>>> JAPANESE.contains("東京")
True
>>> JAPANESE.contains("Tokyo 2007")
False
>>> detect_language(["今日は晴れです。", "カレーを食べた"]).name
'ja'
>>> get_language("th").contains("ภาษาไทย"), get_language("hi").contains("।")
(True, True)
>>> get_language("el").contains("a·b")
False
>>> vi = get_language("vi")
>>> vi.contains("the new model"), vi.contains("Tiếng Việt"), vi.contains("Ðà Nẵng")
(False, True, True)
>>> detect_language(["Привет, как дела? Это русский текст."])
Traceback (most recent call last):
...
vocab_extend.errors.VocabExtendError: the corpus is written in the Cyrillic script, which several languages share (ru, uk, bg, kk): name the language with --lang
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Iterable

import regex

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
# A Latin-script language's own characters never include these (the base language's alphabet and ASCII);
# the merge removes every other character its base-language reference text uses as well.
BASE_LANGUAGE_CHARS = "".join(chr(c) for c in range(128))
_CJK_SCRIPTS = frozenset({"Han", "Hiragana", "Katakana", "Hangul", "Bopomofo"})
# Below this share of the corpus's letters, --lang's scripts are not what the corpus is written in.
MIN_LANG_SHARE = 0.2
# A script other than Latin under this share of the letters is quotes and names in Latin-script text.
MIN_SCRIPT_SHARE = 0.1


@dataclass(frozen=True, eq=False)
class ScriptSet:
    """A language and the code-point ranges of its own characters (sorted, non-overlapping for generated
    sets; the hand-made CJK tables may touch)."""

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

    def count(self, text: str) -> int:
        """How many characters of ``text`` are this language's own."""
        return len(self._pattern.findall(text))


@dataclass(frozen=True)
class Language:
    """One row of the table: ``code`` (ISO 639-1), ``name``, ``scripts`` (Unicode Script values).

    ``shares_base_script``: written in Latin, the script of the base language, so its own characters are
    the letters no base-language reference text uses (see the module docstring).
    """

    code: str
    name: str
    scripts: tuple[str, ...]

    @property
    def shares_base_script(self) -> bool:
        return "Latin" in self.scripts

    def script_set(self, exclude: Iterable[str] = ()) -> ScriptSet:
        """The language's own characters as a :class:`ScriptSet`, less the characters in ``exclude``."""
        if self.code in _CJK_SETS and not exclude:
            return _CJK_SETS[self.code]
        scripts = self.scripts + (("Inherited",) if self.shares_base_script else ())  # NFD text's accents
        points = set().union(*(_script_points(s) for s in scripts))
        points.difference_update(ord(ch) for ch in exclude)
        return ScriptSet(self.code, _as_ranges(points))


# Adding a language is one row. Several languages sharing a script make detection ask for --lang.
TABLE: tuple[Language, ...] = (
    Language("ja", "Japanese", ("Han", "Hiragana", "Katakana")),
    Language("zh", "Chinese", ("Han", "Bopomofo")),
    Language("ko", "Korean", ("Hangul", "Han")),
    Language("th", "Thai", ("Thai",)),
    Language("lo", "Lao", ("Lao",)),
    Language("my", "Burmese", ("Myanmar",)),
    Language("km", "Khmer", ("Khmer",)),
    Language("hi", "Hindi", ("Devanagari",)),
    Language("mr", "Marathi", ("Devanagari",)),
    Language("ne", "Nepali", ("Devanagari",)),
    Language("bn", "Bengali", ("Bengali",)),
    Language("pa", "Punjabi", ("Gurmukhi",)),
    Language("gu", "Gujarati", ("Gujarati",)),
    Language("ta", "Tamil", ("Tamil",)),
    Language("te", "Telugu", ("Telugu",)),
    Language("kn", "Kannada", ("Kannada",)),
    Language("ml", "Malayalam", ("Malayalam",)),
    Language("si", "Sinhala", ("Sinhala",)),
    Language("ar", "Arabic", ("Arabic",)),
    Language("fa", "Persian", ("Arabic",)),
    Language("ur", "Urdu", ("Arabic",)),
    Language("he", "Hebrew", ("Hebrew",)),
    Language("el", "Greek", ("Greek",)),
    Language("ru", "Russian", ("Cyrillic",)),
    Language("uk", "Ukrainian", ("Cyrillic",)),
    Language("bg", "Bulgarian", ("Cyrillic",)),
    Language("kk", "Kazakh", ("Cyrillic",)),
    Language("ka", "Georgian", ("Georgian",)),
    Language("hy", "Armenian", ("Armenian",)),
    Language("am", "Amharic", ("Ethiopic",)),
    Language("vi", "Vietnamese", ("Latin",)),
    Language("id", "Indonesian", ("Latin",)),
    Language("tr", "Turkish", ("Latin",)),
    Language("de", "German", ("Latin",)),
    Language("pl", "Polish", ("Latin",)),
)
LANGUAGES: dict[str, Language] = {lang.code: lang for lang in TABLE}

JAPANESE = ScriptSet("ja", tuple(_HAN + _KANA + _CJK_PUNCT))
CHINESE = ScriptSet("zh", tuple(_HAN + _BOPOMOFO + _CJK_PUNCT))
KOREAN = ScriptSet("ko", tuple(_HANGUL + _HAN + _CJK_PUNCT))
_CJK_SETS = {s.name: s for s in (JAPANESE, CHINESE, KOREAN)}


@lru_cache(maxsize=None)
def _all_characters() -> str:
    return "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)


@lru_cache(maxsize=None)
def _script_points(script: str) -> frozenset[int]:
    """Code points whose Script is ``script``, or whose Script_Extensions name it and not Latin."""
    pattern = regex.compile(rf"[\p{{sc={script}}}[\p{{scx={script}}}--\p{{scx=Latin}}]]+", regex.V1)
    return frozenset(ord(ch) for run in pattern.findall(_all_characters()) for ch in run)


def _as_ranges(points: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Sorted code points as inclusive runs: ``{1, 2, 3, 7}`` → ``((1, 3), (7, 7))``."""
    ranges: list[list[int]] = []
    for point in sorted(points):
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1][1] = point
        else:
            ranges.append([point, point])
    return tuple((lo, hi) for lo, hi in ranges)


@lru_cache(maxsize=None)
def _script_pattern(script: str) -> regex.Pattern[str]:
    return regex.compile(rf"\p{{sc={script}}}")


def script_histogram(texts: Iterable[str], max_chars: int = 200_000) -> Counter[str]:
    """Letters (and marks) per Unicode script over the first ``max_chars`` characters of ``texts``, for the
    scripts some language of the table uses."""
    sample, seen = [], 0
    for text in texts:
        sample.append(text)
        seen += len(text)
        if seen >= max_chars:
            break
    joined = "\n".join(sample)
    scripts = sorted({s for lang in TABLE for s in lang.scripts})
    counts = Counter({s: len(_script_pattern(s).findall(joined)) for s in scripts})
    return +counts


def _detect_cjk(counts: Counter[str]) -> ScriptSet:
    """Kana means Japanese, Hangul Korean, Han alone Chinese."""
    kana = counts["Hiragana"] + counts["Katakana"]
    if counts["Hangul"] > max(kana, counts["Han"] * 0.2):
        return KOREAN
    if kana > 0.05 * (kana + counts["Han"]):
        return JAPANESE
    return CHINESE


def _claimants(script: str) -> list[str]:
    return [lang.code for lang in TABLE if script in lang.scripts and lang.code not in _CJK_SETS]


def detect_language(texts: Iterable[str], max_chars: int = 200_000) -> ScriptSet:
    """The language of a sample of text, from the script most of its letters are written in.

    Han, kana and Hangul decide between ja, zh and ko; a script that one language of the table uses names
    it; a script several share (Cyrillic, Arabic, Devanagari, Latin) asks for ``--lang``. Latin letters
    count only when no other script has :data:`MIN_SCRIPT_SHARE` of them (Japanese technical text full of
    English words is Japanese).
    """
    counts = script_histogram(texts, max_chars)
    total = sum(counts.values())
    cjk = sum(n for s, n in counts.items() if s in _CJK_SCRIPTS)
    others = Counter({s: n for s, n in counts.items() if s not in _CJK_SCRIPTS and s != "Latin"})
    top_other = max(others.values(), default=0)
    if cjk >= max(top_other, MIN_SCRIPT_SHARE * total) and cjk:
        return _detect_cjk(counts)
    if top_other and top_other >= MIN_SCRIPT_SHARE * total:
        script = others.most_common(1)[0][0]
    elif counts["Latin"]:
        script = "Latin"
    else:
        raise VocabExtendError(
            "the corpus has no letters of a script any known language uses "
            f"({', '.join(sorted(LANGUAGES))}); check --corpus, or name the language with --lang")
    claimants = _claimants(script)
    if len(claimants) == 1:
        return get_language(claimants[0])
    raise VocabExtendError(
        f"the corpus is written in the {script} script, which several languages share "
        f"({', '.join(claimants)}): name the language with --lang")


def check_language_matches(code: str, texts: Iterable[str], max_chars: int = 200_000) -> None:
    """Refuse ``--lang code`` when under :data:`MIN_LANG_SHARE` of the corpus's letters are in its scripts.

    >>> check_language_matches("th", ["Привет мир"])
    Traceback (most recent call last):
    ...
    vocab_extend.errors.VocabExtendError: --lang th (Thai) does not match the corpus: 0% of its letters are in the Thai script, most are Cyrillic; check --lang and --corpus
    """
    language = LANGUAGES[code]
    counts = script_histogram(texts, max_chars)
    total = sum(counts.values())
    if not total:
        return
    own = sum(counts[s] for s in language.scripts)
    if own / total < MIN_LANG_SHARE:
        top = counts.most_common(1)[0][0]
        raise VocabExtendError(
            f"--lang {code} ({language.name}) does not match the corpus: {own / total:.0%} of its letters are "
            f"in the {'/'.join(language.scripts)} script, most are {top}; check --lang and --corpus")


def get_language(name: str) -> ScriptSet:
    """The script set of the language with ISO 639 code ``name``; one sentence for an unknown code."""
    try:
        language = LANGUAGES[name]
    except KeyError:
        raise VocabExtendError(
            f"unknown language {name!r}: choose one of {', '.join(sorted(LANGUAGES))} or 'auto'"
        ) from None
    return language.script_set(exclude=BASE_LANGUAGE_CHARS if language.shares_base_script else ())
