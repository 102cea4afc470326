"""tlcore.recipe.surgery: head, preprocessing baked in, freezing and unfreezing, save and load."""
from __future__ import annotations

import importlib

import keras
import numpy as np
import pytest
from keras.src.utils.summary_utils import count_params as keras_count_params

from planhelp import set_trainable  # noqa: E402
from tlcore.backbones.build import build_backbone
from tlcore.backbones.catalog import get_backbone
from tlcore.core.errors import TLCoreError
from tlcore.backbones.layers import resolve_layer
from tlcore.recipe.surgery import (HeadSpec, assemble, build_head, cut_backbone, feature_extractor,
                          is_batchnorm, parameter_counts, preprocessing_layers)

FEATURES = (4, 4, 8)

# Calling a cut backbone (whose inputs are a one-element list) on a bare array is fine;
# Keras only remarks on the structure.
pytestmark = pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning")


def _ids(weights) -> set[int]:
    return {id(w) for w in weights}


def _size(weights) -> int:
    return int(sum(int(np.prod(w.shape)) for w in weights))


def _dense(head, name):
    kernel, bias = head.get_layer(name).get_weights()
    return kernel, bias


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _images(n=4, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


# ------------------------------------------------------------------------------ head


def test_two_classes_give_one_sigmoid_unit():
    head = build_head(FEATURES, 2, HeadSpec(pooling="avg", dropout=0.0))
    assert head.output_shape == (None, 1)
    assert head.get_layer("predictions").activation is keras.activations.sigmoid
    x = np.random.default_rng(0).normal(size=(5, *FEATURES)).astype("float32")
    kernel, bias = _dense(head, "predictions")
    expected = _sigmoid(x.mean(axis=(1, 2)) @ kernel + bias)
    np.testing.assert_allclose(head.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [3, 7])
def test_three_or_more_classes_give_softmax(n):
    head = build_head(FEATURES, n, HeadSpec(pooling="avg", dropout=0.0))
    assert head.output_shape == (None, n)
    assert head.get_layer("predictions").activation is keras.activations.softmax
    x = np.random.default_rng(1).normal(size=(5, *FEATURES)).astype("float32")
    out = head.predict(x, verbose=0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    kernel, bias = _dense(head, "predictions")
    np.testing.assert_allclose(out, _softmax(x.mean(axis=(1, 2)) @ kernel + bias), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling, layer_type, width, pool", [
    ("avg", "GlobalAveragePooling2D", 8, lambda x: x.mean(axis=(1, 2))),
    ("max", "GlobalMaxPooling2D", 8, lambda x: x.max(axis=(1, 2))),
    ("flatten", "Flatten", 4 * 4 * 8, lambda x: x.reshape(len(x), -1)),
])
def test_pooling(pooling, layer_type, width, pool):
    head = build_head(FEATURES, 3, HeadSpec(pooling=pooling, dropout=0.0))
    assert type(head.layers[1]).__name__ == layer_type
    kernel, bias = _dense(head, "predictions")
    assert kernel.shape == (width, 3)
    x = np.random.default_rng(2).normal(size=(3, *FEATURES)).astype("float32")
    np.testing.assert_allclose(head.predict(x, verbose=0), _softmax(pool(x) @ kernel + bias),
                               rtol=1e-5, atol=1e-6)


def test_flat_features_need_no_pooling():
    head = build_head((12,), 4, HeadSpec(pooling="avg", dropout=0.0))
    assert [type(layer).__name__ for layer in head.layers] == ["InputLayer", "Dense"]
    assert _dense(head, "predictions")[0].shape == (12, 4)


def test_dense_layers_each_followed_by_dropout():
    head = build_head(FEATURES, 2, HeadSpec(pooling="flatten", dense=(16, 8), dropout=0.25))
    kinds = [(type(layer).__name__, layer.name) for layer in head.layers]
    assert kinds == [("InputLayer", "features"), ("Flatten", "head_flatten"),
                     ("Dense", "head_dense_1"), ("Dropout", "head_dropout_1"),
                     ("Dense", "head_dense_2"), ("Dropout", "head_dropout_2"),
                     ("Dense", "predictions")]
    assert head.get_layer("head_dense_1").units == 16
    assert head.get_layer("head_dense_1").activation is keras.activations.relu
    assert head.get_layer("head_dense_2").units == 8
    assert head.get_layer("head_dropout_1").rate == pytest.approx(0.25)
    x = np.random.default_rng(3).normal(size=(4, *FEATURES)).astype("float32")
    # Dropout only acts in training: inference is deterministic and equals the plain maths.
    h = np.maximum(x.reshape(4, -1) @ _dense(head, "head_dense_1")[0] + _dense(head, "head_dense_1")[1], 0)
    h = np.maximum(h @ _dense(head, "head_dense_2")[0] + _dense(head, "head_dense_2")[1], 0)
    k, b = _dense(head, "predictions")
    np.testing.assert_allclose(head(x, training=False), _sigmoid(h @ k + b), rtol=1e-5, atol=1e-6)


def test_dropout_without_dense_and_no_dropout():
    head = build_head(FEATURES, 2, HeadSpec(dropout=0.5))
    assert [layer.name for layer in head.layers if isinstance(layer, keras.layers.Dropout)] == ["head_dropout"]
    head = build_head(FEATURES, 2, HeadSpec(dense=(4,), dropout=0.0))
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in head.layers)


