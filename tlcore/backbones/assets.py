"""Files a backbone is built from: saved weights files, saved model files, ImageNet weights.

Uploaded weights files live in ``TLCORE_HOME/weights``, uploaded models in
``TLCORE_HOME/models`` (`home.weights_dir`, `home.models_dir`); a save never overwrites an
earlier file of the same name.
"""
from __future__ import annotations

import os
import unicodedata
import warnings
from pathlib import Path

from ..core import home
from ..core.errors import TLCoreError

WEIGHTS_SUFFIXES = (".h5", ".hdf5", ".keras")
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
WEIGHTS_ONLY_SUFFIX = ".weights.h5"


def weights_status(name: str, input_size: int | None = None) -> dict:
    """Whether the ImageNet weights file for backbone `name` is already on this machine.

    Args:
        name: catalog name.
        input_size: the chosen input size; MobileNet and MobileNetV2 have one file per size
            (96, 128, 160, 192, 224), so the file Keras wants depends on it.

    Returns:
        ``{file, folder, path, cached}``; ``file`` is None (and ``error`` says why) when Keras
        publishes no ImageNet weights for the backbone.
    """
    from .build import imagenet_weights_file, keras_models_dir

    folder = keras_models_dir()
    try:
        with warnings.catch_warnings():  # Keras warns that sizes without their own file use the 224 one
            warnings.simplefilter("ignore", UserWarning)
            fname = imagenet_weights_file(name, False, input_size)
    except TLCoreError as exc:
        return {"file": None, "folder": str(folder), "path": None, "cached": False, "error": str(exc)}
    return {"file": fname, "folder": str(folder), "path": str(folder / fname),
            "cached": (folder / fname).exists()}


def is_weights_only(filename: str) -> bool:
    """True for a name that Keras gives a weights-only file (``*.weights.h5``), not a model."""
    return _base_name(filename).lower().endswith(WEIGHTS_ONLY_SUFFIX)


def save_weights_file(filename: str, data: bytes, folder: str | os.PathLike | None = None) -> Path:
    """Save an uploaded weights file under `folder` (default `home.weights_dir()`), never outside it.

    The name is reduced to its last path part; an existing file of the same name gets a
    ``-2``, ``-3``, ... suffix rather than being overwritten.

    Raises:
        TLCoreError: empty `data`, or a `filename` that is not a Keras weights file's.
    """
    base = _base_name(filename)
    if not base or not base.lower().endswith(WEIGHTS_SUFFIXES):
        raise TLCoreError(f"A weights file must end in {', '.join(WEIGHTS_SUFFIXES)} "
                          f"(such as mobilenet_v2.weights.h5). Received: filename={filename!r}")
    if not data:
        raise TLCoreError(f"The weights file {base!r} is empty; upload it again.")
    return _save_unique(base, data, Path(folder) if folder else home.weights_dir())


def save_model_file(filename: str, data: bytes, folder: str | os.PathLike | None = None) -> Path:
    """Save an uploaded model file (.keras or .h5) under `folder` (default `home.models_dir()`).

    The name is reduced to its last path part and never overwrites an earlier upload.

    Raises:
        TLCoreError: empty `data`, a weights-only file, or a `filename` not ending in .keras / .h5.
    """
    base = _base_name(filename)
    lower = base.lower()
    if is_weights_only(base):
        raise TLCoreError(f"{base} holds weights only, not a model: pass it as the `weights` of a "
                          "Keras Applications backbone instead.")
    if not base or not lower.endswith(MODEL_SUFFIXES):
        raise TLCoreError(f"A model file must end in {', '.join(MODEL_SUFFIXES)} "
                          f"(saved with model.save). Received: filename={filename!r}")
    if not data:
        raise TLCoreError(f"The model file {base!r} is empty; upload it again.")
    return _save_unique(base, data, Path(folder) if folder else home.models_dir())


def list_weights_files(folder: str | os.PathLike | None = None) -> list[Path]:
    """Weights files saved earlier, newest first."""
    return _newest_first(Path(folder) if folder else home.weights_dir(), WEIGHTS_SUFFIXES)


def list_model_files(folder: str | os.PathLike | None = None) -> list[Path]:
    """Model files uploaded earlier, newest first."""
    return _newest_first(Path(folder) if folder else home.models_dir(), MODEL_SUFFIXES)


def backbone_file_stamp(path: str | os.PathLike) -> int:
    """A number that changes when the model file (or SavedModel folder) changes, for caches."""
    p = Path(path)
    try:
        if p.is_dir():
            return max([p.stat().st_mtime_ns] + [f.stat().st_mtime_ns for f in p.rglob("*")])
        return p.stat().st_mtime_ns
    except OSError:
        return 0


def _base_name(filename: str) -> str:
    """The last path part of an uploaded file's name, NFC, without leading dots."""
    name = Path(str(filename).replace("\\", "/")).name
    return unicodedata.normalize("NFC", name).strip().lstrip(".")


def _save_unique(base: str, data: bytes, out_dir: Path) -> Path:
    """Write `data` as `out_dir/base`, or `stem-2.ext`, `stem-3.ext`... if taken (never overwrites)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem, suffix = _split_suffix(base)
    for i in range(1, 10_000):
        target = out_dir / (base if i == 1 else f"{stem}-{i}{suffix}")
        try:
            with open(target, "xb") as f:
                f.write(data)
            return target
        except FileExistsError:
            continue
    raise TLCoreError(f"Too many files named {base!r} in {out_dir}.")


def _split_suffix(name: str) -> tuple[str, str]:
    lower = name.lower()
    for suffix in (WEIGHTS_ONLY_SUFFIX, ".h5", ".hdf5", ".keras"):
        if lower.endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    return name, ""


def _newest_first(out_dir: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files in `out_dir` whose names end in one of `suffixes`, newest first."""
    if not out_dir.is_dir():
        return []
    files = [p for p in out_dir.iterdir() if p.is_file() and p.name.lower().endswith(suffixes)]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)
