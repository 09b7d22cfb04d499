"""SIGTERM handled like Ctrl-C, and short critical sections that a signal cannot cut in half.

Under :func:`handle_signals` (the CLI installs it around every command) SIGINT raises
:class:`KeyboardInterrupt` and SIGTERM raises :class:`Terminated`, a subclass of it, so every ``finally`` and
``except KeyboardInterrupt`` that cleans up after Ctrl-C (temporary folders, locks, partial files) runs for
SIGTERM too. :func:`exit_code` gives the shell's convention: 130 for SIGINT, 143 for SIGTERM.

:func:`deferred` holds both signals while a few steps that must not be separated run (swapping an output
folder into place, removing a temporary folder) and delivers them right after. ``kill -9`` cannot be
caught; what it leaves is swept by the next run (see :mod:`vocab_extend.staging`).

>>> exit_code(Terminated()), exit_code(KeyboardInterrupt())
(143, 130)
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Any, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; handled exactly like Ctrl-C, with exit status 143."""


def exit_code(exc: BaseException) -> int:
    """128 + the signal number: 143 for :class:`Terminated`, 130 for any other ``KeyboardInterrupt``."""
    return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


def _raise(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def _installed(handler: Any) -> Iterator[dict[int, Any]]:
    """``handler`` for SIGINT and SIGTERM inside the block; yields the handlers it replaced, which come back
    after it. Outside the main thread (where Python cannot set handlers) it changes nothing."""
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    if not _in_main_thread():
        yield previous
        return
    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        yield previous
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@contextmanager
def handle_signals() -> Iterator[None]:
    """SIGINT -> ``KeyboardInterrupt``, SIGTERM -> :class:`Terminated` inside the block; the previous handlers
    come back after it. Outside the main thread (where Python cannot set handlers) it does nothing."""
    with _installed(_raise):
        yield


def _deliver(signum: int, handler: Any) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)  # the default action (SIGTERM ends the process), as if never held


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM during the block, then act on the first that came, as its handler says.

    Keep the block short and free of waits: a user pressing Ctrl-C inside it sees the effect only at its end.
    """
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    with _installed(hold) as previous:
        try:
            yield
        finally:
            if pending:  # also when the block failed: the signal is not lost
                signal.signal(pending[0], previous[pending[0]])
                _deliver(pending[0], previous[pending[0]])
