"""Baselines beside every run: what a classical model makes of the same data, scored on the
same test images, so a network that a trivial model beats says so.

Two baselines, fitted on a stratified sample of at most `MAX_TRAIN` training images that the
run already holds in memory:

- `features`: logistic regression on the backbone's features at the run's cut, averaged over
  space (pooled), standardised. The features are the frozen pretrained backbone's, as stage 1
  saw them: the training run computes them (`held_features`) before stage 2 changes the
  backbone, reading the stage-1 feature cache (`recipe.features.pooled_split`), so a fine-tuned
  run pays no second pass over its training images. Only a run resumed in the middle of stage 2
  falls back to its fine-tuned backbone; the record says which (`features`: frozen|fine-tuned).
- `pixels`: an RBF support-vector machine on the raw pixels, shrunk to 16x16 in colour plus 32x32
  in grey (area averaging), standardised.

Both are scikit-learn's. A training imports it in a background thread as it starts (`warm_up`),
so its 1-2 s of imports overlap the epochs instead of adding to the run's end; nothing else
imports it before the baselines fit. Their warnings are silenced: the baselines print nothing.

`beats_model` owns the rule of the run's warning: a baseline beats the model when its test
accuracy lies above the model's 95% Wilson interval (the model's upper bound is below it).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..data.mapped import Subset, chunks
from .stats import accuracy_interval

MAX_TRAIN = 2000
PIXEL_SIZES = (16, 32)  # colour at 16x16, grey at 32x32

NAMES = {"features": "logistic regression on the backbone's pooled features",
         "pixels": "SVM (RBF) on raw pixels, 16x16 colour + 32x32 grey"}
_SKLEARN = ("sklearn.linear_model", "sklearn.pipeline", "sklearn.preprocessing", "sklearn.svm")
_warming: list = []


def warm_up() -> None:
    """Start importing scikit-learn in a daemon thread (once per process), so that the baselines
    at a run's end find it loaded: the training's epochs hide the import."""
    if _warming:
        return
    import importlib
    import threading

    def load() -> None:
        for name in _SKLEARN:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the baselines' own import reports it
                return

    thread = threading.Thread(target=load, name="tlcore-sklearn-warm-up", daemon=True)
    _warming.append(thread)
    thread.start()


def stratified_sample(labels: np.ndarray, limit: int = MAX_TRAIN, seed: int = 0) -> np.ndarray:
    """Indexes of at most `limit` items, each class keeping its share (at least one image of
    every class), in ascending order; all indexes when there are no more than `limit`."""
    labels = np.asarray(labels)
    n = len(labels)
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(1, np.floor(counts / n * limit).astype(int))
    while quota.sum() > limit:  # many tiny classes: take from the largest quota
        quota[quota.argmax()] -= 1
    left = limit - quota.sum()  # hand out the rounding remainder, largest fractions first
    order = np.argsort(-(counts / n * limit - np.floor(counts / n * limit)), kind="stable")
    for i in order[:left]:
        quota[i] += 1
    keep = [rng.choice(np.flatnonzero(labels == c), size=min(q, cnt), replace=False)
            for c, q, cnt in zip(classes, quota, counts)]
    return np.sort(np.concatenate(keep))


def pixel_vectors(images) -> np.ndarray:
    """Images uint8 [n, h, w, 3] (an array or `mapped.Rows`, read a chunk at a time) ->
    [n, 16*16*3 + 32*32] float32: area-averaged colour at 16x16 and grey at 32x32, values 0-1."""
    import tensorflow as tf

    small, grey_size = PIXEL_SIZES
    out = []
    for block in chunks(images):
        x = tf.constant(np.asarray(block, dtype=np.float32) / 255.0)
        colour = tf.image.resize(x, (small, small), method="area")
        grey = tf.image.resize(tf.image.rgb_to_grayscale(x), (grey_size, grey_size), method="area")
        out.append(np.concatenate([colour.numpy().reshape(len(x), -1), grey.numpy().reshape(len(x), -1)], axis=1))
    if not out:
        return np.zeros((0, small * small * 3 + grey_size * grey_size), dtype=np.float32)
    return np.concatenate(out, axis=0)


def pooled(features) -> np.ndarray:
    """Backbone features [n, ...spatial, c] (an array or cache rows) averaged over space -> [n, c],
    a chunk at a time (`recipe.features.pooled`)."""
    from ..recipe.features import pooled as pool

    return pool(features)


def held_features(extractor, key: dict, x_train, y_train, x_test, seed: int = 0, batch_size: int = 32,
                  max_train: int = MAX_TRAIN) -> dict:
    """The pooled stage-1 features the features baseline fits on, computed while the backbone is
    still the frozen pretrained one: {keep, train, test, fine_tuned: False}, where `keep` is the
    stratified sample of training images (`stratified_sample`), `train` their features and `test`
    those of every test image (`recipe.features.pooled_split`, the stage-1 cache's `key`)."""
    from ..recipe.features import pooled_split

    keep = stratified_sample(y_train, max_train, seed)
    sample = None if len(keep) == len(y_train) else keep
    return {"keep": keep, "train": pooled_split(extractor, key, "train", x_train, batch_size, sample),
            "test": pooled_split(extractor, key, "test", x_test, batch_size), "fine_tuned": False}


def _fit_score(kind: str, x_train, y_train, x_test, y_test, seed: int) -> float:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "features":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(max_iter=1000, C=0.1, random_state=seed)
    else:
        from sklearn.svm import SVC

        clf = SVC(kernel="rbf", C=10.0, gamma="scale", random_state=seed)
    model = make_pipeline(StandardScaler(), clf).fit(x_train, y_train)
    return float((model.predict(x_test) == y_test).mean())


def one_thread():
    """BLAS and OpenMP held to one thread while the baselines fit. On these 2-core machines,
    shared and busy, the two OpenBLAS libraries NumPy and SciPy load each spin 2 threads: a
    logistic regression of 300 images on 1,280 features took 9-11 s that way and 0.2 s on one
    thread (threadpoolctl comes with scikit-learn)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def fit_baselines(train: dict[str, np.ndarray], y_train: np.ndarray, test: dict[str, np.ndarray],
                  y_test: np.ndarray, seed: int = 0) -> list[dict]:
    """Fit each baseline of `train` ({kind: vectors}) and score it on `test` ({kind: vectors}).

    Returns [{name, kind, test_accuracy, test_accuracy_interval, test_count, train_count, seconds}];
    a baseline that cannot be fitted (one class only in train) is left out.
    """
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    out = []
    if len(np.unique(y_train)) < 2 or len(y_test) == 0:
        return out
    import sklearn.linear_model, sklearn.pipeline, sklearn.svm  # noqa: E401,F401  (loads SciPy's BLAS
    # before `one_thread` holds it to one thread: a library loaded later is not held)
    for kind in ("features", "pixels"):
        if kind not in train or kind not in test:
            continue
        t0 = time.perf_counter()
        with warnings.catch_warnings(), one_thread():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                acc = _fit_score(kind, train[kind], y_train, test[kind], y_test, seed)
        out.append({"name": NAMES[kind], "kind": kind, "test_accuracy": acc,
                    "test_accuracy_interval": accuracy_interval(acc, len(y_test)),
                    "test_count": int(len(y_test)), "train_count": int(len(y_train)),
                    "seconds": round(time.perf_counter() - t0, 3)})
    return out


def beats_model(baseline: dict, model_accuracy: float | None, n: int | None) -> bool:
    """Whether `baseline` beats the model by more than the model's interval: its test accuracy
    lies above the upper bound of the model's 95% Wilson interval on the same `n` test images."""
    interval = accuracy_interval(model_accuracy, n)
    acc = baseline.get("test_accuracy")
    return interval is not None and acc is not None and acc > interval[1]


def beats_warning(baseline: dict, model_accuracy: float, n: int) -> str:
    lo, hi = accuracy_interval(model_accuracy, n)
    return (f"A baseline beats the model: {baseline['name']} scored {baseline['test_accuracy']:.3f} on the "
            f"same {n} test images, above the model's {model_accuracy:.3f} and its 95% interval "
            f"[{lo:.3f}, {hi:.3f}]. The network adds nothing here: try other options (more epochs, "
            "another learning rate or cut), or use the simpler model.")


@dataclass
class RunBaselines:
    """What a training holds at its end, for `evaluate_run(..., baselines=...)`: the model, the
    decoded training images and labels, the seed, and the pooled stage-1 features it computed
    (`held_features`; None: the features are computed from `model` here)."""

    model: object
    x_train: np.ndarray
    y_train: np.ndarray
    seed: int = 0
    held: dict | None = None
    fine_tuned: bool = False
    max_train: int = MAX_TRAIN

    def __call__(self, split: str, images: np.ndarray, labels: np.ndarray) -> list[dict]:
        held = self.held if self.held is not None and len(self.held["test"]) == len(labels) else None
        keep = held["keep"] if held is not None else stratified_sample(self.y_train, self.max_train, self.seed)
        # a sample read from the decoded rows as it is used, never gathered into one array
        x_train = Subset(self.x_train, keep) if len(keep) < len(self.y_train) else self.x_train
        y_train = np.asarray(self.y_train)[keep]
        train = {"pixels": pixel_vectors(x_train)}
        test = {"pixels": pixel_vectors(images)}
        feats = (held["train"], held["test"]) if held is not None else self._features(x_train, images)
        if feats is not None:
            train["features"], test["features"] = feats
        out = fit_baselines(train, y_train, test, labels, self.seed)
        for b in out:
            if b["kind"] == "features":
                b["features"] = "fine-tuned" if self.fine_tuned and held is None else "frozen"
        return out

    def _features(self, x_train, images):
        from ..recipe.features import compute
        from ..recipe.surgery import feature_extractor

        try:
            extractor = feature_extractor(self.model)
            return compute(extractor, x_train, pool=True)[0], compute(extractor, images, pool=True)[0]
        except (ValueError, KeyError):  # a model without the backbone/head layout (a saved model's)
            return None
