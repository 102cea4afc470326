"""Pure helpers the studio app needs on top of the engine: tables, counts, paths, progress.

Nothing here imports streamlit (or plotly); every function takes plain values and returns
plain values, so the app's pages stay thin and these rules are tested without a browser.
TensorFlow and Keras are imported only by the functions that build or run layers.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import home
from .catalog import CATALOG
from .errors import TLCoreError
from .layers import LayerInfo
from .model import HeadSpec
from .runs import LIVE_STATES, Run, RunStore

WEIGHTS_SUFFIXES = (".h5", ".hdf5", ".keras")
_DRIVE = re.compile(r"^[A-Za-z]:")


# --- the catalog -------------------------------------------------------------------

def catalog_rows() -> list[dict]:
    """The backbone catalog as rows of the Keras Applications table (one dict per backbone).

    Accuracies are in percent; missing figures stay None (Keras publishes none).
    """
    rows = []
    for b in CATALOG.values():
        rows.append({
            "Model": b.name,
            "Size (MB)": b.size_mb,
            "Top-1 accuracy": None if b.top1 is None else round(b.top1 * 100, 1),
            "Top-5 accuracy": None if b.top5 is None else round(b.top5 * 100, 1),
            "Parameters (M)": None if b.params is None else round(b.params / 1e6, 1),
            "Depth": b.depth,
            "Input size": b.default_input_size,
            "Min input": b.min_input_size,
            "Preprocessing": b.preprocessing,
        })
    return rows


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
    from .backbones import imagenet_weights_file, keras_models_dir

    folder = keras_models_dir()
    try:
        with warnings.catch_warnings():  # Keras warns that sizes without their own file use the 224 one
            warnings.simplefilter("ignore", UserWarning)
            fname = imagenet_weights_file(name, False, input_size)
    except TLCoreError as exc:
        return {"file": None, "folder": str(folder), "path": None, "cached": False, "error": str(exc)}
    return {"file": fname, "folder": str(folder), "path": str(folder / fname),
            "cached": (folder / fname).exists()}


def weights_dir() -> Path:
    """Where uploaded weights files are kept: ``TLCORE_HOME/weights``."""
    return home.home() / "weights"


def save_weights_file(filename: str, data: bytes, folder: str | os.PathLike | None = None) -> Path:
    """Save an uploaded weights file under `folder` (default `weights_dir()`), never outside it.

    The name is reduced to its last path part; an existing file of the same name gets a
    ``-2``, ``-3``, ... suffix rather than being overwritten.

    Raises:
        TLCoreError: empty file, or a name that is not a Keras weights file.
    """
    base = _nfc(Path(str(filename).replace("\\", "/")).name).strip().lstrip(".")
    if not base or not base.lower().endswith(WEIGHTS_SUFFIXES):
        raise TLCoreError(f"A weights file must end in {', '.join(WEIGHTS_SUFFIXES)} "
                          f"(such as mobilenet_v2.weights.h5). Received: {filename!r}")
    if not data:
        raise TLCoreError(f"The weights file {base!r} is empty; upload it again.")
    return _save_unique(base, data, Path(folder) if folder else weights_dir())


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
    for suffix in (".weights.h5", ".h5", ".hdf5", ".keras"):
        if lower.endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    return name, ""


def _newest_first(out_dir: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files in `out_dir` whose names end in one of `suffixes`, newest first."""
    if not out_dir.is_dir():
        return []
    files = [p for p in out_dir.iterdir() if p.is_file() and p.name.lower().endswith(suffixes)]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


def list_weights_files(folder: str | os.PathLike | None = None) -> list[Path]:
    """Weights files saved earlier, newest first."""
    return _newest_first(Path(folder) if folder else weights_dir(), WEIGHTS_SUFFIXES)


# --- your own model as the backbone ------------------------------------------------

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def models_dir() -> Path:
    """Where uploaded backbone models are kept: ``TLCORE_HOME/models``."""
    return home.home() / "models"


def save_model_file(filename: str, data: bytes, folder: str | os.PathLike | None = None) -> Path:
    """Save an uploaded model file (.keras or .h5) under `folder` (default `models_dir()`).

    The name is reduced to its last path part and never overwrites an earlier upload.

    Raises:
        TLCoreError: empty, a weights-only file, or not a .keras / .h5 name.
    """
    base = _nfc(Path(str(filename).replace("\\", "/")).name).strip().lstrip(".")
    lower = base.lower()
    if lower.endswith(".weights.h5"):
        raise TLCoreError(f"{base} holds weights only, not a model. Use it as a weights file of a "
                          "Keras Applications backbone (Weights: Upload a weights file) instead.")
    if not base or not lower.endswith(MODEL_SUFFIXES):
        raise TLCoreError(f"A model file must end in {', '.join(MODEL_SUFFIXES)} "
                          f"(saved with model.save). Received: {filename!r}")
    if not data:
        raise TLCoreError(f"The model file {base!r} is empty; upload it again.")
    return _save_unique(base, data, Path(folder) if folder else models_dir())


def list_model_files(folder: str | os.PathLike | None = None) -> list[Path]:
    """Model files uploaded earlier, newest first."""
    return _newest_first(Path(folder) if folder else models_dir(), MODEL_SUFFIXES)


