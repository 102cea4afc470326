"""The run store: one self-contained folder per run, readable live by other processes.

Files (see DESIGN.md): config.json, status.json, metrics.jsonl, checkpoint.keras,
model.keras, labels.json, evaluation.json, stop, tb/. Status is written atomically; a run
whose process is gone, a zombie, or silent for 60 s reads as ``interrupted``.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import secrets
import shutil
import socket
import threading
import time
from pathlib import Path

from . import home
from .errors import OptionError, TLCoreError
from .jsonio import append_jsonl, read_json, read_jsonl, write_json

STATES = ("queued", "running", "completed", "failed", "stopped", "interrupted")
LIVE_STATES = ("queued", "running")
PRUNABLE_STATES = ("failed", "stopped", "interrupted")  # what `RunStore.prune` may delete
HEARTBEAT_SECONDS = 2.0
SILENCE_LIMIT = 60.0


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_iso(text: str | None) -> _dt.datetime | None:
    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def process_alive(pid: int | None) -> bool:
    """True if `pid` runs on this machine and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


class Run:
    """One run folder. Writing methods are used by the training process only."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    # --- reading -----------------------------------------------------------------
    def config(self) -> dict:
        return read_json(self.file("config.json"), {}) or {}

    def labels(self) -> list[str]:
        return read_json(self.file("labels.json"), []) or []

    def metrics(self) -> list[dict]:
        return read_jsonl(self.file("metrics.jsonl"))

    def evaluation(self) -> dict | None:
        return read_json(self.file("evaluation.json"))

    def raw_status(self) -> dict:
        return read_json(self.file("status.json"), {}) or {}

    def status(self) -> dict:
        """status.json, with a live state that no longer has a live process read as interrupted."""
        status = self.raw_status()
        if status.get("state") in LIVE_STATES:
            same_host = status.get("host") in (None, socket.gethostname())
            updated = _parse_iso(status.get("updated_at"))
            silent = updated is None or (
                _dt.datetime.now(_dt.timezone.utc) - updated).total_seconds() > SILENCE_LIMIT
            dead = same_host and not process_alive(status.get("pid"))
            if dead or silent:
                status = dict(status, state="interrupted")
        return status

    def state(self) -> str:
        return self.status().get("state", "unknown")

    def model_path(self) -> Path | None:
        for name in ("model.keras", "checkpoint.keras"):
            if self.file(name).exists():
                return self.file(name)
        return None

    # --- writing -----------------------------------------------------------------
    def write_status(self, **fields) -> dict:
        with self._lock:
            status = self.raw_status()
            status.update(fields)
            status["updated_at"] = now_iso()
            # Progress (epoch, batch) is rewritten every half second: only a change of state is
            # flushed to disk.
            write_json(self.file("status.json"), status, durable="state" in fields)
            return status

    def append_metric(self, record: dict) -> None:
        append_jsonl(self.file("metrics.jsonl"), record)

    def request_stop(self) -> None:
        self.file("stop").touch()

    def stop_requested(self) -> bool:
        return self.file("stop").exists()

    def summary(self) -> dict:
        cfg = self.config().get("options", {})
        status = self.status()
        ev = self.evaluation() or {}
        metrics = self.metrics()
        val = max((m.get("val_accuracy") for m in metrics if m.get("val_accuracy") is not None),
                  default=status.get("val_accuracy"))  # a run without epochs (an ensemble) records its own
        return {
            "run_id": self.run_id, "run_dir": str(self.path), "state": status.get("state", "unknown"),
            "backbone": cfg.get("backbone") or cfg.get("backbone_file"), "dataset": cfg.get("data"),
            "name": cfg.get("name"), "started_at": status.get("started_at"),
            "val_accuracy": val, "test_accuracy": ev.get("accuracy") if ev.get("split") == "test" else None,
            # the 95% intervals recorded at the end of the training (val) and by the last evaluation
            "val_accuracy_interval": status.get("val_accuracy_interval") if val is not None else None,
            "val_count": status.get("val_count") if val is not None else None,
            "test_accuracy_interval": ev.get("accuracy_interval") if ev.get("split") == "test" else None,
            "test_count": ev.get("count") if ev.get("split") == "test" else None,
            "group": (status.get("group") or {}).get("id"),  # runs trained together (`--seeds N`)
            "error": first_line(status.get("error")),  # last: the widest column of `tlcore runs`
        }


def first_line(text: str | None, limit: int = 200) -> str | None:
    """The first non-empty line of `text`, cut to `limit` characters (None for no text)."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    if not lines:
        return None
    return lines[0] if len(lines[0]) <= limit else lines[0][: limit - 3].rstrip() + "..."


