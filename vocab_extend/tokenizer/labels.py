"""What every headline figure is measured on, and how sure it is.

A figure is labelled with the kind of text it was measured on: ``held out`` (the merge's content-hashed share
kept out of training), ``training sample`` (text the new-language model was trained on: it overstates the
gain), ``training text`` (a corpus whose files are training files recorded in the tokenizer folder's
``vocab_extend.json``), or ``eval`` / ``as given`` (text the user named, not found among the training files).
Every figure that is not on training text carries its size (documents, characters) and a 95% bootstrap
interval over documents (:func:`vocab_extend.heldout.bootstrap_interval`: seeded, so the same text gives the
same interval and the same report bytes).

>>> figures = interval_figures([40, 60, 50], [40, 60, 50], [20, 30, 40])
>>> figures["documents"], figures["ci95_reduction"][0] <= 0.4 <= figures["ci95_reduction"][1]
(3, True)
>>> figure_phrase({"chars_per_token_extended": 1.53, "ci95_chars_per_token_extended": [1.47, 1.6],
...                "documents": 18, "chars": 1371})
'1.53 chars/token (95% CI 1.47–1.60, 18 documents, 1,371 characters)'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..corpus import resolve_files
from ..errors import VocabExtendError
from ..heldout import bootstrap_interval
from .multilang import corpus_language

HELD_OUT, TRAINING_SAMPLE, TRAINING_TEXT, CORPUS_SAMPLE, EVAL, AS_GIVEN = (
    "held out", "training sample", "training text", "corpus sample", "eval", "as given")
TRAINED_ON = (TRAINING_SAMPLE, TRAINING_TEXT)
# A note when fewer than this share of the pieces the merge considered were added.
FEW_ADDED_SHARE = 0.75
SKIP_REASONS = {
    "already_in_base": "already in the base",
    "no_new_script_char": "without a character of the language",
    "dead": "dead (the merged tokenizer never produces them)",
    "digits": "joining digits the base splits",
    "unreachable": "unreachable (no merge path builds them)",
}
TRAINED_NOTE = "figures on training text overstate the gain: quote the held-out ones"
QUOTE_NOTE = ("training text: the tokenizer was trained on it, so its figures overstate the gain; quote held-out "
              "figures (the merge's '<lang> (held out)' row, or text the merge never read)")


def training_files(specs: Iterable[str]) -> set[Path]:
    """The local files of the training corpus specs (a ``th=`` language prefix dropped; ``hf:`` corpora and
    specs that no longer resolve give none)."""
    files: set[Path] = set()
    for spec in specs:
        _, spec = corpus_language(spec)
        files.update(_local_files(spec))
    return files


def _local_files(spec: str) -> list[Path]:
    if spec.startswith("hf:"):
        return []
    try:
        return [path.resolve() for path in resolve_files(spec)]
    except (VocabExtendError, OSError):
        return []


def is_training_text(spec: str, trained: set[Path]) -> bool:
    """Whether every file of the local corpus ``spec`` is a training file (the training corpus, or files of
    it)."""
    files = _local_files(spec)
    return bool(files) and trained.issuperset(files)


def interval_figures(chars: Sequence[int], base_tokens: Sequence[int],
                     extended_tokens: Sequence[int]) -> dict[str, Any]:
    """A corpus's size in documents and the 95% bootstrap intervals, over its documents, of the extended
    tokenizer's chars/token and of the token reduction (``None`` for fewer than two documents)."""
    cpt = bootstrap_interval([chars, extended_tokens], lambda c, t: c / t)
    reduction = bootstrap_interval([base_tokens, extended_tokens], lambda b, t: 1 - t / b)
    return {"documents": len(chars), "ci95_chars_per_token_extended": None if cpt is None else list(cpt),
            "ci95_reduction": None if reduction is None else list(reduction)}


def size_phrase(figures: Mapping[str, Any]) -> str:
    """``18 documents, 1,371 characters``."""
    documents = figures["documents"]
    return f"{documents:,} document{'s' if documents != 1 else ''}, {figures['chars']:,} characters"


def figure_phrase(figures: Mapping[str, Any], key: str = "chars_per_token_extended") -> str:
    """The chars/token of a row with its interval and size, as the console and report.md print it."""
    interval = figures.get(f"ci95_{key}")
    inside = f"95% CI {interval[0]:.2f}–{interval[1]:.2f}, " if interval else ""
    return f"{figures[key]:.2f} chars/token ({inside}{size_phrase(figures)})"


def reduction_phrase(figures: Mapping[str, Any], key: str = "reduction") -> str:
    """``42.0% fewer tokens (95% CI 38.1%–45.2%)``."""
    interval = figures.get(f"ci95_{key}")
    inside = f" (95% CI {interval[0]:.1%}–{interval[1]:.1%})" if interval else ""
    return f"{figures[key]:.1%} fewer tokens{inside}"


def row_line(name: str, figures: Mapping[str, Any]) -> str:
    """One corpus of a merge, as the console prints it: held-out and eval text with the interval and size,
    text trained on with its label."""
    label = figures.get("label", "")
    tag = f" [{label}]" if label and label not in name else ""
    start = f"{name}{tag}: {figures['chars_per_token_base']:.2f} -> "
    if "ci95_chars_per_token_extended" in figures:
        return start + f"{figure_phrase(figures)}; {reduction_phrase(figures)}"
    return start + f"{figures['chars_per_token_extended']:.2f} chars/token ({figures['reduction']:.1%} fewer tokens)"


def pieces_notes(report: Mapping[str, Any]) -> list[str]:
    """What ``--total-vocab-size`` gave, and a note when far fewer pieces were added than the merge considered
    (:data:`FEW_ADDED_SHARE`), with the reasons the others were skipped.

    >>> pieces_notes({"added_pieces": 100, "skipped": {"already_in_base": 250}})
    ['note: 100 of the 350 new-model pieces were added; skipped: 250 already in the base']
    """
    notes = []
    asked = report.get("total_vocab_size_asked")
    if asked:
        notes.append(f"note: --total-vocab-size {asked:,} gave {report['vocab_size']:,} pieces: the new-language "
                     f"model was trained with {asked - report['base_vocab_size']:,} ({asked:,} − the base's "
                     f"{report['base_vocab_size']:,}) and {report['added_pieces']:,} of them were added")
    skipped = report.get("skipped") or {}
    considered = report["added_pieces"] - report.get("intermediate_tokens", 0) + sum(skipped.values())
    if not skipped or report["added_pieces"] >= FEW_ADDED_SHARE * considered:
        return notes
    reasons = ", ".join(f"{count:,} {SKIP_REASONS.get(reason, reason.replace('_', ' '))}"
                        for reason, count in sorted(skipped.items(), key=lambda item: (-item[1], item[0])))
    return notes + [f"note: {report['added_pieces']:,} of the {considered:,} new-model pieces were added; "
                    f"skipped: {reasons}"]
