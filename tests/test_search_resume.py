"""search.json kept current while a search runs, written on a signal, and `--resume` (no Ray: the
scheduler is replaced by one that writes the trials' runs the way `tlcore train` leaves them)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from datagen import write_split

BASE = {"backbone": "MobileNetV2", "weights": "none", "input_size": 32, "head_epochs": 1, "fine_tune_epochs": 0}


def finish_trial(plan: dict, pair, acc: float = 0.5, state: str = "completed") -> Path:
    """A trial's run as `tlcore train` leaves it."""
    index, seed = pair
    run = Path(plan["runs_dir"]) / f"{plan['id']}-p{index}-s{seed}"
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps({"options": {
        **plan["base"], **plan["points"][index], "seed": seed, "name": f"search:{plan['id']}:{index}:{seed}"}}))
    (run / "metrics.jsonl").write_text(json.dumps({"stage": 1, "epoch": 1, "val_accuracy": acc,
                                                   "val_loss": 1 - acc}) + "\n")
    (run / "status.json").write_text(json.dumps({"state": state, "host": socket.gethostname(), "pid": None}))
    return run


def _wait_for(pred, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out")


def _record(folder) -> dict:
    try:
        return json.loads((Path(folder) / "search.json").read_text())
    except (OSError, ValueError):
        return {}


def test_search_json_lists_each_trial_as_it_ends(tmp_path, monkeypatch):
    from tlcore.search import tune

    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    data = write_split(tmp_path / "data", classes=("red", "green"), counts=(4, 2, 0))
    seen = []

    def fake_tune(plan, seeds, metric, scheduler, address, max_concurrent, folder, data):
        for k, pair in enumerate(plan["pairs"]):
            finish_trial(plan, pair, acc=0.1 * (k + 1))
            # the search's record lists the trial before the next one starts
            seen.append(_wait_for(lambda: len(_record(folder).get("trials", [])) == k + 1 and _record(folder)))

    monkeypatch.setattr(tune, "_tune", fake_tune)
    result = tune.run_search(dict(BASE, data=str(data)), {"lr": [0.1, 0.01]}, grid=True, seeds=2,
                             runs_dir=str(tmp_path / "runs"), search_id="s1")
    assert [s["state"] for s in seen] == ["running"] * 4
    assert [len(s["trials"]) for s in seen] == [1, 2, 3, 4]
    assert result["state"] == "completed" and len(result["trials"]) == 4
    trial = result["trials"][0]
    assert {"run_dir", "state", "val_accuracy", "options", "seed"} <= set(trial)
    assert _record(result["search_dir"])["state"] == "completed"


SCRIPT = """
import json, sys, threading
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_search_resume import finish_trial
from tlcore.search import tune

def fake_tune(plan, seeds, metric, scheduler, address, max_concurrent, folder, data):
    finish_trial(plan, plan["pairs"][0])
    Path({ready!r}).write_text("one trial done")
    threading.Event().wait(600)  # the second trial "runs" until the signal

tune._tune = fake_tune
tune.run_search(dict({base!r}, data={data!r}), {{"lr": [0.1, 0.01, 0.001]}}, grid=True,
                runs_dir={runs!r}, search_id="s2")
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_search_records_its_trials_and_resume_finishes_the_rest(tmp_path, monkeypatch, signum):
    from tlcore.search import tune

    home = tmp_path / "home"
    monkeypatch.setenv("TLCORE_HOME", str(home))
    data = write_split(tmp_path / "data", classes=("red", "green"), counts=(4, 2, 0))
    ready = tmp_path / "ready"
    script = tmp_path / "search.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), ready=str(ready), base=BASE, data=str(data),
                                    runs=str(tmp_path / "runs")))
    env = dict(os.environ, TLCORE_HOME=str(home), PYTHONPATH=str(Path(__file__).parents[1]))
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: ready.exists() or proc.poll() is not None, timeout=120)
    assert proc.poll() is None, proc.stderr.read()[-2000:]
    proc.send_signal(signum)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    folder = home / "searches" / "s2"
    record = _record(folder)
    assert record["state"] == "interrupted" and "--resume" in record["error"]
    assert [(t["point"], t["state"]) for t in record["trials"]] == [(0, "completed")]

    given = []

    def fake_tune(plan, seeds, metric, scheduler, address, max_concurrent, folder, data):
        given.extend(plan["pairs"])
        for pair in plan["pairs"]:
            finish_trial(plan, pair)

    monkeypatch.setattr(tune, "_tune", fake_tune)
    result = tune.resume_search(str(folder))
    assert given == [(1, 42), (2, 42)]  # only what had not run
    assert result["state"] == "completed" and len(result["trials"]) == 3
    assert _record(folder)["state"] == "completed"


def test_resume_names_a_folder_without_a_search(tmp_path, monkeypatch):
    from tlcore.core.errors import UsageError
    from tlcore.search import tune

    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    with pytest.raises(UsageError, match="--resume .*no search.json"):
        tune.resume_search(str(tmp_path / "nothing"))


def test_cli_search_needs_a_space_or_resume(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tlcore", "search", str(tmp_path), "--json"],
                          capture_output=True, text=True, env=dict(os.environ, TLCORE_HOME=str(tmp_path)))
    assert proc.returncode == 2 and "--space" in proc.stderr and "--resume" in proc.stderr
    assert "error" in json.loads(proc.stdout)