_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RunStore:
    """The runs folder: creates run folders exclusively, lists and deletes them."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = home.runs_dir(root).absolute()

    def check_writable(self) -> None:
        """Raise a clear error now, before any training, if runs cannot be written here."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{os.getpid()}-{secrets.token_hex(3)}"
            probe.write_bytes(b"x" * 4096)
            probe.unlink()
        except (OSError, NotADirectoryError) as exc:
            raise TLCoreError(
                f"Cannot write runs to {self.root}: {exc.strerror or exc}. Choose another folder "
                "with --runs-dir, or set TLCORE_HOME.") from None
        free = shutil.disk_usage(self.root).free
        if free < 50 * 2 ** 20:
            raise TLCoreError(f"Only {free // 2 ** 20} MiB free where runs are kept ({self.root}): "
                              "free some space or choose another --runs-dir.")

    def create(self, run_id: str | None = None, hint: str = "run") -> Run:
        self.check_writable()
        if run_id is not None and not _ID_RE.match(run_id):
            raise OptionError("run_id", f"may use letters, digits, '.', '_' and '-' (up to 100). "
                              f"Received: {run_id!r}")
        for _ in range(20):
            rid = run_id or "{}-{}-{}".format(
                _dt.datetime.now().strftime("%Y%m%d-%H%M%S"),
                re.sub(r"[^a-z0-9]+", "", hint.lower())[:24] or "run", secrets.token_hex(2))
            path = self.root / rid
            try:
                path.mkdir()
            except FileExistsError:
                if run_id:
                    raise TLCoreError(f"A run named {run_id!r} exists already in {self.root}. "
                                      "Choose another --run-id.") from None
                continue
            return Run(path)
        raise TLCoreError(f"Could not create a new run folder in {self.root}.")

    def runs(self) -> list[Run]:
        if not self.root.is_dir():
            return []
        runs = [Run(p) for p in self.root.iterdir()
                if p.is_dir() and not p.name.startswith(".") and (p / "status.json").exists()]
        return sorted(runs, key=lambda r: (r.raw_status().get("started_at") or "", r.run_id), reverse=True)

    def get(self, ref: str | os.PathLike) -> Run:
        """A run by folder path or by id in this store."""
        path = Path(ref).expanduser()
        if not path.is_dir():
            path = self.root / str(ref)
        if not (path / "status.json").exists() and not (path / "config.json").exists():
            raise TLCoreError(f"No run at {ref}: give a run folder (as printed by `tlcore train`) "
                              "or a run id from `tlcore runs`.")
        return Run(path)

    def delete(self, run_id: str) -> None:
        run = self.get(run_id)
        if run.status().get("state") in LIVE_STATES:
            raise TLCoreError(f"Run {run.run_id} is still {run.status()['state']}; stop it first.")
        shutil.rmtree(run.path)

    def prune(self, states=("failed",)) -> list[dict]:
        """Delete every run whose state is one of `states` (failed, stopped, interrupted; never
        a live one); returns the summaries of the runs deleted, as they were.

        Raises:
            OptionError: (states) a state that is not one of those three.
        """
        states = [states] if isinstance(states, str) else list(states)
        bad = [s for s in states if s not in PRUNABLE_STATES]
        if bad or not states:
            raise OptionError("prune", f"takes run states among {', '.join(PRUNABLE_STATES)}. "
                                       f"Received: {', '.join(map(str, bad or states)) or 'nothing'}")
        removed = []
        for run in self.runs():
            summary = run.summary()
            if summary["state"] in states:
                shutil.rmtree(run.path, ignore_errors=True)
                if not run.path.exists():
                    removed.append(summary)
        return removed


