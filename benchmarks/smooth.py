"""The steady live label: how the smoothing rule (`tlcore.ship.smooth`) behaves on clips of still
test images with codec noise, for each time constant and hold; where its defaults come from.

A clip shows each test image of a run for --seconds-each (1 s) at --fps (15): every frame gets its
own Gaussian pixel noise (a camera's, --pixel-noise) and the clip is encoded as MPEG-4 at a low
bit rate (--bit-rate), then decoded the one way `tlcore predict VIDEO` decodes. The run's model
classifies every frame once. Its probabilities can get per-frame noise as well (--prob-noise: that
share of a random probability vector mixed in), the flicker of a model between close classes.
Each image's own label is what the model says of the image file.

For every time constant and hold the same frames are smoothed again (`Smoother`), and reported:
label changes within each shown image (the most, and how many images have more than one), the
raw label's changes for comparison, the lag from an image's start until the label shows that
image's own label for the rest of it (median and worst), and images whose label never shows.

    python -m benchmarks.smooth RUN [--images FOLDER] [--seeds 3] [--prob-noise 0 0.5 0.6] [--json]

FOLDER defaults to the run's test split. Nothing is written but a temporary clip.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

SECONDS = (0.1, 0.2, 0.3, 0.5, 0.8)
HOLDS = (0.0, 0.5, 1.0)  # shares of the time constant


def write_clip(path, pictures, seconds_each: float = 1.0, fps: int = 15, size: int = 96,
               pixel_noise: float = 8.0, bit_rate: int = 150_000, seed: int = 0) -> Path:
    """An MPEG-4 clip showing each picture (PIL image or path) for `seconds_each`, each frame with
    its own Gaussian pixel noise (standard deviation `pixel_noise`), encoded at `bit_rate`."""
    import av
    from PIL import Image

    rng = np.random.default_rng(seed)
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        stream.bit_rate = int(bit_rate)
        for picture in pictures:
            im = picture if isinstance(picture, Image.Image) else Image.open(picture)
            base = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)
            for _ in range(int(round(seconds_each * fps))):
                arr = np.clip(base + rng.normal(0.0, pixel_noise, base.shape), 0, 255).astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_probabilities(rm, clip) -> tuple[np.ndarray, np.ndarray]:
    """(times in seconds, probabilities [frames, classes]) of every frame of `clip`, read and
    classified as `tlcore predict VIDEO` does."""
    from tlcore.data.images import load_image
    from tlcore.ship.video import frames

    times, arrays = [], []
    for _, t, im in frames(clip):
        times.append(t)
        arrays.append(load_image(im, rm.input_size, rm.resize))
    probs = np.concatenate([rm.probabilities(np.stack(arrays[i:i + 32])) for i in range(0, len(arrays), 32)])
    return np.array(times), probs


def add_prob_noise(probs: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """Each frame's probabilities with `share` of a random probability vector (Dirichlet, 0.5) mixed in."""
    if share <= 0:
        return probs
    rng = np.random.default_rng(seed)
    noise = rng.dirichlet(np.full(probs.shape[1], 0.5), len(probs))
    return (1.0 - share) * probs + share * noise


