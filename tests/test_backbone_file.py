"""Your own network as the backbone: `--backbone-file PATH` on `layers`, `train` and `lr-find`.

The tests save their own small nested models: a Functional classifier wrapping a whole
MobileNetV2 (weights=None), as `.keras` and as legacy `.h5`, and a tiny SavedModel folder.
MobileNetV2's default initialisation gives features of about 1e-9 at 64 px, which would make
any comparison of features pass whatever the engine did; the fixture therefore re-draws the
convolution kernels with He scaling, so features are of order 1 and differ between images.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from datagen import write_split
from planhelp import set_trainable  # noqa: E402
from tlcore.core.errors import TLCoreError
from tlcore.backbones.layers import layer_table, resolve_layer
from tlcore.recipe.surgery import (HeadSpec, assemble, build_head, cut_backbone, is_batchnorm,
                          parameter_counts)
from tlcore.backbones.source import load_backbone_file

pytestmark = pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning")

SIZE = 64
NESTED = f"mobilenetv2_1.00_{SIZE}"  # the name keras.applications gives the nested model
OUTER = ["rescale", NESTED, "gap", "old_head"]


def _he_init(model: keras.Model, seed: int = 0) -> None:
    """Kernels drawn like trained ones (He-normal), so activations neither vanish nor blow up."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            kernel = layer.weights[0]
            kh, kw, cin, _ = kernel.shape
            fan_in = kh * kw * (1 if isinstance(layer, keras.layers.DepthwiseConv2D) else cin)
            kernel.assign(rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype("float32"))


