"""The CLI's last words: one ``error:`` line at column 0, SIGTERM like Ctrl-C, real bugs still tracebacks."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest

from safety_tools import ROOT, env
from vocab_extend import cli
from vocab_extend.cli import main
from vocab_extend.errors import VocabExtendError
from vocab_extend.signals import Terminated, deferred, handle_signals


@pytest.fixture()
def command(monkeypatch):
    """Register ``vocab-extend fake``, whose ``run`` is the function given to the returned setter."""
    module = types.ModuleType("safety_fake_command")
    module.add_arguments = lambda parser: parser.add_argument("--output-dir")

    def use(run):
        module.run = run

    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli.SUBCOMMANDS, "fake", (module, "a test command"))
    return use


def _only_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ------------------------------------------------------------------------------------------- argparse


@pytest.mark.parametrize("argv, message", [
    (["merge", "--vocab-size", "abc"],
     "error: --vocab-size abc: give a number (16000) or one per language (th=8000,vi=8000)"),
    (["init-model", "--model", "m"],
     "error: the following arguments are required: --tokenizer, --output-dir; see vocab-extend init-model --help"),
    (["no-such-command"], "error: argument SUBCOMMAND: invalid choice: 'no-such-command'"),
])
def test_bad_option_values_are_one_error_line(capsys, argv: list[str], message: str) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert _only_line(captured.err).startswith(message) and captured.out == ""


def test_help_still_prints_help(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["merge", "--help"])
    assert info.value.code == 0 and "--vocab-size" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- progress bars


def _failing_bar(args) -> int:
    from tqdm.auto import tqdm

    for i in tqdm(range(100), desc="working", mininterval=0):
        if i == 40:
            raise VocabExtendError("the corpus ran out")
    return 0


def test_error_after_an_open_progress_bar_starts_on_its_own_line(capsys, command) -> None:
    command(_failing_bar)
    assert main(["fake"]) == 2
    err = capsys.readouterr().err
    assert "working" in err and "\nerror: the corpus ran out\n" in err
    assert err.endswith("error: the corpus ran out\n")  # the bar is not drawn again after the message


def test_error_after_a_progress_bar_in_a_real_process(tmp_path: Path) -> None:
    code = (
        "import sys, types\n"
        "from vocab_extend import cli\n"
        "from test_safety_cli import _failing_bar\n"
        "m = types.ModuleType('fake_mod'); m.add_arguments = lambda p: None; m.run = _failing_bar\n"
        "sys.modules['fake_mod'] = m; cli.SUBCOMMANDS['fake'] = (m, 'x')\n"
        "sys.exit(cli.main(['fake']))\n"
    )
    environment = env()
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), environment["PYTHONPATH"]])
    proc = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, cwd=str(ROOT),
                          timeout=120)
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 2 and "\r" in err  # a bar was drawn
    assert err.endswith("\nerror: the corpus ran out\n") and err.count("error:") == 1


# ------------------------------------------------------------------------------------------- storage net


@pytest.mark.parametrize("error, expected", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/out/model.safetensors"),
     "error: cannot write /data/out/model.safetensors: no space left on the device"),
    (PermissionError(errno.EACCES, "Permission denied", "/data/corpus.txt"),
     "error: permission denied on /data/corpus.txt: fix its permissions or choose another location"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out"),
     "error: cannot write /mnt/ro/out: it is on a read-only file system"),
    (RuntimeError("safetensors: IoError(Os { code: 28, kind: StorageFull })"),  # no path: the --output-dir
     "error: cannot write OUT: no space left on the device"),
])
def test_disk_errors_escaping_a_command_are_one_sentence(capsys, command, tmp_path, error, expected) -> None:
    def run(args):
        raise error

    command(run)
    assert main(["fake", "--output-dir", str(tmp_path)]) == 2
    line = _only_line(capsys.readouterr().err)
    assert line.startswith(expected.replace("OUT", str(tmp_path)))


@pytest.mark.parametrize("error", [
    FileNotFoundError(errno.ENOENT, "No such file or directory", "x"), ValueError("a bug"), OSError("no errno"),
])
def test_other_exceptions_stay_visible(command, error) -> None:
    def run(args):
        raise error

    command(run)
    with pytest.raises(type(error)):
        main(["fake", "--output-dir", "out"])


# ------------------------------------------------------------------------------------------- signals


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_is_handled_like_ctrl_c(capsys, command, signum: int, code: int) -> None:
    seen = []

    def run(args):
        try:
            os.kill(os.getpid(), signum)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
            raise AssertionError("the signal did not interrupt the command")
        finally:
            seen.append("cleanup ran")

    command(run)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["fake"]) == code
    assert _only_line(capsys.readouterr().err) == "interrupted: no output was written"
    assert seen == ["cleanup ran"] and signal.getsignal(signal.SIGTERM) is before


def test_deferred_holds_a_signal_until_the_block_ends() -> None:
    steps = []
    with handle_signals():
        with pytest.raises(Terminated):
            with deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):
                    pass
                steps.append("the whole block ran")
    assert steps == ["the whole block ran"]
