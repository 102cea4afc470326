"""tlcore.studio: the app's pure helpers (paths, uploads, counts, progress), without a browser."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tlcore import studio
from tlcore.errors import TLCoreError
from tlcore.layers import LayerInfo


def test_safe_relative_parts_refuses_escapes():
    assert studio.safe_relative_parts("pets/cats/a.png") == ("pets", "cats", "a.png")
    assert studio.safe_relative_parts("./pets//cats/./a.png") == ("pets", "cats", "a.png")
    assert studio.safe_relative_parts("pets\\cats\\a.png") == ("pets", "cats", "a.png")
    for bad in ("../a.png", "pets/../../a.png", "/etc/passwd", "C:/x/a.png", "a\0.png", "", "./"):
        assert studio.safe_relative_parts(bad) is None, bad
    assert studio.safe_relative_parts("ko/고양이/a.png") == ("ko", "고양이", "a.png")


def test_write_uploaded_files_keeps_paths_and_refuses_dotdot(tmp_path):
    problems = studio.write_uploaded_files(
        [("pets/cats/a.png", b"1"), ("pets/dogs/b.png", b"2"), ("../evil.png", b"x"),
         ("pets/cats/a.png", b"again")], tmp_path / "up")
    assert (tmp_path / "up/pets/cats/a.png").read_bytes() == b"1"
    assert (tmp_path / "up/pets/dogs/b.png").read_bytes() == b"2"
    assert not (tmp_path / "evil.png").exists()
    assert [p["file"] for p in problems] == ["../evil.png", "pets/cats/a.png"]
    assert studio.upload_folder_name(["pets/cats/a.png", "pets/dogs/b.png"]) == "pets"
    assert studio.upload_folder_name(["cats/a.png", "dogs/b.png"]) == "dataset"


def test_resolve_under_roots_follows_symlinks(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "ok").mkdir(parents=True)
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    assert studio.resolve_under_roots(root / "ok", [root]) == (root / "ok").resolve()
    assert studio.resolve_under_roots("ok", [root]) == (root / "ok").resolve()  # relative to the first root
    for bad in (root / "link", root / "ok" / ".." / ".." / "outside", "/"):
        with pytest.raises(TLCoreError, match="outside the folders"):
            studio.resolve_under_roots(bad, [root])
    with pytest.raises(TLCoreError, match="No such folder"):
        studio.resolve_under_roots(root / "missing", [root])
    (root / "file.txt").write_text("x")
    with pytest.raises(TLCoreError, match="not a folder"):
        studio.resolve_under_roots(root / "file.txt", [root])


def test_save_weights_file_never_overwrites(tmp_path):
    first = studio.save_weights_file("../../m.weights.h5", b"a", tmp_path)
    second = studio.save_weights_file("m.weights.h5", b"b", tmp_path)
    assert first == tmp_path / "m.weights.h5" and second == tmp_path / "m-2.weights.h5"
    assert first.read_bytes() == b"a"
    with pytest.raises(TLCoreError, match="must end in"):
        studio.save_weights_file("notes.txt", b"a", tmp_path)
    with pytest.raises(TLCoreError, match="empty"):
        studio.save_weights_file("x.h5", b"", tmp_path)
    assert [p.name for p in studio.list_weights_files(tmp_path)][0] in ("m.weights.h5", "m-2.weights.h5")


def test_parse_dense():
    assert studio.parse_dense("") == ()
    assert studio.parse_dense("1024, 256") == (1024, 256)
    assert studio.parse_dense("512 128;64") == (512, 128, 64)
    for bad in ("abc", "0", "1.5", "-3"):
        with pytest.raises(TLCoreError):
            studio.parse_dense(bad)


def _table(n=6, cuts=(1, 3), params=(0, 10, 0, 20, 5, 7)):
    return [LayerInfo(i, f"l{i}", "BatchNormalization" if i == 4 else "Conv2D", [None, 2, 2, 1],
                      params[i], True, i in cuts, "b0" if i < 3 else "b1") for i in range(n)]


def test_cut_options_and_blocks():
    table = _table()
    assert studio.cut_options(table) == [1, 3, 5]  # the last layer is always offered
    assert studio.index_of(table, "l3", 0) == 3 and studio.index_of(table, "nope", 9) == 9
    assert studio.index_of(table, -1, 0) == 5
    blocks = studio.block_summary(table)
    assert [(b["block"], b["first"], b["last"], b["params"]) for b in blocks] == [("b0", 0, 2, 10), ("b1", 3, 5, 32)]
    assert [r.index for r in studio.filter_layers(table, "l", ["BatchNormalization"])] == [4]


def test_no_backbone_training_reason():
    table = _table()
    counts = studio.StageCounts(cut_index=3, unfreeze_index=5, feature_shape=(1,), stage1={}, stage2={},
                                head=7, backbone_trainable_stage2=0)
    assert "past the cut" in studio.no_backbone_training_reason(counts, table)
    counts = studio.StageCounts(2, 2, (1,), {}, {}, 7, 0)
    assert "hold no weights" in studio.no_backbone_training_reason(counts, table)
    assert studio.no_backbone_training_reason(studio.StageCounts(3, 1, (1,), {}, {}, 7, 30), table) is None


def test_epoch_progress_estimates_time_left():
    status = {"pid": 1, "stage": 2, "epoch": 3, "epochs_total": 4, "batch": 0, "batches_total": 10}
    first, seen = studio.epoch_progress(status, [{"seconds": 20.0}], None, now=100.0)
    assert first["fraction"] == 0 and first["epoch_seconds_left"] == pytest.approx(20.0)
    assert "Stage 2 · fine-tuning · epoch 3/4 · batch 0/10" in first["text"]
    later, _ = studio.epoch_progress(dict(status, batch=5), [], seen, now=105.0)  # 1 batch per second
    assert later["fraction"] == 0.5 and later["epoch_seconds_left"] == pytest.approx(5.0)
    assert later["run_seconds_left"] == pytest.approx(15.0)
    idle, _ = studio.epoch_progress({"stage": None}, [], None, now=0.0)
    assert idle["text"].startswith("Preparing")


def test_stage_boundaries():
    metrics = [{"stage": 1, "epoch": 1}, {"stage": 1, "epoch": 2}, {"stage": 2, "epoch": 3}]
    assert studio.stage_boundary(metrics) == 2.5
    assert studio.stage_boundary(metrics[:2]) is None
    assert studio.planned_boundary({"head_epochs": 2, "fine_tune_epochs": 3}) == 2.5
    assert studio.planned_boundary({"head_epochs": 0, "fine_tune_epochs": 3}) is None


def test_datasets_and_cache_housekeeping(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    (tmp_path / "datasets" / "pets" / "cats").mkdir(parents=True)
    (tmp_path / "datasets" / "pets" / "cats" / "a.png").write_bytes(b"12345")
    (tmp_path / "cache" / "images").mkdir(parents=True)
    (tmp_path / "cache" / "images" / "x.npz").write_bytes(b"0" * 100)
    sets = studio.list_datasets()
    assert [(d["name"], d["bytes"]) for d in sets] == [("pets", 5)]
    with pytest.raises(TLCoreError, match="not an imported dataset"):
        studio.delete_dataset(tmp_path / "cache")
    studio.delete_dataset(sets[0]["path"])
    assert not (tmp_path / "datasets" / "pets").exists()
    assert studio.clear_cache() == 100 and not any((tmp_path / "cache").iterdir())


def test_formatting():
    assert studio.format_count(1838275) == "1,838,275"
    assert studio.format_seconds(42) == "42 s" and studio.format_seconds(130) == "2 min 10 s"
    assert studio.format_seconds(4000) == "1 h 06 min"
    assert studio.format_bytes(2048) == "2.0 KB" and studio.format_percent(0.9081) == "90.8%"
    assert len(studio.catalog_rows()) == 40


def test_studio_does_not_import_streamlit():
    import subprocess
    import sys

    code = "import tlcore.studio, sys; assert 'streamlit' not in sys.modules; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1],
                   env=dict(os.environ))


def test_save_model_file_keeps_models_apart_from_weights(tmp_path):
    first = studio.save_model_file("../clf.keras", b"a", tmp_path)
    second = studio.save_model_file("clf.keras", b"b", tmp_path)
    assert first == tmp_path / "clf.keras" and second == tmp_path / "clf-2.keras"
    with pytest.raises(TLCoreError, match="weights only"):
        studio.save_model_file("m.weights.h5", b"a", tmp_path)
    with pytest.raises(TLCoreError, match="must end in"):
        studio.save_model_file("model.zip", b"a", tmp_path)
    with pytest.raises(TLCoreError, match="empty"):
        studio.save_model_file("m.h5", b"", tmp_path)
    assert {p.name for p in studio.list_model_files(tmp_path)} == {"clf.keras", "clf-2.keras"}


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

    from tlcore.data import scan

    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    root = studio.webcam_dataset("webcam")
    assert root == tmp_path / "datasets" / "webcam" and not root.exists()  # made by its first class
    for bad, reason in (("", "Type a class"), ("a/b", "cannot contain"), (".hidden", "cannot contain"),
                        ("Train", "split folder"), ("val", "split folder"), ("x" * 65, "at most 64")):
        with pytest.raises(TLCoreError, match=reason):
            studio.add_class(root, bad)
    studio.add_class(root, " mug ")
    studio.add_class(root, "pen")
    with pytest.raises(TLCoreError, match="No class"):
        studio.save_snap(root, "cup", _jpeg())
    with pytest.raises(TLCoreError, match="not a usable image"):
        studio.save_snap(root, "mug", b"not an image")
    first = studio.save_snap(root, "mug", _jpeg(orientation=6))  # a phone photo held upright
    assert first == root / "mug" / "1.png" and Image.open(first).size == (20, 30)
    assert studio.save_snap(root, "mug", _jpeg()).name == "2.png"
    studio.save_snap(root, "pen", _jpeg())
    assert studio.snap_counts(root) == {"mug": 2, "pen": 1}
    studio.delete_snap(root, first)
    assert [p.name for p in studio.snaps(root, "mug")] == ["2.png"]
    assert studio.save_snap(root, "mug", _jpeg()).name == "3.png"  # numbers are never reused while higher ones exist
    outside = tmp_path / "1.png"
    outside.write_bytes(b"x")
    with pytest.raises(TLCoreError, match="not a snap"):
        studio.delete_snap(root, outside)
    ds = scan(str(root), 0.0, 0.0)
    assert ds.layout != "split" and ds.classes == ["mug", "pen"]
    assert studio.delete_class(root, "pen") == 1 and studio.dataset_classes(root) == ["mug"]


def test_demo_dataset_is_made_once_and_selected(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    made = studio.ensure_demo_dataset(per_class=10)
    assert made["created"] and made["path"] == str(tmp_path / "datasets" / "demo-shapes")
    assert sum(1 for _ in (tmp_path / "datasets" / "demo-shapes").rglob("*.png")) == 40
    again = studio.ensure_demo_dataset(per_class=10)
    assert not again["created"] and again["path"] == made["path"]
    assert [d["name"] for d in studio.list_datasets()] == ["demo-shapes"]  # no half-made hidden copy shows


def test_presets_in_the_form():
    vgg = studio.preset_form_options("vgg19-frozen", {"backbone": "MobileNetV2", "weights": "/w/mobilenet.h5"})
    assert vgg["backbone"] == "VGG19" and vgg["input_size"] == 224 and vgg["weights"] == "imagenet"
    assert vgg["cut"] is None and vgg["unfreeze_from"] is None and "preset" not in vgg
    two = studio.preset_form_options("two-stage", {"backbone": "MobileNetV2", "weights": "/w/mobilenet.h5"})
    assert two["input_size"] is None and "weights" not in two  # same backbone: the weights file still fits
    own = studio.preset_form_options("inception-mixed7", {"backbone_file": "/m/clf.keras"})
    assert not {"backbone", "input_size", "weights", "cut", "unfreeze_from"} & set(own)
    assert own["pooling"] == "flatten" and own["dense"] == [1024]


def test_insight_helpers():
    ev = {"misclassified": [{"file": "a", "probability": 0.6, "loss": 0.9},
                            {"file": "b", "probability": 0.9, "loss": 2.3},
                            {"file": "c", "probability": 0.7, "loss": 1.2}]}
    assert [m["file"] for m in studio.top_losses(ev, 2)] == ["b", "c"]
    with pytest.raises(TLCoreError, match="no pretrained weights"):
        studio.imagenet_weights("none")
    assert studio.imagenet_weights("imagenet") == "imagenet"
    rows = [{"cut": "b", "unfreeze_from": "x", "val_accuracy": 0.5},
            {"cut": "a", "unfreeze_from": "y", "val_accuracy": 0.8},
            {"cut": "a", "unfreeze_from": "x", "val_accuracy": None}]
    cuts, unfreezes, z = studio.sweep_matrix(rows, ["a", "b"], ["x", "y"])
    assert cuts == ["a", "b"] and unfreezes == ["x", "y"] and z == [[None, 0.8], [0.5, None]]
    assert studio.best_sweep_row(rows)["cut"] == "a"
    assert studio.best_sweep_row([rows[2]]) is None


def test_quick_start_uses_imagenet_weights_only_when_on_this_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    options = studio.quick_start_options()  # offline: a small network trained from scratch
    assert (options["backbone"], options["input_size"], options["weights"]) == ("MobileNetV2", 64, "none")
    assert options["unfreeze_from"] == "0" and options["train_bn"] and options["head_epochs"] == 0
    status = studio.weights_status("MobileNetV2", 96)
    assert status["file"].endswith("_96_no_top.h5") and not status["cached"]  # one file per input size
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / status["file"]).write_bytes(b"weights")
    options = studio.quick_start_options()
    assert (options["input_size"], options["weights"], options["cut"]) == (96, "imagenet", None)
    assert set(options) == set(studio.QUICK_START_SCRATCH)  # switching recipes resets every option
