"""Folder datasets: layouts, scanning, splits, decoding once, the tf.data pipeline, augmentation.

Two layouts: ``DATA/<class>/`` (split here, stratified by seed) and
``DATA/{train,validation|val,test}/<class>/``. Every image is decoded once (Pillow, in
threads, see `images.py`) into an uncompressed uint8 ``.npy`` file per split under the home's
``cache/images``, written chunk by chunk, and epochs then read batches from it by index
(`mapped.py`): memory follows the batch, not the number of images.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import unicodedata
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import cache as disk_cache
from ..core import home
from ..core.jsonio import write_json
from .splits import (DEFAULT_SEED, DEFAULT_TEST_SPLIT, DEFAULT_VAL_SPLIT, SPLIT_METHOD,
                     stratified_split as _stratified_split)
from ..core.errors import OptionError, TLCoreError
from .images import (ARCHIVE_EXTENSIONS, ImageProblem, RESIZE_MODES, check_image, is_ignored,
                     is_image_name, load_image)
from .mapped import CHUNK_BYTES, DecodedRows, DiskRows, NpyWriter, Rows, index_dataset

SPLITS = ("train", "validation", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation",
                  "val": "validation", "valid": "validation", "test": "test", "testing": "test"}
TINY_CLASS = 10
IMBALANCE_RATIO = 3.0


@dataclass
class Dataset:
    """A scanned dataset: which files belong to which split and class, and what was skipped."""

    root: Path
    layout: str
    classes: list[str]
    files: dict[str, list[tuple[str, int]]]
    problems: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    split_method: str = SPLIT_METHOD  # of a flat layout's split (splits.py)

    def counts(self) -> dict[str, dict[str, int]]:
        out = {}
        for split in SPLITS:
            c = Counter(label for _, label in self.files.get(split, []))
            out[split] = {name: int(c.get(i, 0)) for i, name in enumerate(self.classes)}
        return out

    def report(self) -> dict:
        return {"path": str(self.root), "layout": self.layout, "classes": self.classes,
                "counts": self.counts(), "problems": self.problems, "warnings": self.warnings}

    def fingerprint(self) -> str:
        """Changes when any file of the dataset is added, removed, renamed or modified."""
        h = hashlib.sha1()
        for split in SPLITS:
            for path, label in self.files.get(split, []):
                try:
                    st = os.stat(path)
                    h.update(f"{split}|{os.path.relpath(path, self.root)}|{label}|{st.st_size}|"
                             f"{st.st_mtime_ns}\n".encode())
                except OSError:
                    h.update(f"{split}|{path}|missing\n".encode())
        return h.hexdigest()[:16]


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not is_ignored(p.name)
                      and not p.is_symlink())
    except OSError:
        return []


def _has_images(folder: Path) -> bool:
    return any(is_image_name(p.name) for p in folder.rglob("*") if p.is_file())


def unwrap(root: Path) -> Path:
    """Descend through single top folders that hold everything (``cats_vs_dogs/train/...``)."""
    for _ in range(5):
        subs = _subdirs(root)
        files = [p for p in root.iterdir() if p.is_file() and not is_ignored(p.name)]
        if len(subs) == 1 and not any(is_image_name(p.name) for p in files) \
                and _SPLIT_ALIASES.get(subs[0].name.lower()) is None and _subdirs(subs[0]):
            root = subs[0]
        else:
            break
    return root


def _class_files(class_dir: Path, root: Path, problems: list[dict]) -> list[str]:
    files = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = sorted(d for d in dirnames if not is_ignored(d))
        for name in sorted(filenames):
            if is_ignored(name):
                continue
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                problems.append({"file": rel, "reason": "symbolic link, skipped"})
            elif Path(name).suffix.lower() in ARCHIVE_EXTENSIONS:
                problems.append({"file": rel, "reason": "archive inside the dataset, not expanded"})
            elif not is_image_name(name):
                problems.append({"file": rel, "reason": f"not an image file (extension "
                                 f"{Path(name).suffix or 'none'!s})"})
            else:
                files.append(str(path))
    return files


def _cores() -> int:
    """Threads for decoding: one per core this process may use. Pillow decodes without the GIL,
    and more threads only contend (2 cores: 2 threads 580-650 img/s, 4 threads 525-590)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 2


