"""Honest numbers: the 95% Wilson interval of an accuracy and the exact McNemar test of two
classifiers on the same images. Plain Python (no NumPy, no SciPy), so every caller can afford it.

Every accuracy the command line and the app show carries `wilson(correct, n)`; a comparison of
two runs on the same test images uses `mcnemar(a_correct, b_correct)`.
"""
from __future__ import annotations

import math
from typing import Sequence

from ..core.errors import OptionError

Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal: a two-sided 95% interval


def wilson(correct: int, n: int, z: float = Z95) -> list[float] | None:
    """The Wilson score interval [lo, hi] (fractions) of `correct` successes in `n` trials;
    None when n is 0. Unlike the normal approximation it stays inside [0, 1] and is not empty
    at 0 or n successes (Wilson 1927; Brown, Cai and DasGupta 2001 recommend it).

    Raises:
        OptionError: n negative, or correct outside [0, n].
    """
    if int(n) != n or n < 0:
        raise OptionError("n", f"must be a whole number of 0 or more. Received: {n!r}")
    if int(correct) != correct or not 0 <= correct <= n:
        raise OptionError("correct", f"must be a whole number from 0 to n={n}. Received: {correct!r}")
    if n == 0:
        return None
    p = correct / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    if correct == 0:
        lo = 0.0
    if correct == n:
        hi = 1.0
    return [lo, hi]


def accuracy_interval(accuracy: float | None, n: int | None) -> list[float] | None:
    """The Wilson interval of an accuracy measured on `n` images (the count of correct images
    is recovered as round(accuracy * n)); None when either is missing or n is 0."""
    if accuracy is None or not n:
        return None
    return wilson(int(round(float(accuracy) * n)), int(n))


def binomial_two_sided(k: int, n: int) -> float:
    """The exact two-sided p-value of k successes in n fair coin flips (p = 0.5): twice the
    smaller tail, at most 1; 1.0 when n is 0."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> dict:
    """The exact McNemar test of two classifiers scored on the same images, in the same order.

    Only the images where exactly one of them is right count: `a_only` (A right, B wrong) and
    `b_only`. Under the hypothesis that both are equally accurate each such image is a fair coin,
    so the p-value is the exact two-sided binomial test of a_only in a_only + b_only.

    Returns:
        {n, a_only, b_only, both, neither, a_accuracy, b_accuracy, p_value}

    Raises:
        OptionError: the two lists differ in length.
    """
    if len(a_correct) != len(b_correct):
        raise OptionError("b_correct", f"must score the same {len(a_correct)} images as a_correct. "
                          f"Received: {len(b_correct)}")
    a_only = sum(1 for a, b in zip(a_correct, b_correct) if a and not b)
    b_only = sum(1 for a, b in zip(a_correct, b_correct) if b and not a)
    both = sum(1 for a, b in zip(a_correct, b_correct) if a and b)
    n = len(a_correct)
    return {"n": n, "a_only": a_only, "b_only": b_only, "both": both, "neither": n - a_only - b_only - both,
            "a_accuracy": (a_only + both) / n if n else None, "b_accuracy": (b_only + both) / n if n else None,
            "p_value": binomial_two_sided(a_only, a_only + b_only)}


def compare_predictions(a: Sequence[dict], b: Sequence[dict], alpha: float = 0.05) -> dict:
    """Two evaluations' per-image `predictions` ([{file, true, predicted, ...}]) compared.

    Returns {same_images: False, only_a, only_b} when the two were scored on different images
    (files or true labels differ), else McNemar's result with `same_images: True` and
    `significant` (p_value < alpha).
    """
    ka = {(p["file"], p["true"]): p for p in a}
    kb = {(p["file"], p["true"]): p for p in b}
    if set(ka) != set(kb) or not ka:
        return {"same_images": False, "only_a": len(set(ka) - set(kb)), "only_b": len(set(kb) - set(ka))}
    keys = sorted(ka)
    result = mcnemar([ka[k]["predicted"] == ka[k]["true"] for k in keys],
                     [kb[k]["predicted"] == kb[k]["true"] for k in keys])
    return {"same_images": True, **result, "alpha": alpha, "significant": result["p_value"] < alpha}


SEED_METRICS = ("test_accuracy", "val_accuracy")


def spread(values: Sequence[float | None]) -> dict:
    """Mean and spread of the numbers in `values` (None ignored): {n, mean, std, min, max}; std is
    the population standard deviation (n in the denominator, as the search's summary per point;
    0.0 for a single value); all None when there is no number."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))
    return {"n": len(xs), "mean": mean, "std": std, "min": min(xs), "max": max(xs)}


def over_seeds(runs: Sequence[dict]) -> dict:
    """What a group of runs trained with different seeds says together (`tlcore train --seeds N`,
    the Runs page): `runs` are [{run_dir, seed, state, test_accuracy, val_accuracy, ...}].

    Returns {n, seeds, runs, and for test_accuracy and val_accuracy: KEY_mean, KEY_std, KEY_min,
    KEY_max} (`spread` over the runs that have the number; None where none has it)."""
    out: dict = {"n": len(runs), "seeds": [r.get("seed") for r in runs], "runs": list(runs)}
    for key in SEED_METRICS:
        s = spread([r.get(key) for r in runs])
        out.update({f"{key}_{k}": s[k] for k in ("mean", "std", "min", "max")})
    return out


def seed_groups(runs: Sequence) -> list[dict]:
    """The groups of runs trained with `--seeds N` among `runs` (the run store's `Run`s, newest
    first), newest group first: [{group, runs: [summary + seed], ensemble: summary or None, and
    `over_seeds` of the seed runs}]. A group's ensemble run is not one of its seeds."""
    found: dict[str, dict] = {}
    for run in runs:
        tag = run.raw_status().get("group") or {}
        if not tag.get("id"):
            continue
        entry = found.setdefault(tag["id"], {"runs": [], "ensemble": None})
        if tag.get("kind") == "ensemble":
            entry["ensemble"] = run.summary()
        else:
            entry["runs"].append({**run.summary(), "seed": tag.get("seed"), "index": tag.get("index", 0)})
    out = []
    for group, entry in found.items():
        members = sorted(entry["runs"], key=lambda r: r["index"])
        if members:
            out.append({"group": group, **over_seeds(members), "ensemble": entry["ensemble"]})
    return out
