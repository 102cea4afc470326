"""The benchmark's own pieces (not its timings): its dataset, its options, its verdicts."""
from __future__ import annotations

import pytest

from tlcore import bench


def test_generated_data_has_a_test_split_the_engine_and_the_tutorial_both_read(tmp_path):
    from tlcore.data import scan

    info = bench.make_data(tmp_path / "d", 40)
    assert (info["train"], info["validation"], info["test"]) == (32, 8, 8)
    assert bench.describe_data(tmp_path / "d") == {**info, "path": str(tmp_path / "d")}
    ds = scan(tmp_path / "d")
    assert {k: sum(v.values()) for k, v in ds.counts().items()} == {"train": 32, "validation": 8, "test": 8}


def test_options_are_checked_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench._parse(["--data", str(tmp_path)])
    assert "train/, validation/, test/" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench._parse(["--weights", str(tmp_path / "missing.h5")])
    assert "--weights must be none, imagenet or an existing weights file" in capsys.readouterr().err
    (tmp_path / "w.h5").write_bytes(b"x")
    a = bench._parse(["--weights", str(tmp_path / "w.h5"), "--backbone", "mobilenetv2", "--quick"])
    assert a.weights == str((tmp_path / "w.h5").resolve()) and a.backbone == "MobileNetV2"
    assert (a.images, a.size, a.epochs) == (60, 96, 3)


def test_checkpoint_saves_are_counted_per_improving_epoch():
    assert bench._improvements([1.0, 0.9, 0.95, 0.8, None]) == 4  # None: no validation, saved
