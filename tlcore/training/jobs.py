"""Training processes: start one (as the app does) and find it again; the machine queue.

The process is `python -m tlcore train --config OPTIONS --run-id ID --queue`, in a new
session so that closing the browser or restarting the app does not stop it; it waits in
the machine's first-in-first-out queue (`MachineQueue`, `machine_slot`: one training at a
time) and reports through the run store only, with a heartbeat (`heartbeat`) while it lives.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..core import home
from ..core.errors import TLCoreError
from ..core.jsonio import read_json, write_json
from ..core.runs import Run, RunStore, now_iso, process_alive


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


def spawn_error(log_name: str) -> str:
    """The last `error:` line a process started by `_spawn` wrote to its log, without the prefix;
    "see its log." when there is none."""
    log = home.home() / "logs" / f"{log_name}.log"
    lines = [l for l in log.read_text(errors="replace").splitlines() if l.startswith("error:")] \
        if log.exists() else []
    return lines[-1][7:] if lines else "see its log."


def _wait_for_run(run: Run, proc: subprocess.Popen, timeout: float = 60.0) -> Run:
    """The run once it exists and, if it waits for the machine, holds its place in the queue
    (so that runs started one after the other start in that order)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = run.raw_status()
        if status and (status.get("state") != "queued" or status.get("queue_position")):
            return run
        code = proc.poll()
        if code is not None:
            log = home.home() / "logs" / f"{run.run_id}.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise TLCoreError("Training did not start: " + (tail[0] if tail else f"exit code {code}"))
        time.sleep(0.1)
    raise TLCoreError("Training did not start within a minute; see the log under TLCORE_HOME/logs.")


def start_training(options: dict, runs_dir: str | None = None, run_id: str | None = None) -> Run:
    """Launch a training process for TrainConfig `options`; returns its run once it exists.

    The options are checked here first, so a bad choice is reported at once, not in the run.
    `run_id` names the run's folder (default: time, backbone and a random suffix).
    """
    from ..recipe.config import TrainConfig

    config = TrainConfig.from_dict(dict(options))
    config.check()
    store = RunStore(runs_dir)
    store.check_writable()
    if run_id is not None and (store.root / run_id).exists():
        raise TLCoreError(f"A run named {run_id!r} exists already in {store.root}. Choose another run_id.")
    run_id = run_id or new_run_id(config.backbone or Path(config.backbone_file or "model").stem)
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


# --- the machine queue -------------------------------------------------------------

QUEUE_POLL_SECONDS = 0.5


