"""The one exception type the engine raises for anything a user can fix."""
from __future__ import annotations


class TLCoreError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it.

    The command line prints the message (one line) and exits 1; the app shows it next to the
    widget. Anything else that escapes is a bug.
    """


class UsageError(TLCoreError):
    """Arguments that do not fit together (the command line exits 2)."""


class OptionError(TLCoreError):
    """A bad value of one option. The message follows the option's name, or holds the marker
    ``{option}`` where the name goes; `phrased` puts another name there (a flag, a label)."""

    def __init__(self, option: str, message: str):
        self.option = option
        self.template = message if "{option}" in message else "{option} " + message
        super().__init__(self.phrased(option))

    def phrased(self, name: str) -> str:
        return self.template.replace("{option}", name)


def flag(option: str) -> str:
    """The command-line flag of an option: ``fine_tune_lr`` -> ``--fine-tune-lr``."""
    return "--" + option.replace("_", "-")
