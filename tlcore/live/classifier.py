"""Live classification of a camera stream: the newest frame only, measured as it goes.

A camera hands frames faster than a model on a CPU may classify them. `LiveClassifier.submit`
never waits: it puts the frame in a one-frame slot (replacing one not yet taken, which is then
dropped), and a worker thread classifies whatever is in the slot when it is free. So the label
is always about a recent frame and the delay stays bounded by one classification; frames per
second count finished classifications. The label shown is steadied by `ship.smooth.Smoother` (a
moving average over time with hysteresis) when smoothing is on. A `Recorder` keeps frames at a
set rate for a few seconds (teach-by-showing's bursts). Nothing here knows about WebRTC or the page.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable

import numpy as np
from PIL import Image

from ..data.images import load_image
from ..ship.smooth import Smoother

FPS_WINDOW = 2.0  # seconds of finished classifications the fps is measured over


class Classifier:
    """What the live view classifies with: probabilities of RGB 0-255 images at `input_size`."""

    def __init__(self, probabilities: Callable[[np.ndarray], np.ndarray], labels: list[str], input_size: int,
                 resize: str = "stretch", model=None, name: str = ""):
        self.probabilities = probabilities
        self.labels = list(labels)
        self.input_size = int(input_size)
        self.resize = resize
        self.model = model  # a studio Keras model (Grad-CAM), or None
        self.name = name

    @classmethod
    def of_run(cls, rm) -> "Classifier":
        """A run's model (`predict.RunModel`): the same one-trace function `predict` uses."""
        return cls(rm.probabilities, rm.labels, rm.input_size, rm.resize, rm.model, rm.run.run_id)

    @classmethod
    def of_prototype(cls, proto) -> "Classifier":
        return cls(proto.probabilities, proto.labels, proto.input_size, proto.resize, None, "prototype")

    def warm_up(self) -> "Classifier":
        """Classify one blank image now, in this thread: the first call traces the function, which
        is slow, and in a server's worker thread can stall the whole process."""
        self.probabilities(np.zeros((1, self.input_size, self.input_size, 3), np.uint8))
        return self

    def prepare(self, frame) -> np.ndarray:
        """A camera frame (RGB uint8 [h, w, 3]) or a snapshot's file as the model's input, the one
        way every image is read (`images.load_image`).

        Raises:
            ImageProblem: a snapshot that is not a usable image.
        """
        return load_image(frame, self.input_size, self.resize)


