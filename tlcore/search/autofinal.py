"""Auto mode's end: from the scored trials to its result, a single run or an ensemble.

The scored trials come best first (validation accuracy, then loss, then the plan's order, so
trial 0, the default recipe, wins a tie). The members are the best `plan.ensemble` (2-3)
DIFFERENT points that completed at the best one's input size, all trained with the same seed
(hence on the same split, even of a folder-per-class dataset). `ensemble.build_ensemble` averages
them into one run, which becomes the result when its validation accuracy is at least the best
single member's less one validation image: the best single's score is the highest of several
draws on the same small validation split, so it is biased upward, and one image is the tolerance
for that bias (docs/RECIPES.md has the measurements). Otherwise the best single run is the result.

The reason's phrases (the studio translates them; keep them fixed, with values):
  ENSEMBLE_CHOSEN, ENSEMBLE_NOT_CHOSEN, ENSEMBLE_FAILED, NO_TIME_FOR_ENSEMBLE below.
"""
from __future__ import annotations

import time
from datetime import datetime

from ..core.errors import TLCoreError
from ..core.runs import Run
from ..evaluation.stats import accuracy_interval

ENSEMBLE_CHOSEN = "ensemble of {n}: points {points} (validation accuracy {val:.3f}, the best single {best:.3f})"
ENSEMBLE_NOT_CHOSEN = ("a single run: point {point} (validation accuracy {best:.3f}, the ensemble of {n} "
                       "scored {val:.3f})")
ENSEMBLE_FAILED = "a single run: the ensemble could not be built ({error})"
NO_TIME_FOR_ENSEMBLE = "a single run: {left:.0f} s of the budget were left, the ensemble needs about {need:.0f} s"
RESULT_STOPPED = "the result was stopped by the budget and scored on its best epoch so far"
RESULT_KEYS = ("run_dir", "state", "epochs", "val_accuracy", "test_accuracy", "seconds", "warnings",
               "val_accuracy_interval", "test_accuracy_interval", "val_count", "test_count", "baselines")


def size_of(entry) -> int | None:
    """The input size a scored trial trained at (its full options)."""
    size = (entry[3].get("full") or {}).get("input_size")
    return int(size) if size else None


def members_of(scored: list, k: int, n_val: int = 0) -> list:
    """The best `k` scored trials that completed uncut at the best one's input size, best first;
    one point once (a point cross-validated on several folds counts as one). With `n_val`, only
    points whose validation accuracy lies inside the best one's 95% interval (on n_val images):
    a point validation tells apart from the best is no member."""
    if not scored:
        return []
    size, seen, out = size_of(scored[0]), set(), []
    floor = (accuracy_interval(-scored[0][0], n_val) or [0.0])[0] if n_val else 0.0
    for entry in scored:
        trial = entry[3]
        if trial.get("cut_by_budget") or trial.get("state") != "completed" or size_of(entry) != size:
            continue
        if -entry[0] < floor and entry is not scored[0]:
            continue
        same = tuple(sorted((key, str(v)) for key, v in (trial.get("full") or {}).items() if key != "name"))
        if entry[2] in seen or (same and same in seen):  # a point drawn twice trains the same run
            continue
        seen.update({entry[2], same})
        out.append(entry)
    return out[:k]


def result_of_run(run_dir: str) -> dict:
    """What `tlcore train` returns, read from a finished run's folder (a trial chosen as the result)."""
    run = Run(run_dir)
    status, summary = run.raw_status(), run.summary()
    seconds = None
    try:
        seconds = round((datetime.fromisoformat(status["ended_at"].replace("Z", "+00:00")) -
                         datetime.fromisoformat(status["started_at"].replace("Z", "+00:00"))).total_seconds(), 2)
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    out = {"run_dir": str(run.path), "state": summary["state"], "epochs": len(run.metrics()),
           "val_accuracy": summary["val_accuracy"], "test_accuracy": summary["test_accuracy"], "seconds": seconds,
           "warnings": status.get("warnings") or []}
    for key in RESULT_KEYS[7:]:
        out[key] = status.get(key) if status.get(key) is not None else summary.get(key)
    return out


def scored_when_stopped(result: dict) -> dict:
    """A result stopped by the budget, scored on its test split as `tlcore evaluate` does."""
    from ..evaluation.evaluate import evaluate_run

    ev = evaluate_run(result["run_dir"])
    if ev.get("split") == "test":
        result.update(test_accuracy=ev.get("accuracy"), test_accuracy_interval=ev.get("accuracy_interval"),
                      test_count=ev.get("count"))
    return result


def choose(members: list, best_val: float, n_val: int, runs_dir, name: str, deadline: float,
           need_s: float, announce=None) -> tuple[dict | None, str, dict | None]:
    """(the ensemble's result or None, the reason's phrase, the ensemble record) for `members`
    (scored trials or final runs, best first, each with a run_dir); None keeps the best single run."""
    from ..training.ensemble import build_ensemble

    left = deadline - time.time()
    if left < need_s:
        return None, NO_TIME_FOR_ENSEMBLE.format(left=max(left, 0.0), need=need_s), None
    try:
        built = build_ensemble([m[3]["run_dir"] for m in members], runs_dir=runs_dir, name=name, announce=announce)
    except TLCoreError as exc:
        return None, ENSEMBLE_FAILED.format(error=str(exc).splitlines()[0][:200]), None
    val = built.get("val_accuracy")
    points = ", ".join(str(m[2]) for m in members)
    record = {"run_dir": built["run_dir"], "val_accuracy": val,
              "members": [{"run_dir": m[3]["run_dir"], "point": m[2], "val_accuracy": -m[0],
                           "options": m[3].get("full")} for m in members]}
    n = max(n_val, 1)  # compared in images: the accuracies are float32 fractions of the same n
    if val is not None and round(val * n) >= round(best_val * n) - 1:
        record["chosen"] = True
        return built, ENSEMBLE_CHOSEN.format(n=len(members), points=points, val=val, best=best_val), record
    record["chosen"] = False
    return None, ENSEMBLE_NOT_CHOSEN.format(point=members[0][2], best=best_val, n=len(members),
                                            val=val if val is not None else float("nan")), record