def option_differences(runs: list[Run]) -> list[dict]:
    """The training options whose values differ between `runs` (from their config.json), one
    row per option: {option, <run_id>: value, ...}, in the options' order; the seed counts."""
    configs = {run.run_id: run.config().get("options") or {} for run in runs}
    names: list[str] = []
    for options in configs.values():
        names += [k for k in options if k not in names and k != "name"]
    rows = []
    for name in names:
        values = {rid: options.get(name) for rid, options in configs.items()}
        if len({repr(v) for v in values.values()}) > 1:
            rows.append({"option": name, **values})
    return rows


def newest_live_run(store: RunStore | None = None) -> Run | None:
    """The newest run that is running or queued (what a reloaded browser re-attaches to)."""
    store = store or RunStore()
    live = [r for r in store.runs() if r.state() in LIVE_STATES]
    if not live:
        return None
    running = [r for r in live if r.state() == "running"]
    return (running or live)[0]


def progress_estimate(status: dict, metrics: list[dict], seen: dict | None = None,
                      now: float | None = None) -> tuple[dict, dict]:
    """Progress inside the current epoch and an estimate of the time left, in numbers.

    Args:
        status: the run's status.json.
        metrics: its finished epochs.
        seen: what the previous call returned as its second value (the first batch count seen
            in this epoch and when), so the rate can be measured live; None at first.
        now: the current time (``time.time()``).

    Epochs are timed per stage: stage-1 epochs on cached features can be 10-100 times faster
    than stage-2 epochs, so the time left in a stage comes from that stage's own epochs (its
    first, which traces and may compute features, left out once there are others), and the
    run's time left is None while a later stage has no epoch timed yet.

    Returns:
        ``({fraction, epoch_seconds_left, stage_seconds_left, run_seconds_left}, seen)``; a time
        left is None while there is nothing to estimate it from.
    """
    now = time.time() if now is None else now
    stage, epoch = status.get("stage"), int(status.get("epoch") or 0)
    epochs_total = int(status.get("epochs_total") or 0)
    batch, batches = int(status.get("batch") or 0), status.get("batches_total")
    key = [status.get("pid"), stage, epoch]
    if not seen or seen.get("key") != key or batch < seen.get("batch", 0):
        seen = {"key": key, "batch": batch, "time": now}
    fraction = min(1.0, batch / batches) if batches else 0.0
    rate = None
    if batches and batch > seen["batch"] and now > seen["time"]:
        rate = (batch - seen["batch"]) / (now - seen["time"])  # batches per second
    this_stage = [m.get("seconds") for m in metrics if m.get("seconds") and m.get("stage", stage) == stage]
    if len(this_stage) > 1:
        this_stage = this_stage[1:]
    recent = this_stage[-3:]
    per_epoch = float(sum(recent) / len(recent)) if recent else None
    stage_epochs = {int(k): int(v) for k, v in (status.get("stage_epochs") or {}).items()}
    stage_end = stage_epochs.get(1, 0) if stage == 1 and stage_epochs else epochs_total
    epoch_left = None
    if batches:
        if rate:
            epoch_left = (batches - batch) / rate
        elif per_epoch:
            epoch_left = (1.0 - fraction) * per_epoch
    stage_left = run_left = None
    if epoch_left is not None:
        full = per_epoch or (batches / rate if rate and batches else None)
        later = max(0, stage_end - epoch)
        stage_left = epoch_left + (later * full if full else 0.0)
        run_left = stage_left if epochs_total <= stage_end else None  # a later stage is not timed yet
    return {"fraction": fraction, "epoch_seconds_left": epoch_left, "stage_seconds_left": stage_left,
            "run_seconds_left": run_left}, seen
