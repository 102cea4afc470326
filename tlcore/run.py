"""A run of the run store as the public API hands it out (`tlcore.Run`): its folder, status,
curves and model, and what can be done with it (evaluate, predict, explain, export, stop, wait);
training in a thread of this process while the caller draws the progress (`train_here`).

Every method calls the function the matching command calls (`evaluate_run`, `ship.predict`,
`explain_image`, `export_run`, `training.train.train`), so results equal the command line's.
"""
from __future__ import annotations

import io
import os
import sys
import threading
from pathlib import Path
from typing import Any, Iterable

from .core.errors import OptionError, TLCoreError

PathLike = str | os.PathLike
POLL_SECONDS = 0.25

class Evaluation(dict):
    """The dict `tlcore evaluate --json` prints (`accuracy`, `loss`, `per_class`,
    `confusion_matrix`, `misclassified`, ...), shown in Jupyter as tables."""

    def _repr_html_(self) -> str:
        from .notebook import evaluation_html

        return evaluation_html(self)


class Explanation(dict):
    """Grad-CAM of one image: `label`, `probability`, `overlay` (a PIL image), `heatmap` (an
    array in [0, 1] at the features' resolution), and `out` when the overlay was written."""

    def _repr_html_(self) -> str:
        from .notebook import image_html

        return image_html(self["overlay"], f"{self['label']} ({self['probability']:.3f})")


