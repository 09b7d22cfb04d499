"""Which characters the merge may build new pieces on: the new language's own, decided once per merge.

For a language in a script of its own (Thai, Hindi, Greek, Japanese ...) that is every character of its
scripts (:mod:`vocab_extend.scripts`). A language written in the base language's script (Vietnamese,
Indonesian) owns only the letters that the *base-language reference text* never uses: the bundled English
sample, the merge's built-in base-language lines and every ``--keep`` corpus. A piece must hold one of them,
so every reference line, and any text without such a letter, tokenizes exactly as before; the report says
how many letters the language owns and what share of its corpus they are.

A Latin-script language may own almost nothing (Indonesian uses hardly a letter English lacks): the merge then
adds what it can, possibly nothing, and is still a valid, verified folder; the report says what admitting
every letter of the script would have given on the same new model (:func:`opt_in_figures`: pieces, chars/token
of the new language, and how many reference lines it would change or make longer). A language with a script
of its own whose new model has no piece to add is refused (:func:`check_added`): its corpus is not that
language.

>>> own = own_characters("vi", reference=["the cafe is open"])
>>> own.contains("Tiếng Việt"), own.contains("cafe")
(True, False)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..console import log
from ..errors import VocabExtendError
from ..families.interface import AnyFamily, Base, Extension
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


def check_added(scripts: ScriptSet, added: int) -> None:
    """Refuse a merge that adds nothing for a language with a script of its own (for one written in the
    base's letters, adding nothing is what the rule allowed, and the report says so).

    >>> check_added(own_characters("id", reference=["abc"]), 0)
    >>> check_added(get_language("th"), 0)
    Traceback (most recent call last):
    ...
    vocab_extend.errors.VocabExtendError: the new model has no pieces with th characters to add: check --lang and the corpus
    """
    if not added and not LANGUAGES[scripts.name].shares_base_script:
        raise VocabExtendError(f"the new model has no pieces with {scripts.name} characters to add: check --lang "
                               "and the corpus")


def _figures(family: AnyFamily, base: Base, extension: Extension, texts: Sequence[str],
             reference: Sequence[str]) -> dict[str, Any]:
    """chars/token of ``texts`` with the base and ``extension``, and the reference lines it changes."""
    with tempfile.TemporaryDirectory() as tmp:
        family.write(base, extension, Path(tmp))
        base_ref, ext_ref = family.references(base, Path(tmp))
        before, after = base_ref.encode(texts, specials=False), ext_ref.encode(texts, specials=False)
        ref_before, ref_after = base_ref.encode(reference, specials=False), ext_ref.encode(reference, specials=False)
    chars = sum(map(len, texts))
    return {"added_pieces": len(extension.added),
            "chars_per_token_base": round(chars / max(sum(map(len, before)), 1), 4),
            "chars_per_token_extended": round(chars / max(sum(map(len, after)), 1), 4),
            "reference_lines": len(reference),
            "reference_lines_changed": sum(a != b for a, b in zip(ref_before, ref_after)),
            "reference_lines_longer": sum(len(a) > len(b) for a, b in zip(ref_after, ref_before))}


def opt_in_figures(family: AnyFamily, base: Base, new_model: Any, scripts: ScriptSet, texts: Sequence[str],
                   reference: Sequence[str]) -> dict[str, Any]:
    """What the merge would give with every letter of a Latin-script language's script admitted (ASCII and the
    reference's letters included), on the same ``new_model``: pieces added, chars/token of ``texts`` (the
    held-out share) and the reference lines it would change and make longer. No such option is offered: the
    figures say what the default rule gives up."""
    language = LANGUAGES[scripts.name]
    every_letter = language.script_set()
    figures = _figures(family, base, family.merge(base, new_model, every_letter), texts, reference)
    return {"rule": f"every {'/'.join(language.scripts)} letter", **figures}


def opt_in_note(code: str, added: int, section: dict[str, Any]) -> str:
    """One line for the console and the report: what the rule allowed and what the opt-in would give.

    >>> section = {"own_letters": 9, "own_letter_share_of_sample": 0.0004, "opt_in": {
    ...     "rule": "every Latin letter", "added_pieces": 10731, "chars_per_token_base": 2.6,
    ...     "chars_per_token_extended": 4.42, "reference_lines": 1300, "reference_lines_changed": 802,
    ...     "reference_lines_longer": 627}}
    >>> print(opt_in_note("id", 0, section))  # doctest: +NORMALIZE_WHITESPACE
    note: Indonesian owns 9 letters the base-language reference never uses (0.04% of its corpus's letters): 0 pieces could be added without changing base-language text; admitting every Latin letter would add 10,731 pieces (2.60 → 4.42 chars/token on its held-out text) but change 802 of 1,300 reference lines, 627 of them longer
    """
    opt = section["opt_in"]
    share = section["own_letter_share_of_sample"]
    return (f"note: {LANGUAGES[code].name} owns {section['own_letters']:,} letters the base-language reference "
            f"never uses ({share:.2%} of its corpus's letters): {added:,} pieces could be added without changing "
            f"base-language text; admitting {opt['rule']} would add {opt['added_pieces']:,} pieces "
            f"({opt['chars_per_token_base']:.2f} → {opt['chars_per_token_extended']:.2f} chars/token on its held-out "
            f"text) but change {opt['reference_lines_changed']:,} of {opt['reference_lines']:,} reference "
            f"lines, {opt['reference_lines_longer']:,} of them longer")


def language_section(family: AnyFamily, base: Base, new_model: Any, extension: Extension, scripts: ScriptSet,
                     sample: Sequence[str], held_out: Sequence[str],
                     reference: Callable[[], Sequence[str]]) -> dict[str, Any]:
    """The report's ``language`` for one language's merge: :func:`check_added`, :func:`language_report` and,
    for a Latin-script language, :func:`opt_in_figures` on its held-out text (the sample without one) and the
    note saying what the rule allowed (logged here)."""
    check_added(scripts, len(extension.added))
    section = language_report(scripts, sample)
    if not section["shares_base_script"]:
        return section
    section["opt_in"] = opt_in_figures(family, base, new_model, scripts, held_out or sample, reference())
    section["note"] = opt_in_note(scripts.name, len(extension.added), section)
    log(section["note"])
    return section


def union_scripts(sets: Sequence[ScriptSet]) -> ScriptSet:
    """The characters of every language, named ``th+vi``: what a merge of several languages may change."""
    ranges: list[list[int]] = []
    for lo, hi in sorted(r for s in sets for r in s.ranges):
        if ranges and lo <= ranges[-1][1] + 1:
            ranges[-1][1] = max(ranges[-1][1], hi)
        else:
            ranges.append([lo, hi])
    return ScriptSet("+".join(s.name for s in sets), tuple((lo, hi) for lo, hi in ranges))


def widened_scripts(sets: Sequence[ScriptSet]) -> ScriptSet:
    """The characters ``--widen-split`` keeps in one pre-token: those of every language with a script of its
    own. A Latin-script language is left out: its letters are letters of the base's split already, and a
    split widened for the few it owns would cut its words at them (``này`` → ``n`` + ``ày``, a token its own
    surface could never give); a merge of such languages only is one sentence.

    >>> widened_scripts([get_language("th"), own_characters("vi", ["abc"])]).name
    'th'
    >>> widened_scripts([own_characters("vi", ["abc"])])
    Traceback (most recent call last):
    ...
    vocab_extend.errors.VocabExtendError: --widen-split keeps the letters and marks of a script of its own in one pre-token, but Vietnamese (vi) is written in the base's letters, which its split already keeps together: drop --widen-split
    """
    own = [s for s in sets if not LANGUAGES[s.name].shares_base_script]
    if not own:
        names = ", ".join(f"{LANGUAGES[s.name].name} ({s.name})" for s in sets)
        raise VocabExtendError(f"--widen-split keeps the letters and marks of a script of its own in one pre-token, "
                               f"but {names} {'is' if len(sets) == 1 else 'are'} written in the base's letters, "
                               "which its split already keeps together: drop --widen-split")
    return own[0] if len(own) == 1 else union_scripts(own)
