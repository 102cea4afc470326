"""Files a backbone is built from: saved weights files, saved model files, ImageNet weights.

Uploaded weights files live in ``TLCORE_HOME/weights``, uploaded models in
``TLCORE_HOME/models`` (`home.weights_dir`, `home.models_dir`); a save never overwrites an
earlier file of the same name.
"""
from __future__ import annotations

import os
import socket
import threading
import unicodedata
from pathlib import Path

from ..core import home
from ..core.errors import OptionError, TLCoreError

WEIGHTS_SUFFIXES = (".h5", ".hdf5", ".keras")
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
WEIGHTS_ONLY_SUFFIX = ".weights.h5"

# The file Keras downloads for a backbone's ImageNet weights without the top (include_top=False),
# as `build.imagenet_weights_file` records it from Keras itself (a test checks that they agree).
# Known without importing TensorFlow, so a training that cannot have its weights fails at once.
# MobileNet and MobileNetV2 have one file per input size; other sizes use the 224 one.
_PER_SIZE = {"MobileNet": ("mobilenet_1_0_{}_tf_no_top.h5", (128, 160, 192, 224)),
             "MobileNetV2": ("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{}_no_top.h5",
                             (96, 128, 160, 192, 224))}
IMAGENET_FILES = {
    "Xception": "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "VGG16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "VGG19": "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "ResNet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "ResNet101": "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "ResNet152": "resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "ResNet50V2": "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "ResNet101V2": "resnet101v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "ResNet152V2": "resnet152v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "InceptionV3": "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "InceptionResNetV2": "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "MobileNetV3Small": "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    "MobileNetV3Large": "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
    "DenseNet121": "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "DenseNet169": "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "DenseNet201": "densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "NASNetMobile": "nasnet_mobile_no_top.h5",
    "NASNetLarge": "nasnet_large_no_top.h5",
    **{f"EfficientNetB{i}": f"efficientnetb{i}_notop.h5" for i in range(8)},
    **{f"EfficientNetV2{v}": f"efficientnetv2-{v.lower()}_notop.h5" for v in ("B0", "B1", "B2", "B3", "S", "M", "L")},
    **{f"ConvNeXt{v}": f"convnext_{v.lower()}_notop.h5" for v in ("Tiny", "Small", "Base", "Large", "XLarge")},
}

# Where Keras downloads ImageNet weights from; `weights_reachable` tries to connect there.
# TLCORE_WEIGHTS_PROBE=HOST:PORT points the probe elsewhere (tests: a closed loopback port).
WEIGHTS_HOST = ("storage.googleapis.com", 443)
PROBE_ENV = "TLCORE_WEIGHTS_PROBE"
PROBE_SECONDS = 3.0


def imagenet_file(name: str, input_size: int | None = None) -> str:
    """The file name of `name`'s ImageNet weights without the top (no TensorFlow needed).

    Raises:
        TLCoreError: `name` is not a catalog backbone.
    """
    from .catalog import get_backbone

    info = get_backbone(name)
    if info.name in _PER_SIZE:
        pattern, sizes = _PER_SIZE[info.name]
        size = int(input_size) if input_size is not None else info.default_input_size
        return pattern.format(size if size in sizes else 224)
    return IMAGENET_FILES[info.name]


def weights_status(name: str, input_size: int | None = None) -> dict:
    """Whether the ImageNet weights file for backbone `name` is already on this machine.

    Args:
        name: catalog name.
        input_size: the chosen input size; MobileNet and MobileNetV2 have one file per size
            (96, 128, 160, 192, 224), so the file Keras wants depends on it.

    Returns:
        ``{file, folder, path, cached}``.
    """
    from .build import keras_models_dir

    folder = keras_models_dir()
    fname = imagenet_file(name, input_size)
    return {"file": fname, "folder": str(folder), "path": str(folder / fname),
            "cached": (folder / fname).exists()}


def probe_target(target: str | None = None) -> tuple[str, int]:
    """(host, port) the reachability probe tries: `target` ("HOST:PORT"), else $TLCORE_WEIGHTS_PROBE,
    else where Keras downloads from.

    Raises:
        TLCoreError: a target that is not HOST:PORT.
    """
    text = target if target is not None else os.environ.get(PROBE_ENV)
    if not text:
        return WEIGHTS_HOST
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise TLCoreError(f"{PROBE_ENV} must be HOST:PORT, such as 127.0.0.1:9. Received: {text!r}")
    return host.strip("[]"), int(port)


def weights_reachable(target: str | None = None, timeout: float = PROBE_SECONDS) -> str | None:
    """Whether the ImageNet weights could be downloaded now: None when a connection to the
    download host (`probe_target`) opens within `timeout` seconds, name resolution included;
    otherwise the reason, in words. Never waits longer than `timeout`."""
    host, port = probe_target(target)
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            outcome.append(f"cannot resolve {host} ({exc.strerror or exc})")
            return
        last = "no address"
        for family, kind, proto, _, address in infos:
            try:
                with socket.socket(family, kind, proto) as sock:
                    sock.settimeout(timeout)
                    sock.connect(address)
                outcome.append(None)
                return
            except OSError as exc:
                last = exc.strerror or str(exc) or type(exc).__name__
        outcome.append(f"cannot connect to {host}:{port} ({last})")

    worker = threading.Thread(target=attempt, daemon=True, name="weights-probe")
    worker.start()
    worker.join(timeout)  # getaddrinfo has no timeout of its own: a stuck resolver is left behind
    if not outcome:
        return f"{host}:{port} did not answer within {timeout:g} s"
    return outcome[0]


def check_imagenet_weights(name: str, input_size: int | None = None, target: str | None = None) -> None:
    """Make sure a build of `name` with ImageNet weights can get them: the file is on this machine,
    or its download host answers (`weights_reachable`, at most 3 s). Imports no TensorFlow, so a
    training checks this before it makes its run folder.

    Raises:
        OptionError: (weights) the file is absent and cannot be downloaded; the message names the
            file, the folder it goes into and the other choices.
    """
    status = weights_status(name, input_size)
    if status["cached"]:
        return
    why = weights_reachable(target)
    if why is None:
        return
    from .catalog import get_backbone

    raise OptionError("weights", (
        f"{{option}} imagenet: the ImageNet weights of {get_backbone(name).name} are not on this machine "
        f"and cannot be downloaded now ({why}; no network?). Copy {status['file']} into {status['folder']} "
        "and run again, give a weights file with {option} PATH, or train from random weights with "
        "{option} none."))


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
