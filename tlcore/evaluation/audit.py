"""Data health on backbone features: a 2-D map, suspected label errors, near-duplicates
(and leaks across splits), outliers and overlapping classes.

Features are the backbone's output at the chosen cut (the stage-1 feature cache, shared with
training), globally average pooled. Label issues come from out-of-fold probabilities of a
linear model (cross-validated, so no image judges itself) ranked with confident learning
(cleanlab); near-duplicates from cosine distance; outliers from the distance to the nearest
neighbours; the map from PCA, or UMAP where it is installed.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import OptionError, TLCoreError

DUPLICATE_DISTANCE = 0.04
THUMB_SIDE = 16
THUMB_DISTANCE = 0.03
NEAREST_SHARE = 0.25
NEIGHBOURS = 5
MAX_FOLDS = 5
MAX_DUPLICATES = 500


def pooled(feats) -> np.ndarray:
    """[n, ...] backbone outputs (an array or cache rows) as [n, d]: spatial maps averaged,
    anything else flattened, a chunk at a time (`recipe.features.pooled`)."""
    from ..recipe.features import pooled as pool

    return pool(feats)


def out_of_fold_probabilities(x: np.ndarray, y: np.ndarray, num_classes: int, seed: int = 0) -> np.ndarray:
    """[n, k] probabilities, each image's from a linear model that did not see it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    counts = np.bincount(y, minlength=num_classes)
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        raise TLCoreError("Every class needs at least 2 images for the audit's cross-validation; "
                          f"counts per class: {counts.tolist()}.")
    folds = int(min(MAX_FOLDS, present.min()))
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=0.1, random_state=seed))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probs = cross_val_predict(clf, x, y, cv=cv, method="predict_proba")
    classes_seen = np.unique(y)
    if len(classes_seen) != num_classes:  # a class without images: give it zero probability
        full = np.zeros((len(y), num_classes))
        full[:, classes_seen] = probs
        probs = full
    return probs


