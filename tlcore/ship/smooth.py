"""A steady label for a stream of frames: the one smoothing rule of the live view and of
`tlcore predict VIDEO --smooth SECONDS`.

Two steps, both measured in seconds so they behave the same at any frame rate:

- an exponential moving average of the probability vectors, with time constant `seconds`: a frame
  `dt` seconds after the previous one gets the weight `alpha = 1 - exp(-dt / seconds)`;
- hysteresis on the label: the shown label changes only once another class has led the smoothed
  probabilities for `hold` seconds without a break.

A gap of more than `RESTART` time constants (the old average then weighs under 1%), time going
backwards, or `reset()` starts afresh: the next frame is shown as it is.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import OptionError

# Defaults chosen on clips of still test images shown 1 s each with codec noise and noisy
# probabilities (docs/PERFORMANCE.md, `python -m benchmarks.smooth`).
SECONDS = 0.3
HOLD_SHARE = 0.5  # the default hold, as a share of the time constant
RESTART = 5.0  # a gap of this many time constants restarts the average


def check_seconds(seconds, name: str = "smooth") -> float:
    """`seconds` as a positive float, or an OptionError naming `name`."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(seconds, bool) or not math.isfinite(value) or value <= 0:
        raise OptionError(name, f"must be a time constant in seconds, above 0 (e.g. 0.3). Received: {seconds!r}")
    return value


def alpha(dt: float, seconds: float) -> float:
    """The weight of a new frame `dt` seconds after the last one (1 - exp(-dt / seconds))."""
    return 1.0 - math.exp(-max(0.0, float(dt)) / float(seconds))


class Smoother:
    """Smooths probability vectors frame by frame; see the module's docstring.

    Args:
        seconds: the moving average's time constant.
        hold: seconds another class must lead before the label changes (default
            `HOLD_SHARE * seconds`; 0 shows the smoothed leader at once).

    Raises:
        OptionError: `seconds` not above 0, `hold` below 0.
    """

    def __init__(self, seconds: float = SECONDS, hold: float | None = None):
        self.seconds = check_seconds(seconds)
        if hold is None:
            hold = HOLD_SHARE * self.seconds
        try:
            hold = float(hold)
        except (TypeError, ValueError):
            hold = float("nan")
        if not math.isfinite(hold) or hold < 0:
            raise OptionError("hold", f"must be 0 or more seconds. Received: {hold!r}")
        self.hold = hold
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame is shown as it is."""
        self.probabilities: np.ndarray | None = None
        self.label: int | None = None
        self._time: float | None = None
        self._challenger: int | None = None
        self._since = 0.0

    def update(self, probs, time: float) -> tuple[np.ndarray, int]:
        """Add the frame seen at `time` (seconds, any origin); returns (smoothed probabilities, the
        index of the label to show)."""
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        t = float(time)
        if self.probabilities is None or self.probabilities.shape != p.shape or self._time is None \
                or t < self._time or t - self._time > RESTART * self.seconds:
            self.reset()
            self.probabilities, self.label, self._time = p.copy(), int(np.argmax(p)), t
            return self.probabilities.copy(), self.label
        a = alpha(t - self._time, self.seconds)
        self.probabilities = (1.0 - a) * self.probabilities + a * p
        self._time = t
        leader = int(np.argmax(self.probabilities))
        if leader == self.label:
            self._challenger = None
        elif leader != self._challenger:
            self._challenger, self._since = leader, t
        if self._challenger is not None and t - self._since >= self.hold:
            self.label, self._challenger = self._challenger, None
        return self.probabilities.copy(), self.label


def ranked(probs: np.ndarray, label: int, labels: list[str], k: int) -> list[dict]:
    """[{label, probability}] of the smoothed probabilities, the shown label first and then the
    others, most probable first; `k` entries at most."""
    order = [label] + [int(j) for j in np.argsort(-probs, kind="stable") if int(j) != label]
    return [{"label": labels[j], "probability": float(probs[j])} for j in order[: min(k, len(labels))]]

