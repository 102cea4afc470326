"""Comparisons that are several runs: with versus without pretraining, and the cut x unfreeze
matrix of a grid search (`search.py` runs the grid on Ray Tune; this lays its points out).
"""
from __future__ import annotations

from typing import Sequence


def from_scratch(options: dict) -> dict:
    """The same architecture and data trained from random weights: everything trains from the
    first epoch (no frozen stage, BatchNorm included), for as many epochs as the original."""
    from ..recipe.config import scratch_options

    out = scratch_options(dict(options, weights="none"))
    out.update(train_bn=True, fine_tune_lr=float(out.get("lr", 1e-3)),
               early_stopping=options.get("early_stopping", out["early_stopping"]),
               name=f"{out.get('name') or out.get('backbone') or 'run'} (from scratch)")
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
