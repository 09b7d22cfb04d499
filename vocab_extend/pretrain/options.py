"""The config's ``--key value`` options, read from the components' source without importing them.

``vocab-extend pretrain --help`` lists every setting under its flat name with its section, its meaning (the
comment after the field in its dataclass: the one place it is written) and its default. The components
import torch and transformers, which take seconds to load, so this module reads their source with
:mod:`ast` instead: ``config.py`` says which dataclass owns each section (``SECTIONS``, with the module of
each class from its imports) and which keys are the run's own (``RUN_KEYS``); each dataclass gives its
fields, their flat names (``FLAT``), defaults and comments. ``tests/test_pretrain_config.py`` checks that
the result is :data:`~.config.FLAT` with the dataclasses' own defaults.

>>> found = {o.key: o for o in options()}
>>> found["save_every"].section, found["save_every"].name, found["save_every"].default
('checkpoint', 'every', 50)
>>> found["stages"].shown, found["overwrite"].boolean
('full:100', True)
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
_FACTORIES = {"list": list, "dict": dict, "tuple": tuple, "set": set}


@dataclass(frozen=True)
class Option:
    """One setting: its flat name ``key`` is ``section.name`` (``section`` ``None``: a key of the run)."""

    key: str
    section: str | None
    name: str
    boolean: bool
    default: Any  # the default as the config holds it (text for defaults that are not plain values)
    help: str

    @property
    def shown(self) -> str:
        """The default as ``--help`` prints it: YAML-like, stages as ``name:steps``."""
        if self.default is None:
            return "none"
        return self.default if isinstance(self.default, str) else json.dumps(self.default, ensure_ascii=False)


def _parse(module: str) -> tuple[ast.Module, list[str]]:
    text = (HERE / f"{module}.py").read_text(encoding="utf-8")
    return ast.parse(text), text.splitlines()


def _assigned(tree: ast.Module | ast.ClassDef, name: str) -> ast.expr | None:
    """The value assigned to ``name`` at the top of ``tree`` (plain or annotated assignment)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return node.value
    return None


def _default(value: ast.expr | None) -> Any:
    """A field's default: a literal, ``field(default_factory=...)`` of a type or a lambda, or its source."""
    if value is None:
        return None
    if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "field":
        factory = next((k.value for k in value.keywords if k.arg == "default_factory"), None)
        default = next((k.value for k in value.keywords if k.arg == "default"), None)
        if isinstance(factory, ast.Name) and factory.id in _FACTORIES:
            return _FACTORIES[factory.id]()
        return _default(factory.body if isinstance(factory, ast.Lambda) else default)
    try:
        return ast.literal_eval(value)
    except ValueError:
        pass
    if isinstance(value, ast.List) and all(isinstance(e, ast.Call) for e in value.elts):
        # a list of stages, StageConfig("full", 100): written as the --stages option takes it, full:100
        return ",".join(":".join(str(ast.literal_eval(a)) for a in e.args)  # type: ignore[attr-defined]
                        for e in value.elts)
    return ast.unparse(value)


def _fields(tree: ast.Module, lines: list[str], cls: str) -> list[tuple[str, bool, Any, str]]:
    """``(name, boolean, default, comment)`` of each field of dataclass ``cls`` (ClassVars left out)."""
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    found = []
    for item in node.body:
        if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
            continue
        annotation = ast.unparse(item.annotation)
        if annotation.startswith("ClassVar"):
            continue
        end = item.end_lineno or item.lineno
        comment = re.search(r"#\s*(.+)$", lines[end - 1][item.end_col_offset or 0:])
        found.append((item.target.id, annotation == "bool", _default(item.value),
                      comment.group(1).strip() if comment else item.target.id.replace("_", " ")))
    return found


@lru_cache(maxsize=1)
def options() -> tuple[Option, ...]:
    """Every option, the run's own keys first, then each section's settings in the order of ``SECTIONS``."""
    config, config_lines = _parse("config")
    modules = {alias.name: node.module for node in config.body if isinstance(node, ast.ImportFrom)
               and node.level == 1 and node.module for alias in node.names}
    sections = _assigned(config, "SECTIONS")
    run_keys = ast.literal_eval(_assigned(config, "RUN_KEYS"))  # type: ignore[arg-type]
    assert isinstance(sections, ast.Dict)
    found = [Option(name, None, name, boolean, default, text)
             for name, boolean, default, text in _fields(config, config_lines, "PretrainConfig") if name in run_keys]
    for key, value in zip(sections.keys, sections.values):
        section, cls = ast.literal_eval(key), value.id  # type: ignore[arg-type, attr-defined]
        tree, lines = _parse(modules[cls])
        flat_node = _assigned(next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls), "FLAT")
        flat = ast.literal_eval(flat_node) if flat_node is not None else {}
        found += [Option(flat.get(name, name), section, name, boolean, default, text)
                  for name, boolean, default, text in _fields(tree, lines, cls)]
    return tuple(found)
