"""tlcore.training.sweep: a sweep's rows as a cut x unfreeze matrix, and its best run."""
from __future__ import annotations

from tlcore.training.sweep import best_sweep_row, sweep_matrix


def test_sweep_matrix_and_best_row():
    rows = [{"cut": "b", "unfreeze_from": "x", "val_accuracy": 0.5},
            {"cut": "a", "unfreeze_from": "y", "val_accuracy": 0.8},
            {"cut": "a", "unfreeze_from": "x", "val_accuracy": None}]
    cuts, unfreezes, z = sweep_matrix(rows, ["a", "b"], ["x", "y"])
    assert cuts == ["a", "b"] and unfreezes == ["x", "y"] and z == [[None, 0.8], [0.5, None]]
    assert best_sweep_row(rows)["cut"] == "a"
    assert best_sweep_row([rows[2]]) is None
