"""`head_fit: logistic`: stage 1 as a linear probe, folded into the head's output layer."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datagen import write_split
from tlcore.core.errors import OptionError
from tlcore.recipe.config import TrainConfig
from tlcore.training import headfit


def _sklearn_probe(x, y, c):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x, y)


@pytest.mark.parametrize("classes", [2, 4])
def test_the_folded_layer_gives_scikit_learns_probabilities(classes):
    rng = np.random.default_rng(classes)
    y = np.repeat(np.arange(classes), 12)
    x = rng.normal(size=(len(y), 20)) * rng.uniform(0.1, 30, size=20) + rng.normal(size=20) * 5
    x[:, :3] += y[:, None] * 2.0  # three informative features on very different scales
    got = headfit.fit(x, y, classes)
    assert got["C"] in headfit.CS and got["folds"] == 5 and got["fitted"] == len(y)
    assert got["kernel"].shape == (20, 1 if classes == 2 else classes)
    expected = _sklearn_probe(x, y, got["C"]).predict_proba(x)
    mine = headfit.probabilities(x, got["kernel"], got["bias"])
    np.testing.assert_allclose(mine, expected, atol=2e-3)  # two lbfgs fits to their tolerance
    # no seed in the choice: the same data gives the same layer
    again = headfit.fit(x, y, classes, seed=7)
    np.testing.assert_allclose(again["kernel"], got["kernel"], atol=1e-6)


def test_a_class_missing_from_training_gets_no_votes_and_one_class_is_refused():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 2], 6)
    x = rng.normal(size=(12, 5)) + y[:, None]
    got = headfit.fit(x, y, 3)
    probs = headfit.probabilities(x, got["kernel"], got["bias"])
    assert probs.shape == (12, 3) and probs[:, 1].max() < 1e-6
    assert (probs.argmax(axis=1) == y).mean() >= 0.8
    with pytest.raises(Exception, match="at least 2 classes"):
        headfit.fit(x, np.zeros(12, int), 3)


def test_hidden_dense_layers_or_no_stage_1_are_refused_by_name():
    with pytest.raises(OptionError) as info:
        TrainConfig(data="x", backbone="MobileNetV2", head_fit="logistic", dense=[16]).check(data=False)
    assert info.value.option == "head_fit" and "dense" in str(info.value)
    with pytest.raises(OptionError) as info:
        TrainConfig(data="x", backbone="MobileNetV2", head_fit="logistic", head_epochs=0).check(data=False)
    assert info.value.option == "head_fit"
    with pytest.raises(OptionError) as info:
        TrainConfig(data="x", backbone="MobileNetV2", head_fit="sgd").check(data=False)
    assert info.value.option == "head_fit"
    with pytest.raises(OptionError) as info:  # the pixel model has no backbone to fine-tune
        TrainConfig(data="x", backbone="MobileNetV2", head_fit="pixels", fine_tune_epochs=2).check(data=False)
    assert info.value.option == "head_fit" and "fine_tune_epochs 2" in str(info.value)


@pytest.fixture(scope="module")
def probe_runs(tmp_path_factory):
    """A 3-class set with its own split folders, a MobileNetV2 file (random weights, 32 px), and two
    probe runs of it with different seeds: one without stage 2, one with a stage-2 epoch."""
    from tlcore.backbones.build import build_backbone

    root = tmp_path_factory.mktemp("headfit")
    data = write_split(root / "data", counts=(8, 4, 4))
    weights = root / "mobilenet_v2_32_notop.weights.h5"
    build_backbone("MobileNetV2", 32, weights=None).save_weights(weights)
    home = root / "home"
    common = ["--backbone", "MobileNetV2", "--weights", str(weights), "--input-size", "32", "--batch-size", "8",
              "--cut", "block_6_expand_relu", "--head-fit", "logistic", "--json"]
    env = {"TLCORE_HOME": str(home)}
    out = {"data": data, "home": home}
    for name, extra in (("pixels", ["--fine-tune-epochs", "0", "--head-fit", "pixels", "--seed", "1"]),
                        ("probe", ["--fine-tune-epochs", "0", "--seed", "1"]),
                        ("again", ["--fine-tune-epochs", "0", "--seed", "5"]),
                        ("lpft", ["--fine-tune-epochs", "1", "--head-epochs", "3", "--seed", "1"])):
        proc = _tlcore(["train", str(data), *common, *extra], env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[name] = json.loads(proc.stdout)
    return out


def _tlcore(args, env):
    import os

    return subprocess.run([sys.executable, "-m", "tlcore", *args], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **env))


def test_a_probe_run_is_one_step_whose_model_is_the_regression(probe_runs):
    import keras

    from tlcore.data.pipeline import scan, split_arrays
    from tlcore.recipe.surgery import feature_extractor

    out = probe_runs["probe"]
    run = Path(out["run_dir"])
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(m["stage"], m["epoch"]) for m in metrics] == [(1, 10)]  # one step, numbered as stage 1's end
    status = json.loads((run / "status.json").read_text())
    assert status["head_fit"]["method"] == "logistic" and status["head_fit"]["C"] in headfit.CS
    assert out["state"] == "completed" and out["val_accuracy"] == pytest.approx(metrics[0]["val_accuracy"])
    # the saved model is scikit-learn's regression on the frozen, pooled features
    model = keras.models.load_model(run / "model.keras", compile=False)
    ds = scan(str(probe_runs["data"]))
    x_train, y_train, _, _ = split_arrays(ds, "train", 32)
    x_val, _, _, _ = split_arrays(ds, "validation", 32)
    extractor = feature_extractor(model)

    def pooled(x):
        return np.asarray(extractor(x.astype("float32"), training=False)).mean(axis=(1, 2))

    probe = _sklearn_probe(pooled(x_train), y_train, status["head_fit"]["C"])
    np.testing.assert_allclose(model.predict(x_val.astype("float32"), verbose=0), probe.predict_proba(pooled(x_val)),
                               atol=1e-3)


def test_the_probe_does_not_depend_on_the_seed_and_repeats_from_its_config(probe_runs):
    import keras

    first = keras.models.load_model(Path(probe_runs["probe"]["run_dir"]) / "model.keras", compile=False)
    other = keras.models.load_model(Path(probe_runs["again"]["run_dir"]) / "model.keras", compile=False)
    for a, b in zip(first.get_layer("head").get_weights(), other.get_layer("head").get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    options = json.loads(Path(probe_runs["probe"]["run_dir"], "config.json").read_text())["options"]
    assert options["head_fit"] == "logistic"


def test_a_second_stage_fine_tunes_from_the_probe(probe_runs):
    run = Path(probe_runs["lpft"]["run_dir"])
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(m["stage"], m["epoch"]) for m in metrics] == [(1, 3), (2, 4)]
    assert probe_runs["lpft"]["state"] == "completed"


def test_a_hidden_dense_layer_with_logistic_is_a_usage_error_without_traceback(tmp_path):
    data = write_split(tmp_path / "data", counts=(2, 1, 1))
    proc = _tlcore(["train", str(data), "--backbone", "MobileNetV2", "--weights", "none", "--head-epochs", "2",
                    "--head-fit", "logistic", "--dense", "16"], {"TLCORE_HOME": str(tmp_path / "home")})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "--head-fit logistic" in proc.stderr and "(--dense)" in proc.stderr and "dense [16]" in proc.stderr
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())


def test_the_pixel_model_is_the_pixel_baseline_as_a_network(probe_runs):
    import keras

    from tlcore.data.pipeline import scan, split_arrays
    from tlcore.evaluation.baselines import pixel_vectors

    out = probe_runs["pixels"]
    run = Path(out["run_dir"])
    status = json.loads((run / "status.json").read_text())
    assert status["head_fit"]["method"] == "pixels" and status["head_fit"]["centres"] == 24
    from tlcore.training.pixelfit import SIZE
    model = keras.models.load_model(run / "model.keras", compile=False, safe_mode=True)  # standard layers only
    assert "backbone" not in [layer.name for layer in model.layers]
    ds = scan(str(probe_runs["data"]))
    x_test, y_test, _, _ = split_arrays(ds, "test", SIZE)
    assert model.input_shape[1:] == (SIZE, SIZE, 3)
    inner = keras.Model(model.inputs, model.get_layer("pixels_vector").output)
    np.testing.assert_allclose(inner.predict(x_test.astype("float32"), verbose=0), pixel_vectors(x_test), atol=1e-5)
    probs = model.predict(x_test.astype("float32"), verbose=0)
    assert out["test_accuracy"] == pytest.approx((probs.argmax(axis=1) == y_test).mean())
    assert out["test_accuracy"] >= 0.9  # three colours: the pixels tell them apart
    kinds = {b["kind"] for b in out["baselines"]}
    assert kinds == {"features", "pixels"}  # the backbone's features baseline is still beside it


def test_a_pixel_run_says_why_it_has_no_grad_cam_and_no_script(probe_runs, tmp_path):
    run = probe_runs["pixels"]["run_dir"]
    env = {"TLCORE_HOME": str(probe_runs["home"])}
    image = next((probe_runs["data"] / "test").rglob("*.png"))
    proc = _tlcore(["explain", run, str(image), "--out", str(tmp_path / "cam.png")], env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "no feature maps" in proc.stderr
    proc = _tlcore(["export", run, "--format", "code", "--out", str(tmp_path / "train_run.py")], env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "head_fit pixels" in proc.stderr
    assert not (tmp_path / "train_run.py").exists()
    proc = _tlcore(["predict", run, str(image), "--json"], env)  # predict takes it like any run
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _tlcore(["export", run, "--format", "onnx", "--out", str(tmp_path / "pixels.onnx"), "--json"], env)
    assert proc.returncode == 0, proc.stderr[-2000:]  # every layer converts; the export checks its agreement
    assert json.loads(proc.stdout)["top1_agreement"] == 1.0