def _check_all(paths: list[str], root: Path, problems: list[dict]) -> set[str]:
    with ThreadPoolExecutor(max_workers=_cores()) as pool:
        reasons = list(pool.map(check_image, paths))
    bad = set()
    for path, reason in zip(paths, reasons):
        if reason:
            bad.add(path)
            problems.append({"file": str(Path(path).relative_to(root)), "reason": reason})
    return bad


def check_folder(data) -> Path:
    """The dataset folder as a Path; a clear error if it is missing or is a file."""
    root = Path(data).expanduser()
    if not root.exists():
        raise TLCoreError(f"Dataset folder not found: {root}. Give a folder with one sub-folder "
                          "per class, or with train/ and validation/ folders.")
    if not root.is_dir():
        raise TLCoreError(f"The dataset must be a folder, not a file: {root}. "
                          "Use `tlcore import` for a .zip.")
    return root


def scan(data, val_split: float = DEFAULT_VAL_SPLIT, test_split: float = DEFAULT_TEST_SPLIT, seed: int = DEFAULT_SEED,
         check_files: bool = True, split_method: str = SPLIT_METHOD) -> Dataset:
    """Scan a folder dataset in either layout.

    Args:
        data: the dataset folder.
        val_split, test_split: fractions held out per class in the ``DATA/<class>/`` layout;
            ignored where split folders exist.
        seed: makes the split repeatable.
        check_files: decode every image once and list those that cannot be used.

    Raises:
        TLCoreError: missing folder, no classes, fewer than two usable classes.
    """
    root = check_folder(data)
    for name, value in (("val_split", val_split), ("test_split", test_split)):
        if not 0.0 <= float(value) < 1.0:
            raise OptionError(name, f"must be at least 0 and below 1. Received: {value}")
    if val_split + test_split >= 0.9:
        raise OptionError("val_split", "{option} plus {option:test_split} must leave images to train on. "
                          f"Received: {val_split} + {test_split}")
    root = unwrap(root)
    problems: list[dict] = []
    warnings: list[str] = []
    subs = _subdirs(root)
    split_dirs = {}
    for d in subs:
        key = _SPLIT_ALIASES.get(d.name.lower())
        if key and key not in split_dirs:
            split_dirs[key] = d
    for stray in sorted(p.name for p in root.iterdir() if p.is_file() and not is_ignored(p.name)):
        problems.append({"file": stray, "reason": "file outside any class folder, skipped"})
    for link in sorted(p for p in root.rglob("*") if p.is_symlink() and p.is_dir()):
        problems.append({"file": str(link.relative_to(root)) + "/", "reason": "symbolic link, skipped"})

    if "train" in split_dirs:
        layout = "split"
        if "validation" not in split_dirs:
            warnings.append("No validation/ folder: 20% of train/ is held out for validation.")
        names = [_nfc(d.name) for d in _subdirs(split_dirs["train"])]
        classes = sorted(set(names))
        if not classes:
            raise TLCoreError(f"{split_dirs['train']} has no class folders. Put each class's "
                              "images in train/<class>/.")
        files: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
        index = {c: i for i, c in enumerate(classes)}
        for split, sdir in split_dirs.items():
            for cdir in _subdirs(sdir):
                label = index.get(_nfc(cdir.name))
                if label is None:
                    problems.append({"file": str(cdir.relative_to(root)) + "/",
                                     "reason": "class not in train/, skipped"})
                    continue
                files[split] += [(f, label) for f in _class_files(cdir, root, problems)]
            for stray in sorted(p.name for p in sdir.iterdir() if p.is_file() and not is_ignored(p.name)):
                problems.append({"file": f"{sdir.name}/{stray}", "reason": "file outside any class folder, skipped"})
        for other in subs:
            if other not in split_dirs.values():
                problems.append({"file": other.name + "/", "reason": "folder is not train, validation "
                                 "or test, skipped"})
    else:
        layout = "folders"
        classes = [_nfc(d.name) for d in subs]
        if not classes:
            raise TLCoreError(
                f"{root} has no class folders. Put each class's images in its own sub-folder "
                "(DATA/cats/, DATA/dogs/), or use DATA/train/<class>/ and DATA/validation/<class>/.")
        by_class = {i: _class_files(d, root, problems) for i, d in enumerate(subs)}
        files = {"all": [(f, i) for i, fs in by_class.items() for f in fs]}

    # Split first, then drop unusable files: the split of a file never depends on whether the
    # others were checked, so `scan`, training and evaluation always agree on it.
    if layout == "folders":
        by_class: dict[int, list[str]] = {i: [] for i in range(len(classes))}
        for f, label in files.pop("all"):
            by_class[label].append(f)
        files = _stratified_split(by_class, val_split, test_split, seed, root, split_method)
    elif not files.get("validation"):
        by_class = {i: [] for i in range(len(classes))}
        for f, label in files["train"]:
            by_class[label].append(f)
        split = _stratified_split(by_class, DEFAULT_VAL_SPLIT, 0.0, seed, split_dirs["train"], split_method)
        files["train"], files["validation"] = split["train"], split["validation"]
    all_paths = [f for split_files in files.values() for f, _ in split_files]
    bad = _check_all(sorted(all_paths), root, problems) if check_files else set()
    files = {s: [(f, l) for f, l in fs if f not in bad] for s, fs in files.items()}

    ds = Dataset(root=root, layout=layout, classes=classes, files=files, problems=problems,
                 split_method=split_method,
                 warnings=warnings)
    _add_warnings(ds)
    return ds