def _nested_classifier() -> keras.Model:
    """Input -> Rescaling to [-1, 1] -> MobileNetV2 -> GlobalAveragePooling2D -> Dense(5)."""
    inputs = keras.Input((SIZE, SIZE, 3), name="img")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inputs)
    mobile = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), include_top=False,
                                            weights=None)
    assert mobile.name == NESTED
    _he_init(mobile)
    x = mobile(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="old_head")(x)
    return keras.Model(inputs, outputs, name="clf")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The nested classifier in memory and saved as nested.keras and nested.h5."""
    folder = tmp_path_factory.mktemp("backbone_files")
    model = _nested_classifier()
    model.save(folder / "nested.keras")
    model.save(folder / "nested.h5")
    return {"model": model, "keras": folder / "nested.keras", "h5": folder / "nested.h5",
            "folder": folder}


@pytest.fixture(scope="module")
def sources(saved):
    return {fmt: load_backbone_file(saved[fmt]) for fmt in ("keras", "h5")}


def _images(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))


def tl(*args, home: Path, timeout: float = 900):
    """Run `python -m tlcore ... --json`; returns (process, the one JSON document)."""
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-m", "tlcore", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"stdout must be one JSON line, got {proc.stdout!r}\n{proc.stderr[-3000:]}"
    return proc, json.loads(lines[0])


# ------------------------------------------------------------------ (a) the layer table


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_layer_table_lists_the_nested_layers_by_path_in_order(saved, sources, fmt):
    src = sources[fmt]
    model = saved["model"]
    mobile = model.get_layer(NESTED)
    inner = [layer for layer in mobile.layers if not isinstance(layer, keras.layers.InputLayer)]
    table = layer_table(src.backbone, src.paths)

    assert table[0].type == "InputLayer" and table[0].params == 0
    expected = ["rescale"] + [f"{NESTED}/{layer.name}" for layer in inner] + ["gap", "old_head"]
    assert [row.name for row in table[1:]] == expected
    assert [row.index for row in table] == list(range(len(table)))

    # Parameters per layer and in total are Keras' own counts.
    keras_layers = [model.get_layer("rescale"), *inner, model.get_layer("gap"), model.get_layer("old_head")]
    assert [row.params for row in table[1:]] == [layer.count_params() for layer in keras_layers]
    assert sum(row.params for row in table) == model.count_params()
    assert [row.type for row in table[1:]] == [type(layer).__name__ for layer in keras_layers]

    # Clean cut points inside the nested model are those of MobileNetV2 on its own.
    own = {row.name: row.cut_point for row in layer_table(mobile)}
    for row in table[2:-2]:
        assert row.cut_point == own[row.name.split("/", 1)[1]], row.name
    by_name = {row.name: row for row in table}
    assert by_name[f"{NESTED}/block_13_expand_relu"].cut_point
    assert not by_name[f"{NESTED}/block_14_expand_relu"].cut_point  # inside a residual block
    assert by_name[f"{NESTED}/out_relu"].output_shape == [None, 2, 2, 1280]
    assert by_name["old_head"].output_shape == [None, 5]

    # The saved model's own preprocessing is inside it, so none is added; its old head is
    # dropped by default: the default cut is the last 4-D clean cut point.
    assert src.preprocessing == "none" and src.input_size == SIZE
    assert table[src.default_cut].name == f"{NESTED}/out_relu"


# ---------------------------------------------------------- (b) a cut inside the nested model


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("cut", ["block_13_expand_relu", "block_6_expand_relu", "block_3_project_BN",
                                 "out_relu"])
def test_cut_inside_the_nested_model_equals_the_sub_network(saved, sources, fmt, cut):
    src = sources[fmt]
    mobile = saved["model"].get_layer(NESTED)
    backbone_cut, index = cut_backbone(src.backbone, f"{NESTED}/{cut}", src.paths)
    assert layer_table(src.backbone, src.paths)[index].name == f"{NESTED}/{cut}"
    assert backbone_cut.layers[-1].name == cut

    x = _images()
    ours = np.asarray(backbone_cut(x))
    sub = keras.Model(mobile.input, mobile.get_layer(cut).output)
    theirs = np.asarray(sub(keras.layers.Rescaling(1 / 127.5, offset=-1.0)(x)))
    assert ours.shape == theirs.shape
    assert ours.std(axis=0).mean() > 1e-2, "features must depend on the image for this to mean anything"
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)


def test_cut_by_index_and_by_bare_name_reach_the_same_layer(sources):
    src = sources["keras"]
    full = f"{NESTED}/block_13_expand_relu"
    index = resolve_layer(src.backbone, full, "--cut", src.paths)
    assert resolve_layer(src.backbone, "block_13_expand_relu", "--cut", src.paths) == index
    assert resolve_layer(src.backbone, str(index), "--cut", src.paths) == index
    assert cut_backbone(src.backbone, index, src.paths)[1] == index


def test_cut_inside_a_residual_block_of_the_nested_model_is_refused(sources):
    src = sources["keras"]
    with pytest.raises(TLCoreError, match="is not a clean cut point"):
        cut_backbone(src.backbone, f"{NESTED}/block_14_expand_relu", src.paths)
    with pytest.raises(TLCoreError, match=f"no layer named '{NESTED}/block_99_add'"):
        cut_backbone(src.backbone, f"{NESTED}/block_99_add", src.paths)


# -------------------------------------------------------------- (c) freezing and unfreezing


def _assembled(src):
    backbone_cut, _ = cut_backbone(src.backbone, src.default_cut, src.paths)
    head = build_head(backbone_cut.output.shape[1:], 3, HeadSpec("avg", (), 0.2))
    return assemble(backbone_cut, head, src.preprocessing, src.input_size)


def _paths(variables) -> set[str]:
    return {v.path for v in variables}


@pytest.mark.parametrize("train_bn", [False, True])
@pytest.mark.parametrize("unfreeze", ["block_14_expand", "block_5_project_BN", "Conv1"])
def test_unfreeze_at_a_nested_layer_trains_exactly_the_layers_from_it(sources, unfreeze, train_bn):
    src = sources["keras"]
    model = _assembled(src)
    layer_index = {layer.name: i for i, layer in enumerate(src.backbone.layers)}
    k = resolve_layer(src.backbone, f"{NESTED}/{unfreeze}", "--unfreeze-from", src.paths)
    head = model.get_layer("head")

    set_trainable(model, 1, k, train_bn, layer_index)
    assert _paths(model.trainable_weights) == _paths(head.weights)

    set_trainable(model, 2, k, train_bn, layer_index)
    expected = set(_paths(head.weights))
    for layer in model.get_layer("backbone").layers:
        i = layer_index[layer.name]
        want = i >= k and (train_bn or not is_batchnorm(layer))
        assert layer.trainable == want, (layer.name, i, k)
        if want:
            # BatchNorm's moving mean and variance never train; gamma and beta do with --train-bn.
            expected |= {v.path for v in layer.weights
                         if not (is_batchnorm(layer) and "moving" in v.path)}
    assert _paths(model.trainable_weights) == expected
    counts = parameter_counts(model)
    assert counts["trainable"] == sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert counts["total"] == model.count_params()
    if unfreeze == "Conv1" and not train_bn:
        # From the first convolution on, everything but BatchNorm trains (the old head is cut away).
        backbone = model.get_layer("backbone")
        assert counts["trainable"] == head.count_params() + sum(
            layer.count_params() for layer in backbone.layers if not is_batchnorm(layer))


# -------------------------------------------------------------------- (d) what is refused


def _lambda_model() -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    x = keras.layers.Conv2D(4, 3, name="conv")(x)
    return keras.Model(inputs, x, name="with_lambda")


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """Files that are not usable backbones."""
    folder = tmp_path_factory.mktemp("refused")
    lam = _lambda_model()
    lam.save(folder / "lambda.keras")
    lam.save(folder / "lambda.h5")
    lam.save_weights(folder / "only.weights.h5")
    (folder / "text.keras").write_text("this is not a model\n")
    (folder / "text.h5").write_text("this is not a model either\n")
    (folder / "empty.keras").write_bytes(b"")
    (folder / "notes.txt").write_text("hello\n")
    (folder / "no_savedmodel").mkdir()
    (folder / "no_savedmodel" / "readme.md").write_text("no saved_model.pb here\n")
    inputs = keras.Input((32, 32, 1))
    keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs)).save(folder / "grey.keras")
    inputs = keras.Input((32, 48, 3))
    keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs)).save(folder / "oblong.keras")
    return folder


LAMBDA_MESSAGE = ("{} holds a Lambda layer (arbitrary Python code), which Keras' safe mode refuses "
                  "to load, so the studio will not run it.")


@pytest.mark.parametrize("name", ["lambda.keras", "lambda.h5"])
def test_a_lambda_layer_is_refused_in_safe_mode(refused, name):
    with pytest.raises(TLCoreError) as info:
        load_backbone_file(refused / name)
    assert str(info.value).startswith(LAMBDA_MESSAGE.format(name))
    assert "Lambda" in str(info.value) and "safe mode" in str(info.value)


@pytest.mark.parametrize("name", ["text.keras", "text.h5", "empty.keras"])
def test_a_file_that_is_not_a_model_is_refused(refused, name):
    with pytest.raises(TLCoreError, match=rf"^{name} is not a Keras model file \(neither a .keras zip "
                                          r"nor an HDF5 file\)"):
        load_backbone_file(refused / name)


def test_a_weights_only_file_is_explained(refused):
    with pytest.raises(TLCoreError, match=r"^only.weights.h5 holds weights only, not a model. Use "
                                          r"backbone NAME with weights PATH"):
        load_backbone_file(refused / "only.weights.h5")


def test_a_file_that_exists_is_never_called_not_found(refused):
    """text.keras exists: saying "File not found" sends the user looking in the wrong place."""
    with pytest.raises(TLCoreError) as info:
        load_backbone_file(refused / "text.keras")
    assert "not found" not in str(info.value).lower(), str(info.value)


@pytest.mark.parametrize("name, message", [
    ("notes.txt", "notes.txt: a backbone file must be a .keras or .h5 model (or a SavedModel folder). "
                  "For a weights-only file use backbone NAME with weights PATH."),
    ("missing.keras", "Backbone file not found: {folder}/missing.keras. Give a .keras or .h5 model "
                      "file, or a SavedModel folder."),
    ("no_savedmodel", "{folder}/no_savedmodel is not a SavedModel folder (no saved_model.pb)."),
    ("grey.keras", "grey.keras must take one RGB image input (height, width, 3); it takes "
                   "[(None, 32, 32, 1)]."),
    ("oblong.keras", "oblong.keras must have a fixed square input size; it has 32x48."),
])
def test_unusable_backbone_files_name_the_problem(refused, name, message):
    with pytest.raises(TLCoreError) as info:
        load_backbone_file(refused / name)
    assert str(info.value) == message.format(folder=refused)


def test_unknown_preprocessing_is_refused_first(refused):
    with pytest.raises(TLCoreError, match=r"^preprocessing must be one of auto, none, tf, caffe, torch\. "
                                          r"Received: 'bgr'$"):
        load_backbone_file(refused / "missing.keras", preprocessing="bgr")


@pytest.mark.parametrize("name, start", [
    ("lambda.keras", LAMBDA_MESSAGE.format("lambda.keras")),
    ("text.h5", "text.h5 is not a Keras model file (neither a .keras zip nor an HDF5 file)"),
    ("only.weights.h5", "only.weights.h5 holds weights only, not a model."),
])
def test_cli_layers_refuses_with_one_json_error_and_no_traceback(refused, tmp_path, name, start):
    proc, out = tl("layers", "--backbone-file", refused / name, "--json", home=tmp_path)
    assert proc.returncode == 1
    assert set(out) == {"error"} and out["error"].startswith(start)
    assert "Traceback" not in proc.stderr
    assert f"error: {out['error']}" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_cli_layers_lists_the_nested_table(saved, sources, tmp_path):
    proc, out = tl("layers", "--backbone-file", saved["h5"], "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    src = sources["h5"]
    assert out == [row.to_dict() for row in layer_table(src.backbone, src.paths)]


# --------------------------------------------------------------- nested models as users save them


def _tiny(name: str) -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, name="c1")(inputs)
    return keras.Model(inputs, keras.layers.ReLU(name="r1")(x), name=name)


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_a_sequential_classifier_around_a_backbone_loads(tmp_path, fmt):
    """The tutorials' `keras.Sequential([base_model, GlobalAveragePooling2D(), Dense(n)])`."""
    model = keras.Sequential([keras.Input((32, 32, 3)), _tiny("base"),
                              keras.layers.GlobalAveragePooling2D(name="gap"),
                              keras.layers.Dense(3, name="d")], name="seq")
    path = tmp_path / f"seq.{fmt}"
    model.save(path)
    src = load_backbone_file(path)
    names = [row.name for row in layer_table(src.backbone, src.paths)]
    assert names[1:] == ["base/c1", "base/r1", "gap", "d"]
    assert names[src.default_cut] == "base/r1"


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_an_outer_layer_named_like_a_nested_one(tmp_path, fmt):
    """Names are unique per model, not across nesting levels: flattening must not crash."""
    inputs = keras.Input((32, 32, 3))
    x = _tiny("inner")(inputs)
    x = keras.layers.Conv2D(4, 1, name="c1")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="gap")(x), name="clash")
    path = tmp_path / f"clash.{fmt}"
    model.save(path)
    try:
        src = load_backbone_file(path)
    except TLCoreError as exc:  # a clear refusal naming the clash is acceptable
        assert "c1" in str(exc)
    else:
        names = [row.name for row in layer_table(src.backbone, src.paths)]
        assert "inner/c1" in names and "c1" in names


