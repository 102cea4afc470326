"""Memory and speed as the dataset grows: peak RSS of a training, and the input pipeline beside Keras'.

    python -m benchmarks.scale N [N ...] [--size 224] [--backbone MobileNetV3Small] [--batch-size 32]
        [--compare PROJECT_ROOT] [--keep DIR] [--json] [--train-only]
    python -m benchmarks.scale N --cached-ab

For each N it writes N synthetic JPEG images (256x256, two classes, 90% train/ and 10%
validation/) into a temporary folder and measures, each as a whole process of its own in a fresh
TLCORE_HOME (peak RSS from `wait4`, so a child's figure is its own):

- `tlcore train DATA --backbone B --weights none --input-size S --head-epochs 1
  --fine-tune-epochs 0 --augment none --feature-cache off`: peak RSS and wall seconds (the
  issue's memory criterion); with `--compare ROOT` also the same command with another checkout's
  tlcore (e.g. the main branch) on the same files, for a before/after;
- the input pipeline alone, training split, batch B, shuffled: tlcore's (decode into the cache,
  then tf.data by index) and Keras' `image_dataset_from_directory`, two epochs each: images per
  second of the first epoch (tlcore's includes decoding into the cache) and of the second (read
  from the cache; Keras decodes again), and the process's peak RSS.

With --cached-ab it only compares cached head epochs at small scale (N images of cached
features), the old in-memory pipeline against the by-index one, in one process and in turns.

Opt-in, not part of the test suite: 10,000 images take several minutes on 2 cores. Results
go to stdout (a table, or JSON with --json); progress to stderr. Slope: peak RSS growth per
image between the smallest and largest N.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("warm", "cool")
SIDE = 256

_PIPELINE = r'''
import json, sys, time
import numpy as np
import tensorflow as tf  # imported before the clock starts, for both
mode, data, size, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def drain(ds):
    n = 0
    for x, _ in ds:
        n += int(x.shape[0])
    return n

if mode == "tlcore":
    from tlcore.data.pipeline import decode_images, make_dataset, scan
    ds = scan(data, check_files=False)
    pairs = ds.files["train"]
    t = time.perf_counter()
    rows, ok, _ = decode_images([p for p, _ in pairs], size)
    labels = np.array([pairs[i][1] for i in ok])
    pipe = make_dataset(rows, labels, len(ds.classes), batch, shuffle=True)
else:
    import keras
    t = time.perf_counter()
    pipe = keras.utils.image_dataset_from_directory(data + "/train", image_size=(size, size),
                                                    batch_size=batch, shuffle=True, seed=42, verbose=False)
n = drain(pipe)
first = time.perf_counter() - t
t = time.perf_counter()
drain(pipe)
second = time.perf_counter() - t
print(json.dumps({"images": n, "first_seconds": first, "second_seconds": second}))
'''


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def make_images(root: Path, n: int, seed: int = 0) -> Path:
    """`n` JPEGs of two classes (a warm or cool gradient with a random bright box), 10% validation/."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, SIDE, dtype=np.float32)
    n_val = max(2, n // 10)
    for i in range(n):
        split = "validation" if i < n_val else "train"
        label = i % 2
        folder = root / split / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        colour = np.array([200, 90, 40] if label == 0 else [40, 110, 210], np.float32) * rng.uniform(0.7, 1.1)
        img = (ramp[:, None, None] * 0.5 + 0.5) * colour[None, None, :] * np.ones((1, SIDE, 1), np.float32)
        y, x = rng.integers(0, SIDE - 64, 2)
        img[y:y + 64, x:x + 64] = rng.uniform(150, 255, 3)
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg", quality=90)
    return root


def _child(cmd: list[str], home: Path, pythonpath: Path) -> dict:
    """Run `cmd` in a fresh home; its wall seconds, peak RSS (bytes) and stdout."""
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(pythonpath))
    env.pop("TLCORE_CACHE_MAX", None)
    t = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=str(pythonpath))
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_rss": usage.ru_maxrss * 1024, "stdout": stdout}


def train_peak(data: Path, work: Path, a, root: Path) -> dict:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    cmd = [sys.executable, "-m", "tlcore", "train", str(data), "--backbone", a.backbone, "--weights", "none",
           "--input-size", str(a.size), "--batch-size", str(a.batch_size), "--head-epochs", "1",
           "--fine-tune-epochs", "0", "--augment", "none", "--feature-cache", "off", "--early-stopping", "0",
           "--json"]
    got = _child(cmd, home, root)
    shutil.rmtree(home, ignore_errors=True)
    return {"seconds": got["seconds"], "peak_rss": got["peak_rss"],
            "warnings": json.loads(got["stdout"]).get("warnings") or []}


def pipeline(mode: str, data: Path, work: Path, a) -> dict:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    script = work / "pipeline.py"
    script.write_text(_PIPELINE)
    got = _child([sys.executable, str(script), mode, str(data), str(a.size), str(a.batch_size)], home, ROOT)
    shutil.rmtree(home, ignore_errors=True)
    r = json.loads(got["stdout"].strip().splitlines()[-1])
    return {"first_ips": round(r["images"] / r["first_seconds"], 1),
            "cached_ips": round(r["images"] / r["second_seconds"], 1), "peak_rss": got["peak_rss"]}


