"""The live loop (newest frame only, fps, latency), bursts, and the prototype classifier."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tlcore.live.classifier import Classifier, LiveClassifier, Recorder
from tlcore.live.prototype import Prototype


def _frame(value: int, size=(24, 32)) -> np.ndarray:
    return np.full((*size, 3), value, dtype=np.uint8)


def _slow_classifier(seconds: float, seen: list) -> Classifier:
    """Says 'bright' when the frame's mean is above 127, after `seconds` of 'work'."""
    def probs(x):
        seen.append(float(x.mean()))
        time.sleep(seconds)
        p = 1.0 if x.mean() > 127 else 0.0
        return np.array([[1 - p, p]])

    return Classifier(probs, ["dark", "bright"], 8)


def test_frames_are_dropped_not_queued_and_the_label_follows_the_newest():
    """A camera far faster than the model: while the model works on one frame, every frame that
    arrives replaces the one waiting, so only the newest is classified next (no queue builds up,
    whatever the machine's speed). Synchronised by events, not by time."""
    import threading

    busy, release, seen = threading.Event(), threading.Event(), []

    def probs(x):
        seen.append(float(x.mean()))
        busy.set()
        assert release.wait(30)
        p = 1.0 if x.mean() > 127 else 0.0
        return np.array([[1 - p, p]])

    live = LiveClassifier(Classifier(probs, ["dark", "bright"], 8), top_k=2)
    try:
        live.submit(_frame(10), captured=time.monotonic())
        assert busy.wait(30)  # the model holds the first frame
        for i in range(59):  # the camera goes on: dark frames
            live.submit(_frame(10), captured=time.monotonic())
        for i in range(60):  # then the scene changes
            live.submit(_frame(240), captured=time.monotonic())
        assert live.submitted == 120 and live.dropped == 118  # one held, one waiting, the rest dropped
        release.set()
        assert live.wait(2)
        result = live.latest()
        assert result["top"][0]["label"] == "bright"  # the newest frame, not the next in line
        assert seen == [10.0, 240.0]
        assert live.classified == 2 and live.classified + live.dropped == live.submitted
    finally:
        release.set()
        live.close()


def test_fps_is_zero_when_nothing_comes_and_a_new_classifier_starts_clean():
    seen: list = []
    live = LiveClassifier(_slow_classifier(0.0, seen))
    try:
        assert live.latest() is None and live.fps() == 0.0
        live.submit(_frame(200))
        assert live.wait(1)
        assert live.latest()["top"][0]["label"] == "bright"
        live.set_classifier(Classifier(lambda x: np.array([[0.2, 0.3, 0.5]]), ["a", "b", "c"], 8, name="new"))
        assert live.latest() is None
        live.submit(_frame(0))
        assert live.wait(2)
        assert live.latest()["top"][0]["label"] == "c" and live.latest()["model"] == "new"
        assert live.fps() == 0.0  # one classification since the change: no rate yet
    finally:
        live.close()


def test_a_burst_keeps_frames_at_its_rate():
    rec = Recorder(seconds=0.5, rate=10)
    rec.offer(_frame(1))  # not recording yet
    rec.start("cup")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.7:
        rec.offer(_frame(2))
        time.sleep(0.005)
    assert rec.finished and not rec.recording
    label, frames = rec.take()
    assert label == "cup" and 4 <= len(frames) <= 6
    assert rec.take() == (None, [])


# --- the prototype ---------------------------------------------------------------------

def _tiny_prototype(size: int = 16) -> Prototype:
    """A small conv backbone (random weights, fixed seed): colours give different features."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(x)
    backbone = keras.Model(inputs, x, name="backbone")
    return Prototype([], backbone, size, options={"backbone": "tiny"})


COLOURS = {"blue": (40, 60, 220), "green": (40, 200, 60), "red": (220, 40, 40)}


def _shots(colour, n, rng, size=16):
    return np.clip(np.array(colour) + rng.normal(0, 20, (n, size, size, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("classes", [("red", "green"), ("red", "green", "blue")])
def test_prototype_tells_classes_apart_and_its_keras_model_says_the_same(classes, tlhome):
    from tlcore.data.outputs import predict_probabilities
    from tlcore.ship.predict import RunModel

    rng = np.random.default_rng(1)
    proto = _tiny_prototype()
    assert not proto.ready
    for c in classes:
        proto.add(c, _shots(COLOURS[c], 6, rng))
    assert proto.labels == sorted(classes) and proto.ready
    test = np.concatenate([_shots(COLOURS[c], 4, rng) for c in classes])
    truth = np.repeat([proto.labels.index(c) for c in classes], 4)
    probs = proto.probabilities(test)
    assert probs.shape == (len(test), len(classes))
    assert (probs.argmax(1) == truth).all()
    model = proto.keras_model()
    units = model.output_shape[-1]
    assert units == (1 if len(classes) == 2 else len(classes))  # the one-unit sigmoid convention
    np.testing.assert_allclose(predict_probabilities(model, test, len(classes)), probs, atol=1e-4)

    run = proto.save_run()
    rm = RunModel(run.path)
    assert run.state() == "completed" and rm.labels == proto.labels
    np.testing.assert_allclose(rm.probabilities(test), probs, atol=1e-4)


def test_prototype_needs_two_classes():
    from tlcore.core.errors import TLCoreError

    proto = _tiny_prototype()
    proto.add("red", _shots(COLOURS["red"], 3, np.random.default_rng(0)))
    with pytest.raises(TLCoreError, match="two classes"):
        proto.save_run()