# ------------------------------------------------------------------- (e) training on a file


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_split(tmp_path_factory.mktemp("bf_data") / "data", classes=("red", "green"),
                       counts=(6, 3, 3))


@pytest.mark.slow
def test_train_on_a_nested_keras_file(saved, data, tmp_path):
    proc, out = tl("train", data, "--backbone-file", saved["keras"], "--head-epochs", "1",
                   "--fine-tune-epochs", "1", "--batch-size", "8", "--augment", "none",
                   "--early-stopping", "0", "--unfreeze-from", f"{NESTED}/block_16_expand",
                   "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out["state"] == "completed" and out["epochs"] == 2
    run = Path(out["run_dir"])
    assert run.parent == tmp_path / "runs"

    cfg = json.loads((run / "config.json").read_text())
    source = cfg["resolved"]["backbone_source"]
    assert source["kind"] == "file" and source["file"] == "nested.keras"
    assert source["sha256"] == hashlib.sha256(saved["keras"].read_bytes()).hexdigest()
    assert cfg["resolved"]["input_size"] == SIZE and cfg["resolved"]["preprocessing"] == "none"
    assert cfg["options"]["backbone_file"] == str(saved["keras"]) and cfg["options"]["backbone"] is None
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "completed" and status.get("portable", True) is True

    model = keras.models.load_model(run / "model.keras", safe_mode=True, compile=False)
    backbone = model.get_layer("backbone")
    assert len(backbone.output.shape) == 4 and tuple(backbone.output.shape[1:]) == (2, 2, 1280)
    names = [layer.name for layer in backbone.layers]
    assert names[-1] == "out_relu"
    assert "old_head" not in names and "gap" not in names  # the old head was cut away
    assert "rescale" in names  # the model's own preprocessing travels with it
    assert model.get_layer("head").output.shape[-1] == 1  # two classes: one sigmoid unit
    probs = np.asarray(model(_images(2)))
    assert probs.shape == (2, 1) and np.all((probs >= 0) & (probs <= 1))


@pytest.mark.slow
def test_lr_find_on_a_nested_h5_file(saved, data, tmp_path):
    proc, out = tl("lr-find", data, "--backbone-file", saved["h5"], "--steps", "10",
                   "--batch-size", "8", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(out) == {"suggested_lr", "lrs", "losses", "stage"}
    assert 1 <= len(out["lrs"]) <= 10 and len(out["losses"]) == len(out["lrs"])
    assert out["lrs"][0] == pytest.approx(1e-7)
    assert min(out["lrs"]) <= out["suggested_lr"] <= max(out["lrs"])
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ------------------------------------------------------------------------ (f) a SavedModel


@pytest.fixture(scope="module")
def savedmodel(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sm") / "tiny_savedmodel"
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, outputs, name="tiny").export(str(folder), format="tf_saved_model", verbose=False)
    return folder


def _check_savedmodel_run(out, savedmodel, epochs):
    assert out["state"] == "completed" and out["epochs"] == epochs
    run = Path(out["run_dir"])
    copy = run / "backbone_savedmodel"
    assert (copy / "saved_model.pb").read_bytes() == (savedmodel / "saved_model.pb").read_bytes()
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == \
        sorted(p.relative_to(savedmodel) for p in savedmodel.rglob("*"))
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "completed" and status["portable"] is False
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["resolved"]["backbone_source"]["kind"] == "savedmodel"
    assert cfg["resolved"]["input_size"] == 32
    assert (run / "model.keras").exists()
    return run


@pytest.mark.slow
def test_train_on_a_savedmodel_folder_head_only(savedmodel, data, tmp_path):
    proc, out = tl("train", data, "--backbone-file", savedmodel, "--head-epochs", "1",
                   "--fine-tune-epochs", "0", "--batch-size", "8", "--augment", "none",
                   "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_savedmodel_run(out, savedmodel, 1)


@pytest.mark.slow
def test_train_on_a_savedmodel_folder_with_fine_tuning(savedmodel, data, tmp_path):
    """DESIGN: a SavedModel is wrapped frozen; stage 2 must still run (it trains the head)."""
    proc, out = tl("train", data, "--backbone-file", savedmodel, "--head-epochs", "1",
                   "--fine-tune-epochs", "1", "--batch-size", "8", "--augment", "none",
                   "--json", home=tmp_path)
    assert proc.returncode == 0, out
    assert "Traceback" not in proc.stderr
    _check_savedmodel_run(out, savedmodel, 2)
