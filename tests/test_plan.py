"""tlcore.recipe.plan: the one owner of what trains when, checked against what Keras really trains."""
from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tlcore.recipe.config import TrainConfig, resolve_options
from tlcore.core.errors import OptionError
from tlcore.recipe.surgery import build_model, is_batchnorm, parameter_counts
from tlcore.recipe.plan import ROLES, apply_stage, default_unfreeze_index, make_plan
from tlcore.backbones.source import BackboneSource, load_source

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mobilenet():
    return load_source(TrainConfig(backbone="MobileNetV2", input_size=32, weights="none"))


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, mobilenet):
    """A weights file of the same architecture, as a user without a network would bring."""
    path = tmp_path_factory.mktemp("w") / "mobilenet_v2_32.weights.h5"
    mobilenet.backbone.save_weights(str(path))
    return str(path)


def _check_against_keras(config: TrainConfig, source, classes: int = 3):
    """The plan's counts and roles equal those of the model training builds, stage by stage."""
    plan = make_plan(config, classes, source)
    model = build_model(config, source, classes)
    backbone = model.get_layer("backbone")
    for stage in (1, 2):
        apply_stage(model, plan, stage)
        counts = parameter_counts(model)
        want = plan.stages[stage]
        assert (counts["trainable"], counts["non_trainable"], counts["total"]) == \
            (want["trainable"], want["non_trainable"], want["total"]), (stage, config)
        trained = {id(w) for w in model.trainable_weights}
        for row in plan.layers:
            role = getattr(row, f"stage{stage}")
            assert role in ROLES
            if row.index > plan.cut_index:
                assert role == "cut"
                continue
            layer = backbone.get_layer(source.backbone.layers[row.index].name)
            trains = any(id(w) in trained for w in layer.weights)
            assert (role == "trains") == trains, (stage, row)
            if role == "inference_bn":
                assert is_batchnorm(layer) and not layer.trainable
    return plan


def test_default_plan_is_two_stages_from_the_last_third(mobilenet):
    config = TrainConfig(backbone="MobileNetV2", input_size=32)
    plan = _check_against_keras(config, mobilenet)
    n = len(mobilenet.backbone.layers)
    assert plan.unfreeze_index == default_unfreeze_index(n) == (2 * n) // 3
    assert plan.stages[1]["backbone_trainable"] == 0
    assert plan.stages[1]["trainable"] == plan.head_params
    assert plan.stages[2]["backbone_trainable"] > 0
    assert {r.stage1 for r in plan.layers} == {"frozen", "inference_bn"}
    # Before the unfreeze point nothing trains; BatchNorm after it stays in inference mode.
    for row in plan.layers:
        if row.index < plan.unfreeze_index:
            assert row.stage2 in ("frozen", "inference_bn")
        elif row.type == "BatchNormalization":
            assert row.stage2 == "inference_bn"
    assert plan.to_dict()["stages"]["1"]["epochs"] == 10 and plan.warnings == []


def test_fine_tune_epochs_zero_trains_only_the_head_and_says_why(mobilenet):
    plan = _check_against_keras(TrainConfig(backbone="MobileNetV2", fine_tune_epochs=0), mobilenet)
    assert plan.unfreeze_index is None
    assert plan.stages[2]["backbone_trainable"] == 0
    assert "no epochs" in plan.stages[2]["reason"]
    assert not any("No backbone weight" in w for w in plan.warnings)


def test_inception_mixed7_quirk_is_explained():
    source = load_source(TrainConfig(backbone="InceptionV3", input_size=150, weights="none"))
    config = TrainConfig.from_dict(resolve_options({"preset": "inception-mixed7", "weights": "none"}))
    plan = make_plan(config, 2, source)
    assert plan.output_units == 1
    assert plan.stages[2]["trainable"] == plan.head_params == 7 * 7 * 768 * 1024 + 1024 + 1024 + 1
    assert "mixed7" in plan.stages[2]["reason"] and "concatenation" in plan.stages[2]["reason"]
    assert any(w.startswith("No backbone weight trains in stage 2") for w in plan.warnings)


def test_patterns_unfreeze_then_freeze(mobilenet):
    config = TrainConfig(backbone="MobileNetV2", unfreeze_from="-1", unfreeze=["block_1*", "Conv1"],
                         freeze=["block_1_expand", "re:block_1_project/kernel"])
    plan = _check_against_keras(config, mobilenet)
    roles = {r.name: r.stage2 for r in plan.layers}
    assert roles["Conv1"] == "trains"
    assert roles["block_1_depthwise"] == "trains"
    assert roles["block_1_expand_BN"] == "trains", "an explicit --unfreeze includes BatchNorm"
    assert roles["block_1_expand"] == "frozen"
    assert roles["block_1_project"] == "frozen", "its only weight is frozen by the regex"
    assert roles["block_2_expand"] == "frozen"


