"""The steady label (`tlcore.ship.smooth`): a moving average in seconds, hysteresis, restarts."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tlcore.core.errors import OptionError
from tlcore.ship.smooth import Smoother, alpha, ranked


def _feed(smoother: Smoother, probs, fps: float, seconds: float, start: float = 0.0):
    """The (smoothed, label) of every frame of `seconds` of the same probabilities at `fps`."""
    n = int(round(seconds * fps))
    return [smoother.update(probs, start + i / fps) for i in range(n)]


def test_alpha_comes_from_the_frame_interval():
    assert alpha(0.1, 0.3) == pytest.approx(1 - math.exp(-1 / 3))
    assert alpha(0.0, 0.3) == 0.0
    # two frames at 30 fps weigh what one frame at 15 fps does
    assert (1 - alpha(1 / 30, 0.5)) ** 2 == pytest.approx(1 - alpha(1 / 15, 0.5))


@pytest.mark.parametrize("fps", [5, 15, 30, 60])
def test_the_average_behaves_the_same_at_any_frame_rate(fps):
    """From class a to class b: one time constant after the last frame of a, b holds 1 - 1/e of the
    average, whatever the frame rate."""
    s = Smoother(0.4, hold=0.0)
    last_a = _feed(s, [1.0, 0.0], fps, 2.0)
    assert last_a[-1][0] == pytest.approx([1.0, 0.0])
    t_last_a = (len(last_a) - 1) / fps
    after = _feed(s, [0.0, 1.0], fps, 0.4, start=t_last_a + 1 / fps)
    assert after[-1][0][1] == pytest.approx(1 - math.exp(-1))


def test_the_label_changes_only_after_another_class_leads_for_the_hold():
    s = Smoother(0.1, hold=0.5)
    fps = 20
    first = _feed(s, [0.9, 0.1], fps, 1.0)
    assert {label for _, label in first} == {0}
    # a short burst of b (0.3 s): b leads the average, but not for 0.5 s, so a stays shown
    burst = _feed(s, [0.1, 0.9], fps, 0.3, start=1.0)
    assert burst[-1][0][1] > 0.5 and {label for _, label in burst} == {0}
    back = _feed(s, [0.9, 0.1], fps, 1.0, start=1.3)
    assert {label for _, label in back} == {0}
    # b for good: shown once it has led for 0.5 s, not before, and then kept
    change = _feed(s, [0.1, 0.9], fps, 2.0, start=2.3)
    labels = [label for _, label in change]
    first_b = labels.index(1)
    led = [i for i, (p, _) in enumerate(change) if p[1] > p[0]][0]
    assert (first_b - led) / fps == pytest.approx(0.5, abs=1.01 / fps)
    assert set(labels[first_b:]) == {1}


def test_hold_zero_shows_the_smoothed_leader_and_the_default_hold_is_a_share_of_the_time_constant():
    s = Smoother(0.2, hold=0)
    for i, (p, label) in enumerate(_feed(s, [0.2, 0.8], 10, 0.1)):
        assert label == int(np.argmax(p))
    assert 0 < Smoother(0.4).hold < 0.4


def test_a_restart_forgets_the_stream():
    s = Smoother(0.5, hold=1.0)
    _feed(s, [1.0, 0.0, 0.0], 10, 2.0)
    s.reset()
    p, label = s.update([0.0, 0.2, 0.8], 5.0)
    assert label == 2 and p == pytest.approx([0.0, 0.2, 0.8])
    # time going backwards (a video played again) or a long gap starts afresh too
    _feed(s, [1.0, 0.0, 0.0], 10, 2.0, start=5.1)
    assert s.update([0.0, 1.0, 0.0], 0.0)[1] == 1
    _feed(s, [1.0, 0.0, 0.0], 10, 2.0, start=1.0)
    assert s.update([0.0, 1.0, 0.0], 3.0 + 5 * 0.5 + 0.1)[1] == 1
    # a different number of classes (another model) too
    assert s.update([0.3, 0.7], 10.0)[1] == 1


def test_ranked_puts_the_shown_label_first():
    labels = ["a", "b", "c"]
    probs = np.array([0.2, 0.5, 0.3])
    assert [r["label"] for r in ranked(probs, 0, labels, 3)] == ["a", "b", "c"]
    assert [r["label"] for r in ranked(probs, 1, labels, 2)] == ["b", "c"]
    assert ranked(probs, 2, labels, 1) == [{"label": "c", "probability": pytest.approx(0.3)}]


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), "x", None, True])
def test_bad_time_constants_name_the_option(seconds):
    with pytest.raises(OptionError, match="smooth"):
        Smoother(seconds)
    with pytest.raises(OptionError, match="hold"):
        Smoother(0.3, hold=-1)


def test_the_live_loop_shows_the_steady_label_and_a_new_model_starts_afresh():
    """A model flickering between two classes frame by frame: with smoothing the shown label stays,
    `raw` keeps each frame's own; a new classifier shows its first frame as it is."""
    from tlcore.live.classifier import Classifier, LiveClassifier

    flips = iter([0.7, 0.2, 0.7, 0.3, 0.8, 0.4, 0.7, 0.45] * 4)

    def probs(x):
        p = next(flips)
        return np.array([[p, 1 - p]])

    live = LiveClassifier(Classifier(probs, ["a", "b"], 8), top_k=2, smooth=1.0)
    try:
        shown, raw = [], []
        for i in range(32):
            live.submit(np.zeros((8, 8, 3), np.uint8), captured=100.0 + i / 15)
            assert live.wait(i + 1)
            shown.append(live.latest()["top"][0]["label"])
            raw.append(live.latest()["raw"][0]["label"])
        assert set(shown) == {"a"} and set(raw) == {"a", "b"}
        assert live.smoothing == 1.0
        live.set_classifier(Classifier(lambda x: np.array([[0.1, 0.9]]), ["a", "b"], 8))
        live.submit(np.zeros((8, 8, 3), np.uint8), captured=103.0)
        assert live.wait(33)
        assert live.latest()["top"][0] == {"label": "b", "probability": pytest.approx(0.9)}
        live.set_smoothing(None)
        assert live.smoothing is None
    finally:
        live.close()
