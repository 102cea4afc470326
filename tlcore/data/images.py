"""Read one image the one way the studio reads every image.

EXIF orientation applied, first frame of an animation, any mode (grey, palette, CMYK,
16-bit) converted to 8-bit RGB, transparency composited on white, then resized to a square
by stretching (default), padding or centre-cropping. Decompression bombs are refused
before any pixel is decoded. Thumbnails and pictures to show are read the same way.

Every way a decoder fails on a hostile or broken file (a Pillow plug-in's OSError, ValueError,
TypeError, NotImplementedError, struct.error, EOFError, MemoryError, or anything else it raises)
becomes an `ImageProblem` whose message is the reason, so one bad file is listed as skipped
and never stops a scan, an import, training, evaluation or a server.
"""
from __future__ import annotations

import io
import os
import warnings
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
        with warnings.catch_warnings():  # a broken file's warnings become its reason, not noise
            warnings.simplefilter("ignore")
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
    except MemoryError:
        raise ImageProblem("cannot decode: not enough memory for this image") from None
    except Exception as exc:  # whatever a plug-in raises on a broken file
        raise ImageProblem(f"cannot decode: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    reason = str(exc) or type(exc).__name__
    if "truncated" in reason:
        return "truncated image file"
    if not isinstance(exc, (OSError, ValueError, SyntaxError, EOFError)):
        reason = f"{type(exc).__name__}: {reason}" if str(exc) else reason
    return reason[:300]


_UINT16 = {"I;16": "<u2", "I;16L": "<u2", "I;16B": ">u2", "I;16N": "=u2"}
ROWS_AT_ONCE = 256  # wide images are converted in bands of rows, so a float copy never holds them whole


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        if mode in _UINT16:  # a view of the one bytes copy, not a second array
            arr = np.frombuffer(im.tobytes(), dtype=_UINT16[mode]).reshape(im.size[1], im.size[0])
        else:
            arr = np.asarray(im)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        out = np.empty(arr.shape, np.uint8)
        for r in range(0, arr.shape[0], ROWS_AT_ONCE):  # same rounding as one pass, a band's memory
            band = arr[r:r + ROWS_AT_ONCE].astype(np.float64)
            out[r:r + ROWS_AT_ONCE] = np.clip(band / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        del arr
        im = Image.fromarray(out, mode="L")
    elif mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ImageProblem("cannot decode: floating-point pixels that are not finite numbers")
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
        return _resized(open_rgb(source), size, mode)
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    with _open(source) as im:
        if im.format == "JPEG":
            _draft(im, size)
        return _resized(open_rgb(im), size, mode)


def _from_array(frame: np.ndarray) -> Image.Image:
    """A decoded frame (uint8 grey, RGB or RGBA) as a PIL image, without copying its meaning."""
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise ImageProblem(f"an image array must be uint8 [height, width] or [height, width, 3 or 4]. "
                           f"Received: dtype {frame.dtype}, shape {frame.shape}")
    return Image.fromarray(np.ascontiguousarray(frame))


def _resized(im: Image.Image, size: int, mode: str) -> np.ndarray:
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}. Received: {mode!r}")
    try:
        return np.asarray(resize(im, size, mode), dtype=np.uint8)
    except MemoryError:
        raise ImageProblem("cannot decode: not enough memory for this image") from None
    except Exception as exc:
        raise ImageProblem(f"cannot decode: {_reason(exc)}") from None


def _draft(im: Image.Image, size: int) -> None:
    """JPEG DCT scaling to at least `size`; a header that refuses it is found when decoding."""
    try:
        im.draft("RGB", (size, size))
    except Exception:
        pass


def image_size(source) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding a pixel; a stream is left at its start.

    Raises:
        ImageProblem: not an image, or a header Pillow cannot read.
    """
    try:
        with _open(source) as im:
            width, height = im.size
    except ImageProblem:
        raise
    except Exception as exc:  # closing a broken file can raise too
        raise ImageProblem(_open_reason(exc)) from None
    finally:
        if hasattr(source, "seek"):
            source.seek(0)
    return int(width), int(height)


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
                _draft(probe, 64)
            open_rgb(probe)
    except ImageProblem as exc:
        return str(exc)
    except Exception as exc:  # closing a broken file can raise too
        return _open_reason(exc)
    return None


def _open(source) -> Image.Image:
    """Image.open with every way it fails turned into an ImageProblem with the reason."""
    if isinstance(source, (str, Path)):
        try:
            empty = Path(source).stat().st_size == 0
        except OSError as exc:  # gone since the scan, unreadable: a reason like any other
            raise ImageProblem(f"cannot open: {exc.strerror or exc}") from None
        if empty:
            raise ImageProblem("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(source)
    except UnidentifiedImageError:
        raise ImageProblem("not an image (Pillow cannot identify it)") from None
    except Image.DecompressionBombError:
        raise ImageProblem(f"image too large: above the limit of {MAX_PIXELS} pixels") from None
    except Exception as exc:  # whatever a plug-in's header parser raises
        raise ImageProblem(_open_reason(exc)) from None


def _open_reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "too large" in text or "MAX_TEXT_CHUNK" in text:
        return "image too large: metadata decompresses beyond Pillow's limit"
    if isinstance(exc, MemoryError):
        return "cannot open: not enough memory for this image"
    return f"cannot open: {_reason(exc)}"


def thumbnail(path: str | os.PathLike, size: int = 96) -> np.ndarray | None:
    """A square RGB thumbnail read the studio's way (centre crop), or None if unreadable."""
    try:
        return load_image(path, size, "crop")
    except (ImageProblem, OSError, ValueError):
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
