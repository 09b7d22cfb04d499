"""``vocab-extend cache [--clean]``: list the converted-model cache (:mod:`.cache`), or empty it.

The listing prints one line per entry (name, size, last use, what it is) and the total; ``--clean`` removes
every entry that no other process is reading or writing right now, says which it kept and why, and never
touches anything outside the cache's ``gguf/`` folder. Light to import: no torch.

    $ vocab-extend cache
    /home/me/.cache/vocab-extend/gguf
      SmolLM2-135M-Instruct.Q4_1-sha256-b179c9523d0e6a0f   514.6 MiB  used 3 minutes ago  converted from ...
    1 entry, 514.6 MiB; `vocab-extend cache --clean` removes them (the next load converts again, ~1 minute)
"""

from __future__ import annotations

import argparse
import time

from .cache import Entry, ago, clean, gguf_dir, list_entries
from .evaluate.stored import clean_scores, list_scores, scores_dir

INTERRUPTED = "interrupted: the entries listed as removed so far are gone; the others are intact"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clean", action="store_true",
                        help="remove every entry no other process is using now (the next load of a GGUF model "
                        "converts it again, about a minute for SmolLM2)")


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _line(entry: Entry, width: int) -> str:
    return (f"  {entry.path.name:<{width}}  {_mib(entry.bytes):>11}  used {ago(time.time() - entry.last_used):<15}"
            f"  {entry.describe()}")


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def run(args: argparse.Namespace) -> int:
    folder = gguf_dir()
    if args.clean:
        removed, kept = clean()
        print(f"removed {_entries(len(removed))} ({_mib(sum(e.bytes for e in removed))}) from {folder}")
        for entry in kept:
            print(f"kept {entry.path.name}: another vocab-extend process is using it; run --clean again later")
        scores = clean_scores()
        if scores:
            print(f"removed {_entries(len(scores))} ({_mib(sum(e.bytes for e in scores))}) from {scores_dir()}")
        return 0
    entries = list_entries()
    print(folder if folder.is_dir() else f"{folder} (empty: nothing converted yet)")
    width = max((len(e.path.name) for e in entries), default=0)
    for entry in entries:
        print(_line(entry, width))
    if entries:
        print(f"{_entries(len(entries))}, {_mib(sum(e.bytes for e in entries))}; `vocab-extend cache --clean` "
              "removes them (the next load of a GGUF model converts it again)")
    _list_scores()
    return 0


def _list_scores() -> None:
    """The stored base-model scores (:mod:`.evaluate.stored`), after the converted models."""
    scores = list_scores()
    if scores:
        print(scores_dir())
        width = max(len(e.path.name) for e in scores)
        for entry in scores:
            print(_line(entry, width))
        print(f"{_entries(len(scores))}, {_mib(sum(e.bytes for e in scores))} of stored scores (the next "
              "comparison with a base model computes them again once removed)")
