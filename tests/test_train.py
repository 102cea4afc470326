"""Training as a process: stop within a batch, SIGKILL then resume, both head types, repeat a run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datagen import write_flat, write_split

FAST = ["--backbone", "ResNet50", "--weights", "none", "--input-size", "32", "--augment", "none",
        "--early-stopping", "0", "--lr", "0.01"]


def _env(home):
    return dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")


def _start(home, *args):
    return subprocess.Popen([sys.executable, "-m", "tlcore", "train", *map(str, args), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(home))


def _run_dir(proc) -> Path:
    line = proc.stderr.readline()
    assert line.startswith("run_dir: "), line
    return Path(line.split("run_dir: ", 1)[1].strip())


def _status(run: Path) -> dict:
    try:
        return json.loads((run / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _wait(pred, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    raise AssertionError("timed out")


def _zombie(pid: int) -> bool:
    """True once `pid` has died but is not reaped yet (its state in /proc is Z)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
def test_stop_request_ends_within_a_batch_and_keeps_the_model(tmp_path):
    data = write_split(tmp_path / "data", counts=(40, 4, 0))
    proc = _start(tmp_path, data, *FAST, "--batch-size", "1", "--head-epochs", "50", "--feature-cache", "off",
                  "--fine-tune-epochs", "0")
    run = _run_dir(proc)
    _wait(lambda: _status(run).get("state") == "running" and (_status(run).get("batch") or 0) >= 3)
    epoch_at_stop = _status(run)["epoch"]
    subprocess.run([sys.executable, "-m", "tlcore", "stop", str(run), "--json"], env=_env(tmp_path),
                   check=True, capture_output=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert json.loads(out)["state"] == "stopped"
    status = _status(run)
    assert status["state"] == "stopped" and status["ended_at"]
    during = status["stopped_during"]
    assert during["epoch"] == epoch_at_stop  # no further epoch began
    assert during["batch"] < during["batches_total"]  # it did not finish the epoch
    # status, the metrics and the printed summary agree on the last finished epoch
    metrics_file = run / "metrics.jsonl"
    finished = [json.loads(line) for line in metrics_file.read_text().splitlines() if line] \
        if metrics_file.exists() else []
    assert status["epoch"] == len(finished) == json.loads(out)["epochs"] == epoch_at_stop - 1
    assert status["batch"] == (status["batches_total"] if finished else 0)
    assert (run / "model.keras").exists()


@pytest.mark.slow
def test_sigkill_leaves_an_interrupted_run_that_resumes(tmp_path):
    from tlcore.core.runs import Run

    data = write_split(tmp_path / "data", counts=(16, 4, 4))
    # killed in stage 2: a cached stage 1 keeps its best head in memory (no checkpoint writes; its
    # epochs take a fraction of a second), stage 2 writes checkpoints
    # ResNet50 cut at conv3_block4_out (1.4 M weights): small checkpoints, quick epochs
    proc = _start(tmp_path, data, *FAST, "--cut", "conv3_block4_out", "--unfreeze-from", "conv3_block3_1_conv",
                  "--batch-size", "4", "--head-epochs", "2", "--fine-tune-epochs", "10")
    run = _run_dir(proc)
    _wait(lambda: (run / "metrics.jsonl").exists() and len((run / "metrics.jsonl").read_text().splitlines()) >= 3
          and (run / "checkpoint.keras").exists())
    os.kill(proc.pid, signal.SIGKILL)
    _wait(lambda: _zombie(proc.pid))  # dead, not reaped yet: a zombie, which must still read as interrupted
    assert Run(run).status()["state"] == "interrupted"
    proc.wait()
    done = len((run / "metrics.jsonl").read_text().splitlines())
    res = subprocess.run([sys.executable, "-m", "tlcore", "train", "--resume", str(run), "--json"],
                         capture_output=True, text=True, env=_env(tmp_path), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["state"] == "completed"
    epochs = [json.loads(l)["epoch"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs[:done] == list(range(1, done + 1))
    assert epochs[-1] == 12 and sorted(set(epochs)) == list(range(1, 13))


@pytest.mark.slow
def test_binary_head_flat_layout_and_repeat_from_config(tmp_path):
    from tlcore.recipe.config import TrainConfig
    from tlcore.training.train import train
    from tlcore.core.runs import Run
    import keras

    data = write_flat(tmp_path / "data", n=16)
    cfg = TrainConfig(data=str(data), backbone="ResNet50", weights="none", input_size=32, head_epochs=8,
                      fine_tune_epochs=0, batch_size=8, augment="none", early_stopping=0, lr=0.01,
                      val_split=0.25, test_split=0.25, seed=7)
    out = train(cfg, runs_dir=str(tmp_path / "runs"))
    run = Run(out["run_dir"])
    model = keras.models.load_model(str(run.file("model.keras")), safe_mode=True)
    assert model.output_shape == (None, 1)  # two classes: one sigmoid unit
    assert model.get_layer("head").get_layer("predictions").activation.__name__ == "sigmoid"
    assert out["test_accuracy"] is not None and out["test_accuracy"] >= 0.75
    # repeat from its config.json: same options, same split, explicit options win
    res = subprocess.run([sys.executable, "-m", "tlcore", "train", "--config", str(run.file("config.json")),
                          "--head-epochs", "1", "--runs-dir", str(tmp_path / "runs"), "--json"],
                         capture_output=True, text=True, env=_env(tmp_path), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    again = Run(json.loads(res.stdout)["run_dir"])
    assert again.config()["options"]["head_epochs"] == 1
    assert again.config()["options"]["seed"] == 7
    assert again.config()["dataset_counts"] == run.config()["dataset_counts"]


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    data = write_split(tmp_path / "data", counts=(8, 2, 0))
    env = dict(_env(tmp_path), TLCORE_CPU_REPLICAS="2")
    res = subprocess.run([sys.executable, "-m", "tlcore", "train", str(data), *FAST, "--batch-size", "4",
                          "--head-epochs", "1", "--fine-tune-epochs", "1", "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    cfg = json.loads((Path(out["run_dir"]) / "config.json").read_text())
    assert cfg["resolved"]["device"]["strategy_name"] == "MirroredStrategy"
    assert cfg["resolved"]["device"]["replicas"] == 2
    assert out["state"] == "completed"


def test_unwritable_runs_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    data = write_split(tmp_path / "data", counts=(4, 2, 0))
    res = subprocess.run([sys.executable, "-m", "tlcore", "train", str(data), *FAST,
                          "--runs-dir", str(blocker / "runs"), "--json"],
                         capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    assert res.returncode == 1
    assert "Cannot write runs to" in json.loads(res.stdout)["error"]


def test_checkpointer_saves_the_best_weights_without_a_save_per_epoch(tmp_path):
    """Improvements within min_interval are remembered, not written; flush writes the best ones
    and leaves the model's current weights alone."""
    import keras
    import numpy as np

    from tlcore.training.train import Checkpointer

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    path = tmp_path / "checkpoint.keras"
    cp = Checkpointer(model, path, min_interval=3600)

    def weights_on_disk():
        return keras.models.load_model(str(path), compile=False).get_layer("d").get_weights()[0]

    model.get_layer("d").set_weights([np.full((3, 2), 1.0), np.zeros(2)])
    cp.improved()  # the first improvement is written at once
    assert np.allclose(weights_on_disk(), 1.0)
    model.get_layer("d").set_weights([np.full((3, 2), 2.0), np.zeros(2)])
    stamp = path.stat().st_mtime_ns
    cp.improved()  # too soon: remembered only
    assert path.stat().st_mtime_ns == stamp and np.allclose(weights_on_disk(), 1.0)
    model.get_layer("d").set_weights([np.full((3, 2), 3.0), np.zeros(2)])  # a worse epoch
    cp.flush()
    assert np.allclose(weights_on_disk(), 2.0)  # the best, not the last
    assert np.allclose(model.get_layer("d").get_weights()[0], 3.0)
    stamp = path.stat().st_mtime_ns
    cp.flush()  # nothing pending: nothing written
    assert path.stat().st_mtime_ns == stamp
    assert cp.restore() and np.allclose(model.get_layer("d").get_weights()[0], 2.0)  # from memory
    cp.hold = True  # stage 1 on cached features: remembered, written only by flush
    model.get_layer("d").set_weights([np.full((3, 2), 4.0), np.zeros(2)])
    cp.last = float("-inf")
    cp.improved(model.get_layer("d"))
    assert path.stat().st_mtime_ns == stamp
    cp.flush()
    assert np.allclose(weights_on_disk(), 4.0)


DET: list = []  # the default (--deterministic auto: on without a GPU)


@pytest.mark.slow
def test_the_same_seed_gives_the_same_run_in_fresh_homes(tmp_path):
    """Op determinism (on by default without a GPU), seeded splits, shuffles, augmentation and
    feature-cache copies: two runs in two fresh homes record the same numbers, epoch by epoch."""
    # MobileNetV2 up to block 6 at 32 px: the same kinds of layers (convolutions, depthwise ones,
    # BatchNorm training in stage 2) as the whole network, at a fraction of its cost
    data = write_split(tmp_path / "data", counts=(16, 4, 4))
    args = ["--backbone", "MobileNetV2", "--weights", "none", "--input-size", "32", "--cut", "block_6_expand_relu",
            "--head-epochs", "2", "--fine-tune-epochs", "2", "--unfreeze-from", "0", "--train-bn", "--batch-size", "16",
            "--augment", "light", "--seed", "7", "--json"] + DET
    results = []
    for i in (1, 2):
        home = tmp_path / f"home{i}"
        proc = subprocess.run([sys.executable, "-m", "tlcore", "train", str(data), *args], env=_env(home),
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        run = Path(json.loads(proc.stdout)["run_dir"])
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        for m in metrics:
            m.pop("seconds")
        config = json.loads((run / "config.json").read_text())
        assert config["resolved"]["device"]["deterministic"] is True
        results.append((metrics, json.loads((run / "evaluation.json").read_text())["accuracy"]))
    assert results[0] == results[1]
