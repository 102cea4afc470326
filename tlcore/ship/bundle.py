"""One downloadable bundle of a run: the model in several formats, labels.txt, preprocessing.json,
evaluation.json and a MODEL_CARD.md written from the run's own records; and reading one back
(`open_bundle`, for `tlcore serve`).

Bundle layout (a .zip, no top folder): model.keras, model.tflite, model.onnx, savedmodel/,
labels.txt, preprocessing.json, evaluation.json, MODEL_CARD.md.

A bundle leaves the machine, so it carries no absolute path of it: evaluation.json names images
relative to the dataset (`portable_evaluation`), the card names the data by its dataset name and
a backbone file by its file name. Every name from users or their files (classes, run name,
dataset, layers, patterns) is escaped for Markdown and HTML in the card (`md`).
"""
from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..core import home
from ..core.errors import TLCoreError
from ..core.jsonio import read_json, write_json

NAMES = {"keras": "model.keras", "tflite": "model.tflite", "onnx": "model.onnx", "savedmodel": "savedmodel"}


def write_bundle(rm, out: Path, include: tuple[str, ...], quantize: str, io: str, data,
                 images: np.ndarray | None, reference: np.ndarray | None, warnings: list[str]) -> dict:
    """Export `include` into a temporary folder, check each copy, add the side files, zip to `out`.

    Returns:
        the export report's model part: {top1_agreement, max_probability_difference (the worst
        format's), checks: {format: {...}}, files (inside the zip), bytes (of the zip)}
    """
    from .export import (FULL_INTEGER, compare, decision_images, quantized_accuracy, representative_images, size_of,
                         write_model, write_side_files)

    tmp_root = home.home() / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bundle-", dir=tmp_root))
    try:
        checks: dict[str, dict] = {}
        tflite_io = None
        for fmt in include:
            full_integer = fmt == "tflite" and quantize in FULL_INTEGER
            representative = representative_images(rm, data) if full_integer else None
            check = decision_images(rm, images, data) if full_integer else None
            details: dict = {}
            run_fn, io_info = write_model(rm, fmt, work / NAMES[fmt], quantize if fmt == "tflite" else "none",
                                          io if fmt == "tflite" else "float32", representative, check, details)
            tflite_io = io_info or tflite_io
            checks[fmt] = {**compare(run_fn, images, reference), "bytes": size_of(work / NAMES[fmt])}
            if fmt == "tflite":
                checks[fmt].update(quantize=quantize, io=io)
            if full_integer:
                checks[fmt].update(int8=quantized_accuracy(rm, run_fn), **details)
        write_side_files(work, rm, tflite_io)
        evaluation = rm.run.evaluation()
        if evaluation:
            evaluation = portable_evaluation(evaluation, (rm.run.config().get("options") or {}).get("data"))
            write_json(work / "evaluation.json", evaluation)
        else:
            warnings.append("The run has no evaluation.json (run `tlcore evaluate` first); the bundle has none.")
        (work / "MODEL_CARD.md").write_text(model_card(rm, evaluation, checks), encoding="utf-8")
        tmp_zip = out.with_name(f".{out.name}.partial")
        names = []
        with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(work.rglob("*")):
                if p.is_file():
                    name = str(p.relative_to(work))
                    zf.write(p, name)
                    names.append(name)
        os.replace(tmp_zip, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    scored = [c for c in checks.values() if c["top1_agreement"] is not None]
    return {"top1_agreement": min((c["top1_agreement"] for c in scored), default=None),
            "max_probability_difference": max((c["max_probability_difference"] for c in scored), default=None),
            "checks": checks, "files": [str(out)], "contents": names, "bytes": out.stat().st_size}


def portable_evaluation(evaluation: dict, data_root) -> dict:
    """A copy of an evaluation with every absolute path made relative to the dataset folder
    `data_root` (or cut to its file name when it lies elsewhere): what a bundle may carry."""
    root = Path(str(data_root)).expanduser() if data_root else None

    def relative(text: str) -> str:
        path = Path(text)
        for base in ([root, root.resolve()] if root else []):
            try:
                return path.relative_to(base).as_posix()
            except ValueError:
                continue
        return path.name

    def walk(value):
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and (os.path.isabs(value) or re.match(r"^[A-Za-z]:[\\/]", value)):
            return relative(value)
        return value

    return walk(evaluation)


def dataset_name(data) -> str:
    """What the card calls a run's data: its dataset's (folder's) name, never the path."""
    return Path(str(data)).expanduser().name if data else "n/a"


# Markdown's image, link, emphasis, code, strike and table characters; `_` only where it could
# open or close emphasis (not between letters or digits, so layer names like conv3_block4_out stay).
_MD_SPECIAL = re.compile(r"[\\`*{}\[\]!|~]|(?<![^\W_])_|_(?![^\W_])")


def md(value) -> str:
    """`value` as inert Markdown text: HTML escaped (no tags, no images), Markdown's special
    characters backslash-escaped, line breaks made spaces."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), html.escape(text, quote=True))


def _epochs(n) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _fmt(x, pct: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:.1%}" if pct else f"{x:.4g}"


def model_card(rm, evaluation: dict | None, checks: dict) -> str:
    """MODEL_CARD.md: data, classes and counts, backbone and weights, the plan, the recipe,
    scores per class, calibration, intended use and limits, versions, the files.

    Every name in it is escaped (`md`), and it holds no path: the data is named by its dataset's
    name, a backbone file by its file name."""
    cfg = rm.run.config()
    o = cfg.get("options") or {}
    resolved = cfg.get("resolved") or {}
    status = rm.run.raw_status()
    counts = cfg.get("dataset_counts") or {}
    source = resolved.get("backbone_source") or {}
    metrics = rm.run.metrics()
    val = max((m["val_accuracy"] for m in metrics if m.get("val_accuracy") is not None), default=None)
    classes = ", ".join(md(c) for c in rm.labels)
    lines = [f"# Model card: {md(o.get('name') or rm.run.run_id)}", "",
             f"An image classifier of {len(rm.labels)} classes ({classes}), trained by "
             f"transfer learning with TL Studio (run {md(rm.run.run_id)}, {md(status.get('state', 'unknown'))}, "
             f"ended {md(status.get('ended_at') or 'n/a')}).", "", "## Data", "",
             f"- Dataset: {md(dataset_name(o.get('data')))} (layout: {md(resolved.get('layout', 'n/a'))}, "
             f"fingerprint {md(cfg.get('dataset_fingerprint', 'n/a'))})",
             f"- Split: seed {md(o.get('seed'))}, validation {md(o.get('val_split'))}, test {md(o.get('test_split'))} "
             "(fractions apply to the one-folder-per-class layout)", "",
             "| class | train | validation | test |", "|---|---:|---:|---:|"]
    for c in rm.labels:
        lines.append(f"| {md(c)} | " + " | ".join(str((counts.get(s) or {}).get(c, 0))
                                              for s in ("train", "validation", "test")) + " |")
    weights = source.get("weights", o.get("weights"))
    stage2_lr = o.get("fine_tune_lr") if o.get("fine_tune_lr") is not None else f"{float(o.get('lr') or 0) / 10:g} (lr / 10)"
    lines += ["", "## Model", "",
              f"- Backbone: {md(o.get('backbone') or dataset_name(o.get('backbone_file')))} "
              f"({md(source.get('kind', 'catalog'))}), "
              f"weights: {md(weights if weights in ('imagenet', 'none', None) else Path(str(weights)).name)}",
              f"- Input: RGB 0-255, {rm.input_size}x{rm.input_size} pixels, resized by {md(rm.resize)}; "
              f"preprocessing {md(resolved.get('preprocessing'))} is inside the model",
              f"- Cut at: {md(o.get('cut') or 'the last layer of the backbone')}; head: {md(o.get('pooling'))} "
              f"pooling, dense {md(list(o.get('dense') or []) or 'none')}, dropout {md(o.get('dropout'))}, "
              f"{'sigmoid' if len(rm.labels) == 2 else 'softmax'} output",
              "", "## Training plan and recipe", "",
              f"- Stage 1 (head only, backbone frozen): {md(_epochs(o.get('head_epochs')))} at learning rate {md(o.get('lr'))}",
              f"- Stage 2 (fine-tuning from {md(o.get('unfreeze_from') or 'the default point, the last third')}): "
              f"{_epochs(o.get('fine_tune_epochs'))} at learning rate "
              f"{md(stage2_lr)}; BatchNorm "
              f"{'trains' if o.get('train_bn') else 'stays frozen (inference mode)'}"
              + (f"; unfreeze {md(o.get('unfreeze'))}" if o.get("unfreeze") else "")
              + (f"; freeze {md(o.get('freeze'))}" if o.get("freeze") else ""),
              f"- Optimizer {md(o.get('optimizer'))}, batch size {md(o.get('batch_size'))}, augmentation "
              f"{md(o.get('augment'))}, class weights {md(o.get('class_weights'))}, early stopping patience "
              f"{md(o.get('early_stopping'))}, seed {md(o.get('seed'))}"]
    for stage, p in sorted((status.get("parameters_by_stage") or {}).items()):
        lines.append(f"- Stage {stage}: {p.get('trainable', 0):,} trainable of {p.get('total', 0):,} parameters")
    lines += ["", "## Results", "", f"- Best validation accuracy: {_fmt(val, True)} ({len(metrics)} epochs)"]
    if evaluation:
        lines += [f"- {evaluation.get('split', 'test').capitalize()} accuracy: {_fmt(evaluation.get('accuracy'), True)} "
                  f"on {evaluation.get('count', 'n/a')} images; loss {_fmt(evaluation.get('loss'))}",
                  f"- Calibration: expected calibration error {_fmt(evaluation.get('ece'))}"
                  + (" (temperature-scaled)" if status.get("calibrated") or cfg.get("calibration") else ""),
                  "", "| class | precision | recall | f1 | support |", "|---|---:|---:|---:|---:|"]
        for c, s in (evaluation.get("per_class") or {}).items():
            lines.append(f"| {md(c)} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |")
    else:
        lines.append("- No evaluation on held-out images was recorded.")
    lines += ["", "## Intended use and limits", "",
              f"- Sorts images into exactly these classes: {classes}. It has no 'none of these' "
              "answer: any image, however unrelated, gets one of them, often with high confidence.",
              "- Expect the scores above only on images like the training images (same kind of camera, "
              "framing, lighting, backgrounds); measure again before relying on it elsewhere.",
              f"- Scores come from {sum((counts.get('test') or {}).values()) or sum((counts.get('validation') or {}).values())} "
              "held-out images; small test sets give wide error margins.",
              "- Not for decisions about people, or where a wrong answer causes harm, without human review.",
              "", "## Files", ""]
    for fmt, c in checks.items():
        extra = f", TFLite quantization {c.get('quantize')} (input/output {c.get('io')})" if fmt == "tflite" else ""
        agreement = ("not checked (no images)" if c["top1_agreement"] is None else
                     f"top-1 agreement with the Keras model {c['top1_agreement']:.1%}, largest probability "
                     f"difference {c['max_probability_difference']:.2g}")
        lines.append(f"- `{NAMES[fmt]}` ({c['bytes']:,} bytes{extra}): {agreement}")
    lines += ["- `labels.txt`: class names in output order; `preprocessing.json`: how to feed the model",
              "- `evaluation.json`: the full evaluation (confusion matrix, mistakes, calibration bins)",
              "", "## Versions", ""]
    lines += [f"- {md(k)}: {md(v)}" for k, v in (cfg.get("versions") or {}).items()]
    return "\n".join(lines) + "\n"


def open_bundle(path) -> Path:
    """Unpack a bundle .zip into a fresh folder under the home's tmp/ and return the folder.

    Raises:
        TLCoreError: not a zip, or without model.keras and labels.txt.
    """
    path = Path(path).expanduser()
    if not zipfile.is_zipfile(path):
        raise TLCoreError(f"{path} is not a .zip bundle (make one with `tlcore export RUN --format bundle`).")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        if not {"model.keras", "labels.txt"} <= names:
            raise TLCoreError(f"{path.name} holds no model.keras and labels.txt: export the bundle with "
                              "--include keras (the default includes it).")
        tmp_root = home.home() / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="bundle-open-", dir=tmp_root))
        for name in ("model.keras", "labels.txt", "preprocessing.json"):
            if name in names:
                (folder / name).write_bytes(zf.read(name))
    return folder


def bundle_settings(folder: Path) -> tuple[list[str], int | None, str]:
    """(labels, input size or None, resize) of an unpacked bundle."""
    labels = [l for l in (folder / "labels.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    pre = read_json(folder / "preprocessing.json", {}) or {}
    return labels, pre.get("input_size"), pre.get("resize", "stretch")

