"""A search whose points differ only in stage-2 options, with and without sharing stage 1.

Makes the demo dataset (shapes on textures) in a temporary folder and runs the same grid
search twice on local Ray, in this one process: first with every trial training its own
stage 1 (`run_search(..., reuse=False)`, the search as it was before trials shared stage 1),
then with stage 1 shared (the default). Each search gets a fresh TLCORE_HOME, so neither
starts from the other's caches. Prints the wall time of each search, their ratio, and checks
that the shared search trained stage 1 once (one stage1/ entry, the other trials marked
``stage1_shared``) and that every point scored the same validation accuracy in both.

The fixed options make stage 1 the larger part of a trial, as it is when the feature cache
does not apply (MixUp, CutMix or RandAugment change the images every epoch; or augmentation with
fewer head epochs than cached copies would pay for): light augmentation with MixUp, 12 head
epochs, 1 fine-tuning epoch of the last convolution. The backbone is a small convolutional
network saved as a model file in the temporary folder (no downloads; a catalog backbone adds
the same per-trial cost of building and tracing it to both searches).

Run from the project root: ``python -m benchmarks.search_reuse [--per-class N] [--size S] [--head-epochs E]
[--json]``. Opt-in; not part of the test suite.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path


SPACE = {"fine_tune_lr": [3e-4, 1e-4, 3e-5, 1e-5], "unfreeze_from": ["-2", "-4"]}  # 8 points


def base_options(data: Path, backbone: Path, head_epochs: int) -> dict:
    return {"data": str(data), "backbone_file": str(backbone), "preprocessing": "tf", "augment": "light",
            "mixup": 0.2, "head_epochs": head_epochs, "fine_tune_epochs": 1, "early_stopping": 0,
            "batch_size": 16, "seed": 42}


def write_backbone(path: Path, size: int) -> Path:
    """A small convolutional network (5 convolutions, random weights) as a .keras backbone file."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = inputs
    for i, filters in enumerate((32, 32, 64, 64, 96)):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        if i in (1, 3):
            x = keras.layers.MaxPooling2D(name=f"pool{i}")(x)
    keras.Model(inputs, x, name="convnet").save(str(path))
    return path


@contextlib.contextmanager
def _env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def one_search(root: Path, options: dict, reuse: bool) -> dict:
    from tlcore.search.tune import run_search

    home = root / ("home-shared" if reuse else "home-alone")
    with _env(TLCORE_HOME=home):
        t0 = time.perf_counter()
        result = run_search(options, SPACE, grid=True, reuse=reuse,
                            search_id="reuse" if reuse else "alone")
        seconds = time.perf_counter() - t0
    folder = Path(result["search_dir"])
    shared = 0
    for trial in result["trials"]:
        status = json.loads((Path(trial["run_dir"]) / "status.json").read_text())
        shared += bool(status.get("stage1_shared"))
    stage1 = [p for p in (folder / "stage1").glob("*") if p.is_dir()] if (folder / "stage1").exists() else []
    return {"seconds": round(seconds, 1), "state": result["state"], "trials": len(result["trials"]),
            "stage1_trained": len(result["trials"]) - shared, "stage1_entries": len(stage1),
            "val_accuracy": {t["point"]: t["val_accuracy"] for t in result["trials"]}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.search_reuse", description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", dest="per_class", type=int, default=40, help="demo images per class")
    parser.add_argument("--size", type=int, default=96, help="input size in pixels")
    parser.add_argument("--head-epochs", dest="head_epochs", type=int, default=12, help="stage-1 epochs")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    from tlcore.data.demo import make_demo_dataset

    with tempfile.TemporaryDirectory(prefix="tlcore-search-reuse-") as tmp, _env(TF_CPP_MIN_LOG_LEVEL="2"):
        root = Path(tmp)
        made = make_demo_dataset(root / "data", classes=4, per_class=args.per_class, seed=0)
        print(f"dataset: {made['counts']}", file=sys.stderr, flush=True)
        options = base_options(root / "data", write_backbone(root / "convnet.keras", args.size), args.head_epochs)
        alone = one_search(root, options, reuse=False)
        print(f"every trial trains stage 1: {alone['seconds']} s", file=sys.stderr, flush=True)
        shared = one_search(root, options, reuse=True)
        print(f"stage 1 shared: {shared['seconds']} s", file=sys.stderr, flush=True)
    result = {"points": 8, "space": SPACE, "options": {k: v for k, v in options.items() if k not in ("data", "backbone_file")},
              "backbone": "convnet (5 convolutions)", "size": args.size,
              "images": made["counts"], "cpus": os.cpu_count(), "alone": alone, "shared": shared,
              "ratio": round(shared["seconds"] / alone["seconds"], 3),
              "same_val_accuracy": alone["val_accuracy"] == shared["val_accuracy"]}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"8-point search, points differ only in stage-2 options ({os.cpu_count()} CPUs)")
        print(f"  every trial trains stage 1: {alone['seconds']:8.1f} s  (stage 1 trained {alone['stage1_trained']}x)")
        print(f"  stage 1 shared:             {shared['seconds']:8.1f} s  (stage 1 trained {shared['stage1_trained']}x, "
              f"{shared['stage1_entries']} saved)")
        print(f"  ratio shared / alone:       {result['ratio']:.2f}")
        print(f"  same validation accuracy per point: {result['same_val_accuracy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
