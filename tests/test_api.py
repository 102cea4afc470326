"""The public Python API (tlcore/__init__.py, tlcore/api.py) and what it shows in Jupyter
(tlcore/notebook.py): the same work as the command line, through the same functions."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tlcore
from tlcore import notebook

from datagen import write_flat, write_split
from nbrun import execute, outputs

ROOT = Path(__file__).resolve().parents[1]


def cli(home: Path, *args, check: bool = True):
    """`tlcore ARGS --json` in a fresh process with TLCORE_HOME=home; its JSON answer."""
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "tlcore", *map(str, args), "--json"], env=env,
                          capture_output=True, text=True, timeout=900)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


# --- quick: no training ----------------------------------------------------------------------

def test_importing_tlcore_imports_no_tensorflow_and_exports_the_api():
    code = ("import sys, tlcore; print(json.dumps([sorted(m for m in ('tensorflow', 'keras', 'IPython', 'tqdm') "
            "if m in sys.modules), [n for n in tlcore.__all__ if not hasattr(tlcore, n)]]))")
    proc = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert proc.returncode == 0, proc.stderr
    heavy, missing = json.loads(proc.stdout.strip().splitlines()[-1])
    assert heavy == [] and missing == []
    for name in ("plan", "train", "load_run", "runs", "scan", "demo_data", "Run", "Plan"):
        assert getattr(tlcore, name).__doc__, name


def test_plan_is_the_cli_plan_and_renders_its_layer_table(tlhome):
    options = {"backbone": "MobileNetV2", "unfreeze_from": "block_13_expand", "freeze": ["block_16*"]}
    p = tlcore.plan(**options, classes=3)
    expected = cli(tlhome, "plan", "--backbone", "MobileNetV2", "--unfreeze-from", "block_13_expand",
                   "--freeze", "block_16*", "--classes", "3")
    assert p.to_dict() == expected
    assert p.stages[2]["trainable"] > p.stages[1]["trainable"]
    assert p.roles(2) == [row["stage2"] for row in expected["layers"]]
    html = p._repr_html_()
    for row in expected["layers"][:5] + expected["layers"][-5:]:
        assert f">{row['name']}<" in html
    for role in {row["stage2"] for row in expected["layers"]}:
        assert f">{role}</span>" in html


def test_a_preset_and_a_config_file_reach_the_plan_as_on_the_command_line(tmp_path, tlhome):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"options": {"backbone": "MobileNetV2", "head_epochs": 1, "fine_tune_epochs": 4}}))
    with_preset = tlcore.plan(preset="two-stage", fine_tune_epochs=3)
    assert with_preset.stages[2]["epochs"] == 3 and with_preset.config.unfreeze_from == "0"
    assert with_preset.to_dict() == cli(tlhome, "plan", "--preset", "two-stage", "--fine-tune-epochs", "3")
    from tlcore.recipe.config import options_from

    assert options_from({"head_epochs": 2}, cfg)["fine_tune_epochs"] == 4  # the file, then what was given
    assert options_from({"head_epochs": 2}, cfg)["head_epochs"] == 2


def test_bad_options_name_the_option_and_the_fix(tmp_path, tlhome):
    with pytest.raises(tlcore.OptionError) as err:
        tlcore.plan(backbone="MobileNetV2", head_epoch=3)
    assert err.value.option == "head_epoch" and "Did you mean head_epochs" in str(err.value)
    with pytest.raises(tlcore.OptionError) as err:
        tlcore.plan(backbone="MobileNetV2", fine_tune_epochs=-1)
    assert err.value.option == "fine_tune_epochs" and "Received: -1" in str(err.value)
    with pytest.raises(tlcore.OptionError) as err:
        tlcore.train(write_flat(tmp_path / "flat"), backbone="MobileNetV2", pooling="median")
    assert err.value.option == "pooling" and "avg, max, flatten" in str(err.value)
    with pytest.raises(tlcore.TLCoreError, match="Dataset folder not found"):
        tlcore.train(tmp_path / "nothing", backbone="MobileNetV2")
    assert tlcore.runs() == []  # refused before any run folder
    with pytest.raises(tlcore.TLCoreError, match="No run at"):
        tlcore.load_run("no-such-run")


def test_scan_is_the_cli_scan(tmp_path, tlhome):
    data = write_flat(tmp_path / "flat", n=10)
    report = tlcore.scan(data)
    assert dict(report) == cli(tlhome, "scan", data)
    assert report["classes"] == ["green", "red"]
    assert "<td style='padding:1px 8px'>green</td>" in report._repr_html_()


def test_demo_data_returns_the_folder_and_can_be_asked_again(tmp_path):
    folder = tlcore.demo_data(tmp_path / "shapes", classes=2, per_class=10)
    assert folder == (tmp_path / "shapes").resolve()
    assert tlcore.scan(folder)["classes"] == sorted(p.name for p in (folder / "train").iterdir())
    assert tlcore.demo_data(tmp_path / "shapes", exist_ok=True) == folder
    with pytest.raises(tlcore.TLCoreError, match="not empty"):
        tlcore.demo_data(tmp_path / "shapes")


def test_runs_lists_the_store_newest_first(tlhome):
    assert tlcore.runs() == []
    from tlcore.core.runs import RunStore

    store = RunStore()
    for rid, started in (("old", "2026-01-01T00:00:00Z"), ("new", "2026-02-01T00:00:00Z")):
        store.create(rid).write_status(state="completed", started_at=started)
    assert [r.run_id for r in tlcore.runs()] == ["new", "old"]
    run = tlcore.load_run("old")
    assert run == tlcore.runs()[1] and run.state == "completed" and run.history == []
    assert run.stop() == {"run_dir": str(store.root / "old"), "stop_requested": False, "state": "completed"}


def _metrics(stages=(2, 1)):
    out, epoch = [], 0
    for stage, n in zip((1, 2), stages):
        for _ in range(n):
            epoch += 1
            out.append({"stage": stage, "epoch": epoch, "loss": 1.0 / epoch, "accuracy": 0.5 + 0.1 * epoch,
                        "val_loss": 1.2 / epoch, "val_accuracy": 0.4 + 0.1 * epoch, "lr": 1e-3, "seconds": 1.0})
    return out


def test_the_curves_are_an_svg_with_both_series_and_the_stage_boundary():
    svg = notebook.curves_svg(_metrics())
    assert svg.startswith("<svg") and svg.count("<polyline") == 4  # loss, val_loss, accuracy, val_accuracy
    assert svg.count("stage 2 begins") == 2
    assert notebook.curves_svg([]) == ""
    assert notebook.curves_svg(_metrics((3, 0))).count("stage 2 begins") == 0


def test_progress_draws_a_bar_per_stage_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # not installed: plain bars
    shown = notebook.Progress(chart=False)
    status = {"stage": 1, "epoch": 1, "batch": 0, "batches_total": 4, "stage_epochs": {"1": 2, "2": 1}}
    shown.update(status, [])
    shown.update(dict(status, epoch=2, batch=2), _metrics((1, 0)))
    shown.update(dict(status, stage=2, epoch=3, batch=1), _metrics((2, 0)))  # stage 1's end passed unseen
    shown.close(dict(status, stage=2, epoch=3, batch=4), _metrics((2, 1)))
    err = capsys.readouterr().err
    stage1 = [part for part in err.split("\r") if part.startswith("stage 1")]
    stage2 = [part for part in err.split("\r") if part.startswith("stage 2")]
    assert " 75% epoch 2/2" in stage1[-2] and "100%" in stage1[-1]
    assert "100% epoch 1/1" in stage2[-1] and "val_accuracy 0.700" in stage2[-1]


# --- slow: training --------------------------------------------------------------------------

def _weights_file(folder: Path, size: int) -> Path:
    """MobileNetV2 (no top) at `size` with random weights, saved as a weights file."""
    from tlcore.backbones.build import build_backbone

    path = folder / f"mobilenet_v2_{size}_notop.weights.h5"
    build_backbone("MobileNetV2", size, weights=None).save_weights(path)
    return path


DONE_CELL = """\
import json, tlcore
run = tlcore.train(DATA, backbone="MobileNetV2", weights=FILE, input_size=96, head_epochs=2,
                   fine_tune_epochs=1, seed=0)
