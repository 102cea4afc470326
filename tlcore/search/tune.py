"""Hyperparameter search on Ray Tune: many normal runs, scheduled by Ray, scored per epoch.

A search is a fixed part (the usual `train` options) and a space (option name -> a list of
choices, or {"min", "max", "log", "int"} for a range). Points are every combination of the
listed choices (`grid=True`) or `trials` points drawn at random (seeded); each point runs
`seeds` times with consecutive seeds. Every trial is a `tlcore train` process writing a normal
run (named ``search:ID:POINT:SEED``) to the run store; the trial follows its metrics.jsonl and
reports each epoch to Tune, so ASHA can stop weak trials early (the process then ends as a
stopped run). `search.json` (space, points, trials, best) lives in TLCORE_HOME/searches/ID/,
with Ray's own storage beside it. It is rewritten from the run store each time a trial ends, and
when SIGTERM or SIGINT ends the search (state `interrupted`); `resume_search` (`tlcore search
--resume SEARCH_DIR`) runs the trials that have no completed or failed run yet, continuing an
unfinished run from its checkpoint, so a finished search holds exactly points x seeds trials.

Trials share stage 1: a trial whose stage-1 options (`TrainConfig.stage1_options`) match an
earlier trial's loads the stage 1 that trial saved in the search folder's stage1/ instead of
training it again (`training.stage1`; the result is the same as trained alone), unless the
search was started with `reuse=False`. How many trials run at once, when not given, follows
from the cores and the free memory (`capacity`); search.json's `concurrency` says what was
chosen and why.

Ray is imported here only, never by training or the app. Without an address, Ray starts on
this machine with its cores, one trial at a time, each trial waiting its turn in the machine
queue like any training. With an address, it joins that cluster and places one trial per GPU
(per CPU without GPUs); the dataset and the runs folder must then be on a file system every
node reads and writes, which is checked on every node before the first trial.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..core import home
from ..core.errors import OptionError, TLCoreError, UsageError
from ..core.jsonio import read_json, write_json
from ..core.runs import Run, RunStore, process_alive
from . import capacity
from .space import load_space, points  # noqa: F401
from .record import (FINAL_STATES, _pairs, _recorder, _write_record, new_search_id,  # noqa: F401
                     searches_dir, summarize)

METRICS = ("val_accuracy", "val_loss")
SCHEDULERS = ("none", "asha")
POLL_SECONDS = 0.5


# --- the space ---------------------------------------------------------------------


# --- one trial -----------------------------------------------------------------------

def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The training process gets SIGTERM (a stop, recorded as such) if the trial's thread dies."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def run_trial(options: dict, run_id: str, runs_dir: str, queue: bool, stop_file: str,
              report=None, stage1_dir: str | None = None) -> dict:
    """Train one point in a `tlcore train` process; `report(metrics)` after every epoch.
    With `stage1_dir`, the trial shares stage 1 there with trials of the same stage-1 options
    (`training.stage1`).

    A trial whose run is already there (a search resumed after a stop or a kill) continues it
    from its checkpoint (`tlcore train --resume`), or starts it again where it has none.
    Returns the run's last status. A process that ends without a final state (killed) leaves
    its run marked failed with the reason, and raises so that Tune records the trial as failed.
    """
    root = Path(runs_dir)
    pending = root.parent / "pending"
    pending.mkdir(parents=True, exist_ok=True)
    cfg = pending / f"{run_id}.json"
    write_json(cfg, {"options": options})
    args = [sys.executable, "-m", "tlcore", "train", "--config", str(cfg), "--run-id", run_id,
            "--runs-dir", str(root), "--json"] + (["--queue"] if queue else []) + \
        (["--stage1-dir", str(stage1_dir)] if stage1_dir else [])
    earlier = Run(root / run_id)
    if earlier.path.exists():
        if earlier.state() == "completed":
            return earlier.raw_status()
        if earlier.state() in ("stopped", "interrupted", "failed") and earlier.model_path() is not None:
            if earlier.raw_status().get("state") in ("queued", "running"):  # killed: not running any more
                earlier.write_status(state="interrupted")
            args = [sys.executable, "-m", "tlcore", "train", "--resume", str(earlier.path), "--json"] + \
                (["--queue"] if queue else [])
        else:
            import shutil

            shutil.rmtree(earlier.path, ignore_errors=True)  # nothing to continue from: start again
    logs = home.home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{run_id}.log", "ab") as log:
        # its own session, so that Ray ending the trial's worker does not kill it mid-write:
        # it gets SIGTERM instead (a stop, recorded as one) when this thread goes away
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True,
                                preexec_fn=_die_with_parent)
    run, seen = Run(root / run_id), 0
    try:
        while True:
            done = proc.poll() is not None
            records = run.metrics() if run.path.exists() else []
            for epoch, record in enumerate(records[seen:], start=seen + 1):
                if report is not None and record.get("val_accuracy") is not None:
                    report({"epoch": epoch, "val_accuracy": record.get("val_accuracy"),
                            "val_loss": record.get("val_loss"), "run_dir": str(run.path)})
            seen = len(records)
            if done:
                break
            if Path(stop_file).exists() and run.path.exists() and not run.stop_requested():
                run.request_stop()
            time.sleep(POLL_SECONDS)
    finally:
        if proc.poll() is None:  # Tune stopped the trial (ASHA) or the search ended: stop the run
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        cfg.unlink(missing_ok=True)
    status = run.raw_status()
    if status.get("state") not in ("completed", "stopped", "failed"):
        reason = f"the training process ended without a result (exit code {proc.returncode})"
        if run.path.exists():
            run.write_status(state="failed", error=reason)
        raise TLCoreError(f"Trial {run_id} failed: {reason}.")
    if status.get("state") == "failed":
        raise TLCoreError(f"Trial {run_id} failed: {status.get('error') or 'see its log'}.")
    return status


def _trainable(config: dict, plan: dict) -> None:
    """Tune's function trainable: one (point, seed) of the plan."""
    from ray import tune

    index, seed = config["pair"]
    options = dict(plan["base"], **plan["points"][index], seed=seed,
                   name=f"search:{plan['id']}:{index}:{seed}")
    run_id = f"{plan['id']}-p{index}-s{seed}"
    run_trial(options, run_id, plan["runs_dir"], plan["queue"], plan["stop_file"], report=tune.report,
              stage1_dir=plan.get("stage1_dir"))


