"""``vocab-extend`` reaches its subcommands through imports the graph can see, and stays light: importing
:mod:`vocab_extend.cli` and building its parser (for ``--help`` and for a light subcommand's options) loads
no model or tokenizer library, so ``--help`` and a bad option answer fast (timed in ``bench/cli_speed.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from vocab_extend import cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "sentencepiece", "datasets")
# subcommands whose module is light to import (the others are routed through a function, see cli.py)
LIGHT = ("init-model", "evaluate-bpb", "export-gguf")


def _loaded_after(code: str) -> list[str]:
    """The heavy libraries in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"import json, sys\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_top_level_parser_loads_no_heavy_library() -> None:
    assert _loaded_after("from vocab_extend import cli\ncli.build_parser()") == []


@pytest.mark.parametrize("command", LIGHT)
def test_a_light_subcommand_builds_its_options_without_a_heavy_library(command: str) -> None:
    assert _loaded_after(f"from vocab_extend import cli\ncli.build_parser({command!r})") == []


def test_help_and_a_bad_option_run_without_a_heavy_library() -> None:
    code = ("from vocab_extend import cli\n"
            "assert cli.main(['init-model', '--bogus']) == 2\n"
            "assert cli.main(['evaluate-bpb', '--model', 'm', '--corpus', 'a=x', '--batch-size', '0']) == 2")
    assert _loaded_after(code) == []


def test_every_route_is_a_module_with_add_arguments_and_run() -> None:
    for name, (route, help_text) in cli.SUBCOMMANDS.items():
        module = route if isinstance(route, ModuleType) else route()
        assert callable(module.add_arguments) and callable(module.run), name
        assert help_text and "\n" not in help_text
    for name in LIGHT:
        assert isinstance(cli.SUBCOMMANDS[name][0], ModuleType), name  # imported at the top of cli.py


def test_each_subcommand_help_lists_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    for name in cli.SUBCOMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: vocab-extend {name}") and "--" in out
