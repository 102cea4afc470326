"""tlcore.data.pipeline: scanning both layouts, splits, problems, warnings, decoding, tf.data, augmentation."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlcore.data import pipeline as data
from tlcore.data.augment import augmentation_layers, augmentation_options
from tlcore.data.pipeline import _stratified_split, SPLITS, class_weights, scan
from tlcore.core.errors import TLCoreError


def _names(ds, split) -> list[tuple[str, str]]:
    """(class folder, file name) of every file of a split."""
    return sorted((Path(p).parent.name, Path(p).name) for p, _ in ds.files[split])


def _labels_match_folders(ds) -> bool:
    return all(ds.classes[label] == Path(p).parent.name for s in SPLITS for p, label in ds.files[s])


# ------------------------------------------------------------------------------ layouts


def test_flat_layout_is_split_per_class(make_dataset):
    root = make_dataset("flat", classes=("red", "green", "blue"), n=20)
    ds = scan(root, val_split=0.2, test_split=0.1, seed=42)
    assert ds.layout == "folders"
    assert ds.classes == ["blue", "green", "red"]
    counts = ds.counts()
    assert list(counts) == ["train", "validation", "test"]
    for c in ds.classes:  # each file's split is its own draw: sizes vary around 70/20/10
        assert sum(counts[s][c] for s in SPLITS) == 20
        assert counts["train"][c] >= 8 and counts["validation"][c] >= 1 and counts["test"][c] >= 1
    assert _labels_match_folders(ds)
    every = [p for s in SPLITS for p, _ in ds.files[s]]
    assert len(every) == len(set(every)) == 60
    assert ds.problems == [] and ds.warnings == []
    report = ds.report()
    assert report["layout"] == "folders" and report["counts"] == counts
    assert report["path"] == str(root)


def test_flat_layout_without_test_split_still_has_the_test_key(make_dataset):
    ds = scan(make_dataset("flat", n=10), val_split=0.2, test_split=0.0)
    counts = ds.counts()
    assert set(counts) == set(SPLITS)
    assert counts["test"] == {"green": 0, "red": 0}
    assert all(1 <= counts["validation"][c] <= 5 for c in ("green", "red"))
    assert all(counts["train"][c] + counts["validation"][c] == 10 for c in ("green", "red"))


def test_split_layout(make_dataset):
    root = make_dataset("split", classes=("red", "green"),
                        counts={"train": 12, "validation": 4, "test": 3})
    ds = scan(root, val_split=0.5, test_split=0.3)  # ignored with split folders
    assert ds.layout == "split"
    assert ds.classes == ["green", "red"]
    assert ds.counts() == {"train": {"green": 12, "red": 12}, "validation": {"green": 4, "red": 4},
                           "test": {"green": 3, "red": 3}}
    for split in SPLITS:
        assert all(Path(p).relative_to(root).parts[0] == split for p, _ in ds.files[split])
    assert _labels_match_folders(ds)
    assert ds.warnings == [] and ds.problems == []


def test_val_folder_counts_as_validation(make_dataset):
    root = make_dataset("split", counts={"train": 10, "validation": 3, "test": 0},
                        split_names={"validation": "val"})
    assert (root / "val").is_dir() and not (root / "validation").exists()
    ds = scan(root)
    assert ds.counts() == {"train": {"green": 10, "red": 10}, "validation": {"green": 3, "red": 3},
                           "test": {"green": 0, "red": 0}}
    assert all(Path(p).relative_to(root).parts[0] == "val" for p, _ in ds.files["validation"])


def test_split_layout_without_validation_holds_out_part_of_train(make_dataset):
    root = make_dataset("split", counts={"train": 10, "validation": 0, "test": 2})
    ds = scan(root, seed=3)
    counts = ds.counts()
    for c in ("green", "red"):
        assert counts["train"][c] + counts["validation"][c] == 10
        assert 1 <= counts["validation"][c] <= 5
    assert counts["test"] == {"green": 2, "red": 2}
    assert all(Path(p).relative_to(root).parts[0] == "train" for p, _ in ds.files["validation"])
    assert any("No validation/ folder" in w for w in ds.warnings)


def test_class_only_in_validation_is_reported(make_dataset):
    root = make_dataset("split", counts={"train": 10, "validation": 3, "test": 0})
    extra = root / "validation" / "purple"
    extra.mkdir()
    Image.new("RGB", (8, 8), (128, 0, 128)).save(extra / "p.png")
    ds = scan(root)
    assert "purple" not in ds.classes
    assert {"file": "validation/purple/", "reason": "class not in train/, skipped"} in ds.problems


# ------------------------------------------------------------------------------ splits


def test_stratified_split_is_repeatable_by_seed(make_dataset):
    root = make_dataset("flat", classes=("red", "green"), n=30)
    a = scan(root, val_split=0.2, test_split=0.2, seed=1)
    b = scan(root, val_split=0.2, test_split=0.2, seed=1)
    c = scan(root, val_split=0.2, test_split=0.2, seed=2)
    for split in SPLITS:
        assert a.files[split] == b.files[split]
    assert set(_names(a, "validation")) != set(_names(c, "validation"))  # another seed, other files
    assert set(_names(a, "test")) != set(_names(c, "test"))
    for ds in (a, c):  # disjoint and complete
        every = [p for s in SPLITS for p, _ in ds.files[s]]
        assert len(every) == len(set(every)) == 60


def test_split_proportions_follow_the_fractions():
    files = {0: [f"/d/a/{i}.png" for i in range(2000)], 1: [f"/d/b/{i}.png" for i in range(2000)]}
    out = _stratified_split(files, 0.2, 0.1, seed=5, root=Path("/d"))
    for label in (0, 1):
        n = {s: sum(1 for _, l in out[s] if l == label) for s in SPLITS}
        assert abs(n["validation"] / 2000 - 0.2) < 0.03 and abs(n["test"] / 2000 - 0.1) < 0.03


def test_moving_or_removing_one_image_moves_no_other_between_splits(make_dataset):
    root = make_dataset("flat", classes=("red", "green"), n=30)
    before = scan(root, val_split=0.2, test_split=0.1, seed=7)
    split_of = {str(Path(p).relative_to(root)): s for s in SPLITS for p, _ in before.files[s]}
    victim = before.files["train"][0][0]
    os.replace(victim, root / "green" / "moved.png")  # relabelled
    os.remove(before.files["validation"][-1][0])  # excluded
    after = scan(root, val_split=0.2, test_split=0.1, seed=7)
    for s in SPLITS:
        for p, _ in after.files[s]:
            rel = str(Path(p).relative_to(root))
            if rel != "green/moved.png":
                assert split_of[rel] == s, p


def test_small_classes_still_get_a_validation_image(make_dataset):
    ds = scan(make_dataset("flat", n=3), val_split=0.1, test_split=0.1)
    for c in ds.classes:
        assert ds.counts()["validation"][c] == 1
        assert ds.counts()["train"][c] >= 1


# ------------------------------------------------------------------------------ problems


def test_unreadable_files_are_listed_and_excluded(make_dataset):
    root = make_dataset("flat", n=12)
    (root / "red" / "empty.png").write_bytes(b"")
    (root / "red" / "notes.jpg").write_text("not a picture")
    good = (root / "green" / "green_0.png").read_bytes()
    (root / "green" / "cut.png").write_bytes(good[: len(good) // 2])
    (root / "green" / "readme.txt").write_text("hello")
    (root / "labels.csv").write_text("a,b\n")
    (root / "red" / ".DS_Store").write_bytes(b"\x00")
    ds = scan(root)
    problems = {p["file"]: p["reason"] for p in ds.problems}
    assert set(problems) == {"red/empty.png", "red/notes.jpg", "green/cut.png", "green/readme.txt",
                             "labels.csv"}
    assert "not an image" in problems["red/notes.jpg"]
    assert problems["green/cut.png"].startswith("cannot")
    assert "not an image file" in problems["green/readme.txt"]
    assert "outside any class folder" in problems["labels.csv"]
    names = {n for s in SPLITS for _, n in _names(ds, s)}
    assert names.isdisjoint({"empty.png", "notes.jpg", "cut.png", "readme.txt", ".DS_Store"})
    assert sum(sum(c.values()) for c in ds.counts().values()) == 24


def test_check_files_off_keeps_everything_with_an_image_name(make_dataset):
    root = make_dataset("flat", n=10)
    (root / "red" / "notes.jpg").write_text("not a picture")
    ds = scan(root, check_files=False)
    assert sum(ds.counts()[s]["red"] for s in SPLITS) == 11


# ------------------------------------------------------------------------------ warnings


def test_tiny_classes_warn(make_dataset):
    ds = scan(make_dataset("split", counts={"train": 5, "validation": 2, "test": 0}))
    tiny = [w for w in ds.warnings if "training images" in w and "only" in w]
    assert len(tiny) == 2 and any("'red' has only 5" in w for w in tiny)


def test_imbalance_warns(make_dataset):
    root = make_dataset("split", counts={"train": {"red": 40, "green": 12}, "validation": 3, "test": 0})
    ds = scan(root)
    assert any("imbalanced" in w and "40" in w and "12" in w for w in ds.warnings)
    assert not any("only" in w for w in ds.warnings)


def test_balanced_enough_does_not_warn(make_dataset):
    root = make_dataset("split", counts={"train": {"red": 30, "green": 12}, "validation": 3, "test": 0})
    assert not any("imbalanced" in w for w in scan(root).warnings)


def test_duplicates_across_splits_warn(make_dataset):
    root = make_dataset("split", counts={"train": 12, "validation": 3, "test": 3})
    shutil.copy(root / "train" / "red" / "train_red_0.png", root / "test" / "red" / "copy.png")
    shutil.copy(root / "train" / "red" / "train_red_1.png", root / "validation" / "red" / "copy.png")
    shutil.copy(root / "train" / "red" / "train_red_2.png", root / "train" / "red" / "same_split.png")
    ds = scan(root)
    dup = [w for w in ds.warnings if "more than one split" in w]
    assert len(dup) == 1 and dup[0].startswith("2 image(s)")


def test_class_without_validation_images_warns(make_dataset):
    root = make_dataset("split", counts={"train": 12, "validation": 3, "test": 0})
    for f in (root / "validation" / "green").iterdir():
        f.unlink()
    ds = scan(root)
    assert "Class 'green' has no validation images." in ds.warnings


# ------------------------------------------------------------------------------ shapes of folders


def test_single_top_folder_is_unwrapped(make_dataset, tmp_path):
    make_dataset("flat", n=10, root=tmp_path / "outer" / "cats_vs_dogs")
    ds = scan(tmp_path / "outer")
    assert ds.root == tmp_path / "outer" / "cats_vs_dogs"
    assert ds.classes == ["green", "red"]
    assert ds.problems == []


def test_single_top_folder_around_split_folders(make_dataset, tmp_path):
    make_dataset("split", counts={"train": 10, "validation": 2, "test": 0},
                 root=tmp_path / "zip" / "dataset")
    ds = scan(tmp_path / "zip")
    assert ds.layout == "split" and ds.root == tmp_path / "zip" / "dataset"


def test_one_class_only_is_an_error(make_dataset, tmp_path):
    root = make_dataset("flat", classes=("red",), n=10)
    with pytest.raises(TLCoreError, match="at least 2 classes") as err:
        scan(root)
    assert "red" in str(err.value)


def test_a_class_of_broken_files_leaves_one_usable_class(make_dataset):
    root = make_dataset("flat", classes=("red",), n=10)
    (root / "broken").mkdir()
    (root / "broken" / "a.jpg").write_text("nope")
    with pytest.raises(TLCoreError, match="at least 2 classes"):
        scan(root)


def test_bad_arguments(tmp_path, make_dataset):
    with pytest.raises(TLCoreError, match="not found"):
        scan(tmp_path / "missing")
    (tmp_path / "file.zip").write_bytes(b"PK")
    with pytest.raises(TLCoreError, match="not a file"):
        scan(tmp_path / "file.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TLCoreError, match="no class folders"):
        scan(tmp_path / "empty")
    root = make_dataset("flat", n=4)
    with pytest.raises(TLCoreError, match="^val_split "):
        scan(root, val_split=1.0)
    with pytest.raises(TLCoreError, match="^test_split "):
        scan(root, test_split=-0.1)
    with pytest.raises(TLCoreError, match="leave images to train on"):
        scan(root, val_split=0.5, test_split=0.45)


def test_fingerprint_changes_with_the_files(make_dataset):
    root = make_dataset("flat", n=6)
    first = scan(root).fingerprint()
    assert scan(root).fingerprint() == first
    target = root / "red" / "red_0.png"
    Image.new("RGB", (16, 16), (1, 2, 3)).save(target)
    os.utime(target, ns=(1, 1))
    second = scan(root).fingerprint()
    assert second != first
    Image.new("RGB", (16, 16), (1, 2, 3)).save(root / "green" / "new.png")
    assert scan(root).fingerprint() != second


# ------------------------------------------------------------------------------ decoding


def test_decode_images_returns_uint8_and_skips_bad_files(tlhome, make_dataset):
    root = make_dataset("flat", classes=("red", "blue"), n=3, size=20)
    paths = sorted(str(p) for p in root.rglob("*.png"))
    bad = root / "red" / "bad.png"
    bad.write_text("no")
    paths.insert(2, str(bad))
    images, ok, problems = data.decode_images(paths, 8)
    assert images.dtype == np.uint8 and images.shape == (6, 8, 8, 3)
    assert ok == [0, 1, 3, 4, 5, 6]
    assert problems == [{"file": str(bad), "reason": "not an image (Pillow cannot identify it)"}]
    # Rows are the images themselves, in order: blue images first (sorted paths), then red.
    assert images[0, ..., 2].mean() > 150 and images[0, ..., 0].mean() < 100
    assert images[-1, ..., 0].mean() > 150 and images[-1, ..., 2].mean() < 100
    [npy] = (tlhome / "cache" / "images").glob("*.npy")
    stored = np.load(npy, mmap_mode="r")  # an uncompressed .npy, read by position
    assert stored.shape == (6, 8, 8, 3)
    np.testing.assert_array_equal(np.asarray(stored), np.asarray(images))


def test_decode_images_reads_the_cache(tlhome, make_dataset, monkeypatch):
    paths = sorted(str(p) for p in make_dataset("flat", n=2).rglob("*.png"))
    first = data.decode_images(paths, 8)

    def refuse(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(data, "load_image", refuse)
    second = data.decode_images(paths, 8)
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1] == second[1] and first[2] == second[2] == []
    # Another size is another cache entry: the refusing decoder makes every image a problem.
    images, ok, problems = data.decode_images(paths, 9)
    assert ok == [] and len(problems) == 4 and images.shape == (0, 9, 9, 3)


def test_decode_images_without_cache_writes_nothing(tlhome, make_dataset):
    paths = sorted(str(p) for p in make_dataset("flat", n=2).rglob("*.png"))
    images, ok, _ = data.decode_images(paths, 8, resize="crop", cache=False)
    assert images.shape == (4, 8, 8, 3) and ok == [0, 1, 2, 3]
    assert not (tlhome / "cache").exists()
    with pytest.raises(TLCoreError, match="^resize "):
        data.decode_images(paths, 8, resize="fit")


def test_split_arrays_labels_follow_the_images(tlhome, make_dataset):
    root = make_dataset("split", classes=("red", "blue"), counts={"train": 10, "validation": 3, "test": 0})
    (root / "train" / "red" / "bad.png").write_text("x")
    ds = scan(root, check_files=False)
    images, labels, paths, problems = data.split_arrays(ds, "train", 8)
    assert images.shape == (20, 8, 8, 3) and labels.shape == (20,) and labels.dtype == np.int64
    assert len(problems) == 1 and problems[0]["file"].endswith("bad.png")
    for img, label, path in zip(images, labels, paths):
        assert ds.classes[label] == Path(path).parent.name
        red = img[..., 0].mean() > img[..., 2].mean()
        assert red == (ds.classes[label] == "red")


# ------------------------------------------------------------------------------ tf.data


def test_make_dataset_binary_labels(tlhome):
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    labels = np.array([0, 1] * 5)
    ds = data.make_dataset(images, labels, num_classes=2, batch_size=4)
    batches = list(ds.as_numpy_iterator())
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.dtype == np.float32 and x.shape == (4, 8, 8, 3)
    assert y.dtype == np.float32 and y.shape == (4, 1)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), images.astype("float32"))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches])[:, 0], labels)


def test_make_dataset_multiclass_labels_and_shuffle(tlhome):
    images = np.arange(12, dtype=np.uint8).reshape(12, 1, 1, 1).repeat(3, axis=-1)
    labels = np.arange(12) % 3
    ds = data.make_dataset(images, labels, num_classes=3, batch_size=12, shuffle=True, seed=5)
    x, y = next(ds.as_numpy_iterator())
    assert y.shape == (12,) and y.dtype == np.int64
    assert sorted(x[:, 0, 0, 0].tolist()) == list(range(12))
    assert x[:, 0, 0, 0].tolist() != list(range(12))  # shuffled ...
    np.testing.assert_array_equal(y, x[:, 0, 0, 0].astype(int) % 3)  # ... with the labels


def test_make_dataset_with_augmentation_stays_in_range(tlhome):
    images = np.random.default_rng(1).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    layers = augmentation_layers(augmentation_options("strong"), seed=1)
    ds = data.make_dataset(images, np.zeros(6), num_classes=2, batch_size=3, augment=layers)
    outs = [x for x, _ in ds.as_numpy_iterator()]
    assert [o.shape for o in outs] == [(3, 16, 16, 3)] * 2
    x = np.concatenate(outs)
    assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 255.0
    assert not np.array_equal(x, images.astype("float32"))


# ------------------------------------------------------------------------------ augmentation


def test_augmentation_presets():
    assert augmentation_options() == {}
    assert augmentation_options("none") == {}
    assert augmentation_options("light") == {"flip": "horizontal", "rotation": 10.0, "zoom": 0.1}
    strong = augmentation_options("strong")
    # The VGG19 recipe: rotation 40, shifts 0.2, shear 0.2, zoom 0.2, horizontal flip.
    assert strong["rotation"] == 40.0 and strong["shift"] == 0.2 and strong["shear"] == 0.2
    assert strong["zoom"] == 0.2 and strong["flip"] == "horizontal"
    assert set(strong) == {"flip", "rotation", "zoom", "shift", "shear", "contrast"}


def test_augmentation_overrides():
    assert augmentation_options("none", flip="vertical") == {"flip": "vertical"}
    light = augmentation_options("light", rotation=25, zoom=None, flip="none")
    assert light == {"rotation": 25, "zoom": 0.1}
    assert augmentation_options("strong", contrast=0, shear=0.0) == {
        "flip": "horizontal", "rotation": 40.0, "zoom": 0.2, "shift": 0.2}


@pytest.mark.parametrize("kwargs, option", [
    ({"preset": "medium"}, "augment"),
    ({"flip": "diagonal"}, "flip"),
    ({"rotation": -5}, "rotation"),
    ({"zoom": -0.1}, "zoom"),
])
def test_augmentation_errors(kwargs, option):
    """The engine names the option; the command line says --option (test_bad_inputs)."""
    preset = kwargs.pop("preset", "light")
    with pytest.raises(TLCoreError, match=f"^{option} ") as info:
        augmentation_options(preset, **kwargs)
    assert info.value.option == option


def test_augmentation_layers():
    layers = augmentation_layers(augmentation_options("strong"), seed=3)
    assert [type(layer).__name__ for layer in layers] == [
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomShear",
        "RandomContrast"]
    rotation = layers[1]
    assert rotation.factor == (-40 / 360, 40 / 360) or np.allclose(rotation.factor, [-40 / 360, 40 / 360])
    both = augmentation_layers({"flip": "both"})
    assert both[0].mode == "horizontal_and_vertical"
    assert augmentation_layers({}) == []


# ------------------------------------------------------------------------------ class weights


def test_class_weights_balance_imbalanced_classes():
    labels = np.array([0] * 30 + [1] * 10)
    weights = class_weights(labels, 2)
    assert weights == pytest.approx({0: 40 / (2 * 30), 1: 40 / (2 * 10)})
    # Weighted, each class counts the same.
    assert weights[0] * 30 == pytest.approx(weights[1] * 10)


def test_class_weights_none_when_balanced_or_asked():
    assert class_weights(np.array([0] * 10 + [1] * 10), 2) is None
    assert class_weights(np.array([0] * 15 + [1] * 10), 2) is None  # ratio 1.5: close enough
    assert class_weights(np.array([0] * 30 + [1] * 10), 2, mode="none") is None
    with pytest.raises(TLCoreError, match="^class_weights "):
        class_weights(np.array([0, 1]), 2, mode="balanced")


def test_class_weights_with_an_empty_class():
    weights = class_weights(np.array([0] * 20 + [1] * 5), 3)
    assert weights[2] == 0.0
    assert weights[0] == pytest.approx(25 / (3 * 20)) and weights[1] == pytest.approx(25 / (3 * 5))


def test_runs_from_before_the_per_file_split_keep_their_own_split(tmp_path):
    """A run whose config.json has no split_method was split by the earlier seeded shuffle;
    evaluating, calibrating or resuming it must use that split, not the per-file one."""
    import random

    from datagen import write_flat
    from tlcore.data.splits import of_run, recorded_method

    root = write_flat(tmp_path / "flat", classes=("red", "green"), n=20)
    old = scan(root, 0.2, 0.1, 7, split_method="shuffle")
    new = scan(root, 0.2, 0.1, 7)
    assert new.split_method == "by-file" and old.split_method == "shuffle"
    assert set(old.files["test"]) != set(new.files["test"])
    for label, name in enumerate(old.classes):  # exactly the earlier method, class by class
        files = sorted(f for f, l in old.files["train"] + old.files["validation"] + old.files["test"] if l == label)
        random.Random(f"7:{label}").shuffle(files)
        assert {f for f, l in old.files["test"] if l == label} == set(files[:2])
        assert {f for f, l in old.files["validation"] if l == label} == set(files[2:6])
    assert recorded_method({"options": {}}) == "shuffle"
    assert recorded_method({"split_method": "by-file"}) == "by-file"
    # every reader of a run's dataset (evaluate, calibrate, export, the Evaluate page) scans with these
    assert of_run({"options": {"seed": 7, "val_split": 0.2, "test_split": 0.1}}) == {
        "val_split": 0.2, "test_split": 0.1, "seed": 7, "split_method": "shuffle"}
    assert set(scan(root, **of_run({"options": {"seed": 7}, "split_method": "shuffle"})).files["test"]) \
        == set(old.files["test"])


@pytest.mark.parametrize("method", ["by-file", "shuffle"])
def test_the_run_as_code_splits_a_flat_dataset_exactly_as_the_studio(tmp_path, method):
    """`export --format code` writes its own copy of the split: it must pick the same files."""
    from datagen import write_flat
    from tlcore.ship.codegen import render

    root = write_flat(tmp_path / "flat", classes=("green", "red"), n=15)
    values = {k: None for k in ("BACKBONE", "WEIGHTS", "INPUT_SIZE", "PREPROCESSING", "CUT_LAYER", "POOLING",
                                "DENSE", "DROPOUT", "HEAD_EPOCHS", "FINE_TUNE_EPOCHS", "LR", "FINE_TUNE_LR",
                                "OPTIMIZER", "BATCH_SIZE", "AUGMENT", "CLASS_WEIGHTS", "EARLY_STOPPING", "RESIZE",
                                "DETERMINISTIC", "TRAIN_IN_STAGE_2", "FROZEN_WEIGHTS", "RUN_ID", "RUN_VAL_ACCURACY",
                                "RUN_TEST_ACCURACY")}
    values.update(CLASSES=["green", "red"], SEED=3, VAL_SPLIT=0.2, TEST_SPLIT=0.2, SPLIT_METHOD=method,
                  IMAGE_EXTENSIONS=[".png"])
    namespace = {"__name__": "not_main"}
    exec(compile(render(values), "train_run.py", "exec"), namespace)
    files = namespace["split_dataset"](str(root))
    ds = scan(root, 0.2, 0.2, 3, split_method=method)
    for split in SPLITS:
        assert sorted(files[split]) == sorted(ds.files[split]), split
