"""Temperature scaling (Guo et al. 2017): one number T fitted on the validation split so that
confidence matches accuracy. It is baked into the model itself (the output layer's kernel and
bias divided by T), so predict, evaluate and every export use it with nothing else to carry."""
from __future__ import annotations

import numpy as np

from ..core.errors import TLCoreError
from ..core.jsonio import read_json, write_json


def _logits(probs: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    return np.log(p)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(T, log-loss before, log-loss after) with T from a search that includes T = 1,
    so the validation log-loss never gets worse."""
    logits = _logits(probs)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 241))
    grid = np.append(grid, 1.0)
    losses = [nll(logits, labels, t) for t in grid]
    best = int(np.argmin(losses))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 2)]
    for _ in range(40):  # golden-section refinement around the best grid point
        a, b = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        if nll(logits, labels, a) < nll(logits, labels, b):
            hi = b
        else:
            lo = a
    t = (lo + hi) / 2
    if nll(logits, labels, t) > losses[best]:
        t = float(grid[best])
    before = nll(logits, labels, 1.0)
    after = nll(logits, labels, t)
    if after >= before - 1e-9:  # no real gain (a flat loss, say): keep the model as it is
        t, after = 1.0, before
    return float(t), before, after


def calibrate_run(run_dir, runs_dir=None) -> dict:
    """Fit T on the run's validation split and bake it into model.keras; returns the figures."""
    import os

    from ..data.pipeline import scan, split_arrays
    from ..ship.predict import RunModel

    rm = RunModel(run_dir, runs_dir)
    if not rm.run.file("model.keras").exists():
        raise TLCoreError(f"Run {rm.run.run_id} has no finished model.keras to calibrate.")
    if rm.run.config().get("ensemble"):
        raise TLCoreError(f"Run {rm.run.run_id} is an ensemble: calibrate its member runs, then build the "
                          "ensemble again (`tlcore ensemble`).")
    opts = rm.run.config().get("options", {})
    from ..data.splits import of_run

    ds = scan(opts["data"], **of_run(rm.run.config()))
    images, labels, _, _ = split_arrays(ds, "validation", rm.input_size, rm.resize)
    if len(images) < 2:
        raise TLCoreError("Temperature scaling needs validation images; this dataset has too few.")
    probs = rm.probabilities(images)
    binary = len(rm.labels) == 2  # sigmoid: the output unit's logit z is what T divides
    t, before, after = _binary_temperature(probs, labels) if binary else fit_temperature(probs, labels)
    model = rm.model
    dense = model.get_layer("head").get_layer("predictions")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel / t, bias / t])
    tmp = rm.run.file(".model.calibrated.tmp.keras")
    model.save(str(tmp))
    os.replace(tmp, rm.run.file("model.keras"))
    prior = rm.run.file("calibration.json")
    old = read_json(prior, {}) or {}
    total = float(old.get("temperature", 1.0)) * t
    result = {"temperature": total, "step": t, "val_log_loss_before": before, "val_log_loss_after": after,
              "images": int(len(labels))}
    write_json(prior, result)
    return result


def _binary_temperature(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    p = np.clip(probs[:, 1], 1e-12, 1 - 1e-12)
    z = np.log(p) - np.log1p(-p)
    two = np.stack([np.zeros_like(z), z], axis=1)  # softmax([0, z]) == sigmoid(z)
    return fit_temperature(np.exp(two) / np.exp(two).sum(1, keepdims=True), labels)


def calibration_info(run) -> dict | None:
    """The run's calibration.json (temperature and log-losses), or None if never calibrated."""
    return read_json(run.file("calibration.json"))
