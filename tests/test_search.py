"""`tlcore search`: the space, the points, the summary; a real search on local Ray (slow)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datagen import write_split
from tlcore.search import tune as search
from tlcore.core.errors import OptionError
from tlcore.core.jsonio import append_jsonl, write_json
from tlcore.core.runs import RunStore

FAST = ["--backbone", "ResNet50", "--weights", "none", "--input-size", "32", "--augment", "none",
        "--early-stopping", "0", "--batch-size", "8"]


# --- the space and its points (no Ray) ---------------------------------------------------

def test_space_reads_lists_and_ranges_from_json_text_or_file(tmp_path):
    text = '{"lr": {"min": 0.0001, "max": 0.01, "log": true}, "cut": ["a", "b"], "head-epochs": {"min": 2, "max": 9}}'
    (tmp_path / "space.json").write_text(text)
    for given in (text, str(tmp_path / "space.json"), json.loads(text)):
        space = search.load_space(given)
        assert space["cut"] == ["a", "b"]
        assert space["lr"] == {"min": 0.0001, "max": 0.01, "log": True, "int": False}
        assert space["head_epochs"]["int"] is True  # an int option draws whole numbers


@pytest.mark.parametrize("space, words", [
    ({"lrr": [0.1]}, "Did you mean 'lr'"),
    ({"lr": []}, "no choice"),
    ({"lr": {"min": 0.1, "max": 0.01}}, "min < max"),
    ({"lr": {"min": 0, "max": 0.01, "log": True}}, "min > 0"),
    ({"cut": {"min": 1, "max": 3}}, "not a number option"),
    ({"lr": 0.1}, "list of choices or a range"),
    ({}, "JSON object"),
    ("{not json", "not valid JSON"),
    ("/no/such/space.json", "No file"),
])
def test_a_bad_space_is_named_with_what_to_do(space, words):
    with pytest.raises(OptionError, match=words) as info:
        search.load_space(space)
    assert info.value.option == "space"


def test_grid_points_are_every_combination_and_refuse_ranges():
    pts = search.points({"lr": [1, 2], "cut": ["a", "b", "c"]}, grid=True)
    assert len(pts) == 6 and {(p["lr"], p["cut"]) for p in pts} == {(l, c) for l in (1, 2) for c in "abc"}
    with pytest.raises(OptionError, match="range"):
        search.points({"lr": {"min": 0.1, "max": 1.0, "log": False, "int": False}}, grid=True)


def test_random_points_stay_in_their_ranges_and_repeat_with_the_seed():
    space = search.load_space({"lr": {"min": 1e-4, "max": 1e-2, "log": True}, "head_epochs": {"min": 2, "max": 5},
                               "dropout": [0.1, 0.5]})
    pts = search.points(space, trials=40, seed=3)
    assert pts == search.points(space, trials=40, seed=3) != search.points(space, trials=40, seed=4)
    assert all(1e-4 <= p["lr"] <= 1e-2 and p["head_epochs"] in (2, 3, 4, 5) and p["dropout"] in (0.1, 0.5)
               for p in pts)
    assert len({p["head_epochs"] for p in pts}) > 1 and min(p["lr"] for p in pts) < 1e-3  # log draws reach low


def test_a_choice_train_refuses_is_reported_before_anything_runs(tmp_path):
    data = write_split(tmp_path / "data")
    with pytest.raises(OptionError, match=r"lr .*Received: 50.*point") as info:
        search.run_search({"data": str(data), "backbone": "ResNet50"}, {"lr": [0.01, 50.0]}, grid=True)
    assert info.value.option == "lr"
    assert not search.searches_dir().exists()  # nothing started


def _fake_trial(root: Path, search_id: str, point: int, seed: int, accs: list, state="completed"):
    run = root / f"{search_id}-p{point}-s{seed}"
    run.mkdir(parents=True)
    write_json(run / "config.json", {"options": {"name": f"search:{search_id}:{point}:{seed}"}})
    write_json(run / "status.json", {"state": state, "started_at": f"2026-01-01T00:00:0{point}Z"})
    for i, a in enumerate(accs):
        append_jsonl(run / "metrics.jsonl", {"epoch": i + 1, "val_accuracy": a, "val_loss": 1 - a})


def test_summary_gives_mean_and_spread_per_point_and_the_best_mean(tmp_path):
    root = tmp_path / "runs"
    _fake_trial(root, "s1", 0, 0, [0.5, 0.9])  # best single run, but its point is worse on average
    _fake_trial(root, "s1", 0, 1, [0.5, 0.5])
    _fake_trial(root, "s1", 1, 0, [0.8])
    _fake_trial(root, "s1", 1, 1, [0.6, 0.8], state="stopped")
    _fake_trial(root, "other", 0, 0, [1.0])  # another search's run
    record = {"search_id": "s1", "metric": "val_accuracy", "points": [{"lr": 1}, {"lr": 2}], "runs_dir": str(root)}
    out = search.summarize(record, RunStore(root))
    assert [(t["point"], t["seed"]) for t in out["trials"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    p0, p1 = out["points_summary"]
    assert p0["runs"] == 2 and p0["val_accuracy_mean"] == pytest.approx(0.7) and p0["val_accuracy_std"] == pytest.approx(0.2)
    assert p1["val_accuracy_mean"] == pytest.approx(0.8) and p1["val_accuracy_std"] == pytest.approx(0.0)
    assert out["best"]["options"] == {"lr": 2} and out["best"]["val_accuracy"] == pytest.approx(0.8)
    assert p0["test_accuracy_mean"] is None and p0["test_accuracy_std"] is None  # not scored on a test split
    for seed, acc in ((0, 0.6), (1, 1.0)):
        run = root / f"s1-p0-s{seed}"
        write_json(run / "evaluation.json", {"split": "test", "accuracy": acc})
    p0 = search.summarize(record, RunStore(root))["points_summary"][0]
    assert p0["test_accuracy_mean"] == pytest.approx(0.8) and p0["test_accuracy_std"] == pytest.approx(0.2)
    by_loss = search.summarize(dict(record, metric="val_loss"), RunStore(root))
    assert by_loss["best"]["options"] == {"lr": 2}  # lowest mean val_loss: 0.2 against 0.3


def test_ray_is_imported_by_search_only():
    code = ("import sys; import tlcore.cli.commands as c, tlcore.training.train, tlcore.training.jobs, tlcore.training.sweep, tlcore.search.tune; "
            "c.build_parser(); assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))


# --- a real search on local Ray ---------------------------------------------------------

def _tl_search(home: Path, *args) -> subprocess.Popen:
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, "-m", "tlcore", "search", *map(str, args), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


EPOCHS = 16  # ASHA decides at epochs 1, 2, 4 and 8: room for its stop to land on a loaded machine


@pytest.mark.slow
def test_a_search_on_local_ray_stops_a_bad_trial_early_survives_a_killed_one_and_keeps_every_run(tmp_path):
    """Grid lr {0.01, 1e-7} x 2 seeds = 4 trials, one at a time, ASHA: the first trial is killed
    mid-run (recorded failed, the search goes on); at least one hopeless trial (lr 1e-7) is stopped
    early; the best point is lr 0.01; every trial is a normal run in `tlcore runs`."""
    data = write_split(tmp_path / "data", classes=("red", "green"), counts=(12, 6, 4))
    home = tmp_path / "home"
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"lr": [0.01, 1e-7]}))
    # --feature-cache off: every epoch runs the backbone. On stored features, 16 epochs of these 24
    # images take a fraction of a second, all done before a trial's first report reaches ASHA.
    proc = _tl_search(home, data, "--space", space, "--grid", "--seeds", "2", "--scheduler", "asha",
                      "--head-epochs", str(EPOCHS), "--fine-tune-epochs", "0", *FAST, "--feature-cache", "off")
    runs = home / "runs"
    killed = None
    deadline = time.time() + 240
    while killed is None and time.time() < deadline and proc.poll() is None:
        for status_file in runs.glob("*-p0-s42/status.json"):
            status = json.loads(status_file.read_text() or "{}")
            if status.get("state") == "running" and status.get("epoch", 0) >= 1 and status.get("pid"):
                os.kill(status["pid"], signal.SIGKILL)
                killed = status_file.parent
        time.sleep(0.2)
    out, err = proc.communicate(timeout=600)
    assert killed is not None, err[-2000:]
    result = json.loads(out)
    assert proc.returncode == 0 and result["state"] == "completed", err[-2000:]
    trials = {(t["options"]["lr"], t["seed"]): t for t in result["trials"]}
    assert len(trials) == 4
    assert trials[(0.01, 42)]["state"] == "failed" and trials[(0.01, 42)]["run_dir"] == str(killed)
    assert "ended without a result" in json.loads((killed / "status.json").read_text())["error"]
    assert trials[(0.01, 43)]["state"] == "completed" and trials[(0.01, 43)]["epochs"] == EPOCHS
    hopeless = [trials[(1e-7, s)] for s in (42, 43)]
    assert any(t["state"] == "stopped" and t["epochs"] < EPOCHS for t in hopeless), hopeless
    assert result["best"]["options"] == {"lr": 0.01}
    assert {p["runs"] for p in result["points"]} == {2}
    listed = subprocess.run([sys.executable, "-m", "tlcore", "runs", "--json"], capture_output=True, text=True,
                            env=dict(os.environ, TLCORE_HOME=str(home)))
    assert {r["run_dir"] for r in json.loads(listed.stdout)} >= {t["run_dir"] for t in result["trials"]}
    record = json.loads((Path(result["search_dir"]) / "search.json").read_text())
    assert record["state"] == "completed" and record["space"] == {"lr": [0.01, 1e-7]} and len(record["trials"]) == 4
