"""Full-integer TFLite that keeps its promise: calibration on augmented training images, the
int8 report (test accuracy and agreement with the float model) and int8-mixed, which keeps the
layers the quantization debugger flags in float."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ownlines import foreign_lines
from test_cli import tl


def _tiny_model():
    """Preprocessing, a depthwise block like MobileNetV2's first one, and a softmax head."""
    import keras

    image = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(image)
    x = keras.layers.Conv2D(8, 3, name="stem")(x)
    x = keras.layers.DepthwiseConv2D(3, name="dw")(x)
    x = keras.layers.ReLU(6.0, name="dw_relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(3, activation="softmax", name="head")(x))


def _images(n=24, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, 16, 16, 3)).astype("float32")


def test_calibration_set_keeps_every_original_and_adds_varied_copies_in_range():
    from tlcore.ship.tflite import CALIBRATION_MAX, CALIBRATION_MIN, calibration_set

    originals = _images(10)
    before = originals.copy()
    cal = np.asarray(calibration_set(originals))  # rows read on demand: all of them here
    assert len(cal) == CALIBRATION_MIN and cal.dtype == np.float32 and cal.shape[1:] == originals.shape[1:]
    assert np.array_equal(cal[:10], originals) and np.array_equal(originals, before)
    copies = cal[10:]
    assert cal.min() >= 0 and cal.max() <= 255
    assert not any(np.array_equal(c, originals[i % 10]) for i, c in enumerate(copies))  # every copy changed
    assert np.array_equal(calibration_set(originals), cal)  # the same images and seed, the same set
    many = _images(CALIBRATION_MAX + 5, seed=1)
    assert len(calibration_set(many)) == len(many)  # never fewer than the originals
    assert len(calibration_set(_images(150))) == 300  # two of each up to the maximum


def test_quantize_choices_are_one_list_that_the_parser_offers():
    from tlcore.cli.parser import build_parser
    from tlcore.ship import tflite

    assert "int8-mixed" in tflite.QUANTIZE and set(tflite.FULL_INTEGER) <= set(tflite.QUANTIZE)
    export = build_parser()._subparsers._group_actions[0].choices["export"]
    quantize = next(a for a in export._actions if a.dest == "quantize")
    assert tuple(quantize.choices) == tflite.QUANTIZE


def test_int8_mixed_refuses_integer_io_naming_the_option(tmp_path):
    from tlcore.core.errors import OptionError
    from tlcore.ship.tflite import check_options

    with pytest.raises(OptionError) as err:
        check_options("int8-mixed", "uint8")
    assert err.value.option == "io" and "int8-mixed" in str(err.value) and "'uint8'" in str(err.value)
    proc, res = tl("export", "somerun", "--format", "tflite", "--quantize", "int8-mixed", "--io", "int8",
                   "--out", tmp_path / "m.tflite", "--json", home=tmp_path / "home")
    assert proc.returncode == 1 and "--io" in res["error"] and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_int8_mixed_keeps_full_integer_when_it_agrees_enough(monkeypatch):
    from tlcore.ship import tflite

    model, images = _tiny_model(), _images()
    monkeypatch.setattr(tflite, "MIXED_AGREEMENT", 0.0)  # any agreement is enough
    data, info = tflite.convert_report(model, "int8-mixed", "float32", images, images[:8])
    assert info["mixed"] is False and info["float_layers"] == [] and info["mixed_agreement"] is None
    assert info["n"] == 8 and 0.0 <= info["full_integer_agreement"] <= 1.0
    types = {d["dtype"] for d in tflite.interpreter(data).get_tensor_details()}
    assert np.int8 in types  # integer kernels


