"""The recipe options: Keras schedules, optimizers, label smoothing, RandAugment, MixUp/CutMix."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datagen import write_split
from tlcore.recipe.config import TrainConfig
from tlcore.core.errors import OptionError


def test_recipe_options_are_checked():
    base = dict(backbone="MobileNetV2", weights="none")
    for bad in (dict(label_smoothing=1.0), dict(label_smoothing=-0.1), dict(mixup=-1.0), dict(cutmix=11.0),
                dict(warmup_epochs=-1), dict(weight_decay=2.0), dict(schedule="linear"), dict(optimizer="lion")):
        with pytest.raises(OptionError) as err:
            TrainConfig(**base, **bad).check(data=False)
        assert err.value.option == next(iter(bad))
    cfg = TrainConfig(**base, augment="randaugment", mixup=0.2, cutmix=1.0, label_smoothing=0.1)
    cfg.check(data=False)
    assert cfg.image_recipe() == ["RandAugment", "MixUp", "CutMix"]
    assert TrainConfig(**base, label_smoothing=0.1).image_recipe() == []  # smoothing works on features


def test_schedules_are_keras_cosine_decay_with_warmup():
    import keras

    from tlcore.recipe.optimizer import learning_rate

    assert learning_rate("constant", 1e-3, 5, 10) == 1e-3
    cos = learning_rate("cosine", 1e-3, epochs=5, steps_per_epoch=10, warmup_epochs=1)
    assert isinstance(cos, keras.optimizers.schedules.CosineDecay)
    lr = [float(cos(step)) for step in (0, 5, 10, 30, 50)]
    assert lr[0] == 0.0 and lr[1] == pytest.approx(5e-4) and lr[2] == pytest.approx(1e-3)
    assert lr[2] > lr[3] > lr[4] and lr[4] == pytest.approx(0.0, abs=1e-9)
    plain = learning_rate("cosine", 1e-3, epochs=2, steps_per_epoch=10)
    assert float(plain(0)) == pytest.approx(1e-3) and float(plain(20)) == pytest.approx(0.0, abs=1e-9)
    one = learning_rate("onecycle", 1e-3, epochs=10, steps_per_epoch=10)
    assert float(one(0)) == pytest.approx(1e-3 / 25) and float(one(30)) == pytest.approx(1e-3)
    assert float(one(100)) < 1e-7


def test_optimizers_and_losses():
    import keras

    from tlcore.data.outputs import loss, targets
    from tlcore.recipe.optimizer import make_optimizer

    adamw = make_optimizer("adamw", 1e-3)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == pytest.approx(0.004)
    assert make_optimizer("sgd", 1e-2, 1e-4).weight_decay == pytest.approx(1e-4)
    assert loss(3) == "sparse_categorical_crossentropy" and loss(2) == "binary_crossentropy"
    smooth = loss(3, 0.1)
    assert isinstance(smooth, keras.losses.CategoricalCrossentropy)
    y = targets(np.array([0, 2]), 3, one_hot=True)
    assert y.tolist() == [[1, 0, 0], [0, 0, 1]]
    # smoothing a confident right answer costs more than without it: the targets really are softer
    p = np.array([[0.98, 0.01, 0.01], [0.01, 0.01, 0.98]], "float32")
    assert float(smooth(y, p)) > float(keras.losses.CategoricalCrossentropy()(y, p))
    binary = loss(2, 0.2)  # the single sigmoid unit: BinaryCrossentropy's own smoothing
    assert isinstance(binary, keras.losses.BinaryCrossentropy)
    assert targets(np.array([0, 1]), 2, one_hot=True).shape == (2, 1)


def test_mixup_and_cutmix_blend_labels_and_repeat_with_the_seed():
    import tensorflow as tf

    from tlcore.data.pipeline import make_dataset

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (16, 24, 24, 3)).astype("uint8")
    labels = np.arange(16) % 4

    def batches(mixup, cutmix, seed):
        from tlcore.recipe.optimizer import mixer

        tf.random.set_seed(seed)
        ds = make_dataset(images, labels, 4, 8, one_hot=True, mix=mixer(mixup, cutmix, seed))
        return [(x.numpy(), t.numpy()) for x, t in ds]

    for mixup, cutmix in ((0.4, 0.0), (0.0, 1.0), (0.4, 1.0)):
        a, b = batches(mixup, cutmix, 3), batches(mixup, cutmix, 3)
        for (xa, ta), (xb, tb) in zip(a, b):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ta, tb)
            assert np.allclose(ta.sum(axis=1), 1.0) and xa.min() >= 0 and xa.max() <= 255
        mixed = np.concatenate([t for _, t in a])
        assert ((mixed > 0) & (mixed < 1)).any()  # some targets are blends of two classes


@pytest.mark.slow
def test_randaugment_and_mixup_runs_repeat_exactly_and_say_why_no_cache(tmp_path):
    """Two runs with the modern recipe and the same seed in fresh homes record the same numbers;
    config.json records the options; the run says the feature cache was not used."""
    data = write_split(tmp_path / "data", counts=(12, 4, 4))
    args = ["--backbone", "MobileNetV2", "--weights", "none", "--input-size", "32", "--cut", "block_3_expand_relu", "--head-epochs", "1",
            "--fine-tune-epochs", "2", "--unfreeze-from", "0", "--train-bn", "--batch-size", "8",
            "--augment", "randaugment", "--mixup", "0.2", "--cutmix", "1.0", "--label-smoothing", "0.1",
            "--schedule", "cosine", "--warmup-epochs", "1", "--optimizer", "adamw", "--weight-decay", "0.01",
            "--early-stopping", "0", "--seed", "5", "--json"]
    results = []
    for i in (1, 2):
        env = dict(os.environ, TLCORE_HOME=str(tmp_path / f"home{i}"))
        proc = subprocess.run([sys.executable, "-m", "tlcore", "train", str(data), *args], env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = json.loads(proc.stdout)
        assert any("No feature cache" in w and "RandAugment" in w and "MixUp" in w for w in out["warnings"])
        run = Path(out["run_dir"])
        options = json.loads((run / "config.json").read_text())["options"]
        assert (options["augment"], options["mixup"], options["cutmix"], options["schedule"]) == \
            ("randaugment", 0.2, 1.0, "cosine")
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        for m in metrics:
            m.pop("seconds")
        results.append((metrics, out["val_accuracy"], out["test_accuracy"]))
    assert results[0] == results[1]
    # at the end of each epoch: stage 1 (one epoch) warmed up and decayed within it; stage 2 at its
    # rate (1e-4) after the warm-up epoch, then decayed to 0
    lrs = [m["lr"] for m in results[0][0]]
    assert lrs == [pytest.approx(0.0, abs=1e-9), pytest.approx(1e-4), pytest.approx(0.0, abs=1e-9)]