def label_issues(probs: np.ndarray, y: np.ndarray, names: list[str], files: list[str]) -> list[dict]:
    """Confident learning's label issues, most suspicious first: score = 1 - self-confidence."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    present = np.unique(y)
    sub = probs[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    y_sub = np.searchsorted(present, y)
    found = find_label_issues(labels=y_sub, pred_probs=sub, return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(y_sub, sub, method="self_confidence")
    return [{"file": files[i], "given": names[y[i]], "suggested": names[int(present[sub[i].argmax()])],
             "score": float(1.0 - quality[i])} for i in found]


def class_overlap(probs: np.ndarray, y: np.ndarray, names: list[str]) -> list[dict]:
    """Pairs of classes the model confuses, by cleanlab's joint probability, largest first."""
    from cleanlab.dataset import find_overlapping_classes

    present = np.unique(y)
    if len(present) < 2:
        return []
    sub = probs[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    df = find_overlapping_classes(labels=np.searchsorted(present, y), pred_probs=sub)
    out = []
    for _, row in df.iterrows():
        a, b = int(row["Class Index A"]), int(row["Class Index B"])
        if float(row["Joint Probability"]) > 0:
            out.append({"a": names[int(present[a])], "b": names[int(present[b])],
                        "score": float(row["Joint Probability"])})
    return sorted(out, key=lambda r: -r["score"])


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def thumbnails(images: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """[n, side*side*3] tiny colour thumbnails, each minus its mean: resizing, re-encoding and
    light crops barely move them, so they find copies the backbone's features blur."""
    import tensorflow as tf

    from ..data.mapped import chunks

    out = []
    for block in chunks(images):  # an array or `mapped.Rows`, a chunk at a time
        t = tf.image.resize(np.asarray(block, dtype=np.float32), (side, side),
                            antialias=True).numpy().reshape(-1, side * side * 3)
        out.append(t - t.mean(axis=1, keepdims=True))
    return np.concatenate(out) if out else np.zeros((0, side * side * 3), np.float32)


def _distances(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    u = _unit(x)
    return np.clip(1.0 - u[start:stop] @ u.T, 0.0, 2.0)


def _limit(x: np.ndarray, cap: float) -> float:
    """`cap`, or a quarter of the median nearest-neighbour distance where that is smaller: how
    close two distinct images come depends on the backbone, so the limit follows the data."""
    if len(x) < 3:
        return cap
    return float(min(cap, NEAREST_SHARE * np.median(_knn_score(x, 1))))


def near_duplicates(x: np.ndarray, files: list[str], splits: list[str], thumbs: np.ndarray | None = None,
                    max_distance: float = DUPLICATE_DISTANCE,
                    max_thumb_distance: float = THUMB_DISTANCE) -> list[dict]:
    """Pairs whose features lie within `max_distance` cosine distance, or whose thumbnails lie
    within `max_thumb_distance` (each limit lowered to a quarter of the data's median
    nearest-neighbour distance); closest first (by the smaller of the two, each relative to its
    limit). `distance` is the features' cosine distance; cross_split marks leaks."""
    limit = max(_limit(x, max_distance), 1e-9)
    t_limit = max(_limit(thumbs, max_thumb_distance), 1e-9) if thumbs is not None else 1.0
    pairs = []
    for start in range(0, len(x), 1024):
        stop = min(start + 1024, len(x))
        d = _distances(x, start, stop)
        dt = _distances(thumbs, start, stop) if thumbs is not None else np.full_like(d, np.inf)
        rel = np.minimum(d / limit, dt / t_limit)
        for i, j in zip(*np.nonzero(rel <= 1.0)):
            a = start + int(i)
            if a < j:
                pairs.append((float(rel[i, j]), a, int(j), float(d[i, j]), float(dt[i, j])))
    pairs.sort()
    return [{"a": files[a], "b": files[b], "distance": dist, "thumbnail_distance": tdist,
             "cross_split": splits[a] != splits[b]} for _, a, b, dist, tdist in pairs[:MAX_DUPLICATES]]


def _knn_score(x: np.ndarray, k: int) -> np.ndarray:
    scores = np.zeros(len(x))
    for start in range(0, len(x), 1024):
        d = _distances(x, start, min(start + 1024, len(x)))
        for row in range(len(d)):
            d[row, start + row] = np.inf
        scores[start:start + len(d)] = np.partition(d, k - 1, axis=1)[:, :k].mean(axis=1)
    return scores


def outliers(x: np.ndarray, files: list[str], thumbs: np.ndarray | None = None, k: int = NEIGHBOURS) -> list[dict]:
    """Images far from every other: the mean cosine distance to the `k` nearest, in features
    (and thumbnails, averaged, each relative to its median), listed when well above the typical
    value (median + 3 robust standard deviations), farthest first."""
    n = len(x)
    if n < 3:
        return []
    k = min(k, n - 1)
    parts = [_knn_score(x, k)] + ([_knn_score(thumbs, k)] if thumbs is not None else [])
    scores = np.mean([p / max(float(np.median(p)), 1e-9) for p in parts], axis=0)
    med = float(np.median(scores))
    mad = float(np.median(np.abs(scores - med))) or 1e-6
    flagged = np.nonzero(scores > med + 3.0 * 1.4826 * mad)[0]
    return [{"file": files[i], "score": float(scores[i])} for i in sorted(flagged, key=lambda i: -scores[i])]


def embedding(x: np.ndarray, seed: int = 0) -> tuple[str, np.ndarray]:
    """A 2-D map of the features: UMAP where installed, else PCA; (method, [n, 2])."""
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(x)
    if len(z) >= 10:
        try:
            import umap  # optional

            return "umap", umap.UMAP(n_components=2, random_state=seed).fit_transform(z)
        except Exception:
            pass
    from sklearn.decomposition import PCA

    comps = min(2, z.shape[1], len(z))
    xy = PCA(n_components=comps, random_state=seed).fit_transform(z)
    if xy.shape[1] < 2:
        xy = np.hstack([xy, np.zeros((len(xy), 2 - xy.shape[1]))])
    return "pca", xy


def dataset_features(config, ds=None) -> dict:
    """Pooled features of every split at the config's cut, through the stage-1 feature cache.

    Returns:
        {x [n, d], thumbs [n, t], labels [n], files, splits, classes, problems}
    """
    from ..recipe import features
    from ..data.pipeline import SPLITS, scan, split_arrays
    from ..recipe.surgery import build_model, feature_extractor
    from ..backbones.source import load_source

    config = config.resolved()
    if not config.data:
        raise TLCoreError("Give the dataset folder to audit.")
    ds = ds or scan(config.data, config.val_split, config.test_split, config.seed)
    source = load_source(config)
    model = build_model(config, source, max(2, len(ds.classes)))
    extractor = feature_extractor(model)
    key = features.stage1_key(source, config, ds, model)
    xs, ys, ts, files, splits, problems = [], [], [], [], [], []
    for split in SPLITS:
        if not ds.files.get(split):
            continue
        images, labels, paths, bad = split_arrays(ds, split, source.input_size, config.resize)
        feats = features.first_copy(features.cached(features.cache_key(split=split, copies=1, augment={}, **key),
                                                    into=features.computed(extractor, images, config.batch_size)))
        xs.append(pooled(feats))
        ts.append(thumbnails(images))
        ys.append(labels)
        files += [str(p) for p in paths]
        splits += [split] * len(paths)
        problems += bad
    if not files:
        raise TLCoreError("No readable images in the dataset; see `tlcore scan`.")
    return {"x": np.concatenate(xs), "thumbs": np.concatenate(ts), "labels": np.concatenate(ys).astype(int), "files": files,
            "splits": splits, "classes": list(ds.classes), "problems": problems}


def audit(config, duplicate_distance: float = DUPLICATE_DISTANCE) -> dict:
    """The whole health report of the dataset `config.data` on the config's backbone and cut.

    Returns:
        {embedding: {method, points: [{file, split, label, x, y}]}, label_issues: [{file,
        given, suggested, score}], near_duplicates: [{a, b, distance, cross_split}],
        outliers: [{file, score}], class_overlap: [{a, b, score}]}, each list most suspicious
        first, files as absolute paths.
    """
    if not 0.0 <= float(duplicate_distance) < 1.0:
        raise OptionError("duplicate_distance", f"must be at least 0 and below 1. Received: {duplicate_distance}")
    f = dataset_features(config)
    x, y, files, splits, names = f["x"], f["labels"], f["files"], f["splits"], f["classes"]
    seed = int(getattr(config, "seed", 0) or 0)
    probs = out_of_fold_probabilities(x, y, len(names), seed)
    method, xy = embedding(x, seed)
    points = [{"file": files[i], "split": splits[i], "label": names[y[i]], "x": float(xy[i, 0]),
               "y": float(xy[i, 1])} for i in range(len(files))]
    return {"embedding": {"method": method, "points": points},
            "label_issues": label_issues(probs, y, names, files),
            "near_duplicates": near_duplicates(x, files, splits, f["thumbs"], duplicate_distance),
            "outliers": outliers(x, files, f["thumbs"]),
            "class_overlap": class_overlap(probs, y, names),
            "skipped": f["problems"]}


def report_text(result: dict, top: int = 10) -> str:
    """The audit for a terminal: counts, then the first `top` of each list."""
    lines = [f"map: {result['embedding']['method']} of {len(result['embedding']['points'])} images"]
    lines.append(f"suspected label errors: {len(result['label_issues'])}")
    lines += [f"  {i['score']:.3f}  {i['file']}  given {i['given']}, looks like {i['suggested']}"
              for i in result["label_issues"][:top]]
    leaks = sum(d["cross_split"] for d in result["near_duplicates"])
    lines.append(f"near-duplicates: {len(result['near_duplicates'])} ({leaks} across splits)")
    lines += [f"  {d['distance']:.3f}  {d['a']}  {d['b']}" + ("  LEAK" if d["cross_split"] else "")
              for d in result["near_duplicates"][:top]]
    lines.append(f"outliers: {len(result['outliers'])}")
    lines += [f"  {o['score']:.3f}  {o['file']}" for o in result["outliers"][:top]]
    lines.append(f"overlapping classes: {len(result['class_overlap'])}")
    lines += [f"  {c['score']:.3f}  {c['a']} / {c['b']}" for c in result["class_overlap"][:top]]
    return "\n".join(lines)
