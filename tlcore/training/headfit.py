"""Stage 1 as a linear probe (`head_fit: logistic`): the head's output layer fitted in one step as
an L2-regularised logistic regression on the frozen backbone's features, instead of epochs of
gradient descent.

The features are what the head's output layer reads: the backbone's features at the cut (the
stage-1 cache's unaugmented entry, `recipe.features.split_rows`) through the head's pooling; the
head has no hidden dense layer (`TrainConfig.check`), and dropout is off at inference. scikit-learn
fits standardised features: `LogisticRegressionCV` picks the strength C from `CS` by
cross-validated log loss on the training images (stratified folds in file order: no seed, so the
same data always gives the same model), then refits on all of them (at most `MAX_FIT`, a
stratified sample). The standardisation is folded into the output layer's kernel and bias, so the
model is the same network as a head trained by epochs: every export, `predict` and the live view
take it, and a second stage fine-tunes from it (a linear probe, then fine-tuning: LP-FT).

The record reads like a stage of one epoch, numbered as the stage's last (`head_epochs`), so a
second stage and a resume count epochs as usual.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from ..core.errors import OptionError, TLCoreError

CS = (0.01, 0.03, 0.1, 0.3, 1.0)  # inverse strengths tried, strongest first (ties: the stronger)
MAX_FIT = 10000  # training images the regression fits at most (a stratified sample beyond)
MAX_FOLDS = 5
DEFAULT_C = 0.1  # without folds (a class with a single training image): the baselines' strength


def representation(head, rows) -> np.ndarray:
    """What the head's output layer reads for backbone features `rows` [n, ...] (an array or cache
    rows, read a chunk at a time): [n, d] float32."""
    import keras

    from ..data.mapped import chunks

    inner = keras.Model(head.inputs, head.get_layer("predictions").input)
    parts = [np.asarray(inner(np.asarray(block, dtype=np.float32), training=False), dtype=np.float32)
             for block in chunks(rows)]
    width = int(inner.output_shape[-1])
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, width), np.float32)


def fit(x: np.ndarray, y: np.ndarray, num_classes: int, class_weight: dict | None = None, seed: int = 0,
        cs=CS) -> dict:
    """The probe of features `x` [n, d] with labels `y`: {kernel [d, units], bias [units], C, folds,
    fitted}, where units is `outputs.output_units(num_classes)` and the logits are x @ kernel + bias.

    Raises:
        TLCoreError: fewer than two classes among the training images.
    """
    from ..data.outputs import output_units
    from ..evaluation.baselines import one_thread, stratified_sample

    y = np.asarray(y, dtype=np.int64)
    present = np.unique(y)
    if len(present) < 2:
        raise TLCoreError("The linear probe (head_fit logistic) needs training images of at least 2 classes; "
                          f"this dataset's training split has {len(present)}.")
    keep = stratified_sample(y, MAX_FIT, seed)
    x, y = np.asarray(x, dtype=np.float64)[keep], y[keep]
    counts = np.bincount(y)[present]
    folds = int(min(MAX_FOLDS, counts.min()))
    import sklearn.linear_model, sklearn.model_selection, sklearn.preprocessing  # noqa: E401  (before one_thread)

    scaler = sklearn.preprocessing.StandardScaler().fit(x)
    z = scaler.transform(x)
    weight = {int(k): float(v) for k, v in class_weight.items() if int(k) in present} if class_weight else None
    with warnings.catch_warnings(), one_thread(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if folds >= 2:
            model = sklearn.linear_model.LogisticRegressionCV(
                Cs=list(cs), cv=sklearn.model_selection.StratifiedKFold(folds), scoring="neg_log_loss",
                max_iter=2000, class_weight=weight, random_state=seed).fit(z, y)
            c = float(np.atleast_1d(model.C_)[0])
        else:
            c = DEFAULT_C
            model = sklearn.linear_model.LogisticRegression(C=c, max_iter=2000, class_weight=weight,
                                                            random_state=seed).fit(z, y)
    coef, intercept = np.asarray(model.coef_, np.float64), np.asarray(model.intercept_, np.float64)
    classes = [int(c_) for c_ in model.classes_]
    units = output_units(num_classes)
    if units == 1:  # two classes: one sigmoid unit, the logit of class 1
        w, b = coef.T, intercept
    else:  # a class without training images gets a logit far below the others
        w = np.zeros((coef.shape[1], units))
        b = np.full(units, -30.0)
        if len(classes) == 2:  # scikit-learn's binary form: class 1 against class 0
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        for row, label in enumerate(classes):
            w[:, label], b[label] = coef[row], intercept[row]
    scale = scaler.scale_
    kernel = w / scale[:, None]
    bias = b - (scaler.mean_ / scale) @ w
    return {"kernel": kernel.astype(np.float32), "bias": bias.astype(np.float32), "C": c, "folds": folds,
            "fitted": int(len(y))}


def probabilities(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The output layer's probabilities for features `x`: softmax rows, or [n, 2] for one sigmoid unit."""
    from ..data.outputs import probabilities as per_class

    logits = np.asarray(x, np.float64) @ kernel + bias
    if logits.shape[1] == 1:
        return per_class(1.0 / (1.0 + np.exp(-logits)), 2)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def scores(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(log loss, accuracy) of probabilities [n, k] for labels `y`."""
    y = np.asarray(y, np.int64)
    if not len(y):
        return float("nan"), float("nan")
    picked = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    return float(-np.log(picked).mean()), float((probs.argmax(axis=1) == y).mean())


def fit_stage(job, first: int, n_epochs: int) -> None:
    """Stage 1 of `job` (`training.steps._Job`) as a linear probe; the record as one epoch, number
    `first + n_epochs`."""
    from ..recipe.features import split_rows, stage1_key
    from ..recipe.plan import apply_stage
    from ..recipe.surgery import feature_extractor, parameter_counts
    from .tblog import EpochLog

    config, run, model = job.config, job.run, job.model
    if job.multi_worker:
        raise OptionError("head_fit", f"{{option}} {config.head_fit} runs on one machine: it fits on every training "
                          "image at once. Train it without a cluster (TF_CONFIG), or with head_fit epochs.")
    t0 = time.time()
    apply_stage(model, job.plan, 1)
    run.write_status(stage=1, epoch=first, parameters=parameter_counts(model), head_fit="fitting")
    (x_train, y_train), (x_val, y_val) = job.train, job.val
    if config.head_fit == "pixels":
        record, got = _pixels(job)
    else:
        head = model.get_layer("head")
        extractor = feature_extractor(model)
        key = stage1_key(job.source, config, job.ds, model)
        train = representation(head, split_rows(extractor, key, "train", x_train, config.batch_size))
        got = fit(train, y_train, job.n_classes, job.class_weights, config.seed)
        head.get_layer("predictions").set_weights([got["kernel"], got["bias"]])
        loss, acc = scores(probabilities(train, got["kernel"], got["bias"]), y_train)
        record = {"loss": loss, "accuracy": acc, "val_loss": None, "val_accuracy": None}
        if len(y_val):
            val = representation(head, split_rows(extractor, key, "validation", x_val, config.batch_size))
            record["val_loss"], record["val_accuracy"] = scores(probabilities(val, got["kernel"], got["bias"]), y_val)
    model = job.model
    record = {"stage": 1, "epoch": first + n_epochs, **record, "lr": None, "seconds": round(time.time() - t0, 3)}
    run.append_metric(record)
    log = EpochLog(run.file("tb"))
    log.write(first + n_epochs - 1, record)
    log.close()
    job.best.update(val_loss=record["val_loss"], epoch=first + n_epochs)
    job.checkpoint.improved(model)
    run.write_status(stage=1, epoch=first + n_epochs, epochs_total=config.epochs_total,
                     head_fit={"method": config.head_fit, "seconds": record["seconds"],
                               **{k: got[k] for k in ("C", "folds", "fitted", "centres") if k in got}})
    if config.fine_tune_epochs > 0:
        job.checkpoint.flush()


def _pixels(job) -> tuple[dict, dict]:
    """`head_fit: pixels` (`pixelfit`): the features baseline's pooled features are held first,
    while the network is there; then the pixel model becomes the job's model."""
    from ..data.outputs import predict_probabilities
    from ..data.pipeline import split_arrays
    from . import pixelfit
    from .steps import _hold_features
    from .train import Checkpointer

    _hold_features(job)  # the baselines beside the run: the backbone's features as well as the pixels
    (x_train, y_train), (x_val, y_val) = [split_arrays(job.ds, split, pixelfit.SIZE, job.config.resize)[:2]
                                          for split in ("train", "validation")]
    model, got = pixelfit.fit(x_train, y_train, job.n_classes, job.class_weights, job.config.seed)
    job.model = model
    job.checkpoint = Checkpointer(model, job.run.file("checkpoint.keras"))
    record = {}
    for prefix, x, y in (("", x_train, y_train), ("val_", x_val, y_val)):
        record[prefix + "loss"], record[prefix + "accuracy"] = \
            scores(predict_probabilities(model, x, job.n_classes), y) if len(y) else (None, None)
    return record, got
