"""A search's record, without Ray: search.json (space, points, trials, best) kept from the run
store while the search runs, the summary per point over seeds, and listing, loading and stopping
searches (the Search page and `tlcore search` read these)."""
from __future__ import annotations

import math
import secrets
import statistics
import threading
import time
from pathlib import Path

from ..core import home
from ..core.errors import UsageError
from ..core.jsonio import read_json, write_json
from ..core.runs import RunStore, process_alive


def searches_dir() -> Path:
    return home.home() / "searches"


def new_search_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


FINAL_STATES = ("completed", "failed")  # a trial in one of these is done; others run (again) on resume


RECORD_SECONDS = 1.0


def _pairs(record: dict) -> list[tuple[int, int]]:
    """Every (point, seed) of a search, in the order Tune ran two grids: each seed's points in turn."""
    return [(p, s) for s in record["seeds"] for p in range(len(record["points"]))]


def _write_record(folder: Path, record: dict, store: RunStore, **changes) -> dict:
    record.update(changes)
    full = dict(record, **summarize(record, store))
    write_json(folder / "search.json", full)
    return full


def _recorder(folder: Path, record: dict, store: RunStore, done: threading.Event) -> None:
    """Rewrites search.json from the run store each time a trial ends (a thread of the search)."""
    seen = None
    while not done.wait(RECORD_SECONDS):
        try:
            summary = summarize(record, store)
            ended = sorted((t["run_dir"], t["state"]) for t in summary["trials"]
                           if t["state"] in ("completed", "failed", "stopped"))
            if ended != seen:
                seen = ended
                write_json(folder / "search.json", dict(record, **summary))
        except (OSError, ValueError, KeyError):
            pass  # a run being written; the next round reads it


def summarize(record: dict, store: RunStore | None = None) -> dict:
    """Trials (from the run store), points (mean and spread over seeds of the validation accuracy,
    and of the test accuracy where the runs were scored on a test split) and the best point."""
    store = store or RunStore(record.get("runs_dir"))
    prefix = f"search:{record['search_id']}:"
    trials = []
    for run in store.runs():
        opts = run.config().get("options") or {}
        name = str(opts.get("name") or "")
        if not name.startswith(prefix):
            continue
        _, _, index, seed = name.split(":")
        metrics = run.metrics()
        accs = [m["val_accuracy"] for m in metrics if m.get("val_accuracy") is not None]
        losses = [m["val_loss"] for m in metrics if m.get("val_loss") is not None]
        ev = run.evaluation() or {}
        trials.append({"run_dir": str(run.path), "state": run.state(), "point": int(index),
                       "seed": int(seed), "epochs": len(metrics),
                       "val_accuracy": max(accs) if accs else None,
                       "test_accuracy": ev.get("accuracy") if ev.get("split") == "test" else None,
                       "val_loss": min(losses) if losses else None,
                       "options": record["points"][int(index)]})
    trials.sort(key=lambda t: (t["point"], t["seed"]))
    summary = []
    for index, point in enumerate(record["points"]):
        mine = [t for t in trials if t["point"] == index]
        accs = [t["val_accuracy"] for t in mine if t["val_accuracy"] is not None]
        losses = [t["val_loss"] for t in mine if t["val_loss"] is not None]
        tests = [t["test_accuracy"] for t in mine if t["test_accuracy"] is not None]
        summary.append({"point": index, "options": point, "runs": len(mine),
                        "test_accuracy_mean": statistics.fmean(tests) if tests else None,
                        "test_accuracy_std": statistics.pstdev(tests) if len(tests) > 1 else (0.0 if tests else None),
                        "val_accuracy_mean": statistics.fmean(accs) if accs else None,
                        "val_accuracy_std": statistics.pstdev(accs) if len(accs) > 1 else (0.0 if accs else None),
                        "val_loss_mean": statistics.fmean(losses) if losses else None})
    best = None
    key = "val_accuracy_mean" if record["metric"] == "val_accuracy" else "val_loss_mean"
    scored = [p for p in summary if p[key] is not None]
    if scored:
        top = (max if record["metric"] == "val_accuracy" else min)(scored, key=lambda p: p[key])
        runs = [t for t in trials if t["point"] == top["point"] and t["val_accuracy"] is not None]
        pick = max(runs, key=lambda t: t["val_accuracy"]) if record["metric"] == "val_accuracy" \
            else min(runs, key=lambda t: t["val_loss"] if t["val_loss"] is not None else math.inf)
        best = {"run_dir": pick["run_dir"], "val_accuracy": top["val_accuracy_mean"],
                "val_loss": top["val_loss_mean"], "options": top["options"], "point": top["point"]}
    return {"trials": trials, "points_summary": summary, "best": best}


def list_searches() -> list[dict]:
    """Every search's record (its search.json as written), newest first."""
    records = [read_json(path) or {} for path in sorted(searches_dir().glob("*/search.json"), reverse=True)]
    return [record for record in records if record.get("search_id")]


def load_search(ref: str) -> dict:
    """A search's record by id or folder, with trials, points and best read from the run store now."""
    path = Path(ref)
    if not (path / "search.json").exists():
        path = searches_dir() / str(ref)
    record = read_json(path / "search.json")
    if not record:
        raise UsageError(f"No search at {ref}: give a search id or its folder (TLCORE_HOME/searches/ID).")
    if record.get("state") == "running" and not process_alive(record.get("pid")):
        record["state"] = "interrupted"
    return dict(record, **summarize(record))


def request_stop(ref: str) -> dict:
    record = load_search(ref)
    (Path(record["search_dir"]) / "stop").touch()
    return {"search_dir": record["search_dir"], "stop_requested": True}
