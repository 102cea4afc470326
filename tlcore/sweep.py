"""Comparisons that are several runs: with versus without pretraining, and cut x unfreeze grids.

Runs start through `jobs.start_training`, so they wait in the machine's queue and run one
after another; a grid shares the stage-1 feature cache wherever cut and data are the same.
A sweep's runs are tagged ``sweep:ID:CUT:UNFREEZE`` in their name; with several seeds per point
each point is trained once per seed (seed, seed + 1, ...), and the point's figure is the mean
over its seeds, with the spread beside it (`point_summary`). Results are read back from the run
store as rows, a cut x unfreeze matrix of means, and the best point.
"""
from __future__ import annotations

import itertools
import secrets
import statistics
from typing import Sequence

from .errors import TLCoreError
from .runs import RunStore


def from_scratch(options: dict) -> dict:
    """The same architecture and data trained from random weights: everything trains from the
    first epoch (no frozen stage, BatchNorm included), for as many epochs as the original."""
    from .config import scratch_options

    out = scratch_options(dict(options, weights="none"))
    out.update(train_bn=True, fine_tune_lr=float(out.get("lr", 1e-3)),
               early_stopping=options.get("early_stopping", out["early_stopping"]),
               name=f"{out.get('name') or out.get('backbone') or 'run'} (from scratch)")
    return out


MAX_RUNS = 25


def grid(base: dict, cuts: list, unfreezes: list, sweep_id: str, seeds: int = 1) -> list[dict]:
    """Options for every (cut, unfreeze point) pair, `seeds` times each (seeds base, base + 1, ...),
    each tagged with the sweep id in its name.

    Raises:
        OptionError: `seeds` below 1; TLCoreError: no point, or more than `MAX_RUNS` runs.
    """
    from .errors import OptionError

    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise OptionError("seeds", f"must be a whole number, 1 or more. Received: {seeds!r}")
    if not cuts or not unfreezes:
        raise TLCoreError("A sweep needs at least one cut point and one unfreeze point.")
    total = len(cuts) * len(unfreezes) * seeds
    if total > MAX_RUNS:
        raise TLCoreError(f"{total} runs is too many for one sweep; use at most {MAX_RUNS}.")
    first = int(base.get("seed", 42))
    out = []
    for cut, unfreeze in itertools.product(cuts, unfreezes):
        for k in range(seeds):
            opts = dict(base, cut=str(cut), unfreeze_from=str(unfreeze), seed=first + k,
                        name=f"sweep:{sweep_id}:{cut}:{unfreeze}")
            if int(opts.get("fine_tune_epochs", 0)) == 0:
                opts["fine_tune_epochs"] = 3
            out.append(opts)
    return out


def start_sweep(base: dict, cuts: list, unfreezes: list, runs_dir=None, seeds: int = 1) -> tuple[str, list]:
    from .jobs import start_training

    sweep_id = secrets.token_hex(6)
    runs = [start_training(opts, runs_dir) for opts in grid(base, cuts, unfreezes, sweep_id, seeds)]
    return sweep_id, runs


def sweep_results(sweep_id: str, runs_dir=None) -> list[dict]:
    """[{cut, unfreeze_from, seed, run_id, run_dir, state, val_accuracy, test_accuracy}] of one
    sweep's runs."""
    rows = []
    for run in RunStore(runs_dir).runs():
        opts = run.config().get("options") or {}
        if str(opts.get("name") or "").startswith(f"sweep:{sweep_id}:"):
            s = run.summary()
            rows.append({"cut": opts.get("cut"), "unfreeze_from": opts.get("unfreeze_from"),
                         "seed": opts.get("seed"), "run_id": s["run_id"], "run_dir": s["run_dir"],
                         "state": s["state"], "val_accuracy": s["val_accuracy"],
                         "test_accuracy": s.get("test_accuracy")})
    return sorted(rows, key=lambda r: (r["cut"], r["unfreeze_from"], r["seed"] or 0))


def point_summary(rows: Sequence[dict], metric: str = "val_accuracy") -> list[dict]:
    """One row per (cut, unfreeze point): {cut, unfreeze_from, runs, scored, mean, std, min, max,
    seeds, best_run_dir} of `metric` over the point's seeds (std is the sample standard deviation,
    0 with one score; None figures until a run has a score)."""
    points: dict[tuple, list[dict]] = {}
    for r in rows:
        points.setdefault((str(r["cut"]), str(r["unfreeze_from"])), []).append(r)
    out = []
    for (cut, unfreeze), group in points.items():
        scored = [r for r in group if r.get(metric) is not None]
        values = [float(r[metric]) for r in scored]
        best = max(scored, key=lambda r: r[metric]) if scored else None
        out.append({"cut": cut, "unfreeze_from": unfreeze, "runs": len(group), "scored": len(values),
                    "mean": statistics.fmean(values) if values else None,
                    "std": statistics.stdev(values) if len(values) > 1 else (0.0 if values else None),
                    "min": min(values) if values else None, "max": max(values) if values else None,
                    "seeds": [r.get("seed") for r in group],
                    "best_run_dir": best.get("run_dir") if best else None})
    return out


def list_sweeps(store: RunStore | None = None) -> list[str]:
    """Ids of the sweeps in the run store, newest first."""
    out: list[str] = []
    for run in (store or RunStore()).runs():
        parts = str((run.config().get("options") or {}).get("name") or "").split(":")
        if len(parts) == 4 and parts[0] == "sweep" and parts[1] not in out:
            out.append(parts[1])
    return out


def sweep_matrix(rows: Sequence[dict], cut_order: Sequence[str] = (),
                 unfreeze_order: Sequence[str] = ()) -> tuple[list[str], list[str], list[list]]:
    """(cuts, unfreeze points, validation accuracy [cut][unfreeze] or None) of sweep rows; a
    point trained with several seeds shows the mean over them (`point_summary`).

    Cuts and unfreeze points follow the given orders (layer order), then first appearance.
    """
    def order(values, preferred):
        seen = [str(v) for v in preferred if str(v) in values]
        return seen + [v for v in dict.fromkeys(values) if v not in seen]

    cuts = order([str(r["cut"]) for r in rows], cut_order)
    unfreezes = order([str(r["unfreeze_from"]) for r in rows], unfreeze_order)
    z: list[list] = [[None] * len(unfreezes) for _ in cuts]
    for p in point_summary(rows):
        z[cuts.index(p["cut"])][unfreezes.index(p["unfreeze_from"])] = p["mean"]
    return cuts, unfreezes, z


def best_sweep_row(rows: Sequence[dict]) -> dict | None:
    """The sweep run with the best validation accuracy (None until one has a score)."""
    scored = [r for r in rows if r.get("val_accuracy") is not None]
    return max(scored, key=lambda r: r["val_accuracy"]) if scored else None
