"""The one exception type the CLI turns into a one-sentence message.

Every check on user input raises :class:`VocabExtendError` with a sentence that says what is wrong and what
to do about it; the CLI prints ``error: <sentence>`` and exits with status 2 instead of a traceback.
"""

from __future__ import annotations


class VocabExtendError(Exception):
    """A problem with the user's input or environment, explained in one sentence."""
