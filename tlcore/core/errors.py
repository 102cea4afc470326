"""The one exception type the engine raises for anything a user can fix."""
from __future__ import annotations

import re
from typing import Callable


class TLCoreError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it.

    The command line prints the message (one line) and exits 1; the app shows it next to the
    widget. Anything else that escapes is a bug.
    """


class UsageError(TLCoreError):
    """Arguments that do not fit together (the command line exits 2)."""


class OptionError(TLCoreError):
    """A bad value of one option. The message follows the option's name, or holds the marker
    ``{option}`` where the name goes; options it mentions are marked ``{option:NAME}`` (a message
    with markers is not prefixed).
    `phrased` says the names another way: the command line as flags, the app as labels."""

    def __init__(self, option: str, message: str):
        self.option = option
        self.template = message if "{option" in message else "{option} " + message
        super().__init__(self.phrased(option))

    @property
    def options(self) -> list[str]:
        """Every option the message names, this one first."""
        return [self.option] + [m for m in re.findall(r"\{option:(\w+)\}", self.template) if m != self.option]

    def phrased(self, name: str | Callable[[str], str]) -> str:
        """The message with the options named by `name`: a word for this option (the others keep
        their names), or a function from an option's name to its word."""
        word = name if callable(name) else (lambda option: name if option == self.option else option)
        text = re.sub(r"\{option:(\w+)\}", lambda m: word(m.group(1)), self.template)
        return text.replace("{option}", word(self.option))


def flag(option: str) -> str:
    """The command-line flag of an option: ``fine_tune_lr`` -> ``--fine-tune-lr``."""
    return "--" + option.replace("_", "-")
