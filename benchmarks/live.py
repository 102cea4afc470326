"""Live classification speed: frames per second and capture-to-label latency of the live view's
engine (`tlcore.live.classifier.LiveClassifier`) against the bare forward pass of the same model.

For each input size, a MobileNetV2 classifier (random weights: speed does not depend on them,
4 classes, average pooling) is built the studio's way. Then:

- bare: `model(x, training=False)` on one image, and the one traced function `predict` uses
  (`outputs.predict_probabilities`), median milliseconds over repeated calls;
- live: a camera thread hands 320x240 RGB frames to `LiveClassifier.submit` at --camera-fps
  for --seconds; measured are classifications per second (what the page's line shows), the
  latency from a frame's hand-over to its label (median and 95th percentile) and the share of
  frames dropped because the model was busy. Resizing to the input size is part of it.

Run from the project root: ``python -m benchmarks.live [--sizes 96 160 224] [--camera-fps 15]
[--seconds 10] [--json]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time


def _build(size: int):
    from tlcore.recipe.surgery import HeadSpec, assemble, build_head, cut_backbone
    from tlcore.backbones.build import build_backbone

    backbone = build_backbone("MobileNetV2", size, "none")
    cut, _ = cut_backbone(backbone, None)
    head = build_head(cut.output.shape[1:], 4, HeadSpec("avg", (), 0.0))
    return assemble(cut, head, "tf", size)


def _median_ms(fn, repeat: int = 30) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def measure(size: int, camera_fps: float, seconds: float) -> dict:
    import numpy as np

    from tlcore.live.classifier import Classifier, LiveClassifier
    from tlcore.data.outputs import predict_probabilities

    model = _build(size)
    x = np.random.default_rng(0).integers(0, 256, (1, size, size, 3)).astype("float32")
    bare = _median_ms(lambda: model(x, training=False))
    traced = _median_ms(lambda: predict_probabilities(model, x, 4))
    labels = ["a", "b", "c", "d"]
    classifier = Classifier(lambda im: predict_probabilities(model, im, 4), labels, size).warm_up()
    live = LiveClassifier(classifier, top_k=1)
    frame = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    latencies: list[float] = []
    seen = {"n": 0}

    def watch():  # the newest result's latency, once per result
        last = None
        while not stop.is_set():
            r = live.latest()
            if r is not None and r["at"] != last:
                last = r["at"]
                latencies.append((r["at"] - r["captured"]) * 1000)
                seen["n"] += 1
            time.sleep(0.002)

    stop = threading.Event()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        live.submit(frame)
        n += 1
        time.sleep(max(0.0, start + n / camera_fps - time.monotonic()))
    elapsed = time.monotonic() - start
    time.sleep(0.5)
    stop.set()
    watcher.join()
    live.close()
    lat = sorted(latencies)
    return {"size": size, "bare_forward_ms": round(bare, 2), "bare_fps": round(1000 / bare, 1),
            "traced_forward_ms": round(traced, 2), "traced_fps": round(1000 / traced, 1),
            "camera_fps": camera_fps, "live_fps": round(live.classified / elapsed, 1),
            "latency_ms_median": round(statistics.median(lat), 1) if lat else None,
            "latency_ms_p95": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
            "dropped_share": round(live.dropped / max(1, live.submitted), 3), "frames": live.submitted}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.live", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[96, 160, 224])
    p.add_argument("--camera-fps", dest="camera_fps", type=float, default=15.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    rows = []
    for size in a.sizes:
        print(f"MobileNetV2 at {size} px…", file=sys.stderr, flush=True)
        rows.append(measure(size, a.camera_fps, a.seconds))
    machine = {"cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2), "python": platform.python_version()}
    if a.json:
        print(json.dumps({"machine": machine, "results": rows}))
        return 0
    print(f"machine: {machine}")
    print("| size | bare forward | traced (predict's) | live fps (camera {:.0f} fps) | latency median / p95 | "
          "dropped |".format(a.camera_fps))
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['size']} px | {r['bare_forward_ms']} ms ({r['bare_fps']} fps) | {r['traced_forward_ms']} ms "
              f"({r['traced_fps']} fps) | {r['live_fps']} | {r['latency_ms_median']} / {r['latency_ms_p95']} ms | "
              f"{r['dropped_share']:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