def changes_per_image(labels, times, seconds_each: float, n_images: int) -> list[int]:
    """How many times the label changes within each shown image (a change counts for the image
    whose time it happens in)."""
    counts = [0] * n_images
    for k in range(1, len(labels)):
        if labels[k] != labels[k - 1]:
            counts[min(n_images - 1, int(times[k] // seconds_each))] += 1
    return counts


def smoothed_labels(times, probs, seconds: float | None, hold: float | None = None) -> list[int]:
    """The label shown for every frame: the smoothing rule's, or each frame's own (`seconds` None)."""
    from tlcore.ship.smooth import Smoother

    if seconds is None:
        return [int(np.argmax(p)) for p in probs]
    smoother = Smoother(seconds, hold)
    return [smoother.update(p, t)[1] for t, p in zip(times, probs)]


def score(labels, times, targets, seconds_each: float) -> dict:
    """Changes per image, the lag until each image's own label shows for good, images never shown."""
    n = len(targets)
    changes = changes_per_image(labels, times, seconds_each, n)
    lags, missed = [], 0
    for i, target in enumerate(targets):
        idx = [k for k in range(len(labels)) if i * seconds_each <= times[k] < (i + 1) * seconds_each]
        settled = None
        for k in reversed(idx):
            if labels[k] != target:
                break
            settled = k
        if settled is None:
            missed += 1
        else:
            lags.append(times[settled] - i * seconds_each)
    off = [labels[k] != targets[min(n - 1, int(times[k] // seconds_each))] for k in range(len(labels))]
    return {"max_changes": max(changes), "images_over_one": sum(c > 1 for c in changes),
            "frames_off": sum(off) / max(1, len(off)),
            "changes": sum(changes), "lag_median": round(statistics.median(lags), 3) if lags else None,
            "lag_max": round(max(lags), 3) if lags else None, "missed": missed}


def measure(rm, pictures, seeds: int, prob_noise: float, seconds_each: float, fps: int, pixel_noise: float,
            bit_rate: int) -> list[dict]:
    targets = [int(np.argmax(p)) for p in rm.probabilities(np.stack([rm.load(f) for f in pictures]))]
    clips = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            clip = write_clip(Path(tmp) / f"clip{seed}.mp4", pictures, seconds_each, fps,
                              pixel_noise=pixel_noise, bit_rate=bit_rate, seed=seed)
            times, probs = frame_probabilities(rm, clip)
            clips.append((times, add_prob_noise(probs, prob_noise, seed)))
    rows = []
    for seconds, share in [(None, None)] + [(s, h) for s in SECONDS for h in HOLDS]:
        scores = [score(smoothed_labels(t, p, seconds, None if share is None else share * seconds), t, targets,
                        seconds_each) for t, p in clips]
        lags = [s["lag_median"] for s in scores if s["lag_median"] is not None]
        worst = [s["lag_max"] for s in scores if s["lag_max"] is not None]
        rows.append({"prob_noise": prob_noise, "seconds": seconds,
                     "hold": None if share is None else round(share * seconds, 3),
                     "max_changes": max(s["max_changes"] for s in scores),
                     "images_over_one": sum(s["images_over_one"] for s in scores),
                     "changes": sum(s["changes"] for s in scores),
                     "frames_off": round(statistics.mean(s["frames_off"] for s in scores), 3),
                     "lag_median": round(statistics.median(lags), 3) if lags else None,
                     "lag_max": max(worst) if worst else None, "missed": sum(s["missed"] for s in scores),
                     "images": len(targets) * len(clips)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.smooth", description=__doc__.splitlines()[0])
    p.add_argument("run", help="a run folder or id")
    p.add_argument("--images", help="a folder of still images (default: the run's test split)")
    p.add_argument("--seeds", type=int, default=3, help="clips per setting, each with its own noise")
    p.add_argument("--prob-noise", dest="prob_noise", type=float, nargs="+", default=[0.0, 0.6, 0.65, 0.7])
    p.add_argument("--seconds-each", dest="seconds_each", type=float, default=1.0)
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--pixel-noise", dest="pixel_noise", type=float, default=8.0)
    p.add_argument("--bit-rate", dest="bit_rate", type=int, default=150_000)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tlcore.ship.predict import RunModel, collect_images

    rm = RunModel(a.run)
    folder = Path(a.images) if a.images else Path(rm.run.config()["options"]["data"]) / "test"
    pictures = collect_images([folder])
    if not pictures:
        print(f"No images in {folder}", file=sys.stderr)
        return 2
    pictures = _alternate(pictures)
    rows = []
    for share in a.prob_noise:
        rows += measure(rm, pictures, a.seeds, share, a.seconds_each, a.fps, a.pixel_noise, a.bit_rate)
    if a.json:
        print(json.dumps({"images": len(pictures), "load_1min": round(os.getloadavg()[0], 2), "results": rows}))
        return 0
    print(f"{len(pictures)} images x {a.seeds} clips, {a.seconds_each:g} s each at {a.fps} fps")
    print("| prob. noise | time constant | hold | most changes in one image | images with >1 change | "
          "changes | frames not the image's label | lag median / worst | never shown |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        tc = "raw" if r["seconds"] is None else f"{r['seconds']:g} s"
        hold = "" if r["hold"] is None else f"{r['hold']:g} s"
        print(f"| {r['prob_noise']:g} | {tc} | {hold} | {r['max_changes']} | {r['images_over_one']}/{r['images']} | "
              f"{r['changes']} | {r['frames_off']:.0%} | {r['lag_median']} / {r['lag_max']} s | {r['missed']} |")
    return 0


def _alternate(pictures: list[Path]) -> list[Path]:
    """The pictures ordered class by class in turn (a, b, c, a, b, c, ...): every image a change."""
    by_class: dict[str, list[Path]] = {}
    for f in pictures:
        by_class.setdefault(f.parent.name, []).append(f)
    out, lists = [], list(by_class.values())
    while any(lists):
        for lst in lists:
            if lst:
                out.append(lst.pop(0))
    return out


if __name__ == "__main__":
    sys.exit(main())