def backbone_file_stamp(path: str | os.PathLike) -> int:
    """A number that changes when the model file (or SavedModel folder) changes, for caches."""
    p = Path(path)
    try:
        if p.is_dir():
            return max([p.stat().st_mtime_ns] + [f.stat().st_mtime_ns for f in p.rglob("*")])
        return p.stat().st_mtime_ns
    except OSError:
        return 0


def source_summary(source, table: Sequence[LayerInfo]) -> dict:
    """What the studio found in a loaded backbone file, in plain values.

    Returns:
        ``{layers, nested, input_size, preprocessing, default_cut, default_cut_name, portable,
        kind}``; ``nested`` counts layers that came from inside nested models.
    """
    default = source.default_cut if source.default_cut is not None else len(table) - 1
    return {"layers": len(table), "nested": sum("/" in row.name for row in table),
            "input_size": int(source.input_size), "preprocessing": source.preprocessing,
            "default_cut": int(default), "default_cut_name": table[default].name if table else None,
            "portable": bool(source.portable), "kind": source.provenance.get("kind", "file")}


# --- layers, cut and unfreeze ------------------------------------------------------

def cut_options(table: Sequence[LayerInfo]) -> list[int]:
    """Indexes where the backbone may be cut: every clean cut point, and always the last layer."""
    out = [row.index for row in table if row.cut_point]
    last = len(table) - 1
    if last > 0 and (not out or out[-1] != last):
        out.append(last)
    return out


def default_unfreeze_index(n_layers: int) -> int:
    """The engine's default start of fine-tuning (`plan.default_unfreeze_index`)."""
    from .plan import default_unfreeze_index as owner

    return owner(n_layers)


def index_of(table: Sequence[LayerInfo], spec, default: int) -> int:
    """Index of a layer given by name or index in `table`; `default` when None or unknown."""
    if spec in (None, ""):
        return default
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().lstrip("-").isdigit()):
        i = int(spec)
        return i % len(table) if -len(table) <= i < len(table) else default
    for row in table:
        if row.name == spec:
            return row.index
    return default


def filter_layers(table: Sequence[LayerInfo], search: str = "", types: Iterable[str] = (),
                  blocks: Iterable[str] = ()) -> list[LayerInfo]:
    """Rows whose name, type or block contains `search` (case-insensitive), of the given types
    and blocks (all when empty)."""
    needle = (search or "").strip().lower()
    types, blocks = set(types), set(blocks)
    return [row for row in table
            if (not needle or needle in row.name.lower() or needle in row.type.lower()
                or needle in row.block.lower())
            and (not types or row.type in types) and (not blocks or row.block in blocks)]


def block_summary(table: Sequence[LayerInfo]) -> list[dict]:
    """One row per block, in order: first and last layer index, layer count, parameters, and
    whether the block ends at a clean cut point."""
    out: list[dict] = []
    for row in table:
        if out and out[-1]["block"] == row.block:
            cur = out[-1]
            cur["last"] = row.index
            cur["last layer"] = row.name
            cur["layers"] += 1
            cur["params"] += row.params
            cur["ends at cut point"] = row.cut_point
        else:
            out.append({"block": row.block, "first": row.index, "last": row.index,
                        "last layer": row.name, "layers": 1, "params": row.params,
                        "ends at cut point": row.cut_point})
    return out


def parse_dense(text: str | Sequence[int] | None) -> tuple[int, ...]:
    """Hidden dense layer sizes from text such as ``"1024, 256"`` (empty means none).

    Raises:
        TLCoreError: anything that is not a list of positive whole numbers.
    """
    if text is None:
        return ()
    if not isinstance(text, str):
        values = list(text)
    else:
        values = [p for p in re.split(r"[\s,;]+", text.strip()) if p]
    out = []
    for v in values:
        try:
            units = int(str(v))
        except ValueError:
            raise TLCoreError(f"Dense layer sizes must be whole numbers separated by commas, "
                              f"such as 1024, 256. Received: {text!r}") from None
        if not 1 <= units <= 65536:
            raise TLCoreError(f"Each dense layer needs 1 to 65536 units. Received: {units}")
        out.append(units)
    if len(out) > 8:
        raise TLCoreError(f"At most 8 hidden dense layers. Received: {len(out)}")
    return tuple(out)


@dataclass(frozen=True)
class StageCounts:
    """Parameters of the assembled model (preprocessing, cut backbone, head) in both stages."""

    cut_index: int
    unfreeze_index: int | None
    feature_shape: tuple
    stage1: dict
    stage2: dict
    head: int
    backbone_trainable_stage2: int

    def to_dict(self) -> dict:
        return {"cut_index": self.cut_index, "unfreeze_index": self.unfreeze_index,
                "feature_shape": list(self.feature_shape), "stage1": self.stage1,
                "stage2": self.stage2, "head": self.head,
                "backbone_trainable_stage2": self.backbone_trainable_stage2}


