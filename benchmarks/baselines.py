"""What the baselines cost at the end of one small fine-tuned run, in a process of its own.

    python -m benchmarks.baselines DATA --weights FILE [--size 160] [--head-epochs 3] [--fine-tune-epochs 2]

Trains MobileNetV2 (no augmentation) in a fresh home and times, wall and CPU seconds, the
baselines' part of the run: `RunBaselines.__call__` at the end (pixels, fits) and, where this
version has it, `held_features` (the pooled stage-1 features computed before stage 2). Prints one
JSON line. Run it with PYTHONPATH pointing at another checkout to compare versions.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def _timed(store: dict, name: str, fn):
    def wrapper(*args, **kwargs):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            store[name] = (time.perf_counter() - t0, time.process_time() - c0)
    return wrapper


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.baselines", description=__doc__.splitlines()[0])
    p.add_argument("data", help="a dataset with train/, validation/ and test/ folders")
    p.add_argument("--weights", required=True, help="MobileNetV2 weights file (or none)")
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--head-epochs", type=int, default=3)
    p.add_argument("--fine-tune-epochs", type=int, default=2)
    a = p.parse_args(argv)
    os.environ["TLCORE_HOME"] = tempfile.mkdtemp(prefix="tlcore-baselines-")
    from tlcore.evaluation import baselines
    from tlcore.recipe.config import TrainConfig
    from tlcore.training.train import train

    times: dict = {}
    baselines.RunBaselines.__call__ = _timed(times, "fit", baselines.RunBaselines.__call__)
    if hasattr(baselines, "held_features"):
        baselines.held_features = _timed(times, "held", baselines.held_features)
    config = TrainConfig.from_dict(dict(data=a.data, backbone="MobileNetV2", weights=a.weights, input_size=a.size,
                                        head_epochs=a.head_epochs, fine_tune_epochs=a.fine_tune_epochs, augment="none"))
    t0 = time.perf_counter()
    result = train(config)
    wall = sum(v[0] for v in times.values())
    cpu = sum(v[1] for v in times.values())
    print(json.dumps({"baselines_wall_s": round(wall, 2), "baselines_cpu_s": round(cpu, 2),
                      "parts": {k: [round(v[0], 2), round(v[1], 2)] for k, v in times.items()},
                      "run_s": round(time.perf_counter() - t0, 1), "test_accuracy": result["test_accuracy"],
                      "baselines": {b["kind"]: b["test_accuracy"] for b in result["baselines"]}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
