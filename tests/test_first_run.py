"""What a newcomer meets first: a training that cannot start fails at once and leaves nothing
behind, failed runs say why and can be pruned, a backbone name matched loosely says so, stderr
holds only tlcore's own lines, and the install prints no setuptools warning."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from datagen import write_split
from ownlines import foreign_lines, user_shell
from test_cli import tl
from tlcore.core.errors import flag
from tlcore.backbones import assets
from tlcore.backbones.catalog import inexact_match
from tlcore.cli import commands
from tlcore.core.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]

def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- ImageNet weights: on this machine or reachable, known before TensorFlow ------------------

@pytest.mark.parametrize("name,size", [("VGG16", None), ("MobileNet", 128), ("MobileNet", 96),
                                       ("MobileNetV2", 96), ("MobileNetV2", 300), ("MobileNetV3Small", 160),
                                       ("EfficientNetV2B0", None), ("NASNetMobile", None)])
def test_imagenet_file_names_are_the_ones_keras_asks_for(name, size):
    from tlcore.backbones.build import imagenet_weights_file

    assert assets.imagenet_file(name, size) == imagenet_weights_file(name, False, size)


def test_every_catalog_backbone_has_its_imagenet_file_name():
    from tlcore.backbones.catalog import CATALOG

    for name in CATALOG:
        assert assets.imagenet_file(name.lower()).endswith(".h5"), name


def test_probe_reports_a_closed_port_and_an_unresolvable_name(monkeypatch):
    port = closed_port()
    why = assets.weights_reachable(f"127.0.0.1:{port}")
    assert why.startswith(f"cannot connect to 127.0.0.1:{port}")

    def unresolvable(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    monkeypatch.setenv(assets.PROBE_ENV, "weights.invalid:443")  # the target comes from the env var too
    assert assets.weights_reachable() == "cannot resolve weights.invalid (Name or service not known)"


def test_probe_gives_up_while_name_resolution_still_hangs(monkeypatch):
    release = threading.Event()
    asked = threading.Event()

    def hanging(host, *args, **kwargs):
        asked.set()
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    try:
        why = assets.weights_reachable("slow.invalid:443", timeout=0.2)
        assert asked.is_set() and not release.is_set()  # answered while the resolver still hung
        assert why == "slow.invalid:443 did not answer within 0.2 s"
    finally:
        release.set()


def test_probe_target_must_be_host_and_port():
    assert assets.probe_target("127.0.0.1:9") == ("127.0.0.1", 9)
    assert assets.probe_target("[::1]:9") == ("::1", 9)
    with pytest.raises(Exception, match="HOST:PORT"):
        assets.probe_target("localhost")


def test_weights_on_this_machine_need_no_network(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv(assets.PROBE_ENV, f"127.0.0.1:{closed_port()}")
    with pytest.raises(Exception) as err:
        assets.check_imagenet_weights("MobileNetV2", 96)
    text = err.value.phrased(flag)  # as the command line says it
    assert text.startswith("--weights imagenet: the ImageNet weights of MobileNetV2 are not on this machine")
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in text
    assert str(tmp_path / "models") in text and "--weights none" in text
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / assets.imagenet_file("MobileNetV2", 96)).write_bytes(b"weights")
    assets.check_imagenet_weights("MobileNetV2", 96)  # there: no probe, no error


def test_offline_train_fails_at_once_leaves_no_run_and_imports_no_tensorflow(tmp_path):
    """A default `tlcore train` without the ImageNet weights: the reason, the loose backbone name
    explained, no run folder, and TensorFlow never imported."""
    data = write_split(tmp_path / "data", counts=(4, 2, 0))
    env = dict(os.environ, TLCORE_HOME=str(tmp_path / "home"), KERAS_HOME=str(tmp_path / "keras"),
               TLCORE_WEIGHTS_PROBE=f"127.0.0.1:{closed_port()}")
    code = ("import sys; from tlcore.cli.commands import main; code = main(sys.argv[1:]); "
            "print(json.dumps({'code': code, 'tensorflow': 'tensorflow' in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", "import json; " + code, "train", str(data), "--backbone",
                           "mobilenet", "--json"], capture_output=True, text=True, env=env, timeout=120)
    out, after = [json.loads(line) for line in proc.stdout.splitlines()]
    assert after == {"code": 1, "tensorflow": False}
    assert out["error"].startswith("--weights imagenet: the ImageNet weights of MobileNet are not on this machine")
    assert "mobilenet_1_0_224_tf_no_top.h5" in out["error"] and "--weights PATH" in out["error"]
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())
    warning, error = proc.stderr.strip().splitlines()
    assert warning == ("warning: --backbone mobilenet means MobileNet (names match whatever their case); "
                       "close names: MobileNetV2, MobileNetV3Small, MobileNetV3Large. Give the exact name "
                       "to choose another.")
    assert error == f"error: {out['error']}"


def test_a_bad_cut_at_a_stored_size_fails_before_the_run_folder_and_tensorflow(tmp_path):
    data = write_split(tmp_path / "data", counts=(4, 2, 0))
    env = dict(os.environ, TLCORE_HOME=str(tmp_path / "home"))
    code = ("import json, sys; from tlcore.cli.commands import main; code = main(sys.argv[1:]); "
            "print(json.dumps({'code': code, 'tensorflow': 'tensorflow' in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", code, "train", str(data), "--backbone", "MobileNetV2",
                           "--weights", "none", "--cut", "block_99_add", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    out, after = [json.loads(line) for line in proc.stdout.splitlines()]
    assert after == {"code": 1, "tensorflow": False}
    assert out["error"].startswith("The backbone has no layer named 'block_99_add' (given as --cut).")
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())


# --- backbone names matched without regard to case --------------------------------------------

def test_a_loose_backbone_name_says_what_it_chose_and_what_else_is_close():
    assert inexact_match("MobileNetV2") is None and inexact_match("nosuch") is None
    assert inexact_match("mobilenet") == ("MobileNet", ["MobileNetV2", "MobileNetV3Small", "MobileNetV3Large"])
    assert inexact_match("resnet50") == ("ResNet50", ["ResNet50V2"])
    assert commands.backbone_note(argparse.Namespace(backbone="MobileNetV2")) is None
    assert commands.backbone_note(argparse.Namespace()) is None


def test_train_json_keeps_the_loose_name_warning(monkeypatch):
    monkeypatch.setattr(commands, "_train", lambda a: {"run_dir": "r", "warnings": ["other"]})
    out = commands._cmd_train(argparse.Namespace(backbone="mobilenetv2"))
    assert out["warnings"][0].startswith("--backbone mobilenetv2 means MobileNetV2")
    assert out["warnings"][1:] == ["other"]


# --- failed runs: why, and pruning them -------------------------------------------------------

def _runs(home: Path) -> dict:
    store = RunStore(home / "runs")
    made = {}
    for rid, state, error in (("ok", "completed", None), ("bad", "failed", "Out of memory\nTraceback ..."),
                              ("halted", "stopped", "interrupted by the user")):
        run = store.create(rid)
        run.write_status(state=state, error=error, pid=os.getpid(), started_at="2026-12-04T00:00:00Z")
        made[rid] = run
    live = store.create("live")
    live.write_status(state="running", pid=os.getpid(), host=socket.gethostname())
    made["live"] = live
    return made


def test_runs_show_the_first_line_of_the_error_and_prune_removes_failed_ones(tmp_path):
    home = tmp_path / "home"
    _runs(home)
    proc, rows = tl("runs", "--json", home=home)
    assert proc.returncode == 0
    errors = {r["run_id"]: r["error"] for r in rows}
    assert errors == {"ok": None, "bad": "Out of memory", "halted": "interrupted by the user", "live": None}
    proc, _ = tl("runs", home=home)
    header = proc.stdout.splitlines()[0].split()
    assert header[-1] == "error" and "Out of memory" in proc.stdout

    proc, out = tl("runs", "--prune", "failed", "--json", home=home)
    assert proc.returncode == 0
    assert out == {"removed": [{"run_id": "bad", "run_dir": str(home / "runs" / "bad"), "state": "failed",
                                "error": "Out of memory"}]}
    assert sorted(p.name for p in (home / "runs").iterdir()) == ["halted", "live", "ok"]
    proc, out = tl("runs", "--prune", "failed", "stopped", home=home)
    assert proc.returncode == 0 and "halted" in proc.stdout and "removed 1 failed or stopped run(s)" in proc.stderr
    assert sorted(p.name for p in (home / "runs").iterdir()) == ["live", "ok"]  # never a live run
    proc, out = tl("runs", "--prune", "running", "--json", home=home)
    assert proc.returncode == 2 and "invalid choice" in out["error"]


def test_prune_refuses_a_state_it_cannot_prune(tmp_path):
    from tlcore.core.errors import OptionError

    with pytest.raises(OptionError, match="prune takes run states among failed, stopped, interrupted"):
        RunStore(tmp_path).prune(["running"])


def test_runs_page_deletes_failed_runs_with_one_button(tmp_path, monkeypatch):
    from test_app import open_page

    home = tmp_path / "home"
    _runs(home)
    monkeypatch.setenv("TLCORE_HOME", str(home))
    at = open_page("views/8_Runs.py")
    table = at.dataframe[0].value
    assert dict(zip(table["run"], table["error"]))["bad"] == "Out of memory"
    button = next(b for b in at.button if b.key == "prune_failed")
    assert button.label == "Delete failed runs (1)"
    button.click().run()
    assert not at.exception, at.exception
    assert sorted(p.name for p in (home / "runs").iterdir()) == ["halted", "live", "ok"]
    assert not [b for b in at.button if b.key == "prune_failed"]  # nothing failed is left


# --- messages a newcomer reads ----------------------------------------------------------------

def test_serve_names_what_it_accepts_and_cache_shows_freed_only_after_clear(tmp_path):
    proc, out = tl("serve", tmp_path / "nosuch.zip", "--json", home=tmp_path / "home")
    assert proc.returncode == 1
    assert out["error"] == (f"Nothing to serve at {tmp_path / 'nosuch.zip'}: give a run folder (as printed by "
                            "`tlcore train`), a run id from `tlcore runs`, or a bundle .zip from `tlcore export "
                            "--format bundle`.")
    proc, _ = tl("cache", home=tmp_path / "home")
    assert proc.returncode == 0 and "path: " in proc.stdout and "freed" not in proc.stdout
    proc, _ = tl("cache", "--clear", home=tmp_path / "home")
    assert proc.returncode == 0 and "freed: 0" in proc.stdout
    proc, out = tl("cache", "--json", home=tmp_path / "home")
    assert out["freed"] == 0  # the JSON keeps its fields


# --- stderr: tlcore's own lines only ----------------------------------------------------------

def test_training_stderr_holds_only_tlcore_lines(shared_run):
    assert not foreign_lines(shared_run.proc.stderr), shared_run.proc.stderr[-3000:]
    assert shared_run.proc.stderr.startswith("run_dir: ")


# Every other command's stderr is checked, in a user's shell, by the test that runs it anyway:
# evaluate and predict in test_cli.py (test_predict_agrees_with_evaluate), a SavedModel there too
# (test_exports_agree), int8 TFLite in test_quantize.py, a bundle of Keras, int8 TFLite and ONNX
# (each written by the same `write_model` as a single export) and the run as code in test_ship.py.


def test_serve_start_up_stderr_holds_only_tlcore_lines(shared_run):
    env = user_shell(TLCORE_HOME=str(shared_run.home))
    proc = subprocess.Popen([sys.executable, "-m", "tlcore", "serve", shared_run.run_dir, "--port", "0", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready = json.loads(proc.stdout.readline())  # printed once the server listens
        assert ready["port"] > 0
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith(f"Serving {shared_run.run_dir} on http://127.0.0.1:{ready['port']}")
    assert not foreign_lines(stderr), stderr[-3000:]


# --- the install ------------------------------------------------------------------------------

def test_editable_install_prints_no_setuptools_warning(tmp_path):
    """What `pip install -e .` runs (setuptools' build_editable), offline, on a copy of the project."""
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(ROOT / "pyproject.toml", proj)
    shutil.copytree(ROOT / "tlcore", proj / "tlcore", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "wheels").mkdir()
    proc = subprocess.run([sys.executable, "-W", "default", "-c", "import setuptools.build_meta as b; "
                           f"print(b.build_editable({str(tmp_path / 'wheels')!r}))"],
                          cwd=proj, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    assert not re.search(r"Warning|InformationOnly|is absent from the `packages`", text), text[-3000:]
    assert proc.stdout.strip().splitlines()[-1].endswith(".whl")
