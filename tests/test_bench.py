"""The benchmark's own pieces (not its timings): its dataset, its options, its verdicts."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import bench


def test_generated_data_has_a_test_split_the_engine_and_the_tutorial_both_read(tmp_path):
    from tlcore.data.pipeline import scan

    info = bench.make_data(tmp_path / "d", 40)
    assert (info["train"], info["validation"], info["test"]) == (32, 8, 8)
    assert bench.describe_data(tmp_path / "d") == {**info, "path": str(tmp_path / "d")}
    ds = scan(tmp_path / "d")
    assert {k: sum(v.values()) for k, v in ds.counts().items()} == {"train": 32, "validation": 8, "test": 8}


def test_options_are_checked_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench._parse(["--data", str(tmp_path)])
    assert "train/, validation/, test/" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench._parse(["--weights", str(tmp_path / "missing.h5")])
    assert "--weights must be none, imagenet or an existing weights file" in capsys.readouterr().err
    (tmp_path / "w.h5").write_bytes(b"x")
    a = bench._parse(["--weights", str(tmp_path / "w.h5"), "--backbone", "mobilenetv2", "--quick"])
    assert a.weights == str((tmp_path / "w.h5").resolve()) and a.backbone == "MobileNetV2"
    assert (a.images, a.size, a.epochs) == (60, 96, 3)


def test_checkpoint_saves_are_counted_per_improving_epoch():
    assert bench._improvements([1.0, 0.9, 0.95, 0.8, None]) == 4  # None: no validation, saved


def test_importing_or_running_it_leaves_the_environment_as_it_was(monkeypatch):
    monkeypatch.delenv("TLCORE_HOME", raising=False)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    before = dict(os.environ)
    importlib.reload(bench)
    assert dict(os.environ) == before
    with bench._environ(TLCORE_HOME="/elsewhere", TF_CPP_MIN_LOG_LEVEL="3"):
        assert os.environ["TLCORE_HOME"] == "/elsewhere"
    assert dict(os.environ) == before
    with pytest.raises(SystemExit):  # a usage error leaves nothing behind either
        bench.main(["--epochs", "1"])
    assert dict(os.environ) == before


def test_it_runs_from_the_project_root_as_a_module():
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--help"], cwd=root, capture_output=True,
                         text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: python -m benchmarks.bench")


def test_the_floor_script_is_the_least_a_cached_stage_1_does(tmp_path):
    """The floor process imports Keras, builds the backbone from the weights, reads every image
    once and runs one batched forward pass: nothing that trains or saves."""
    from benchmarks.bench import _FLOOR

    code = _FLOOR.format(preprocess_import="from keras.applications.mobilenet_v2 import preprocess_input",
                         data=str(tmp_path), size=32, batch=8, backbone="MobileNetV2", weights="w.weights.h5")
    compile(code, "floor.py", "exec")
    assert "weights='w.weights.h5'" in code and ".predict(" in code and "rglob" in code
    assert ".fit(" not in code and ".save(" not in code