@pytest.mark.parametrize("spec, option", [
    (HeadSpec(pooling="mean"), "pooling"),
    (HeadSpec(dropout=1.0), "dropout"),
    (HeadSpec(dropout=-0.1), "dropout"),
    (HeadSpec(dense=(8, 0)), "dense"),
])
def test_head_spec_errors(spec, option):
    """The engine names the argument; the command line says the flag (test_bad_inputs)."""
    from tlcore.core.errors import OptionError

    with pytest.raises(OptionError, match=f"^{option} ") as info:
        build_head(FEATURES, 2, spec)
    assert info.value.option == option
    assert info.value.phrased(f"--{option}").startswith(f"--{option} ")


def test_head_needs_two_classes():
    with pytest.raises(TLCoreError, match="at least 2 classes"):
        build_head(FEATURES, 1, HeadSpec())


def test_unknown_preprocessing():
    with pytest.raises(TLCoreError, match="caffe, tf, torch or none"):
        preprocessing_layers("inception")
    assert preprocessing_layers("none") == []


# ------------------------------------------------------------------ freeze / unfreeze


@pytest.fixture(scope="module")
def mobilenet():
    """MobileNetV2 (154 layers, BatchNorm throughout) assembled with a small 2-class head."""
    backbone = build_backbone("MobileNetV2", 32, weights=None)
    cut, _ = cut_backbone(backbone, None)
    head = build_head(cut.output_shape[1:], 2, HeadSpec(pooling="avg", dense=(8,), dropout=0.2))
    model = assemble(cut, head, get_backbone("MobileNetV2").preprocessing, 32)
    layer_index = {layer.name: i for i, layer in enumerate(backbone.layers)}
    return model, layer_index


def _expected_trainable(model, k, train_bn):
    backbone = model.get_layer("backbone")
    out = []
    for i, layer in enumerate(backbone.layers):
        if i >= k and (train_bn or not is_batchnorm(layer)):
            out += layer.trainable_weights
    return out


def test_stage1_freezes_every_backbone_weight(mobilenet):
    model, layer_index = mobilenet
    set_trainable(model, 1, None, layer_index=layer_index)
    head = model.get_layer("head")
    backbone = model.get_layer("backbone")
    assert _ids(model.trainable_weights) == _ids(head.trainable_weights)
    assert not _ids(model.trainable_weights) & _ids(backbone.weights)
    assert _size(model.trainable_weights) == head.count_params()
    assert parameter_counts(model)["trainable"] == head.count_params()
    assert not any(layer.trainable for layer in backbone.layers if layer.weights)
    # Stage 1 stays frozen even when an unfreeze point is given.
    set_trainable(model, 1, 10, layer_index=layer_index)
    assert _ids(model.trainable_weights) == _ids(head.trainable_weights)


