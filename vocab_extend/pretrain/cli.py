"""``vocab-extend pretrain --config configs/NAME.yaml [--key value ...] [--resume | --continue-from RUN]``.

Every setting is also an option under its flat name (``--max-steps 20 --output-dir runs/x --eval-every 5``;
:data:`~.config.FLAT`); its value is parsed as YAML. The same command runs under
``torchrun --nproc_per_node N`` and ``accelerate launch``.

Importing this module is light (no torch, transformers or datasets): the options are read from the
components' source (:mod:`.options`), and the run's modules are imported by :func:`run`, so ``--help`` and
a bad option answer at once.
"""

from __future__ import annotations

import argparse

from .options import options

_PREFIX = "override_"
INTERRUPTED = "interrupted: checkpoints written so far are kept (--resume continues from the latest, if any)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a YAML config, e.g. configs/pico-smoke.yaml")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from the latest checkpoint in the output folder")
    parser.add_argument("--continue-from", metavar="RUN",
                        help="continue the finished run in folder RUN with more steps (--max-steps N, in all) or "
                             "more stages (--stages), from its last checkpoint, into a new --output-dir (RUN is only "
                             "read; without --config, RUN's config.yaml is the config)")
    group = parser.add_argument_group("config keys (override the YAML file; values are YAML)")
    for option in options():
        # a boolean key given bare (--overwrite) means true, as in the other subcommands
        flag = {"nargs": "?", "const": "true"} if option.boolean else {}
        place = f"{option.section}.{option.name}: " if option.section else ""
        text = f"{place}{option.help} (default: {option.shown})"
        group.add_argument(f"--{option.key.replace('_', '-')}", dest=_PREFIX + option.key, default=argparse.SUPPRESS,
                           metavar="VALUE", help=text.replace("%", "%%"), **flag)


def overrides_from_args(args: argparse.Namespace) -> dict[str, str]:
    return {k[len(_PREFIX):]: v for k, v in vars(args).items() if k.startswith(_PREFIX)}


def run(args: argparse.Namespace) -> int:
    from .loop import pretrain_from_file  # torch and transformers load here, after the options are parsed

    pretrain_from_file(args.config, overrides_from_args(args), resume=args.resume, continue_from=args.continue_from)
    return 0
