"""tlcore.backbones.build: building with no weights, a weights file, or ImageNet (offline here)."""
from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from keras.src.utils import file_utils

from tlcore.backbones import build as backbones
from tlcore.backbones.build import (build_backbone, check_input_size, fresh_names,
                              imagenet_weights_cached, imagenet_weights_file, keras_models_dir)
from tlcore.core.errors import TLCoreError, flag

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Keras' skipped-container notes


def _weights_by_layer(model) -> dict[str, list[np.ndarray]]:
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def _assert_same_weights(model, reference) -> None:
    ref = _weights_by_layer(reference)
    mine = _weights_by_layer(model)
    assert mine, "the model has weights"
    for name, weights in mine.items():
        assert name in ref, name
        for a, b in zip(weights, ref[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)


def _differs(model, reference) -> bool:
    ref = _weights_by_layer(reference)
    return any(not np.array_equal(a, b) for name, ws in _weights_by_layer(model).items()
               for a, b in zip(ws, ref[name]))


@pytest.fixture(scope="module")
def mobilenet_notop_file(tmp_path_factory):
    model = build_backbone("MobileNetV2", 32, weights=None)
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2_notop.weights.h5"
    model.save_weights(path)
    return model, path


def test_weights_none_builds_the_architecture():
    model = build_backbone("mobilenetv2", 48, weights="none")
    assert model.input_shape == (None, 48, 48, 3)
    assert model.layers[-1].name == "out_relu"
    top = build_backbone("MobileNetV2", None, weights=None, include_top=True)
    assert top.input_shape == (None, 224, 224, 3)
    assert top.output_shape == (None, 1000)


def test_no_top_weights_file_loads(mobilenet_notop_file):
    saved, path = mobilenet_notop_file
    fresh = build_backbone("MobileNetV2", 32, weights=None)
    assert _differs(fresh, saved), "random initialisation differs, so the test means something"
    loaded = build_backbone("MobileNetV2", 32, weights=str(path))
    _assert_same_weights(loaded, saved)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), saved.predict(x, verbose=0))


def test_weights_file_path_object_and_other_input_size(mobilenet_notop_file):
    saved, path = mobilenet_notop_file
    loaded = build_backbone("MobileNetV2", 64, weights=path)  # conv weights do not depend on size
    assert loaded.input_shape == (None, 64, 64, 3)
    _assert_same_weights(loaded, saved)


def test_with_top_file_loads_into_the_no_top_model(tmp_path):
    full = build_backbone("MobileNetV2", None, weights=None, include_top=True)
    path = tmp_path / "mobilenet_v2_top.weights.h5"
    full.save_weights(path)
    model = build_backbone("MobileNetV2", 32, weights=str(path))
    assert model.output_shape[-1] == 1280 and "predictions" not in [l.name for l in model.layers]
    _assert_same_weights(model, full)  # every conv and BatchNorm layer, by name


def test_with_top_file_by_name_copy_with_auto_named_layers(tmp_path):
    """InceptionV3's layers are auto-named (conv2d_N); the copy still lines them up."""
    full = build_backbone("InceptionV3", None, weights=None, include_top=True)
    path = tmp_path / "inception_v3_top.weights.h5"
    full.save_weights(path)
    model = build_backbone("InceptionV3", 150, weights=str(path))
    assert model.get_layer("conv2d_70")  # names as in a fresh process
    _assert_same_weights(model, full)
    conv = model.get_layer("conv2d_70").get_weights()[0]
    np.testing.assert_array_equal(conv, full.get_layer("conv2d_70").get_weights()[0])


def test_weights_of_another_architecture_do_not_fit(tmp_path):
    other = build_backbone("MobileNet", 32, weights=None)
    path = tmp_path / "mobilenet_v1.weights.h5"
    other.save_weights(path)
    with pytest.raises(TLCoreError) as err:
        build_backbone("MobileNetV2", 32, weights=str(path))
    message = str(err.value)
    assert "does not fit" in message
    assert "mobilenet_v1.weights.h5" in message and "MobileNetV2" in message


def test_vgg16_weights_do_not_fit_vgg19(tmp_path):
    path = tmp_path / "vgg16.weights.h5"
    build_backbone("VGG16", 32, weights=None).save_weights(path)
    with pytest.raises(TLCoreError, match="does not fit VGG19"):
        build_backbone("VGG19", 32, weights=str(path))


