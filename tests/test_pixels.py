"""One pixel path: a large photo reaches the model as the same array whichever way it arrives: a
path, bytes, an upload (a stream), a served request, a video or camera frame, and the run-as-code
script's own image reading (copied from `images.load_image`)."""
from __future__ import annotations

import io
import json
import runpy
import sys

import numpy as np
import pytest
from PIL import Image

from tlcore.data.images import load_image

SIZE = 64
LABELS = ["clouds", "grass", "stripes"]


def _photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A large picture with gradients, stripes and noise: what draft scaling changes shows."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    arr = np.stack([x / width * 255, y / height * 255, 127 + 100 * np.sin((x + 2 * y) / 9.0)], axis=-1)
    arr += rng.normal(0.0, 25.0, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three large JPEGs (over 1000 px on a side), and the same pictures as lossless PNG."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(7)
    out = []
    for i, (w, h) in enumerate([(1600, 1200), (1100, 1500), (2048, 1030)]):
        im = _photo(rng, w, h)
        im.save(folder / f"photo{i}.jpg", quality=92)
        im.save(folder / f"photo{i}.png")
        out += [folder / f"photo{i}.jpg", folder / f"photo{i}.png"]
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder with a small model that sees fine detail (a strided convolution, no pooling
    before it), its labels and its options: what `RunModel` and `serve` read."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax")(x)
    folder = tmp_path_factory.mktemp("runs") / "pixel-run"
    folder.mkdir()
    keras.Model(inputs, outputs).save(folder / "model.keras")
    (folder / "labels.json").write_text(json.dumps(LABELS))
    (folder / "config.json").write_text(json.dumps({"options": {"resize": "crop"}}))
    (folder / "status.json").write_text(json.dumps({"state": "completed"}))
    return folder


def _script_reader(monkeypatch, tmp_path):
    """`load_image` of the run-as-code script, run without tlcore importable."""
    from tlcore.ship.codegen import render

    script = tmp_path / "train_run.py"
    script.write_text(render({"RUN_ID": "pixel-run", "BACKBONE": "MobileNetV2", "WEIGHTS": "none",
                              "INPUT_SIZE": SIZE, "RESIZE": "crop", "CLASSES": LABELS,
                              "IMAGE_EXTENSIONS": [".jpg", ".png"], "RUN_VAL_ACCURACY": None,
                              "RUN_TEST_ACCURACY": None}), encoding="utf-8")
    monkeypatch.setitem(sys.modules, "tlcore", None)
    namespace = runpy.run_path(str(script), run_name="train_run")
    monkeypatch.undo()
    return namespace["load_image"], namespace["INPUT_SIZE"], namespace["RESIZE"]


def test_every_way_an_image_arrives_gives_the_same_probabilities(photos, run_dir, monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from tlcore.live.classifier import Classifier as LiveClassifier
    from tlcore.ship.predict import RunModel, predict
    from tlcore.ship.serve import Classifier, create_app

    rm = RunModel(run_dir)
    assert (rm.input_size, rm.resize) == (SIZE, "crop")
    probs = lambda arrays: rm.probabilities(np.stack(arrays))
    by_path = probs([rm.load(p) for p in photos])
    kinds = {
        "path (str)": probs([rm.load(str(p)) for p in photos]),
        "bytes": probs([rm.load(p.read_bytes()) for p in photos]),
        "upload (stream)": probs([rm.load(io.BytesIO(p.read_bytes())) for p in photos]),
        "predict": np.array([[dict((t["label"], t["probability"]) for t in r["top"])[c] for c in LABELS]
                             for r in predict(run_dir, [str(p) for p in photos], top_k=len(LABELS))]),
    }
    # a camera snapshot reaches the live classifier as a file, a camera frame as an array
    live = LiveClassifier.of_run(rm)
    kinds["snapshot (live)"] = probs([live.prepare(io.BytesIO(p.read_bytes())) for p in photos])
    client = TestClient(create_app(Classifier(run_dir)))
    served = []
    for p in photos:
        reply = client.post(f"/predict?top_k={len(LABELS)}", files={"file": (p.name, p.read_bytes(), "image/jpeg")})
        assert reply.status_code == 200, reply.text
        top = {t["label"]: t["probability"] for t in reply.json()["predictions"][0]["top"]}
        served.append([top[c] for c in LABELS])
    kinds["serve"] = np.array(served)
    script_load, size, mode = _script_reader(monkeypatch, tmp_path)
    kinds["script"] = probs([script_load(str(p), size, mode) for p in photos])
    for kind, got in kinds.items():
        assert np.abs(got - by_path).max() <= 1e-5, kind

    # decoded pixels (a camera frame, a video frame) are the picture itself: the lossless copy
    pngs = [p for p in photos if p.suffix == ".png"]
    frames_ = [np.asarray(Image.open(p).convert("RGB")) for p in pngs]
    png_probs = probs([rm.load(p) for p in pngs])
    assert np.abs(probs([live.prepare(f) for f in frames_]) - png_probs).max() <= 1e-5
    assert np.abs(probs([rm.load(Image.fromarray(f)) for f in frames_]) - png_probs).max() <= 1e-5

    # the test can fail: decoding the JPEGs at full size (no draft) changes the probabilities
    jpegs = [i for i, p in enumerate(photos) if p.suffix == ".jpg"]
    full = probs([load_image(np.asarray(Image.open(photos[i]).convert("RGB")), SIZE, "crop") for i in jpegs])
    assert np.abs(full - by_path[jpegs]).max() > 1e-4


def test_a_video_frame_is_read_as_the_same_picture_saved_losslessly(run_dir, tmp_path):
    """Frames of a video go through the same path as a PNG of that frame."""
    pytest.importorskip("av")
    from tlcore.ship.predict import RunModel
    from tlcore.ship.video import frames, predict_video

    import av

    rng = np.random.default_rng(3)
    video = tmp_path / "clip.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame.from_image(_photo(rng, 1280, 720))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    rm = RunModel(run_dir)
    results = predict_video(rm, str(video), top_k=len(LABELS))
    pictures = []
    for i, _, im in frames(str(video)):
        im.save(tmp_path / f"frame{i}.png")
        pictures.append(rm.load(tmp_path / f"frame{i}.png"))
    expected = rm.probabilities(np.stack(pictures))
    got = np.array([[{t["label"]: t["probability"] for t in r["top"]}[c] for c in LABELS] for r in results])
    assert len(results) == 3
    assert np.abs(got - expected).max() <= 1e-5


def test_an_array_that_is_not_an_image_is_refused_with_its_shape():
    from tlcore.data.images import ImageProblem

    with pytest.raises(ImageProblem, match=r"uint8.*float64.*\(4, 4, 3\)"):
        load_image(np.zeros((4, 4, 3)), 8)
    with pytest.raises(ImageProblem, match=r"\(4, 4, 2\)"):
        load_image(np.zeros((4, 4, 2), np.uint8), 8)
