"""Videos for Chromium's fake camera (--use-file-for-fake-video-capture=FILE.y4m), made from pictures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT, FPS = 320, 240, 15


def _yuv420(rgb: np.ndarray) -> bytes:
    """Full-range BT.601 (what the C420jpeg colour space means), chroma averaged over 2x2."""
    x = rgb.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    sub = lambda c: c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3))  # noqa: E731
    planes = [y, sub(u), sub(v)]
    return b"".join(np.clip(np.round(p), 0, 255).astype(np.uint8).tobytes() for p in planes)


def frame_of(picture, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A picture (path, PIL image or array) stretched to the whole 320x240 frame (the live view
    stretches frames back to the model's square input, so the model sees the picture's shape)."""
    im = picture if isinstance(picture, Image.Image) else \
        Image.fromarray(picture) if isinstance(picture, np.ndarray) else Image.open(picture)
    return np.asarray(im.convert("RGB").resize((width, height), Image.BILINEAR))


def write_y4m(path, pictures, seconds_each: float = 1.0, fps: int = FPS) -> Path:
    """Each picture shown for `seconds_each` (a still video when one picture is given); Chromium loops it."""
    path = Path(path)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for picture in pictures:
            data = _yuv420(frame_of(picture))
            for _ in range(max(1, int(round(seconds_each * fps)))):
                f.write(b"FRAME\n")
                f.write(data)
    return path
