"""Export a run's model (.keras, SavedModel, TFLite) and check the copy against the original;
or export it into a temporary folder and hand back one downloadable file (`export_file`)."""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import home
from .errors import OptionError, TLCoreError
from .jsonio import write_json
from .predict import RunModel
from .runs import RunStore

FORMATS = ("keras", "savedmodel", "tflite")
QUANTIZE = ("none", "float16", "int8")


def _check_images(rm: RunModel, limit: int = 64) -> np.ndarray:
    """Validation images of the run's own dataset (random pixels if it is gone)."""
    from .data import scan, split_arrays

    opts = rm.run.config().get("options", {})
    try:
        ds = scan(opts["data"], opts.get("val_split", 0.2), opts.get("test_split", 0.1),
                  opts.get("seed", 42), check_files=False)
        split = "validation" if ds.files.get("validation") else "train"
        ds.files[split] = ds.files[split][:limit]
        images, _, _, _ = split_arrays(ds, split, rm.input_size, rm.resize)
        if len(images):
            return images.astype(np.float32)
    except (TLCoreError, KeyError, OSError):
        pass
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (8, rm.input_size, rm.input_size, 3)).astype(np.float32)


def tflite_interpreter(path: str):
    """The LiteRT interpreter (ai-edge-litert) where installed, else TensorFlow's own."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=path)


def run_tflite(path: str, images: np.ndarray) -> np.ndarray:
    interp = tflite_interpreter(path)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    results = []
    for img in images:
        interp.resize_tensor_input(inp["index"], [1, *img.shape]) if list(inp["shape"][1:]) != list(img.shape) else None
        interp.allocate_tensors()
        interp.set_tensor(inp["index"], img[None].astype(inp["dtype"]))
        interp.invoke()
        results.append(np.array(interp.get_tensor(out["index"]))[0])
    return np.stack(results)


def _as_probs(raw: np.ndarray) -> np.ndarray:
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = np.concatenate([1.0 - raw, raw], axis=1)
    return raw


def export_run(run_dir, format: str, out, quantize: str = "none", runs_dir=None) -> dict:
    """Write the export, labels.txt and preprocessing.json beside it, reload and compare.

    Returns:
        {format, path, top1_agreement, max_probability_difference}
    """
    import keras
    import tensorflow as tf

    if format not in FORMATS:
        raise OptionError("format", f"must be one of {', '.join(FORMATS)}. Received: {format!r}")
    if quantize not in QUANTIZE:
        raise OptionError("quantize", f"must be one of {', '.join(QUANTIZE)}. Received: {quantize!r}")
    if quantize != "none" and format != "tflite":
        raise TLCoreError("--quantize applies to --format tflite only.")
    out = Path(out).expanduser()
    if format == "keras" and out.suffix != ".keras":
        raise TLCoreError(f"A Keras export must end in .keras. Received: {out}")
    if format == "savedmodel" and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TLCoreError(f"{out} exists and is not an empty folder; choose a new folder for the SavedModel.")
    if not out.parent.exists():
        raise TLCoreError(f"The folder {out.parent} does not exist; create it first.")
    rm = RunModel(run_dir, runs_dir)
    model = rm.model
    images = _check_images(rm)
    reference = rm.probabilities(images)

    if format == "keras":
        model.save(str(out))
        copy = keras.models.load_model(str(out), safe_mode=True, compile=False)
        got = _as_probs(np.asarray(copy(images, training=False)))
        side = out.parent
    elif format == "savedmodel":
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        model.export(str(tmp), format="tf_saved_model", verbose=False)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
        loaded = tf.saved_model.load(str(out))
        got = _as_probs(np.asarray(loaded.serve(tf.constant(images))))
        side = out
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if quantize in ("float16", "int8"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        data = converter.convert()
        tmp = out.with_name(f".{out.name}.partial")
        tmp.write_bytes(data)
        os.replace(tmp, out)
        got = _as_probs(run_tflite(str(out), images))
        side = out.parent
    (side / "labels.txt").write_text("\n".join(rm.labels) + "\n", encoding="utf-8")
    write_json(side / "preprocessing.json", {
        "input": "RGB, 0-255, float32", "input_size": rm.input_size, "resize": rm.resize,
        "exif_orientation": "applied", "transparency": "composited on white",
        "preprocessing": (rm.run.config().get("resolved") or {}).get("preprocessing"),
        "preprocessing_in_model": True, "labels": rm.labels,
        "output": "sigmoid probability of labels[1]" if len(rm.labels) == 2 else "softmax over labels"})
    agreement = float((got.argmax(1) == reference.argmax(1)).mean())
    return {"format": format, "path": str(out), "quantize": quantize, "top1_agreement": agreement,
            "max_probability_difference": float(np.abs(got - reference).max()),
            "images_checked": int(len(images))}


def export_file(run_dir, fmt: str, quantize: str = "none", runs_dir=None) -> tuple[str, bytes, dict]:
    """Export a run's model and return (download file name, bytes, export_run's report).

    The export is written to a temporary folder under the home and removed afterwards. A
    SavedModel folder comes back zipped (labels.txt and preprocessing.json inside it); a
    .keras or .tflite file comes back alone (the class names are inside the .keras model's
    run, and a TFLite user reads them from the run's labels.json).
    """
    run = RunStore(runs_dir).get(run_dir)
    tmp_root = home.home() / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="export-", dir=tmp_root))
    try:
        if fmt == "keras":
            out = tmp / f"{run.run_id}.keras"
        elif fmt == "tflite":
            out = tmp / f"{run.run_id}{'' if quantize == 'none' else '-' + quantize}.tflite"
        else:
            out = tmp / f"{run.run_id}-savedmodel"
        report = export_run(run.path, fmt, out, quantize, runs_dir)
        if fmt == "savedmodel":
            archive = tmp / f"{run.run_id}-savedmodel.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
                for p in sorted(out.rglob("*")):
                    if p.is_file():
                        zf.write(p, Path(out.name) / p.relative_to(out))
            return archive.name, archive.read_bytes(), report
        return out.name, out.read_bytes(), report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
