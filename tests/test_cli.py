"""The command line as users' scripts see it: one JSON document on stdout, exit codes, every command."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datagen import write_flat, write_split
from ownlines import foreign_lines, user_shell

# ResNet50 with random weights still gives image-dependent features at 32 px (MobileNets do not).
FAST = ["--backbone", "ResNet50", "--weights", "none", "--input-size", "32", "--batch-size", "8",
        "--augment", "none", "--early-stopping", "0"]


def tl(*args, home: Path, check_json=True, timeout=600, as_user=False):
    """`tlcore ARGS` in a home; `as_user`: in a user's shell, without TF_CPP_MIN_LOG_LEVEL (ownlines.py)."""
    env = user_shell(TLCORE_HOME=str(home)) if as_user else dict(os.environ, TLCORE_HOME=str(home),
                                                                   TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-m", "tlcore", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)
    if check_json and "--json" in args:
        lines = [l for l in proc.stdout.splitlines() if l.strip()]
        assert len(lines) == 1, f"stdout must be exactly one JSON line, got: {proc.stdout!r}\n{proc.stderr[-2000:]}"
        return proc, json.loads(lines[0])
    return proc, None


@pytest.fixture(scope="module")
def trained(shared_run):
    """The session's run, trained through the command line (both stages) on the split layout."""
    return shared_run.base, shared_run.data, shared_run.out, shared_run.proc


def test_train_json_and_run_store(trained):
    base, data, out, proc = trained
    assert set(out) == {"run_dir", "state", "epochs", "val_accuracy", "test_accuracy", "seconds", "warnings",
                        "val_accuracy_interval", "test_accuracy_interval", "val_count", "test_count", "baselines"}
    assert out["test_accuracy_interval"][0] <= out["test_accuracy"] <= out["test_accuracy_interval"][1]
    assert [b["kind"] for b in out["baselines"]] == ["features", "pixels"]  # never empty with a test split
    assert out["state"] == "completed" and out["epochs"] == 6
    run = Path(out["run_dir"])
    assert f"run_dir: {run}" in proc.stderr.splitlines()[0] or f"run_dir: {run}" in proc.stderr
    for name in ("config.json", "status.json", "metrics.jsonl", "labels.json", "model.keras",
                 "checkpoint.keras", "evaluation.json"):
        assert (run / name).exists(), name
    assert list((run / "tb").rglob("*tfevents*")), "TensorBoard logs"
    status = json.loads((run / "status.json").read_text())
    for key in ("state", "pid", "host", "started_at", "updated_at", "ended_at", "stage", "epoch",
                "epochs_total", "batch", "batches_total", "error", "traceback"):
        assert key in status
    assert status["state"] == "completed" and status["ended_at"].endswith("Z")
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(m["stage"], m["epoch"]) for m in lines] == [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (2, 6)]
    assert lines[0]["lr"] == pytest.approx(0.01) and lines[5]["lr"] == pytest.approx(0.001)  # stage 2 at a tenth
    for m in lines:
        assert set(m) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["seed"] == 3 and cfg["options"]["backbone"] == "ResNet50"
    assert set(cfg["versions"]) == {"tlcore", "tensorflow", "keras", "python"}
    assert json.loads((run / "labels.json").read_text()) == ["blue", "green", "red"]
    # learned something: far above chance on easy colour classes
    assert out["val_accuracy"] > 0.5


def test_predict_agrees_with_evaluate(trained):
    base, data, out, _ = trained
    proc, ev = tl("evaluate", out["run_dir"], "--json", home=base / "home", as_user=True)
    assert proc.returncode == 0
    assert not foreign_lines(proc.stderr), proc.stderr[-3000:]
    assert ev["split"] == "test" and set(ev["labels"]) == {"red", "green", "blue"}
    assert {"split", "loss", "accuracy", "per_class", "confusion_matrix", "labels", "misclassified"} <= set(ev)
    assert sum(map(sum, ev["confusion_matrix"])) == 12
    proc, pred = tl("predict", out["run_dir"], data / "test", "--top-k", "2", "--csv", base / "p.csv",
                    "--json", home=base / "home", as_user=True)
    assert proc.returncode == 0 and len(pred) == 12
    assert not foreign_lines(proc.stderr), proc.stderr[-3000:]
    assert all(len(p["top"]) == 2 for p in pred)
    correct = sum(p["top"][0]["label"] == Path(p["image"]).parent.name for p in pred)
    assert correct / 12 == pytest.approx(ev["accuracy"])
    assert (base / "p.csv").read_text().splitlines()[0].startswith("image,label_1,probability_1")


@pytest.mark.parametrize("fmt,quant", [("keras", "none"), ("savedmodel", "none"), ("tflite", "none"),
                                       ("tflite", "float16"), ("tflite", "dynamic")])
