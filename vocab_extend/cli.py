"""``vocab-extend <subcommand>``: one command line for the whole pipeline.

Each subcommand lives in its own module, which defines ``add_arguments(parser)`` and ``run(args) -> int``;
this file only routes to them, so ``scripts/*.py`` are one-line wrappers around :func:`main`.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from typing import Sequence

from .errors import VocabExtendError

# What Ctrl-C leaves behind; a subcommand module may say otherwise with its own INTERRUPTED.
INTERRUPTED = "interrupted: no output was written"

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "merge": ("vocab_extend.extend", "train a new-language model and merge it into a base tokenizer"),
    "measure": ("vocab_extend.measure", "compare tokenizers on corpora: tokens, chars/token, reduction"),
    "init-model": ("vocab_extend.embeddings", "resize a model to an extended tokenizer and initialise new rows"),
    "evaluate-bpb": ("vocab_extend.evaluate", "bits per byte of a model on corpora"),
    "pretrain": ("vocab_extend.pretrain.cli", "continued pretraining from a YAML config"),
    "export-gguf": ("vocab_extend.gguf_export", "write an (extended) LLaMA model folder as a GGUF file for llama.cpp"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vocab-extend", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if command is not None and name != command:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        # no abbreviated options: a typo such as --warmup must not silently set --warmup-steps
        sub_parser = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run, _interrupted=getattr(module, "INTERRUPTED", INTERRUPTED),
                                _options=[o for a in sub_parser._actions for o in a.option_strings])  # noqa: SLF001
    return parser


def _unknown_options(known: list[str], command: str | None, extra: list[str]) -> str:
    """One sentence naming the first unknown option and the closest of ``known``."""
    first = next((e for e in extra if e.startswith("-")), extra[0])
    close = difflib.get_close_matches(first.split("=", 1)[0], known, n=1) if first.startswith("-") else []
    hint = f" (did you mean {close[0]}?)" if close else f"; see vocab-extend {command or ''} --help".rstrip()
    return f"unknown {'option' if first.startswith('-') else 'argument'} {first}{hint}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; user errors print one line (``error: ...``) and return 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in SUBCOMMANDS), None)
    parser = build_parser(command)
    args, extra = parser.parse_known_args(argv)
    if extra:
        print(f"error: {_unknown_options(args._options, command, extra)}", file=sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except VocabExtendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(args._interrupted, file=sys.stderr)
        return 130


def script_main(command: str) -> None:
    """Entry point of ``scripts/<command>.py``: ``vocab-extend <command>`` with the script's arguments."""
    sys.exit(main([command, *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
