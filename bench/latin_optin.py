"""What a Latin-script language gives up to keep English exact, and what admitting shared letters would give.

The merge's rule for a language written in the base language's script (Vietnamese, Indonesian): a new piece
must hold a letter that the base-language reference text never uses, so every English line tokenizes exactly
as before. This bench measures, on the same trained new-language model, the rule against the alternative a
user could opt into — admit every piece with a letter of the script (ASCII included) and accept measured
English changes — on held-out text of the language (FLORES-200 sentences) and on English (the shared GUM
text): chars/token, English lines changed, English lines made longer, pieces added.

    python bench/latin_optin.py                     # vi and id on the Mistral-7B v0.1 base
    python bench/latin_optin.py --base smollm2-135m

Writes ``bench/results/latin_optin.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vocab_extend.atomic import atomic_write_json  # noqa: E402
from vocab_extend.corpus import read_documents  # noqa: E402
from vocab_extend.families import get_family, resolve_tokenizer  # noqa: E402
from vocab_extend.families.interface import TrainOptions  # noqa: E402
from vocab_extend.scripts import LANGUAGES  # noqa: E402
from vocab_extend.tokenizer.inputs import reference_lines, ExtendConfig  # noqa: E402
from vocab_extend.tokenizer.language import own_characters  # noqa: E402

SHARED = ROOT.parent / "shared" / "corpora"


class _Everything:
    def __init__(self, docs: list[str]) -> None:
        self.everything = docs


def _files(lang: str) -> tuple[list[str], list[str]]:
    files = sorted((SHARED / lang).glob("*.txt"))
    held = next(f for f in files if f.name.startswith("flores200"))
    train = [doc for f in files if f != held for doc in read_documents(str(f))]
    return train, read_documents(str(held))


def _measure(family, base, extension, held: list[str], english: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        family.write(base, extension, Path(tmp))
        base_ref, ext_ref = family.references(base, Path(tmp))
        rows = {}
        for name, lines in (("held_out", held), ("english", english)):
            before, after = base_ref.encode(lines, specials=False), ext_ref.encode(lines, specials=False)
            chars = sum(map(len, lines))
            rows[name] = {"chars": chars, "chars_per_token_base": round(chars / sum(map(len, before)), 4),
                          "chars_per_token_extended": round(chars / sum(map(len, after)), 4),
                          "lines": len(lines), "lines_changed": sum(a != b for a, b in zip(before, after)),
                          "lines_longer": sum(len(a) > len(b) for a, b in zip(after, before))}
    return {"added_pieces": len(extension.added), **rows}


def run(base_name: str, lang: str) -> dict:
    source = resolve_tokenizer(base_name)
    family = get_family(source.family)
    base = family.load_base(source)
    train, held = _files(lang)
    english = read_documents(str(SHARED / "en" / "gum_open_license_genres.txt"))
    started = time.perf_counter()
    new = family.train(base, train, TrainOptions(show_progress=False), _Everything(train))
    rules = {"default: letters the reference never uses": own_characters(lang, reference_lines(ExtendConfig())),
             "opt-in: every letter of the script": LANGUAGES[lang].script_set()}
    result = {}
    for rule, scripts in rules.items():
        try:
            result[rule] = _measure(family, base, family.merge(base, new, scripts), held, english)
        except Exception as exc:  # noqa: BLE001 - "nothing to add" is a result here
            result[rule] = {"error": str(exc).splitlines()[0]}
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="mistral-7b-v0.1")
    parser.add_argument("--langs", nargs="+", default=["vi", "id"])
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "latin_optin.json")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit("error: the shared corpora are not beside this checkout")
    results = {"base": args.base, "languages": {lang: run(args.base, lang) for lang in args.langs}}
    atomic_write_json(args.output, results)
    for lang, rows in results["languages"].items():
        for rule, row in rows.items():
            if isinstance(row, dict):
                print(lang, rule, {k: v for k, v in row.items() if k != "english"} | {"english": row.get("english")})


if __name__ == "__main__":
    main()