def _add_warnings(ds: Dataset) -> None:
    counts = ds.counts()
    total = {c: sum(counts[s][c] for s in SPLITS) for c in ds.classes}
    usable = [c for c, n in total.items() if n > 0]
    if len(usable) < 2:
        raise TLCoreError(
            f"A classifier needs at least 2 classes with images; {ds.root} has "
            f"{len(usable)} ({', '.join(usable) or 'none'}). Add a folder of images per class.")
    for c, n in total.items():
        if n == 0:
            ds.warnings.append(f"Class {c!r} has no usable images.")
        elif counts["train"][c] < TINY_CLASS:
            ds.warnings.append(f"Class {c!r} has only {counts['train'][c]} training images; "
                               f"aim for at least {TINY_CLASS * 2}.")
        if n > 0 and counts["validation"][c] == 0:
            ds.warnings.append(f"Class {c!r} has no validation images.")
    train = [n for n in counts["train"].values() if n > 0]
    if train and max(train) / min(train) > IMBALANCE_RATIO:
        ds.warnings.append(
            f"Classes are imbalanced (largest {max(train)} vs smallest {min(train)} training "
            "images); class weights (--class-weights auto) compensate.")
    seen: dict[str, str] = {}
    leaks = 0
    for split in SPLITS:
        for path, _ in ds.files.get(split, []):
            try:
                digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()
            except OSError:
                continue
            other = seen.get(digest)
            if other is not None and other != split:
                leaks += 1
            else:
                seen.setdefault(digest, split)
    if leaks:
        ds.warnings.append(f"{leaks} image(s) appear in more than one split (identical files): "
                           "validation and test scores will look better than they are.")