class Run:
    """One run of the run store: its folder, status, curves and model.

    Every command of the command line takes `run.run_dir` as its RUN. Returned by
    `tlcore.train`, `tlcore.load_run` and `tlcore.runs`; renders in Jupyter as a summary with
    its curves.

    Args:
        run_dir_or_id: the run's folder (as `tlcore train` prints it) or its id in the store.
        runs_dir: the runs folder to look the id up in (default: the home's `runs/`).

    Attributes:
        run_dir: the run's folder (a `Path`).
        run_id: its name.
        result: after a blocking `tlcore.train`, the dict `tlcore train --json` prints
            (`run_dir`, `state`, `epochs`, `val_accuracy`, `test_accuracy`, `seconds`,
            `warnings`); else None.
    """

    def __init__(self, run_dir_or_id: PathLike, runs_dir: PathLike | None = None):
        from .core.runs import RunStore

        self._run = RunStore(runs_dir).get(run_dir_or_id)
        self.run_dir: Path = self._run.path.resolve()
        self.result: dict | None = None

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def status(self) -> dict:
        """status.json as every reader sees it (`state`, `stage`, `epoch`, `batch`, `error`, ...);
        a live state whose process is gone reads as `interrupted`."""
        return self._run.status()

    @property
    def state(self) -> str:
        """queued, running, completed, failed, stopped or interrupted."""
        return self._run.state()

    @property
    def history(self) -> list[dict]:
        """One dict per finished epoch (metrics.jsonl): `stage`, `epoch`, `loss`, `accuracy`,
        `val_loss`, `val_accuracy`, `lr`, `seconds`."""
        return self._run.metrics()

    @property
    def config(self) -> dict:
        """The run's options by `TrainConfig` field name, as config.json records them (resolved:
        canonical backbone name, input size, absolute paths); `tlcore.train(**run.config)`
        repeats the run."""
        return dict(self._run.config().get("options") or {})

    @property
    def labels(self) -> list[str]:
        """The class names in the model's output order."""
        return self._run.labels()

    def summary(self) -> dict:
        """The row `tlcore runs --json` shows for this run."""
        return self._run.summary()

    def evaluate(self, split: str | None = "test", data: PathLike | None = None, tta: str = "none") -> Evaluation:
        """Score the run's model on a split of its dataset (`tlcore evaluate`).

        Args:
            split: `"test"` or `"validation"`; None takes test when the dataset has one, else
                validation (the command line's default).
            data: another dataset with the same classes (default: the run's own; then the
                result is also written to the run's evaluation.json).
            tta: test-time augmentation, `"none"`, `"flip"` or `"flip+crops"`.

        Returns:
            An `Evaluation`, the dict `tlcore evaluate --json` prints.
        """
        from .evaluation.evaluate import evaluate_run

        return Evaluation(evaluate_run(self.run_dir, None if data is None else str(data), split, tta=tta))

    def predict(self, items: Any, top_k: int = 5, tta: str = "none", smooth: float | None = None) -> list[dict]:
        """Classify images with the run's model (`tlcore predict`).

        Args:
            items: an image or a list of them: file paths, folders (walked), video files,
                image bytes (a file's contents), or RGB arrays `[height, width, 3]` (0-255) or PIL
                images. Every kind is read by the engine's one image reader, as training read them.
            top_k: classes kept per image, most probable first.
            tta: test-time augmentation, `"none"`, `"flip"` or `"flip+crops"`.
            smooth: video files only: a time constant in seconds (e.g. 0.3) for a steady label,
                as `tlcore predict VIDEO --smooth`: each frame's `top` is the smoothed ranking, the
                shown label first; None (the default) classifies every frame on its own.

        Returns:
            One dict per image, as `tlcore predict --json` prints: `{"image", "top": [{"label",
            "probability"}]}` (`error` instead of `top` for an unreadable image). `image` is
            the path, or `"bytes:N"` / `"array:N"` for the N-th item given as bytes or an array.
        """
        from .ship.predict import RunModel, check_tta, predict

        items = _as_list(items)
        if not items:
            raise OptionError("items", "must name at least one image. Received: []")
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise OptionError("top_k", f"must be a whole number, 1 or more. Received: {top_k!r}")
        check_tta(tta)
        if smooth is not None:
            from .ship.smooth import check_seconds

            smooth = check_seconds(smooth)
        if all(isinstance(item, (str, os.PathLike)) for item in items):
            return predict(self.run_dir, [str(item) for item in items], top_k, tta=tta, smooth=smooth)
        rm = RunModel(self.run_dir)
        return _predict_items(rm, items, top_k, tta)

    def explain(self, image: Any, label: str | None = None, out: PathLike | None = None) -> Explanation:
        """Grad-CAM: where the model looked to decide (`tlcore explain`).

        Args:
            image: a file path, image bytes, an RGB array or a PIL image.
            label: explain this class (default: the predicted one).
            out: also write the overlay to this .png file.

        Returns:
            An `Explanation` (`label`, `probability`, `overlay`, `heatmap`, and `out` if written).
        """
        from .evaluation.explain import explain_image
        from .ship.predict import RunModel

        if out is not None and Path(out).suffix.lower() != ".png":
            raise OptionError("out", f"must be a .png file. Received: {out}")
        rm = RunModel(self.run_dir)
        result = Explanation(explain_image(rm, _image_source(image, "image"), label))
        if out is not None:
            result["overlay"].save(Path(out).expanduser())
            result["out"] = str(out)
        return result

    def export(self, path: PathLike, format: str = "keras", quantize: str = "none", io: str = "float32",
               include: str | None = None, data: PathLike | None = None) -> dict:
        """Export the run's model, or the run as a script (`tlcore export`).

        Args:
            path: the file to write (a folder for `savedmodel`).
            format: keras, savedmodel, tflite, onnx, bundle (a .zip with models, labels and a
                model card) or code (a standalone Keras training script).
            quantize: TFLite: none, float16, dynamic or int8.
            io: TFLite input/output type: float32, int8 or uint8 (the last two with int8).
            include: a bundle's formats, comma-separated (default keras,tflite,onnx).
            data: a folder of images to check the export on (default: the run's dataset).

        Returns:
            The dict `tlcore export --json` prints: `path`, `files`, `bytes`, `top1_agreement`,
            `max_probability_difference`, ...
        """
        from .ship.export import export_run

        return export_run(self.run_dir, format, path, quantize, None, io, include,
                          None if data is None else str(data))

    def stop(self) -> dict:
        """Ask a queued or running training to stop within one batch (`tlcore stop`); it then
        saves its model and reads as `stopped`.

        Returns:
            `{"run_dir", "stop_requested", "state"}`: whether a stop was asked, and the state then.
        """
        state = self.state
        if state in ("queued", "running"):
            self._run.request_stop()
        return {"run_dir": str(self._run.path), "stop_requested": state in ("queued", "running"), "state": state}

    def twin_from_scratch(self, progress: bool = True) -> "Run":
        """Train this run's twin from random weights: the same architecture, data and epochs,
        every layer training from the first epoch (`tlcore train --twin-from-scratch`), to see
        what pretraining brought. Blocks like `tlcore.train`.

        Raises:
            TLCoreError: the run has a backbone file or no pretrained weights to compare with.
        """
        from .recipe.config import TrainConfig
        from .training.twin import twin_config

        twin = twin_config(TrainConfig.from_dict(self.config))
        return train_here(twin, self._run.path.parent, None, False, progress)

    def wait(self, progress: bool = True) -> "Run":
        """Wait until the run is no longer queued or running, showing its progress.

        Interrupting the wait (Ctrl+C, the notebook's stop button) stops waiting only; the run
        goes on in its own process (`run.stop()` stops it).
        """
        from .notebook import Progress

        shown = Progress(progress)
        try:
            while self.state in ("queued", "running"):
                shown.update(self._run.raw_status(), self._run.metrics())
                threading.Event().wait(POLL_SECONDS)
        finally:
            shown.close(self._run.raw_status(), self._run.metrics())
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.run_dir == self.run_dir

    def __hash__(self) -> int:
        return hash(self.run_dir)

    def __repr__(self) -> str:
        return f"Run({str(self.run_dir)!r}, state={self.state!r})"

    def _repr_html_(self) -> str:
        from .notebook import run_html

        return run_html(self.summary(), self.history, self.status)


