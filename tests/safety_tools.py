"""Shared by the safety tests: a second process that holds a lock or a staging folder, dead pids, mounts."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]

# A child that takes a lock or a staging folder (directly, or through the CLI so that its signal handling
# runs), writes the marker file once it holds it, then waits to be killed.
CHILD = r"""
import pathlib, sys, time, types
mode, target, marker = sys.argv[1:4]
if mode == "lock":
    from vocab_extend.locks import output_lock
    with output_lock(target):
        pathlib.Path(marker).write_text("held")
        time.sleep(600)
elif mode == "stage":
    from vocab_extend.staging import staging_folder
    with staging_folder(target, overwrite=True) as tmp:
        (tmp / "part.bin").write_bytes(b"x" * 100_000)
        pathlib.Path(marker).write_text(str(tmp))
        time.sleep(600)
elif mode == "cli-stage":
    from vocab_extend import cli
    from vocab_extend.staging import staging_folder
    module = types.ModuleType("safety_child_command")
    module.add_arguments = lambda parser: parser.add_argument("--output-dir")
    def run(args):
        with staging_folder(args.output_dir, overwrite=True) as tmp:
            (tmp / "part.bin").write_bytes(b"x" * 100_000)
            pathlib.Path(marker).write_text(str(tmp))
            time.sleep(600)
        return 0
    module.run = run
    sys.modules[module.__name__] = module
    cli.SUBCOMMANDS["safety-child"] = (module, "test child")
    sys.exit(cli.main(["safety-child", "--output-dir", target]))
"""


def env() -> dict[str, str]:
    """The environment of a child: this checkout's package first."""
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def wait_for(path: Path, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    """Wait until ``path`` exists (the child's marker); fail if the child died first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            out = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"child exited with {proc.returncode} before {path} appeared: {out}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.02)


def start_child(mode: str, target: Path, marker: Path) -> subprocess.Popen:
    """Start a child in ``mode`` (lock, stage, cli-stage) on ``target``; return once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(target), str(marker)], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT))
    wait_for(marker, proc)
    return proc


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def try_mount(args: list[str]) -> bool:
    """Run ``mount ARGS``; whether it worked (it needs root and a permissive container)."""
    try:
        return subprocess.run(["mount", *args], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True, timeout=30)


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``256k``, ``4m``) mounted on ``folder`` for the block; skips the test where
    mounting is not allowed."""
    import pytest

    folder.mkdir(parents=True, exist_ok=True)
    if not try_mount(["-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]):
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        umount(folder)
