"""How the command line looks in a terminal: help with defaults, "did you mean", quiet start-up.

`HelpFormatter` adds "(default: X)" to every option's help where there is a default to show.
`closest` is the one "did you mean" of the engine (difflib). `quiet_stderr` drops TensorFlow's
start-up chatter (the oneDNN and CPU-feature lines, absl's "log messages before
InitializeLog" notice, absl warnings through Python logging) and the signature lines a
SavedModel export prints (`TensorSpec(...)`), while everything else passes through at once.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import threading

CHATTER = re.compile(
    r"^(?:[IW]\d{4} [\d:.]+\s+\d+ \S+\.cc:\d+\]"  # absl C++ log lines: I0000 00:00:17... port.cc:153]
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: "
    r"|WARNING:absl:"
    r"|Saved artifact at '"  # a SavedModel export's endpoint listing, about 100 lines
    r"|\* Endpoint '|Output Type:|Input Type:|Captures:|.*TensorSpec\()")


def closest(name: str, choices, n: int = 3) -> list[str]:
    """Up to `n` of `choices` that look like `name` (case-insensitive), best first."""
    choices = [str(c) for c in choices]
    lower = {c.lower(): c for c in choices}
    return [lower[m] for m in difflib.get_close_matches(str(name).lower(), list(lower), n=n, cutoff=0.6)]


def did_you_mean(name: str, choices) -> str:
    """' Did you mean X or Y?' (with its leading space), or '' when nothing is close."""
    found = closest(name, choices)
    return f" Did you mean {' or '.join(found)}?" if found else ""


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, with "(default: X)" after an option's help where X says something."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        if isinstance(default, (list, tuple)) and not default:
            return text
        return f"{text} (default: %(default)s)"


def _is_chatter(line: str) -> bool:
    return bool(line.strip()) and bool(CHATTER.match(line))


@contextlib.contextmanager
def quiet_stderr(enabled: bool = True):
    """While inside, lines written to fd 2 that are TensorFlow chatter are dropped; the rest is
    passed on unchanged (partial lines at once, so progress bars still move)."""
    if not enabled:
        yield
        return
    read_fd, write_fd = os.pipe()
    saved = os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)

    def pump():
        pending = b""
        with os.fdopen(read_fd, "rb", buffering=0) as src:
            while True:
                chunk = src.read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                out = b"".join(line + b"\n" for line in lines
                               if not _is_chatter(line.decode("utf-8", "replace")))
                if b"\r" in pending:
                    out += pending  # a progress bar redrawn in place: show it now
                    pending = b""
                if out:
                    os.write(saved, out)
            if pending and not _is_chatter(pending.decode("utf-8", "replace")):
                os.write(saved, pending)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        import sys

        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last writer: the pump drains and ends
        thread.join(timeout=5)
        os.close(saved)
