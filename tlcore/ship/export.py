"""Export a run's model (.keras, SavedModel, TFLite, ONNX, a bundle, or the run as code) and
check every model copy against the original; or export into a temporary folder and hand back
one downloadable file (`export_file`).

A check compares top-1 labels and probabilities of the copy and the Keras model on real images:
the validation (or test) split of the run's dataset, or the images of `data`. When neither is
there the export says it could not check (never random pixels). Every file written is listed.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..core import home
from ..core.errors import OptionError, TLCoreError
from ..core.jsonio import write_json
from .predict import RunModel
from ..core.runs import RunStore
from .tflite import FULL_INTEGER, IO_TYPES, QUANTIZE, check_options

FORMATS = ("keras", "savedmodel", "tflite", "onnx", "bundle", "code")
MODEL_FORMATS = ("keras", "savedmodel", "tflite", "onnx")
BUNDLE_DEFAULT = ("keras", "tflite", "onnx")
CHECK_LIMIT = 200
REPRESENTATIVE_LIMIT = 200
SUFFIXES = {"keras": ".keras", "tflite": ".tflite", "onnx": ".onnx", "bundle": ".zip", "code": ".py"}


def _spread(items: list, limit: int) -> list:
    """At most `limit` items spread over the whole list (files come grouped by class)."""
    if len(items) <= limit:
        return list(items)
    idx = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in sorted(set(idx.tolist()))]


def _run_dataset(rm: RunModel):
    from ..data.pipeline import scan

    from ..data.splits import of_run

    cfg = rm.run.config()
    return scan(cfg.get("options", {})["data"], check_files=False, **of_run(cfg))


def _folder_images(rm: RunModel, data, limit: int) -> np.ndarray:
    from ..data.images import ImageProblem
    from .predict import collect_images

    arrays = []
    for f in _spread(collect_images([data]), limit):
        try:
            arrays.append(rm.load(f))
        except ImageProblem:
            continue
    if not arrays:
        raise OptionError("data", f"{data}: no readable images there.")
    return np.stack(arrays).astype(np.float32)


def check_images(rm: RunModel, data=None, limit: int = CHECK_LIMIT) -> tuple[np.ndarray | None, dict | None, str | None]:
    """(images, checked_on, why not): real images to compare an export on.

    `data` (a folder of images, walked) wins; else the validation split of the run's dataset
    (the test split where there is no validation one). (None, None, reason) when neither exists.
    """
    from ..data.pipeline import split_arrays

    if data:
        if not Path(data).expanduser().exists():
            raise OptionError("data", f"not found: {data}")
        images = _folder_images(rm, data, limit)
        return images, {"folder": str(Path(data).expanduser()), "images": int(len(images))}, None
    opts = rm.run.config().get("options", {})
    try:
        ds = _run_dataset(rm)
    except (TLCoreError, KeyError, OSError):
        return None, None, (f"the run's dataset ({opts.get('data') or 'unknown'}) is not there; pass "
                            "--data FOLDER with images to check on")
    for split in ("validation", "test"):
        if ds.files.get(split):
            ds.files[split] = _spread(ds.files[split], limit)
            images, _, _, _ = split_arrays(ds, split, rm.input_size, rm.resize)
            if len(images):
                return images.astype(np.float32), {"split": split, "data": str(ds.root),
                                                   "images": int(len(images))}, None
    return None, None, "the run's dataset has no validation or test images; pass --data FOLDER"


def representative_images(rm: RunModel, data=None, limit: int = REPRESENTATIVE_LIMIT) -> np.ndarray | None:
    """Training images of the run (or images of `data`), at most `limit`, and augmented copies of
    them (`tflite.calibration_set`) to calibrate full-integer quantization."""
    from ..data.pipeline import split_arrays
    from .tflite import calibration_set

    if data:
        return calibration_set(_folder_images(rm, data, limit))
    try:
        ds = _run_dataset(rm)
    except (TLCoreError, KeyError, OSError):
        return None
    ds.files["train"] = _spread(ds.files.get("train", []), limit)
    images, _, _, _ = split_arrays(ds, "train", rm.input_size, rm.resize)
    return calibration_set(images) if len(images) else None


def decision_images(rm: RunModel, images: np.ndarray | None, data=None, limit: int = CHECK_LIMIT) -> np.ndarray | None:
    """The images int8-mixed decides on: the check images and, from the run's dataset, its test
    split (agreement with the float model needs no labels; more images, a steadier figure)."""
    from ..data.pipeline import split_arrays

    parts = [] if images is None else [np.asarray(images, dtype=np.float32)]
    if not data:
        try:
            ds = _run_dataset(rm)
        except (TLCoreError, KeyError, OSError):
            ds = None
        if ds is not None and ds.files.get("test"):
            ds.files["test"] = _spread(ds.files["test"], limit)
            test, _, _, _ = split_arrays(ds, "test", rm.input_size, rm.resize)
            if len(test):
                parts.append(test.astype(np.float32))
    return np.concatenate(parts) if parts else None


def quantized_accuracy(rm: RunModel, run_fn, limit: int = 1000) -> dict:
    """{split, n, test_accuracy, float_test_accuracy, agreement} of a quantized copy (`run_fn`)
    against the float model on the run's test split (validation where there is none); n 0 and
    None figures, with `why`, when the run's dataset is not there."""
    from ..data.mapped import chunks
    from ..data.pipeline import split_arrays

    empty = {"split": None, "n": 0, "test_accuracy": None, "float_test_accuracy": None, "agreement": None}
    try:
        ds = _run_dataset(rm)
    except (TLCoreError, KeyError, OSError):
        return {**empty, "why": "the run's dataset is not there"}
    from ..data.splits import SCORED_SPLITS

    for split in SCORED_SPLITS:
        if not ds.files.get(split):
            continue
        ds.files[split] = _spread(ds.files[split], limit)
        images, labels, _, _ = split_arrays(ds, split, rm.input_size, rm.resize)
        if not len(images):
            continue
        index = {name: i for i, name in enumerate(rm.labels)}
        truth = np.array([index.get(ds.classes[int(k)], -1) for k in labels])
        float_top, quant_top = [], []
        for block in chunks(images):  # a chunk at a time as float32, never the split at once
            x = block.astype(np.float32)
            float_top.append(rm.probabilities(x).argmax(1))
            quant_top.append(np.asarray(run_fn(x)).argmax(1))
        float_top, quant_top = np.concatenate(float_top), np.concatenate(quant_top)
        return {"split": split, "n": int(len(images)), "test_accuracy": float((quant_top == truth).mean()),
                "float_test_accuracy": float((float_top == truth).mean()),
                "agreement": float((quant_top == float_top).mean())}
    return {**empty, "why": "the run's dataset has no test or validation images"}


