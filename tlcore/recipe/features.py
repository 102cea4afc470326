"""The feature cache: backbone outputs computed once per split, kept on disk, reused by heads;
how many copies stage 1 caches (`cache_copies`) and its datasets (`stage1_datasets`).

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

from ..core import cache
from ..core import home
from ..data.splits import DEFAULT_SEED

AUGMENTED_COPIES = 5
MAX_CACHE_BYTES = 6 * 2 ** 30


def feature_bytes(feature_shape, n_images: int, copies: int = 1) -> int:
    return int(np.prod(feature_shape)) * 4 * n_images * copies


def cache_key(**parts) -> str:
    """A stable key of everything that changes the features (backbone, weights hash, cut, size...)."""
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def stage1_key(source, config, ds, model) -> dict:
    """What the stage-1 features of a dataset depend on, for `cache_key` (training and the audit
    share them): backbone provenance, cut, size, resize, data fingerprint, split, dtype policy."""
    return dict(source=source.provenance, cut=config.cut, size=source.input_size,
                resize=config.resize, data=ds.fingerprint(), seed=config.seed,
                val_split=config.val_split, test_split=config.test_split,
                policy=str(model.dtype_policy.name) if hasattr(model, "dtype_policy") else "")


def compute(extractor, images, batch_size: int = 32, augment: list | None = None,
            copies: int = 1, seed: int = 0, out=None, pool: bool = False) -> np.ndarray | None:
    """Backbone features [copies, n, ...] (copies=1 without augmentation), one trace per extractor
    for all batches and calls (train, validation and test share it). `images` is an array or
    `mapped.Rows` (read batch by batch). With `out` (a `mapped.NpyWriter`), every batch is
    appended to it as it is computed (copy after copy) and None is returned: nothing but a batch
    is held in memory. With `pool`, each batch's features are averaged over space at once
    (`pooled`), [copies, n, channels]: what a linear model of a whole split needs, without ever
    holding that split's feature maps."""
    import tensorflow as tf

    forward = _forward(extractor)

    stacked = []
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
            y = forward(x).numpy()
            if pool:
                y = _pool(y)
            if out is not None:
                out.append(y)
            else:
                parts.append(y)
        if out is None:
            empty = (0, extractor.output_shape[-1]) if pool else (0, *extractor.output_shape[1:])
            stacked.append(np.concatenate(parts, axis=0) if parts else np.zeros(empty, np.float32))
    if out is not None:
        return None
    return np.stack(stacked, axis=0)


def pooled(features) -> np.ndarray:
    """Features [n, ...] (an array or `mapped.Rows` such as a cache file) as [n, d]: feature maps
    averaged over space, anything else flattened; read one chunk at a time."""
    from ..data.mapped import chunks

    parts = [_pool(block) for block in chunks(features)]
    if parts:
        return np.concatenate(parts, axis=0)
    shape = tuple(features.shape[1:])
    return np.zeros((0, shape[-1] if len(shape) > 1 else int(np.prod(shape))), np.float32)


def _pool(block) -> np.ndarray:
    block = np.asarray(block, dtype=np.float32)
    if block.ndim > 2:
        block = block.mean(axis=tuple(range(1, block.ndim - 1)))
    return block.reshape(len(block), -1)


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


def cached(key: str, make=None, into=None):
    """Features from the disk cache under `key`, else computed and stored there for the next run.

    `make()` returns the features as an array; `into(writer)` (preferred: nothing but a batch in
    memory, see `computed`) appends them, [copies * n, ...], to a `mapped.NpyWriter` and returns
    the leading shape (copies, n). A hit, and a file written by `into`, comes back as
    `mapped.DiskRows` [copies, n, ...], read by position.
    The cache stays within TLCORE_CACHE_MAX (see `cache`): features larger than that are not
    kept, and older entries make room, least recently used first.
    """
    from ..data.mapped import DiskRows, NpyWriter

    limit = cache.max_bytes()  # a bad TLCORE_CACHE_MAX is reported before any work
    folder = home.cache_dir() / "features"
    path = folder / f"{key}.npy"
    if path.exists():
        try:
            rows = DiskRows(path)
            cache.touch(path)
            return rows
        except (OSError, ValueError):
            pass
    if into is not None:
        tmp = folder / f".{key}.{os.getpid()}.tmp.npy"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            writer = NpyWriter(tmp)
        except OSError:
            writer = None
        if writer is not None:
            try:
                lead = into(writer)
                writer.close(lead)
                rows = DiskRows(tmp)  # open: the rows stay readable if the file goes
                if tmp.stat().st_size > limit:
                    tmp.unlink()  # too large to keep: read from the open file, then gone
                    return rows
                os.replace(tmp, path)
                cache.enforce(limit)
                return rows
            except OSError:
                writer.abort()
        make = make or (lambda: _in_memory(into))
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


class _Collect:
    """A stand-in for `NpyWriter` that keeps the rows in memory (an unwritable cache folder)."""

    def __init__(self):
        self.parts = []

    def append(self, block):
        self.parts.append(np.asarray(block))


def _in_memory(into) -> np.ndarray:
    sink = _Collect()
    lead = into(sink)
    return np.concatenate(sink.parts).reshape(*lead, *sink.parts[0].shape[1:])


def computed(extractor, images, batch_size: int = 32, augment: list | None = None, copies: int = 1,
             seed: int = 0):
    """`into` for `cached`: `compute` streamed into the cache's writer; returns (copies, n)."""
    def into(writer):
        compute(extractor, images, batch_size, augment, copies, seed, out=writer)
        return (copies, len(images))
    return into


