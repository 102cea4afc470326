"""Training on several workers (TF_CONFIG, MultiWorkerMirroredStrategy), two processes on
loopback ports on this CPU machine: one run in the store, the same accuracy as one worker,
a stop on the chief ends every worker, a dead worker fails the chief with a reason."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from datagen import write_split

pytestmark = pytest.mark.slow

FAST = ["--backbone", "ResNet50", "--weights", "none", "--input-size", "32", "--augment", "none",
        "--early-stopping", "0", "--batch-size", "8", "--lr", "0.01", "--fine-tune-epochs", "0"]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _env(home: Path, **extra) -> dict:
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    return dict(env, **extra)


def _workers(home: Path, data: Path, *args, backbone="ResNet50", **extra) -> list[subprocess.Popen]:
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = _env(home, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                   **extra)
        procs.append(subprocess.Popen([sys.executable, "-m", "tlcore", "train", str(data), *FAST, *args,
                                       "--backbone", backbone, "--json"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    return procs


def _only_run(home: Path) -> Path:
    runs = [p for p in (home / "runs").iterdir() if p.is_dir()] if (home / "runs").exists() else []
    assert len(runs) <= 1, runs
    return runs[0] if runs else None


def _wait_for_epoch(home: Path, epoch: int, procs, timeout: float = 300) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = _only_run(home)
        if run is not None:
            try:
                status = json.loads((run / "status.json").read_text())
            except (OSError, ValueError):
                status = {}
            if status.get("state") == "running" and status.get("epoch", 0) >= epoch:
                return run
        assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs]
        time.sleep(0.3)
    raise AssertionError("the workers did not reach the epoch in time")


def test_two_workers_make_one_run_with_the_accuracy_of_one(tmp_path):
    data = write_split(tmp_path / "data", classes=("red", "green"), counts=(16, 6, 6))
    single = subprocess.run([sys.executable, "-m", "tlcore", "train", str(data), *FAST, "--head-epochs", "3",
                             "--json"], capture_output=True, text=True, env=_env(tmp_path / "one"), timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    one = json.loads(single.stdout)

    home = tmp_path / "two"
    procs = _workers(home, data, "--head-epochs", "3")
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    chief, worker = (json.loads(o[0]) for o in outs)
    run = _only_run(home)  # exactly one run in the store: the chief's
    assert chief["run_dir"] == str(run) and chief["state"] == worker["state"] == "completed"
    assert not Path(worker["run_dir"]).exists()  # the other worker's scratch folder is gone
    status = json.loads((run / "status.json").read_text())
    assert status["workers"] == 2
    config = json.loads((run / "config.json").read_text())
    assert config["resolved"]["device"]["strategy_name"] == "MultiWorkerMirroredStrategy"
    assert config["resolved"]["device"]["replicas"] == 2
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3 and (run / "model.keras").exists()
    assert abs(chief["test_accuracy"] - one["test_accuracy"]) <= 0.05, (chief, one)


def test_a_stop_on_the_chief_ends_every_worker_and_a_dead_worker_fails_the_chief(tmp_path):
    data = write_split(tmp_path / "data", classes=("red", "green"), counts=(16, 6, 6))
    home = tmp_path / "stop"
    procs = _workers(home, data, "--head-epochs", "500", backbone="MobileNetV3Small")  # small saves
    run = _wait_for_epoch(home, 2, procs)
    stop = subprocess.run([sys.executable, "-m", "tlcore", "stop", str(run), "--json"], capture_output=True,
                          text=True, env=_env(home))
    assert json.loads(stop.stdout)["stop_requested"] is True
    t0 = time.time()
    outs = [p.communicate(timeout=60) for p in procs]
    assert time.time() - t0 < 30, "a stop must end both workers within 30 s"
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert [json.loads(o[0])["state"] for o in outs] == ["stopped", "stopped"]
    epochs = [json.loads(o[0])["epochs"] for o in outs]
    assert epochs[0] == epochs[1]  # they stopped at the same step
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"

    home = tmp_path / "dead"
    procs = _workers(home, data, "--head-epochs", "500", backbone="MobileNetV3Small", TLCORE_WORKER_TIMEOUT="20")
    run = _wait_for_epoch(home, 2, procs)
    procs[1].send_signal(signal.SIGKILL)
    t0 = time.time()
    out, err = procs[0].communicate(timeout=180)
    assert time.time() - t0 < 120
    assert procs[0].returncode == 1
    assert "worker 1" in json.loads(out)["error"] and "internal error" not in out
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["error"].startswith("The cluster failed: worker 1")
    procs[1].communicate()


_READER = r'''
import json, sys
import numpy as np
from tlcore.data import mapped
from tlcore.data.pipeline import make_dataset
from tlcore.training import device

class Recording(mapped.DiskRows):
    asked = []

    def read(self, indexes):
        Recording.asked.extend(int(i) for i in np.asarray(indexes).reshape(-1))
        return super().read(indexes)

dev = device.setup("off")
rows, labels = Recording(sys.argv[1]), np.arange(int(sys.argv[2])) % 2
ds = device.per_worker(dev["strategy"], lambda shard: make_dataset(rows, labels, 2, 8, shuffle=True, seed=5,
                                                                 shard=shard), class_weight={0: 1.0, 1: 3.0})
steps, pairs = 0, []
for batch in ds:
    steps += 1
    x, y, w = (dev["strategy"].experimental_local_results(v)[0] for v in batch)
    pairs += [(float(a), float(b)) for a, b in zip(y.numpy().ravel(), w.numpy().ravel())]
print(json.dumps({"read": Recording.asked, "steps": steps, "pairs": pairs, "workers": dev["replicas"]}))
'''


def test_each_worker_reads_only_its_rows_of_the_shared_file(tmp_path):
    """Two workers over one cache file: each reads a disjoint set of row indexes, together the
    whole split, in the same number of steps; class weights ride along in the batches."""
    from tlcore.data.mapped import NpyWriter

    n = 37
    writer = NpyWriter(tmp_path / "rows.npy")
    writer.append(np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1).repeat(3, axis=-1))
    writer.close()
    script = tmp_path / "reader.py"
    script.write_text(_READER)
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "rows.npy"), str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(tmp_path / "home", TF_CONFIG=json.dumps(
                                  {"cluster": cluster, "task": {"type": "worker", "index": i}})))
             for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    got = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert [g["workers"] for g in got] == [2, 2]
    reads = [g["read"] for g in got]
    assert set(reads[0]).isdisjoint(reads[1]) and sorted(reads[0] + reads[1]) == list(range(n))
    assert 0 < len(reads[0]) < n and got[0]["steps"] == got[1]["steps"] == -(-n // 8)
    assert all(w == (3.0 if y == 1 else 1.0) for g in got for y, w in g["pairs"])
