"""TFLite conversion (float32, float16, dynamic-range, full-integer, mixed) and running a .tflite file.

Full-integer (`int8`) quantization calibrates every activation on a representative dataset: the
run's training images (0-255 RGB as the model takes them) and augmented copies of them
(`calibration_set`: flips and crops), the input's range pinned to 0-255 so
that no pixel value is clipped; weights are quantized per channel wherever the converter allows
(convolutions, depthwise convolutions and dense layers). Its input and output stay float32 for
drop-in use, or become int8/uint8 (`io`), whose scale and zero point are read back from the file
(`io_quantization`). `run` feeds float images in either case: it quantizes them and dequantizes
the output with the file's own parameters, so every check compares probabilities.

`int8-mixed` starts from the full-integer model; when its top-1 agreement with the float model
on the check images is under `MIXED_AGREEMENT`, the layers TensorFlow's quantization debugger
flags (root-mean-square error over the quantization step above `FLAG_RMSE_SCALE`, the TensorFlow
guide's rule) stay float, and the report says which (`convert_report`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.errors import OptionError, TLCoreError

if TYPE_CHECKING:
    import numpy as np

# numpy is imported inside the functions: the command line's parser imports the choices below.

QUANTIZE = ("none", "float16", "dynamic", "int8", "int8-mixed")
FULL_INTEGER = ("int8", "int8-mixed")
IO_TYPES = ("float32", "int8", "uint8")
MIXED_AGREEMENT = 0.97
FLAG_RMSE_SCALE = 0.7
CALIBRATION_MIN = 256
CALIBRATION_MAX = 400
DEBUG_SAMPLES = 64


def check_options(quantize: str, io: str) -> None:
    if quantize not in QUANTIZE:
        raise OptionError("quantize", f"must be one of {', '.join(QUANTIZE)}. Received: {quantize!r}")
    if io not in IO_TYPES:
        raise OptionError("io", f"must be one of {', '.join(IO_TYPES)}. Received: {io!r}")
    if io != "float32" and quantize != "int8":
        raise OptionError("io", f"{{option}} int8/uint8 (integer input and output) needs full-integer quantization "
                                f"({{option:quantize}} int8; int8-mixed keeps float32 input and output). "
                                f"Received: io={io!r} with quantize={quantize!r}")


def calibration_set(images, seed: int = 0):
    """Calibration images: every one of `images` and augmented copies of them, float32 RGB 0-255.

    Copies are flipped left-right (half of them) and cropped to 70-100% of each side and stretched
    back: the framing a model meets after training, not only its training images. Colours are left
    as they are: brightness and contrast jitter widened the calibrated ranges and cost agreement
    with the float model on real photos (docs/PERFORMANCE.md). The set holds at least
    `CALIBRATION_MIN` images (at most `CALIBRATION_MAX`, never fewer than the originals); the same
    images and seed give the same set. `images` is an array or `mapped.Rows` (a split's cache
    file); the set is `mapped.Rows` too, each image read (and its copy made) when it is used.
    """
    from .calibration import CalibrationRows

    return CalibrationRows(images, seed, CALIBRATION_MIN, CALIBRATION_MAX)


def _float_batches(images, batch_size: int = 32):
    """`images` (an array or `mapped.Rows`) as float32 batches, read one batch at a time."""
    import numpy as np

    from ..data.mapped import read_rows

    for start in range(0, len(images), batch_size):
        yield read_rows(images, np.arange(start, min(start + batch_size, len(images)))).astype(np.float32)


def _converter(model, quantize: str, io: str, representative: np.ndarray | None):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize in FULL_INTEGER:
        if representative is None or not len(representative):
            raise OptionError("quantize", f"Full-integer quantization ({{option}} {quantize}) needs representative "
                              "images: the run's training images are not there. Pass {option:data} FOLDER with "
                              "images like the ones the model will see.")
        def gen():  # read a batch at a time, never the whole set
            first = True
            for batch in _float_batches(representative):
                if first:  # The input's range is calibrated like any activation's: pin it to the
                    # 0-255 a user feeds (one pixel each way), or images without pure black or
                    # white would narrow it and clip.
                    batch[0, 0, 0], batch[0, -1, -1], first = 0.0, 255.0, False
                for img in batch:
                    yield [img[None]]

        converter.representative_dataset = gen
        # Per-channel weights wherever the converter allows (convolutions are per channel by
        # default; dense layers only when asked).
        converter._experimental_disable_per_channel = False
        if hasattr(converter, "_experimental_disable_per_channel_quantization_for_dense_layers"):
            converter._experimental_disable_per_channel_quantization_for_dense_layers = False
        if quantize == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io != "float32":
            converter.inference_input_type = tf.int8 if io == "int8" else tf.uint8
            converter.inference_output_type = tf.int8 if io == "int8" else tf.uint8
    return converter


def _failed(quantize: str, exc: Exception) -> TLCoreError:
    return TLCoreError(f"TFLite conversion failed ({quantize}): {str(exc).splitlines()[0][:300]}")


def convert(model, quantize: str = "none", io: str = "float32", representative: np.ndarray | None = None,
            check: np.ndarray | None = None) -> bytes:
    """The .tflite bytes of a Keras model (`convert_report` without the report)."""
    return convert_report(model, quantize, io, representative, check)[0]


def convert_report(model, quantize: str = "none", io: str = "float32", representative: np.ndarray | None = None,
                   check: np.ndarray | None = None) -> tuple[bytes, dict | None]:
    """The .tflite bytes of a Keras model and, for `int8-mixed`, what stayed float.

    Args:
        quantize: none, float16 (weights), dynamic (int8 weights, float activations), int8
            (weights and activations, calibrated on `representative`) or int8-mixed (int8, with
            the layers the quantization debugger flags kept float when int8's top-1 agreement
            with `model` on `check` is under `MIXED_AGREEMENT`).
        io: float32, int8 or uint8 input and output (integer ones with `int8` only).
        representative: float32 RGB 0-255 images [n, size, size, 3] for `int8` and `int8-mixed`
            (used as they are: `calibration_set` makes augmented copies).
        check: images int8-mixed decides on (default: `representative`).

    Returns:
        (bytes, None) or, for int8-mixed, (bytes, {threshold, full_integer_agreement, n, mixed,
        float_layers, float_tensors, flagged_by, mixed_agreement}); `mixed` False means the
        full-integer model met the threshold and is the one returned.

    Raises:
        TLCoreError: full-integer without representative images; a failed conversion.
    """
    check_options(quantize, io)
    converter = _converter(model, quantize, io, representative)
    if quantize == "int8-mixed":  # the full-integer model first, integer kernels only
        converter = _converter(model, "int8", io, representative)
    try:
        full = converter.convert()
    except Exception as exc:
        raise _failed(quantize, exc) from None
    if quantize != "int8-mixed":
        return full, None
    images = representative if check is None or not len(check) else check
    reference = _top1(_keras_outputs(model, images))
    agreement = float((_top1(run(full, images)) == reference).mean())
    info = {"threshold": MIXED_AGREEMENT, "n": int(len(images)), "full_integer_agreement": agreement,
            "flagged_by": f"quantization debugger: rmse/scale > {FLAG_RMSE_SCALE}", "mixed": False,
            "float_layers": [], "float_tensors": [], "mixed_agreement": None}
    if agreement >= MIXED_AGREEMENT:
        return full, info
    flagged = _flagged_tensors(model, representative)
    mixed = None
    while flagged and mixed is None:
        try:
            mixed = _selective(model, representative, flagged)
        except Exception as exc:  # the converter cannot keep them all float: the worse half
            if len(flagged) == 1:
                raise _failed(quantize, exc) from None
            flagged = flagged[:len(flagged) // 2]
    if mixed is None:
        return full, info
    info.update(mixed=True, float_tensors=flagged, float_layers=_layer_names(model, flagged),
                mixed_agreement=float((_top1(run(mixed, images)) == reference).mean()))
    return mixed, info


def _keras_outputs(model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    import numpy as np
    outs = [np.asarray(model(x, training=False)) for x in _float_batches(images, batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0, 1), np.float32)


def _top1(raw: np.ndarray) -> np.ndarray:
    import numpy as np
    raw = np.asarray(raw)
    return (raw[:, 0] > 0.5).astype(int) if raw.ndim == 2 and raw.shape[1] == 1 else raw.argmax(1)


def _debugger(model, representative: np.ndarray, denylisted=None):
    import numpy as np
    import tensorflow as tf

    from ..data.mapped import read_rows

    n = len(representative)
    debug = read_rows(representative, np.linspace(0, n - 1, min(DEBUG_SAMPLES, n)).round().astype(int)
                      ).astype(np.float32)

    def gen():
        for img in debug:
            yield [img[None]]

    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=denylisted) if denylisted else None
    return tf.lite.experimental.QuantizationDebugger(
        converter=_converter(model, "int8-mixed", "float32", representative), debug_dataset=gen,
        debug_options=options)


def _flagged_tensors(model, representative: np.ndarray) -> list[str]:
    """Tensors whose quantization error (rmse over the step) exceeds FLAG_RMSE_SCALE, worst first."""
    import csv
    import io as _io

    debugger = _debugger(model, representative)
    debugger.run()
    buffer = _io.StringIO()
    debugger.layer_statistics_dump(buffer)
    buffer.seek(0)
    scored = []
    for row in csv.DictReader(buffer):
        scale = float(row.get("scale") or 0)
        if scale > 0:
            score = float(row["mean_squared_error"]) ** 0.5 / scale
            if score > FLAG_RMSE_SCALE:
                scored.append((score, row["tensor_name"]))
    return [name for _, name in sorted(scored, reverse=True)]


def _selective(model, representative: np.ndarray, denylisted: list[str]) -> bytes:
    return _debugger(model, representative, denylisted).get_nondebug_quantized_model()


def _layer_names(model, tensors: list[str]) -> list[str]:
    """The Keras layers (nested models' included) that tensors' names point at, in order."""
    names: set[str] = set()
    stack = [model]
    while stack:
        layer = stack.pop()
        names.add(layer.name)
        stack.extend(getattr(layer, "layers", []) or [])
    found: list[str] = []
    for tensor in tensors:
        hits = []
        for op in tensor.split(";"):  # a fused op names each layer it holds
            for part in reversed(op.split("/")[1:]):
                base = part.rsplit("_", 1)[0] if part.rsplit("_", 1)[-1].isdigit() else part
                if part in names or base in names:
                    hits.append(part if part in names else base)
                    break
        for hit in sorted(set(hits), key=hits.index) or [tensor]:
            if hit not in found:
                found.append(hit)
    return found


def interpreter(path):
    """The LiteRT interpreter (ai-edge-litert) where installed, else TensorFlow's own, of a
    .tflite file's path or its bytes."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    if isinstance(path, (bytes, bytearray)):
        return Interpreter(model_content=bytes(path))
    return Interpreter(model_path=str(path))


def _quant(detail: dict) -> dict:
    import numpy as np
    scale, zero = detail.get("quantization", (0.0, 0))
    return {"dtype": np.dtype(detail["dtype"]).name, "scale": float(scale), "zero_point": int(zero)}


def io_quantization(path: str) -> dict:
    """{input: {dtype, scale, zero_point}, output: {...}} of a .tflite file (scale 0: float)."""
    interp = interpreter(path)
    return {"input": _quant(interp.get_input_details()[0]), "output": _quant(interp.get_output_details()[0])}


def run(path, images: np.ndarray) -> np.ndarray:
    """The raw float outputs of a .tflite file (path or bytes) for float RGB 0-255 images, one
    image at a time."""
    import numpy as np
    interp = interpreter(path)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    in_q, out_q = _quant(inp), _quant(out)
    results = []
    resized = False
    for img in (img for batch in _float_batches(images) for img in batch):
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
