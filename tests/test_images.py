"""tlcore.data.images: every image read the same way (orientation, modes, transparency, resizing)."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tlcore.data.images import (ImageProblem, check_image, is_ignored, is_image_name, load_image,
                           open_rgb, resize)

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _halves(width=32, height=16, left=RED, right=BLUE) -> Image.Image:
    """Left half `left`, right half `right`."""
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    arr[:, : width // 2] = left
    arr[:, width // 2:] = right
    return Image.fromarray(arr, "RGB")


def _close(pixel, colour, tol=40) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, dtype=int) - np.array(colour)) <= tol))


# ------------------------------------------------------------------------------ orientation


def _jpeg_with_orientation(path, orientation: int):
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    _halves().save(path, quality=95, exif=exif)
    return path


def test_exif_orientation_is_applied(tmp_path):
    path = _jpeg_with_orientation(tmp_path / "phone.jpg", 6)
    with Image.open(path) as raw:
        assert raw.size == (32, 16)  # stored sideways
    upright = open_rgb(path)
    assert upright.size == (16, 32)  # Orientation 6: rotate 90 degrees clockwise to show
    arr = load_image(path, 16)
    assert arr.shape == (16, 16, 3) and arr.dtype == np.uint8
    # The left (red) half of the stored image ends up on top once rotated.
    assert _close(arr[2, 8], RED) and _close(arr[13, 8], BLUE)
    assert _close(arr[2, 2], RED) and _close(arr[2, 13], RED)


def test_orientation_1_is_left_alone(tmp_path):
    arr = load_image(_jpeg_with_orientation(tmp_path / "plain.jpg", 1), 16)
    assert _close(arr[8, 2], RED) and _close(arr[8, 13], BLUE)


def test_exif_orientation_in_pad_mode(tmp_path):
    path = _jpeg_with_orientation(tmp_path / "phone.jpg", 6)
    arr = load_image(path, 16, mode="pad")
    # Upright the image is 16 wide x 32 tall: padded left and right, black borders.
    assert np.all(arr[:, :3] < 20) and np.all(arr[:, -3:] < 20)
    assert _close(arr[3, 8], RED) and _close(arr[12, 8], BLUE)


# ------------------------------------------------------------------------------ modes


def test_rgba_transparent_pixels_become_white(tmp_path):
    arr = np.zeros((8, 8, 4), dtype=np.uint8)
    arr[..., 0] = 200                 # red everywhere ...
    arr[:, :4, 3] = 0                 # ... fully transparent on the left
    arr[:, 4:, 3] = 255               # ... opaque on the right
    path = tmp_path / "alpha.png"
    Image.fromarray(arr, "RGBA").save(path)
    out = load_image(path, 8)
    assert np.array_equal(out[:, :3], np.full((8, 3, 3), 255))
    assert np.array_equal(out[:, 5:], np.broadcast_to([200, 0, 0], (8, 3, 3)))


def test_half_transparent_is_blended_on_white():
    im = Image.new("RGBA", (4, 4), (0, 0, 0, 128))
    out = np.asarray(open_rgb(im))
    assert np.all(np.abs(out.astype(int) - 127) <= 1)


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (8, 8), 0)
    im.putpalette([0, 255, 0] + [255, 0, 0] + [0] * (254 * 3))
    im.paste(1, (4, 0, 8, 8))  # right half palette index 1 (red)
    im.info["transparency"] = 0  # index 0 (green) is transparent
    path = tmp_path / "palette.png"
    im.save(path, transparency=0)
    with Image.open(path) as check:
        assert check.mode == "P" and "transparency" in check.info
    out = load_image(path, 8)
    assert np.array_equal(out[:, :4], np.full((8, 4, 3), 255))  # not green, not black
    assert np.array_equal(out[:, 4:], np.broadcast_to(RED, (8, 4, 3)))


def test_palette_without_transparency(tmp_path):
    im = Image.new("P", (8, 8), 0)
    im.putpalette([10, 20, 30] + [0] * (255 * 3))
    path = tmp_path / "palette.gif"
    im.save(path)
    assert np.array_equal(load_image(path, 4), np.broadcast_to([10, 20, 30], (4, 4, 3)))


def test_grey_l_becomes_three_equal_channels(tmp_path):
    arr = np.tile(np.arange(0, 256, 32, dtype=np.uint8), (8, 1))
    path = tmp_path / "grey.png"
    Image.fromarray(arr, "L").save(path)
    out = load_image(path, 8)
    assert out.shape == (8, 8, 3)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert np.array_equal(out[..., 0], arr)


def test_grey_with_alpha(tmp_path):
    im = Image.new("LA", (4, 4), (0, 0))  # black, fully transparent
    path = tmp_path / "la.png"
    im.save(path)
    assert np.array_equal(load_image(path, 4), np.full((4, 4, 3), 255))


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    out = load_image(path, 8)
    assert out.shape == (8, 8, 3)
    assert _close(out[4, 4], RED, tol=10)


def test_16_bit_png_is_scaled_to_8_bits(tmp_path):
    arr = np.zeros((8, 8), dtype=np.uint16)
    arr[:, 2:5] = 32768
    arr[:, 5:] = 65535
    path = tmp_path / "depth.png"
    Image.fromarray(arr).save(path)
    with Image.open(path) as check:
        assert check.mode == "I;16"
    out = load_image(path, 8)
    assert out.dtype == np.uint8
    assert np.all(out[:, :2] == 0)
    assert np.all(out[:, 2:5] == 128)
    assert np.all(out[:, 5:] == 255)


def test_dark_16_bit_png_stays_dark(tmp_path):
    path = tmp_path / "dark.png"
    Image.fromarray(np.full((4, 4), 200, dtype=np.uint16)).save(path)  # 200 of 65535
    assert np.all(load_image(path, 4) <= 1)


def test_32_bit_integer_and_float_images():
    as_int = Image.fromarray(np.full((4, 4), 100, dtype=np.int32), mode="I")
    assert np.all(np.asarray(open_rgb(as_int)) == 100)  # within 0..255: taken as 8-bit values
    as_float = Image.fromarray(np.tile(np.array([0.0, 0.5, 1.0, 1.0], dtype=np.float32), (4, 1)), mode="F")
    out = np.asarray(open_rgb(as_float))[..., 0]
    assert out[0, 0] == 0 and out[0, 3] == 255 and 120 <= out[0, 1] <= 130


def test_animated_gif_first_frame(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (8, 8), c) for c in (RED, BLUE, (0, 255, 0))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 3
    out = load_image(path, 8)
    assert _close(out[4, 4], RED, tol=5)


def test_open_rgb_accepts_a_stream_and_a_pil_image():
    buf = io.BytesIO()
    _halves().save(buf, format="PNG")
    buf.seek(0)
    a = load_image(buf, 16)
    b = load_image(_halves(), 16)
    assert np.array_equal(a, b)


# ------------------------------------------------------------------------------ problems


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageProblem, match="^empty file$"):
        load_image(path, 8)
    with pytest.raises(ImageProblem, match="^empty file$"):
        open_rgb(path)


def test_check_image_calls_an_empty_file_empty(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert check_image(path) == "empty file"


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\n")
    with pytest.raises(ImageProblem, match="not an image"):
        load_image(path, 8)
    assert "not an image" in check_image(path)


def test_truncated_jpeg(tmp_path):
    full = tmp_path / "full.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full, quality=95)
    data = full.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageProblem) as err:
        load_image(path, 16)
    assert "truncated" in str(err.value)
    assert "truncated" in check_image(path)
    assert check_image(full) is None


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    """A PNG whose header claims 20000x20000 pixels (the data is a few bytes)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b""))
    path = tmp_path / "bomb.png"
    path.write_bytes(png)
    with pytest.raises(ImageProblem, match="too large"):
        load_image(path, 8)
    assert "too large" in check_image(path)


