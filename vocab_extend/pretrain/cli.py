"""``vocab-extend pretrain --config configs/NAME.yaml [--key value ...] [--resume]``.

Every setting is also an option under its flat name (``--max-steps 20 --output-dir runs/x --eval-every 5``;
:data:`~.config.FLAT`); its value is parsed as YAML. The same command runs under
``torchrun --nproc_per_node N`` and ``accelerate launch``.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re

from .config import FLAT, SECTIONS, PretrainConfig, load_config
from .loop import pretrain

_PREFIX = "override_"
INTERRUPTED = "interrupted: checkpoints written so far are kept (--resume continues from the latest, if any)"


def field_help(cls: type) -> dict[str, str]:
    """Each field's meaning, from the comment after it in the dataclass (the one place it is written)."""
    found: dict[str, str] = {}
    for line in inspect.getsource(cls).splitlines():
        match = re.match(r"\s+(\w+): [^#]*#\s*(.+)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def _default(f: dataclasses.Field) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a YAML config, e.g. configs/pico-smoke.yaml")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the latest checkpoint in the output folder")
    group = parser.add_argument_group("config keys (override the YAML file; values are YAML)")
    for key, (section, name) in FLAT.items():
        cls = SECTIONS[section] if section else PretrainConfig
        f = next(f for f in dataclasses.fields(cls) if f.name == name)
        # a boolean key given bare (--overwrite) means true, as in the other subcommands
        flag = {"nargs": "?", "const": "true"} if f.type in (bool, "bool") else {}
        default = _default(f)
        shown = "none" if default is None else json.dumps(default, default=str, ensure_ascii=False)
        place = f"{section}.{name}: " if section else ""
        text = f"{place}{field_help(cls).get(name, name.replace('_', ' '))} (default: {shown})"
        group.add_argument(f"--{key.replace('_', '-')}", dest=_PREFIX + key, default=argparse.SUPPRESS,
                           metavar="VALUE", help=text.replace("%", "%%"), **flag)


def overrides_from_args(args: argparse.Namespace) -> dict[str, str]:
    return {k[len(_PREFIX):]: v for k, v in vars(args).items() if k.startswith(_PREFIX)}


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, overrides_from_args(args))
    pretrain(config, resume=args.resume)
    return 0