def as_probs(raw: np.ndarray) -> np.ndarray:
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = np.concatenate([1.0 - raw, raw], axis=1)
    return raw


def preprocessing_info(rm: RunModel, tflite_io: dict | None = None) -> dict:
    """What preprocessing.json says: how to feed the model, and what comes out."""
    info = {"input": "RGB, 0-255, float32", "input_size": rm.input_size, "resize": rm.resize,
            "exif_orientation": "applied", "transparency": "composited on white",
            "preprocessing": (rm.run.config().get("resolved") or {}).get("preprocessing"),
            "preprocessing_in_model": True, "labels": rm.labels,
            "output": "sigmoid probability of labels[1]" if len(rm.labels) == 2 else "softmax over labels"}
    if tflite_io and tflite_io["input"]["dtype"] != "float32":
        q = tflite_io["input"]
        info["input"] = f"RGB, 0-255, quantized to {q['dtype']}: q = round(pixel / scale) + zero_point"
        info["tflite_input_quantization"] = q
        info["tflite_output_quantization"] = tflite_io["output"]
    return info


def side_file_names(out: Path, fmt: str) -> tuple[Path, Path]:
    """Where an export's labels and preprocessing go: beside a model file, named after it
    (`m.onnx` -> `m.labels.txt`, `m.preprocessing.json`), so two exports share a folder without
    overwriting each other's; inside a SavedModel folder, `labels.txt` and `preprocessing.json`
    (as inside a bundle)."""
    if fmt == "savedmodel":
        return out / "labels.txt", out / "preprocessing.json"
    return out.with_name(f"{out.stem}.labels.txt"), out.with_name(f"{out.stem}.preprocessing.json")