def stage_parameter_counts(backbone, cut=None, unfreeze_from=None, head: HeadSpec | None = None,
                           num_classes: int = 2, train_bn: bool = False,
                           preprocessing: str = "none", fine_tune_epochs: int = 1,
                           paths: dict[str, str] | None = None,
                           default_cut: int | None = None) -> StageCounts:
    """Trainable and non-trainable parameters of the model training would build, per stage.

    Delegates to `train.plan` (what training itself builds and counts) on an already built
    backbone. The backbone's layers are shared with the planned model, so their `trainable`
    flags are restored afterwards, under a lock: the app shares one built backbone between
    sessions.

    Args:
        backbone: the uncut backbone (`build_backbone(..., weights=None)` is enough).
        cut: layer name or index where the backbone ends (None: the last layer).
        unfreeze_from: layer name or index in the uncut backbone from which stage 2 trains
            (None: the engine's default, the last third).
        head: pooling, dense layers and dropout.
        num_classes: classes of the dataset (2 gives one sigmoid unit).
        train_bn: whether BatchNormalization layers train in stage 2.
        preprocessing: the backbone family's preprocessing (`Backbone.preprocessing`).
        fine_tune_epochs: stage 2's epochs; with 0 nothing unfreezes.
        paths: for a backbone loaded from a file, layer name -> path inside nested models
            (`BackboneSource.paths`), so `cut` and `unfreeze_from` may be given as paths.
        default_cut: where training cuts when `cut` is None (`BackboneSource.default_cut`).

    Raises:
        TLCoreError: unknown layer, a cut that is not a clean cut point, a bad head.
    """
    from .config import TrainConfig
    from .plan import make_plan
    from .source import BackboneSource

    head = head or HeadSpec()
    config = TrainConfig(cut=cut, unfreeze_from=unfreeze_from, pooling=head.pooling,
                         dense=list(head.dense), dropout=head.dropout, train_bn=bool(train_bn),
                         fine_tune_epochs=int(fine_tune_epochs))
    source = BackboneSource(backbone, preprocessing, int(backbone.input_shape[1]), paths=dict(paths or {}),
                            default_cut=default_cut)
    planned = make_plan(config, int(num_classes), source)
    stage1, stage2 = planned.stages[1], planned.stages[2]
    keys = ("trainable", "non_trainable", "total")
    return StageCounts(cut_index=planned.cut_index, unfreeze_index=planned.unfreeze_index,
                       feature_shape=planned.feature_shape, stage1={k: stage1[k] for k in keys},
                       stage2={k: stage2[k] for k in keys}, head=planned.head_params,
                       backbone_trainable_stage2=stage2["backbone_trainable"])


def no_backbone_training_reason(counts: StageCounts, table: Sequence[LayerInfo],
                                train_bn: bool = False) -> str | None:
    """Why no backbone weight trains in stage 2 (None when some do), in plain words."""
    if counts.backbone_trainable_stage2 > 0:
        return None
    if counts.unfreeze_index is None:
        return "Stage 2 has no epochs, so nothing is unfrozen."
    if counts.unfreeze_index > counts.cut_index:
        return (f"The unfreeze point (layer {counts.unfreeze_index}, "
                f"{table[counts.unfreeze_index].name}) lies past the cut (layer {counts.cut_index}, "
                f"{table[counts.cut_index].name}): every layer it would unfreeze has been cut away.")
    span = table[counts.unfreeze_index:counts.cut_index + 1]
    if all(row.params == 0 for row in span):
        return (f"The layers from {table[counts.unfreeze_index].name} to "
                f"{table[counts.cut_index].name} hold no weights (the cut layer itself, like "
                "InceptionV3's mixed7, is a concatenation).")
    if not train_bn and all(row.params == 0 or row.type == "BatchNormalization" for row in span):
        return ("The only layers with weights between the unfreeze point and the cut are "
                "BatchNormalization layers, which stay frozen.")
    return "None of the layers between the unfreeze point and the cut has trainable weights."


# --- data: paths and uploads -------------------------------------------------------

def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def resolve_under_roots(path: str | os.PathLike, roots: Sequence[str | os.PathLike] | None = None) -> Path:
    """The folder `path` with symlinks resolved, if it lies inside one of `roots`.

    Args:
        path: what the user typed (``~`` is expanded; a relative path is taken from the first root).
        roots: allowed roots (default `home.data_roots()`), resolved as well.

    Raises:
        TLCoreError: outside every root (after resolving symlinks), missing, or not a folder.
    """
    allowed = [Path(r).expanduser().resolve() for r in (roots if roots is not None else home.data_roots())]
    text = str(path).strip()
    if not text:
        raise TLCoreError("Type the path of a dataset folder on the server.")
    if "\0" in text:
        raise TLCoreError("A folder path cannot contain a NUL character.")
    raw = Path(text).expanduser()
    if not raw.is_absolute() and allowed:
        raw = allowed[0] / raw
    resolved = raw.resolve()
    shown = ", ".join(str(r) for r in allowed) or "none"
    if not any(resolved == r or resolved.is_relative_to(r) for r in allowed):
        raise TLCoreError(f"{text} is outside the folders this server may read ({shown}). "
                          "Ask the administrator to add its folder to TLCORE_DATA_ROOTS, "
                          "or upload the dataset instead.")
    if not resolved.exists():
        raise TLCoreError(f"No such folder on the server: {resolved}")
    if not resolved.is_dir():
        raise TLCoreError(f"{resolved} is a file, not a folder; give the dataset's folder.")
    return resolved


