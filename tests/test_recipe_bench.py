"""The recipe benchmark's own pieces (not its measurements): its datasets and its table."""
from __future__ import annotations

import json

from benchmarks import datasets, recipes


def test_each_kind_writes_six_classes_split_60_20_20_and_the_same_seed_the_same_bytes(tmp_path):
    from tlcore.data import scan

    for kind in datasets.CLASSES:
        info = datasets.make(tmp_path / kind, kind, per_class=5, seed=3)
        assert info["counts"] == {"train": 18, "validation": 6, "test": 6}
        ds = scan(tmp_path / kind)
        assert sorted(ds.classes) == sorted(datasets.CLASSES[kind])
    again = datasets.make(tmp_path / "again", "polygons", per_class=5, seed=3)
    other = datasets.make(tmp_path / "other", "polygons", per_class=5, seed=4)
    first = tmp_path / "polygons" / "test" / "ellipse" / "ellipse_0004.jpg"
    assert (tmp_path / "again" / "test" / "ellipse" / "ellipse_0004.jpg").read_bytes() == first.read_bytes()
    assert (tmp_path / "other" / "test" / "ellipse" / "ellipse_0004.jpg").read_bytes() != first.read_bytes()
    assert again["classes"] == other["classes"]


def test_summary_averages_seeds_per_dataset_and_times_each_recipe_against_the_default_in_its_cell(tmp_path):
    rows = [
        {"recipe": "default", "kind": "a", "seed": 0, "test_accuracy": 0.8, "wall": 100},
        {"recipe": "default", "kind": "a", "seed": 1, "test_accuracy": 0.6, "wall": 50},
        {"recipe": "fast", "kind": "a", "seed": 0, "test_accuracy": 0.9, "wall": 50},
        {"recipe": "fast", "kind": "a", "seed": 1, "test_accuracy": 0.5, "wall": 25},
        {"recipe": "fast", "kind": "b", "seed": 0, "error": "boom", "wall": 3},
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = recipes.summary(path).splitlines()
    assert table[0].startswith("| recipe | a: test acc")
    assert "b:" not in table[0]  # a failed run is left out, not counted as 0
    default, fast = table[2], table[3]
    assert default.startswith("| default | 0.700 (0.60-0.80, 2) |") and default.endswith("| 75 | - | 1.00x | - |")
    assert fast.startswith("| fast | 0.700 (0.50-0.90, 2) |") and fast.endswith("| 38 | - | 0.50x | - |")
