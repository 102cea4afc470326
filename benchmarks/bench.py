"""Speed, side by side in one run: the engine against the tutorials' recipe it replaces.

The tutorials read images with ``ImageDataGenerator.flow_from_directory`` and train the head
with ``model.fit`` on the whole frozen model, so every epoch decodes every JPEG again and runs
the backbone on every image again. This module makes a dataset in a temporary folder and
measures, on this machine and in one run:

- input pipeline, images/s: decode once + tf.data (`data.decode_images`, `data.make_dataset`)
  against ``flow_from_directory``, first epoch and later epochs;
- stage 1 for E epochs, as whole processes: ``tlcore train --feature-cache on`` against a
  generated tutorial script, and one cached head epoch against one tutorial epoch;
- the floor: a process that only imports TensorFlow/Keras, builds the backbone from the
  weights, reads every image once and runs one batched forward pass over them (the least any
  cached stage 1 must do), against ``tlcore train``'s stage 1 as a whole process (ours / floor);
- one image's prediction: `predict.RunModel.probabilities` against ``model(x, training=False)``;
- fine-tuning: a stage-2 epoch against an end-to-end stage-1 epoch, for two unfreeze points.

Run it from the project root as ``python -m benchmarks.bench [--images N] [--size S] [--backbone NAME] [--epochs E]
[--quick] [--json]``. Progress goes to stderr; the table (or one JSON document) to stdout.
Importing it changes nothing: the environment variables it needs (TLCORE_HOME for the
in-process measurements, TF_CPP_MIN_LOG_LEVEL) are set inside `main` and `run` and restored after.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]  # the project root: where `tlcore` is, for the child processes
CLASSES = ("circle", "square", "stripes", "noise")
VAL_FRACTION = 0.2
LATENCY_CALLS = 50
TARGETS = {"input_first": 2.0, "input_later": 5.0, "stage1_wall": 5.0, "stage1_epoch": 10.0,
           "predict": 1.2, "floor": 1.3}

_TUTORIAL = '''\
"""The tutorials' recipe: ImageDataGenerator + flow_from_directory + model.fit on the frozen model."""
import json
import time

T0 = time.perf_counter()
import keras
from tensorflow.keras.preprocessing.image import ImageDataGenerator
{preprocess_import}

DATA, SIZE, EPOCHS, BATCH, LR = {data!r}, {size}, {epochs}, {batch}, {lr}
keras.utils.set_random_seed(42)
datagen = ImageDataGenerator(preprocessing_function=preprocess_input)
train = datagen.flow_from_directory(DATA + "/train", target_size=(SIZE, SIZE), batch_size=BATCH,
                                    class_mode="sparse", seed=42)
val = datagen.flow_from_directory(DATA + "/validation", target_size=(SIZE, SIZE), batch_size=BATCH,
                                  class_mode="sparse", shuffle=False)