@pytest.mark.parametrize("k", [0, 50, 100, 153])
@pytest.mark.parametrize("train_bn", [False, True])
def test_stage2_unfreezes_from_index(mobilenet, k, train_bn):
    model, layer_index = mobilenet
    set_trainable(model, 2, k, train_bn=train_bn, layer_index=layer_index)
    backbone = model.get_layer("backbone")
    n_bn_trainable = 0
    for i, layer in enumerate(backbone.layers):
        if is_batchnorm(layer):
            assert layer.trainable == (train_bn and i >= k), (i, layer.name)
            n_bn_trainable += layer.trainable
        elif layer.weights:
            assert layer.trainable == (i >= k), (i, layer.name)
    if train_bn and k < 150:
        assert n_bn_trainable > 0
    head = model.get_layer("head")
    expected = _expected_trainable(model, k, train_bn) + head.trainable_weights
    assert _ids(model.trainable_weights) == _ids(expected)
    assert parameter_counts(model)["trainable"] == _size(expected)


def test_stage2_without_unfreeze_point_trains_the_head_only(mobilenet):
    model, layer_index = mobilenet
    set_trainable(model, 2, None, layer_index=layer_index)
    assert _ids(model.trainable_weights) == _ids(model.get_layer("head").trainable_weights)


def _snapshot(layer):
    return [np.array(w) for w in layer.get_weights()]


def _changed(before, layer):
    return any(not np.array_equal(a, b) for a, b in zip(before, layer.get_weights()))


def _adam():
    return keras.optimizers.Adam(learning_rate=0.01, epsilon=1e-12)


def test_training_steps_respect_the_freeze(mobilenet):
    model, layer_index = mobilenet
    backbone = model.get_layer("backbone")
    x = _images(8, 32, seed=5)
    y = np.array([[0], [1]] * 4, dtype="float32")
    early_conv, late_conv = backbone.get_layer("Conv1"), backbone.get_layer("Conv_1")
    late_bn = backbone.get_layer("Conv_1_bn")
    k = layer_index["block_16_expand"]
    assert layer_index["Conv_1"] > k > layer_index["Conv1"]

    # Adam with a tiny epsilon moves every weight that gets any gradient at all (random
    # weights and inference-mode BatchNorm leave MobileNetV2's gradients around 1e-11).
    set_trainable(model, 1, None, layer_index=layer_index)
    model.compile(optimizer=_adam(), loss="binary_crossentropy")
    all_before = [_snapshot(layer) for layer in backbone.layers]
    head_before = _snapshot(model.get_layer("head"))
    model.train_on_batch(x, y)
    assert not any(_changed(b, layer) for b, layer in zip(all_before, backbone.layers)), \
        "stage 1 must not change any backbone weight, BatchNorm statistics included"
    assert _changed(head_before, model.get_layer("head"))

    set_trainable(model, 2, k, layer_index=layer_index)
    model.compile(optimizer=_adam(), loss="binary_crossentropy")
    early, late, bn = _snapshot(early_conv), _snapshot(late_conv), _snapshot(late_bn)
    model.train_on_batch(x, y)
    assert not _changed(early, early_conv)
    assert _changed(late, late_conv)
    assert not _changed(bn, late_bn), "frozen BatchNorm runs in inference mode: no statistics update"

    set_trainable(model, 2, k, train_bn=True, layer_index=layer_index)
    model.compile(optimizer=_adam(), loss="binary_crossentropy")
    bn = _snapshot(late_bn)
    model.train_on_batch(x, y)
    assert _changed(bn, late_bn), "with train_bn the unfrozen BatchNorm layers do train"


def test_inception_mixed7_recipe_trains_no_backbone_weight():
    backbone = build_backbone("InceptionV3", 150, weights=None)
    cut, index = cut_backbone(backbone, "mixed7")
    head = build_head(cut.output_shape[1:], 2, HeadSpec(pooling="flatten", dense=(1024,), dropout=0.2))
    model = assemble(cut, head, "tf", 150)
    layer_index = {layer.name: i for i, layer in enumerate(backbone.layers)}
    unfreeze = resolve_layer(backbone, "mixed7")
    assert unfreeze == index
    set_trainable(model, 2, unfreeze, layer_index=layer_index)
    assert not _ids(model.trainable_weights) & _ids(model.get_layer("backbone").weights)
    counts = parameter_counts(model)
    assert counts["trainable"] == head.count_params() == 7 * 7 * 768 * 1024 + 1024 + 1024 + 1
    # Unfreezing from mixed6 instead does train the mixed7 block's convolutions.
    set_trainable(model, 2, resolve_layer(backbone, "mixed6"), layer_index=layer_index)
    assert parameter_counts(model)["trainable"] > head.count_params()


