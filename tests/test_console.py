"""The command line in a terminal: help for every option on stdout, "did you mean", quiet start-up."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from tlcore.cli import commands as cli
from tlcore.core.errors import TLCoreError


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def test_every_option_of_every_command_has_a_help_line():
    missing = []
    for name, sub in _subparsers(cli.build_parser()).items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"options without a help line: {missing}"


def test_help_goes_to_stdout_with_defaults(capfd):
    assert cli.main(["train", "--help"]) == 0
    out, err = capfd.readouterr()
    assert out.startswith("usage: tlcore train") and err == ""
    assert "--head-epochs N" in out and "(default: 10)" in out and "--schedule" in out
    assert out.count("\n\n\n") == 0 and not out.endswith("\n\n")


def test_did_you_mean_for_backbones_and_presets():
    from tlcore.backbones.catalog import get_backbone
    from tlcore.recipe.presets import get_preset

    with pytest.raises(TLCoreError, match="Did you mean MobileNetV2"):
        get_backbone("MobilenetV22")
    with pytest.raises(TLCoreError, match="Did you mean modern"):
        get_preset("modrn")
    with pytest.raises(TLCoreError) as err:
        get_preset("zzzz")
    assert "Did you mean" not in str(err.value)


def test_presets_fit_in_80_columns(capfd):
    assert cli.main(["presets"]) == 0
    lines = capfd.readouterr().out.splitlines()
    assert len(lines) > 10 and max(map(len, lines)) <= 80
    assert "scratch-small" in lines


@pytest.mark.slow
def test_tensorflow_chatter_is_hidden_unless_verbose(tmp_path):
    """The oneDNN and absl lines TensorFlow prints at import are dropped; --verbose keeps them;
    the engine's own messages pass either way."""
    code = ("import sys; from tlcore.cli.commands import main; import tlcore.cli.commands as c; "
            "c.COMMANDS['runs'] = lambda a: (__import__('tensorflow').constant(1), "
            "print('engine says hi', file=sys.stderr), [])[2]; sys.exit(main(sys.argv[1:]))")
    env = dict(os.environ, TLCORE_HOME=str(tmp_path))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    quiet = subprocess.run([sys.executable, "-c", code, "runs"], capture_output=True, text=True, env=env,
                           timeout=120)
    loud = subprocess.run([sys.executable, "-c", code, "runs", "--verbose"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert quiet.returncode == loud.returncode == 0
    assert "engine says hi" in quiet.stderr and "engine says hi" in loud.stderr
    assert "oneDNN" not in quiet.stderr and "absl" not in quiet.stderr
    assert "oneDNN" in loud.stderr or "absl" in loud.stderr  # what the quiet run hid


def test_chatter_lines():
    from tlcore.core.console import _is_chatter

    assert _is_chatter("I0000 00:00:1796183230.966470   26051 port.cc:153] oneDNN custom operations are on.")
    assert _is_chatter("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    assert _is_chatter("  args_0 (POSITIONAL_ONLY): TensorSpec(shape=(None, 32, 32, 3), dtype=tf.float32)")
    assert not _is_chatter("warning: The loss stayed at chance level")
    assert not _is_chatter("Epoch 1/3")
    assert not _is_chatter("run_dir: /tmp/x")


def test_cpp_error_lines_and_litert_notes_are_chatter():
    from tlcore.core.console import _is_chatter

    assert _is_chatter("E0000 00:00:1733331111.123456   4242 node_def_util.cc:682] NodeDef mentions attribute "
                       "use_unbounded_threadpool which is not in the op definition")
    assert _is_chatter("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    assert _is_chatter("fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, "
                       "output_inference_type: FLOAT32")
    assert not _is_chatter("error: --weights imagenet: the ImageNet weights of MobileNet are not on this machine")


def test_quiet_stderr_drops_chatter_blank_lines_and_warnings_but_keeps_progress(capfd):
    import warnings

    from tlcore.core.console import quiet_stderr, quiet_warnings

    with quiet_stderr():
        os.write(2, b"\nINFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n\nrun_dir: /r\n")
        os.write(2, b"1/2 [==>...] \r2/2 [=====]")
        os.write(2, b"\nEpoch 2/2\n")
    assert capfd.readouterr().err == "run_dir: /r\n1/2 [==>...] \r2/2 [=====]\nEpoch 2/2\n"
    with quiet_stderr(False):  # --verbose: everything passes
        os.write(2, b"\nINFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert capfd.readouterr().err == "\nINFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_warnings():
            warnings.warn("In the future `np.object` will be defined", FutureWarning)
        with quiet_warnings(False):
            warnings.warn("shown", FutureWarning)
    assert [str(w.message) for w in seen] == ["shown"]