def test_regex_freezes_single_weights_and_keeps_the_layer_training(mobilenet):
    config = TrainConfig(backbone="MobileNetV2", unfreeze_from="0", train_bn=True,
                         freeze=["re:_BN/gamma$"])
    plan = _check_against_keras(config, mobilenet)
    bn = next(r for r in plan.layers if r.name == "block_3_expand_BN")
    assert bn.stage2 == "trains"  # beta still trains
    model = build_model(config, mobilenet, 3)
    apply_stage(model, plan, 2)
    paths = {w.path for w in model.trainable_weights}
    assert "block_3_expand_BN/beta" in paths and "block_3_expand_BN/gamma" not in paths


@pytest.mark.parametrize("option, pattern, closest", [
    ("unfreeze", "blok_16_project", "block_16_project"),
    ("freeze", "re:^nothing_like_this$", None),
])
def test_a_pattern_that_matches_nothing_names_the_closest_layers(mobilenet, option, pattern, closest):
    config = TrainConfig(backbone="MobileNetV2", **{option: [pattern]})
    with pytest.raises(OptionError, match=f"^{option} pattern") as info:
        make_plan(config, 2, mobilenet)
    assert info.value.option == option
    if closest:
        assert "Closest layers:" in str(info.value) and closest in str(info.value)


def test_a_pattern_past_the_cut_warns(mobilenet):
    plan = make_plan(TrainConfig(backbone="MobileNetV2", cut="block_2_add", freeze=["block_16*"]), 2,
                     mobilenet)
    assert any("matches only layers after the cut" in w for w in plan.warnings)


def test_the_plan_never_changes_the_backbone_it_reads(mobilenet):
    before = [(layer.trainable, getattr(layer, "momentum", None), [w.trainable for w in layer.weights])
              for layer in mobilenet.backbone.layers]
    nodes = [len(layer._inbound_nodes) for layer in mobilenet.backbone.layers]
    make_plan(TrainConfig(backbone="MobileNetV2", unfreeze_from="0", train_bn=True), 4, mobilenet)
    after = [(layer.trainable, getattr(layer, "momentum", None), [w.trainable for w in layer.weights])
             for layer in mobilenet.backbone.layers]
    assert before == after
    assert nodes == [len(layer._inbound_nodes) for layer in mobilenet.backbone.layers]


def test_random_plans_equal_what_keras_trains(mobilenet, weights_file):
    """Property: for random cut, unfreeze point, patterns, train_bn and weights none/file, the
    plan's roles and counts are what Keras trains in the model training builds."""
    rng = random.Random(7)
    layers = mobilenet.backbone.layers
    names = [layer.name for layer in layers]
    from tlcore.backbones.layers import cut_points

    cuts = [i for i, flag in enumerate(cut_points(mobilenet.backbone)) if flag]
    file_source = load_source(TrainConfig(backbone="MobileNetV2", input_size=32, weights=weights_file))
    for trial in range(12):
        cut = rng.choice(cuts)
        unfreeze = rng.randrange(0, len(layers))
        pick = lambda: rng.choice(names[1:cut + 1])  # noqa: E731
        patterns = {"unfreeze": [], "freeze": []}
        for key in patterns:
            for _ in range(rng.randrange(0, 3)):
                kind = rng.randrange(3)
                patterns[key].append(pick() if kind == 0 else
                                     pick().rsplit("_", 1)[0] + "*" if kind == 1 else
                                     "re:" + pick() + "/")
        patterns = {k: [p for p in v if p not in ("*", "re:/")] for k, v in patterns.items()}
        config = TrainConfig(backbone="MobileNetV2", input_size=32, cut=str(cut), unfreeze_from=str(unfreeze),
                             train_bn=rng.random() < 0.5, fine_tune_epochs=rng.choice([0, 2]),
                             dense=rng.choice([[], [8]]), pooling=rng.choice(["avg", "max", "flatten"]),
                             **patterns)
        source = file_source if trial % 2 else mobilenet
        try:
            _check_against_keras(config, source, classes=rng.choice([2, 3]))
        except OptionError as exc:  # a regex that only matched weightless layers' names
            assert exc.option in ("freeze", "unfreeze"), exc


