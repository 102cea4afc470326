"""The stage-1 feature cache: same features as the backbone, hits on disk, same head as end to end."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from datagen import write_split

FAST = dict(backbone="ResNet50", weights="none", input_size=32, augment="none", early_stopping=0,
            fine_tune_epochs=0, head_epochs=6, lr=0.01, batch_size=8)


@functools.lru_cache(maxsize=None)  # built once per module: ResNet50 takes seconds to build
def _model(name: str, size: int = 32):
    from tlcore.backbones.build import build_backbone
    from tlcore.backbones.catalog import get_backbone
    from tlcore.recipe.surgery import HeadSpec, assemble, build_head, cut_backbone

    backbone, _ = cut_backbone(build_backbone(name, size, "none"))
    head = build_head(backbone.output.shape[1:], 3, HeadSpec())
    return assemble(backbone, head, get_backbone(name).preprocessing, size)


def _images(n: int = 10, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("name, module", [("ResNet50", "resnet50"), ("MobileNetV2", "mobilenet_v2")])
def test_cached_features_equal_the_backbone_on_preprocessed_images(name, module):
    import keras

    from tlcore.recipe import features
    from tlcore.recipe.surgery import feature_extractor

    model = _model(name)
    images = _images(10)
    got = features.compute(feature_extractor(model), images, batch_size=4)
    preprocess = getattr(keras.applications, module).preprocess_input
    x = preprocess(images.astype("float32").copy())  # the family's own preprocessing, outside the model
    want = keras.ops.convert_to_numpy(model.get_layer("backbone")(x, training=False))
    assert got.shape == (1, *want.shape)
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got[0] / scale, want / scale, atol=1e-5)


def test_augmented_copies_differ_and_are_repeatable():
    from tlcore.recipe import features
    from tlcore.data.augment import augmentation_layers, augmentation_options
    from tlcore.recipe.surgery import feature_extractor

    extractor = feature_extractor(_model("ResNet50"))
    images = _images(6)
    opts = augmentation_options("light")
    # Fresh layers each time, as each training run makes them: seeded layers repeat themselves.
    a = features.compute(extractor, images, 4, augmentation_layers(opts, seed=1), copies=3, seed=1)
    b = features.compute(extractor, images, 4, augmentation_layers(opts, seed=1), copies=3, seed=1)
    assert a.shape[:2] == (3, 6)
    assert not np.allclose(a[0], a[1])  # each copy sees other augmentations
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)  # same seed, same copies


def test_second_lookup_with_the_same_key_is_a_hit(tlhome):
    from tlcore.recipe import features

    calls = []

    def make():
        calls.append(1)
        return np.arange(12, dtype=np.float32).reshape(1, 3, 4)

    key = features.cache_key(split="train", size=32, source={"name": "ResNet50", "weights": "none"})
    first = features.cached(key, make)
    second = features.cached(key, make)
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    assert (tlhome / "cache" / "features" / f"{key}.npy").exists()


def test_keys_change_with_every_part_and_not_with_their_order():
    from tlcore.recipe import features

    base = dict(split="train", copies=1, augment={}, source={"name": "ResNet50", "weights": "none"},
                cut=None, size=32, resize="stretch", data="abc", seed=42)
    key = features.cache_key(**base)
    assert key == features.cache_key(**dict(reversed(list(base.items()))))
    changed = [dict(base, split="validation"), dict(base, copies=5), dict(base, augment={"flip": "horizontal"}),
               dict(base, source={"name": "ResNet50", "weights": "imagenet"}), dict(base, cut="conv4_block6_out"),
               dict(base, size=64), dict(base, resize="pad"), dict(base, data="abd"), dict(base, seed=1)]
    keys = {features.cache_key(**parts) for parts in changed}
    assert key not in keys and len(keys) == len(changed)


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return write_split(tmp_path_factory.mktemp("colours"), counts=(12, 6, 0))


def _train(**options):
    from tlcore.training.train import TrainConfig, train

    result = train(TrainConfig(data=str(options.pop("data")), **dict(FAST, **options)))
    run = Path(result["run_dir"])
    status = json.loads((run / "status.json").read_text())
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return result, status, metrics


def test_cached_stage1_reaches_the_same_accuracy_as_end_to_end(tlhome, colours):
    on, on_status, on_metrics = _train(data=colours, feature_cache="on")
    off, off_status, off_metrics = _train(data=colours, feature_cache="off")
    assert on["state"] == off["state"] == "completed"
    assert on_status["feature_cache"] == "on (1 copy)"
    assert "feature_cache" not in off_status
    assert len(on_metrics) == len(off_metrics) == FAST["head_epochs"]
    assert on["val_accuracy"] >= 0.9 and off["val_accuracy"] >= 0.9
    assert abs(on_metrics[-1]["val_accuracy"] - off_metrics[-1]["val_accuracy"]) <= 0.2
    # Same seed, same batches, same head: the first epoch's loss is the same computation.
    np.testing.assert_allclose(on_metrics[0]["loss"], off_metrics[0]["loss"], rtol=0.05)
    assert list((tlhome / "cache" / "features").glob("*.npy"))  # train and validation features kept


def test_augmented_cache_keeps_five_copies_and_auto_trains_end_to_end_for_few_epochs(tlhome, colours):
    from tlcore.recipe import features

    cached, status, metrics = _train(data=colours, feature_cache="on", augment="light")
    assert cached["state"] == "completed"
    assert status["feature_cache"] == f"on ({features.AUGMENTED_COPIES} copies)"
    assert len(metrics) == FAST["head_epochs"] and all(np.isfinite(m["loss"]) for m in metrics)
    train_feats = [np.load(p, mmap_mode="r") for p in (tlhome / "cache" / "features").glob("*.npy")]
    assert sorted(f.shape[0] for f in train_feats) == [1, features.AUGMENTED_COPIES]  # validation, train

    auto, status, metrics = _train(data=colours, feature_cache="auto", augment="light", head_epochs=3)
    assert auto["state"] == "completed"
    assert "feature_cache" not in status  # 3 epochs do not pay for 5 augmented copies
    assert len(metrics) == 3


@pytest.mark.slow
def test_a_cached_run_is_scored_from_its_features_with_the_full_models_numbers(tlhome, make_dataset, monkeypatch):
    """A head-only run on cached features is evaluated from the features (its test split's are
    cached too, the whole model is not run again), and the numbers equal the whole model's."""
    from tlcore.evaluation import evaluate
    from tlcore.recipe.config import TrainConfig
    from tlcore.ship.predict import RunModel
    from tlcore.training.train import train

    data = make_dataset("split", classes=("red", "green", "blue"), counts={"train": 8, "validation": 3, "test": 4},
                        size=32)
    calls = []
    real = RunModel.probabilities
    monkeypatch.setattr(RunModel, "probabilities", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    cfg = TrainConfig(data=str(data), backbone="ResNet50", weights="none", input_size=32, cut="conv2_block3_out",
                      head_epochs=3, fine_tune_epochs=0, augment="none", early_stopping=0, batch_size=8, lr=0.01,
                      seed=1, feature_cache="on")
    result = train(cfg, runs_dir=str(tlhome / "runs"))
    assert result["state"] == "completed" and calls == []  # scored without running the whole model
    assert list((tlhome / "cache" / "features").glob("*.npy")) and len(list(
        (tlhome / "cache" / "features").glob("*.npy"))) == 3  # train, validation and test features
    recorded = json.loads((Path(result["run_dir"]) / "evaluation.json").read_text())
    full = evaluate.evaluate_run(result["run_dir"])  # the saved model, run end to end
    assert calls and full["accuracy"] == recorded["accuracy"] == result["test_accuracy"]
    assert full["confusion_matrix"] == recorded["confusion_matrix"]
    assert [m["file"] for m in full["misclassified"]] == [m["file"] for m in recorded["misclassified"]]
    assert full["loss"] == pytest.approx(recorded["loss"], rel=1e-4, abs=1e-6)