def class_weights(labels: np.ndarray, num_classes: int, mode: str = "auto") -> dict[int, float] | None:
    """Balanced class weights when `mode` is auto and the classes are imbalanced, else None."""
    if mode == "none":
        return None
    if mode != "auto":
        raise OptionError("class_weights", f"must be auto or none. Received: {mode!r}")
    counts = np.bincount(labels.astype(int), minlength=num_classes).astype(float)
    present = counts[counts > 0]
    if len(present) < 2 or present.max() / present.min() <= 1.5:
        return None
    total = counts.sum()
    return {i: float(total / (num_classes * c)) if c else 0.0 for i, c in enumerate(counts)}


def _cache_key(paths: list[str], size: int, resize: str) -> str:
    key = hashlib.sha1()
    for p in paths:
        try:
            st = os.stat(p)
            key.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            key.update(f"{p}|missing\n".encode())
    key.update(f"{size}|{resize}|v2".encode())
    return key.hexdigest()[:24]


def _decode_one(path: str, size: int, resize: str) -> tuple[np.ndarray | None, str | None]:
    try:
        return load_image(path, size, resize), None
    except ImageProblem as exc:
        return None, str(exc)
    except Exception as exc:  # never stop a run on one bad file
        return None, f"cannot decode: {exc}"


def _read_cached(stem: Path):
    """(rows, ok, problems) of a finished cache entry, or None."""
    npy, meta = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if not (npy.exists() and meta.exists()):
        return None
    try:
        info = json.loads(meta.read_text())
        rows = DiskRows(npy)
        if len(rows) != len(info["ok"]):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    disk_cache.touch(npy)
    disk_cache.touch(meta)
    return rows, [int(i) for i in info["ok"]], [dict(p) for p in info["problems"]]


