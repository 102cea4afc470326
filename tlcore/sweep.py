"""Comparisons that are several runs: with versus without pretraining, and cut x unfreeze grids.

Runs start through `jobs.start_training`, so they wait in the machine's queue and run one
after another; a grid shares the stage-1 feature cache wherever cut and data are the same.
A sweep's runs are tagged ``sweep:ID:CUT:UNFREEZE`` in their name; its results are read back
from the run store as rows, a cut x unfreeze matrix, and the best row.
"""
from __future__ import annotations

import itertools
import secrets
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


def grid(base: dict, cuts: list, unfreezes: list, sweep_id: str) -> list[dict]:
    """Options for every (cut, unfreeze point) pair, each tagged with the sweep id in its name."""
    if not cuts or not unfreezes:
        raise TLCoreError("A sweep needs at least one cut point and one unfreeze point.")
    if len(cuts) * len(unfreezes) > 25:
        raise TLCoreError(f"{len(cuts) * len(unfreezes)} runs is too many for one sweep; use at most 25.")
    out = []
    for cut, unfreeze in itertools.product(cuts, unfreezes):
        opts = dict(base, cut=str(cut), unfreeze_from=str(unfreeze),
                    name=f"sweep:{sweep_id}:{cut}:{unfreeze}")
        if int(opts.get("fine_tune_epochs", 0)) == 0:
            opts["fine_tune_epochs"] = 3
        out.append(opts)
    return out


def start_sweep(base: dict, cuts: list, unfreezes: list, runs_dir=None) -> tuple[str, list]:
    from .jobs import start_training

    sweep_id = secrets.token_hex(6)
    runs = [start_training(opts, runs_dir) for opts in grid(base, cuts, unfreezes, sweep_id)]
    return sweep_id, runs


def sweep_results(sweep_id: str, runs_dir=None) -> list[dict]:
    """[{cut, unfreeze_from, run_id, run_dir, state, val_accuracy}] of one sweep's runs."""
    rows = []
    for run in RunStore(runs_dir).runs():
        opts = run.config().get("options") or {}
        if str(opts.get("name") or "").startswith(f"sweep:{sweep_id}:"):
            s = run.summary()
            rows.append({"cut": opts.get("cut"), "unfreeze_from": opts.get("unfreeze_from"), "run_id": s["run_id"],
                         "run_dir": s["run_dir"], "state": s["state"], "val_accuracy": s["val_accuracy"]})
    return sorted(rows, key=lambda r: (r["cut"], r["unfreeze_from"]))


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
    """(cuts, unfreeze points, validation accuracy [cut][unfreeze] or None) of sweep rows.

    Cuts and unfreeze points follow the given orders (layer order), then first appearance.
    """
    def order(values, preferred):
        seen = [str(v) for v in preferred if str(v) in values]
        return seen + [v for v in dict.fromkeys(values) if v not in seen]

    cuts = order([str(r["cut"]) for r in rows], cut_order)
    unfreezes = order([str(r["unfreeze_from"]) for r in rows], unfreeze_order)
    z: list[list] = [[None] * len(unfreezes) for _ in cuts]
    for r in rows:
        z[cuts.index(str(r["cut"]))][unfreezes.index(str(r["unfreeze_from"]))] = r.get("val_accuracy")
    return cuts, unfreezes, z


def best_sweep_row(rows: Sequence[dict]) -> dict | None:
    """The sweep run with the best validation accuracy (None until one has a score)."""
    scored = [r for r in rows if r.get("val_accuracy") is not None]
    return max(scored, key=lambda r: r["val_accuracy"]) if scored else None
