"""The one exception type the engine raises for anything a user can fix."""
from __future__ import annotations


class TLCoreError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it.

    The command line prints the message (one line) and exits 1; the app shows it next to the
    widget. Anything else that escapes is a bug.
    """


class UsageError(TLCoreError):
    """Arguments that do not fit together (the command line exits 2)."""