def safe_relative_parts(name: str) -> tuple[str, ...] | None:
    """The path parts of an uploaded file's relative name, or None if it must be refused.

    Refused: absolute paths, drive letters, ``..`` anywhere, NUL bytes, empty names.
    ``.`` parts and empty parts are dropped; names are normalised to NFC.
    """
    raw = str(name).replace("\\", "/")
    if not raw or "\0" in raw or raw.startswith("/"):
        return None
    parts = [_nfc(p) for p in raw.split("/")]
    if any(p == ".." for p in parts) or any(_DRIVE.match(p) for p in parts):
        return None
    parts = [p for p in parts if p not in ("", ".")]
    return tuple(parts) or None


def upload_folder_name(names: Iterable[str], default: str = "dataset") -> str:
    """The uploaded folder's own name: the first path part all files share (else `default`)."""
    firsts = set()
    for name in names:
        parts = safe_relative_parts(name)
        if parts and len(parts) > 1:
            firsts.add(parts[0])
        else:
            return default
    return firsts.pop() if len(firsts) == 1 else default


def write_uploaded_files(files: Iterable[tuple[str, bytes]], dest: str | os.PathLike) -> list[dict]:
    """Write uploaded (relative name, content) pairs below `dest`, keeping relative paths.

    Returns:
        problems ``[{file, reason}]`` for names that were refused (``..``, absolute paths,
        clashes); everything else is written.
    """
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    real_root = os.path.realpath(root)
    problems: list[dict] = []
    for name, data in files:
        parts = safe_relative_parts(name)
        if parts is None:
            problems.append({"file": str(name), "reason": "path leads outside the folder, refused"})
            continue
        out = root.joinpath(*parts)
        if os.path.commonpath([real_root, os.path.realpath(out.parent)]) != real_root:
            problems.append({"file": str(name), "reason": "path leads outside the folder, refused"})
            continue
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "xb") as f:
                f.write(data)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            problems.append({"file": str(name), "reason": "another file or folder has the same name, skipped"})
    return problems


def import_uploaded_folder(files: Sequence[tuple[str, bytes]], datasets_dir=None) -> dict:
    """Import an uploaded folder (relative name, content pairs) as a managed dataset.

    The files are written to a temporary folder first (relative paths kept, ``..`` refused),
    then `importer.import_dataset` copies them into the datasets folder and scans them.

    Returns:
        `import_dataset`'s result, with refused names added to ``problems``.
    """
    from .importer import import_dataset

    if not files:
        raise TLCoreError("No files were uploaded; choose a folder of class folders.")
    name = upload_folder_name([n for n, _ in files])
    tmp_root = home.home() / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="upload-", dir=tmp_root))
    try:
        problems = write_uploaded_files(files, tmp)
        result = import_dataset(tmp, datasets_dir, name=name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["problems"] = problems + list(result.get("problems", []))
    return result


def import_uploaded_zip(filename: str, data: bytes, datasets_dir=None) -> dict:
    """Import an uploaded .zip (its bytes) as a managed dataset named after the file."""
    from .importer import import_dataset

    base = _nfc(Path(str(filename).replace("\\", "/")).name) or "dataset.zip"
    if not base.lower().endswith(".zip"):
        raise TLCoreError(f"Upload a .zip file. Received: {filename!r}")
    tmp_root = home.home() / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="upload-", dir=tmp_root))
    try:
        path = tmp / base
        path.write_bytes(data)
        return import_dataset(path, datasets_dir, name=Path(base).stem)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sample_files(ds, per_class: int = 6, split: str = "train") -> dict[str, list[str]]:
    """Up to `per_class` image paths of each class (from `split`, else any split)."""
    out: dict[str, list[str]] = {c: [] for c in ds.classes}
    for s in (split, "train", "validation", "test"):
        for path, label in ds.files.get(s, []):
            bucket = out[ds.classes[label]]
            if len(bucket) < per_class and path not in bucket:
                bucket.append(path)
    return out


def thumbnail(path: str | os.PathLike, size: int = 96) -> np.ndarray | None:
    """A square RGB thumbnail read the studio's way (centre crop), or None if unreadable."""
    from .images import ImageProblem, load_image

    try:
        return load_image(path, size, "crop")
    except (ImageProblem, OSError):
        return None


def display_image(source, max_side: int = 320) -> np.ndarray | None:
    """An image (path or file-like) read the studio's way, scaled to fit `max_side`, for showing.

    Returns None when it cannot be read.
    """
    from .images import ImageProblem, open_rgb

    try:
        if hasattr(source, "seek"):
            source.seek(0)
        im = open_rgb(source)
        im.thumbnail((max_side, max_side))
        return np.asarray(im, dtype=np.uint8)
    except (ImageProblem, OSError):
        return None
    finally:
        if hasattr(source, "seek"):
            source.seek(0)


