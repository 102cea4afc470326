"""Plant known problems in a split-layout dataset: wrong-class images, resized or re-encoded
copies across splits, noise images. Used by the audit tests and the measurement script."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def plant(root, wrong: int = 6, copies: int = 4, noise: int = 0, seed: int = 0) -> dict:
    """Move `wrong` train images into another class, copy `copies` train images (resized,
    re-encoded as JPEG, or lightly cropped) into validation/test, add `noise` noise images.

    Returns:
        {wrong: [new path], copies: [(original, copy)], noise: [path]} (absolute paths)
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    out: dict = {"wrong": [], "copies": [], "noise": []}
    for k in range(wrong):
        src_class = classes[k % len(classes)]
        dst_class = classes[(k + 1) % len(classes)]
        files = _images(root / "train" / src_class)
        src = files[int(rng.integers(len(files)))]
        dst = root / "train" / dst_class / f"moved_{k}{src.suffix}"
        shutil.move(str(src), dst)
        out["wrong"].append(str(dst.resolve()))
    targets = [s for s in ("validation", "test") if (root / s).is_dir()] or ["train"]
    for k in range(copies):
        cls = classes[k % len(classes)]
        files = [f for f in _images(root / "train" / cls) if not f.name.startswith("moved_")]
        src = files[len(files) // 2 + k]
        im = Image.open(src).convert("RGB")
        w, h = im.size
        split = targets[k % len(targets)]
        dst = root / split / cls / f"copy_{k}.jpg"
        kind = k % 3
        if kind == 0:
            im = im.resize((int(w * 1.5), int(h * 1.5)), Image.BICUBIC)
        elif kind == 2:
            im = im.crop((2, 2, w - 2, h - 2))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=85)
        dst.write_bytes(buf.getvalue())
        out["copies"].append((str(src.resolve()), str(dst.resolve())))
    for k in range(noise):
        cls = classes[k % len(classes)]
        size = Image.open(_images(root / "train" / cls)[0]).size
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        dst = root / "train" / cls / f"noise_{k}.png"
        Image.fromarray(arr).save(dst)
        out["noise"].append(str(dst.resolve()))
    return out
