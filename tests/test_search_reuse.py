"""Searches reuse what is computed: trials with the same stage-1 options train stage 1 once, and
the result equals the same options trained alone; how many trials run at once, and why."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from datagen import write_split
from tlcore.recipe.config import STAGE2_ONLY, TrainConfig
from tlcore.search import capacity

BASE = {"backbone": "MobileNetV2", "weights": "none", "input_size": 32, "head_epochs": 1, "fine_tune_epochs": 1}


# --- which options are stage 1's (one owner) ----------------------------------------------

def test_stage1_options_are_every_option_but_those_only_stage_2_reads():
    one = TrainConfig.from_dict(dict(BASE, data="d"))
    stage2_changes = {"fine_tune_lr": 1e-5, "fine_tune_epochs": 7, "unfreeze_from": "-3", "unfreeze": ["conv*"],
                      "freeze": ["bn*"], "train_bn": True, "name": "other"}
    assert set(stage2_changes) == set(STAGE2_ONLY)
    assert one.replace(**stage2_changes).stage1_options() == one.stage1_options()
    for change in ({"lr": 0.01}, {"head_epochs": 2}, {"seed": 7}, {"cut": "block_5_add"}, {"augment": "none"},
                   {"dropout": 0.5}, {"batch_size": 4}, {"input_size": 64}, {"mixup": 0.2}, {"data": "e"}):
        assert one.replace(**change).stage1_options() != one.stage1_options(), change


# --- the shared stage 1's lock --------------------------------------------------------------

def test_a_run_wanting_a_stage1_that_another_trains_waits_for_it(tmp_path):
    """Two holders of the same key never overlap: the second gets its turn when the first lets go."""
    from tlcore.training.stage1 import Stage1Store

    class Fake:
        split_method = "m"
        provenance = {"file": "x"}

        def fingerprint(self):
            return "f"

    config = TrainConfig.from_dict(dict(BASE, data="d"))
    first, second = (Stage1Store(tmp_path, config, Fake(), Fake()) for _ in range(2))
    assert first.key == second.key
    inside, release, events = threading.Event(), threading.Event(), []

    def hold():
        with first.turn(stop=False):
            events.append("first in")
            inside.set()
            release.wait(30)
            events.append("first out")

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(30)
    def wait():
        with second.turn(stop=False):
            events.append("second in")

    waiter = threading.Thread(target=wait)
    waiter.start()
    waiter.join(1.0)
    assert waiter.is_alive() and events == ["first in"]  # still waiting while the first holds it
    release.set()
    holder.join(30)
    waiter.join(30)
    assert events == ["first in", "first out", "second in"]


def test_a_stop_ends_the_wait_for_a_shared_stage1(tmp_path):
    from tlcore.training.stage1 import Stage1Store

    class Fake:
        split_method, provenance = "m", {}

        def fingerprint(self):
            return "f"

    config = TrainConfig.from_dict(dict(BASE, data="d"))
    holder = Stage1Store(tmp_path, config, Fake(), Fake())
    with holder.turn(stop=False):
        with Stage1Store(tmp_path, config, Fake(), Fake()).turn(stop=True):
            pass  # returned at once although the lock is held


# --- trials at once ------------------------------------------------------------------------

def test_max_concurrent_defaults_to_the_smaller_of_cores_and_memory_and_says_why():
    gib = 2 ** 30
    by_memory = capacity.choose(None, 16, 1, "CPU", free_bytes=5 * gib, trial_bytes=2 * gib)
    assert by_memory["max_concurrent"] == 2 and by_memory["chosen_by"] == "default"
    assert "2 by memory" in by_memory["reason"] and "16 by CPUs" in by_memory["reason"]
    by_cores = capacity.choose(None, 4, 1, "GPU", free_bytes=64 * gib, trial_bytes=2 * gib)
    assert by_cores["max_concurrent"] == 4
    assert capacity.choose(None, 2, 2, "core", free_bytes=gib // 2, trial_bytes=2 * gib)["max_concurrent"] == 1
    assert capacity.choose(None, 8, 1, "CPU", free_bytes=None, trial_bytes=gib)["max_concurrent"] == 8
    explicit = capacity.choose(3, 2, 2, "core", free_bytes=gib, trial_bytes=2 * gib)
    assert explicit["max_concurrent"] == 3 and explicit["chosen_by"] == "max_concurrent"
    here = capacity.local(None, dict(BASE, batch_size=8))
    assert here["max_concurrent"] == 1 and here["slots"] == (os.cpu_count() or 1)  # a trial uses every core
    assert capacity.trial_memory_bytes(dict(BASE, batch_size=64)) > capacity.trial_memory_bytes(dict(BASE, batch_size=8))


@pytest.mark.parametrize("reuse", [True, False])
def test_the_search_records_its_concurrency_and_hands_trials_the_shared_stage1_folder(tmp_path, monkeypatch, reuse):
    from tlcore.search import tune

    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    data = write_split(tmp_path / "data", classes=("red", "green"), counts=(4, 2, 0))
    seen = {}

    def fake_tune(plan, seeds, metric, scheduler, address, max_concurrent, folder, data):
        seen.update(stage1_dir=plan["stage1_dir"], max_concurrent=max_concurrent, folder=folder)

    monkeypatch.setattr(tune, "_tune", fake_tune)
    result = tune.run_search(dict(BASE, data=str(data)), {"fine_tune_lr": [1e-4, 1e-5]}, grid=True,
                             runs_dir=str(tmp_path / "runs"), search_id="s1", reuse=reuse)
    record = json.loads((Path(result["search_dir"]) / "search.json").read_text())
    assert record["reuse_stage1"] is reuse
    assert seen["stage1_dir"] == (str(Path(seen["folder"]) / "stage1") if reuse else None)
    assert seen["max_concurrent"] == record["concurrency"]["max_concurrent"] == 1
    assert record["concurrency"]["chosen_by"] == "default" and "memory" in record["concurrency"]["reason"]


# --- a real search: stage 1 once, the same result as alone (slow) ----------------------------

def _weights(run_dir: Path) -> list:
    import keras

    model = keras.models.load_model(str(run_dir / "model.keras"), compile=False)
    return model.get_weights()


@pytest.mark.slow
@pytest.mark.parametrize("options", [
    ["--augment", "none"],  # stage 1 on the feature cache
    ["--augment", "light", "--feature-cache", "off"],  # stage 1 through the images' pipeline
], ids=["feature-cache", "images"])
def test_trials_sharing_stage1_train_it_once_and_equal_the_same_options_trained_alone(tmp_path, options):
    data = write_split(tmp_path / "data", classes=("red", "green", "blue"), counts=(8, 4, 3))
    home = tmp_path / "home"
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    fixed = ["--backbone", "MobileNetV2", "--weights", "none", "--input-size", "32", "--early-stopping", "0",
             "--batch-size", "8", "--head-epochs", "2", "--fine-tune-epochs", "2", "--lr", "0.01",
             "--dropout", "0.3", *options]
    out = subprocess.run([sys.executable, "-m", "tlcore", "search", str(data), "--space",
                          json.dumps({"fine_tune_lr": [0.01, 0.0001]}), "--grid", *fixed, "--json"],
                         capture_output=True, text=True, env=env, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    record = json.loads((Path(result["search_dir"]) / "search.json").read_text())
    assert result["state"] == "completed" and len(record["trials"]) == 2  # shared work is not a trial
    trials = sorted(result["trials"], key=lambda t: t["point"])
    first, second = (Path(t["run_dir"]) for t in trials)
    saved = [p for p in (Path(result["search_dir"]) / "stage1").iterdir() if p.is_dir()]
    assert len(saved) == 1
    status = json.loads((second / "status.json").read_text())
    assert status["stage1_shared"] == {"key": saved[0].name, "trained_by": first.name}
    assert "stage1_shared" not in json.loads((first / "status.json").read_text())

    def metrics(run):
        return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert [m for m in metrics(second) if m["stage"] == 1] == [m for m in metrics(first) if m["stage"] == 1]
    assert [m["epoch"] for m in metrics(second)] == [1, 2, 3, 4]
    assert (second / "checkpoint.keras").exists()

    alone = subprocess.run([sys.executable, "-m", "tlcore", "train", "--config", str(second / "config.json"),
                            "--run-id", "alone", "--json"], capture_output=True, text=True, env=env, timeout=900)
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert json.loads(alone.stdout)["val_accuracy"] == trials[1]["val_accuracy"]
    by_trial = {m["epoch"]: m for m in metrics(second)}
    for m in metrics(home / "runs" / "alone"):
        for key in ("loss", "val_loss", "val_accuracy"):
            assert m[key] == pytest.approx(by_trial[m["epoch"]][key], rel=1e-5, abs=1e-7), (m["epoch"], key)
    shared_w, alone_w, other_w = _weights(second), _weights(home / "runs" / "alone"), _weights(first)
    assert all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(shared_w, alone_w))
    assert not all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(shared_w, other_w))  # the test can tell
