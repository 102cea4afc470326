"""tlcore.sweep: a sweep's rows as a cut x unfreeze matrix, and its best run."""
from __future__ import annotations

from tlcore.sweep import best_sweep_row, sweep_matrix


def test_sweep_matrix_and_best_row():
    rows = [{"cut": "b", "unfreeze_from": "x", "val_accuracy": 0.5},
            {"cut": "a", "unfreeze_from": "y", "val_accuracy": 0.8},
            {"cut": "a", "unfreeze_from": "x", "val_accuracy": None}]
    cuts, unfreezes, z = sweep_matrix(rows, ["a", "b"], ["x", "y"])
    assert cuts == ["a", "b"] and unfreezes == ["x", "y"] and z == [[None, 0.8], [0.5, None]]
    assert best_sweep_row(rows)["cut"] == "a"
    assert best_sweep_row([rows[2]]) is None


def test_seeds_repeat_each_point_and_the_matrix_shows_their_mean():
    import pytest

    from tlcore.errors import OptionError
    from tlcore.sweep import grid, point_summary

    runs = grid({"seed": 7, "fine_tune_epochs": 2}, ["a", "b"], ["x"], "s1", seeds=3)
    assert [(o["cut"], o["seed"]) for o in runs] == [("a", 7), ("a", 8), ("a", 9), ("b", 7), ("b", 8), ("b", 9)]
    assert {o["name"] for o in runs} == {"sweep:s1:a:x", "sweep:s1:b:x"}
    with pytest.raises(OptionError):
        grid({}, ["a"], ["x"], "s", seeds=0)
    with pytest.raises(Exception, match="at most 25"):
        grid({}, ["a", "b", "c"], ["x", "y", "z"], "s", seeds=3)
    rows = [{"cut": "a", "unfreeze_from": "x", "seed": s, "val_accuracy": v, "run_dir": f"r{s}"}
            for s, v in ((7, 0.6), (8, 0.8), (9, None))]
    (point,) = point_summary(rows)
    assert point["runs"] == 3 and point["scored"] == 2 and point["mean"] == pytest.approx(0.7)
    assert point["std"] == pytest.approx(0.1414, abs=1e-4) and (point["min"], point["max"]) == (0.6, 0.8)
    assert point["best_run_dir"] == "r8"
    assert sweep_matrix(rows)[2] == [[pytest.approx(0.7)]]