@pytest.mark.slow
def test_int8_mixed_keeps_the_flagged_layers_float_and_names_them(monkeypatch):
    import tensorflow as tf

    from tlcore.ship import tflite

    model, images = _tiny_model(), _images()
    monkeypatch.setattr(tflite, "MIXED_AGREEMENT", 1.01)  # never enough: always ask the debugger
    monkeypatch.setattr(tflite, "FLAG_RMSE_SCALE", 0.0)  # flag every layer with any error
    full = tflite.convert(model, "int8", "float32", images)
    data, info = tflite.convert_report(model, "int8-mixed", "float32", images, images[:8])
    assert info["mixed"] is True and info["float_tensors"]
    names = {layer.name for layer in model.layers}
    assert set(info["float_layers"]) & names, info  # named as Keras names them
    assert 0.0 <= info["mixed_agreement"] <= 1.0 and 0.0 <= info["full_integer_agreement"] <= 1.0

    def float_ops(content):
        interp = tf.lite.Interpreter(model_content=content)
        ops = interp._get_ops_details()
        tensors = {t["index"]: t for t in interp.get_tensor_details()}
        return [op["op_name"] for op in ops if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE")
                and any(tensors[i]["dtype"] == np.float32 for i in op["outputs"])]

    assert not float_ops(full) and float_ops(data)  # full-integer has no float kernel; mixed has
    out = tflite.run(data, images[:4])
    assert out.shape == (4, 3) and np.allclose(out.sum(1), 1.0, atol=0.02)


@pytest.mark.slow
def test_export_int8_reports_test_accuracy_and_agreement_with_the_float_model(shared_run, tmp_path):
    from tlcore.core.jsonio import read_json
    from tlcore.ship import tflite
    from tlcore.ship.predict import RunModel

    dest = tmp_path / "m.tflite"
    proc, res = tl("export", shared_run.run_dir, "--format", "tflite", "--quantize", "int8", "--out", dest,
                   "--json", home=shared_run.home, timeout=900, as_user=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not foreign_lines(proc.stderr), proc.stderr[-3000:]  # in a user's shell: tlcore's own lines only
    report = res["int8"]
    assert set(report) == {"split", "n", "test_accuracy", "float_test_accuracy", "agreement"}
    test = sorted(p for p in (shared_run.data / "test").rglob("*.png"))
    assert report["split"] == "test" and report["n"] == len(test)
    # the same figures, recomputed here from the files: the run's model, the .tflite, the labels
    rm = RunModel(shared_run.run_dir, Path(shared_run.home) / "runs")
    images = np.stack([rm.load(p) for p in test]).astype("float32")
    truth = np.array([rm.labels.index(p.parent.name) for p in test])
    float_top = rm.probabilities(images).argmax(1)
    raw = tflite.run(dest, images)
    quant_top = (raw[:, 0] > 0.5).astype(int) if raw.shape[1] == 1 else raw.argmax(1)
    assert report["agreement"] == pytest.approx((quant_top == float_top).mean())
    assert report["test_accuracy"] == pytest.approx((quant_top == truth).mean())
    assert report["float_test_accuracy"] == pytest.approx((float_top == truth).mean())
    assert read_json(Path(shared_run.run_dir) / "config.json")  # the run itself is untouched


def test_export_sentence_gives_the_quantized_scores_and_the_layers_kept_float():
    from studio.text import export_check

    scores = {"split": "test", "n": 42, "test_accuracy": 35 / 42, "float_test_accuracy": 36 / 42, "agreement": 41 / 42}
    mixed = {"threshold": 0.97, "n": 84, "full_integer_agreement": 80 / 84, "mixed": True,
             "float_layers": ["expanded_conv_depthwise", "expanded_conv_depthwise_BN"], "float_tensors": ["t"],
             "flagged_by": "x", "mixed_agreement": 83 / 84}
    base = {"format": "tflite", "top1_agreement": 1.0, "max_probability_difference": 0.1,
            "checked_on": {"split": "validation", "images": 42}}
    tflite = export_check({**base, "int8": scores, "int8_mixed": mixed})
    assert "42 images of the test split" in tflite and f"{41 / 42:.0%}" in tflite and f"{80 / 84:.0%}" in tflite
    assert "expanded_conv_depthwise, expanded_conv_depthwise_BN" in tflite
    bundle = export_check({**base, "format": "bundle", "checks": {"tflite": {"int8": scores, "int8_mixed": mixed}}})
    assert "expanded_conv_depthwise_BN" in bundle and "42 images of the test split" in bundle
    kept = export_check({**base, "int8": scores, "int8_mixed": {**mixed, "mixed": False, "float_layers": []}})
    assert "no layer kept in float" in kept
    assert "quantized" not in export_check(base).lower()  # a float export says nothing of quantization
