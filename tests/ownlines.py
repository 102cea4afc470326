"""What a command may write on stderr in a user's shell: tlcore's own lines only.

The suite's processes run with TF_CPP_MIN_LOG_LEVEL=2 (conftest.py); a user's shell has no such
variable, so TensorFlow's C++ start-up lines reach stderr unless tlcore filters them. The tests
that run a command anyway (evaluate, predict, every export format) run it as a user's shell
would (`user_shell`) and check its stderr with `foreign_lines`."""
from __future__ import annotations

import os
import re

# tlcore's own stderr lines: the run folder, its warnings and errors, Keras' epoch progress
# (verbose=2 lines, or a bar drawn in place), serve's one line.
OWN = re.compile(r"^(run_dir: |warning: |error: |Epoch \d+/\d+$|\d+/\d+ (- |\[)|Serving )")


def foreign_lines(stderr: str) -> list[str]:
    """The stderr lines that are not tlcore's own (each part of a bar redrawn with \\r counts)."""
    parts = [p for line in stderr.splitlines() for p in line.split("\r")]
    return [p for p in parts if p.strip() and not OWN.match(p.strip())]


def user_shell(**env: str) -> dict:
    """This process's environment as a user's shell has it (no TF_CPP_MIN_LOG_LEVEL), plus `env`."""
    out = dict(os.environ, **env)
    out.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return out