def write_side_files(folder: Path, rm: RunModel, tflite_io: dict | None = None,
                     names: tuple[Path, Path] | None = None) -> list[Path]:
    """The labels (one per line, in output order) and preprocessing.json; in `folder` as
    labels.txt and preprocessing.json, or at `names` (`side_file_names`). Returns their paths."""
    labels, pre = names or (folder / "labels.txt", folder / "preprocessing.json")
    labels.write_text("\n".join(rm.labels) + "\n", encoding="utf-8")
    write_json(pre, preprocessing_info(rm, tflite_io))
    return [labels, pre]


def _replace(tmp: Path, out: Path) -> None:
    if out.is_dir():
        shutil.rmtree(out)
    os.replace(tmp, out)


def write_model(rm: RunModel, fmt: str, out: Path, quantize: str = "none", io: str = "float32",
                representative: np.ndarray | None = None, check: np.ndarray | None = None,
                details: dict | None = None):
    """Write one model format to `out`; returns (a function images -> probabilities, tflite io or None).

    `check`: the images int8-mixed decides on (`tflite.convert_report`); `details`, when given,
    receives what the conversion reports (int8-mixed: `int8_mixed`)."""
    import keras
    import tensorflow as tf

    model = rm.model
    if fmt == "keras":
        model.save(str(out))
        copy = keras.models.load_model(str(out), safe_mode=True, compile=False)
        return (lambda x: as_probs(np.asarray(copy(x, training=False)))), None
    if fmt == "savedmodel":
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        model.export(str(tmp), format="tf_saved_model", verbose=False)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
        loaded = tf.saved_model.load(str(out))
        return (lambda x: as_probs(np.asarray(loaded.serve(tf.constant(x))))), None
    if fmt == "onnx":
        import onnxruntime as ort

        model(np.zeros((1, *model.input_shape[1:]), dtype=np.float32), training=False)  # Keras wants a call first
        tmp = out.with_name(f".{out.stem}.partial.onnx")
        try:
            model.export(str(tmp), format="onnx", verbose=False)
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            raise TLCoreError(f"ONNX export failed: {str(exc).splitlines()[0][:300]}") from None
        _replace(tmp, out)
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return (lambda x: as_probs(session.run(None, {name: np.asarray(x, np.float32)})[0])), None
    if fmt == "tflite":
        from . import tflite

        data, mixed = tflite.convert_report(model, quantize, io, representative, check)
        if mixed is not None and details is not None:
            details["int8_mixed"] = mixed
        tmp = out.with_name(f".{out.name}.partial")
        tmp.write_bytes(data)
        _replace(tmp, out)
        return (lambda x: as_probs(tflite.run(str(out), x))), tflite.io_quantization(str(out))
    raise OptionError("format", f"must be one of {', '.join(MODEL_FORMATS)}. Received: {fmt!r}")


def compare(run_fn, images: np.ndarray | None, reference: np.ndarray | None) -> dict:
    """{top1_agreement, max_probability_difference} of a copy against the original (None: not checked)."""
    if images is None:
        return {"top1_agreement": None, "max_probability_difference": None}
    got = run_fn(images)
    return {"top1_agreement": float((got.argmax(1) == reference.argmax(1)).mean()),
            "max_probability_difference": float(np.abs(got - reference).max())}


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def _files(paths) -> list[str]:
    out: list[str] = []
    for p in paths:
        p = Path(p)
        out += sorted(str(f) for f in p.rglob("*") if f.is_file()) if p.is_dir() else [str(p)]
    return out


def parse_include(include) -> tuple[str, ...]:
    if include in (None, "", ()):
        return BUNDLE_DEFAULT
    items = include.split(",") if isinstance(include, str) else list(include)
    items = [s.strip() for s in items if s.strip()]
    bad = [s for s in items if s not in MODEL_FORMATS]
    if bad or not items:
        raise OptionError("include", f"must be a comma-separated list of {', '.join(MODEL_FORMATS)}. "
                                     f"Received: {include!r}")
    return tuple(dict.fromkeys(items))


def _check_out(fmt: str, out: Path) -> None:
    suffix = SUFFIXES.get(fmt)
    if fmt in ("keras", "onnx", "bundle", "code") and out.suffix != suffix:
        raise TLCoreError(f"A {fmt} export must end in {suffix}. Received: {out}")
    if fmt == "savedmodel" and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TLCoreError(f"{out} exists and is not an empty folder; choose a new folder for the SavedModel.")
    if not out.parent.exists():
        raise TLCoreError(f"The folder {out.parent} does not exist; create it first.")