def augmentation_preview(image: np.ndarray, options: dict, n: int = 6, seed: int = 0) -> list[np.ndarray]:
    """`n` augmented copies of one uint8 RGB image, with the layers training would use."""
    import keras

    from .data import augmentation_layers

    layers = augmentation_layers(options, seed=seed)
    if not layers:
        return [image.copy() for _ in range(n)]
    batch = np.repeat(np.asarray(image, dtype="float32")[None], n, axis=0)
    x = batch
    for layer in layers:
        x = layer(x, training=True)
    out = np.clip(keras.ops.convert_to_numpy(x), 0, 255).astype("uint8")
    return list(out)


def dataset_size(counts: dict) -> int:
    """Images in a `Dataset.counts()` result, over every split and class."""
    return int(sum(sum(per_class.values()) for per_class in counts.values()))


# --- the demo dataset and webcam datasets ------------------------------------------

DEMO_NAME = "demo-shapes"
SPLIT_WORDS = ("train", "training", "validation", "valid", "val", "test", "testing")
_SNAP = re.compile(r"^(\d+)\.png$")


def demo_dataset_path(datasets_dir=None) -> Path:
    """Where the demo dataset lives: ``datasets/demo-shapes``."""
    return home.datasets_dir(datasets_dir) / DEMO_NAME


def ensure_demo_dataset(datasets_dir=None, classes: int = 4, per_class: int = 150) -> dict:
    """The demo dataset (`demo.make_demo_dataset`), made on first use; ``{path, created}``.

    It is written to a hidden folder first and renamed into place, so a half-made demo never
    shows up as a dataset (and a second click while the first is busy finds it complete).
    """
    from .demo import make_demo_dataset

    target = demo_dataset_path(datasets_dir)
    if target.is_dir() and any(target.iterdir()):
        return {"path": str(target), "created": False}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{DEMO_NAME}-{os.getpid()}-{threading.get_ident()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        make_demo_dataset(tmp, classes=classes, per_class=per_class)
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target.is_dir() and any(target.iterdir())):
                raise TLCoreError(f"Cannot create the demo dataset at {target}.") from None
            return {"path": str(target), "created": False}  # made meanwhile by another session
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"path": str(target), "created": True}


def check_name(name: str, what: str = "class") -> str:
    """A class or dataset name usable as one folder name (NFC, trimmed).

    Raises:
        TLCoreError: empty, hidden, a path, too long, or (for a class) a split folder's name,
            which would make the dataset read as train/validation/test folders.
    """
    text = _nfc(str(name or "")).strip()
    if not text:
        raise TLCoreError(f"Type a {what} name first.")
    if len(text) > 64:
        raise TLCoreError(f"A {what} name has at most 64 characters. Received: {len(text)}")
    if any(c in text for c in "/\\\0:*?\"<>|") or text.startswith(".") or text != text.strip("."):
        raise TLCoreError(f"A {what} name cannot contain / \\ : * ? \" < > | or start or end with a dot. "
                          f"Received: {text!r}")
    if what == "class" and text.lower() in SPLIT_WORDS:
        raise TLCoreError(f"{text!r} is the name of a split folder; a class called that would make the "
                          "dataset read as train/validation/test folders. Choose another name.")
    return text


def webcam_dataset(name: str = "webcam", datasets_dir=None) -> Path:
    """The managed folder of a webcam dataset, ``datasets/<name>`` (made by its first class)."""
    return home.datasets_dir(datasets_dir) / check_name(name, "dataset")


def add_class(root: str | os.PathLike, name: str) -> Path:
    """Create class folder `name` in a webcam dataset (nothing happens if it exists)."""
    folder = Path(root) / check_name(name, "class")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def dataset_classes(root: str | os.PathLike) -> list[str]:
    """Class folders of a flat dataset, sorted (as training orders them)."""
    p = Path(root)
    if not p.is_dir():
        return []
    return sorted(c.name for c in p.iterdir() if c.is_dir() and not c.name.startswith("."))


def snaps(root: str | os.PathLike, class_name: str) -> list[Path]:
    """The snaps of one class, in the order they were taken (1.png, 2.png, ...)."""
    folder = Path(root) / check_name(class_name, "class")
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), f) for f in folder.iterdir() if (m := _SNAP.match(f.name))]
    return [f for _, f in sorted(found)]


def snap_counts(root: str | os.PathLike) -> dict[str, int]:
    """Snaps per class of a webcam dataset."""
    return {c: len(snaps(root, c)) for c in dataset_classes(root)}


def save_snap(root: str | os.PathLike, class_name: str, data: bytes) -> Path:
    """Store one camera snap (JPEG or any image) as the class's next ``<n>.png``.

    The image is read the studio's way (EXIF orientation applied, RGB), so the file on disk
    is exactly what training will see.

    Raises:
        TLCoreError: not an image, or an unknown class.
    """
    import io

    from .images import ImageProblem, open_rgb

    folder = Path(root) / check_name(class_name, "class")
    if not folder.is_dir():
        raise TLCoreError(f"No class {class_name!r} in {Path(root).name}; add it first.")
    try:
        image = open_rgb(io.BytesIO(data))
    except ImageProblem as exc:
        raise TLCoreError(f"The snap is not a usable image: {exc}") from None
    existing = [int(m.group(1)) for f in folder.iterdir() if (m := _SNAP.match(f.name))]
    n = max(existing, default=0) + 1
    while True:
        target = folder / f"{n}.png"
        try:
            with open(target, "xb") as f:
                image.save(f, format="PNG")
            return target
        except FileExistsError:
            n += 1


