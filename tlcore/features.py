"""The feature cache: backbone outputs computed once per split, kept on disk, reused by heads.

Stage 1 trains only the head on a frozen backbone (BatchNorm in inference mode), so the
backbone's output for an image never changes during that stage: computing it once and
training the head on it gives the same model as running the backbone every epoch. With
augmentation, a fixed number of augmented copies per image is cached instead, and every
epoch draws one copy of each image at random.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import weakref

import numpy as np

from . import cache, home

AUGMENTED_COPIES = 5
MAX_CACHE_BYTES = 6 * 2 ** 30


def feature_bytes(feature_shape, n_images: int, copies: int = 1) -> int:
    return int(np.prod(feature_shape)) * 4 * n_images * copies


def cache_key(**parts) -> str:
    """A stable key of everything that changes the features (backbone, weights hash, cut, size...)."""
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def compute(extractor, images: np.ndarray, batch_size: int = 32, augment: list | None = None,
            copies: int = 1, seed: int = 0) -> np.ndarray:
    """Backbone features [copies, n, ...] (copies=1 without augmentation), one trace per extractor
    for all batches and calls (train, validation and test share it)."""
    import tensorflow as tf

    forward = _forward(extractor)

    out = []
    for k in range(copies):
        if augment:
            import keras

            keras.utils.set_random_seed(seed + k)
        parts = []
        for start in range(0, len(images), batch_size):
            x = tf.constant(np.asarray(images[start:start + batch_size], dtype=np.float32))
            if augment:
                for layer in augment:
                    x = layer(x, training=True)
                x = tf.clip_by_value(x, 0.0, 255.0)
            parts.append(forward(x).numpy())
        out.append(np.concatenate(parts, axis=0))
    return np.stack(out, axis=0)


_FORWARD: "weakref.WeakKeyDictionary[object, object]" = weakref.WeakKeyDictionary()


def _forward(extractor):
    """The extractor's compiled forward pass, made once and freed with the extractor."""
    import tensorflow as tf

    fn = _FORWARD.get(extractor)
    if fn is None:
        owner = weakref.ref(extractor)

        @tf.function(input_signature=[tf.TensorSpec([None, *extractor.input_shape[1:]], tf.float32)],
                     reduce_retracing=True)
        def fn(x):
            return tf.cast(owner()(x, training=False), tf.float32)

        _FORWARD[extractor] = fn
    return fn


def cached(key: str, make) -> np.ndarray:
    """Features from the disk cache under `key`, else `make()` stored there for the next run.

    The cache stays within TLCORE_CACHE_MAX (see `cache`): features larger than that are not
    stored, and older entries make room, least recently used first.
    """
    limit = cache.max_bytes()  # a bad TLCORE_CACHE_MAX is reported before any work
    folder = home.cache_dir() / "features"
    path = folder / f"{key}.npy"
    if path.exists():
        try:
            feats = np.load(path, allow_pickle=False)
            cache.touch(path)
            return feats
        except (OSError, ValueError):
            pass
    feats = make()
    if feats.nbytes > limit:
        return feats
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp.npy"
        np.save(tmp, feats)
        os.replace(tmp, path)
        cache.enforce(limit)
    except OSError:
        pass
    return feats


def dataset(features: np.ndarray, labels: np.ndarray, num_classes: int, batch_size: int,
            shuffle: bool = False, seed: int = 42, one_hot: bool = False):
    """tf.data over cached features [copies, n, ...]: one random copy of each image per epoch."""
    import tensorflow as tf

    from .outputs import targets

    y = targets(labels, num_classes, one_hot)
    copies = features.shape[0]
    per_image = np.moveaxis(features, 0, 1)  # [n, copies, ...]
    ds = tf.data.Dataset.from_tensor_slices((per_image, y))
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    if copies > 1:
        ds = ds.map(lambda f, t: (f[tf.random.uniform([], 0, copies, dtype=tf.int32, seed=seed)], t),
                    num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda f, t: (f[0], t))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def clear_cache() -> int:
    """Delete the cache folder's contents (decoded images, features); returns bytes freed."""
    root = home.cache_dir()
    freed = home.folder_size(root)
    if root.is_dir():
        for p in root.iterdir():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    return freed
