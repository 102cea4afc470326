"""Runs over several seeds (`--seeds N`), the ensemble of runs (`--ensemble K`, `tlcore ensemble`),
and the baselines' features taken from the stage-1 feature cache."""
from __future__ import annotations

import numpy as np
import pytest


# --- the baselines' features: the frozen backbone's, through the stage-1 cache ----------

class _Extractor:
    """Stands in for a backbone: counts the images it sees; features [n, 2, 2, 3] from the pixels."""

    def __init__(self):
        self.seen = 0

    def __call__(self, x):
        self.seen += len(x)
        return np.repeat(np.asarray(x, np.float32)[:, :2, :2, :3], 1, axis=0)


def test_held_features_read_the_stage1_cache_and_compute_only_what_is_missing(tlhome, monkeypatch):
    from tlcore.evaluation import baselines
    from tlcore.recipe import features

    extractor = _Extractor()

    def fake_compute(ex, images, batch_size=32, augment=None, copies=1, seed=0, out=None):
        feats = ex(np.asarray(images))
        if out is not None:
            out.append(feats)
            return None
        return feats[None]

    monkeypatch.setattr(features, "compute", fake_compute)
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 255, (30, 4, 4, 3)).astype(np.uint8)
    y_train = np.repeat([0, 1, 2], 10)
    x_test = rng.integers(0, 255, (9, 4, 4, 3)).astype(np.uint8)
    key = {"source": "fake", "cut": None}
    # stage 1 cached the training split's features (values unlike the extractor's, to tell them apart)
    cached_train = np.full((30, 2, 2, 3), 7.0, np.float32) + np.arange(30, dtype=np.float32)[:, None, None, None]
    features.cached(features.cache_key(split="train", copies=1, augment={}, **key), make=lambda: cached_train[None])
    held = baselines.held_features(extractor, key, x_train, y_train, x_test, seed=0)
    assert extractor.seen == 9  # the test images only: the training split's came from the cache
    assert np.allclose(held["train"], cached_train.mean(axis=(1, 2)))
    assert np.allclose(held["test"], x_test[:, :2, :2, :3].astype(np.float32).mean(axis=(1, 2)))
    assert list(held["keep"]) == list(range(30)) and held["fine_tuned"] is False
    # the test features are cached now, under the stage-1 key: a second call computes nothing
    again = baselines.held_features(extractor, key, x_train, y_train, x_test, seed=0)
    assert extractor.seen == 9 and np.allclose(again["test"], held["test"])

    # a sample (more training images than max_train) with no cache entry: only the sample is computed
    other = {"source": "other", "cut": None}
    sample = baselines.held_features(extractor, other, x_train, y_train, x_test, seed=1, max_train=6)
    assert len(sample["keep"]) == 6 and extractor.seen == 9 + 6 + 9
    assert sorted(np.bincount(y_train[sample["keep"]])) == [2, 2, 2]
    assert np.allclose(sample["train"], x_train[sample["keep"], :2, :2, :3].astype(np.float32).mean(axis=(1, 2)))


def test_the_numpy_baselines_predict_as_scikit_learns_models():
    """The baselines' own logistic regression and kernel ridge classifier against scikit-learn's
    logistic regression and RBF SVM, standardised the same way, on the 8x8 digits."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from tlcore.evaluation.baselines import one_thread
    from tlcore.evaluation.classical import kernel_ridge, logistic_regression

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order] + 10  # labels need not start at 0
    xtr, ytr, xte, yte = x[:900], y[:900], x[900:], y[900:]
    with one_thread():
        ours_lr = logistic_regression(xtr, ytr, xte, c=0.1)
        ours_kr = kernel_ridge(xtr, ytr, xte, c=10.0)
    sk_lr = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(xtr, ytr).predict(xte)
    sk_svm = make_pipeline(StandardScaler(), SVC(C=10.0, gamma="scale")).fit(xtr, ytr).predict(xte)
    assert set(ours_lr) <= set(ytr) and len(ours_lr) == len(yte)
    assert (ours_lr == sk_lr).mean() >= 0.99  # the same objective: the same answers
    assert (ours_kr == sk_svm).mean() >= 0.97  # a least-squares SVM beside the SVM
    assert abs((ours_lr == yte).mean() - (sk_lr == yte).mean()) <= 0.01
    assert (ours_kr == yte).mean() >= (sk_svm == yte).mean() - 0.01
