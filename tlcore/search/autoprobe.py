"""Auto mode's reference: the linear probe (`head_fit: logistic`, `training.headfit`).

On a pretrained backbone, auto mode trains the probe right after trial 0, on the dataset as
given and with the user's options: the default recipe's network with its output layer fitted
as a logistic regression on the frozen features (no second stage unless the user fixed one).
It takes a few seconds more than a process start, and it is deterministic: the same data gives
the same model whatever the seed, where every trained run moves by a few images with the seed.
On small sets of photos it is often the most accurate model too (docs/RECIPES.md).

The search's result (a single run or an ensemble) replaces it only when it is significantly
better on the same validation images: more images right only by the result than only by the
probe, with the exact McNemar test's p-value under `ALPHA`. Validation accuracies of a few dozen
images, the best of many trials and epochs, are biased upward; the test asks for a difference
that chance does not explain.

The reason's phrases (the studio translates them; keep them fixed, with values):
  PROBE_KEPT, PROBE_BEATEN, PROBE_FAILED, PROBE_ENDED below.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import TLCoreError
from ..core.runs import RunStore

ALPHA = 0.05
POINT = -1  # the probe's point number in auto's record (trial 0 is the default recipe)
PROBE_KEPT = ("the linear probe (validation accuracy {probe:.3f}): the search's best ({best:.3f}) is not "
              "significantly better on the same {n} validation images (McNemar p = {p:.2f})")
PROBE_BEATEN = ("the search's best ({best:.3f}) is significantly better than the linear probe ({probe:.3f}) "
                "on the same {n} validation images (McNemar p = {p:.3f})")
PROBE_FAILED = "no linear probe: {error}"
PROBE_ENDED = "no linear probe: it ended {state}"


def applies(opts: dict, fixed: set, kind: str) -> bool:
    """Whether auto mode trains a probe: on a pretrained backbone (`kind` transfer), with a head
    of no hidden dense layer, stage 1 epochs, and no head_fit the user chose."""
    return kind == "transfer" and "head_fit" not in fixed and not opts.get("dense") and bool(opts.get("head_epochs"))


def options(full0: dict, fixed: set, kind: str) -> dict | None:
    """The probe's options: trial 0's (`full0`, the user's options and the plan's epochs) with
    head_fit logistic and no second stage unless the user fixed one; None where there is no
    probe (`applies`)."""
    if not applies(full0, fixed, kind):
        return None
    out = dict(full0, head_fit="logistic", name=str(full0.get("name") or "auto").replace(":default", ":probe"))
    if "fine_tune_epochs" not in fixed:
        out["fine_tune_epochs"] = 0
    return out


def train(opts: dict, data: str, val_split, test_split, run_id: str, runs_dir, queue: bool, stop_file: str,
          notes: list) -> dict | None:
    """Train the probe on the dataset as given; its trial record, or None (the reason in `notes`)."""
    from .auto import _score
    from .tune import run_trial

    store = RunStore(runs_dir)
    full = dict(opts, data=data, val_split=val_split, test_split=test_split)
    try:
        status = run_trial(full, run_id, str(store.root), queue, stop_file)
    except TLCoreError as exc:
        notes.append(PROBE_FAILED.format(error=str(exc).splitlines()[0][:200]))
        return None
    path = store.root / run_id
    acc, _, _ = _score(str(path))
    if status.get("state") != "completed" or acc is None:
        notes.append(PROBE_ENDED.format(state=status.get("state")))
        return None
    return {"run_dir": str(path), "options": {"head_fit": "logistic", "fine_tune_epochs": full["fine_tune_epochs"]},
            "val_accuracy": acc, "state": "completed", "point": POINT, "fold": None, "cut_by_budget": False,
            "full": full, "default": False, "probe": True}


def validation_correct(run_dir: str) -> np.ndarray | None:
    """Whether the run's model is right on each image of its validation split (in file order);
    None without validation images."""
    from ..data.pipeline import scan, split_arrays
    from ..data.splits import of_run
    from ..ship.predict import RunModel

    rm = RunModel(run_dir)
    cfg = rm.run.config()
    ds = scan((cfg.get("options") or {}).get("data"), check_files=False, **of_run(cfg))
    if not ds.files.get("validation"):
        return None
    images, labels, _, _ = split_arrays(ds, "validation", rm.input_size, rm.resize)
    if not len(labels):
        return None
    return rm.probabilities(images).argmax(axis=1) == labels


def gate(result: dict, probe: dict) -> tuple[bool, str, dict]:
    """Whether the search's `result` (a train result with run_dir) stays auto's result against the
    `probe` trial; the reason's phrase; the comparison's record {n, result_only, probe_only, p_value}."""
    from ..evaluation.stats import mcnemar

    mine, theirs = validation_correct(result["run_dir"]), validation_correct(probe["run_dir"])
    if mine is None or theirs is None or len(mine) != len(theirs):
        return True, "", {}
    test = mcnemar(mine, theirs)
    record = {"n": test["n"], "result_only": test["a_only"], "probe_only": test["b_only"],
              "p_value": test["p_value"], "probe_val_accuracy": test["b_accuracy"],
              "result_val_accuracy": test["a_accuracy"]}
    values = dict(probe=test["b_accuracy"], best=test["a_accuracy"], n=test["n"], p=test["p_value"])
    if test["a_only"] > test["b_only"] and test["p_value"] < ALPHA:
        return True, PROBE_BEATEN.format(**values), record
    return False, PROBE_KEPT.format(**values), record

