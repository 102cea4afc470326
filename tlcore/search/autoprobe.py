"""Auto mode's references: the linear probe and the pixel model (`head_fit` logistic and pixels,
`training.headfit`, `training.pixelfit`), which the search's result must beat.

Right after trial 0, auto mode trains them on the dataset as given, with the user's options: the
default recipe's network with its output layer fitted as a logistic regression on the frozen
features (on a pretrained backbone; no second stage unless the user fixed one), and a kernel
logistic regression on the raw pixels, the pixel baseline as a network. Each takes a few seconds
more than a process start, and neither depends on the seed: the same data gives the same model,
where every trained run moves by a few images with the seed. On small sets of photos the probe
is often the most accurate model, on small greyscale sets the pixel model (docs/RECIPES.md).
The reference is the one of the two with the higher validation accuracy (ties: the probe).

The search's result (a single run or an ensemble) replaces the reference only when it is
significantly better on the same validation images: more images right only by the result than
only by the reference, with the exact McNemar test's p-value under `ALPHA`. Validation accuracies
of a few dozen images, the best of many trials and epochs, are biased upward; the test asks for a
difference that chance does not explain.

The reason's phrases (the studio translates them; keep them fixed, with values): the upper-case
constants below.
"""
from __future__ import annotations

from ..core.errors import TLCoreError
from ..core.runs import RunStore
from ..evaluation.evaluate import validation_correct

ALPHA = 0.05
POINT = -1  # the probe's point number in auto's record (trial 0 is the default recipe)
PIXELS_POINT = -2  # the pixel model's
PROBE_KEPT = ("the linear probe (validation accuracy {probe:.3f}): the search's best ({best:.3f}) is not "
              "significantly better on the same {n} validation images (McNemar p = {p:.2f})")
PROBE_BEATEN = ("the search's best ({best:.3f}) is significantly better than the linear probe ({probe:.3f}) "
                "on the same {n} validation images (McNemar p = {p:.3f})")
PIXELS_KEPT = ("the pixel model (validation accuracy {probe:.3f}): the search's best ({best:.3f}) is not "
               "significantly better on the same {n} validation images (McNemar p = {p:.2f})")
PIXELS_BEATEN = ("the search's best ({best:.3f}) is significantly better than the pixel model ({probe:.3f}) "
                 "on the same {n} validation images (McNemar p = {p:.3f})")
PIXELS_REFERENCE = ("the pixel model (head_fit pixels, validation accuracy {pixels:.3f}) is the reference: "
                    "the linear probe scored {probe:.3f}")
PROBE_FAILED = "no linear probe: {error}"
PROBE_ENDED = "no linear probe: it ended {state}"
PIXELS_FAILED = "no pixel model: {error}"
ONLY_PROBE = "no trial of the search scored in time: the linear probe (validation accuracy {val:.3f}) is the result"
ONLY_PIXELS = "no trial of the search scored in time: the pixel model (validation accuracy {val:.3f}) is the result"


def candidates(full0: dict, fixed: set, kind: str) -> list[dict]:
    """The references' options, from trial 0's (`full0`: the user's options and the plan's epochs):
    the linear probe (on a pretrained backbone, with a head of no hidden dense layer; no second stage
    unless the user fixed one) and the pixel model (no second stage: none where the user fixed one)."""
    if "head_fit" in fixed:
        return []
    name = str(full0.get("name") or "auto:default")
    out = []
    if kind == "transfer" and not full0.get("dense") and full0.get("head_epochs"):
        probe = dict(full0, head_fit="logistic", name=name.replace(":default", ":probe"))
        if "fine_tune_epochs" not in fixed:
            probe["fine_tune_epochs"] = 0
        out.append(probe)
    if not ("fine_tune_epochs" in fixed and full0.get("fine_tune_epochs")) and \
            not ("head_epochs" in fixed and not full0.get("head_epochs")):
        out.append(dict(full0, head_fit="pixels", fine_tune_epochs=0, head_epochs=max(1, int(full0.get("head_epochs") or 0)),
                        name=name.replace(":default", ":pixels")))
    return out


def train(opts: dict, data: str, val_split, test_split, run_id: str, runs_dir, queue: bool, stop_file: str,
          notes: list) -> dict | None:
    """Train a reference on the dataset as given; its trial record, or None (the reason in `notes`)."""
    from .auto import _score
    from .tune import run_trial

    pixels = opts["head_fit"] == "pixels"
    store = RunStore(runs_dir)
    full = dict(opts, data=data, val_split=val_split, test_split=test_split)
    try:
        status = run_trial(full, run_id, str(store.root), queue, stop_file)
    except TLCoreError as exc:
        notes.append((PIXELS_FAILED if pixels else PROBE_FAILED).format(error=str(exc).splitlines()[0][:200]))
        return None
    path = store.root / run_id
    acc, _, _ = _score(str(path))
    if status.get("state") != "completed" or acc is None:
        notes.append((PIXELS_FAILED if pixels else PROBE_ENDED).format(
            state=status.get("state"), error=f"state {status.get('state')}"))
        return None
    return {"run_dir": str(path), "options": {"head_fit": opts["head_fit"], "fine_tune_epochs": full["fine_tune_epochs"]},
            "val_accuracy": acc, "state": "completed", "point": PIXELS_POINT if pixels else POINT, "fold": None,
            "cut_by_budget": False, "full": full, "default": False, "probe": not pixels, "pixels": pixels}


def train_references(full0: dict, fixed: set, kind: str, data: str, val_split, test_split, search_id: str,
                     runs_dir, queue: bool, stop_file: str, notes: list) -> list[dict]:
    """Every reference of `candidates`, trained; their trial records."""
    out = []
    for opts in candidates(full0, fixed, kind):
        suffix = "pixels" if opts["head_fit"] == "pixels" else "probe"
        got = train(opts, data, val_split, test_split, f"{search_id}-{suffix}", runs_dir, queue, stop_file, notes)
        out += [got] if got else []
    return out


def reference(trained: list[dict], notes: list) -> dict | None:
    """The reference the search must beat: the probe, or the pixel model when its validation
    accuracy is higher (both are single fits, with no choice among epochs to bias them)."""
    probe = next((t for t in trained if t.get("probe")), None)
    pixels = next((t for t in trained if t.get("pixels")), None)
    if pixels is not None and (probe is None or pixels["val_accuracy"] > probe["val_accuracy"]):
        if probe is not None:
            notes.append(PIXELS_REFERENCE.format(pixels=pixels["val_accuracy"], probe=probe["val_accuracy"]))
        return pixels
    return probe


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
    beaten, kept = (PIXELS_BEATEN, PIXELS_KEPT) if probe.get("pixels") else (PROBE_BEATEN, PROBE_KEPT)
    record["reference"] = "pixels" if probe.get("pixels") else "probe"
    if test["a_only"] > test["b_only"] and test["p_value"] < ALPHA:
        return True, beaten.format(**values), record
    return False, kept.format(**values), record