def delete_snap(root: str | os.PathLike, path: str | os.PathLike) -> None:
    """Delete one snap; only ``<class>/<n>.png`` files directly inside the dataset `root`.

    Raises:
        TLCoreError: anything else.
    """
    base, target = Path(root).resolve(), Path(path)
    if target.is_symlink() or not _SNAP.match(target.name) or target.resolve().parent.parent != base \
            or not target.is_file():
        raise TLCoreError(f"{path} is not a snap of the dataset {base.name}; nothing deleted.")
    target.unlink()


def delete_class(root: str | os.PathLike, class_name: str) -> int:
    """Delete a class folder of a webcam dataset with its snaps; returns how many snaps went.

    Raises:
        TLCoreError: the class holds files that are not snaps (it is not a webcam class).
    """
    folder = Path(root) / check_name(class_name, "class")
    if not folder.is_dir():
        return 0
    others = [f.name for f in folder.iterdir() if not _SNAP.match(f.name)]
    if others:
        raise TLCoreError(f"{class_name} holds other files too ({', '.join(others[:3])}); delete it by hand.")
    gone = len(snaps(root, class_name))
    shutil.rmtree(folder)
    return gone


# --- quick start ------------------------------------------------------------------

QUICK_START = {"backbone": "MobileNetV2", "input_size": 96, "backbone_file": None, "weights": "imagenet",
               "cut": None, "unfreeze_from": None, "head_epochs": 5, "fine_tune_epochs": 2, "lr": 1e-3,
               "fine_tune_lr": None, "batch_size": 32, "pooling": "avg", "dense": [], "dropout": 0.2,
               "augment": "light", "flip": None, "rotation": None, "train_bn": False, "early_stopping": 3,
               "preset": None}
# Without ImageNet weights nothing can be transferred, so the quick start trains a small network
# from random weights instead: MobileNetV2 up to the expansion of block 6 (66 k weights, 8 x 8 x
# 192 features) at 64 px, every layer and BatchNorm training from the first epoch, with flips and
# any rotation, for 45 epochs. On the 600-image demo set this reaches about 0.9 test accuracy in
# 2-3 minutes on a 2-core CPU; the whole MobileNetV2, or its first 13 blocks, learn much more
# slowly from scratch.
QUICK_START_SCRATCH = dict(QUICK_START, input_size=64, weights="none", cut="block_6_expand_relu",
                           unfreeze_from="0", train_bn=True, head_epochs=0, fine_tune_epochs=45,
                           fine_tune_lr=1e-3, batch_size=16, augment="none", flip="both", rotation=180.0,
                           early_stopping=0)


def quick_start_options() -> dict:
    """The quick start's recommended settings: transfer learning from MobileNetV2 at 96 px when its
    ImageNet weights file is on this machine already, else a small network trained from scratch
    (`QUICK_START_SCRATCH`)."""
    status = weights_status("MobileNetV2", QUICK_START["input_size"])
    return dict(QUICK_START) if status["cached"] else dict(QUICK_START_SCRATCH)


# --- insight: presets, evaluation, ImageNet mode, sweeps --------------------------

def preset_form_options(name: str, current: dict | None = None) -> dict:
    """The options a preset puts into the form (`presets.apply_preset` with nothing explicit).

    Args:
        name: the preset.
        current: the options chosen so far. With your own model chosen (``backbone_file``) the
            backbone stays: the preset's backbone, input size, weights and layer names are left
            out. A preset that changes the backbone resets what belonged to the old one (input
            size, cut, unfreeze point, a weights file) unless it sets them itself.
    """
    from .presets import apply_preset

    current = current or {}
    opts = apply_preset(name, {})
    opts.pop("preset", None)
    if current.get("backbone_file"):
        for key in ("backbone", "input_size", "weights", "cut", "unfreeze_from"):
            opts.pop(key, None)
    elif "backbone" in opts:
        for key in ("input_size", "cut", "unfreeze_from"):
            opts.setdefault(key, None)
        if opts["backbone"] != current.get("backbone") and current.get("weights") not in (None, "imagenet", "none"):
            opts.setdefault("weights", "imagenet")  # a weights file fits only the backbone it came from
    return opts


def top_losses(evaluation: dict, n: int = 24) -> list[dict]:
    """The `n` misclassified images with the highest loss (most confidently wrong first)."""
    wrong = list(evaluation.get("misclassified") or [])
    wrong.sort(key=lambda m: -(m.get("loss") if m.get("loss") is not None else -np.log(
        max(1e-7, 1.0 - float(m.get("probability", 0.0))))))
    return wrong[:n]


def calibration_info(run: Run) -> dict | None:
    """The run's calibration.json (temperature and log-losses), or None if never calibrated."""
    from .jsonio import read_json

    return read_json(run.file("calibration.json"))


