"""A small greyscale benchmark dataset: scikit-learn's bundled handwritten digits (no download).

`sklearn.datasets.load_digits` ships 1,797 greyscale 8x8 images of the digits 0-9 (UCI's optical
recognition of handwritten digits, 43 writers) inside scikit-learn itself. This script writes a
seeded sample of them as a folder-per-class dataset, scaled up to 32x32 PNG (nearest neighbour,
so no detail is invented): the kind of small greyscale set where a classical model on the raw
pixels is hard to beat, and where the baselines beside every run (tlcore.evaluation.baselines)
earn their place.

    python -m benchmarks.digits OUT [--per-class 50] [--seed 0]

writes OUT/{train,validation,test}/<digit>/*.png (60/20/20 per class, like benchmarks/datasets.py).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def write_digits(out: Path, per_class: int = 50, seed: int = 0, size: int = 32) -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    counts: dict = {}
    for label in range(10):
        picks = rng.permutation(np.flatnonzero(digits.target == label))[:per_class]
        n_train, n_val = int(round(len(picks) * 0.6)), int(round(len(picks) * 0.2))
        for i, index in enumerate(picks):
            split = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
            folder = Path(out) / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (digits.images[index] * (255 / 16)).clip(0, 255).astype("uint8")
            Image.fromarray(pixels, mode="L").resize((size, size), Image.NEAREST).save(folder / f"{label}_{index}.png")
            counts.setdefault(split, {}).setdefault(str(label), 0)
            counts[split][str(label)] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description="Write scikit-learn's digits as a folder-per-class dataset.")
    parser.add_argument("out")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    counts = write_digits(Path(a.out), a.per_class, a.seed)
    print({split: sum(c.values()) for split, c in counts.items()})


if __name__ == "__main__":
    main()
