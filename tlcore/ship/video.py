"""Video files: their frames read with PyAV (imported here only) and classified like images.

A frame is read as an RGB picture and then goes the one way every image goes (`images`:
resize mode of the run), through the run's one traced prediction function (`predict`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..core.errors import OptionError, TLCoreError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
BATCH = 16


def is_video_name(name) -> bool:
    return Path(str(name)).suffix.lower() in VIDEO_EXTENSIONS


def _av():
    try:
        import av
    except ImportError:  # pragma: no cover - PyAV is in requirements.txt
        raise TLCoreError("Reading videos needs PyAV: pip install av") from None
    return av


def frames(source, every: int = 1) -> Iterator[tuple[int, float, "object"]]:
    """(index from 0, time in seconds, PIL RGB image) of every `every`-th frame of a video.

    `source` is a path or a binary stream (an upload).

    Raises:
        OptionError: `every` below 1.
        TLCoreError: the file is not a video PyAV can read.
    """
    if int(every) < 1:
        raise OptionError("every", f"must be 1 or more (1 keeps every frame). Received: {every}")
    av = _av()
    name = getattr(source, "name", source)
    try:
        container = av.open(str(source) if isinstance(source, (str, Path)) else source, mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise TLCoreError(f"Cannot read the video {name}: {exc}. Give a .mp4, .mov, .avi, .mkv or "
                          ".webm file that a video player opens.") from None
    with container:
        if not container.streams.video:
            raise TLCoreError(f"{name} has no video stream.")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i % int(every):
                    continue
                time = float(frame.time) if frame.time is not None else i / rate
                yield i, time, frame.to_image()
        except av.error.FFmpegError as exc:
            raise TLCoreError(f"The video {name} is damaged after its first frames: {exc}") from None


def predict_video(rm, source, every: int = 1, top_k: int = 5, label: str | None = None,
                  smooth: float | None = None) -> list[dict]:
    """[{image: "NAME#frame=N", time, top}] for every `every`-th frame, batch by batch.

    Args:
        rm: a `predict.RunModel`.
        source: path or binary stream of the video.
        label: the name shown before `#frame=` (the path given, by default).
        smooth: a time constant in seconds: each `top` is then the smoothed ranking of
            `smooth.Smoother` (the shown label first, its smoothed probability); None: every
            frame on its own.

    Raises:
        OptionError: `smooth` not above 0.
    """
    from ..data.images import load_image
    from .predict import top_labels
    from .smooth import Smoother, ranked

    smoother = None if smooth is None else Smoother(smooth)
    name = label if label is not None else str(getattr(source, "name", source))
    out: list[dict] = []
    batch: list[tuple[int, float, np.ndarray]] = []

    def flush() -> None:
        if not batch:
            return
        probs = rm.probabilities(np.stack([b[2] for b in batch]))
        for (i, t, _), p in zip(batch, probs):
            if smoother is None:
                top = top_labels(p, rm.labels, top_k)
            else:
                top = ranked(*smoother.update(p, t), rm.labels, top_k)
            out.append({"image": f"{name}#frame={i}", "time": round(t, 6), "top": top})
        batch.clear()

    for i, t, im in frames(source, every):
        batch.append((i, t, load_image(im, rm.input_size, rm.resize)))
        if len(batch) >= BATCH:
            flush()
    flush()
    if not out:
        raise TLCoreError(f"The video {name} has no frames to classify.")
    return out


def write_video(path, images, fps: int = 15, codec: str | None = None) -> Path:
    """Write RGB uint8 arrays (all one size, even sides) as a video file; for tests and demos."""
    av = _av()
    path = Path(path)
    images = [np.asarray(im, dtype=np.uint8) for im in images]
    if not images:
        raise TLCoreError("No frames to write.")
    h, w = images[0].shape[:2]
    codec = codec or {".webm": "libvpx", ".avi": "mjpeg", ".mkv": "ffv1"}.get(path.suffix.lower(), "libx264")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=int(fps))
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "12", "preset": "veryfast"}
        for arr in images:
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
