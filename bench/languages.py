"""Every language of the table, merged into each base with the shared corpora: chars/token on held-out text.

For each language, one file of the shared corpora is held out whole (FLORES-200 sentences where there is one,
else Tatoeba: short sentences, a different kind of text from the Wikipedia / literature the rest holds) and the
merge's own held-out share of the training files (mostly Wikipedia or books) is the second held-out kind.
Every other file trains the new-language model. The English lines of the bundled sample, the merge's
built-in probes and an English text of the shared corpora are checked unchanged by the merge itself.

    python bench/languages.py                              # both bases, every language with a corpus
    python bench/languages.py --bases mistral-7b-v0.1 --langs th hi
    python bench/languages.py --bases smollm2-135m --langs th hi ta --extra --widen-split

Writes ``bench/results/languages.json``: per base and language, chars/token of the base and of the extended
tokenizer on each held-out kind, their ratio, the pieces added, every check's result, the wall time, and
line by line (``lines``): English lines changed and made longer (and changed among the lines without a letter
the language owns, which must be 0), and held-out lines of the language made longer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vocab_extend.atomic import atomic_write_json  # noqa: E402
from vocab_extend.corpus import read_documents  # noqa: E402
from vocab_extend.families import get_family, resolve_tokenizer  # noqa: E402
from vocab_extend.scripts import LANGUAGES  # noqa: E402
from vocab_extend.tokenizer.inputs import ExtendConfig, reference_lines  # noqa: E402
from vocab_extend.tokenizer.language import own_characters  # noqa: E402

SHARED = ROOT.parent / "shared" / "corpora"  # --corpora replaces it
LANGS = ["ja", "zh", "ko", "th", "hi", "ta", "ar", "he", "el", "ru", "vi", "id"]
ENGLISH_CHECK = "gum_open_license_genres.txt"


def split_files(lang: str) -> tuple[list[Path], Path]:
    """(training files, the held-out file) of a language's shared corpus."""
    files = sorted((SHARED / lang).glob("*.txt"))
    held = next((f for f in files if f.name.startswith("flores200")), None) or \
        next(f for f in files if f.name.startswith("tatoeba"))
    return [f for f in files if f != held], held


def line_counts(base: str, lang: str, out: Path, held: Path) -> dict:
    """English lines the merge changed and made longer, and held-out lines of the language made longer, read
    with the family's reference encoders (SentencePiece, or tokenizers reading the written file)."""
    source = resolve_tokenizer(base)
    family = get_family(source.family)
    loaded = family.load_base(source)
    base_ref, ext_ref = family.references(loaded, out)
    own = own_characters(lang, reference_lines(ExtendConfig()) if LANGUAGES[lang].shares_base_script else ())
    counts = {}
    for name, path in (("en", SHARED / "en" / ENGLISH_CHECK), (lang, held)):
        lines = read_documents(str(path))
        before, after = base_ref.encode(lines, specials=False), ext_ref.encode(lines, specials=False)
        changed = [a != b for a, b in zip(before, after)]
        counts[name] = {"lines": len(lines), "changed": sum(changed),
                        "longer": sum(len(a) > len(b) for a, b in zip(after, before)),
                        "changed_without_own_letters": sum(c for c, line in zip(changed, lines)
                                                           if not own.contains(line))}
    return counts


def merge(base: str, lang: str, out: Path, extra: list[str]) -> dict:
    train, held = split_files(lang)
    command = [sys.executable, "-m", "vocab_extend.cli", "merge", "--base", base, "--lang", lang,
               "--output-dir", str(out), "--eval", f"{lang}-{held.stem.split('_')[0]}={held}",
               "--eval", f"en={SHARED / 'en' / ENGLISH_CHECK}", *extra]
    for file in train:
        command += ["--corpus", str(file)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = round(time.perf_counter() - started, 1)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1], "seconds": seconds}
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    rows = {name: {"chars": row["chars"], "base": row["chars_per_token_base"],
                   "extended": row["chars_per_token_extended"],
                   "ratio": round(row["chars_per_token_extended"] / row["chars_per_token_base"], 3)}
            for name, row in report["corpora"].items()}
    checks = {name: {"passed": c["passed"], "checked": c["checked"], "failed": c["failed"]}
              for name, c in report["checks"].items()}
    reported = {key: report[key] for key in ("base_pieces_reranked", "language") if key in report}
    return {"added_pieces": report["added_pieces"], **reported, "corpora": rows, "checks": checks,
            "lines": line_counts(base, lang, out, held),
            "all_checks_passed": all(c["passed"] for c in checks.values()), "seconds": seconds,
            "train_files": [f.name for f in train], "held_out_file": held.name}


def main() -> None:
    global SHARED
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", nargs="+", default=["mistral-7b-v0.1", "smollm2-135m"])
    parser.add_argument("--langs", nargs="+", default=LANGS)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more merge options")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "languages.json")
    parser.add_argument("--corpora", type=Path, default=SHARED, help="the shared corpora folder")
    args = parser.parse_args()
    SHARED = args.corpora
    if not SHARED.is_dir():
        sys.exit("error: the shared corpora are not beside this checkout")
    results: dict = {"bases": {}}
    if args.output.is_file():
        results = json.loads(args.output.read_text(encoding="utf-8"))
    results["machine"] = f"{os.cpu_count()}-core CPU shared with other jobs; one run per row (seconds: wall time)"
    with tempfile.TemporaryDirectory() as tmp:
        for base in args.bases:
            for lang in args.langs:
                row = merge(base, lang, Path(tmp) / f"{base}-{lang}", args.extra)
                label = " ".join([base, *args.extra])  # e.g. "smollm2-135m --widen-split"
                results["bases"].setdefault(label, {})[lang] = row
                print(base, lang, json.dumps({k: v for k, v in row.items() if k in ("error", "seconds")} |
                                             {n: r["ratio"] for n, r in row.get("corpora", {}).items()}),
                      flush=True)
                atomic_write_json(args.output, results)


if __name__ == "__main__":
    main()