class MachineQueue:
    """First in, first out: one ticket file per waiting or running `train --queue` process.

    Tickets live in `TLCORE_HOME/queue/` as `<number>.json` holding the owner's pid, the
    pid's start time (so a recycled pid is not mistaken for the owner) and its run folder;
    numbers come from `queue/counter`, incremented under an exclusive flock, and the ticket is
    written while that lock is held, so ticket order is the order in which runs asked. A
    ticket whose owner is gone (exited, killed, a zombie) is skipped and removed by whoever
    reads the queue next. Only this machine's tickets count: the queue is per machine.
    """

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder is not None else home.home() / "queue"

    def take(self, run: Run) -> Path:
        """A new ticket at the back of the queue for this process and `run`; returns its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "counter", "a+") as counter:
            fcntl.flock(counter, fcntl.LOCK_EX)  # released when the file closes
            counter.seek(0)
            text = counter.read().strip()
            number = max([int(text) if text.isdigit() else 0, *self._numbers()]) + 1
            path = self.folder / f"{number:09d}.json"
            write_json(path, {"pid": os.getpid(), "pid_started": _process_start(os.getpid()),
                              "host": socket.gethostname(), "run_dir": str(run.path),
                              "queued_at": now_iso(), "running": False})
            counter.seek(0)
            counter.truncate()
            counter.write(str(number))
            counter.flush()
        return path

    def tickets(self) -> list[dict]:
        """This machine's live tickets, first in line first: {number, path, pid, run_dir, running}.

        Tickets of processes that are gone are removed on the way.
        """
        out = []
        for number, path in sorted((n, p) for n, p in self._files()):
            ticket = read_json(path)
            if not isinstance(ticket, dict):
                continue  # vanished meanwhile (tickets are written whole, by rename)
            if ticket.get("host") not in (None, socket.gethostname()):
                continue
            if not _owner_alive(ticket):
                path.unlink(missing_ok=True)
                continue
            out.append(dict(ticket, number=number, path=path))
        return out

    def _files(self) -> list[tuple[int, Path]]:
        try:
            names = list(self.folder.glob("[0-9]*.json"))
        except OSError:
            return []
        return [(int(p.stem), p) for p in names if p.stem.isdigit()]

    def _numbers(self) -> list[int]:
        return [n for n, _ in self._files()]


def _process_start(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _owner_alive(ticket: dict) -> bool:
    pid = ticket.get("pid")
    if not process_alive(pid):
        return False
    started = ticket.get("pid_started")
    return started is None or _process_start(pid) in (None, started)


def queued_runs(store: RunStore | None = None) -> list[Run]:
    """Runs of `store` waiting for the machine, in the order in which they will start.

    Queued runs without a ticket (started by an older tlcore) come last, oldest first.
    """
    store = store or RunStore()
    waiting = {r.path.resolve(): r for r in reversed(store.runs()) if r.state() == "queued"}
    ordered = []
    for ticket in MachineQueue().tickets():
        run = waiting.pop(Path(ticket.get("run_dir", "")).resolve(), None)
        if run is not None:
            ordered.append(run)
    return ordered + list(waiting.values())


@contextlib.contextmanager
def machine_slot(run: Run, wait: bool, stop: object = None):
    """One training at a time per machine when `wait`: later starts stay queued, first in first out.

    The run takes a ticket and waits, with state `queued` and its `queue_position` (1: next to
    start) in status.json, until no live ticket is ahead of it; it then also takes the flock on
    `TLCORE_HOME/train.lock` and holds it while it runs, so two can never run at once.

    Args:
        run: the waiting run (its status is updated while it waits).
        wait: False to run at once, outside the queue.
        stop: anything whose truth means a stop was asked (train's `StopRequested`); default:
            the run's stop file.

    Raises:
        StoppedWhileQueued: a stop was asked before the run's turn came.
    """
    if not wait:
        yield
        return
    stopped = (lambda: bool(stop)) if stop is not None else run.stop_requested
    queue = MachineQueue()
    ticket = queue.take(run)
    lock = open(home.home() / "train.lock", "a+")
    try:
        position = None
        while True:
            if stopped():
                raise StoppedWhileQueued()
            tickets = queue.tickets()
            mine = [t for t in tickets if t["path"] == ticket]
            if not mine:  # someone removed it (an emptied queue folder): back of the line
                ticket = queue.take(run)
                continue
            ahead = [t for t in tickets if t["number"] < mine[0]["number"]]
            if not ahead:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass  # the run before has removed its ticket but not yet let go
            waiting_ahead = sum(1 for t in ahead if not t.get("running"))
            if position != waiting_ahead + 1:
                position = waiting_ahead + 1
                run.write_status(state="queued", queue_position=position)
            time.sleep(QUEUE_POLL_SECONDS)
        write_json(ticket, dict(read_json(ticket, {}) or {}, running=True))
        run.write_status(queue_position=None)
        yield
    finally:
        ticket.unlink(missing_ok=True)
        lock.close()  # releases the flock


class StoppedWhileQueued(Exception):
    pass


def heartbeat(run: Run, done: threading.Event) -> None:
    while not done.wait(2.0):
        try:
            if run.raw_status().get("state") in ("queued", "running"):
                run.write_status()
        except OSError:
            pass


class StopRequested:
    """A stop request from the stop file or SIGTERM, checked after every batch."""

    def __init__(self, run: Run):
        self.run = run
        self.signalled = False
        self.strategy = None  # several workers: a stop anywhere (the chief's file) stops them all


    def install(self) -> None:
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._on_signal)

    def uninstall(self) -> None:
        if self.previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.previous)

    def _on_signal(self, signum, frame) -> None:
        self.signalled = True

    def __bool__(self) -> bool:
        local = self.signalled or self.run.stop_requested()
        if self.strategy is not None:  # a collective: every worker asks at the same step
            from .device import any_worker

            return any_worker(self.strategy, local)
        return local
