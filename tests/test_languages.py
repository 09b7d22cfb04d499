"""The language table: every language's own characters, detection by script, and bad --lang values."""

from __future__ import annotations

import pytest

from vocab_extend.errors import VocabExtendError
from vocab_extend.scripts import (LANGUAGES, TABLE, check_language_matches, detect_language, get_language,
                                  script_histogram)

# One short sentence per language, written by hand (an independent oracle of what each script covers).
SAMPLES = {
    "ja": "今日は晴れです。", "zh": "这是一个中文句子。", "ko": "이것은 한국어 문장입니다.",
    "th": "ภาษาไทยเป็นภาษาราชการของประเทศไทย", "hi": "हिन्दी भारत की राजभाषा है।", "ta": "தமிழ் ஒரு மொழி",
    "ar": "اللغة العربية لغة سامية", "he": "עברית היא שפה שמית", "el": "Η ελληνική γλώσσα",
    "ru": "Русский язык", "vi": "Tiếng Việt là ngôn ngữ", "id": "Bahasa Indonesia adalah bahasa resmi",
}
ENGLISH = ["The quick brown fox jumps over the lazy dog 1234567890.", "a·b — naïve? (x) [y] {z} ~ @ # $ % ^ & *"]


def test_every_language_of_the_issue_is_in_the_table() -> None:
    assert set(SAMPLES) <= set(LANGUAGES)
    assert len({lang.code for lang in TABLE}) == len(TABLE)


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_own_characters_cover_the_language(code: str) -> None:
    scripts = get_language(code)
    if code == "id":  # Indonesian uses no letter that English lacks: nothing of it is its own
        assert not scripts.contains(SAMPLES[code])
    else:
        assert scripts.contains(SAMPLES[code])


@pytest.mark.parametrize("lang", TABLE, ids=lambda lang: lang.code)
def test_no_language_claims_ascii_or_shared_punctuation(lang) -> None:
    scripts = get_language(lang.code)
    for line in ENGLISH:
        for ch in line:
            if ch in "·—":  # Common punctuation English uses too
                assert not scripts.is_script_char(ch), (lang.code, ch)
            elif ord(ch) < 128:
                assert not scripts.is_script_char(ch), (lang.code, ch)


def test_script_extensions_bring_marks_used_only_by_the_script() -> None:
    assert get_language("hi").is_script_char("\u0964")  # । danda: Script=Common, used by Indic scripts
    assert get_language("ar").is_script_char("\u064b")  # fathatan: Script=Inherited, Arabic and Syriac
    assert not get_language("hi").is_script_char("\u0301")  # combining acute: Latin uses it


def test_latin_script_languages_exclude_what_the_base_uses() -> None:
    vi = LANGUAGES["vi"]
    assert vi.shares_base_script
    assert vi.script_set().is_script_char("a")  # the script alone would claim English letters
    own = get_language("vi")
    assert not own.contains("the new model") and own.contains("ơ")
    narrowed = vi.script_set(exclude=[chr(c) for c in range(128)] + ["é"])
    assert not narrowed.is_script_char("é") and narrowed.is_script_char("ế")


@pytest.mark.parametrize("code", ["ja", "zh", "ko", "th", "ta", "he", "el"])
def test_detection_names_a_script_one_language_uses(code: str) -> None:
    assert detect_language([SAMPLES[code]] * 3).name == code


def test_detection_of_mixed_script_text() -> None:
    # Japanese technical text full of English words is Japanese; English with a Thai name is not Thai
    assert detect_language(["PyTorchのtensorをGPUに転送するにはcuda()を呼び出します。"]).name == "ja"
    with pytest.raises(VocabExtendError, match="Latin script"):
        detect_language(["The restaurant ภาษา served a long and very good dinner to all of the guests tonight."])
    assert detect_language(["ภาษาไทยเป็นภาษาราชการ (Thai, official language)"]).name == "th"


@pytest.mark.parametrize("code, script", [("ru", "Cyrillic"), ("ar", "Arabic"), ("hi", "Devanagari"),
                                          ("vi", "Latin"), ("id", "Latin")])
def test_shared_scripts_ask_for_lang(code: str, script: str) -> None:
    with pytest.raises(VocabExtendError, match=rf"{script} script, which several languages share .*--lang"):
        detect_language([SAMPLES[code]])


def test_no_known_script_is_one_sentence() -> None:
    with pytest.raises(VocabExtendError, match="no letters of a script any known language uses"):
        detect_language(["12345 !?", "ᚠᚢᚦᚨᚱᚲ"])  # digits and runes


def test_lang_that_disagrees_with_the_corpus() -> None:
    check_language_matches("th", [SAMPLES["th"]])
    check_language_matches("vi", [SAMPLES["vi"]])
    with pytest.raises(VocabExtendError, match=r"--lang th \(Thai\) does not match the corpus.*Devanagari"):
        check_language_matches("th", [SAMPLES["hi"]] * 3)


def test_unknown_code() -> None:
    with pytest.raises(VocabExtendError, match="unknown language 'xx'"):
        get_language("xx")


def test_histogram_counts_letters_by_script() -> None:
    counts = script_histogram(["abc ภาษา 東京"])
    assert counts["Latin"] == 3 and counts["Thai"] == 4 and counts["Han"] == 2
