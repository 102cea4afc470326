"""tlcore.data.datasets: the managed datasets folder, the demo dataset, webcam snaps."""
from __future__ import annotations

import pytest

from tlcore.data import datasets
from tlcore.recipe import features
from tlcore.core.errors import TLCoreError


def test_datasets_and_cache_housekeeping(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    (tmp_path / "datasets" / "pets" / "cats").mkdir(parents=True)
    (tmp_path / "datasets" / "pets" / "cats" / "a.png").write_bytes(b"12345")
    (tmp_path / "cache" / "images").mkdir(parents=True)
    (tmp_path / "cache" / "images" / "x.npz").write_bytes(b"0" * 100)
    sets = datasets.list_datasets()
    assert [(d["name"], d["bytes"]) for d in sets] == [("pets", 5)]
    with pytest.raises(TLCoreError, match="not an imported dataset"):
        datasets.delete_dataset(tmp_path / "cache")
    datasets.delete_dataset(sets[0]["path"])
    assert not (tmp_path / "datasets" / "pets").exists()
    assert features.clear_cache() == 100 and not any((tmp_path / "cache").iterdir())


def _jpeg(size=(30, 20), orientation=None) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    im = Image.fromarray(np.full((size[1], size[0], 3), (200, 30, 30), np.uint8))
    buf = io.BytesIO()
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(buf, format="JPEG", exif=exif)
    else:
        im.save(buf, format="JPEG")
    return buf.getvalue()


def test_webcam_snaps_make_a_flat_dataset(tmp_path, monkeypatch):
    from PIL import Image

    from tlcore.data.pipeline import scan

    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    root = datasets.webcam_dataset("webcam")
    assert root == tmp_path / "datasets" / "webcam" and not root.exists()  # made by its first class
    for bad, reason in (("", "Type a class"), ("a/b", "cannot contain"), (".hidden", "cannot contain"),
                        ("Train", "split folder"), ("val", "split folder"), ("x" * 65, "at most 64")):
        with pytest.raises(TLCoreError, match=reason):
            datasets.add_class(root, bad)
    datasets.add_class(root, " mug ")
    datasets.add_class(root, "pen")
    with pytest.raises(TLCoreError, match="No class"):
        datasets.save_snap(root, "cup", _jpeg())
    with pytest.raises(TLCoreError, match="not a usable image"):
        datasets.save_snap(root, "mug", b"not an image")
    first = datasets.save_snap(root, "mug", _jpeg(orientation=6))  # a phone photo held upright
    assert first == root / "mug" / "1.png" and Image.open(first).size == (20, 30)
    assert datasets.save_snap(root, "mug", _jpeg()).name == "2.png"
    datasets.save_snap(root, "pen", _jpeg())
    assert datasets.snap_counts(root) == {"mug": 2, "pen": 1}
    datasets.delete_snap(root, first)
    assert [p.name for p in datasets.snaps(root, "mug")] == ["2.png"]
    assert datasets.save_snap(root, "mug", _jpeg()).name == "3.png"  # numbers are never reused while higher ones exist
    outside = tmp_path / "1.png"
    outside.write_bytes(b"x")
    with pytest.raises(TLCoreError, match="not a snap"):
        datasets.delete_snap(root, outside)
    ds = scan(str(root), 0.0, 0.0)
    assert ds.layout != "split" and ds.classes == ["mug", "pen"]
    assert datasets.delete_class(root, "pen") == 1 and datasets.dataset_classes(root) == ["mug"]


def test_demo_dataset_is_made_once_and_selected(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    made = datasets.ensure_demo_dataset(per_class=10)
    assert made["created"] and made["path"] == str(tmp_path / "datasets" / "demo-shapes")
    assert sum(1 for _ in (tmp_path / "datasets" / "demo-shapes").rglob("*.png")) == 40
    again = datasets.ensure_demo_dataset(per_class=10)
    assert not again["created"] and again["path"] == made["path"]
    assert [d["name"] for d in datasets.list_datasets()] == ["demo-shapes"]  # no half-made hidden copy shows
