"""Every reader of a whole split reads it a batch or a chunk at a time, never all of it at once:
the learning-rate finder, the audit's and the probe's features, the baselines and the int8
calibration set. Each test counts the rows of every read from a split's cache file (with a
chunk of one row) and checks that no read holds the split."""
from __future__ import annotations

import numpy as np
import pytest

from plant import save_colour_model, write_patterns
from tlcore.data import mapped

BATCH = 4


@pytest.fixture
def reads(monkeypatch):
    """Each read of rows from a cache file or from image files: (rows read, rows in the source,
    bytes per row); a chunk of rows is one row."""
    seen = []
    for cls in (mapped.DiskRows, mapped.DecodedRows):
        def spy(self, indexes, real=cls.read):
            out = real(self, indexes)
            seen.append((len(out), len(self), int(np.prod(self.shape[1:])) * self.dtype.itemsize))
            return out

        monkeypatch.setattr(cls, "read", spy)
    monkeypatch.setattr(mapped, "CHUNK_BYTES", 1)
    return seen


def _config(tmp_path, counts=(12, 5, 5), **extra):
    from tlcore.recipe.config import TrainConfig

    root = write_patterns(tmp_path / "d", counts=counts)
    model = save_colour_model(tmp_path / "m.keras", gray_after_colour=False)
    return TrainConfig.from_dict(dict(data=str(root), backbone_file=str(model), preprocessing="none",
                                      batch_size=BATCH, **extra))


def _image_reads(seen, side=32):
    return [(k, n) for k, n, row in seen if row == side * side * 3]


def _assert_partial(seen, most):
    assert seen, "nothing was read from a split's rows"
    for k, n, _ in seen:
        assert k <= most < n, (k, n)  # a batch or a chunk, and less than the source's rows


@pytest.mark.parametrize("stage", [1, 2])
def test_lr_finder_reads_its_sample_batch_by_batch(tmp_path, tlhome, reads, stage):
    from tlcore.training.lrfind import lr_find

    res = lr_find(_config(tmp_path), stage=stage, steps=12)
    assert len(res["lrs"]) >= 11
    _assert_partial(reads, BATCH)  # images (and, in stage 1, the sample's features file)
    assert sum(k for k, n, row in reads if row == 32 * 32 * 3 and n > BATCH) >= BATCH * 11 or stage == 1


def test_audit_features_pool_a_chunk_at_a_time(tmp_path, tlhome, reads):
    from tlcore.evaluation.audit import dataset_features

    out = dataset_features(_config(tmp_path, cut="smooth"))  # feature maps [n, 32, 32, 3]
    assert out["x"].shape == (len(out["files"]), 3) and len(out["files"]) == 3 * 22  # three classes
    _assert_partial(reads, BATCH)
    maps = [k for k, n, row in reads if row == 32 * 32 * 3 * 4]  # the cached feature maps, float32
    assert maps and max(maps) == 1  # pooled one chunk (here a row) at a time


def test_probe_reads_images_batch_by_batch(tmp_path, tlhome, reads):
    from tlcore.evaluation.probe import probe

    rows = probe(_config(tmp_path), cuts=["colour", "flat"])
    assert [r["cut"] for r in rows] == ["colour", "flat"]
    images = _image_reads(reads)
    assert images and all(k <= BATCH < n for k, n in images)


def test_baselines_read_their_sample_and_the_test_split_in_batches(tmp_path, tlhome, reads):
    from tlcore.backbones.source import load_source
    from tlcore.data.pipeline import scan, split_arrays
    from tlcore.evaluation.baselines import RunBaselines
    from tlcore.recipe.surgery import build_model

    config = _config(tmp_path, counts=(30, 2, 20)).resolved()
    ds = scan(config.data, config.val_split, config.test_split, config.seed)
    source = load_source(config)
    x_train, y_train, _, _ = split_arrays(ds, "train", source.input_size)
    x_test, y_test, _, _ = split_arrays(ds, "test", source.input_size)
    assert isinstance(x_train, mapped.DiskRows) and len(x_train) == 90 and len(x_test) == 60
    model = build_model(config, source, len(ds.classes))
    reads.clear()
    out = RunBaselines(model, x_train, y_train, seed=0, max_train=50)("test", x_test, y_test)
    assert {b["kind"] for b in out} == {"features", "pixels"}
    assert all(b["train_count"] == 50 and b["test_count"] == 60 for b in out)
    images = _image_reads(reads)
    assert images and all(k <= 32 and k < n for k, n in images)  # a chunk, or a batch of the forward pass


def test_int8_calibration_reads_a_batch_of_the_training_images_at_a_time(tmp_path, reads):
    import keras

    from tlcore.ship import tflite

    rng = np.random.default_rng(0)
    writer = mapped.NpyWriter(tmp_path / "train.npy")
    writer.append(rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8))
    writer.close()
    images = mapped.DiskRows(tmp_path / "train.npy")
    cal = tflite.calibration_set(images)
    assert len(cal) == tflite.CALIBRATION_MIN and not reads  # made without reading an image
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    assert tflite.convert(model, "int8", representative=cal)
    _assert_partial(reads, 32)
    assert sum(k for k, _, _ in reads) == len(cal)  # each image of the set read once, where it is used
