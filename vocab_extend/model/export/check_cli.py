"""``vocab-extend check-gguf``: the options; :mod:`.check` compares the file in llama.cpp with the HF folder.

Light to import: ``--help`` and a bad option load neither torch nor llama.cpp. The command prints one line of
verdict and exits 0 (same ids, log-probabilities within the tolerance) or 1 (a difference); a missing
llama.cpp wheel, a missing folder or a file that is not GGUF is one ``error:`` sentence (exit 2).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from ...errors import VocabExtendError

INTERRUPTED = "interrupted: nothing was written (check-gguf only reads)"


def _tolerance(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tolerance takes a number of nats such as 0.05, not {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"--tolerance must be positive, not {value}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("gguf", metavar="FILE.gguf", type=Path, help="the GGUF file to check")
    parser.add_argument("--tokenizer", required=True, type=Path, metavar="DIR",
                        help="the folder the file was exported from (its tokenizer, and its model when it holds one)")
    parser.add_argument("--text", type=Path, default=None, metavar="FILE",
                        help="UTF-8 text whose non-blank lines are tokenized both ways (default: base-language "
                        "probes, the bundled English sample and the bundled sample of the folder's language)")
    parser.add_argument("--model", type=Path, default=None, metavar="DIR",
                        help="HF model folder whose next-token log-probabilities llama.cpp's must match "
                        "(default: the --tokenizer folder when it holds a model; else ids only)")
    parser.add_argument("--tolerance", type=_tolerance, default=None, metavar="NATS",
                        help="bound on |difference| of log-probabilities, in nats (default by weight type: the maximum "
                        "<= 0.001 for f32, <= 0.3 for f16; the mean <= 0.75 for q8_0, <= 1.5 for other quantizations)")


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("xllamacpp") is None:
        from .check import INSTALL_HINT

        raise VocabExtendError(f"check-gguf needs llama.cpp's Python wheel: {INSTALL_HINT}")
    if not args.gguf.is_file():
        raise VocabExtendError(f"{args.gguf} does not exist" if not args.gguf.exists()
                               else f"{args.gguf} is a folder: give a .gguf file")
    from .check import check_gguf  # torch, transformers and llama.cpp load when the check runs

    result = check_gguf(args.gguf, args.tokenizer, text=args.text, model_dir=args.model, tolerance=args.tolerance)
    print(result.verdict())
    return 0 if result.ok else 1
