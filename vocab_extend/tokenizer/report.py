"""``report.json``, ``report.md`` and the plot of a merge.

The report holds no paths of the machine and no timings: ``report.json`` and ``report.md`` are byte-identical
for the same inputs. The wall time of each phase and the peak memory, which differ between runs, go to
``run.json`` beside them (:func:`write_run_record`), the one file of a merge's folder that does.
``sample`` says, per language, how much of the corpus was read and how much the new-language model was
trained on (:mod:`.sampling`).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..plots import plot_chars_per_token
from .labels import HELD_OUT, TRAINED_ON, size_phrase
from .phases import PhaseRecord
from .sampling import SampleStats

PLOT_FILE = "token_reduction.png"
CEILING, WIDENED_CEILING = "chars_per_token_ceiling", "chars_per_token_ceiling_widened_split"
# What --widen-split would allow is measured for text whose words hold combining marks (Thai, Hindi, Tamil:
# at least this share of its characters), which the base's split may end words at, and named in the report
# when it would raise the ceiling by at least WIDEN_GAIN.
MARK_SHARE = 0.01
WIDEN_GAIN = 1.05


def corpus_figures(text_chars: int, text_bytes: int, base_tokens: int, extended_tokens: int) -> dict[str, Any]:
    """The per-corpus block of ``report.json``."""
    return {
        "chars": text_chars,
        "bytes": text_bytes,
        "base_tokens": base_tokens,
        "extended_tokens": extended_tokens,
        "chars_per_token_base": round(text_chars / max(base_tokens, 1), 4),
        "chars_per_token_extended": round(text_chars / max(extended_tokens, 1), 4),
        "reduction": round(1 - extended_tokens / max(base_tokens, 1), 4),
    }


def ceiling_figures(ceiling: Callable[[Sequence[str]], float | None],
                    widened: Callable[[list[str]], float | None] | None, corpora: Mapping[str, list[str]],
                    own: Callable[[str], bool]) -> dict[str, dict[str, Any]]:
    """Per new-language corpus (the held-out share, the training sample, and every other corpus most of whose
    lines hold a new-language character), the best chars/token the written tokenizer's split allows
    (``None`` where the family has no such split) and, with ``widened``, what ``--widen-split`` would allow
    (text whose words hold combining marks only: :data:`MARK_SHARE`)."""
    figures: dict[str, dict[str, Any]] = {}
    for name, lines in corpora.items():
        if not (name.endswith(("(held out)", "sample)")) or 2 * sum(map(own, lines)) > len(lines)):
            continue
        figures[name] = {CEILING: ceiling(lines)}
        if widened is not None and figures[name][CEILING] is not None and mark_share(lines) >= MARK_SHARE:
            figures[name][WIDENED_CEILING] = widened(lines)
    return figures


def mark_share(lines: Sequence[str]) -> float:
    """The share of combining marks (Unicode category M) among the characters of ``lines``.

    >>> mark_share(["ที่นี่คือประเทศไทย"]) > 0.1, mark_share(["日本語", "Tiếng Việt"])
    (True, 0.0)
    """
    chars = sum(map(len, lines))
    marks = sum(unicodedata.category(ch).startswith("M") for line in lines for ch in line)
    return marks / chars if chars else 0.0


def ceiling_sentence(figures: Mapping[str, Any]) -> str:
    """What a corpus's ceiling means, in words.

    >>> ceiling_sentence({CEILING: 3.98, WIDENED_CEILING: 16.17})
    'at most 3.98 chars/token with this split; --widen-split allows 16.17'
    >>> ceiling_sentence({CEILING: 5.1, WIDENED_CEILING: 5.2})
    'at most 5.10 chars/token with this split'
    """
    sentence = f"at most {figures[CEILING]:.2f} chars/token with this split"
    wider = figures.get(WIDENED_CEILING)
    if wider is not None and wider >= WIDEN_GAIN * figures[CEILING]:
        sentence += f"; --widen-split allows {wider:.2f}"
    return sentence


RUN_RECORD = "run.json"  # phase times and peak memory: this machine's run, not the result


def write_run_record(folder: Path, record: PhaseRecord) -> None:
    """``run.json``: the seconds of each phase of the merge and the peak resident memory (MB)."""
    (Path(folder) / RUN_RECORD).write_text(json.dumps(record.as_dict(), indent=2, sort_keys=True) + "\n",
                                           encoding="utf-8")


def write_report(
    folder: Path,
    report: Mapping[str, Any],
    example: tuple[str, list[str], list[str]] | None,
) -> None:
    """Write ``report.json``, ``report.md`` and the plot into ``folder``."""
    folder = Path(folder)
    (folder / "report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    corpora = report["corpora"]
    plot_chars_per_token(
        {
            name: {
                "base": {"chars_per_token": c["chars_per_token_base"]},
                "extended": {"chars_per_token": c["chars_per_token_extended"]},
            }
            for name, c in corpora.items()
        },
        folder / PLOT_FILE,
    )
    (folder / "report.md").write_text(render_markdown(report, example), encoding="utf-8")


def visible(text: str) -> str:
    """``text`` with characters that would not show (private-use, control, format) as ``\\uXXXX`` escapes.

    >>> visible("。\ue4c2")
    '。\\\\ue4c2'
    """
    return "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Co", "Cc", "Cf", "Cn") else ch
                   for ch in text)


def _fmt_tokens(tokens: list[str]) -> str:
    return " | ".join(visible(t).replace("|", "\\|") for t in tokens)


def render_markdown(report: Mapping[str, Any], example: tuple[str, list[str], list[str]] | None) -> str:
    lines = [
        f"# Extended tokenizer: {report['base']} + {report['lang']}",
        "",
        f"- base vocabulary: {report['base_vocab_size']:,}; extended: {report['vocab_size']:,} "
        f"(+{report['added_pieces']:,} pieces)",
    ]
    for code, figures in (report.get("sample") or {}).items():
        if figures:
            stats = SampleStats(**{key: value for key, value in figures.items() if key != "whole"})
            lines.append(f"- training text ({code}): {stats.sentence()}")
    if report.get("embedding_size") and report["embedding_size"] != report["vocab_size"]:
        lines.append(
            f"- embedding rows after padding to a multiple of {report['pad_to_multiple_of']}: "
            f"{report['embedding_size']:,}"
        )
    lines += _corpora_table(report)
    ceilings = [f"- {name}: {ceiling_sentence(c)}" for name, c in report["corpora"].items()
                if c.get(CEILING) is not None]
    if ceilings:
        lines += ["", "Split ceiling (characters per pre-token: BPE never merges across pre-tokens, so no "
                  "vocabulary gets past it):", "", *ceilings]
    lines += _languages(report.get("languages"))
    notes = [entry["note"] for entry in [report.get("language"), *(report.get("languages") or {}).values()]
             if isinstance(entry, dict) and "note" in entry]  # a Latin-script language: what its rule allowed
    lines += ["", *notes] if notes else []
    lines += ["", f"![characters per token]({PLOT_FILE})", "", "## Checks", "",
              "| check | passed | checked | failed |", "|---|---|---:|---:|"]
    for name, check in report["checks"].items():
        lines.append(f"| {name} | {'yes' if check['passed'] else 'NO'} | {check['checked']:,} | {check['failed']:,} |")
    lines += ["", "## New-model pieces not added", "", "| reason | count | examples |", "|---|---:|---|"]
    for reason, count in report["skipped"].items():
        examples = ", ".join(f"`{visible(e)}`" for e in report["skipped_examples"].get(reason, []))
        lines.append(f"| {reason} | {count:,} | {examples} |")
    if example:
        text, base_tokens, ext_tokens = example
        lines += ["", "## Example", "", f"> {text}", "",
                  f"- base ({len(base_tokens)} tokens): {_fmt_tokens(base_tokens)}",
                  f"- extended ({len(ext_tokens)} tokens): {_fmt_tokens(ext_tokens)}"]
    return "\n".join(lines) + "\n"


def _interval(figures: Mapping[str, Any], key: str, spec: str) -> str:
    interval = figures.get(f"ci95_{key}")
    return f" ({format(interval[0], spec)}–{format(interval[1], spec)})" if interval else ""


def _corpora_table(report: Mapping[str, Any]) -> list[str]:
    """"Tokens needed": what each label means, then per corpus its label, size, figures and, for text not
    trained on, the 95% bootstrap intervals."""
    rows = report["corpora"]
    notes = []
    for name, c in rows.items():
        if c.get("label") == HELD_OUT:
            notes.append(f"*{name}*: {size_phrase(c)} kept out of training ({report.get('heldout_fraction', 0):.0%} of "
                         "the corpus, chosen by content hash) — the figures to quote.")
    if any(c.get("label") in TRAINED_ON for c in rows.values()):
        notes.append("*training sample* / *training text*: text the new-language model was trained on; it "
                     "overstates the gain.")
    if any("ci95_reduction" in c for c in rows.values()):
        notes.append("In brackets: 95% bootstrap intervals over documents (1,000 resamples, seeded).")
    lines = ["", "## Tokens needed", "", *([" ".join(notes), ""] if notes else []),
             "| corpus | label | documents | chars | bytes | base tokens | extended tokens | chars/token base "
             "| chars/token extended | reduction |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, c in rows.items():
        documents = f"{c['documents']:,}" if "documents" in c else ""
        lines.append(
            f"| {name} | {c.get('label', '')} | {documents} | {c['chars']:,} | {c['bytes']:,} | {c['base_tokens']:,} "
            f"| {c['extended_tokens']:,} | {c['chars_per_token_base']:.3f} | {c['chars_per_token_extended']:.3f}"
            f"{_interval(c, 'chars_per_token_extended', '.2f')} | {c['reduction']:.1%}"
            f"{_interval(c, 'reduction', '.1%')} |"
        )
    return lines


def _languages(section: Mapping[str, Any] | None) -> list[str]:
    """The per-language table of a merge of several languages."""
    if not section:
        return []
    how = ("one model per language, merged in turn" if section.get("mode") == "sequential"
           else "one model trained on every corpus")
    lines = ["", "## Languages", "", f"{how}.", "", "| language | pieces added | new-model budget |", "|---|---:|---:|"]
    for code, entry in section.items():
        if isinstance(entry, dict):
            lines.append(f"| {code} | {entry['added_pieces']:,} | {entry['new_model_size']:,} |")
    return lines


def pick_example(lines: list[str], accept: Callable[[str], bool]) -> str | None:
    """A readable example sentence: the first line of 20–80 characters that ``accept`` takes."""
    for line in lines:
        if 20 <= len(line) <= 80 and accept(line):
            return line
    return next((line[:80] for line in lines if accept(line)), None)