# ------------------------------------------------------------------------------ resizing


def test_stretch_pad_and_crop():
    im = _halves(32, 16)  # wide: red left, blue right
    stretched = load_image(im, 16, "stretch")
    assert _close(stretched[0, 2], RED) and _close(stretched[15, 13], BLUE)

    padded = load_image(im, 16, "pad")
    # Aspect 2:1 kept: 16x8 in the middle, black bars of 4 rows above and below.
    assert np.all(padded[:4] == 0) and np.all(padded[12:] == 0)
    assert _close(padded[8, 2], RED) and _close(padded[8, 13], BLUE)

    cropped = load_image(im, 16, "crop")
    # Centre 16x16 of the 32x16 image: columns 8..23, half red, half blue, no bars.
    assert _close(cropped[0, 2], RED) and _close(cropped[15, 13], BLUE)
    assert not np.any(np.all(cropped == 0, axis=-1))


def test_crop_keeps_the_centre_of_a_tall_image():
    arr = np.zeros((30, 10, 3), dtype=np.uint8)
    arr[:10] = RED
    arr[10:20] = (0, 255, 0)
    arr[20:] = BLUE
    out = load_image(Image.fromarray(arr), 10, "crop")
    assert np.all(out == (0, 255, 0))


def test_unknown_resize_mode():
    with pytest.raises(ValueError, match="stretch, pad, crop"):
        resize(_halves(), 8, "fit")


def test_names():
    assert is_image_name("a.JPG") and is_image_name("b.webp") and not is_image_name("c.txt")
    assert is_ignored(".DS_Store") and is_ignored("Thumbs.db") and is_ignored(".hidden.png")
    assert not is_ignored("cat.png")


def test_heic_photo_from_a_phone_is_read(tmp_path):
    """HEIC (pillow-heif plug-in): read, oriented and resized like any other photo."""
    import numpy as np
    from PIL import Image

    from tlcore.data.pipeline import scan
    from tlcore.data.images import check_image, is_image_name, load_image

    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (250, 0, 0)
    path = tmp_path / "photo.HEIC"
    Image.fromarray(arr).save(path, format="HEIF")
    assert is_image_name(path.name)
    assert check_image(path) is None
    out = load_image(path, 8)
    assert out.shape == (8, 8, 3)
    assert out[4, 1, 0] > 200 and out[4, 6, 0] < 60  # left half red, right half black
    for c in ("a", "b"):
        (tmp_path / "ds" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(arr).save(tmp_path / "ds" / c / f"{i}.heic", format="HEIF")
    ds = scan(tmp_path / "ds", 0.34, 0.0)
    counts = ds.counts()
    assert ds.problems == [] and sum(sum(counts[s].values()) for s in counts) == 6
    assert all(counts["train"][c] >= 1 and counts["validation"][c] >= 1 for c in ("a", "b"))
