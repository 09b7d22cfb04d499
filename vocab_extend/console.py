"""Messages to the user: one line each on standard error, flushed at once (progress bars share the stream)."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def quiet_transformers() -> None:
    """Silence transformers' info and warning logs (a user can do nothing about them); errors still show."""
    from transformers.utils import logging

    logging.set_verbosity_error()
