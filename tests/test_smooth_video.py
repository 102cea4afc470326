"""The steady label on a real clip (issue 26's Done-means): still test images of a trained run, each
shown for 1 s, with camera and codec noise, and a model that flickers between classes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.smooth import _alternate, add_prob_noise, changes_per_image, write_clip

FPS, EACH = 15, 1.0


class _Flickering:
    """A run's model whose probabilities get per-frame noise (`share` of a random probability vector),
    like a model torn between close classes; the noise is seeded, so two passes see the same frames."""

    def __init__(self, rm, share: float, seed: int):
        self.rm, self.share = rm, share
        self.rng = np.random.default_rng(seed)
        self.labels, self.input_size, self.resize = rm.labels, rm.input_size, rm.resize

    def probabilities(self, x):
        return add_prob_noise(self.rm.probabilities(x), self.share, int(self.rng.integers(1 << 30)))


def _labels(results) -> tuple[list[str], list[float]]:
    return [r["top"][0]["label"] for r in results], [r["time"] for r in results]


def test_the_smoothed_label_changes_at_most_once_per_shown_image(shared_run, tmp_path):
    from tlcore.ship.predict import RunModel
    from tlcore.ship.smooth import SECONDS
    from tlcore.ship.video import predict_video

    rm = RunModel(shared_run.run_dir)
    pictures = _alternate(sorted(Path(shared_run.data, "test").glob("*/*.png")))
    own = [rm.labels[int(np.argmax(p))] for p in rm.probabilities(np.stack([rm.load(f) for f in pictures]))]
    assert len(set(own)) > 1  # the run tells the images apart: the label has somewhere to go
    clip = write_clip(tmp_path / "clip.mp4", pictures, EACH, FPS, seed=0)

    raw = predict_video(_Flickering(rm, 0.6, seed=1), clip, top_k=3)
    steady = predict_video(_Flickering(rm, 0.6, seed=1), clip, top_k=3, smooth=SECONDS)
    assert [r["image"] for r in steady] == [r["image"] for r in raw] and len(raw) == len(pictures) * FPS

    raw_labels, times = _labels(raw)
    steady_labels, _ = _labels(steady)
    raw_changes = changes_per_image(raw_labels, times, EACH, len(pictures))
    steady_changes = changes_per_image(steady_labels, times, EACH, len(pictures))
    # the raw label flickers: well over one change per image
    assert sum(raw_changes) > 2 * len(pictures), raw_changes
    # the smoothed one changes at most once per image...
    assert max(steady_changes) <= 1, steady_changes
    # ...and follows the clip: by the end of each image it shows that image's own label
    last = [steady_labels[int(round((i + 1) * EACH * FPS)) - 1] for i in range(len(pictures))]
    assert last == own
    # each `top` is the smoothed ranking: every class once, the shown label first
    for r in steady:
        assert sorted(t["label"] for t in r["top"]) == sorted(rm.labels)
        assert abs(sum(t["probability"] for t in r["top"]) - 1.0) < 1e-4


def test_predict_video_smooth_on_the_command_line_and_in_the_api(shared_run, tmp_path):
    import tlcore

    pictures = _alternate(sorted(Path(shared_run.data, "test").glob("*/*.png")))[:6]
    clip = write_clip(tmp_path / "clip.mp4", pictures, EACH, FPS, seed=2)
    env = dict(os.environ, TLCORE_HOME=str(shared_run.home))
    run = [sys.executable, "-m", "tlcore", "predict", shared_run.run_dir, str(clip), "--json"]
    smoothed = subprocess.run([*run, "--smooth", "0.3"], capture_output=True, text=True, env=env, timeout=300)
    assert smoothed.returncode == 0, smoothed.stderr[-2000:]
    out = json.loads(smoothed.stdout)
    api = tlcore.load_run(shared_run.run_dir).predict(str(clip), smooth=0.3)
    plain = tlcore.load_run(shared_run.run_dir).predict(str(clip))
    assert out == json.loads(json.dumps(api))  # the command and the API give the same entries
    assert [(r["image"], r["time"]) for r in out] == [(r["image"], r["time"]) for r in plain]
    labels, times = _labels(out)
    assert max(changes_per_image(labels, times, EACH, len(pictures))) <= 1
    # the same run and clip without smoothing: the frames' own rankings
    assert all(r["top"] == sorted(r["top"], key=lambda t: -t["probability"]) for r in plain)

    bad = subprocess.run([*run, "--smooth", "0"], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode != 0 and "--smooth" in bad.stderr and "Traceback" not in bad.stderr
