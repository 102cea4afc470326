"""Understanding a model: Grad-CAM, calibration, the LR finder, presets, the demo dataset."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest



@pytest.fixture(scope="module")
def run(shared_run):
    return shared_run.base, shared_run.data, shared_run.out


def test_gradcam_map_has_image_size_and_is_not_constant(run, tmp_path):
    from tlcore.evaluation.explain import explain, explain_image
    from tlcore.ship.predict import RunModel
    from PIL import Image

    base, data, out = run
    # an image with an object on one side: the map must not be flat
    img = np.full((40, 60, 3), 30, np.uint8)
    img[5:35, 35:58] = (220, 40, 40)
    Image.fromarray(img).save(tmp_path / "obj.png")
    res = explain_image(RunModel(out["run_dir"]), tmp_path / "obj.png")
    assert res["overlay"].size == (60, 40)
    assert res["heatmap"].max() > res["heatmap"].min()
    doc = explain(out["run_dir"], tmp_path / "obj.png", tmp_path / "cam.png", label="green")
    assert doc["label"] == "green" and 0 <= doc["probability"] <= 1
    assert Image.open(tmp_path / "cam.png").size == (60, 40)


def test_ece_zero_when_perfectly_calibrated_and_known_when_constructed():
    from tlcore.evaluation.evaluate import calibration_bins

    conf = np.array([1.0] * 10)
    ece, _ = calibration_bins(conf, np.ones(10))
    assert ece == 0.0
    # 10 predictions at 0.9 confidence, 6 right: |0.9 - 0.6| = 0.3
    ece, bins = calibration_bins(np.full(10, 0.9), np.array([1] * 6 + [0] * 4, float))
    assert ece == pytest.approx(0.3)
    assert sum(b["count"] for b in bins) == 10


def test_temperature_scaling_never_worsens_validation_log_loss():
    from tlcore.evaluation.calibrate import fit_temperature

    rng = np.random.default_rng(0)
    for _ in range(20):
        logits = rng.normal(0, rng.uniform(0.5, 8), (50, 4))
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        labels = rng.integers(0, 4, 50)
        t, before, after = fit_temperature(probs, labels)
        assert after <= before + 1e-12 and t > 0
    # overconfident, half wrong: T must soften (> 1)
    probs = np.tile([[0.98, 0.01, 0.01]], (40, 1))
    labels = np.array([0] * 20 + [1] * 20)
    t, before, after = fit_temperature(probs, labels)
    assert t > 1 and after < before


def test_calibrate_run_bakes_temperature_into_model(run, copy_run):
    from tlcore.evaluation.calibrate import calibrate_run
    from tlcore.evaluation.evaluate import evaluate_run

    base, data, out = run
    out = dict(out, run_dir=str(copy_run))  # calibrating changes the run: work on a copy
    before = evaluate_run(out["run_dir"], split="validation")
    res = calibrate_run(out["run_dir"])
    after = evaluate_run(out["run_dir"], split="validation")
    assert res["val_log_loss_after"] <= res["val_log_loss_before"] + 1e-9
    assert after["accuracy"] == before["accuracy"]  # dividing logits by T keeps the ranking
    assert after["loss"] <= before["loss"] + 1e-4
    assert json.loads((Path(out["run_dir"]) / "calibration.json").read_text())["temperature"] > 0


def test_lr_finder_suggestion_inside_range(run):
    from tlcore.training.lrfind import lr_find, suggest
    from tlcore.recipe.config import TrainConfig

    base, data, out = run
    res = lr_find(TrainConfig(data=str(data), backbone="ResNet50", weights="none", input_size=32,
                              batch_size=8, augment="none"), stage=1, min_lr=1e-6, max_lr=1.0, steps=40)
    assert len(res["lrs"]) == len(res["losses"]) >= 11
    assert 1e-6 <= res["suggested_lr"] <= 1.0
    assert res["lrs"] == sorted(res["lrs"])
    # a constructed curve: flat, then a steep fall between 1e-3 and 1e-2, then a rise
    lrs = list(np.logspace(-6, 0, 60))
    losses = [2.0 if lr < 1e-3 else 2.0 - (np.log10(lr) + 3) * 1.5 if lr < 1e-2 else 0.5 + (np.log10(lr) + 2)
              for lr in lrs]
    assert 1e-3 <= suggest(lrs, losses) <= 1e-2


def _planned(cfg, classes):
    from tlcore.recipe.surgery import build_model
    from tlcore.recipe.plan import apply_stage, make_plan
    from tlcore.backbones.source import load_source

    source = load_source(cfg)
    plan = make_plan(cfg, classes, source)
    model = build_model(cfg, source, classes)
    apply_stage(model, plan, 2)
    return plan, model


def test_presets_build_what_they_claim():
    from tlcore.recipe.config import TrainConfig
    from tlcore.recipe.presets import apply_preset, get_preset, list_presets

    assert {p.name for p in list_presets()} == {"inception-mixed7", "vgg19-frozen", "resnet50-layers165",
                                               "two-stage", "modern", "scratch-small"}
    opts = apply_preset("inception-mixed7", {"weights": "none", "data": "x"})
    cfg = TrainConfig.from_dict(opts)
    p, model = _planned(cfg, 2)
    backbone = model.get_layer("backbone")
    assert backbone.layers[-1].name == "mixed7" and backbone.output.shape[1:] == (7, 7, 768)
    head = model.get_layer("head")
    assert [l.name for l in head.layers if "dense" in l.name] == ["head_dense_1"]
    assert head.get_layer("head_dense_1").units == 1024
    assert model.output_shape == (None, 1)
    # the recipe's quirk: stage 2 trains no backbone weight at all
    head_params = head.count_params()
    assert p.stages[2]["trainable"] == head_params == p.stages[1]["trainable"]
    # explicit options win over the preset
    assert apply_preset("vgg19-frozen", {"head_epochs": 2})["head_epochs"] == 2
    assert get_preset("resnet50-layers165").options["unfreeze_from"] == "165"


def test_resnet_preset_unfreezes_layers_165_on():
    from tlcore.recipe.config import TrainConfig
    from tlcore.recipe.presets import apply_preset

    cfg = TrainConfig.from_dict(apply_preset("resnet50-layers165", {"weights": "none", "input_size": 64}))
    p, model = _planned(cfg, 10)
    backbone = model.get_layer("backbone")
    trainable = [i for i, l in enumerate(backbone.layers) if l.trainable and l.weights]
    assert trainable and min(trainable) >= 165
    assert model.output_shape == (None, 10)
    assert p.unfreeze_index == 165


def test_demo_dataset_is_deterministic_and_learnable(tmp_path, monkeypatch):
    from tlcore.data.demo import make_demo_dataset
    from tlcore.data.pipeline import scan

    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    a = make_demo_dataset(tmp_path / "a", classes=4, per_class=40, seed=3)
    b = make_demo_dataset(tmp_path / "b", classes=4, per_class=40, seed=3)

    def digest(root):
        return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
                for p in sorted(Path(root).rglob("*.png"))}

    assert digest(a["path"]) == digest(b["path"])
    assert digest(a["path"]) != digest(make_demo_dataset(tmp_path / "c", 4, 40, seed=4)["path"])
    assert a["counts"]["train"] == {c: 28 for c in a["classes"]}
    ds = scan(a["path"])
    assert ds.problems == [] and sum(ds.counts()["test"].values()) == 4 * 6
    with pytest.raises(Exception, match="not empty"):
        make_demo_dataset(tmp_path / "a")


@pytest.mark.slow
def test_quick_start_without_pretrained_weights_learns_the_demo_shapes(tmp_path, monkeypatch):
    """The offline quick-start recipe (a small MobileNetV2 trained from scratch) beats chance
    clearly on the demo set after a short run: a behaviour check, not a timing."""
    from studio.state import QUICK_START_SCRATCH, quick_start_options
    from tlcore.data.demo import make_demo_dataset
    from tlcore.recipe.config import TrainConfig
    from tlcore.training.train import train

    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no weights file: the offline recipe
    options = quick_start_options()
    assert options == QUICK_START_SCRATCH and options["weights"] == "none"
    demo = make_demo_dataset(tmp_path / "demo", classes=4, per_class=150, seed=5)
    options.update(data=demo["path"], fine_tune_epochs=30)  # two thirds of the recommended run
    out = train(TrainConfig.from_dict(options), runs_dir=str(tmp_path / "runs"))
    assert out["state"] == "completed"
    assert out["test_accuracy"] >= 0.5, out  # chance is 0.25


def test_cli_presets_and_demo_data(tmp_path):
    env = dict(os.environ, TLCORE_HOME=str(tmp_path))
    res = subprocess.run([sys.executable, "-m", "tlcore", "presets", "--json"], capture_output=True,
                         text=True, env=env)
    rows = json.loads(res.stdout)
    assert {"name", "description", "options"} <= set(rows[0])
    res = subprocess.run([sys.executable, "-m", "tlcore", "demo-data", str(tmp_path / "d"), "--classes", "5",
                          "--per-class", "20", "--json"], capture_output=True, text=True, env=env)
    doc = json.loads(res.stdout)
    assert len(doc["classes"]) == 5 and sum(doc["counts"]["train"].values()) == 70
