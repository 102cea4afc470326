"""Start training in a process of its own (as the app does) and find it again later.

The process is `python -m tlcore train --config OPTIONS --run-id ID --queue`, in a new
session so that closing the browser or restarting the app does not stop it; it waits in
the machine's queue (one training at a time) and reports through the run store only.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import home
from .errors import TLCoreError
from .jsonio import write_json
from .runs import Run, RunStore


def new_run_id(hint: str = "run") -> str:
    return "{}-{}-{}".format(_dt.datetime.now().strftime("%Y%m%d-%H%M%S"),
                             re.sub(r"[^a-z0-9]+", "", hint.lower())[:24] or "run", secrets.token_hex(2))


def _spawn(args: list[str], log_name: str) -> subprocess.Popen:
    logs = home.home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / f"{log_name}.log", "ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return subprocess.Popen([sys.executable, "-m", "tlcore", *args], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)


def _wait_for_run(run: Run, proc: subprocess.Popen, timeout: float = 60.0) -> Run:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if run.file("status.json").exists():
            return run
        code = proc.poll()
        if code is not None:
            log = home.home() / "logs" / f"{run.run_id}.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise TLCoreError("Training did not start: " + (tail[0] if tail else f"exit code {code}"))
        time.sleep(0.1)
    raise TLCoreError("Training did not start within a minute; see the log under TLCORE_HOME/logs.")


def start_training(options: dict, runs_dir: str | None = None) -> Run:
    """Launch a training process for TrainConfig `options`; returns its run once it exists.

    The options are checked here first, so a bad choice is reported at once, not in the run.
    """
    from .train import TrainConfig

    config = TrainConfig.from_dict(dict(options))
    config.check()
    store = RunStore(runs_dir)
    store.check_writable()
    run_id = new_run_id(config.backbone or Path(config.backbone_file or "model").stem)
    pending = home.home() / "pending"
    pending.mkdir(parents=True, exist_ok=True)
    cfg_path = pending / f"{run_id}.json"
    write_json(cfg_path, {"options": config.to_dict()})
    proc = _spawn(["train", "--config", str(cfg_path), "--run-id", run_id,
                   "--runs-dir", str(store.root), "--queue", "--json"], run_id)
    try:
        return _wait_for_run(Run(store.root / run_id), proc)
    finally:
        cfg_path.unlink(missing_ok=True)  # read by the process before its run folder exists


def resume_training(run_dir, runs_dir: str | None = None) -> Run:
    """Continue an interrupted or stopped run from its checkpoint, in a new process."""
    store = RunStore(runs_dir)
    run = store.get(run_dir)
    if run.state() in ("running", "queued"):
        raise TLCoreError(f"Run {run.run_id} is still {run.state()}.")
    if run.model_path() is None:
        raise TLCoreError(f"Run {run.run_id} has no checkpoint to resume from.")
    try:
        run.file("stop").unlink()
    except FileNotFoundError:
        pass
    before = run.raw_status().get("updated_at")
    proc = _spawn(["train", "--resume", str(run.path), "--runs-dir", str(store.root), "--queue",
                   "--json"], run.run_id)
    deadline = time.time() + 60
    while time.time() < deadline:
        status = run.raw_status()
        if status.get("updated_at") != before and status.get("state") in ("queued", "running"):
            return run
        if proc.poll() is not None:
            raise TLCoreError(f"Resuming failed: {run.raw_status().get('error') or 'see the log'}")
        time.sleep(0.2)
    return run


@contextlib.contextmanager
def machine_slot(run: Run, wait: bool):
    """One training at a time per machine when `wait`: later starts stay queued, in order."""
    if not wait:
        yield
        return
    home.home().mkdir(parents=True, exist_ok=True)
    with open(home.home() / "train.lock", "a+") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                run.write_status(state="queued")
                if run.stop_requested():
                    raise _StoppedWhileQueued()
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class _StoppedWhileQueued(Exception):
    pass



def _beat(run: Run, done: threading.Event) -> None:
    while not done.wait(2.0):
        try:
            if run.raw_status().get("state") in ("queued", "running"):
                run.write_status()
        except OSError:
            pass
