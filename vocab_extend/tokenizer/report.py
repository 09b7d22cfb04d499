"""``report.json``, ``report.md`` and the plot of a merge.

The report holds no timings or paths of the machine, so the same inputs give byte-identical reports.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any, Callable, Mapping

from ..plots import plot_chars_per_token

PLOT_FILE = "token_reduction.png"


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
    if report.get("embedding_size") and report["embedding_size"] != report["vocab_size"]:
        lines.append(
            f"- embedding rows after padding to a multiple of {report['pad_to_multiple_of']}: "
            f"{report['embedding_size']:,}"
        )
    notes = []
    if any(name.endswith("(held out)") for name in report["corpora"]):
        notes.append(f"*(held out)*: documents kept out of training ({report.get('heldout_fraction', 0):.0%}, "
                     "chosen by content hash) — the figures to quote.")
    if any(name.endswith("sample)") for name in report["corpora"]):
        notes.append("*(training sample)*: text the new-language model was trained on; it overstates the gain.")
    lines += ["", "## Tokens needed", "", *([" ".join(notes), ""] if notes else []),
              "| corpus | chars | bytes | base tokens | extended tokens | chars/token base | chars/token extended "
              "| reduction |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, c in report["corpora"].items():
        lines.append(
            f"| {name} | {c['chars']:,} | {c['bytes']:,} | {c['base_tokens']:,} | {c['extended_tokens']:,} "
            f"| {c['chars_per_token_base']:.3f} | {c['chars_per_token_extended']:.3f} | {c['reduction']:.1%} |"
        )
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


def pick_example(lines: list[str], accept: Callable[[str], bool]) -> str | None:
    """A readable example sentence: the first line of 20–80 characters that ``accept`` takes."""
    for line in lines:
        if 20 <= len(line) <= 80 and accept(line):
            return line
    return next((line[:80] for line in lines if accept(line)), None)
