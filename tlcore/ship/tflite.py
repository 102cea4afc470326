"""TFLite conversion (float32, float16, dynamic-range, full-integer) and running a .tflite file.

Full-integer (`int8`) quantization calibrates every activation on a representative dataset (the
run's training images, 0-255 RGB as the model takes them, the input's range pinned to 0-255 so
that no pixel value is clipped); its input and output stay float32
for drop-in use, or become int8/uint8 (`io`), whose scale and zero point are read back from the
file (`io_quantization`). `run` feeds float images in either case: it quantizes them and
dequantizes the output with the file's own parameters, so every check compares probabilities.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import OptionError, TLCoreError

QUANTIZE = ("none", "float16", "dynamic", "int8")
IO_TYPES = ("float32", "int8", "uint8")


def check_options(quantize: str, io: str) -> None:
    if quantize not in QUANTIZE:
        raise OptionError("quantize", f"must be one of {', '.join(QUANTIZE)}. Received: {quantize!r}")
    if io not in IO_TYPES:
        raise OptionError("io", f"must be one of {', '.join(IO_TYPES)}. Received: {io!r}")
    if io != "float32" and quantize != "int8":
        raise OptionError("io", f"int8/uint8 input and output need full-integer quantization "
                                f"(--quantize int8). Received: io={io!r} with quantize={quantize!r}")


def convert(model, quantize: str = "none", io: str = "float32", representative: np.ndarray | None = None) -> bytes:
    """The .tflite bytes of a Keras model.

    Args:
        quantize: none, float16 (weights), dynamic (int8 weights, float activations) or int8
            (weights and activations, calibrated on `representative`).
        io: float32, int8 or uint8 input and output (integer ones with `int8` only).
        representative: float32 RGB 0-255 images [n, size, size, 3] for `int8`.

    Raises:
        TLCoreError: `int8` without representative images.
    """
    import tensorflow as tf

    check_options(quantize, io)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if representative is None or not len(representative):
            raise TLCoreError("Full-integer quantization (--quantize int8) needs representative images: "
                              "the run's training images are not there. Pass --data FOLDER with images "
                              "like the ones the model will see.")
        samples = np.array(representative, dtype=np.float32)
        # The input's range is calibrated like any activation's: pin it to the 0-255 a user feeds
        # (one pixel each way), or images without pure black or white would narrow it and clip.
        samples[0, 0, 0] = 0.0
        samples[0, -1, -1] = 255.0

        def gen():
            for img in samples:
                yield [img[None]]

        converter.representative_dataset = gen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io != "float32":
            converter.inference_input_type = tf.int8 if io == "int8" else tf.uint8
            converter.inference_output_type = tf.int8 if io == "int8" else tf.uint8
    try:
        return converter.convert()
    except Exception as exc:
        raise TLCoreError(f"TFLite conversion failed ({quantize}): {str(exc).splitlines()[0][:300]}") from None


def interpreter(path: str):
    """The LiteRT interpreter (ai-edge-litert) where installed, else TensorFlow's own."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=str(path))


def _quant(detail: dict) -> dict:
    scale, zero = detail.get("quantization", (0.0, 0))
    return {"dtype": np.dtype(detail["dtype"]).name, "scale": float(scale), "zero_point": int(zero)}


def io_quantization(path: str) -> dict:
    """{input: {dtype, scale, zero_point}, output: {...}} of a .tflite file (scale 0: float)."""
    interp = interpreter(path)
    return {"input": _quant(interp.get_input_details()[0]), "output": _quant(interp.get_output_details()[0])}


def run(path: str, images: np.ndarray) -> np.ndarray:
    """The raw float outputs of a .tflite file for float RGB 0-255 images, one image at a time."""
    interp = interpreter(path)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    in_q, out_q = _quant(inp), _quant(out)
    results = []
    resized = False
    for img in np.asarray(images, dtype=np.float32):
        if not resized and list(inp["shape"][1:]) != list(img.shape):
            interp.resize_tensor_input(inp["index"], [1, *img.shape])
        if not resized:
            interp.allocate_tensors()
            resized = True
        x = img[None]
        if in_q["scale"] and in_q["dtype"] in ("int8", "uint8"):
            info = np.iinfo(in_q["dtype"])
            x = np.clip(np.round(x / in_q["scale"] + in_q["zero_point"]), info.min, info.max)
        interp.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interp.invoke()
        y = np.array(interp.get_tensor(out["index"]))[0]
        if out_q["scale"] and out_q["dtype"] in ("int8", "uint8"):
            y = (y.astype(np.float32) - out_q["zero_point"]) * out_q["scale"]
        results.append(y.astype(np.float32))
    return np.stack(results) if results else np.zeros((0, 1), dtype=np.float32)
