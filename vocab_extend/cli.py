"""``vocab-extend <subcommand>``: one command line for the whole pipeline.

Each subcommand lives in its own module, which defines ``add_arguments(parser)`` and ``run(args) -> int``;
this file only routes to them (:data:`SUBCOMMANDS`), so ``scripts/*.py`` are one-line wrappers around
:func:`main`. A subcommand module is light to import: it loads torch, transformers, sentencepiece and datasets
in ``run``, after its options are checked, so ``--help`` and a bad option answer in well under a second
(``bench/cli_speed.py``). Modules that are not light yet are reached through a function that imports them
when their subcommand is named.

Whatever goes wrong, the user reads one line at column 0 of stderr: ``error: <sentence>`` (exit 2) for bad
input, bad option values (argparse's own usage block is not printed) and a full / read-only / forbidden
disk; the command's ``interrupted: ...`` line for Ctrl-C (exit 130) and SIGTERM (exit 143). An open
progress bar is closed first, so the line never lands on the bar's line. Any other exception is a bug and
stays a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from types import ModuleType
from typing import Callable, Sequence

from .errors import VocabExtendError, storage_error
from .model import cache_cli
from .model.evaluate import cli as evaluate_cli
from .model.export import check_cli as check_gguf_cli
from .model.export import cli as export_cli
from .model.init import cli as init_cli
from .pretrain import cli as pretrain_cli
from .pretrain import export_cli as export_checkpoint_cli
from .signals import exit_code, handle_signals

# What Ctrl-C leaves behind; a subcommand module may say otherwise with its own INTERRUPTED.
INTERRUPTED = "interrupted: no output was written"


def _merge() -> ModuleType:
    from .tokenizer import cli  # not light yet: the families load sentencepiece and tokenizers at import

    return cli


def _measure() -> ModuleType:
    from .tokenizer import measure  # not light yet: sentencepiece, tokenizers and the families at import

    return measure


# subcommand -> (its module, or a function returning it, and its one-line help)
Route = ModuleType | Callable[[], ModuleType]
SUBCOMMANDS: dict[str, tuple[Route, str]] = {
    "merge": (_merge, "train a new-language model and merge it into a base tokenizer"),
    "measure": (_measure, "compare tokenizers on corpora: tokens, chars/token, reduction"),
    "init-model": (init_cli, "resize a model to an extended tokenizer and initialise new rows"),
    "evaluate-bpb": (evaluate_cli, "bits per byte of a model on corpora"),
    "pretrain": (pretrain_cli, "continued pretraining from a YAML config"),
    "export-checkpoint": (export_checkpoint_cli, "write a pretraining checkpoint as a Hugging Face model folder"),
    "export-gguf": (export_cli, "write an (extended) LLaMA model folder as a GGUF file for llama.cpp"),
    "cache": (cache_cli, "list the converted-model cache (size, last use), or remove it with --clean"),
    "check-gguf": (check_gguf_cli, "check a GGUF file in llama.cpp against its HF folder: ids and log-probabilities"),
}


class UsageError(Exception):
    """A bad command line, as argparse words it; :func:`main` prints it as one ``error:`` line."""

    def __init__(self, message: str, prog: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse without its two-line "usage: ... / prog: error: ..." block: errors raise :class:`UsageError`."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, self.prog)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``vocab-extend``, with the options of ``command`` only (none when ``None``: the other
    subcommands are listed with their help line, and their modules are not imported)."""
    parser = _Parser(prog="vocab-extend", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for name, (route, help_text) in SUBCOMMANDS.items():
        if name != command:
            sub.add_parser(name, help=help_text)
            continue
        module = route if isinstance(route, ModuleType) else route()
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


def close_progress_bars() -> None:
    """Close every open tqdm bar, so that what is printed next starts on a line of its own.

    A bar closed here ends its line (or clears it, for ``leave=False``) and is not drawn again when its
    iterator is garbage-collected after our message.
    """
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return
    for bar in list(getattr(tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:  # a bar whose stream is gone must not hide the message  # noqa: BLE001
            pass


def _say(line: str) -> None:
    close_progress_bars()
    sys.stderr.flush()
    sys.stderr.write(line + "\n")  # one write, so lines of several processes never interleave
    sys.stderr.flush()


def _escaped_storage_error(exc: BaseException, args: argparse.Namespace) -> VocabExtendError | None:
    """The last-resort net: a full disk, read-only location or denied permission (ENOSPC, EDQUOT, EROFS,
    EACCES, EPERM: the exception itself, its cause, or a library message quoting the OS error) becomes one
    sentence naming the path (the OSError's own, else the command's output folder); anything else, and such an
    error with no path to name, stays a traceback."""
    path: object = None
    writing = False
    current: BaseException | None = exc
    while current is not None and path is None:
        if isinstance(current, OSError) and current.filename:
            path = current.filename
        current = current.__cause__ or current.__context__
    if path is None:
        for name in ("output_dir", "output", "override_output_dir"):
            if getattr(args, name, None):
                path, writing = getattr(args, name), True
                break
    if path is None:
        return None
    return storage_error(exc, str(path), writing=writing)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; user errors print one line (``error: ...``) and return 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in SUBCOMMANDS), None)
    parser = build_parser(command)
    try:
        args, extra = parser.parse_known_args(argv)
    except UsageError as exc:
        hint = f"; see {exc.prog} --help" if "--help" not in str(exc) else ""
        _say(f"error: {exc}{hint}")
        return 2
    if extra:
        _say(f"error: {_unknown_options(args._options, command, extra)}")
        return 2
    with handle_signals():
        try:
            return int(args._run(args) or 0)
        except VocabExtendError as exc:
            _say(f"error: {exc}")
            return 2
        except KeyboardInterrupt as exc:  # Ctrl-C, and SIGTERM (signals.Terminated)
            _say(args._interrupted)
            return exit_code(exc)
        except Exception as exc:
            error = _escaped_storage_error(exc, args)
            if error is None:
                raise
            _say(f"error: {error}")
            return 2


def script_main(command: str) -> None:
    """Entry point of ``scripts/<command>.py``: ``vocab-extend <command>`` with the script's arguments."""
    sys.exit(main([command, *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
