"""Ensembles: several finished runs averaged into ONE Keras model, saved as a normal run.

`build_ensemble(run_dirs)` checks that the members agree on everything outside their models
(classes in the same order, input size, resize mode, and the images they were scored on), loads
each member's model.keras, and builds a functional model: the image input, every member applied
to it (each keeps its own preprocessing inside), the members' probabilities averaged
(`keras.layers.Average`). That model is saved as the run's model.keras in safe mode (stock layers
only), so every export, `predict`, `serve`, Grad-CAM (`evaluation.explain` averages the members'
maps) and the live view take it as any run's. The run is scored like any run: test accuracy with
its interval, and the baselines of its first member.

`best_runs(run_dirs, k)` picks the members: the k best by validation accuracy. `tlcore train
--seeds N --ensemble K` and auto mode call both.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Callable

from ..core.errors import TLCoreError
from ..core.jsonio import write_json
from ..core.runs import Run, RunStore, now_iso
from ..recipe.surgery import ensemble_model

def best_runs(run_dirs, k: int) -> list[str]:
    """The `k` runs of `run_dirs` with the highest validation accuracy (best epoch), best first; a
    tie keeps the given order."""
    scored = []
    for order, path in enumerate(run_dirs):
        metrics = Run(path).metrics()
        val = max((m["val_accuracy"] for m in metrics if m.get("val_accuracy") is not None), default=None)
        scored.append((-(val if val is not None else -1.0), order, str(path)))
    return [path for _, _, path in sorted(scored)[:k]]


def _members(run_dirs, runs_dir) -> tuple[list, bool]:
    """Each member's RunModel, checked: completed, with a model, the same classes, input size,
    resize mode and test images; and whether they also share their validation images."""
    from ..data.pipeline import scan
    from ..data.splits import SCORED_SPLITS, of_run
    from ..ship.predict import RunModel

    if len(run_dirs) < 2:
        raise TLCoreError(f"An ensemble averages 2 runs or more; {len(run_dirs)} given.")
    if len({str(Path(p).resolve()) for p in run_dirs}) < len(run_dirs):
        raise TLCoreError("The same run is named twice: every member of an ensemble must be another run.")
    members = [RunModel(path, runs_dir) for path in run_dirs]
    first = members[0]
    splits, same_validation = None, True
    for rm in members:
        state = rm.run.state()
        if state != "completed":
            raise TLCoreError(f"Run {rm.run.run_id} is {state}; an ensemble takes completed runs only.")
        for what, mine, theirs in (("classes", rm.labels, first.labels), ("input size", rm.input_size, first.input_size),
                                   ("resize mode", rm.resize, first.resize)):
            if mine != theirs:
                raise TLCoreError(f"Run {rm.run.run_id} has {what} {mine}, run {first.run.run_id} {theirs}: the "
                                  "members of an ensemble read the same images the same way. Pick runs trained "
                                  "with the same classes, input size and resize mode.")
        cfg = rm.run.config()
        ds = scan((cfg.get("options") or {}).get("data"), check_files=False, **of_run(cfg))
        mine = {s: sorted(p for p, _ in ds.files.get(s, [])) for s in SCORED_SPLITS}
        if splits is None:
            splits = mine
        same_validation = same_validation and mine["validation"] == splits["validation"]
        if mine["test"] != splits["test"]:
            raise TLCoreError(f"Run {rm.run.run_id} holds out other test images than run {first.run.run_id} (a "
                              "folder per class is split by the seed): one member may have trained on images "
                              "the ensemble is tested on. Ensemble runs of a dataset with a test/ folder.")
    return members, same_validation


def build_ensemble(run_dirs, runs_dir=None, run_id: str | None = None, name: str | None = None,
                   announce: Callable[[Path], None] | None = None, group: str | None = None) -> dict:
    """Average the runs `run_dirs` into one model, saved as a new run and scored on its test split.

    Returns what `tlcore train` returns for it ({run_dir, state, epochs, val_accuracy,
    test_accuracy, seconds, warnings, intervals, counts, baselines}) with `ensemble`: {members:
    [{run_dir, val_accuracy, test_accuracy}]}.

    Raises:
        TLCoreError: fewer than 2 runs; a run not completed; members that differ in
            classes, input size, resize mode or test images.
    """
    import keras

    from ..evaluation.evaluate import evaluate_run, run_record
    from .train import save_atomic, versions

    t0 = time.time()
    members, same_validation = _members([str(p) for p in run_dirs], runs_dir)
    first = members[0]
    summaries = [rm.run.summary() for rm in members]
    store = RunStore(runs_dir)
    run = store.create(run_id, hint="ensemble")
    if announce:
        announce(run.path)
    cfg = first.run.config()
    member_list = [{"run_dir": str(rm.run.path), "val_accuracy": s["val_accuracy"], "test_accuracy": s["test_accuracy"]}
                   for rm, s in zip(members, summaries)]
    repeat = [dict(m, options=rm.run.config().get("options")) for m, rm in zip(member_list, members)]
    write_json(run.file("config.json"), {**cfg, "ensemble": {"members": repeat}, "versions": versions(),
                                         "created_at": now_iso()})
    write_json(run.file("labels.json"), first.labels)
    status = {"state": "running", "pid": os.getpid(), "host": socket.gethostname(), "started_at": now_iso(), "ended_at": None, "stage": "ensemble", "error": None,
              "traceback": None, "ensemble": {"members": [m["run_dir"] for m in member_list]}}
    if group:
        status["group"] = {"id": group, "kind": "ensemble"}
    if name:
        status["name"] = name
    # the members were scored on the same test images: the first member's baselines are the ensemble's
    status["baselines"] = first.run.raw_status().get("baselines") or []
    run.write_status(**status)
    try:
        model = ensemble_model([keras.models.load_model(str(rm.run.model_path()), safe_mode=True, compile=False)
                                for rm in members])
        save_atomic(model, run.file("model.keras"))
        ev = evaluate_run(run.path, runs_dir=runs_dir, model=model)  # evaluation.json, with those baselines
        val = ev["accuracy"] if ev["split"] == "validation" else \
            _validation_accuracy(run, model, runs_dir) if same_validation else None
    except BaseException as exc:
        run.write_status(state="failed", ended_at=now_iso(), error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
        raise
    val_count = ev["count"] if ev["split"] == "validation" else run.raw_status().get("val_count") if val is not None else None
    honest, warnings = run_record(ev, val, val_count)
    run.write_status(**honest, val_accuracy=val, warnings=warnings, state="completed", ended_at=now_iso())
    return {"run_dir": str(run.path), "state": "completed", "epochs": 0, "val_accuracy": val,
            "test_accuracy": ev["accuracy"] if ev["split"] == "test" else None,
            "seconds": round(time.time() - t0, 2), "warnings": warnings, **honest,
            "ensemble": {"members": member_list}}


def _validation_accuracy(run: Run, model, runs_dir) -> float | None:
    """The ensemble's accuracy on the validation images (recorded with their count), read
    without touching evaluation.json."""
    from ..evaluation.evaluate import validation_correct

    correct = validation_correct(run.path, runs_dir, model=model)
    if correct is None:
        return None
    run.write_status(val_count=int(len(correct)))
    return float(correct.mean())