class LiveClassifier:
    """Classifies the newest submitted frame in a worker thread; see the module's docstring.

    Args:
        classifier: a `Classifier`, replaceable at any time with `set_classifier`.
        top_k: labels kept per result.
        cam_every: seconds between Grad-CAM maps (None: no Grad-CAM).
        smooth: the label's time constant in seconds (`ship.smooth.Smoother`); None: every
            frame's own label.
    """

    def __init__(self, classifier: Classifier | None, top_k: int = 5, cam_every: float | None = None,
                 smooth: float | None = None):
        self._classifier = classifier
        self.top_k = int(top_k)
        self.cam_every = cam_every
        self._smoother = None if smooth is None else Smoother(smooth)
        self._slot: tuple[np.ndarray, float] | None = None
        self._cond = threading.Condition()
        self._result: dict | None = None
        self._cam: dict | None = None
        self._done: collections.deque = collections.deque()
        self._latencies: collections.deque = collections.deque(maxlen=30)
        self.submitted = 0
        self.dropped = 0
        self.classified = 0
        self.error: str | None = None
        self._closed = False
        self._last_cam = 0.0
        self._cam_thread: threading.Thread | None = None
        self._thread = threading.Thread(target=self._work, name="live-classifier", daemon=True)
        self._thread.start()

    # --- called from the camera's thread ------------------------------------------------
    def submit(self, frame: np.ndarray, captured: float | None = None) -> None:
        """Offer a frame (RGB uint8 [h, w, 3]); returns at once. An untaken older frame is dropped."""
        with self._cond:
            if self._slot is not None:
                self.dropped += 1
            self._slot = (frame, time.monotonic() if captured is None else captured)
            self.submitted += 1
            self._cond.notify()

    # --- read by the page ---------------------------------------------------------------
    def set_classifier(self, classifier: Classifier | None) -> None:
        with self._cond:
            self._classifier = classifier
            self._result, self._cam = None, None
            self._done.clear()
            if self._smoother is not None:
                self._smoother.reset()

    def set_smoothing(self, seconds: float | None) -> None:
        """Steady the label with this time constant (a new one starts afresh), or None for off."""
        with self._cond:
            if seconds is None:
                self._smoother = None
            elif self._smoother is None or self._smoother.seconds != float(seconds):
                self._smoother = Smoother(seconds)

    @property
    def smoothing(self) -> float | None:
        """The label's time constant in seconds, None when off."""
        return None if self._smoother is None else self._smoother.seconds

    def reset_smoothing(self) -> None:
        """The stream restarts: the next frame's label is shown as it is."""
        with self._cond:
            if self._smoother is not None:
                self._smoother.reset()

    @property
    def classifier(self) -> Classifier | None:
        return self._classifier

    def latest(self) -> dict | None:
        """{top, raw, fps, latency_ms, frame, model, classified, dropped} of the newest classification:
        `top` as shown (smoothed when smoothing is on), `raw` the frame's own."""
        with self._cond:
            if self._result is None:
                return None
            return {**self._result, "fps": self.fps(), "latency_ms": self.latency_ms(), "cam": self._cam,
                    "classified": self.classified, "dropped": self.dropped}

    def fps(self) -> float:
        """Classifications per second over the last FPS_WINDOW seconds (0 when stalled for 1 s)."""
        now = time.monotonic()
        done = [t for t in self._done if now - t <= FPS_WINDOW]
        if len(done) < 2 or now - done[-1] > 1.0 or done[-1] - done[0] < 0.5:
            return 0.0
        return (len(done) - 1) / max(done[-1] - done[0], 1e-6)

    def latency_ms(self) -> float | None:
        return float(np.median(self._latencies)) if self._latencies else None

    def cam(self) -> dict | None:
        return self._cam

    def wait(self, classified: int, timeout: float = 30.0) -> bool:
        """Block until `classified` frames in all have been classified (or the loop closed, or
        `timeout` seconds passed); True when they have."""
        with self._cond:
            self._cond.wait_for(lambda: self.classified >= classified or self._closed, timeout)
            return self.classified >= classified

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    # --- the worker ---------------------------------------------------------------------
    def _work(self) -> None:
        from ..ship.predict import top_labels
        from ..ship.smooth import ranked

        while True:
            with self._cond:
                while self._slot is None and not self._closed:
                    self._cond.wait(timeout=1.0)
                if self._closed:
                    return
                (frame, captured), self._slot = self._slot, None
                classifier = self._classifier
            if classifier is None or not classifier.labels:
                continue
            try:
                x = classifier.prepare(frame)
                probs = classifier.probabilities(x[None])[0]
                self.error = None
            except Exception as exc:  # a bad frame or a model being swapped: say it, keep going
                self.error = f"{type(exc).__name__}: {exc}"
                continue
            finished = time.monotonic()
            with self._cond:
                if classifier is not self._classifier:
                    continue
                raw = top_labels(probs, classifier.labels, self.top_k)
                top = raw if self._smoother is None else \
                    ranked(*self._smoother.update(probs, captured), classifier.labels, self.top_k)
                self._result = {"top": top, "raw": raw, "frame": frame,
                                "model": classifier.name, "captured": captured, "at": finished}
                self._done.append(finished)
                while self._done and finished - self._done[0] > FPS_WINDOW:
                    self._done.popleft()
                self._latencies.append((finished - captured) * 1000.0)
                self.classified += 1
                self._cond.notify_all()  # `wait`ers (the worker itself only waits for a frame)
            if self.cam_every and classifier.model is not None and finished - self._last_cam >= self.cam_every \
                    and (self._cam_thread is None or not self._cam_thread.is_alive()):
                # a thread of its own: a map takes several classifications' time, the label goes on
                self._last_cam = finished
                self._cam_thread = threading.Thread(target=self._gradcam, args=(classifier, x), daemon=True)
                self._cam_thread.start()

    def _gradcam(self, classifier: Classifier, x: np.ndarray) -> None:
        from ..evaluation.explain import gradcam

        try:
            heat, c, probs = gradcam(classifier.model, x)
            self._cam = {"heatmap": heat, "label": classifier.labels[c], "at": time.monotonic()}
        except Exception as exc:  # a cut without spatial features: no overlay, the label goes on
            self._cam = {"heatmap": None, "error": str(exc).splitlines()[0], "at": time.monotonic()}


def blend_cam(frame: np.ndarray, heatmap: np.ndarray | None, alpha: float = 0.45) -> np.ndarray:
    """The frame with the heatmap stretched over it (`explain.overlay`), as an array."""
    if heatmap is None:
        return frame
    from ..evaluation.explain import overlay

    return np.asarray(overlay(Image.fromarray(frame), heatmap, alpha))


class Recorder:
    """Keeps frames at `rate` per second for `seconds` (a burst), from `start` until full."""

    def __init__(self, seconds: float = 3.0, rate: float = 5.0):
        self.seconds, self.rate = float(seconds), float(rate)
        self._frames: list[np.ndarray] = []
        self._until: float | None = None
        self._next = 0.0
        self._lock = threading.Lock()
        self.label: str | None = None

    def start(self, label: str) -> None:
        with self._lock:
            self.label, self._frames = label, []
            self._until, self._next = time.monotonic() + self.seconds, 0.0

    @property
    def recording(self) -> bool:
        return self._until is not None and time.monotonic() < self._until

    @property
    def finished(self) -> bool:
        """A burst was started and its time is over (its frames wait in `take`)."""
        return self._until is not None and time.monotonic() >= self._until

    def offer(self, frame: np.ndarray) -> None:
        now = time.monotonic()
        with self._lock:
            if self._until is None or now >= self._until or now < self._next:
                return
            self._frames.append(frame)
            self._next = now + 1.0 / self.rate

    def count(self) -> int:
        return len(self._frames)

    def take(self) -> tuple[str | None, list[np.ndarray]]:
        """(label, frames) of the finished burst, once; the recorder is then idle."""
        with self._lock:
            label, frames = self.label, self._frames
            self._frames, self._until, self.label = [], None, None
        return label, frames
