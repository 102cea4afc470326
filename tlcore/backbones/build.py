"""Build a catalog backbone with ImageNet weights, no weights, or a weights file."""
from __future__ import annotations

import collections
import contextlib
import functools
import os
from pathlib import Path
from typing import Iterator

from .catalog import get_backbone
from ..core.errors import OptionError, TLCoreError


@contextlib.contextmanager
def fresh_names() -> Iterator[None]:
    """Name layers as in a fresh process (`conv2d`, `conv2d_1`, ...), whatever was built before.

    Keras numbers auto-named layers per process; building InceptionV3 twice would otherwise
    give `conv2d_94` the second time, and layer names are what users cut and unfreeze at.
    """
    from keras.src.backend.common import global_state

    saved = global_state.get_global_attribute("object_name_uids")
    global_state.set_global_attribute("object_name_uids", collections.defaultdict(int))
    try:
        yield
    finally:
        global_state.set_global_attribute("object_name_uids", saved)


def _constructor(name: str):
    import keras

    return getattr(keras.applications, get_backbone(name).name)


def keras_models_dir() -> Path:
    """Where Keras looks for (and caches) downloaded weight files."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "models"


class _Recorded(Exception):
    pass


def imagenet_weights_file(name: str, include_top: bool = False, input_size: int | None = None) -> str:
    """The file name Keras downloads for `name`'s ImageNet weights (without downloading).

    MobileNet and MobileNetV2 have one file per input size, so the size matters.
    """
    info = get_backbone(name)
    size = info.default_input_size if include_top or input_size is None else int(input_size)
    return _imagenet_file_cached(info.name, include_top, size)


@functools.lru_cache(maxsize=None)
def _imagenet_file_cached(name: str, include_top: bool, size: int) -> str:
    from keras.src.utils import file_utils

    seen: list[str] = []
    real = file_utils.get_file

    def record(fname=None, origin=None, *args, **kwargs):
        seen.append(fname or os.path.basename(origin or ""))
        raise _Recorded()

    file_utils.get_file = record
    try:
        with fresh_names():
            _constructor(name)(include_top=include_top, weights="imagenet", input_shape=(size, size, 3))
    except _Recorded:
        pass
    finally:
        file_utils.get_file = real
    if not seen:
        raise TLCoreError(f"Keras publishes no ImageNet weights for {name}.")
    return seen[0]


def imagenet_weights_cached(name: str, include_top: bool = False, input_size: int | None = None) -> bool:
    return (keras_models_dir() / imagenet_weights_file(name, include_top, input_size)).exists()


def check_input_size(name: str, input_size: int | None) -> int:
    info = get_backbone(name)
    if input_size is None:
        return info.default_input_size
    try:
        size = int(input_size)
    except (TypeError, ValueError):
        raise OptionError("input_size", f"must be a whole number of pixels. Received: {input_size!r}")
    if size < info.min_input_size:
        raise TLCoreError(
            f"{info.name} needs an input size of at least {info.min_input_size} pixels. "
            f"Received: input_size={size}. Its default is {info.default_input_size}."
        )
    if size > 2048:
        raise OptionError("input_size", f"{size} is too large; use at most 2048 pixels.")
    return size


def build_backbone(name: str, input_size: int | None = None, weights: str | None = "imagenet",
                   include_top: bool = False):
    """A `keras.applications` model, layers named as in a fresh process.

    Args:
        name: catalog name (case-insensitive).
        input_size: square input size in pixels; the backbone's default when None.
        weights: ``"imagenet"``, ``None``/``"none"``, or a path to a Keras weights file of the
            same architecture (with or without its top).
        include_top: keep the 1000-class ImageNet classifier.

    Raises:
        TLCoreError: unknown name, bad size, weights that cannot be had or do not fit.
    """
    info = get_backbone(name)
    size = check_input_size(info.name, input_size)
    if include_top:
        size = info.default_input_size if input_size is None else size
    ctor = _constructor(info.name)
    shape = (size, size, 3)
    if weights in (None, "none", "None", ""):
        with fresh_names():
            return ctor(include_top=include_top, weights=None, input_shape=shape)
    if weights == "imagenet":
        return _build_imagenet(info.name, ctor, shape, include_top)
    return _build_from_file(info.name, ctor, shape, include_top, Path(weights))


def _build_imagenet(name, ctor, shape, include_top):
    try:
        with fresh_names():
            return ctor(include_top=include_top, weights="imagenet", input_shape=shape)
    except Exception as exc:  # Keras raises plain Exceptions for failed downloads
        text = str(exc)
        if "fetch" not in text.lower() and "url" not in text.lower() and "download" not in text.lower():
            raise TLCoreError(f"Could not build {name} with ImageNet weights: {text.splitlines()[0]}")
        fname = imagenet_weights_file(name, include_top, shape[0])
        raise OptionError(
            "weights",
            f"Could not download the ImageNet weights for {name} (no network?). Keras wants the "
            f"file {fname!r}: copy it into {keras_models_dir()} and run again, or pass the file "
            "itself with {option} PATH (or {option} none to train from scratch)."
        ) from None


def _build_from_file(name, ctor, shape, include_top, path: Path):
    if not path.exists():
        raise TLCoreError(
            f"Weights file not found: {path}. Give the path of a Keras weights file "
            "(.h5 or .weights.h5), 'imagenet' or 'none'."
        )
    if path.is_dir():
        raise OptionError("weights", f"must be a file, not a folder: {path}")
    with fresh_names():
        model = ctor(include_top=include_top, weights=None, input_shape=shape)
    first_error = _try_load(model, path)
    if first_error is None:
        return model
    if not include_top:
        # A file saved with the ImageNet top: load it into the full model, copy by name.
        with fresh_names():
            size = get_backbone(name).default_input_size
            try:
                full = ctor(include_top=True, weights=None, input_shape=(size, size, 3))
            except Exception:
                full = None
        if full is not None and _try_load(full, path) is None:
            _copy_weights_by_name(full, model)
            return model
    raise TLCoreError(
        f"The weights file {path.name} does not fit {name} "
        f"({'with' if include_top else 'without'} its top): {first_error.rstrip('.')}. "
        f"Use a file saved from keras.applications.{name}, or 'imagenet' / 'none'."
    )


def _try_load(model, path: Path) -> str | None:
    try:
        model.load_weights(str(path))
        return None
    except Exception as exc:  # h5py, ValueError, OSError: all mean "does not fit"
        text = str(exc).strip().splitlines()
        return (text[0] if text else type(exc).__name__)[:300]


def _copy_weights_by_name(source, target) -> None:
    for layer in target.layers:
        if not layer.weights:
            continue
        src = source.get_layer(layer.name)
        layer.set_weights(src.get_weights())