def export_run(run_dir, format: str, out, quantize: str = "none", runs_dir=None, io: str = "float32",
               include=None, data=None) -> dict:
    """Write the export (and its labels and preprocessing.json, `side_file_names`), check it, list the files.

    Args:
        format: keras, savedmodel, tflite, onnx, bundle (a .zip of several formats with a model
            card) or code (a standalone training script).
        quantize, io: TFLite only (`tflite.convert`); in a bundle they apply to its .tflite.
        include: the bundle's model formats (default keras, tflite, onnx).
        data: a folder of images to check on (and to calibrate int8 on) instead of the run's dataset.

    Returns:
        {format, path, quantize, io, top1_agreement, max_probability_difference, images_checked,
         checked_on, files, bytes, warnings}; top1_agreement etc. are None when not checked.
    """
    if format not in FORMATS:
        raise OptionError("format", f"must be one of {', '.join(FORMATS)}. Received: {format!r}")
    check_options(quantize, io)
    if (quantize != "none" or io != "float32") and format not in ("tflite", "bundle"):
        raise OptionError("quantize", "{option} and {option:io} apply to {option:format} tflite (or a bundle's "
                          "TFLite) only.")
    if include not in (None, "", ()) and format != "bundle":
        raise OptionError("include", "{option} applies to {option:format} bundle only.")
    out = Path(out).expanduser()
    _check_out(format, out)
    if format == "code":
        from .codegen import write_script

        write_script(run_dir, out, runs_dir)
        return {"format": "code", "path": str(out), "quantize": "none", "io": "float32", "top1_agreement": None,
                "max_probability_difference": None, "images_checked": 0, "checked_on": None,
                "files": [str(out)], "bytes": size_of(out), "warnings": []}
    rm = RunModel(run_dir, runs_dir)
    images, checked_on, why_not = check_images(rm, data)
    warnings = [f"Not checked against the original: {why_not}."] if why_not else []
    reference = rm.probabilities(images) if images is not None else None
    if format == "bundle":
        from .bundle import write_bundle

        report = write_bundle(rm, out, parse_include(include), quantize, io, data, images, reference, warnings)
    else:
        representative = None
        details: dict = {}
        check = None
        if format == "tflite" and quantize in FULL_INTEGER:
            representative = representative_images(rm, data)
            check = decision_images(rm, images, data)
        run_fn, tflite_io = write_model(rm, format, out, quantize, io, representative, check, details)
        written = [out, *write_side_files(out.parent, rm, tflite_io, side_file_names(out, format))]
        report = {**compare(run_fn, images, reference), "files": _files(dict.fromkeys(written)),
                  "bytes": size_of(out)}
        if tflite_io:
            report["tflite_io"] = tflite_io

        if format == "tflite" and quantize in FULL_INTEGER:
            report["int8"] = quantized_accuracy(rm, run_fn)
            report.update(details)
    for text in warnings:
        print(f"warning: {text}", file=sys.stderr, flush=True)
    return {"format": format, "path": str(out), "quantize": quantize, "io": io, **report,
            "images_checked": 0 if images is None else int(len(images)), "checked_on": checked_on,
            "warnings": warnings}


def download_name(run_id: str, fmt: str, quantize: str = "none") -> str:
    if fmt == "savedmodel":
        return f"{run_id}-savedmodel"
    if fmt == "tflite" and quantize != "none":
        return f"{run_id}-{quantize}.tflite"
    if fmt == "code":
        return f"train_{run_id.replace('-', '_')}.py"
    return f"{run_id}{SUFFIXES[fmt]}"


def export_file(run_dir, fmt: str, quantize: str = "none", runs_dir=None, io: str = "float32",
                include=None) -> tuple[str, bytes, dict]:
    """Export a run's model and return (download file name, bytes, export_run's report).

    The export is written to a temporary folder under the home and removed afterwards. A
    SavedModel folder comes back zipped (labels.txt and preprocessing.json inside it); a bundle
    is a .zip already; other formats come back as the one file.
    """
    run = RunStore(runs_dir).get(run_dir)
    tmp_root = home.home() / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="export-", dir=tmp_root))
    try:
        out = tmp / download_name(run.run_id, fmt, quantize)
        report = export_run(run.path, fmt, out, quantize, runs_dir, io, include)
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
