"""How the command line looks in a terminal: help with defaults, "did you mean", quiet start-up.

`HelpFormatter` adds "(default: X)" to every option's help where there is a default to show.
`closest` is the one "did you mean" of the engine (difflib). `quiet_stderr` drops the C++ log
lines of TensorFlow, absl, LiteRT and XNNPACK (info, warning and error lines such as the
oneDNN and CPU-feature notes, absl's "log messages before InitializeLog" notice, a NodeDef's
unknown attribute, "Created TensorFlow Lite XNNPACK delegate"), absl warnings through Python
logging, blank lines between them, and the signature lines a SavedModel export prints
(`TensorSpec(...)`), while everything else passes through at once. `quiet_warnings` silences
Python warnings of libraries (numpy's FutureWarning from Keras' ONNX exporter, say).
Both stand aside with ``--verbose``.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import json
import sys
import threading
from typing import Any

CHATTER = re.compile(
    r"^(?:[IWE]\d{4} [\d:.]+\s+\d+ \S+\.cc:\d+\]"  # absl C++ log lines: I0000 00:00:17... port.cc:153]
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|(?:INFO|WARNING|VERBOSE): (?:Created TensorFlow Lite|Initialized TensorFlow Lite|TfLite|XNNPack|"
    r"Replacing \d+ out of \d+ node)"  # LiteRT / TFLite runtime notes
    r"|To enable the following instructions: "
    r"|fully_quantize: \d+, inference_type: "  # the TFLite converter's calibration summary
    r"|WARNING:absl:"
    r"|Saved artifact at '"  # a SavedModel export's endpoint listing, about 100 lines
    r"|\* Endpoint '|Output Type:|Input Type:|Captures:|.*TensorSpec\()")


# Words the parser repeats.
TTA_HELP = ("test-time augmentation: average the probabilities over the image and its mirror image "
            "(flip, 2 passes), plus a centre crop and its mirror image (flip+crops, 4 passes); the model "
            "is not changed")
RUN = "a run folder, or a run id in the runs folder"
RUNS_DIR = "the runs folder (default: the home's runs/)"


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


_STDERR_TTY: list[bool] = []  # whether fd 2 was a terminal before `quiet_stderr` piped it


def stderr_is_tty() -> bool:
    """Whether stderr is a terminal (as it was before `quiet_stderr` put a filter in between), so
    progress bars are drawn in place only there."""
    return _STDERR_TTY[-1] if _STDERR_TTY else os.isatty(2)


def _is_chatter(line: str) -> bool:
    return bool(line.strip()) and bool(CHATTER.match(line))


@contextlib.contextmanager
def quiet_stderr(enabled: bool = True):
    """While inside, lines written to fd 2 that are TensorFlow chatter are dropped; the rest is
    passed on unchanged (partial lines at once, so progress bars still move)."""
    if not enabled:
        yield
        return
    _STDERR_TTY.append(os.isatty(2))
    read_fd, write_fd = os.pipe()
    saved = os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)

    def pump():
        pending = b""
        line_start = True  # whether what was passed on so far ends a line
        with os.fdopen(read_fd, "rb", buffering=0) as src:
            while True:
                chunk = src.read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                out = b""
                for line in lines:
                    text = line.decode("utf-8", "replace")
                    # a blank line at the start of a line is spacing around chatter; one right after
                    # a progress bar drawn in place ends that bar's line
                    if _is_chatter(text) or (line_start and not text.strip()):
                        continue
                    out += line + b"\n"
                    line_start = True
                if b"\r" in pending:
                    out += pending  # a progress bar redrawn in place: show it now
                    pending, line_start = b"", False
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
        thread.join(timeout=2)  # a child process still holding the pipe must not hold up the exit
        os.close(saved)
        _STDERR_TTY.pop()


@contextlib.contextmanager
def quiet_warnings(enabled: bool = True):
    """While inside, Python warnings are not shown (tlcore itself warns in words, not through
    `warnings`); with `enabled` False, nothing changes."""
    if not enabled:
        yield
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def human_text(result: Any) -> str:
    """A command's result as text for a terminal: tables, the plan, presets in 80 columns."""
    if isinstance(result, list) and result and set(result[0]) == {"name", "description", "options"}:
        import textwrap  # tlcore presets: readable in 80 columns

        return "\n\n".join(
            f"{p['name']}\n" + textwrap.fill(p["description"], 78, initial_indent="  ", subsequent_indent="  ")
            + "\n" + textwrap.fill(" ".join(_as_flags(p["options"])), 78, initial_indent="  options: ",
                                   subsequent_indent="    ")
            for p in result)
    if isinstance(result, dict) and {"layers", "stages", "warnings"} <= set(result):  # tlcore plan
        lines = [human_text(result["layers"]), ""]
        for stage, info in result["stages"].items():
            lines.append(f"stage {stage}: {info['epochs']} epochs, {info['trainable']:,} trainable, "
                         f"{info['non_trainable']:,} non-trainable" + (f" ({info['reason']})" if info.get("reason") else ""))
        lines += [f"warning: {w}" for w in result["warnings"]]
        return "\n".join(lines)
    if isinstance(result, list):
        if result and isinstance(result[0], dict):
            keys = [k for k in result[0] if not isinstance(result[0][k], (list, dict))
                    and not k.endswith("_interval")]  # an interval shows in its accuracy's cell
            rows = [[_accuracy_cell(r, k) for k in keys] for r in result]
            widths = [max(len(k), *(len(r[i]) for r in rows)) for i, k in enumerate(keys)]
            lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths))]
            lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
            extra = [k for k in result[0] if k not in keys]
            if extra == ["top"]:
                lines = [f"{r['image']}: " + (", ".join(f"{t['label']} {t['probability']:.3f}"
                                                        for t in r["top"]) or r.get("error", ""))
                         for r in result]
            return "\n".join(lines)
        return "\n".join(cell(r) for r in result)
    if isinstance(result, dict):
        return "\n".join(_dict_lines(result))
    return str(result)