def test_saved_model_layer_stays_frozen_with_a_reason():
    import keras

    class Frozen(keras.layers.Layer):  # stands in for a TFSMLayer: same type name, a weight
        def build(self, shape):
            self.scale = self.add_weight(shape=(shape[-1],), initializer="ones", name="scale")

        def call(self, x):
            return x * self.scale

    Frozen.__name__ = "TFSMLayer"
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    outer = Frozen(name="hub")
    x = outer(x)
    backbone = keras.Model(inputs, x)
    source = BackboneSource(backbone, "none", 8)
    plan = make_plan(TrainConfig(backbone="x", unfreeze_from="2"), 2, source)
    assert plan.stages[2]["backbone_trainable"] == 0
    assert "TFSMLayer" in plan.stages[2]["reason"]
    assert any("TFSMLayer" in w for w in plan.warnings)


# --- configuration and the from-scratch default -------------------------------------------------

def test_weights_none_defaults_to_training_from_scratch():
    out = resolve_options({"backbone": "MobileNetV3Small", "weights": "none"})
    assert (out["head_epochs"], out["fine_tune_epochs"], out["unfreeze_from"], out["train_bn"],
            out["early_stopping"]) == (0, 15, "0", True, 0)
    assert out["fine_tune_lr"] == out.get("lr", 1e-3)
    # Given stage options keep the two-stage plan, and the plan warns about random frozen features.
    kept = resolve_options({"backbone": "MobileNetV2", "weights": "none", "head_epochs": 3})
    assert kept["head_epochs"] == 3 and "unfreeze_from" not in kept
    source = load_source(TrainConfig(backbone="MobileNetV2", input_size=32, weights="none"))
    plan = make_plan(TrainConfig.from_dict(dict(kept, input_size=32)), 4, source)
    assert any("random" in w for w in plan.warnings)
    scratch = make_plan(TrainConfig.from_dict(dict(out, backbone="MobileNetV2", input_size=32)), 4, source)
    assert scratch.stages[1]["epochs"] == 0
    assert all(r.stage2 == "trains" for r in scratch.layers if r.params)
    assert any(w.startswith("Training from scratch") for w in scratch.warnings)
    # A preset's stage options count as given.
    preset = resolve_options({"preset": "scratch-small"})
    assert preset["fine_tune_epochs"] == 45 and preset["cut"] == "block_6_expand_relu"


def test_check_changes_nothing_and_resolved_paths_are_absolute(tmp_path, monkeypatch):
    (tmp_path / "shapes" / "a").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    config = TrainConfig(data="shapes", backbone="mobilenetv2")
    config.check()
    assert config.backbone == "mobilenetv2" and config.data == "shapes"
    resolved = config.resolved()
    assert resolved.backbone == "MobileNetV2" and resolved.input_size == 224
    assert resolved.data == str(tmp_path / "shapes")
    with pytest.raises(Exception):
        config.backbone = "x"  # frozen


def test_checks_run_without_tensorflow(tmp_path):
    code = ("import sys\nfrom tlcore.recipe.config import TrainConfig\n"
            "try:\n    TrainConfig(data=sys.argv[1], backbone='MobileNetV2', lr=-1).check()\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         cwd=ROOT, timeout=60).stdout.splitlines()
    assert out == ["OptionError lr must be a positive number below 10. Received: -1", "False False"]


def test_chance_warning():
    from tlcore.training.train import chance_warning

    config = TrainConfig(backbone="MobileNetV2", weights="none", head_epochs=5)
    flat = [{"val_loss": math.log(4) * f} for f in (1.0, 1.01, 0.995)]
    text = chance_warning(flat, 4, config)
    assert "ln(4) = 1.386" in text and "first 3 epochs" in text and "random, frozen backbone" in text
    assert chance_warning(flat[:2], 4, config) is None
    assert chance_warning(flat + [{"val_loss": 0.5}], 4, config) is None  # only right after epoch 3
    assert chance_warning([{"val_loss": 1.0}] * 3, 4, config) is None
    assert "end of the run" in chance_warning(flat + [{"val_loss": math.log(4)}], 4, config, final=True)
    assert chance_warning([{"loss": math.log(2)}] * 3, 2, config) is not None  # no validation split
    near = [{"val_loss": 0.9, "val_accuracy": a} for a in (0.25, 0.30, 0.28)]
    assert "never rose clearly above chance (1/4): best 0.30" in chance_warning(near, 4, config, final=True)
    assert chance_warning(near + [{"val_loss": 0.5, "val_accuracy": 0.6}], 4, config, final=True) is None


# --- the command line ---------------------------------------------------------------------------

def _cli(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "tlcore", *args, "--json"], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=300)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def test_cli_plan_json(tmp_path):
    code, out, err = _cli("plan", "--backbone", "MobileNetV2", "--input-size", "32", "--classes", "5",
                          "--unfreeze-from", "block_14_add", "--freeze", "block_16*", "--train-bn")
    assert code == 0, err
    assert set(out) >= {"layers", "stages", "warnings"}
    assert set(out["layers"][0]) == {"index", "name", "type", "params", "stage1", "stage2"}
    for stage in ("1", "2"):
        assert set(out["stages"][stage]) >= {"epochs", "trainable", "non_trainable"}
    roles = {r["name"]: r["stage2"] for r in out["layers"]}
    assert roles["block_15_project_BN"] == "trains" and roles["block_16_project"] == "frozen"
    assert roles["block_14_project"] == "frozen"
    assert out["stages"]["2"]["trainable"] > out["stages"]["1"]["trainable"]