base = keras.applications.{backbone}(input_shape=(SIZE, SIZE, 3), include_top=False, weights={weights!r})
base.trainable = False
inputs = keras.Input(shape=(SIZE, SIZE, 3))
x = base(inputs, training=False)
x = keras.layers.GlobalAveragePooling2D()(x)
x = keras.layers.Dropout(0.2)(x)
outputs = keras.layers.Dense(train.num_classes, activation="softmax")(x)
model = keras.Model(inputs, outputs)
model.compile(optimizer=keras.optimizers.Adam(learning_rate=LR),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        record = {{"epoch": epoch + 1, "seconds": round(time.perf_counter() - self.t0, 3)}}
        record.update({{k: float(v) for k, v in (logs or {{}}).items()}})
        print(json.dumps(record), flush=True)


model.fit(train, validation_data=val, epochs=EPOCHS, callbacks=[EpochTimer()], verbose=0)
model.save("tutorial_model.keras")
print(json.dumps({{"total_seconds": round(time.perf_counter() - T0, 3)}}), flush=True)
# Not timed: the score on the held-out test folder, to compare with the engine's.
test = datagen.flow_from_directory(DATA + "/test", target_size=(SIZE, SIZE), batch_size=BATCH,
                                   class_mode="sparse", shuffle=False)
loss, accuracy = model.evaluate(test, verbose=0)
print(json.dumps({{"test_accuracy": float(accuracy), "test_loss": float(loss)}}), flush=True)
'''


_FLOOR = '''\
"""The floor of a cached stage 1: import, build the backbone from the weights, read every image
once, one batched forward pass. Nothing else (no head, no epochs, no save)."""
import json
import time
from pathlib import Path

T0 = time.perf_counter()
import keras
import numpy as np
from PIL import Image
{preprocess_import}

DATA, SIZE, BATCH = {data!r}, {size}, {batch}
files = sorted(p for p in Path(DATA).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
images = np.stack([np.asarray(Image.open(f).convert("RGB").resize((SIZE, SIZE))) for f in files]).astype("float32")
base = keras.applications.{backbone}(input_shape=(SIZE, SIZE, 3), include_top=False, weights={weights!r})
features = base.predict(preprocess_input(images), batch_size=BATCH, verbose=0)
print(json.dumps({{"total_seconds": round(time.perf_counter() - T0, 3), "images": len(files)}}), flush=True)
'''


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block, then put back what was there."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=300, help="images in the generated dataset (default 300)")
    p.add_argument("--size", type=int, default=160, help="input size in pixels (default 160)")
    p.add_argument("--backbone", default="MobileNetV2", help="catalog backbone (default MobileNetV2)")
    p.add_argument("--weights", default="none",
                   help="none (default), imagenet, or a weights file: the same for both recipes")
    p.add_argument("--data", default=None,
                   help="your own dataset with train/, validation/ and test/ folders instead of the "
                        "generated one")
    p.add_argument("--epochs", type=int, default=20, help="stage-1 epochs for both recipes (default 20)")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="a tiny run (60 images, 96 px, 3 epochs) to try it")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    a = p.parse_args(argv)
    if a.quick:
        a.images, a.size, a.epochs = min(a.images, 60), min(a.size, 96), min(a.epochs, 3)
    if a.images < 8 * len(CLASSES):
        p.error(f"--images must be at least {8 * len(CLASSES)} (8 per class). Received: {a.images}")
    if a.epochs < 2:
        p.error(f"--epochs must be at least 2 (epoch 1 includes tracing). Received: {a.epochs}")
    from tlcore.backbones.build import check_input_size
    from tlcore.backbones.catalog import get_backbone
    from tlcore.core.errors import TLCoreError

    try:
        a.backbone = get_backbone(a.backbone).name
        check_input_size(a.backbone, a.size)
    except TLCoreError as exc:
        p.error(str(exc))
    if a.weights not in ("none", "imagenet"):
        if not Path(a.weights).expanduser().is_file():
            p.error(f"--weights must be none, imagenet or an existing weights file. Received: {a.weights}")
        a.weights = str(Path(a.weights).expanduser().resolve())
    if a.data is not None:
        a.data = str(Path(a.data).expanduser().resolve())
        missing = [d for d in ("train", "validation", "test") if not (Path(a.data) / d).is_dir()]
        if missing:
            p.error(f"--data needs train/, validation/ and test/ folders (one folder per class in each); "
                    f"{a.data} has no {', '.join(m + '/' for m in missing)}")
    return a


# --- the dataset --------------------------------------------------------------------------------

def _draw(rng: np.random.Generator, cls: str, width: int, height: int) -> np.ndarray:
    """A photo-sized RGB image whose class shows in its shape, on a random textured background."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(40, 215, 3).astype(np.float32)
    img = base + 18 * rng.standard_normal((height, width, 3), dtype=np.float32)
    img += (xx / width)[..., None] * rng.uniform(-40, 40, 3).astype(np.float32)  # like light
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    r = rng.uniform(0.15, 0.3) * min(width, height)
    colour = 255 - base
    if cls == "circle":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    elif cls == "square":
        mask = (np.abs(xx - cx) < r) & (np.abs(yy - cy) < r)
    elif cls == "stripes":
        mask = (((xx + yy) // max(4.0, r / 4)) % 2).astype(bool)
    else:
        mask = rng.random((height, width)) < 0.3
    img[mask] = colour + 10 * rng.standard_normal((int(mask.sum()), 3), dtype=np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_data(root: Path, n_images: int, seed: int = 0) -> dict:
    """root/{train,validation,test}/<class>/*.jpg: varied sizes (240-800 px a side), JPEG
    quality 90. `n_images` are split into train and validation; test has as many as validation,
    on top."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    per_class = n_images // len(CLASSES)
    n_val = max(2, round(per_class * VAL_FRACTION))
    counts = {"train": per_class - n_val, "validation": n_val, "test": n_val}
    for split, n in counts.items():
        for cls in CLASSES:
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                w, h = (int(v) for v in rng.integers(240, 801, 2))
                Image.fromarray(_draw(rng, cls, w, h)).save(folder / f"{cls}_{i:04d}.jpg", quality=90)
    return {"path": str(root), "classes": len(CLASSES),
            **{split: n * len(CLASSES) for split, n in counts.items()}}


def describe_data(root: Path) -> dict:
    """The counts of a dataset given with --data (train/, validation/, test/)."""
    from tlcore.data.images import is_image_name

    out: dict = {"path": str(root)}
    for split in ("train", "validation", "test"):
        classes = [d for d in sorted((root / split).iterdir()) if d.is_dir()]
        out["classes"] = max(out.get("classes", 0), len(classes))
        out[split] = sum(1 for d in classes for f in d.iterdir() if is_image_name(f.name))
    return out


# --- input pipeline -----------------------------------------------------------------------------

def _preprocess_module(backbone: str) -> str:
    import keras

    return getattr(keras.applications, backbone).__module__.replace("keras.src.", "keras.")


def bench_input(data: Path, size: int, backbone: str, batch: int, repeats: int = 3, later: int = 2) -> dict:
    """Images/s of one training epoch: ours (cold cache, later, warm cache) vs flow_from_directory.

    The two are measured in turns, `repeats` times, and the best of each is kept: on a shared
    machine the best is the least disturbed measurement.
    """
    import importlib

    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    from tlcore.data.pipeline import decode_images, make_dataset, scan

    def drain(ds) -> int:
        n = 0
        for x, _ in ds:
            n += int(x.shape[0])
        return n

    t = time.perf_counter()
    ds = scan(data, check_files=False)  # as `tlcore train` scans: decode_images finds bad files
    scan_s = time.perf_counter() - t
    pairs = ds.files["train"]
    paths, labels = [p for p, _ in pairs], np.array([c for _, c in pairs], dtype=np.int64)
    n, k = len(paths), len(ds.classes)
    preprocess = importlib.import_module(_preprocess_module(backbone)).preprocess_input
    drain(make_dataset(np.zeros((2, size, size, 3), np.uint8), labels[:2], k, batch))  # tf.data warm-up
    best: dict[str, float] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, float("inf")), seconds)

    for _ in range(repeats):
        shutil.rmtree(Path(os.environ["TLCORE_HOME"]) / "cache" / "images", ignore_errors=True)
        t = time.perf_counter()
        images, ok, _ = decode_images(paths, size)
        pipe = make_dataset(images, labels[ok], k, batch, shuffle=True)
        assert drain(pipe) == n
        keep("ours_first", time.perf_counter() - t)
        for _ in range(later):
            t = time.perf_counter()
            drain(pipe)
            keep("ours_later", time.perf_counter() - t)
        t = time.perf_counter()  # a new run on the same data: the decoded images come from disk
        images, ok, _ = decode_images(paths, size)
        drain(make_dataset(images, labels[ok], k, batch, shuffle=True))
        keep("ours_warm_cache", time.perf_counter() - t)

        t = time.perf_counter()
        gen = ImageDataGenerator(preprocessing_function=preprocess).flow_from_directory(
            str(data / "train"), target_size=(size, size), batch_size=batch, class_mode="sparse", seed=42)
        seen = sum(len(gen[i][0]) for i in range(len(gen)))
        gen.on_epoch_end()
        keep("ffd_first", time.perf_counter() - t)
        assert seen == n, (seen, n)
        for _ in range(later):
            t = time.perf_counter()
            for i in range(len(gen)):
                gen[i]
            gen.on_epoch_end()
            keep("ffd_later", time.perf_counter() - t)
    out = {"images": n, "repeats": repeats, "scan_seconds": scan_s,
           "ours_first_with_scan": n / (best["ours_first"] + scan_s)}
    out.update({name: n / seconds for name, seconds in best.items()})
    return out


# --- whole processes ----------------------------------------------------------------------------

def _env(home: Path) -> dict:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", PYTHONPATH=path)


def _load() -> float:
    """The 1-minute load average: how busy the machine was besides this benchmark."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


def _run(cmd: list[str], home: Path, cwd: Path, label: str) -> tuple[dict, str, str]:
    _log(f"{label}: {' '.join(cmd[2:])} (load {_load()})")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = _load()
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(home), capture_output=True, text=True)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    _log(f"{label}: {seconds:.1f} s wall, {cpu:.1f} s CPU")
    return {"wall": seconds, "cpu": cpu, "load": [load, _load()]}, proc.stdout, proc.stderr


def train_process(data: Path, home: Path, work: Path, a: argparse.Namespace, label: str,
                  *options: str) -> dict:
    """`tlcore train` as a whole process; its wall time, result and metrics.jsonl."""
    cmd = [sys.executable, "-m", "tlcore", "train", str(data), "--backbone", a.backbone,
           "--weights", a.weights, "--input-size", str(a.size), "--batch-size", str(a.batch_size),
           "--augment", "none", "--early-stopping", "0", *options, "--json"]
    timing, out, _ = _run(cmd, home, work, label)
    result = json.loads(out)
    run = Path(result["run_dir"])
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    status = json.loads((run / "status.json").read_text())
    return {**timing, "result": result, "metrics": metrics, "status": status, "run_dir": str(run),
            "command": "tlcore train DATA " + " ".join(cmd[5:])}


def tutorial_process(data: Path, home: Path, work: Path, a: argparse.Namespace) -> dict:
    """The generated tutorial script as a whole process; its wall time and per-epoch JSON lines."""
    module = _preprocess_module(a.backbone)
    script = work / "tutorial.py"
    script.write_text(_TUTORIAL.format(
        preprocess_import=f"from {module} import preprocess_input", data=str(data), size=a.size,
        epochs=a.epochs, batch=a.batch_size, lr=1e-3, backbone=a.backbone,
        weights=None if a.weights == "none" else a.weights))
    timing, out, _ = _run([sys.executable, str(script)], home, work, "tutorial recipe")
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {**timing, "epochs": [r for r in records if "epoch" in r],
            "script_seconds": next((r["total_seconds"] for r in records if "total_seconds" in r), None),
            "test_accuracy": next((r["test_accuracy"] for r in records if "test_accuracy" in r), None)}


def floor_process(data: Path, home: Path, work: Path, a: argparse.Namespace) -> dict:
    """The floor script (`_FLOOR`) as a whole process: its wall time."""
    script = work / "floor.py"
    script.write_text(_FLOOR.format(
        preprocess_import=f"from {_preprocess_module(a.backbone)} import preprocess_input", data=str(data),
        size=a.size, batch=a.batch_size, backbone=a.backbone, weights=None if a.weights == "none" else a.weights))
    timing, out, _ = _run([sys.executable, str(script)], home, work, "floor")
    record = next((json.loads(line) for line in out.splitlines() if line.startswith("{")), {})
    return {**timing, "images": record.get("images")}


def test_accuracy(run_dir: str, home: Path, work: Path) -> float:
    """`tlcore evaluate RUN --split test`, not timed: the engine's score on the test folder."""
    _, out, _ = _run([sys.executable, "-m", "tlcore", "evaluate", run_dir, "--split", "test", "--json"],
                     home, work, "tlcore evaluate (not timed)")
    return float(json.loads(out)["accuracy"])


def _steady(seconds: list[float]) -> float:
    """Median epoch time leaving out epoch 1 (tracing, first-call costs)."""
    rest = seconds[1:] or seconds
    return float(statistics.median(rest))


# --- prediction latency -------------------------------------------------------------------------

def bench_latency(run_dir: str, image_path: str, calls: int = LATENCY_CALLS) -> dict:
    """Median ms of one image through RunModel.probabilities vs the bare forward pass."""
    import tensorflow as tf

    from tlcore.ship.predict import RunModel
    from tlcore.training.train import save_atomic

    rm = RunModel(run_dir)
    model = rm.model
    image = rm.load(image_path)  # decoding is the same for both and not timed
    x = tf.constant(image[None].astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
    def compiled(t):
        return model(t, training=False)

    ways = {
        "runmodel": lambda: rm.probabilities(image[None]),
        "bare": lambda: np.asarray(model(x, training=False)),
        "bare_compiled": lambda: np.asarray(compiled(x)),
        "model_predict": lambda: model.predict(x, verbose=0),
    }
    for call in ways.values():  # warm-up: traces, first-call costs
        for _ in range(3):
            call()
    times: dict[str, list[float]] = {name: [] for name in ways}
    slow = ("bare", "model_predict")  # 10x slower: fewer calls keep the benchmark short
    for i in range(calls):  # in turns, so that a busy moment hits every way alike
        for name, call in ways.items():
            if name in slow and i >= max(10, calls // 3):
                continue
            t = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t)
    out = {name: 1000 * statistics.median(ts) for name, ts in times.items()}
    probs, bare = rm.probabilities(image[None]), np.asarray(model(x, training=False), dtype=np.float64)
    out["max_difference"] = float(np.abs(probs[:, :bare.shape[1]] - bare).max())
    saves = []
    with tempfile.TemporaryDirectory() as folder:  # what train's checkpoint costs, per save
        for _ in range(3):
            t = time.perf_counter()
            save_atomic(model, Path(folder) / "checkpoint.keras")
            saves.append(time.perf_counter() - t)
    out["checkpoint_save_seconds"] = statistics.median(saves)
    return out


# --- the report ---------------------------------------------------------------------------------

def _machine() -> dict:
    import keras
    import tensorflow as tf

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "gpus": len(tf.config.list_physical_devices("GPU")),
            "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "os": platform.platform()}


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}{unit}"
    if abs(value) >= 10:
        return f"{value:.1f}{unit}"
    return f"{value:.2f}{unit}" if abs(value) >= 0.1 else f"{value:.3f}{unit}"


def table(r: dict) -> str:
    """The side-by-side table as Markdown."""
    rows = [("Measurement", "TL Studio", "Baseline", "Ratio", "Target", "Met")]

    def row(name, ours, base, unit, ratio=None, target=None, higher=True):
        met = "" if target is None or ratio is None else (
            "yes" if (ratio >= target if higher else ratio <= target) else "**no**")
        t = "" if target is None else (f">= {target:g}x" if higher else f"<= {target:g}x")
        rows.append((name, _fmt(ours, unit), _fmt(base, unit), "" if ratio is None else f"{ratio:.2f}x", t, met))

    i = r["input"]
    row("Input, first epoch (cold cache), img/s", i["ours_first"], i["ffd_first"], "",
        i["ours_first"] / i["ffd_first"], TARGETS["input_first"])
    row("Input, later epochs, img/s", i["ours_later"], i["ffd_later"], "",
        i["ours_later"] / i["ffd_later"], TARGETS["input_later"])
    row("Input, first epoch incl. the scan (as tlcore train does it), img/s", i["ours_first_with_scan"], i["ffd_first"], "",
        i["ours_first_with_scan"] / i["ffd_first"])
    row("Input, new run on same data (decoded-image cache), img/s", i["ours_warm_cache"], i["ffd_first"], "",
        i["ours_warm_cache"] / i["ffd_first"])
    s = r["stage1"]
    e = r["args"]["epochs"]
    row(f"Stage 1, {e} epochs, whole process, s", s["ours_wall"], s["tutorial_wall"], " s",
        s["tutorial_wall"] / s["ours_wall"], TARGETS["stage1_wall"])
    if r.get("floor"):
        row(f"Stage 1, {e} epochs, whole process vs the floor (import, build, read, one pass), s",
            s["ours_wall"], r["floor"]["wall"], " s", s["ours_wall"] / r["floor"]["wall"], TARGETS["floor"],
            higher=False)
        row(f"Stage 1, {e} epochs, CPU time vs the floor's (robust on a busy machine), s",
            s["ours_cpu"], r["floor"]["cpu"], " s", s["ours_cpu"] / r["floor"]["cpu"], TARGETS["floor"],
            higher=False)
    row("Stage 1, one epoch (median of epochs 2+), s", s["ours_epoch"], s["tutorial_epoch"], " s",
        s["tutorial_epoch"] / s["ours_epoch"], TARGETS["stage1_epoch"])
    row("Stage 1, first epoch (includes tracing), s", s["ours_first_epoch"], s["tutorial_first_epoch"], " s",
        s["tutorial_first_epoch"] / s["ours_first_epoch"])
    rows.append((f"Stage 1, {e} epochs, test accuracy (not timed)", _fmt(s["ours_test_accuracy"]),
                 _fmt(s["tutorial_test_accuracy"]), f"{round(s['ours_test_accuracy'] - s['tutorial_test_accuracy'], 6) + 0.0:+.3f}",
                 "no lower", "yes" if s["ours_test_accuracy"] >= s["tutorial_test_accuracy"] - 1e-6 else "**no**"))
    row(f"Stage 1, {e} epochs, re-run (image + feature caches warm), s", s["ours_rerun_wall"],
        s["tutorial_wall"], " s", s["tutorial_wall"] / s["ours_rerun_wall"])
    row(f"Stage 1, {e} epochs, CPU time (user + system) of the process, s", s["ours_cpu"], s["tutorial_cpu"],
        " s", s["tutorial_cpu"] / s["ours_cpu"])
    f = r["fine_tune"]
    row("Stage 1, one epoch without the feature cache (tf.data, end to end), s", f["stage1_epoch"],
        s["tutorial_epoch"], " s", s["tutorial_epoch"] / f["stage1_epoch"])
    p = r["predict"]
    row("Predict 1 image: RunModel vs model(x, training=False), ms", p["runmodel"], p["bare"], " ms",
        p["runmodel"] / p["bare"], TARGETS["predict"], higher=False)
    row("Predict 1 image: RunModel vs tf.function(model), ms", p["runmodel"], p["bare_compiled"], " ms",
        p["runmodel"] / p["bare_compiled"], TARGETS["predict"], higher=False)
    row("Predict 1 image: RunModel vs model.predict (tutorials), ms", p["runmodel"], p["model_predict"], " ms",
        p["runmodel"] / p["model_predict"], higher=False)
    for key, name in (("last_third", "from the last third"), ("whole", "whole backbone")):
        row(f"Stage-2 epoch, {name} ({f[key]['trainable']:,} trainable) vs stage-1 end-to-end epoch, s",
            f[key]["stage2_epoch"], f[key]["stage1_epoch"], " s",
            f[key]["stage2_epoch"] / f[key]["stage1_epoch"], higher=False)
    widths = [max(len(str(x[k])) for x in rows) for k in range(len(rows[0]))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(x, widths)) + " |" for x in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def run(a: argparse.Namespace) -> dict:
    """Every measurement, in order; returns the results (see `table`)."""
    work = Path(tempfile.mkdtemp(prefix="tlcore-bench-"))
    restore = contextlib.ExitStack()  # the environment as it was, put back at the end
    t_all, load_start = time.perf_counter(), _load()
    try:
        if a.data:
            data = Path(a.data)
            info = describe_data(data)
            _log(f"dataset: {data} ({info['train']} train, {info['validation']} validation, "
                 f"{info['test']} test images)")
        else:
            data = work / "data"
            _log(f"dataset: {a.images} JPEG images, {len(CLASSES)} classes, in {data}")
            info = make_data(data, a.images)
        home_in = work / "home-inprocess"
        restore.enter_context(_environ(TLCORE_HOME=str(home_in)))
        import keras

        keras.utils.disable_interactive_logging()
        results: dict = {"args": {k: v for k, v in vars(a).items() if k != "json"}, "dataset": info,
                         "machine": _machine()}
        _log("input pipeline: decode once + tf.data vs flow_from_directory")
        load = _load()
        results["input"] = bench_input(data, a.size, a.backbone, a.batch_size, repeats=1 if a.quick else 3)
        results["input"]["load"] = [load, _load()]

        home = work / "home"  # a fresh home: the first run pays for decoding and features
        base = ("--head-epochs", str(a.epochs), "--fine-tune-epochs", "0")
        ours = train_process(data, home, work, a, "tlcore stage 1", *base, "--feature-cache", "on")
        rerun = train_process(data, home, work, a, "tlcore stage 1 again", *base, "--feature-cache", "on")
        tut = tutorial_process(data, home, work, a)
        results["floor"] = floor_process(data, home, work, a)
        seconds = [m["seconds"] for m in ours["metrics"]]
        tut_seconds = [m["seconds"] for m in tut["epochs"]]
        results["stage1"] = {
            "command": ours["command"], "ours_wall": ours["wall"], "ours_rerun_wall": rerun["wall"],
            "tutorial_wall": tut["wall"], "ours_epoch": _steady(seconds), "tutorial_epoch": _steady(tut_seconds),
            "ours_first_epoch": seconds[0], "tutorial_first_epoch": tut_seconds[0],
            "ours_epoch_seconds": seconds, "tutorial_epoch_seconds": tut_seconds,
            "ours_sum_epochs": sum(seconds), "tutorial_sum_epochs": sum(tut_seconds),
            "ours_cpu": ours["cpu"], "ours_rerun_cpu": rerun["cpu"], "tutorial_cpu": tut["cpu"],
            "load": {"ours": ours["load"], "rerun": rerun["load"], "tutorial": tut["load"]},
            "feature_cache": ours["status"].get("feature_cache"),
            "ours_checkpoint_saves": _improvements([m.get("val_loss") for m in ours["metrics"]]),
            "ours_val_accuracy": ours["metrics"][-1].get("val_accuracy"),
            "tutorial_val_accuracy": tut["epochs"][-1].get("val_accuracy"),
            "ours_test_accuracy": test_accuracy(ours["run_dir"], home, work),
            "tutorial_test_accuracy": tut["test_accuracy"]}

        _log("prediction latency, one image")
        from tlcore.data.images import is_image_name

        image = next(f for f in sorted((data / "validation").rglob("*")) if is_image_name(f.name))
        load = _load()
        results["predict"] = bench_latency(ours["run_dir"], str(image), 20 if a.quick else LATENCY_CALLS)
        results["predict"]["load"] = [load, _load()]
        results["stage1"]["checkpoint_save_seconds"] = results["predict"].pop("checkpoint_save_seconds")

        # Each run times its own end-to-end stage-1 epoch next to its stage-2 epoch, so that the
        # ratio compares epochs run minutes, not quarter-hours, apart on a shared machine.
        two = ("--head-epochs", "2", "--fine-tune-epochs", "2", "--feature-cache", "off")
        results["fine_tune"] = {}
        for key, label, options in (("last_third", "fine-tune from the last third", ()),
                                    ("whole", "fine-tune the whole backbone", ("--unfreeze-from", "0"))):
            ft = train_process(data, home, work, a, label, *two, *options)
            stage1 = [m["seconds"] for m in ft["metrics"] if m["stage"] == 1]
            stage2 = [m["seconds"] for m in ft["metrics"] if m["stage"] == 2]
            results["fine_tune"][key] = {
                "stage1_epoch": stage1[-1], "stage2_epoch": stage2[-1], "load": ft["load"],
                "trainable": ft["status"].get("parameters", {}).get("trainable", 0)}
        results["fine_tune"]["stage1_epoch"] = min(results["fine_tune"][k]["stage1_epoch"]
                                                   for k in ("last_third", "whole"))
        results["seconds"] = time.perf_counter() - t_all
        results["load"] = [load_start, _load()]
        return results
    finally:
        restore.close()
        if a.keep:
            _log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _improvements(losses: list) -> int:
    best, n = None, 0
    for v in losses:
        if v is None or best is None or v < best:
            best, n = v, n + 1
    return n


def main(argv: list[str] | None = None) -> int:
    """The command line: measure, then print the table (or one JSON document) on stdout."""
    with _environ(TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")):
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    a = _parse(argv)
    stdout = sys.stdout
    sys.stdout = sys.stderr  # Keras and TensorFlow print to stdout; only the answer goes there
    try:
        results = run(a)
    except RuntimeError as exc:  # a timed process failed: say which, and how
        sys.stdout = stdout
        print(f"error: {exc}", file=sys.stderr)
        if a.json:
            print(json.dumps({"error": str(exc).splitlines()[0]}))
        return 1
    finally:
        sys.stdout = stdout
    if a.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        m = results["machine"]
        print(f"{m['cores']} cores ({m['cpu']}), {m['gpus']} GPU; TensorFlow {m['tensorflow']}, "
              f"Keras {m['keras']}; {a.backbone} at {a.size} px, weights {a.weights}; "
              f"{results['dataset']['train']} train + {results['dataset']['validation']} validation images; "
              f"benchmark took {results['seconds']:.0f} s; 1-minute load average "
              f"{results['load'][0]} at the start, {results['load'][1]} at the end\n")
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
