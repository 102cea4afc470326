"""The int8 calibration set as rows read on demand: a run's training images (an array or a
split's cache file) and flipped, cropped copies of them, each image read and its copy made
only when the converter asks for it (`tflite.calibration_set` says what the set holds)."""
from __future__ import annotations

import numpy as np

from ..data.mapped import Rows, read_rows


class CalibrationRows(Rows):
    """`images` [n, h, w, 3] then `total - n` augmented copies, float32 RGB 0-255, where total is
    n clipped to [least, most] (never fewer than n; the copies cycle through the originals).
    The crops are drawn from `seed` when the set is made, so the same images and seed give the
    same set however it is read."""

    def __init__(self, images, seed: int, least: int, most: int):
        self.images = images
        n = len(images)
        total = max(n, min(most, max(least, 2 * n))) if n else 0
        self.shape, self.dtype = (total, *images.shape[1:]), np.dtype(np.float32)
        rng = np.random.default_rng(seed)
        h, w = images.shape[1:3]
        self.crops = []  # (flip, top, left, height, width) of each copy, drawn in order
        for _ in range(total - n):
            flip = bool(rng.random() < 0.5)
            ch, cw = max(1, int(round(h * rng.uniform(0.7, 1.0)))), max(1, int(round(w * rng.uniform(0.7, 1.0))))
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            self.crops.append((flip, top, left, ch, cw))

    def read(self, indexes) -> np.ndarray:
        from PIL import Image

        idx = np.asarray(indexes, dtype=np.int64).reshape(-1)
        n, (h, w) = len(self.images), self.shape[1:3]
        out = np.empty((len(idx), *self.shape[1:]), np.float32)
        if not len(idx):
            return out
        rows = read_rows(self.images, np.where(idx < n, idx, (idx - n) % max(n, 1)))
        for j, (i, img) in enumerate(zip(idx, rows)):
            if i < n:
                out[j] = img
                continue
            flip, top, left, ch, cw = self.crops[i - n]
            img = img[:, ::-1] if flip else img
            crop = np.clip(img[top:top + ch, left:left + cw], 0, 255).astype(np.uint8)
            out[j] = np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR), dtype=np.float32)
        return out