def test_a_file_that_is_not_weights_does_not_fit(tmp_path):
    path = tmp_path / "notes.weights.h5"
    path.write_text("not an HDF5 file")
    with pytest.raises(TLCoreError, match="does not fit"):
        build_backbone("VGG16", 32, weights=str(path))


def test_missing_weights_file(tmp_path):
    with pytest.raises(TLCoreError, match="Weights file not found") as err:
        build_backbone("VGG16", 32, weights=str(tmp_path / "nope.weights.h5"))
    assert "nope.weights.h5" in str(err.value)
    with pytest.raises(TLCoreError, match="not a folder"):
        build_backbone("VGG16", 32, weights=str(tmp_path))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network: Keras' downloader fails as it does without one; KERAS_HOME is empty."""
    asked: list[str] = []

    def no_network(fname=None, origin=None, *args, **kwargs):
        asked.append(fname or os.path.basename(origin or ""))
        raise Exception(f"URL fetch failure on https://storage.googleapis.com/{fname}: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", no_network)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return asked


def _offline_case(name, size, bug=False):
    return pytest.param(name, size, id=f"{name}-{size}")


@pytest.mark.parametrize("name, size", [
    _offline_case("VGG16", 32),
    _offline_case("InceptionV3", 150),
    _offline_case("EfficientNetB0", 64),
    _offline_case("MobileNetV2", 224),
    _offline_case("MobileNetV2", 96, bug=True),
    _offline_case("MobileNet", 128, bug=True),
])
def test_imagenet_offline_names_the_file_keras_wants(offline, name, size):
    with pytest.raises(TLCoreError) as err:
        build_backbone(name, size, weights="imagenet")
    message = str(err.value)
    assert offline, "Keras asked for a file"
    wanted = offline[0]
    assert wanted.endswith(".h5")
    assert repr(wanted) in message, f"Keras wanted {wanted!r}; the message says: {message}"
    assert str(keras_models_dir()) in message
    assert err.value.option == "weights"  # the command line says --weights, the app its label
    assert "--weights PATH" in err.value.phrased(flag)


def test_imagenet_weights_file_and_cache(offline, tmp_path):
    assert imagenet_weights_file("VGG16") == "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert imagenet_weights_file("vgg16", include_top=True) == "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    assert keras_models_dir() == tmp_path / "keras_home" / "models"
    assert not imagenet_weights_cached("VGG16")
    keras_models_dir().mkdir(parents=True)
    (keras_models_dir() / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"x")
    assert imagenet_weights_cached("VGG16")
    assert file_utils.get_file.__name__ == "no_network", "the recorder put Keras' get_file back"


def test_other_imagenet_failures_are_reported(monkeypatch):
    def broken(*args, **kwargs):
        raise Exception("HDF5 file is corrupt\nmore detail")

    monkeypatch.setattr(file_utils, "get_file", broken)
    with pytest.raises(TLCoreError, match="Could not build VGG16 with ImageNet weights: HDF5 file is corrupt$"):
        build_backbone("VGG16", 32, weights="imagenet")


def test_layer_names_repeat_when_built_twice():
    first = [layer.name for layer in build_backbone("InceptionV3", 75, weights=None).layers]
    keras.layers.Conv2D(1, 1)  # something else auto-named in between
    second = [layer.name for layer in build_backbone("InceptionV3", 75, weights=None).layers]
    assert first == second
    assert "conv2d" in first and "conv2d_93" in first and "conv2d_94" not in first


def test_fresh_names_restores_the_process_counter():
    keras.layers.Dense(1)
    before = keras.layers.Dense(1).name
    with fresh_names():
        assert keras.layers.Dense(1).name == "dense"
    after = keras.layers.Dense(1).name
    assert before.startswith("dense") and after.startswith("dense")
    assert int(after.rsplit("_", 1)[1]) == int(before.rsplit("_", 1)[1]) + 1


def test_check_input_size():
    assert check_input_size("InceptionV3", None) == 299
    assert check_input_size("InceptionV3", "150") == 150
    with pytest.raises(TLCoreError, match="at least 75 pixels") as err:
        check_input_size("InceptionV3", 74)
    assert "input_size=74" in str(err.value) and "299" in str(err.value)
    with pytest.raises(TLCoreError, match="whole number"):
        check_input_size("VGG16", "big")
    with pytest.raises(TLCoreError, match="too large"):
        check_input_size("VGG16", 4096)
    with pytest.raises(TLCoreError, match="Unknown backbone"):
        build_backbone("ResNet51", 32, weights=None)
    with pytest.raises(TLCoreError, match="at least 32"):
        build_backbone("VGG16", 16, weights=None)