def test_cli_refuses_abbreviations_and_unknown_patterns():
    code, out, err = _cli("plan", "--backbone", "MobileNetV2", "--unfreeze-fr", "5")
    assert code == 2 and "unrecognized arguments: --unfreeze-fr" in out["error"]
    code, out, err = _cli("plan", "--backbone", "MobileNetV2", "--input-size", "32", "--unfreeze", "100")
    assert code == 1 and out["error"].startswith("--unfreeze pattern '100' matches no layer name")
    code, out, err = _cli("plan", "--backbone", "MobileNetV2", "--input-size", "32", "--unfreeze-from", "999")
    assert code == 1 and out["error"].startswith("--unfreeze-from index 999 is out of range")


@pytest.mark.slow
def test_trained_run_records_the_plans_counts(tmp_path, make_dataset):
    """One run with patterns: status.json's parameters_by_stage equal `tlcore plan`'s counts, and
    config.json keeps the patterns (so --config repeats them)."""
    data = make_dataset(layout="flat", classes=("red", "green", "blue"), n=8, size=32)
    opts = ["--backbone", "MobileNetV2", "--weights", "none", "--input-size", "32", "--cut", "block_4_add",
            "--unfreeze-from", "block_2_add", "--unfreeze", "Conv1", "--freeze", "re:block_4_project/",
            "--head-epochs", "1", "--fine-tune-epochs", "1", "--batch-size", "8", "--augment", "none"]
    code, plan, err = _cli("plan", *opts, "--classes", "3")
    assert code == 0, err
    code, result, err = _cli("train", str(data), *opts, "--runs-dir", str(tmp_path / "runs"))
    assert code == 0, err
    status = json.loads((Path(result["run_dir"]) / "status.json").read_text())
    for stage in ("1", "2"):
        assert status["parameters_by_stage"][stage] == {
            k: plan["stages"][stage][k] for k in ("trainable", "non_trainable")} | {
            "total": plan["stages"][stage]["trainable"] + plan["stages"][stage]["non_trainable"]}
    options = json.loads((Path(result["run_dir"]) / "config.json").read_text())["options"]
    assert options["unfreeze"] == ["Conv1"] and options["freeze"] == ["re:block_4_project/"]
    assert options["data"] == str(data.resolve())
    assert result["warnings"] == status["warnings"]


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("ResNet50", 32), ("EfficientNetB0", 32), ("DenseNet121", 32),
                                        ("ConvNeXtTiny", 32), ("InceptionV3", 75), ("NASNetMobile", 32),
                                        ("MobileNetV3Small", 32), ("VGG16", 32)])
def test_random_plans_equal_what_keras_trains_across_families(name, size):
    """The same property on backbones of other families: residual adds, dense concatenations,
    ConvNeXt's bare `+` and LayerNorm, Inception branches, NASNet cells, MobileNetV3's own
    preprocessing, VGG without BatchNorm."""
    from tlcore.backbones.layers import cut_points

    source = load_source(TrainConfig(backbone=name, input_size=size, weights="none"))
    layers = source.backbone.layers
    cuts = [i for i, flag in enumerate(cut_points(source.backbone)) if flag]
    rng = random.Random(name)
    for _ in range(3):
        cut = rng.choice(cuts[len(cuts) // 3:])
        kept = [layer.name for layer in layers[1:cut + 1] if layer.weights]
        config = TrainConfig(backbone=name, input_size=size, cut=str(cut),
                             unfreeze_from=str(rng.randrange(0, cut + 1)), train_bn=rng.random() < 0.5,
                             unfreeze=[rng.choice(kept)], freeze=["re:" + re.escape(rng.choice(kept)) + "/"])
        _check_against_keras(config, source, classes=rng.choice([2, 5]))