def imagenet_weights(weights) -> str:
    """The weights ImageNet mode classifies with: 'imagenet', or a weights file with the top.

    Raises:
        TLCoreError: no pretrained weights chosen (the untouched model would be random).
    """
    if weights in (None, "", "none"):
        raise TLCoreError("ImageNet mode classifies with the pretrained 1000-class model, but the "
                          "Backbone page has no pretrained weights chosen (None). Choose ImageNet, or "
                          "upload a weights file saved with the top, on the Backbone page.")
    return str(weights)


def list_sweeps(store: RunStore | None = None) -> list[str]:
    """Ids of the sweeps in the run store, newest first."""
    out: list[str] = []
    for run in (store or RunStore()).runs():
        parts = str((run.config().get("options") or {}).get("name") or "").split(":")
        if len(parts) == 4 and parts[0] == "sweep" and parts[1] not in out:
            out.append(parts[1])
    return out


def sweep_matrix(rows: Sequence[dict], cut_order: Sequence[str] = (),
                 unfreeze_order: Sequence[str] = ()) -> tuple[list[str], list[str], list[list]]:
    """(cuts, unfreeze points, validation accuracy [cut][unfreeze] or None) of sweep rows.

    Cuts and unfreeze points follow the given orders (layer order), then first appearance.
    """
    def order(values, preferred):
        seen = [str(v) for v in preferred if str(v) in values]
        return seen + [v for v in dict.fromkeys(values) if v not in seen]

    cuts = order([str(r["cut"]) for r in rows], cut_order)
    unfreezes = order([str(r["unfreeze_from"]) for r in rows], unfreeze_order)
    z: list[list] = [[None] * len(unfreezes) for _ in cuts]
    for r in rows:
        z[cuts.index(str(r["cut"]))][unfreezes.index(str(r["unfreeze_from"]))] = r.get("val_accuracy")
    return cuts, unfreezes, z


def best_sweep_row(rows: Sequence[dict]) -> dict | None:
    """The sweep run with the best validation accuracy (None until one has a score)."""
    scored = [r for r in rows if r.get("val_accuracy") is not None]
    return max(scored, key=lambda r: r["val_accuracy"]) if scored else None


# --- runs --------------------------------------------------------------------------

def newest_live_run(store: RunStore | None = None) -> Run | None:
    """The newest run that is running or queued (what a reloaded browser re-attaches to)."""
    store = store or RunStore()
    live = [r for r in store.runs() if r.state() in LIVE_STATES]
    if not live:
        return None
    running = [r for r in live if r.state() == "running"]
    return (running or live)[0]


def queued_runs(store: RunStore | None = None) -> list[Run]:
    """Runs waiting for the machine, oldest first (the order in which they will start)."""
    from .jobs import queued_runs as in_queue_order

    return in_queue_order(store)


def stage_boundary(metrics: Sequence[dict]) -> float | None:
    """The x position between the last stage-1 epoch and the first stage-2 epoch, if both ran."""
    s1 = [m["epoch"] for m in metrics if m.get("stage") == 1]
    s2 = [m["epoch"] for m in metrics if m.get("stage") == 2]
    if s1 and s2:
        return (max(s1) + min(s2)) / 2
    return None


def planned_boundary(options: dict) -> float | None:
    """Where stage 2 will start (x between epochs), from a run's options, if both stages run."""
    head, fine = int(options.get("head_epochs") or 0), int(options.get("fine_tune_epochs") or 0)
    return head + 0.5 if head and fine else None


def epoch_progress(status: dict, metrics: Sequence[dict], seen: dict | None = None,
                   now: float | None = None) -> tuple[dict, dict]:
    """Progress inside the current epoch and an estimate of the time left.

    Args:
        status: the run's status.json.
        metrics: its finished epochs.
        seen: what the previous call returned as its second value (the first batch count seen
            in this epoch and when), so the rate can be measured live; None at first.
        now: the current time (``time.time()``).

    Returns:
        ``({fraction, text, epoch_seconds_left, run_seconds_left}, seen)``.
    """
    now = time.time() if now is None else now
    stage, epoch = status.get("stage"), int(status.get("epoch") or 0)
    epochs_total = int(status.get("epochs_total") or 0)
    batch, batches = int(status.get("batch") or 0), status.get("batches_total")
    key = [status.get("pid"), stage, epoch]
    if not seen or seen.get("key") != key or batch < seen.get("batch", 0):
        seen = {"key": key, "batch": batch, "time": now}
    fraction = min(1.0, batch / batches) if batches else 0.0
    rate = None
    if batches and batch > seen["batch"] and now > seen["time"]:
        rate = (batch - seen["batch"]) / (now - seen["time"])  # batches per second
    finished = [m.get("seconds") for m in metrics if m.get("seconds")]
    per_epoch = float(np.mean(finished[-3:])) if finished else None
    epoch_left = None
    if batches:
        if rate:
            epoch_left = (batches - batch) / rate
        elif per_epoch:
            epoch_left = (1.0 - fraction) * per_epoch
    run_left = None
    if epoch_left is not None:
        full = per_epoch or (batches / rate if rate and batches else None)
        later = max(0, epochs_total - epoch)
        run_left = epoch_left + (later * full if full else 0.0)
    parts = []
    if stage in (1, 2):
        parts.append("Stage 1 · training the head" if stage == 1 else "Stage 2 · fine-tuning")
    elif stage == "evaluate":
        parts.append("Scoring the test images")
    if epoch and stage in (1, 2):
        parts.append(f"epoch {epoch}/{epochs_total}" if epochs_total else f"epoch {epoch}")
    if batches and stage in (1, 2):
        parts.append(f"batch {batch}/{batches}")
    if epoch_left is not None and stage in (1, 2):
        parts.append(f"about {format_seconds(epoch_left)} left in this epoch")
    if run_left is not None and stage in (1, 2) and epochs_total > epoch:
        parts.append(f"{format_seconds(run_left)} for the run")
    text = " · ".join(parts) or "Preparing: reading the images and building the model"
    return ({"fraction": fraction, "text": text, "epoch_seconds_left": epoch_left,
             "run_seconds_left": run_left}, seen)


