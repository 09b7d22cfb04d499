"""Messages to the user: one line each on standard error, flushed at once (progress bars share the stream)."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, Iterator


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def quiet_transformers() -> None:
    """Silence transformers' info and warning logs (a user can do nothing about them); errors still show."""
    from transformers.utils import logging

    logging.set_verbosity_error()


@contextlib.contextmanager
def ticking(bar: Any, every: float = 5.0) -> Iterator[Any]:
    """Redraw ``bar`` (a tqdm bar) every ``every`` seconds while the block runs, so that its elapsed time moves
    while one long unit of work (a batch, a training step) has not ended yet: the screen is never still for
    long. A disabled bar is left alone.

    >>> from tqdm import tqdm
    >>> with tqdm(total=1, disable=True) as bar, ticking(bar, every=0.01):
    ...     _ = bar.update(1)
    """
    if getattr(bar, "disable", True):
        yield bar
        return
    done = threading.Event()

    def tick() -> None:
        while not done.wait(every):
            bar.refresh()

    thread = threading.Thread(target=tick, name="progress-tick", daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        done.set()
        thread.join()