def train_here(config, runs_dir, run_id, queue: bool, progress: bool, trainer=None) -> Run:
    """`training.train.train` (or `trainer`, called the same way: several runs, each announced)
    in a thread of this process while this thread draws its progress from the run store; an
    interrupt becomes the stop request of the run in progress."""
    from .core.runs import Run as StoredRun
    from .notebook import Progress
    from .training.train import train as train_run

    box: dict[str, Any] = {}

    def announce(path: Path) -> None:
        box["run"] = StoredRun(path)  # its status.json comes next
        if box.get("stop"):  # interrupted before the run existed
            box["run"].request_stop()

    def work() -> None:
        try:
            import keras

            keras.config.disable_interactive_logging()  # per thread: Keras' epoch lines; the bars say it
            box["result"] = (trainer or train_run)(config, runs_dir=None if runs_dir is None else str(runs_dir),
                                                   run_id=run_id, queue=queue, announce=announce)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc
        finally:
            done.set()

    # An Event, not Thread.join: an interrupt inside join can make is_alive() say False while the
    # thread still runs (Python 3.11).
    done = threading.Event()
    shown = Progress(progress)
    threading.Thread(target=work, name="tlcore-train", daemon=True).start()
    try:
        while not done.is_set():
            try:
                done.wait(POLL_SECONDS)
                if "run" in box:
                    shown.update(box["run"].raw_status(), box["run"].metrics())
            except KeyboardInterrupt:
                box["stop"] = True
                if "run" in box:
                    box["run"].request_stop()
                print("Stopping the run after this batch...", file=sys.stderr, flush=True)
    finally:
        if "run" in box:
            shown.close(box["run"].raw_status(), box["run"].metrics())
        else:
            shown.close()
    if "error" in box:
        raise box["error"]
    run = Run(box["result"]["run_dir"])
    run.result = box["result"]
    return run


def _as_list(items: Any) -> list:
    import numpy as np

    if isinstance(items, (str, os.PathLike, bytes, bytearray, memoryview)):
        return [items]
    if isinstance(items, np.ndarray) and items.ndim in (2, 3):
        return [items]
    if hasattr(items, "getpixel"):  # a PIL image
        return [items]
    if isinstance(items, np.ndarray):
        return list(items)
    if isinstance(items, Iterable):
        return list(items)
    raise OptionError("items", f"must be image paths, bytes or arrays. Received: {type(items).__name__}")


def _image_source(item: Any, name: str):
    """What the engine's image reader takes for `item`: a path, a bytes stream or a PIL image."""
    import numpy as np
    from PIL import Image

    if isinstance(item, (str, os.PathLike)):
        path = Path(item).expanduser()
        if not path.is_file():
            raise TLCoreError(f"No such image: {item}")
        return path
    if isinstance(item, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(item))
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, np.ndarray):
        arr = item
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
            raise OptionError(name, f"arrays must be [height, width, 3] RGB (0-255). Received shape {item.shape}")
        if arr.dtype != np.uint8:
            arr = np.clip(np.rint(arr.astype(np.float64)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr)
    raise OptionError(name, f"must be a path, image bytes, an RGB array or a PIL image. "
                      f"Received: {type(item).__name__}")


def _predict_items(rm, items: list, top_k: int, tta: str) -> list[dict]:
    """Predictions for a mix of paths, bytes and arrays, in the order given."""
    import numpy as np

    from .data.images import ImageProblem
    from .ship.predict import predict, top_labels

    out: list[list[dict]] = [[] for _ in items]
    arrays, where = [], []
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            out[i] = predict(rm.run.path, [str(item)], top_k, tta=tta)
            continue
        name = f"{'bytes' if isinstance(item, (bytes, bytearray, memoryview)) else 'array'}:{i}"
        try:
            arrays.append(rm.load(_image_source(item, "items")))
            where.append((i, name))
        except ImageProblem as exc:
            out[i] = [{"image": name, "top": [], "error": str(exc)}]
    if arrays:
        probs = rm.probabilities(np.stack(arrays), tta=tta)
        for (i, name), p in zip(where, probs):
            out[i] = [{"image": name, "top": top_labels(p, rm.labels, top_k)}]
    return [r for group in out for r in group]