def run_label(run: Run) -> str:
    """A short human label: id, optional name, state."""
    summary = run.summary()
    name = f" ({display_name(summary['name'])})" if summary.get("name") else ""
    return f"{run.run_id}{name} · {summary['state']}"


def display_name(name: str | None) -> str:
    """A run's name for people: a sweep's tag ``sweep:ID:CUT:UNFREEZE`` reads as words."""
    parts = str(name or "").split(":")
    if len(parts) == 4 and parts[0] == "sweep":
        return f"sweep {parts[1]}: cut {parts[2]}, unfreeze {parts[3]}"
    return str(name or "")


def export_file(run_dir, fmt: str, quantize: str = "none", runs_dir=None) -> tuple[str, bytes, dict]:
    """Export a run's model and return (download file name, bytes, export_run's report).

    The export is written to a temporary folder under the home and removed afterwards. A
    SavedModel folder comes back zipped (labels.txt and preprocessing.json inside it); a
    .keras or .tflite file comes back alone (the class names are inside the .keras model's
    run, and a TFLite user reads them from the run's labels.json).
    """
    from .export import export_run

    run = RunStore(runs_dir).get(run_dir)
    tmp_root = home.home() / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="export-", dir=tmp_root))
    try:
        if fmt == "keras":
            out = tmp / f"{run.run_id}.keras"
        elif fmt == "tflite":
            out = tmp / f"{run.run_id}{'' if quantize == 'none' else '-' + quantize}.tflite"
        else:
            out = tmp / f"{run.run_id}-savedmodel"
        report = export_run(run.path, fmt, out, quantize, runs_dir)
        if fmt == "savedmodel":
            archive = tmp / f"{run.run_id}-savedmodel.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
                for p in sorted(out.rglob("*")):
                    if p.is_file():
                        zf.write(p, Path(out.name) / p.relative_to(out))
            return archive.name, archive.read_bytes(), report
        return out.name, out.read_bytes(), report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- housekeeping ------------------------------------------------------------------

def folder_size(path: str | os.PathLike) -> int:
    """Bytes in the files below `path` (links not followed); 0 when it does not exist."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for f in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def list_datasets(datasets_dir=None) -> list[dict]:
    """Imported datasets: ``[{name, path, bytes, modified}]``, newest first."""
    root = home.datasets_dir(datasets_dir)
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        if p.is_dir() and not p.name.startswith(".") and not p.is_symlink():
            out.append({"name": p.name, "path": str(p), "bytes": folder_size(p),
                        "modified": p.stat().st_mtime})
    return sorted(out, key=lambda d: d["modified"], reverse=True)


def delete_dataset(path: str | os.PathLike, datasets_dir=None) -> None:
    """Delete an imported dataset; only folders directly inside the datasets folder.

    Raises:
        TLCoreError: the folder is not an imported dataset.
    """
    root = home.datasets_dir(datasets_dir).resolve()
    target = Path(path)
    if target.is_symlink() or target.resolve().parent != root or not target.is_dir():
        raise TLCoreError(f"{path} is not an imported dataset in {root}; only those can be deleted here.")
    shutil.rmtree(target)


def clear_cache() -> int:
    """Delete the cache folder's contents (decoded images, features); returns bytes freed."""
    root = home.cache_dir()
    freed = folder_size(root)
    if root.is_dir():
        for p in root.iterdir():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    return freed


# --- formatting --------------------------------------------------------------------

def format_count(n: int | None) -> str:
    """1838275 -> '1,838,275'."""
    return "—" if n is None else f"{int(n):,}"


def format_bytes(n: int | float | None) -> str:
    """Bytes in KB, MB or GB (powers of 1024)."""
    if n is None:
        return "—"
    n = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def format_seconds(seconds: float | None) -> str:
    """42 -> '42 s', 130 -> '2 min 10 s', 4000 -> '1 h 7 min'."""
    if seconds is None:
        return "—"
    s = int(round(max(0.0, float(seconds))))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def format_percent(x: float | None) -> str:
    return "—" if x is None else f"{100 * float(x):.1f}%"
