"""The package's shape, as docs/architecture.md states it: no import circle, no upward import, the model
side never reaches into a tokenizer family, small modules, and imports at the top of modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vocab_extend"
# Lower layers never import higher ones (docs/architecture.md, "Where things live").
LAYERS = (
    ("errors", "console", "signals", "hub"),
    ("locks", "atomic", "jsonfile", "staging", "scripts", "corpus", "heldout", "plots", "settings", "metadata", "sources"),
    ("families",),
    ("tokenizer",),
    ("model",),
    ("pretrain",),
    ("cli", "__init__"),
)
MAX_LINES = 400
# Family names only the families (and their registry) may spell: everything else asks a family.
FAMILY_NAMES = ("sentencepiece", "bytelevel")
# module -> why it may spell one (none today)
FAMILY_NAME_ALLOWED: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    if node.level:
        base = current.split(".") if is_package else current.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    targets = []
    for alias in node.names:
        candidate = f"{prefix}.{alias.name}"
        targets.append(candidate if candidate in MODULES else prefix)
    return targets


def imports_of(name: str) -> list[tuple[str, bool]]:
    """``(imported package module, at module level?)`` for every import of a vocab_extend module."""
    return _imports_in(name, ast.parse(MODULES[name].read_text(encoding="utf-8")))


def _imports_in(name: str, tree: ast.Module) -> list[tuple[str, bool]]:
    path = MODULES[name]
    top_level = {id(node) for node in tree.body}
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            targets = _resolve(name, path.name == "__init__.py", node)
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("vocab_extend") and target != name:
                found.append((target, id(node) in top_level))
    return found


GRAPH = {name: sorted({t for t, _ in imports_of(name)}) for name in MODULES}


def layer(name: str) -> int:
    first = name.split(".")[1] if "." in name else "__init__"
    for index, members in enumerate(LAYERS):
        if first in members:
            return index
    raise AssertionError(f"{name} is in no layer: add it to LAYERS and docs/architecture.md")


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        layer(name)


def test_no_import_circle() -> None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in GRAPH[node]:
            if state.get(target) == 1:
                pytest.fail("import circle: " + " -> ".join(stack[stack.index(target):] + [target]))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for name in MODULES:
        if name not in state:
            visit(name)


def test_no_upward_import() -> None:
    upward = [(a, b) for a, targets in GRAPH.items() for b in targets if layer(b) > layer(a)]
    assert not upward, upward


def test_model_side_never_imports_a_family_internal() -> None:
    for name, targets in GRAPH.items():
        if name.startswith(("vocab_extend.model", "vocab_extend.pretrain", "vocab_extend.tokenizer")):
            internals = [t for t in targets if t.startswith("vocab_extend.families.")
                         and t != "vocab_extend.families.interface"]
            assert not internals, (name, internals)


def _late_import_allowed(name: str, function: str) -> bool:
    """A package module may be imported inside a function only to keep ``--help`` fast: by ``cli.py``'s
    routes, and by a subcommand module's ``run`` (which imports the command's job once the options are
    checked). The arrow stays in the graph (``imports_of`` reads every import), so layers and circles hold."""
    if name == "vocab_extend.cli":
        return True
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    return function == "run" and {"add_arguments", "run"} <= defined


def _late_imports(name: str) -> list[tuple[str, str]]:
    """``(imported package module, enclosing top-level function)`` for each import inside a function."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found = []
    for function in (n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        for node in ast.walk(function):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                inner = ast.Module(body=[node], type_ignores=[])
                found += [(target, function.name) for target, _ in _imports_in(name, inner)]
    return found


def test_package_modules_are_imported_at_the_top() -> None:
    local = [(name, target) for name in MODULES for target, top in imports_of(name) if not top]
    late = {(name, target) for name in MODULES for target, function in _late_imports(name)
            if _late_import_allowed(name, function)}
    assert not [pair for pair in local if pair not in late], local


MAX_FUNCTION_LINES = 60


def _defines_a_subcommand(name: str) -> bool:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    return {"add_arguments", "run"} <= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


SUBCOMMAND_MODULES = {name for name in MODULES if _defines_a_subcommand(name)}


def test_only_cli_imports_a_subcommand_module() -> None:
    """A command line is a leaf: the jobs never reach into one (``cli.py`` routes to them)."""
    assert len(SUBCOMMAND_MODULES) >= 6, SUBCOMMAND_MODULES
    reaching = [(name, target) for name, targets in GRAPH.items() if name != "vocab_extend.cli"
                for target in targets if target in SUBCOMMAND_MODULES]
    assert not reaching, reaching
    assert SUBCOMMAND_MODULES <= set(GRAPH["vocab_extend.cli"]), SUBCOMMAND_MODULES - set(GRAPH["vocab_extend.cli"])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_functions_are_short(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{name}: {long}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_small(name: str) -> None:
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def family_name_literals(name: str) -> list[tuple[int, str]]:
    """``(line, text)`` of every string constant of ``name`` that is a family's name (docstrings aside)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    docstrings = _docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            and node.value.strip().lower() in FAMILY_NAMES]


def test_no_family_name_is_spelled_outside_the_families() -> None:
    """Outside ``families/`` no code compares with or passes a family's name: it asks the registry."""
    spelled = {name: found for name in MODULES if not name.startswith("vocab_extend.families")
               and name not in FAMILY_NAME_ALLOWED and (found := family_name_literals(name))}
    assert not spelled, spelled


def test_the_family_name_checker_sees_literals() -> None:
    """The check is not empty by mistake: the family's own name is seen where it is spelled."""
    assert [text for _, text in family_name_literals("vocab_extend.families.bytelevel")] == ["bytelevel"]


def test_the_checker_sees_imports() -> None:
    """The graph is not empty by mistake: known edges are there."""
    assert "vocab_extend.families" in GRAPH["vocab_extend.tokenizer.job"]
    assert "vocab_extend.errors" in GRAPH["vocab_extend.sources"]
    assert ("vocab_extend.families.interface", True) in imports_of("vocab_extend.families.sentencepiece")
