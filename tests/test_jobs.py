"""The machine queue: `tlcore train --queue` runs one at a time, first in first out, past dead tickets.

A holder process (no TensorFlow) keeps the machine busy while real training processes queue
behind it; the trainings use a tiny saved model as backbone (one 3x3 convolution, 16 px) so
each takes a few seconds, most of it importing TensorFlow while it waits anyway.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HOLDER = r"""
import sys, time
from pathlib import Path
from tlcore.training.jobs import machine_slot
from tlcore.core.runs import Run

run = Run(sys.argv[1])
run.path.mkdir(parents=True, exist_ok=True)
with machine_slot(run, True):
    Path(sys.argv[2]).touch()
    while not Path(sys.argv[3]).exists():
        time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory) -> Path:
    import keras

    path = tmp_path_factory.mktemp("backbone") / "tiny.keras"
    keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, name="conv"),
                      keras.layers.GlobalAveragePooling2D(name="gap")], name="tiny").save(str(path))
    return path


@pytest.fixture
def queue_setup(tlhome, make_dataset, tiny_backbone, tmp_path):
    """(start(run_id, *extra) -> Popen of a queued tiny training, release() of the holder)."""
    data = make_dataset(n=6)
    holder_dir, held, release_file = tmp_path / "holder", tmp_path / "held", tmp_path / "release"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(holder_dir), str(held), str(release_file)])
    procs = [holder]

    def start(run_id: str, *extra: str) -> subprocess.Popen:
        log = open(tmp_path / f"{run_id}.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tlcore", "train", str(data), "--backbone-file", str(tiny_backbone),
             "--preprocessing", "none", "--augment", "none", "--early-stopping", "0", "--head-epochs", "1",
             "--fine-tune-epochs", "0", "--batch-size", "4", "--test-split", "0", "--val-split", "0.34",
             "--run-id", run_id, "--queue", *extra, "--json"],
            stdout=subprocess.PIPE, stderr=log, text=True)
        log.close()
        procs.append(proc)
        return proc

    def release() -> None:
        release_file.touch()
        holder.wait(timeout=30)

    _wait(held.exists, 30)
    start.data = data
    yield start, release
    release_file.touch()
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _status(run: Path) -> dict:
    try:
        return json.loads((run / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _wait(pred, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _queued_at(run: Path, position: int) -> bool:
    status = _status(run)
    return status.get("state") == "queued" and status.get("queue_position") == position


def _tickets(home: Path) -> list[Path]:
    return sorted((home / "queue").glob("[0-9]*.json"))


def test_queued_trainings_run_one_at_a_time_in_the_order_they_queued(queue_setup, tlhome):
    from tlcore.training.jobs import queued_runs

    start, release = queue_setup
    runs = [tlhome / "runs" / f"q{i}" for i in range(3)]
    procs = []
    for i, run in enumerate(runs):  # each asks for the machine once the one before holds its ticket
        procs.append(start(run.name))
        _wait(lambda: _queued_at(run, i + 1))
    assert [r.run_id for r in queued_runs()] == ["q0", "q1", "q2"]  # the Train page's order
    release()
    order, overlap = [], []
    while any(p.poll() is None for p in procs):
        running = [r.name for r in runs if _status(r).get("state") == "running"]
        if len(running) > 1:
            overlap.append(running)
        order += [name for name in running if name not in order]
        time.sleep(0.05)
    for proc in procs:
        out, _ = proc.communicate()
        assert proc.returncode == 0 and json.loads(out)["state"] == "completed"
    assert order == ["q0", "q1", "q2"] and not overlap
    ended = [_status(r)["ended_at"] for r in runs]
    assert ended == sorted(ended)
    assert _tickets(tlhome) == [] and queued_runs() == []


def test_a_killed_queued_training_does_not_block_the_ones_behind_it(queue_setup, tlhome):
    from tlcore.core.runs import Run

    start, release = queue_setup
    victim_dir, behind_dir = tlhome / "runs" / "victim", tlhome / "runs" / "behind"
    victim = start("victim")
    _wait(lambda: _queued_at(victim_dir, 1))
    behind = start("behind")
    _wait(lambda: _queued_at(behind_dir, 2))
    os.kill(victim.pid, signal.SIGKILL)
    time.sleep(0.3)  # not reaped: a zombie, whose pid still answers os.kill(pid, 0)
    _wait(lambda: _queued_at(behind_dir, 1), 10)  # the dead ticket is skipped...
    assert len(_tickets(tlhome)) == 2  # ...and removed: the holder's and behind's are left
    assert Run(victim_dir).state() == "interrupted"
    release()
    out, _ = behind.communicate(timeout=120)
    assert behind.returncode == 0 and json.loads(out)["state"] == "completed"
    assert _tickets(tlhome) == []


def test_a_stop_request_or_sigterm_ends_a_queued_training_as_stopped(queue_setup, tlhome):
    start, release = queue_setup
    by_file, by_signal = tlhome / "runs" / "by-file", tlhome / "runs" / "by-signal"
    procs = {by_file: start(by_file.name), by_signal: start(by_signal.name)}
    _wait(lambda: _status(by_file).get("queue_position") and _status(by_signal).get("queue_position"))
    res = subprocess.run([sys.executable, "-m", "tlcore", "stop", str(by_file), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert json.loads(res.stdout) == {"run_dir": str(by_file), "stop_requested": True, "state": "queued"}
    procs[by_signal].send_signal(signal.SIGTERM)
    for run, proc in procs.items():
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and json.loads(out)["state"] == "stopped"
        status = _status(run)
        assert status["state"] == "stopped" and status["ended_at"] and status["epoch"] == 0
    assert len(_tickets(tlhome)) == 1  # only the holder's
    release()


def test_the_apps_starts_queue_in_the_order_they_were_made(queue_setup, tlhome, tiny_backbone):
    from tlcore.training.jobs import queued_runs, start_training
    from tlcore.core.runs import Run

    start, release = queue_setup
    options = dict(data=str(start.data), backbone_file=str(tiny_backbone), preprocessing="none",
                   augment="none", early_stopping=0, head_epochs=1, fine_tune_epochs=0, batch_size=4,
                   test_split=0.0, val_split=0.34)
    first = start_training(dict(options, name="first"))
    second = start_training(dict(options, name="second"))  # at once, as the Train page's twin does
    assert first.raw_status()["queue_position"] == 1  # start_training returned with its place held
    _wait(lambda: second.raw_status().get("queue_position") == 2)
    assert [r.run_id for r in queued_runs()] == [first.run_id, second.run_id]
    for run in (first, second):
        run.request_stop()
    _wait(lambda: all(Run(r.path).state() == "stopped" for r in (first, second)), 60)
    release()


# --- the queue's bookkeeping, in this process ------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_tickets_are_numbered_in_order_and_dead_or_recycled_owners_are_dropped(tlhome):
    from tlcore.training.jobs import MachineQueue
    from tlcore.core.jsonio import read_json, write_json
    from tlcore.core.runs import Run

    queue = MachineQueue()
    paths = [queue.take(Run(tlhome / "runs" / f"r{i}")) for i in range(4)]
    assert [p.name for p in paths] == [f"{n:09d}.json" for n in (1, 2, 3, 4)]
    write_json(paths[1], dict(read_json(paths[1]), pid=_dead_pid()))  # a process that is gone
    write_json(paths[2], dict(read_json(paths[2]), pid_started=1))  # this pid, but another process
    write_json(paths[3], dict(read_json(paths[3]), host="elsewhere"))  # another machine's queue
    assert [t["number"] for t in queue.tickets()] == [1]
    assert [p.exists() for p in paths] == [True, False, False, True]
    (queue.folder / "counter").unlink()  # numbers never go back, even without the counter
    assert queue.take(Run(tlhome / "runs" / "r5")).name == f"{5:09d}.json"


def test_queued_runs_follow_ticket_order_then_unticketed_runs(tlhome):
    from tlcore.training.jobs import MachineQueue, queued_runs
    from tlcore.core.runs import Run, now_iso

    runs = {}
    for name, started in (("a", "2001"), ("b", "2002"), ("c", "2003"), ("old", "2000")):
        runs[name] = Run(tlhome / "runs" / name)
        runs[name].path.mkdir(parents=True)
        runs[name].write_status(state="queued", pid=os.getpid(), started_at=f"{started}-01-01T00:00:00Z")
    queue = MachineQueue()
    for name in ("c", "a", "b"):  # asked for the machine in this order
        queue.take(runs[name])
    assert [r.run_id for r in queued_runs()] == ["c", "a", "b", "old"]
    runs["a"].write_status(state="completed", ended_at=now_iso())
    assert [r.run_id for r in queued_runs()] == ["c", "b", "old"]


def test_option_differences_lists_only_what_changed_between_runs(tmp_path):
    from tlcore.core.jsonio import write_json
    from tlcore.core.runs import Run, option_differences

    runs = []
    for i, options in enumerate([{"backbone": "VGG16", "lr": 0.001, "seed": 1, "name": "a"},
                                 {"backbone": "VGG16", "lr": 0.01, "seed": 1, "name": "b"},
                                 {"backbone": "VGG16", "lr": 0.001, "seed": 2, "cut": "x"}]):
        (tmp_path / f"r{i}").mkdir()
        write_json(tmp_path / f"r{i}" / "config.json", {"options": options})
        runs.append(Run(tmp_path / f"r{i}"))
    rows = option_differences(runs)
    assert [r["option"] for r in rows] == ["lr", "seed", "cut"]  # not the backbone, not the name
    assert rows[0] == {"option": "lr", "r0": 0.001, "r1": 0.01, "r2": 0.001}
    assert rows[2]["r0"] is None and rows[2]["r2"] == "x"
    assert option_differences(runs[:1]) == []