# --- the search ------------------------------------------------------------------------


def _check_shared_storage(paths: list[str]) -> None:
    """Every alive Ray node must read the dataset and read and write the runs folder."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    marker = Path(paths[-1]) / f".search-probe-{secrets.token_hex(4)}"
    marker.write_text("probe")

    @ray.remote(num_cpus=0)
    def probe(read: list[str], marker_path: str) -> str | None:
        import os as _os

        for p in read:
            if not _os.path.exists(p):
                return f"cannot see {p}"
        if not _os.path.exists(marker_path):
            return f"does not see the files this machine writes in {_os.path.dirname(marker_path)}"
        try:
            mine = marker_path + "-" + _os.uname().nodename
            with open(mine, "w") as f:
                f.write("x")
            _os.remove(mine)
        except OSError as exc:
            return f"cannot write in {_os.path.dirname(marker_path)} ({exc})"
        return None

    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = {n["NodeManagerAddress"]: probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(paths, str(marker)) for n in nodes}
        problems = {node: ray.get(ref, timeout=120) for node, ref in refs.items()}
    finally:
        marker.unlink(missing_ok=True)
    bad = {node: why for node, why in problems.items() if why}
    if bad:
        lines = "; ".join(f"node {node} {why}" for node, why in bad.items())
        raise TLCoreError(f"A search needs the dataset and the runs folder on storage every node "
                          f"can read and write (a shared file system mounted at the same path): {lines}.")


def checked_points(base: dict, space, trials: int, grid: bool):
    """(space, points, fixed config): the space read, its points drawn, every point checked with
    the fixed options and the fixed part with its data, so a bad choice is reported now, not in a trial."""
    from ..recipe.config import TrainConfig

    space = load_space(space)
    base_config = TrainConfig.from_dict(dict(base))
    chosen = points(space, trials, grid, seed=base_config.seed)
    for point in chosen:
        try:
            TrainConfig.from_dict(dict(base, **point)).check(data=False)
        except OptionError as exc:
            raise OptionError(exc.option, exc.template + f" (in the space's point {point})") from None
    base_config.check()
    return space, chosen, base_config


def run_search(base: dict, space, trials: int = 8, grid: bool = False, seeds: int = 1,
               metric: str = "val_accuracy", scheduler: str = "none", address: str | None = None,
               max_concurrent: int | None = None, runs_dir: str | None = None,
               search_id: str | None = None, reuse: bool = True) -> dict:
    """Run a search to its end and return search.json's summary (see the module doc).

    `reuse` (default): trials with the same stage-1 options train stage 1 once (in the search
    folder's stage1/, see `training.stage1`); False trains every trial's stage 1 (benchmarks)."""
    if metric not in METRICS:
        raise OptionError("metric", f"must be one of {', '.join(METRICS)}. Received: {metric!r}")
    if scheduler not in SCHEDULERS:
        raise OptionError("scheduler", f"must be one of {', '.join(SCHEDULERS)}. Received: {scheduler!r}")
    for name, value in (("seeds", seeds), ("max_concurrent", max_concurrent or 1)):
        if int(value) < 1:
            raise OptionError(name, f"must be at least 1. Received: {value}")
    space, chosen, base_config = checked_points(base, space, trials, grid)
    resolved = base_config.resolved().to_dict()
    store = RunStore(runs_dir)
    store.check_writable()
    search_id = search_id or new_search_id()
    folder = searches_dir() / search_id
    folder.mkdir(parents=True, exist_ok=True)
    seed_list = [base_config.seed + i for i in range(int(seeds))]
    record = {"search_id": search_id, "search_dir": str(folder), "state": "running",
              "space": space, "grid": bool(grid), "seeds": seed_list, "metric": metric,
              "scheduler": scheduler, "address": address,
              "base": {k: v for k, v in resolved.items() if k not in space}, "points": chosen,
              "runs_dir": str(store.root), "pid": os.getpid(), "reuse_stage1": bool(reuse),
              "trials": [], "best": None}
    write_json(folder / "search.json", record)
    return _run(record, store, max_concurrent, data=str(resolved.get("data") or ""))


def resume_search(search_dir: str, max_concurrent: int | None = None) -> dict:
    """Finish a stopped, interrupted or killed search: its trials without a completed or failed
    run run now (an unfinished run continues from its checkpoint), in the same search folder.

    Raises:
        UsageError: no search there; TLCoreError: the search is still running.
    """
    path = Path(search_dir).expanduser()
    if not (path / "search.json").exists():
        path = searches_dir() / str(search_dir)
    record = read_json(path / "search.json")
    if not record or not record.get("search_id"):
        raise UsageError(f"--resume {search_dir}: no search.json there. Give a search's folder "
                         "(TLCORE_HOME/searches/ID) or its id.")
    if record.get("state") == "running" and process_alive(record.get("pid")) and record.get("pid") != os.getpid():
        raise TLCoreError(f"The search {record['search_id']} is still running (pid {record['pid']}); "
                          "stop it first (`tlcore stop SEARCH_DIR`) or wait for it.")
    (path / "stop").unlink(missing_ok=True)
    record.update(state="running", pid=os.getpid(), resumed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    record.pop("error", None)
    store = RunStore(record["runs_dir"])
    write_json(path / "search.json", dict(record, **summarize(record, store)))
    return _run(record, store, max_concurrent, data=str(record["base"].get("data") or ""))


def _run(record: dict, store: RunStore, max_concurrent, data: str) -> dict:
    """Run the trials of `record` not done yet; keeps search.json current (after every trial, and
    from the run store when a signal ends the search)."""
    import signal

    folder = Path(record["search_dir"])
    finished = {(t["point"], t["seed"]) for t in summarize(record, store)["trials"] if t["state"] in FINAL_STATES}
    plan = {"id": record["search_id"], "base": record["base"], "points": record["points"],
            "pairs": [pair for pair in _pairs(record) if pair not in finished],
            "runs_dir": str(store.root), "queue": record.get("address") is None, "stop_file": str(folder / "stop"),
            "stage1_dir": str(folder / "stage1") if record.get("reuse_stage1", True) else None}
    options = dict(record["base"], **(record["points"][0] if record["points"] else {}))
    plan["concurrency"] = capacity.local(max_concurrent, options) if record.get("address") is None else \
        {"max_concurrent": max_concurrent, "chosen_by": "max_concurrent" if max_concurrent else "default",
         "reason": "decided once the cluster is joined"}
    record["concurrency"] = plan["concurrency"]  # the same dict: the cluster's choice is filled in by `_tune`
    done = threading.Event()
    threading.Thread(target=_recorder, args=(folder, record, store, done), daemon=True).start()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum, frame):
            raise KeyboardInterrupt(signal.Signals(signum).name)
        for sig in (signal.SIGTERM, signal.SIGINT):  # Ray replaces SIGTERM's when it starts: see `_tune`
            previous[sig] = signal.signal(sig, on_signal)
    try:
        if plan["pairs"]:
            _tune(plan, record["seeds"], record["metric"], record["scheduler"], record.get("address"),
                  plan["concurrency"]["max_concurrent"], folder, data=data)
    except BaseException as exc:
        done.set()
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            _wait_for_trials(plan, timeout=15.0)
            _write_record(folder, record, store, state="interrupted",
                          error=f"ended by a signal; `tlcore search --resume {folder}` finishes it")
        else:
            _write_record(folder, record, store, state="failed", error=str(exc) or type(exc).__name__)
        raise
    finally:
        done.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = summarize(record, store)
    ended = {(t["point"], t["seed"]) for t in summary["trials"] if t["state"] in ("completed", "failed", "stopped")}
    if (folder / "stop").exists():
        state = "stopped"
    elif set(_pairs(record)) <= ended:
        state = "completed"
    else:  # Tune ended early (its own SIGINT handling): the rest runs on resume
        state = "interrupted"
    full = _write_record(folder, record, store, state=state)
    return {"search_dir": full["search_dir"], "state": full["state"], "best": full["best"],
            "trials": full["trials"], "points": full["points_summary"]}


def _tune(plan, seed_list, metric, scheduler, address, max_concurrent, folder: Path, data: str) -> None:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Ray SIGKILLs a worker's child processes when the worker ends; a trial's training process
    # must instead get its SIGTERM (PDEATHSIG) and record a stop. Clusters: see the README.
    os.environ.setdefault("RAY_kill_child_processes_on_worker_exit", "0")
    import ray
    from ray import tune

    mode = "max" if metric == "val_accuracy" else "min"
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=True,
                      logging_level="ERROR")
        import signal

        ours = signal.getsignal(signal.SIGTERM)
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
        if callable(ours) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, ours)  # ray.init sets its own (sys.exit): the search records first
    try:
        _check_shared_storage([data, plan["runs_dir"]])
        gpus = int(ray.cluster_resources().get("GPU", 0))
        if address and "concurrency" in plan:  # one trial per GPU (else CPU), within the cluster's memory
            plan["concurrency"].update(capacity.cluster(max_concurrent, plan["base"], ray.cluster_resources()))
            max_concurrent = plan["concurrency"]["max_concurrent"]
        if address:
            resources = {"cpu": 1, "gpu": 1} if gpus else {"cpu": 1}
        else:  # this machine: one trial at a time, with every core
            resources = {"cpu": os.cpu_count() or 1}
        sched = None
        if scheduler == "asha":
            from ray.tune.schedulers import ASHAScheduler

            # the longest point's epochs (a space may hold head_epochs or fine_tune_epochs itself)
            epochs = max(int(o.get("head_epochs") or 0) + int(o.get("fine_tune_epochs") or 0)
                         for o in [dict(plan["base"], **point) for point in plan["points"] or [{}]])
            # max_t past the last epoch: a trial that reaches its end finishes as a normal run
            sched = ASHAScheduler(time_attr="training_iteration", max_t=epochs + 1,
                                  grace_period=1, reduction_factor=2)
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(_trainable, plan=plan), resources),
            param_space={"pair": tune.grid_search([list(pair) for pair in plan["pairs"]])},
            tune_config=tune.TuneConfig(metric=metric, mode=mode, scheduler=sched,
                                        max_concurrent_trials=max_concurrent or (None if address else 1)),
            run_config=tune.RunConfig(name="tune", storage_path=str(folder / "ray"), verbose=0,
                                      stop=_stop_file_stopper(folder / "stop"),
                                      failure_config=tune.FailureConfig(max_failures=0)))
        tuner.fit()
        _wait_for_trials(plan)
    finally:
        if started_here:
            ray.shutdown()


def _wait_for_trials(plan: dict, timeout: float = 120.0) -> None:
    """Trials that Tune ended early (ASHA, a stop) finish writing their run before the summary."""
    runs = [Run(path) for path in Path(plan["runs_dir"]).glob(f"{plan['id']}-p*-s*")]
    deadline = time.time() + timeout
    while time.time() < deadline and any(run.state() in ("queued", "running") for run in runs):
        time.sleep(POLL_SECONDS)
    for run in runs:  # ended by the search while it could not record it (starting, a cluster's kill)
        if run.raw_status().get("state") in ("queued", "running") and run.state() == "interrupted":
            run.write_status(state="stopped", error="ended by the search (early stopping or a stop request)")


def _stop_file_stopper(path: Path):
    """A Tune stopper: the search's stop file ends every trial (each then stops its run)."""
    from ray.tune import Stopper

    class StopFile(Stopper):
        def __call__(self, trial_id, result) -> bool:
            return path.exists()

        def stop_all(self) -> bool:
            return path.exists()

    return StopFile()


# --- following and stopping from elsewhere (the app, `tlcore stop`) -----------------------

def start_search(base: dict, space: dict, grid: bool = True, trials: int = 8, seeds: int = 1,
                 metric: str = "val_accuracy", scheduler: str = "none", runs_dir: str | None = None) -> str:
    """Start `tlcore search` in its own process (as the app starts trainings); returns the
    search's folder once its search.json exists. Options and space are checked here first."""
    from ..training.jobs import _spawn, spawn_error

    space = checked_points(base, space, trials, grid)[0]
    search_id = new_search_id()
    folder = searches_dir() / search_id
    pending = home.home() / "pending"
    pending.mkdir(parents=True, exist_ok=True)
    cfg = pending / f"search-{search_id}.json"
    write_json(cfg, {"options": dict(base)})
    args = ["search", "--config", str(cfg), "--space", json.dumps(space), "--seeds", str(int(seeds)),
            "--metric", metric, "--scheduler", scheduler, "--search-id", search_id, "--json"]
    args += ["--grid"] if grid else ["--trials", str(int(trials))]
    if runs_dir:
        args += ["--runs-dir", str(runs_dir)]
    proc = _spawn(args, f"search-{search_id}")
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            if (folder / "search.json").exists():
                return str(folder)
            if proc.poll() is not None:
                raise TLCoreError("The search did not start: " + spawn_error(f"search-{search_id}"))
            time.sleep(0.2)
    finally:
        if (folder / "search.json").exists() or proc.poll() is not None:
            cfg.unlink(missing_ok=True)
    raise TLCoreError("The search did not start within two minutes; see its log under TLCORE_HOME/logs.")