Path(OUT).write_text(json.dumps({"run_dir": str(run.run_dir), "result": run.result,
                                 "accuracy": run.evaluate()["accuracy"], "predict": run.predict([IMAGE])}))
run"""


@pytest.mark.slow
def test_a_notebook_run_matches_tlcore_train_with_the_same_options(tmp_path):
    import nbformat

    data = write_split(tmp_path / "data", counts=(12, 4, 4), ext=".jpg")
    weights = _weights_file(tmp_path, 96)
    image = sorted((data / "test" / "green").iterdir())[0]
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from pathlib import Path\nDATA = FILE = OUT = IMAGE = None",
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(DONE_CELL)])
    nbformat.write(nb, tmp_path / "done.ipynb")
    out = tmp_path / "notebook.json"
    executed = execute(tmp_path / "done.ipynb", {"DATA": str(data), "FILE": str(weights), "OUT": str(out),
                                                "IMAGE": str(image)},
                       cwd=tmp_path, env={"TLCORE_HOME": str(tmp_path / "home-notebook")})
    got = json.loads(out.read_text())
    assert got["result"]["state"] == "completed"

    home = tmp_path / "home-cli"
    trained = cli(home, "train", data, "--backbone", "MobileNetV2", "--weights", weights, "--input-size", "96",
                  "--head-epochs", "2", "--fine-tune-epochs", "1", "--seed", "0")
    assert got["accuracy"] == trained["test_accuracy"] == got["result"]["test_accuracy"]
    assert got["result"]["val_accuracy"] == trained["val_accuracy"]
    assert got["predict"] == cli(home, "predict", trained["run_dir"], image)  # the CLI's own run
    assert got["predict"] == cli(home, "predict", got["run_dir"], image)      # the notebook's run
    assert cli(home, "evaluate", got["run_dir"])["accuracy"] == got["accuracy"]

    html = "".join(outputs(executed))
    assert "<polyline" in html and html.count("<b>Run</b>") == 1  # the live chart, then the run itself
    stderr = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", [])
                     if o.get("name") == "stderr")
    assert "stage 1" in stderr and "stage 2" in stderr and "Epoch 1/" not in stderr


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """One quick run trained through the API (3 classes, 32 px, random weights)."""
    root = tmp_path_factory.mktemp("api-run")
    old = os.environ.get("TLCORE_HOME")
    os.environ["TLCORE_HOME"] = str(root / "home")
    try:
        data = write_split(root / "data", counts=(8, 3, 3))
        run = tlcore.train(data, backbone="MobileNetV2", weights="none", input_size=32, head_epochs=1,
                           fine_tune_epochs=1, seed=3, progress=False)
        yield run, data, root / "home"
    finally:
        if old is None:
            os.environ.pop("TLCORE_HOME", None)
        else:
            os.environ["TLCORE_HOME"] = old


@pytest.mark.slow
def test_a_run_evaluates_predicts_explains_and_exports_as_the_cli_does(small_run, tmp_path):
    run, data, home = small_run
    assert run.state == "completed" and run.result["run_dir"] == str(run.run_dir)
    assert [m["epoch"] for m in run.history] == list(range(1, run.result["epochs"] + 1))
    assert run.config["backbone"] == "MobileNetV2" and run.config["seed"] == 3
    assert tlcore.load_run(run.run_id, home / "runs") == run == tlcore.load_run(run.run_dir)

    ev = run.evaluate()
    from_cli = cli(home, "evaluate", run.run_dir)
    assert ev.pop("tta")["seconds"] >= 0 and from_cli.pop("tta")["mode"] == "none"  # a duration differs
    assert ev == from_cli
    assert "confusion matrix" in ev._repr_html_()
    assert run.evaluate(split="validation")["split"] == "validation"

    path = sorted((data / "test" / "blue").iterdir())[0]
    by_path = run.predict([path], top_k=2)
    assert by_path == cli(home, "predict", run.run_dir, path, "--top-k", "2")
    by_kind = run.predict([path.read_bytes(), np.asarray(Image.open(path).convert("RGB")),
                           Image.open(path), str(path)], top_k=2)
    assert [r["image"] for r in by_kind] == ["bytes:0", "array:1", "array:2", str(path)]
    for r in by_kind:  # a lossless PNG: every kind is the same pixels
        assert r["top"] == by_path[0]["top"]
    broken = run.predict([b"not an image"])
    assert broken[0]["top"] == [] and broken[0]["error"]
    with pytest.raises(tlcore.OptionError, match="top_k"):
        run.predict([path], top_k=0)

    ex = run.explain(path.read_bytes(), out=tmp_path / "cam.png")
    assert ex["label"] in run.labels and (tmp_path / "cam.png").stat().st_size > 0
    assert ex["label"] == cli(home, "explain", run.run_dir, path, "--out", tmp_path / "cli.png")["label"]
    assert "data:image/png;base64," in ex._repr_html_()

    exported = run.export(tmp_path / "model.keras")
    assert exported["path"] == str(tmp_path / "model.keras") and exported["top1_agreement"] == 1.0
    html = run._repr_html_()
    assert "completed" in html and "<polyline" in html


@pytest.mark.slow
def test_background_training_is_a_process_of_its_own_that_stop_ends(tmp_path, tlhome):
    data = write_split(tmp_path / "data", counts=(8, 3, 3))
    run = tlcore.train(data, backbone="MobileNetV2", weights="none", input_size=32, head_epochs=0,
                       fine_tune_epochs=50, run_id="bg", background=True)
    assert run.run_id == "bg" and run.state in ("queued", "running")
    assert run.status["pid"] != os.getpid()
    assert run.stop()["stop_requested"] is True
    assert run.wait(progress=False).state == "stopped"
    with pytest.raises(tlcore.TLCoreError, match="exists already"):
        tlcore.train(data, backbone="MobileNetV2", weights="none", run_id="bg", background=True)


INTERRUPTED = """\
import json, sys, tlcore
run = tlcore.train(sys.argv[1], backbone="MobileNetV2", weights="none", input_size=32, head_epochs=0,
                   fine_tune_epochs=50, early_stopping=0, progress=False)
print(json.dumps(run.result))"""


@pytest.mark.slow
def test_an_interrupt_stops_a_blocking_training_which_returns_the_stopped_run(tmp_path):
    import signal
    import time

    data = write_split(tmp_path / "data", counts=(8, 3, 3))
    env = dict(os.environ, TLCORE_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED, str(data)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runs = tmp_path / "home" / "runs"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:  # until the first epoch is recorded
        if any(p.stat().st_size for p in runs.glob("*/metrics.jsonl")):
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read()[-2000:]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["state"] == "stopped" and 1 <= result["epochs"] < 50
    assert "Stopping the run after this batch" in err
    assert tlcore.load_run(result["run_dir"]).state == "stopped"