def decode_images(paths: list[str], size: int, resize: str = "stretch",
                  cache: bool = True) -> tuple[np.ndarray | Rows, list[int], list[dict]]:
    """Decode and resize every image once, into a file of the home's cache read by position.

    With `cache`, the images go chunk by chunk into an uncompressed ``cache/images/<key>.npy``
    (with ``<key>.json``: which paths decoded, the problems), never more than a chunk in memory,
    and come back as `mapped.DiskRows` (array-like, rows read from the file on demand); the next
    run with the same files reads it again. A split whose decoded size exceeds the cache's cap
    (TLCORE_CACHE_MAX) is not stored: it comes back as `mapped.DecodedRows`, decoded again each
    time it is read (its `streamed` is True). Without `cache`, a plain uint8 array.

    Returns:
        (images uint8 [n, size, size, 3], indexes of the paths that decoded, problems)
    """
    if resize not in RESIZE_MODES:
        raise OptionError("resize", f"must be one of {', '.join(RESIZE_MODES)}. Received: {resize!r}")
    limit = disk_cache.max_bytes() if cache else 0  # a bad TLCORE_CACHE_MAX, before any work
    row_bytes = size * size * 3
    chunk = max(1, CHUNK_BYTES // row_bytes)
    ok: list[int] = []
    problems: list[dict] = []
    if not cache:
        images = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
        with ThreadPoolExecutor(max_workers=_cores()) as pool:
            for i, (arr, reason) in enumerate(pool.map(lambda p: _decode_one(p, size, resize), paths)):
                if arr is None:
                    problems.append({"file": paths[i], "reason": reason})
                else:
                    images[i] = arr
                    ok.append(i)
        return (images[ok] if len(ok) != len(paths) else images), ok, problems

    folder = home.cache_dir() / "images"
    stem = folder / _cache_key(paths, size, resize)
    found = _read_cached(stem)
    if found is not None:
        return found
    if len(paths) * row_bytes > limit:  # too large to keep: checked now, decoded at every read
        with ThreadPoolExecutor(max_workers=_cores()) as pool:
            reasons = list(pool.map(check_image, paths))
        for i, reason in enumerate(reasons):
            if reason:
                problems.append({"file": paths[i], "reason": reason})
            else:
                ok.append(i)
        return DecodedRows([paths[i] for i in ok], size, resize, threads=_cores()), ok, problems

    writer = None
    tmp = folder / f".{stem.name}.{os.getpid()}.{threading.get_ident()}.tmp.npy"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writer = NpyWriter(tmp, (size, size, 3), np.uint8)
    except OSError:
        writer = None
    kept: list[np.ndarray] = []  # only when the cache folder cannot be written
    with ThreadPoolExecutor(max_workers=_cores()) as pool:
        for start in range(0, len(paths), chunk):
            part = paths[start:start + chunk]
            block = []
            for i, (arr, reason) in enumerate(pool.map(lambda p: _decode_one(p, size, resize), part),
                                              start=start):
                if arr is None:
                    problems.append({"file": paths[i], "reason": reason})
                else:
                    block.append(arr)
                    ok.append(i)
            if not block:
                continue
            if writer is not None:
                try:
                    writer.append(np.stack(block))
                    continue
                except OSError:  # a full disk: the rest streams from the files
                    writer.abort()
                    writer = None
            kept.append(np.stack(block))
    if writer is None:
        if sum(len(k) for k in kept) == len(ok):
            images = np.concatenate(kept) if kept else np.zeros((0, size, size, 3), np.uint8)
            return images, ok, problems
        return DecodedRows([paths[i] for i in ok], size, resize, threads=_cores()), ok, problems
    try:
        writer.close()
        os.replace(tmp, stem.with_suffix(".npy"))
        write_json(stem.with_suffix(".json"), {"ok": ok, "problems": problems, "size": size,
                                               "resize": resize}, durable=False)
        rows = DiskRows(stem.with_suffix(".npy"))  # open before `enforce` may delete older entries
        disk_cache.enforce(limit)
        return rows, ok, problems
    except OSError:
        tmp.unlink(missing_ok=True)
        return DecodedRows([paths[i] for i in ok], size, resize, threads=_cores()), ok, problems


def split_arrays(ds: Dataset, split: str, size: int, resize: str = "stretch",
                 cache: bool = True) -> tuple[np.ndarray, np.ndarray, list[str], list[dict]]:
    """(images, labels, paths, problems) of one split, images decoded once."""
    pairs = ds.files.get(split, [])
    paths = [p for p, _ in pairs]
    images, ok, problems = decode_images(paths, size, resize, cache)
    labels = np.array([pairs[i][1] for i in ok], dtype=np.int64)
    return images, labels, [paths[i] for i in ok], problems


def make_dataset(images, labels: np.ndarray, num_classes: int, batch_size: int,
                 shuffle: bool = False, augment: list | None = None, seed: int = DEFAULT_SEED,
                 one_hot: bool = False, mix=None, shard: tuple[int, int] | None = None):
    """A tf.data pipeline over decoded images (an array, or `mapped.Rows` such as a split's cache
    file): a seeded per-epoch permutation of indexes, batches read by index in parallel, augment
    and `mix` (a function of a batch's images and targets, MixUp/CutMix; train only), prefetch.
    `shard` (workers, index): one worker's share of each batch of `batch_size` (the global
    batch), read from its own rows only (`mapped.index_dataset`)."""
    import tensorflow as tf

    from .mapped import PREFETCH_BATCHES
    from .outputs import targets

    y = targets(labels, num_classes, one_hot)
    ds = index_dataset(images, y, batch_size, shuffle=shuffle, seed=seed, shard=shard)
    ds = ds.map(lambda x, t: (tf.cast(x, tf.float32), t), num_parallel_calls=_cores())
    if augment:
        def apply(x, t):
            for layer in augment:
                x = layer(x, training=True)
            return tf.clip_by_value(x, 0.0, 255.0), t
        ds = ds.map(apply, num_parallel_calls=_cores())
    if mix is not None:
        ds = mix(ds)
    return ds.prefetch(PREFETCH_BATCHES)
