"""Load a run's model and classify images: files, folders, arrays; batched, one trace."""
from __future__ import annotations

import csv
import functools
import os
from pathlib import Path

import numpy as np

from ..core.errors import OptionError, TLCoreError
from ..data.images import ImageProblem, is_ignored, is_image_name, load_image
from ..data.outputs import predict_probabilities
from ..core.runs import RunStore

TTA_MODES = ("none", "flip", "flip+crops")
CROP = 0.875  # the centre crop of flip+crops keeps this fraction of each side, resized back


@functools.lru_cache(maxsize=4)
def _load_model_cached(path: str, mtime_ns: int):
    import keras

    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        raise TLCoreError(f"Cannot load the model {path}: {str(exc).splitlines()[0][:300]}") from None


def load_model(path: str | os.PathLike):
    """A .keras model loaded in safe mode (cached per file and modification time)."""
    path = str(path)
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        raise TLCoreError(f"Model file not found: {path}") from None
    return _load_model_cached(path, mtime)


class RunModel:
    """A run's model with its labels and input settings, ready to classify images."""

    def __init__(self, run_dir, runs_dir=None, model=None):
        run = RunStore(runs_dir).get(run_dir)
        self.run = run
        path = run.model_path()
        if model is None and path is None:
            raise TLCoreError(f"Run {run.run_id} has no model yet (state {run.state()}): wait until "
                              "its first epoch ends, or train it again.")
        self.model = model if model is not None else load_model(path)
        self.labels = run.labels()
        cfg = run.config()
        self.resize = (cfg.get("options") or {}).get("resize", "stretch")
        self.input_size = int(self.model.input_shape[1])
        if not self.labels:
            raise TLCoreError(f"Run {run.run_id} has no labels.json.")
        self._fn = None

    def probabilities(self, images: np.ndarray, batch_size: int = 32, tta: str = "none") -> np.ndarray:
        """Class probabilities [n, classes] for uint8/float RGB images [n, size, size, 3], averaged
        over the test-time augmentation views of `tta` (`tta_views`); the model is never changed."""
        check_tta(tta)
        step = max(1, batch_size) * 8  # images in memory at once (as float32, with their views)
        parts = []
        for start in range(0, max(len(images), 1), step):  # a split on disk is read chunk by chunk
            views = tta_views(images[start:start + step], tta)
            parts.append(np.mean([predict_probabilities(self.model, v, len(self.labels), batch_size)
                                  for v in views], axis=0))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def load(self, source) -> np.ndarray:
        return load_image(source, self.input_size, self.resize)


def check_tta(tta: str) -> str:
    if tta not in TTA_MODES:
        raise OptionError("tta", f"must be one of {', '.join(TTA_MODES)}. Received: {tta!r}")
    return tta


def tta_count(tta: str) -> int:
    """How many views (forward passes per image) `tta` costs."""
    return {"none": 1, "flip": 2, "flip+crops": 4}[check_tta(tta)]


def tta_views(images: np.ndarray, tta: str = "none") -> list[np.ndarray]:
    """The views of a batch that test-time augmentation averages over: the images; with `flip`
    also their mirror images; with `flip+crops` also the centre crop (`CROP` of each side,
    resized back) and its mirror image."""
    check_tta(tta)
    x = np.asarray(images, dtype=np.float32)
    views = [x]
    if tta == "none" or len(x) == 0:
        return views
    views.append(x[:, :, ::-1, :])
    if tta == "flip+crops":
        import tensorflow as tf

        h, w = x.shape[1:3]
        ch, cw = max(1, round(h * CROP)), max(1, round(w * CROP))
        top, left = (h - ch) // 2, (w - cw) // 2
        crop = tf.image.resize(x[:, top:top + ch, left:left + cw, :], (h, w)).numpy()
        views += [crop, crop[:, :, ::-1, :]]
    return views


def collect_images(paths) -> list[Path]:
    """Image files from files and folders (walked, hidden and litter files skipped)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not is_ignored(d))
                out += [Path(dirpath) / f for f in sorted(filenames)
                        if not is_ignored(f) and is_image_name(f)]
        elif p.exists():
            out.append(p)
        else:
            raise TLCoreError(f"No such image or folder: {p}")
    return out


def predict(run_dir, images, top_k: int = 5, csv_path=None, runs_dir=None, every: int = 1,
            tta: str = "none", smooth: float | None = None) -> list[dict]:
    """[{image, top: [{label, probability}]}] for every image (an `error` for unreadable ones);
    with `tta`, probabilities averaged over that many views of each image (`tta_views`).

    A video file among `images` gives one result per `every`-th frame instead, with `image`
    "VIDEO#frame=N" and `time` in seconds (`video.predict_video`); with `smooth` (seconds), each
    frame's `top` is the smoothed ranking of `smooth.Smoother`, the shown label first.
    """
    if int(top_k) < 1:
        raise OptionError("top_k", f"must be 1 or more. Received: {top_k}")
    if int(every) < 1:
        raise OptionError("every", f"must be 1 or more (1 keeps every frame). Received: {every}")
    if smooth is not None:
        from .smooth import check_seconds

        smooth = check_seconds(smooth)
    check_tta(tta)
    rm = RunModel(run_dir, runs_dir)
    videos = [p for p in images if Path(p).is_file() and _is_video(p)]
    if videos:
        from .video import predict_video

        out = []
        for p in images:
            out += predict_video(rm, Path(p), every, top_k, label=str(p), smooth=smooth) if p in videos \
                else _predict_files(rm, [p], top_k, tta)
        if csv_path:
            write_csv(out, csv_path, top_k)
        return out
    out = _predict_files(rm, images, top_k, tta)
    if csv_path:
        write_csv(out, csv_path, top_k)
    return out


def _is_video(path) -> bool:
    from .video import is_video_name

    return is_video_name(path)


def _predict_files(rm: "RunModel", images, top_k: int, tta: str = "none") -> list[dict]:
    files = collect_images(images)
    if not files:
        raise TLCoreError("No images found in what was given.")
    arrays, ok, results = [], [], []
    for i, f in enumerate(files):
        try:
            arrays.append(rm.load(f))
            ok.append(i)
        except ImageProblem as exc:
            results.append((i, {"image": str(f), "top": [], "error": str(exc)}))
    if arrays:
        probs = rm.probabilities(np.stack(arrays), tta=tta)
        for i, p in zip(ok, probs):
            results.append((i, {"image": str(files[i]), "top": top_labels(p, rm.labels, top_k)}))
    return [r for _, r in sorted(results, key=lambda t: t[0])]


def top_labels(probs: np.ndarray, labels: list[str], k: int) -> list[dict]:
    order = np.argsort(-probs)[: min(k, len(labels))]
    return [{"label": labels[j], "probability": float(probs[j])} for j in order]


def write_csv(results: list[dict], path, top_k: int) -> None:
    k = max([len(r["top"]) for r in results] + [0])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        header = ["image"]
        for j in range(1, k + 1):
            header += [f"label_{j}", f"probability_{j}"]
        w.writerow(header + ["error"])
        for r in results:
            row = [r["image"]]
            for j in range(k):
                if j < len(r["top"]):
                    row += [r["top"][j]["label"], f"{r['top'][j]['probability']:.6f}"]
                else:
                    row += ["", ""]
            w.writerow(row + [r.get("error", "")])
