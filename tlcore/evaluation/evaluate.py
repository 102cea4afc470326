"""Score a run on its test split (or validation): metrics with their 95% intervals, confusion
matrix, mistakes, calibration, and the baselines beside the model (`baselines`)."""
from __future__ import annotations

import numpy as np

from ..core.errors import OptionError, TLCoreError
from ..core.jsonio import write_json
from ..ship.predict import RunModel
from ..data.splits import SCORED_SPLITS as SPLITS  # what `evaluate_run` scores (None: test, else validation)
from .stats import accuracy_interval


def calibration_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error and reliability bins (equal-width confidence bins)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece, out, n = 0.0, [], max(len(confidence), 1)
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence >= lo) & (confidence <= hi)
        count = int(mask.sum())
        if count == 0:
            out.append({"confidence": float((lo + hi) / 2), "accuracy": None, "count": 0})
            continue
        conf, acc = float(confidence[mask].mean()), float(correct[mask].mean())
        ece += count / n * abs(conf - acc)
        out.append({"confidence": conf, "accuracy": acc, "count": count})
    return float(ece), out


def score(probs: np.ndarray, labels: np.ndarray, class_names: list[str], files: list[str]) -> dict:
    """Every evaluation figure from probabilities [n, k] and true labels [n]."""
    k = len(class_names)
    pred = probs.argmax(axis=1)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1.0)))) if len(labels) else None
    cm = np.zeros((k, k), dtype=int)
    for t, p in zip(labels, pred):
        cm[t, p] += 1
    per_class = {}
    for i, name in enumerate(class_names):
        tp = cm[i, i]
        precision = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        recall = tp / cm[i, :].sum() if cm[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                           "support": int(cm[i, :].sum())}
    wrong = [i for i in range(len(labels)) if pred[i] != labels[i]]
    wrong.sort(key=lambda i: -probs[i, pred[i]])
    misclassified = [{"file": files[i], "true": class_names[labels[i]], "predicted": class_names[pred[i]],
                      "probability": float(probs[i, pred[i]]),
                      "loss": float(-np.log(max(probs[i, labels[i]], eps)))} for i in wrong]
    predictions = [{"file": files[i], "true": class_names[labels[i]], "predicted": class_names[pred[i]],
                    "probability": float(probs[i, pred[i]])} for i in range(len(labels))]
    confidence = probs.max(axis=1) if len(labels) else np.zeros(0)
    ece, bins = calibration_bins(confidence, (pred == labels).astype(float))
    accuracy = float((pred == labels).mean()) if len(labels) else None
    return {"loss": loss, "accuracy": accuracy, "accuracy_interval": accuracy_interval(accuracy, len(labels)),
            "per_class": per_class, "confusion_matrix": cm.tolist(), "labels": class_names,
            "misclassified": misclassified, "predictions": predictions, "ece": ece, "calibration": bins,
            "count": int(len(labels))}


def evaluate_run(run_dir, data: str | None = None, split: str | None = None, runs_dir=None,
                 model=None, dataset=None, tta: str = "none", probabilities=None, baselines=None) -> dict:
    """Score a run on `split` (default: test, else validation) of its own dataset or `data`;
    `tta` averages the probabilities over views of each image (`predict.tta_views`) and the
    result's `tta` says which, how many views and how long the forward passes took.

    `probabilities(split, images)`, when given (a run that just trained its head on cached
    features), scores from those features instead of running the whole model again.

    The result is written to the run's evaluation.json when the run's own dataset is used.
    """
    import time

    from ..data.pipeline import scan, split_arrays
    from ..ship.predict import check_tta, tta_count

    if split not in (None, *SPLITS):
        raise OptionError("split", f"must be one of {', '.join(SPLITS)}. Received: {split!r}")
    check_tta(tta)
    rm = RunModel(run_dir, runs_dir, model=model)
    opts = rm.run.config().get("options", {})
    ds = dataset
    if ds is None:
        source = data or opts.get("data")
        if not source:
            raise OptionError("data", "The run does not record its dataset; give one with {option}.")
        from ..data.splits import of_run

        ds = scan(source, check_files=False, **of_run(rm.run.config()))
    if ds.classes != rm.labels:
        raise TLCoreError(f"The dataset's classes {ds.classes} differ from the model's {rm.labels}.")
    chosen = split or ("test" if ds.files.get("test") else "validation")
    if not ds.files.get(chosen):
        raise TLCoreError(f"The dataset has no {chosen} images to evaluate on.")
    images, labels, files, problems = split_arrays(ds, chosen, rm.input_size, rm.resize)
    t0 = time.perf_counter()
    if probabilities is not None and tta == "none":
        probs = probabilities(chosen, images)
    else:
        probs = rm.probabilities(images, tta=tta)
    seconds = time.perf_counter() - t0
    result = {"split": chosen, **score(probs, labels, rm.labels, files), "skipped": problems,
              "tta": {"mode": tta, "views": tta_count(tta), "seconds": round(seconds, 3)}}
    if chosen == "test" and baselines is not None:
        result["baselines"] = baselines(chosen, images, labels)
    elif chosen == "test" and data is None:
        result["baselines"] = rm.run.raw_status().get("baselines") or []
    if data is None:
        write_json(rm.run.file("evaluation.json"), result)
    return result


def validation_correct(run_dir, runs_dir=None, model=None) -> np.ndarray | None:
    """Whether the run's model (or `model`) is right on each image of the run's own validation
    split, in file order; None without validation images. Reads nothing of evaluation.json."""
    from ..data.pipeline import scan, split_arrays
    from ..data.splits import of_run

    rm = RunModel(run_dir, runs_dir, model=model)
    cfg = rm.run.config()
    ds = scan((cfg.get("options") or {}).get("data"), check_files=False, **of_run(cfg))
    if not ds.files.get("validation"):
        return None
    images, labels, _, _ = split_arrays(ds, "validation", rm.input_size, rm.resize)
    if not len(labels):
        return None
    return rm.probabilities(images).argmax(axis=1) == labels


def run_record(ev: dict | None, val_accuracy: float | None, val_count: int | None) -> tuple[dict, list[str]]:
    """The honest numbers a finished training records in status.json (and `tlcore train --json`
    returns): {val_accuracy_interval, val_count, test_accuracy_interval, test_count, baselines},
    and the warnings of baselines that beat the model (`baselines.beats_model`)."""
    from .baselines import beats_model, beats_warning

    fields = {"val_accuracy_interval": accuracy_interval(val_accuracy, val_count),
              "val_count": int(val_count) if val_count else None,
              "test_accuracy_interval": None, "test_count": None, "baselines": []}
    texts: list[str] = []
    if ev and ev.get("split") == "test":
        fields.update(test_accuracy_interval=ev.get("accuracy_interval"), test_count=ev.get("count"),
                      baselines=ev.get("baselines") or [])
        texts = [beats_warning(b, ev["accuracy"], ev["count"]) for b in fields["baselines"]
                 if beats_model(b, ev.get("accuracy"), ev.get("count"))]
    return fields, texts


def top_losses(evaluation: dict, n: int = 24) -> list[dict]:
    """The `n` misclassified images with the highest loss (most confidently wrong first)."""
    wrong = list(evaluation.get("misclassified") or [])
    wrong.sort(key=lambda m: -(m.get("loss") if m.get("loss") is not None else -np.log(
        max(1e-7, 1.0 - float(m.get("probability", 0.0))))))
    return wrong[:n]