def cached_epochs_ab(n: int = 240, rounds: int = 5, epochs: int = 10, batch: int = 32) -> dict:
    """Cached head epochs at small scale, before and after, in one process and in turns: a head
    (pooling + Dense) fitted on cached features [n, 5, 5, 1280] (MobileNetV2 at 160 px) from the
    old pipeline (`from_tensor_slices` of the array + a full shuffle buffer) and from this one
    (`recipe.features.dataset` over the cache file, read by index). Median seconds per epoch."""
    import statistics

    import keras
    import tensorflow as tf

    from tlcore.data.mapped import DiskRows, NpyWriter
    from tlcore.recipe import features

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(1, n, 5, 5, 1280)).astype(np.float32)
    labels = rng.integers(0, 2, n)
    work = Path(tempfile.mkdtemp(prefix="tlcore-ab-"))
    try:
        writer = NpyWriter(work / "f.npy")
        writer.append(feats.reshape(n, 5, 5, 1280))
        writer.close((1, n))
        rows = DiskRows(work / "f.npy")

        def before():
            y = labels.astype(np.float32)[:, None]
            ds = tf.data.Dataset.from_tensor_slices((np.moveaxis(feats, 0, 1), y))
            ds = ds.shuffle(n, seed=42, reshuffle_each_iteration=True).map(lambda f, t: (f[0], t))
            return ds.batch(batch).prefetch(tf.data.AUTOTUNE)

        def after():
            return features.dataset(rows, labels, 2, batch, shuffle=True, seed=42)

        def head():
            keras.utils.set_random_seed(0)
            m = keras.Sequential([keras.Input((5, 5, 1280)), keras.layers.GlobalAveragePooling2D(),
                                  keras.layers.Dense(1, activation="sigmoid")])
            m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
            return m

        times = {"before": [], "after": []}
        for _ in range(rounds):
            for name, make in (("before", before), ("after", after)):
                model, ds = head(), make()
                model.fit(ds, epochs=1, verbose=0)  # trace
                t = time.perf_counter()
                model.fit(ds, epochs=epochs, verbose=0)
                times[name].append((time.perf_counter() - t) / epochs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"images": n, "epochs": epochs, "rounds": rounds, "seconds_per_epoch": med,
            "after_over_before": round(med["after"] / med["before"], 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    p.add_argument("counts", type=int, nargs="+", metavar="N", help="numbers of images")
    p.add_argument("--size", type=int, default=224, help="input size (default 224)")
    p.add_argument("--backbone", default="MobileNetV3Small", help="catalog backbone (default MobileNetV3Small)")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=32)
    p.add_argument("--compare", type=Path, help="another project root whose tlcore trains the same files")
    p.add_argument("--keep", type=Path, help="make the images here and keep them (reused if there)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--train-only", dest="train_only", action="store_true",
                   help="only the training's peak RSS and time (no input-pipeline comparison): 100,000 images")
    p.add_argument("--cached-ab", dest="cached_ab", action="store_true",
                   help="only: cached head epochs at small scale, the old pipeline against this one "
                        "(N is the number of images)")
    a = p.parse_args(argv)
    if a.cached_ab:
        print(json.dumps(cached_epochs_ab(a.counts[0]), indent=2))
        return 0
    if any(n < 20 for n in a.counts):
        p.error(f"N must be at least 20. Received: {a.counts}")
    work = Path(tempfile.mkdtemp(prefix="tlcore-scale-"))
    rows = []
    try:
        for n in a.counts:
            data = (a.keep or work) / f"images-{n}"
            if not (data / "train").is_dir():
                t = time.perf_counter()
                make_images(data, n)
                _log(f"{n} images written in {time.perf_counter() - t:.1f} s")
            row = {"images": n}
            _log(f"{n}: tlcore train ...")
            row["train"] = train_peak(data, work, a, ROOT)
            if a.compare:
                _log(f"{n}: tlcore train with {a.compare} ...")
                row["train_compare"] = train_peak(data, work, a, a.compare.expanduser().resolve())
            for mode in () if a.train_only else ("tlcore", "keras"):
                _log(f"{n}: {mode} pipeline ...")
                row[mode] = pipeline(mode, data, work, a)
            rows.append(row)
            _log(json.dumps(row))
            if not a.keep:
                shutil.rmtree(data, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    slope = {}
    if len(rows) >= 2:
        lo, hi = rows[0], rows[-1]
        for key in ("train", "train_compare"):
            if key in lo:
                slope[key] = round((hi[key]["peak_rss"] - lo[key]["peak_rss"]) / (hi["images"] - lo["images"]) / 1024, 1)
    if a.json:
        print(json.dumps({"rows": rows, "kb_per_image": slope}, indent=2))
        return 0
    mb = lambda b: f"{b / 2 ** 20:,.0f} MB"  # noqa: E731
    print(f"{'images':>7} | train peak RSS | train s | {'compare peak RSS' if a.compare else ''} | "
          "tlcore first / cached img/s, peak | keras first / cached img/s, peak")
    for r in rows:
        if a.train_only:
            print(f"{r['images']:>7} | {mb(r['train']['peak_rss']):>14} | {r['train']['seconds']:>7}")
            continue
        cmp = f"{mb(r['train_compare']['peak_rss'])} ({r['train_compare']['seconds']} s)" if "train_compare" in r else ""
        print(f"{r['images']:>7} | {mb(r['train']['peak_rss']):>14} | {r['train']['seconds']:>7} | {cmp} | "
              f"{r['tlcore']['first_ips']} / {r['tlcore']['cached_ips']}, {mb(r['tlcore']['peak_rss'])} | "
              f"{r['keras']['first_ips']} / {r['keras']['cached_ips']}, {mb(r['keras']['peak_rss'])}")
    for key, kb in slope.items():
        print(f"peak RSS growth per image ({key}): {kb} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
