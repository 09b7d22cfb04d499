"""Messages to the user: one line each on standard error, flushed at once (progress bars share the stream)."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
