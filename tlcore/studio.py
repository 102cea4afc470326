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
_SURGERY_LOCK = threading.Lock()


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


def weights_status(name: str) -> dict:
    """Whether the ImageNet weights file for backbone `name` is already on this machine.

    Returns:
        ``{file, folder, path, cached}``; ``file`` is None (and ``error`` says why) when Keras
        publishes no ImageNet weights for the backbone.
    """
    from .backbones import imagenet_weights_cached, imagenet_weights_file, keras_models_dir

    folder = keras_models_dir()
    try:
        fname = imagenet_weights_file(name)
    except TLCoreError as exc:
        return {"file": None, "folder": str(folder), "path": None, "cached": False, "error": str(exc)}
    return {"file": fname, "folder": str(folder), "path": str(folder / fname),
            "cached": imagenet_weights_cached(name)}


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
    out_dir = Path(folder) if folder else weights_dir()
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
    raise TLCoreError(f"Too many weights files named {base!r} in {out_dir}.")


def _split_suffix(name: str) -> tuple[str, str]:
    lower = name.lower()
    for suffix in (".weights.h5", ".h5", ".hdf5", ".keras"):
        if lower.endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    return name, ""


def list_weights_files(folder: str | os.PathLike | None = None) -> list[Path]:
    """Weights files saved earlier, newest first."""
    out_dir = Path(folder) if folder else weights_dir()
    if not out_dir.is_dir():
        return []
    files = [p for p in out_dir.iterdir() if p.is_file() and p.name.lower().endswith(WEIGHTS_SUFFIXES)]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


# --- layers, cut and unfreeze ------------------------------------------------------

def cut_options(table: Sequence[LayerInfo]) -> list[int]:
    """Indexes where the backbone may be cut: every clean cut point, and always the last layer."""
    out = [row.index for row in table if row.cut_point]
    last = len(table) - 1
    if last > 0 and (not out or out[-1] != last):
        out.append(last)
    return out


def default_unfreeze_index(n_layers: int) -> int:
    """The engine's default start of fine-tuning: the last third of the uncut backbone."""
    return (2 * int(n_layers)) // 3


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
                           preprocessing: str = "none", fine_tune_epochs: int = 1) -> StageCounts:
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

    Raises:
        TLCoreError: unknown layer, a cut that is not a clean cut point, a bad head.
    """
    from .layers import resolve_layer
    from .model import parameter_counts
    from .source import BackboneSource
    from .train import TrainConfig, plan

    head = head or HeadSpec()
    config = TrainConfig(cut=cut, unfreeze_from=unfreeze_from, pooling=head.pooling,
                         dense=list(head.dense), dropout=head.dropout, train_bn=bool(train_bn),
                         fine_tune_epochs=int(fine_tune_epochs))
    source = BackboneSource(backbone, preprocessing, int(backbone.input_shape[1]))
    cut_index = len(backbone.layers) - 1 if cut in (None, "") else resolve_layer(backbone, cut, "--cut")
    with _SURGERY_LOCK:
        saved = [(layer, layer.trainable) for layer in backbone.layers]
        saved_top = backbone.trainable
        try:
            planned = plan(config, int(num_classes), source)
            head_trainable = parameter_counts(planned["model"].get_layer("head"))["trainable"]
            feature_shape = tuple(planned["model"].get_layer("head").input_shape[1:])
        finally:
            backbone.trainable = saved_top
            for layer, flag in saved:
                layer.trainable = flag
    stage1, stage2 = planned["stage1"], planned["stage2"]
    return StageCounts(cut_index=cut_index, unfreeze_index=planned["unfreeze_index"],
                       feature_shape=feature_shape, stage1=stage1, stage2=stage2, head=head_trainable,
                       backbone_trainable_stage2=stage2["trainable"] - head_trainable)


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
    store = store or RunStore()
    return list(reversed([r for r in store.runs() if r.state() == "queued"]))


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
    name = f" ({summary['name']})" if summary.get("name") else ""
    return f"{run.run_id}{name} · {summary['state']}"


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
