"""Linear probes: at which depth of the backbone the classes become separable.

For a set of clean cut points (by default the end of each block, at most `MAX_CUTS`), the
backbone's output there is globally average pooled and a linear classifier (logistic
regression on standardised features) is fitted on the train split and scored on
validation. One forward pass to the deepest cut gives every cut's features: one model has
an output per cut, concatenated, and the pooled features of all splits are kept in the
feature cache.
"""
from __future__ import annotations

import time

import numpy as np

from ..core.errors import OptionError, TLCoreError

MAX_CUTS = 12


def default_cuts(table, limit: int = MAX_CUTS) -> list[int]:
    """Layer indexes at the end of each block that ends at a clean cut point (and the last
    layer), or every clean cut point where there are fewer than 4 such blocks; thinned evenly
    to at most `limit`, the deepest always kept."""
    from ..backbones.layers import block_summary, cut_options

    allowed = set(cut_options(table))
    ends = [b["last"] for b in block_summary(table) if b["last"] in allowed and b["last"] > 0]
    last = len(table) - 1
    if last in allowed and last not in ends:
        ends.append(last)
    if len(ends) < 4:  # a model without named blocks: every clean cut point
        ends = [i for i in sorted(allowed) if i > 0]
    if len(ends) <= limit:
        return ends
    picks = np.linspace(0, len(ends) - 1, limit).round().astype(int)
    return [ends[i] for i in sorted(set(picks.tolist()))]


def suggest(results: list[dict], tolerance: float = 0.01) -> dict | None:
    """The shallowest cut whose validation accuracy is within `tolerance` of the best."""
    scored = [r for r in results if r.get("val_accuracy") is not None]
    if not scored:
        return None
    best = max(r["val_accuracy"] for r in scored)
    return min((r for r in scored if r["val_accuracy"] >= best - tolerance), key=lambda r: r["index"])


def _pooled_model(source, indexes: list[int]):
    """image (RGB 0-255) -> preprocessing -> one vector: every cut's output pooled, concatenated."""
    import keras

    from ..backbones.layers import layer_output
    from ..recipe.surgery import preprocessing_layers

    backbone = source.backbone
    outs = []
    for i in indexes:
        t = layer_output(backbone, backbone.layers[i])
        if isinstance(t, (list, tuple)):
            t = t[0]
        if len(t.shape) == 4:
            t = keras.layers.GlobalAveragePooling2D(name=f"probe_pool_{i}")(t)
        elif len(t.shape) != 2:
            t = keras.layers.Flatten(name=f"probe_flat_{i}")(t)
        outs.append(t)
    dims = [int(t.shape[-1]) for t in outs]
    merged = outs[0] if len(outs) == 1 else keras.layers.Concatenate(name="probe_concat")(outs)
    inner = keras.Model(backbone.inputs, merged, name="probe_backbone")
    inputs = keras.Input(shape=(source.input_size, source.input_size, 3), name="image", dtype="float32")
    x = inputs
    for layer in preprocessing_layers(source.preprocessing):
        x = layer(x)
    return keras.Model(inputs, inner(x), name="probe"), dims


def fit_linear(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
               seed: int = 0) -> float:
    """Validation accuracy of logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y_train)) < 2:
        raise TLCoreError("The train split needs images of at least 2 classes to fit a probe.")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=0.1, random_state=seed))
    clf.fit(x_train, y_train)
    return float((clf.predict(x_val) == y_val).mean())


def probe(config, cuts: list | None = None, max_images: int = 2000) -> list[dict]:
    """Validation accuracy of a linear classifier at each cut.

    Args:
        config: a TrainConfig (data, backbone or backbone_file, weights, input size,
            preprocessing, resize, splits and seed are used).
        cuts: layer names or indexes (default `default_cuts`); each must be a clean cut point.
        max_images: at most this many train images (a seeded sample) are used.

    Returns:
        ``[{cut, index, val_accuracy, feature_dim, seconds}]`` in depth order, where seconds is
        the time to fit and score that cut's classifier (the shared forward pass is reported
        apart by the caller's clock).

    Raises:
        TLCoreError: no data, no validation images, a layer that is not a clean cut point.
    """
    from ..recipe import features
    from ..data.pipeline import scan, split_arrays
    from ..backbones.layers import layer_table, resolve_cut
    from ..backbones.source import load_source

    config = config.resolved()
    if not config.data:
        raise TLCoreError("Give the dataset folder to probe.")
    ds = scan(config.data, config.val_split, config.test_split, config.seed)
    if not ds.files.get("validation"):
        raise OptionError("val_split", "The dataset has no validation images: the probe scores on validation. "
                          "Give {option} above 0 or a validation/ folder.")
    source = load_source(config)
    backbone = source.backbone
    table = layer_table(backbone, source.paths)
    if cuts:
        indexes = sorted({resolve_cut(backbone, c, source.paths) for c in cuts})
    else:  # a saved model's old head (past its default cut) is no cut to probe
        last = source.default_cut if source.default_cut is not None else len(table) - 1
        indexes = [i for i in default_cuts(table[:last + 1])]
    if not indexes:
        raise OptionError("cuts", "found no clean cut point in the backbone to probe.")
    if len(ds.files["train"]) > max_images:
        rng = np.random.default_rng(config.seed)
        keep = sorted(rng.choice(len(ds.files["train"]), max_images, replace=False).tolist())
        ds.files["train"] = [ds.files["train"][i] for i in keep]
    model, dims = _pooled_model(source, indexes)
    key = dict(kind="probe", source=source.provenance, size=source.input_size, resize=config.resize,
               data=ds.fingerprint(), cuts=indexes, seed=config.seed, val_split=config.val_split,
               test_split=config.test_split, max_images=max_images)
    arrays = {}
    for split in ("train", "validation"):
        images, labels, _, _ = split_arrays(ds, split, source.input_size, config.resize)
        # pooled vectors, written batch by batch as computed; the linear models read them whole
        feats = features.first_copy(features.cached(features.cache_key(split=split, **key),
                                                    into=features.computed(model, images, config.batch_size)))
        arrays[split] = (np.asarray(feats), labels)
    (f_train, y_train), (f_val, y_val) = arrays["train"], arrays["validation"]
    if len(y_val) == 0 or len(y_train) == 0:
        raise TLCoreError("No readable images in the train or validation split; see `tlcore scan`.")
    out, start = [], 0
    for index, dim in zip(indexes, dims):
        t0 = time.perf_counter()
        acc = fit_linear(f_train[:, start:start + dim], y_train, f_val[:, start:start + dim], y_val,
                         config.seed)
        out.append({"cut": table[index].name, "index": int(index), "val_accuracy": acc,
                    "feature_dim": int(dim), "seconds": round(time.perf_counter() - t0, 3)})
        start += dim
    return out