# An accuracy's 95% interval and its number of images, by the accuracy's key in a result
INTERVALS = {"accuracy": ("accuracy_interval", "count"),
             "val_accuracy": ("val_accuracy_interval", "val_count"),
             "test_accuracy": ("test_accuracy_interval", "test_count")}


def accuracy_words(accuracy: float | None, interval: list | None, n: int | None) -> str:
    """`0.833 (95% interval 0.655-0.927, n=18)`: an accuracy as the command line prints it."""
    if accuracy is None:
        return ""
    if not interval:
        return cell(accuracy)
    return f"{accuracy:.3f} (95% interval {interval[0]:.3f}-{interval[1]:.3f}" + (f", n={n})" if n else ")")


def _accuracy_cell(row: dict, key: str) -> str:
    if key in INTERVALS and row.get(INTERVALS[key][0]):
        return accuracy_words(row.get(key), row[INTERVALS[key][0]], row.get(INTERVALS[key][1]))
    return cell(row.get(key))


def _dict_lines(result: dict) -> list[str]:
    folded = {INTERVALS[k][0] for k in INTERVALS if k in result and INTERVALS[k][0] in result}
    lines = []
    for k, v in result.items():
        if k in folded:
            continue
        if k in INTERVALS and INTERVALS[k][0] in result:
            lines.append(f"{k}: {_accuracy_cell(result, k)}")
        elif k == "seeds" and isinstance(v, dict) and "runs" in v:
            lines += _seeds_lines(v)
        elif k == "ensemble" and isinstance(v, dict) and "members" in v:
            lines.append("ensemble of: " + ", ".join(str(m.get("run_dir")) for m in v["members"]))
        elif k == "baselines" and isinstance(v, list):
            lines += [f"baseline: {b.get('name')}: {accuracy_words(b.get('test_accuracy'), b.get('test_accuracy_interval'), b.get('test_count'))}"
                      for b in v if isinstance(b, dict)] or ["baselines: none"]
        else:
            lines.append(f"{k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else cell(v)}")
    return lines


def _seeds_lines(group: dict) -> list[str]:
    """`tlcore train --seeds N` in words: each run, then the mean and spread over seeds."""
    lines = [f"seeds: {group.get('n')} runs, seeds {', '.join(str(s) for s in group.get('seeds') or [])} "
             f"(group {group.get('group')})"]
    for r in group["runs"]:
        lines.append(f"  seed {r.get('seed')}: {r.get('state')}, test_accuracy {_accuracy_cell(r, 'test_accuracy')}, "
                     f"val_accuracy {_accuracy_cell(r, 'val_accuracy')}: {r.get('run_dir')}")
    for key in ("test_accuracy", "val_accuracy"):
        if group.get(f"{key}_mean") is not None:
            lines.append(f"{key} over seeds: mean {group[f'{key}_mean']:.3f}, std {group[f'{key}_std']:.3f}, "
                         f"min {group[f'{key}_min']:.3f}, max {group[f'{key}_max']:.3f}")
    return lines


def _as_flags(options: dict) -> list[str]:
    out = []
    for key, value in options.items():
        if value is False or value == []:
            continue
        name = "--" + key.replace("_", "-")
        out.append(name if value is True else f"{name} {' '.join(map(str, value)) if isinstance(value, list) else value}")
    return out


def cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


@contextlib.contextmanager
def stdout_to_stderr():
    """Send everything written to fd 1 (Python, Keras, TensorFlow's C++) to stderr meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield os.fdopen(os.dup(saved), "w", encoding="utf-8")
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
