"""Read one image the one way the studio reads every image.

EXIF orientation applied, first frame of an animation, any mode (grey, palette, CMYK,
16-bit) converted to 8-bit RGB, transparency composited on white, then resized to a square
by stretching (default), padding or centre-cropping. Decompression bombs are refused
before any pixel is decoded. Thumbnails and pictures to show are read the same way.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
HEIF_EXTENSIONS = {".heic", ".heif"}
IGNORED_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
ARCHIVE_EXTENSIONS = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"}
MAX_PIXELS = 80_000_000
RESIZE_MODES = ("stretch", "pad", "crop")

try:  # HEIC photos from phones
    import pillow_heif

    pillow_heif.register_heif_opener()
    IMAGE_EXTENSIONS |= HEIF_EXTENSIONS
except Exception:  # pragma: no cover - optional plug-in
    pass

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageProblem(Exception):
    """Why a file cannot be used as an image; the message is the reason shown to users."""


def is_ignored(name: str) -> bool:
    """Files users never mean as data: hidden files, macOS and Windows litter."""
    return name.startswith(".") or name.lower() in IGNORED_NAMES or name == "__MACOSX"


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def open_rgb(source) -> Image.Image:
    """Open a path, bytes stream or PIL image as an 8-bit RGB image, orientation applied.

    Raises:
        ImageProblem: empty, not an image, truncated, or larger than MAX_PIXELS.
    """
    im = source if isinstance(source, Image.Image) else _open(source)
    width, height = im.size
    if width * height > MAX_PIXELS:
        raise ImageProblem(f"image too large: {width}x{height} pixels is above the limit of {MAX_PIXELS}")
    if width < 1 or height < 1:
        raise ImageProblem(f"image has no pixels ({width}x{height})")
    try:
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
        im.load()
        if im.getexif().get(0x0112, 1) != 1:  # only rotated photos pay for a transposed copy
            im = ImageOps.exif_transpose(im)
        return _to_rgb(im)
    except ImageProblem:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageProblem(f"image too large: {exc}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason:
            reason = "truncated image file"
        raise ImageProblem(f"cannot decode: {reason}") from None


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        im = Image.fromarray(arr, mode="L")
    elif mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo or 1.0) * 255.0
        im = Image.fromarray(arr.astype(np.uint8), mode="L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("LA", "PA", "La"):
        im = im.convert("RGBA")
    if im.mode == "RGBa":
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    if im.mode == "L" and "transparency" in im.info:
        return _to_rgb(im.convert("RGBA"))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im


def resize(im: Image.Image, size: int, mode: str = "stretch") -> Image.Image:
    """Square `size`x`size`: stretch, pad (black borders, aspect kept) or centre crop."""
    if mode == "stretch":
        return im.resize((size, size), Image.BILINEAR)
    width, height = im.size
    if mode == "crop":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return im.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    if mode == "pad":
        scale = size / max(width, height)
        new = (max(1, round(width * scale)), max(1, round(height * scale)))
        canvas = Image.new("RGB", (size, size), (0, 0, 0))
        canvas.paste(im.resize(new, Image.BILINEAR), ((size - new[0]) // 2, (size - new[1]) // 2))
        return canvas
    raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}. Received: {mode!r}")


def load_image(source, size: int, mode: str = "stretch") -> np.ndarray:
    """`size`x`size`x3 uint8 RGB array of an image: the one pixel path of the studio.

    Every way an image arrives goes through here, so the same picture becomes the same array:
    a path, bytes, a binary stream (an upload, a served request), a PIL image (a video frame) or
    a uint8 array [h, w] / [h, w, 3|4] (a camera frame). An encoded JPEG (path, bytes or stream)
    is decoded at a reduced scale (Pillow's draft, a power of two) that is still at least `size`:
    the same rule whichever way the file came. Pixels already decoded are only resized.

    Raises:
        ImageProblem: the image cannot be used; the message says why.
    """
    if isinstance(source, np.ndarray):
        source = _from_array(source)
    if isinstance(source, Image.Image):
        return np.asarray(resize(open_rgb(source), size, mode), dtype=np.uint8)
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    with _open(source) as im:
        if im.format == "JPEG":
            im.draft("RGB", (size, size))
        return np.asarray(resize(open_rgb(im), size, mode), dtype=np.uint8)


def _from_array(frame: np.ndarray) -> Image.Image:
    """A decoded frame (uint8 grey, RGB or RGBA) as a PIL image, without copying its meaning."""
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise ImageProblem(f"an image array must be uint8 [height, width] or [height, width, 3 or 4]. "
                           f"Received: dtype {frame.dtype}, shape {frame.shape}")
    return Image.fromarray(np.ascontiguousarray(frame))


def check_image(path) -> str | None:
    """None if the file decodes as an image, else the reason it cannot be used."""
    try:
        if Path(path).stat().st_size == 0:
            return "empty file"
    except OSError as exc:
        return f"cannot open: {exc.strerror or exc}"
    try:
        with _open(path) as probe:
            if probe.format == "JPEG":
                probe.draft("RGB", (64, 64))
            open_rgb(probe)
    except ImageProblem as exc:
        return str(exc)
    except (OSError, ValueError, SyntaxError) as exc:
        return _open_reason(exc)
    return None


def _open(source) -> Image.Image:
    """Image.open with every way it fails turned into an ImageProblem with the reason."""
    if isinstance(source, (str, Path)) and Path(source).stat().st_size == 0:
        raise ImageProblem("empty file")
    try:
        return Image.open(source)
    except UnidentifiedImageError:
        raise ImageProblem("not an image (Pillow cannot identify it)") from None
    except Image.DecompressionBombError:
        raise ImageProblem(f"image too large: above the limit of {MAX_PIXELS} pixels") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageProblem(_open_reason(exc)) from None


def _open_reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "too large" in text or "MAX_TEXT_CHUNK" in text:
        return "image too large: metadata decompresses beyond Pillow's limit"
    if "truncated" in text:
        return "truncated image file"
    return f"cannot open: {text}"


def thumbnail(path: str | os.PathLike, size: int = 96) -> np.ndarray | None:
    """A square RGB thumbnail read the studio's way (centre crop), or None if unreadable."""
    try:
        return load_image(path, size, "crop")
    except (ImageProblem, OSError):
        return None


def display_image(source, max_side: int = 320) -> np.ndarray | None:
    """An image (path or file-like) read the studio's way, scaled to fit `max_side`, for showing.

    Returns None when it cannot be read.
    """
    try:
        if hasattr(source, "seek"):
            source.seek(0)
        im = open_rgb(source)
        im.thumbnail((max_side, max_side))
        return np.asarray(im, dtype=np.uint8)
    except (ImageProblem, OSError):
        return None
    finally:
        if hasattr(source, "seek"):
            source.seek(0)