def test_parameter_counts_equal_keras_counts(mobilenet):
    model, layer_index = mobilenet
    for stage, k in ((1, None), (2, 100), (2, 0)):
        set_trainable(model, stage, k, layer_index=layer_index)
        counts = parameter_counts(model)
        assert counts["trainable"] == keras_count_params(model.trainable_weights)
        assert counts["non_trainable"] == keras_count_params(model.non_trainable_weights)
        assert counts["total"] == model.count_params()


# ---------------------------------------------------------- assemble, save, load, features


CASES = {  # preprocessing mode -> (backbone, size, cut)
    "caffe": ("ResNet50", 32, "conv2_block1_out"),
    "tf": ("MobileNetV2", 32, "block_2_add"),
    "torch": ("DenseNet121", 32, "pool2_relu"),
    "none": ("EfficientNetB0", 32, "block1a_project_bn"),
}


def _keras_preprocess(name):
    private = getattr(keras.applications, name).__module__
    return importlib.import_module("keras.applications." + private.rsplit(".", 1)[1]).preprocess_input


@pytest.fixture(scope="module", params=list(CASES))
def assembled(request):
    name, size, cut_at = CASES[request.param]
    assert get_backbone(name).preprocessing == request.param
    backbone = build_backbone(name, size, weights=None)
    cut, _ = cut_backbone(backbone, cut_at)
    head = build_head(cut.output_shape[1:], 3, HeadSpec(dense=(8,), dropout=0.1))
    model = assemble(cut, head, request.param, size)
    set_trainable(model, 1, None)
    return name, size, model


def test_assembled_model_is_image_to_probabilities(assembled):
    name, size, model = assembled
    assert model.input_shape == (None, size, size, 3)
    assert model.output_shape == (None, 3)
    names = [layer.name for layer in model.layers]
    assert names[-2:] == ["backbone", "head"]
    pre = [n for n in names if n.startswith("preprocess_")]
    assert len(pre) == len(preprocessing_layers(get_backbone(name).preprocessing))
    # Preprocessing never trains, whatever the stage.
    for stage in (1, 2):
        set_trainable(model, stage, 0)
        for n in pre:
            assert not model.get_layer(n).trainable_weights
    set_trainable(model, 1, None)
    x = _images(2, size, seed=7)
    expected = model.get_layer("head")(model.get_layer("backbone")(_keras_preprocess(name)(x.copy())))
    np.testing.assert_allclose(model.predict(x, verbose=0), keras.ops.convert_to_numpy(expected),
                               rtol=1e-4, atol=1e-5)


def test_saved_model_loads_in_safe_mode_with_identical_outputs(assembled, tmp_path):
    name, size, model = assembled
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    x = _images(3, size, seed=8)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    types = {type(layer).__name__ for layer in loaded.layers}
    assert "Lambda" not in types and "TFSMLayer" not in types
    # The loaded model still splits into preprocessing + backbone for feature caching.
    np.testing.assert_array_equal(feature_extractor(loaded).predict(x, verbose=0),
                                  feature_extractor(model).predict(x, verbose=0))


def test_feature_extractor_equals_backbone_on_preprocessed_input(assembled):
    name, size, model = assembled
    features = feature_extractor(model)
    backbone = model.get_layer("backbone")
    assert features.output_shape == backbone.output_shape
    x = _images(2, size, seed=9)
    expected = keras.ops.convert_to_numpy(backbone(_keras_preprocess(name)(x.copy())))
    got = features.predict(x, verbose=0)
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)
    # It shares the model's layers: no copy of the weights.
    assert _ids(features.weights) <= _ids(model.weights)