def test_exports_agree(trained, fmt, quant):
    base, data, out, _ = trained
    dest = base / f"export-{fmt}-{quant}{'' if fmt == 'savedmodel' else '.' + fmt}"
    # a SavedModel and a float TFLite file as in a user's shell (TensorFlow's C++ lines filtered), the rest
    # with TF_CPP_MIN_LOG_LEVEL=2: stderr empty either way
    proc, res = tl("export", out["run_dir"], "--format", fmt, "--quantize", quant, "--out", dest,
                   "--json", home=base / "home", as_user=(fmt, quant) in (("savedmodel", "none"), ("tflite", "none")))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not proc.stderr.strip(), proc.stderr[-2000:]  # no Python warning, no LiteRT/XNNPACK line
    assert res["format"] == fmt and Path(res["path"]).exists()
    assert res["top1_agreement"] >= 0.9
    assert res["max_probability_difference"] < (0.2 if quant != "none" else 1e-3)
    if fmt == "savedmodel":  # inside the folder, as inside a bundle
        labels, pre = dest / "labels.txt", dest / "preprocessing.json"
    else:  # beside the file, named after it: two exports in one folder keep their own
        labels, pre = dest.with_name(f"{dest.stem}.labels.txt"), dest.with_name(f"{dest.stem}.preprocessing.json")
    assert labels.read_text().split() == ["blue", "green", "red"]
    assert {str(labels), str(pre)} <= set(res["files"])
    assert pre.stat().st_mode & 0o777 == labels.stat().st_mode & 0o777  # not a temporary file's 0600
    assert res["bytes"] > 0 and res["checked_on"] == {"split": "validation", "data": str(data), "images": 18}


def test_runs_lists_and_deletes(trained, tmp_path):
    base, data, out, _ = trained
    proc, runs = tl("runs", "--json", home=base / "home")
    assert proc.returncode == 0
    row = next(r for r in runs if r["run_dir"] == out["run_dir"])
    assert row["state"] == "completed" and row["backbone"] == "ResNet50"
    assert set(row) >= {"run_id", "run_dir", "state", "backbone", "dataset", "started_at",
                        "val_accuracy", "test_accuracy"}


def test_backbones_and_layers(tmp_path):
    proc, rows = tl("backbones", "--json", home=tmp_path)
    assert proc.returncode == 0 and len(rows) == 40
    assert {"name", "family", "default_input_size", "min_input_size", "params", "depth", "size_mb",
            "top1", "top5", "preprocessing"} <= set(rows[0])
    proc, layers = tl("layers", "InceptionV3", "--input-size", "150", "--json", home=tmp_path)
    assert proc.returncode == 0 and len(layers) == 311
    mixed7 = next(l for l in layers if l["name"] == "mixed7")
    assert mixed7["cut_point"] is True
    assert {"index", "name", "type", "output_shape", "params", "trainable", "cut_point", "block"} <= set(mixed7)


def test_scan_both_layouts(tmp_path):
    flat = write_flat(tmp_path / "flat", n=10)
    proc, rep = tl("scan", flat, "--val-split", "0.2", "--test-split", "0.2", "--json", home=tmp_path)
    assert proc.returncode == 0
    assert rep["classes"] == ["green", "red"] and set(rep["counts"]) == {"train", "validation", "test"}
    for c in ("green", "red"):  # each file's split is its own seeded draw
        assert sum(rep["counts"][s][c] for s in rep["counts"]) == 10
        assert rep["counts"]["validation"][c] >= 1 and rep["counts"]["test"][c] >= 1
    split = write_split(tmp_path / "split")
    os.rename(split / "validation", split / "val")
    proc, rep = tl("scan", split, "--json", home=tmp_path)
    assert rep["counts"]["validation"]["red"] == 4 and rep["layout"] == "split"


def test_errors_are_one_line_and_json(tmp_path):
    proc, out = tl("train", tmp_path / "nope", "--backbone", "ResNet50", "--json", home=tmp_path)
    assert proc.returncode == 1 and "not found" in out["error"]
    assert "Traceback" not in proc.stderr
    proc, out = tl("train", tmp_path, "--backbone", "ResNet5000", "--json", home=tmp_path)
    assert proc.returncode == 1 and "Unknown backbone" in out["error"]
    proc, out = tl("train", "--bogus", "--json", home=tmp_path)
    assert proc.returncode == 2 and "error" in out
    proc, out = tl("layers", "VGG16", "--input-size", "8", "--json", home=tmp_path)
    assert proc.returncode == 1 and "at least 32" in out["error"]


def test_console_script_exists():
    exe = Path(sys.executable).parent / "tlcore"
    assert exe.exists()
    proc = subprocess.run([str(exe), "backbones", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0 and len(json.loads(proc.stdout)) == 40


def test_import_command(tmp_path):
    import zipfile

    data = write_flat(tmp_path / "src" / "animals", n=6)
    z = tmp_path / "animals.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in data.rglob("*.png"):
            zf.write(f, f.relative_to(tmp_path / "src"))
    proc, res = tl("import", z, "--datasets-dir", tmp_path / "ds", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert res["classes"] == ["green", "red"]
    assert Path(res["path"]).parent == tmp_path / "ds"
    assert (Path(res["path"]) / "red").is_dir()  # single top folder unwrapped