def dataset(features, labels: np.ndarray, num_classes: int, batch_size: int,
            shuffle: bool = False, seed: int = DEFAULT_SEED, one_hot: bool = False):
    """tf.data over cached features [copies, n, ...] (an array or `mapped.DiskRows`), read by index:
    one random copy of each image per epoch, repeated without end: `fit` takes
    `optimizer.steps_per_epoch` batches of it per epoch and keeps ONE iterator for the whole stage. (A new iterator every epoch, Keras' way with a
    finite dataset, costs more than the head's own step on a small dataset: 30 head epochs of 168
    images took 1.6 s CPU that way, 1.2 s repeated.)"""
    from ..data.mapped import PREFETCH_BATCHES, DiskRows, index_dataset
    from ..data.outputs import targets

    y = targets(labels, num_classes, one_hot)
    copies = features.shape[0]
    flat = features.flat() if isinstance(features, DiskRows) else \
        np.asarray(features).reshape(-1, *features.shape[2:])
    ds = index_dataset(flat, y, batch_size, shuffle=shuffle, seed=seed, copies=copies)
    return ds.repeat().prefetch(PREFETCH_BATCHES)


VAL_BATCHES = 4  # training batches per validation batch on stored features



def first_copy(features):
    """Copy 0 of features [copies, n, ...]: rows read by position from a cache file, else the array's."""
    from ..data.mapped import DiskRows

    return features.part(0) if isinstance(features, DiskRows) else features[0]


def cache_copies(config, aug_opts: dict, model, n_train: int) -> int:
    """How many copies of the training features to cache for stage 1 (0: train end to end)."""
    if config.feature_cache == "off" or config.image_recipe():
        return 0  # RandAugment, MixUp and CutMix need the images themselves
    copies = AUGMENTED_COPIES if aug_opts else 1
    if config.feature_cache == "auto":
        if aug_opts and config.head_epochs < 2 * copies:
            return 0  # fewer epochs than it would take to pay for the copies
        shape = model.get_layer("head").input_shape[1:]
        if feature_bytes(shape, n_train, copies) > MAX_CACHE_BYTES:
            return 0
    return copies


def stage1_datasets(model, source, config, ds, aug_opts: dict, copies: int,
                      train: tuple, val: tuple, n_classes: int, one_hot: bool = False):
    from ..data.augment import augmentation_layers
    from .surgery import feature_extractor

    extractor = feature_extractor(model)
    key = stage1_key(source, config, ds, model)
    aug = augmentation_layers(aug_opts, config.seed) if aug_opts else None
    f_train = cached(
        cache_key(split="train", copies=copies, augment=aug_opts, **key),
        into=computed(extractor, train[0], config.batch_size, aug, copies, config.seed))
    train_ds = dataset(f_train, train[1], n_classes, config.batch_size, shuffle=True, seed=config.seed,
                                one_hot=one_hot)

    def split_features(split: str, images):
        return first_copy(cached(cache_key(split=split, copies=1, augment={}, **key),
                                 into=computed(extractor, images, config.batch_size)))

    def probabilities(split: str, images) -> np.ndarray:
        """The classifier's probabilities from the (cached) features of a split: the head alone."""
        from ..data.outputs import predict_probabilities

        return predict_probabilities(model.get_layer("head"), split_features(split, images), n_classes,
                                     config.batch_size)

    probabilities.features = split_features  # the baselines read the same cached features
    probabilities.extractor = extractor  # and compute the test split's with the same trace
    val_ds = None
    if len(val[0]):
        f_val = cached(cache_key(split="validation", copies=1, augment={}, **key),
                       into=computed(extractor, val[0], config.batch_size))
        # validation in batches of 4x the training's: the head's pass over stored features is cheap,
        # each step's fixed cost is not (the same loss and accuracy, in fewer steps an epoch)
        val_ds = dataset(f_val, val[1], n_classes, VAL_BATCHES * config.batch_size, one_hot=one_hot)
    return train_ds, val_ds, probabilities


def lookup(key: str):
    """The cached features under `key` (`mapped.DiskRows`), or None when there are none."""
    from ..data.mapped import DiskRows

    path = home.cache_dir() / "features" / f"{key}.npy"
    if not path.exists():
        return None
    try:
        rows = DiskRows(path)
    except (OSError, ValueError):
        return None
    cache.touch(path)
    return rows


def split_rows(extractor, key: dict, split: str, images, batch_size: int = 32):
    """The stage-1 features of every image of a split, unaugmented, [n, ...]: the stage-1 cache's
    entry (`key` is `stage1_key`'s), computed with `extractor` and cached when missing."""
    name = cache_key(split=split, copies=1, augment={}, **key)
    rows = lookup(name)
    if rows is None:
        rows = cached(name, into=computed(extractor, images, batch_size))
    return first_copy(rows)


def pooled_split(extractor, key: dict, split: str, images, batch_size: int = 32, keep=None) -> np.ndarray:
    """The stage-1 features of a split's images, pooled [n, c] (rows `keep` only, when given):
    read from the stage-1 cache entry of the whole split (`key` is `stage1_key`'s), else computed
    with `extractor`, the frozen backbone, and cached for the whole split; a sample (`keep`)
    without a cache entry is computed alone and not cached.

    The baselines read them: the pooled features of the pretrained backbone, as stage 1 saw them."""
    if keep is None:
        return pooled(split_rows(extractor, key, split, images, batch_size))
    rows = lookup(cache_key(split=split, copies=1, augment={}, **key))
    if rows is not None:
        return pooled(first_copy(rows)[np.asarray(keep)])
    part = images.read(keep) if hasattr(images, "read") else np.asarray(images)[np.asarray(keep)]
    return pooled(compute(extractor, part, batch_size)[0])


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
