"""Which characters the merge may build new pieces on: the new language's own, decided once per merge.

For a language in a script of its own (Thai, Hindi, Greek, Japanese ...) that is every character of its
scripts (:mod:`vocab_extend.scripts`). A language written in the base language's script (Vietnamese,
Indonesian) owns only the letters that the *base-language reference text* never uses: the bundled English
sample, the merge's built-in base-language lines and every ``--keep`` corpus. A piece must hold one of them,
so every reference line, and any text without such a letter, tokenizes exactly as before; the report says
how many letters the language owns and what share of its corpus they are.

>>> own = own_characters("vi", reference=["the cafe is open"])
>>> own.contains("Tiếng Việt"), own.contains("cafe")
(True, False)
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from ..errors import VocabExtendError
from ..scripts import (BASE_LANGUAGE_CHARS, LANGUAGES, ScriptSet, check_language_matches, detect_language,
                       get_language)


def own_characters(code: str, reference: Iterable[str] = ()) -> ScriptSet:
    """The script set of language ``code``; for a Latin-script language, less every reference character."""
    language = LANGUAGES[code]
    if not language.shares_base_script:
        return get_language(code)
    used = set(BASE_LANGUAGE_CHARS)
    for line in reference:
        used.update(line)
    return language.script_set(exclude=used)


def choose_language(lang: str, head: Sequence[str], reference: Callable[[], Iterable[str]]) -> ScriptSet:
    """The new language's own characters: ``lang`` checked against the first documents, or detected.

    A Latin-script language whose first documents hold none of its own letters is refused here, before
    training: nothing could be added without changing base-language tokenization. ``reference`` gives the
    base-language reference text; it is read only for a language written in the base's script.
    """
    if lang == "auto":
        scripts = detect_language(head)
    else:
        get_language(lang)  # an unknown code is one sentence
        if head:
            check_language_matches(lang, head)
        scripts = own_characters(lang, reference() if LANGUAGES[lang].shares_base_script else ())
    language = LANGUAGES[scripts.name]
    if language.shares_base_script and head and not any(scripts.contains(doc) for doc in head):
        raise VocabExtendError(
            f"{language.name} ({language.code}) is written with the base language's letters, and its corpus uses "
            "none that the base-language reference text lacks: no piece can be added without changing how "
            "base-language text tokenizes")
    if language.shares_base_script and lang == "auto":
        scripts = own_characters(scripts.name, reference())
    return scripts


def language_report(scripts: ScriptSet, sample: Sequence[str]) -> dict[str, Any]:
    """What the report says of the language: its scripts and, for a Latin-script one, how much it owns."""
    language = LANGUAGES[scripts.name]
    report: dict[str, Any] = {"code": language.code, "name": language.name, "scripts": list(language.scripts),
                              "shares_base_script": language.shares_base_script}
    if language.shares_base_script:
        letters = sum(1 for doc in sample for ch in doc if ch.isalpha())
        own = sum(scripts.count(doc) for doc in sample)
        report["own_letters"] = sum(hi - lo + 1 for lo, hi in scripts.ranges)
        report["own_letter_share_of_sample"] = round(own / letters, 4) if letters else 0.0
    return report
