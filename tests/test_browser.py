"""The served studio in headless Chromium: choose, upload, train live, predict, with screenshots;
then the quick start on the demo dataset, and the insight pages (calibration, Grad-CAM, the
learning-rate finder, a sweep, webcam snaps from Chromium's fake camera).

Skipped only when the `chromium` browser is not installed. Screenshots go to
artifacts/screenshots/ (gitignored).
"""
from __future__ import annotations

import io
import os
import re
import shutil
import signal
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from apphelp import streamlit_server

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def _png(colour, rng, size=24) -> bytes:
    arr = np.clip(np.array(colour, float) + rng.normal(0, 25, (size, size, 3)), 0, 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _dataset_zip(path: Path) -> Path:
    """colours/{train,validation,test}/{red,green,blue}/*.png, zipped with its top folder."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for split, n in (("train", 6), ("validation", 2), ("test", 2)):
            for name, colour in COLOURS.items():
                for i in range(n):
                    zf.writestr(f"colours/{split}/{name}/{name}_{i}.png", _png(colour, rng))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("the chromium browser is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    home = tmp_path_factory.mktemp("browser-home")
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TLSTUDIO_PASSWORD", None)
    with streamlit_server(home, env) as url:
        try:
            yield url, home
        finally:
            _stop_training(home)


def _stop_training(home: Path) -> None:
    """End any training process this test started (they run in sessions of their own)."""
    import json

    for status in (home / "runs").glob("*/status.json"):
        try:
            data = json.loads(status.read_text())
            if data.get("state") in ("queued", "running") and data.get("pid"):
                os.kill(int(data["pid"]), signal.SIGTERM)
        except (OSError, ValueError):
            pass


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        yield pg
        context.close()
        browser.close()


BUSY = ("() => !!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"], "
        "[data-stale=\"true\"], [data-testid=\"stSpinner\"]')")


def settle(page, pause: float = 0.35, timeout: float = 120.0) -> None:
    """Wait until Streamlit has finished the current run of the script (quiet for 0.45 s)."""
    page.wait_for_timeout(int(pause * 1000))
    quiet, deadline = 0, time.time() + timeout
    while quiet < 3:
        quiet = 0 if page.evaluate(BUSY) else quiet + 1
        assert time.time() < deadline, "the app kept running"
        page.wait_for_timeout(150)
    assert page.get_by_test_id("stException").count() == 0, page.get_by_test_id("stException").first.inner_text()


def go(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title).first.wait_for()
    settle(page)


def shot(page, name: str) -> None:
    """A screenshot of the whole page (Streamlit scrolls inside stMain, so grow the window)."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1000")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height), 9000))})
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def set_number(page, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    settle(page)


def test_studio_end_to_end(server, page, tmp_path):
    url, home = server
    page.goto(url)
    page.get_by_test_id("stApp").wait_for()
    page.get_by_text("Mixed precision").first.wait_for(timeout=120_000)  # TensorFlow loaded on Home
    settle(page)
    assert page.get_by_text("CPU only").count() + page.get_by_text("GPUs").count() > 0
    shot(page, "01-home")

    # Backbone: MobileNetV2 (the default), 32 px, no pretrained weights.
    go(page, "Backbone")
    assert page.get_by_text("mobilenet_v2 family").count() == 1
    set_number(page, "Input size (pixels)", 32)
    page.get_by_text("None (train from scratch)").click()
    settle(page)
    shot(page, "02-backbone")

    # Layers: the chart of parameters per layer and the live counts.
    go(page, "Layers")
    page.get_by_test_id("stVegaLiteChart").first.wait_for()  # parameters per layer (Vega-Lite, not Plotly)
    assert page.get_by_text("Trainable, stage 2", exact=True).count() == 1
    shot(page, "03-layers")

    # Data: upload the dataset as a zip; no augmentation for a quick run.
    go(page, "Data")
    page.get_by_role("tab", name="Upload a .zip").click()
    zip_path = _dataset_zip(tmp_path / "colours.zip")
    uploader = page.get_by_test_id("stFileUploader").filter(has_text=".zip of the dataset")
    uploader.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(zip_path))
    page.get_by_text("Imported").first.wait_for(timeout=120_000)
    settle(page)
    page.get_by_test_id("stMetric").filter(has_text="Classes").get_by_text("3").wait_for()
    page.get_by_text("augmented").first.wait_for()  # drawn after the scan report, in the same run
    settle(page)
    assert page.get_by_text("augmented").count() >= 5  # the live preview of the light preset
    shot(page, "04-data")
    page.get_by_role("radio", name="None", exact=True).click()
    settle(page)
    assert page.get_by_text("In effect: nothing").count() == 1

    # Train: 1 head epoch + 1 fine-tuning epoch, small batches; watch it live.
    go(page, "Train")
    set_number(page, "Stage 1 epochs (head only)", 1)
    set_number(page, "Stage 2 epochs (fine-tuning)", 1)
    set_number(page, "Batch size", 4)
    set_number(page, "Early stopping patience", 0)
    page.get_by_role("button", name="Start training").click()
    points = page.locator("[data-testid='stPlotlyChart'] .scatterlayer .points path")
    points.first.wait_for(timeout=240_000)
    assert page.get_by_test_id("stException").count() == 0
    shot(page, "05-train-live")
    page.get_by_test_id("stMetric").filter(has_text="Best validation accuracy").wait_for(timeout=240_000)
    settle(page)
    assert page.get_by_text("completed").count() >= 1
    assert points.count() >= 4  # two epochs, training and validation
    shot(page, "06-train-done")

    # Predict: drop one image, see its top-k chart.
    go(page, "Predict")
    image = tmp_path / "probe.png"
    image.write_bytes(_png(COLOURS["red"], np.random.default_rng(1), size=40))
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(image))
    page.get_by_test_id("stPlotlyChart").first.wait_for(timeout=120_000)
    settle(page)
    assert page.locator("[data-testid='stPlotlyChart'] .barlayer .point").count() == 3
    shot(page, "07-predict")

    # Evaluate and Runs render the finished run.
    go(page, "Evaluate")
    page.get_by_text("Confusion matrix").wait_for()
    shot(page, "08-evaluate")
    go(page, "Runs")
    page.get_by_text("Housekeeping").wait_for()
    shot(page, "09-runs")


def wait_for_text(page, text: str, timeout: float = 240.0) -> None:
    page.get_by_text(text).first.wait_for(timeout=timeout * 1000)
    settle(page)


def test_quick_start_end_to_end(server, page, tmp_path):
    """A newcomer's path: demo dataset, recommended backbone, a short training, a prediction."""
    from tlcore.data.demo import make_demo_dataset

    url, home = server
    make_demo_dataset(home / "datasets" / "demo-shapes", classes=4, per_class=20)  # small: quick to train
    page.goto(url)  # a new session: nothing chosen yet
    page.get_by_test_id("stSidebarNav").wait_for()
    go(page, "Quick start")
    page.get_by_role("button", name="Use the demo dataset").click()
    wait_for_text(page, "80 images in 4 classes")
    # no ImageNet weights here: the small from-scratch recipe, cut to 2 epochs for the test
    assert page.get_by_text("Recommended here: MobileNetV2 cut at").count() == 1
    assert page.get_by_text("In use: MobileNetV2 · 64 px").count() == 1
    set_number(page, "Fine-tuning epochs (stage 2)", 2)
    shot(page, "10-quick-start")

    page.get_by_role("button", name="Start training").click()
    page.get_by_test_id("stMetric").filter(has_text="Best validation accuracy").wait_for(timeout=300_000)
    settle(page)
    probe = home / "datasets" / "demo-shapes" / "test" / "star" / "star_0017.png"
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Drop images")
    uploader.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(probe))
    page.get_by_text(re.compile("Grad-CAM · |No Grad-CAM map")).first.wait_for(timeout=120_000)
    settle(page)
    assert page.locator("[data-testid='stPlotlyChart'] .barlayer .point").count() == 3  # top 3 of 4 classes
    shot(page, "11-quick-start-done")

    # Evaluate: reliability diagram, temperature scaling, a Grad-CAM of a mistake.
    go(page, "Evaluate")
    page.get_by_text("perfectly calibrated").first.wait_for()
    page.get_by_role("button", name="Calibrate (temperature scaling)").click()
    page.get_by_test_id("stMetric").filter(has_text="Temperature T").wait_for(timeout=120_000)
    settle(page)
    cams = page.get_by_role("button", name="Grad-CAM")
    if cams.count():
        before = page.get_by_test_id("stImage").count()
        cams.first.click()
        settle(page)
        assert page.get_by_test_id("stImage").count() == before + 1 or page.get_by_text("No Grad-CAM map").count()
    shot(page, "12-evaluate-insight")

    # Train: the learning-rate finder.
    go(page, "Train")
    page.get_by_text("Find a learning rate").click()
    settle(page)
    started = page.get_by_text("Training on a few batches").or_(page.get_by_role("button", name="Use this rate"))
    for _ in range(3):  # a click that lands while the script reruns (a busy machine) can be lost
        page.get_by_role("button", name="Find learning rate").click()
        try:
            started.first.wait_for(timeout=20_000)
            break
        except Exception:
            settle(page)
    try:
        page.get_by_role("button", name="Use this rate").wait_for(timeout=240_000)
    except Exception:
        shot(page, "lr-finder-failed")
        alerts = [page.get_by_test_id(t).all_inner_texts() for t in ("stAlert", "stException")]
        raise AssertionError(f"the learning-rate finder gave no rate; on the page: {alerts}")
    settle(page)
    shot(page, "13-train-lr-finder")
    page.get_by_role("button", name="Use this rate").click()
    settle(page)

    # Predict in ImageNet mode: without pretrained weights it says what to choose.
    go(page, "Predict")
    page.get_by_text("ImageNet (1000 classes)", exact=True).click()
    page.get_by_text("no pretrained weights chosen").wait_for()
    settle(page)
    shot(page, "18-predict-imagenet-mode")

    # Search: the results of a 2 x 2 grid (its runs written here; tests/test_search.py runs one on Ray).
    from searchfake import write_search

    scores = {("block_13_expand_relu", "block_11_depthwise_BN"): 0.62, ("block_13_expand_relu", "block_15_project"): 0.58,
              ("out_relu", "block_11_depthwise_BN"): 0.81, ("out_relu", "block_15_project"): 0.74}
    write_search(home, "b1e55e", {"cut": ["block_13_expand_relu", "out_relu"],
                                  "unfreeze_from": ["block_11_depthwise_BN", "block_15_project"]},
                 score=lambda o, seed: scores[(o["cut"], o["unfreeze_from"])])
    go(page, "Search")
    page.get_by_test_id("stPlotlyChart").first.wait_for()
    assert page.get_by_text("4 of 4 runs started, 4 completed").count() == 1
    page.get_by_role("button", name="Open the best run (81.0%)").click()
    wait_for_text(page, "The current run is")
    page.mouse.move(0, 0)
    shot(page, "14-search")

    # Data: webcam snaps from Chromium's fake camera.
    go(page, "Data")
    page.get_by_role("tab", name="Webcam").click()
    for name in ("mug", "pen"):
        box = page.get_by_label("New class", exact=True)
        box.fill(name)
        page.get_by_role("button", name="Add class").click()
        settle(page)
    page.get_by_text("Turn the camera on").click()
    settle(page)
    snap = home / "datasets" / "webcam" / "mug" / "1.png"
    for _ in range(3):  # the fake camera may still be starting: take the photo again until it is filed
        page.get_by_role("button", name="Take Photo").click(timeout=60_000)
        deadline = time.time() + 20
        while not snap.exists() and time.time() < deadline:
            page.wait_for_timeout(250)
        if snap.exists():
            break
        if page.get_by_role("button", name="Clear photo").count():
            page.get_by_role("button", name="Clear photo").click()
            settle(page)
    assert snap.exists(), "the webcam snap was not saved"
    wait_for_text(page, "1 snap", timeout=60)
    shot(page, "15-data-webcam")

    # Backbone: your own model.
    go(page, "Backbone")
    page.get_by_text("Your own model", exact=True).click()
    page.get_by_text("No model yet").wait_for()
    settle(page)
    model = _nested_classifier(tmp_path / "my_classifier.keras")
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(model))
    page.get_by_test_id("stMetric").filter(has_text="Layers (flattened)").wait_for(timeout=120_000)
    settle(page)
    shot(page, "16-backbone-own-model")
    go(page, "Layers")
    page.get_by_text("your own model").first.wait_for()
    assert page.get_by_test_id("stException").count() == 0
    shot(page, "17-layers-own-model")


def _nested_classifier(path: Path) -> Path:
    """A classifier wrapping a whole MobileNetV2 (alpha 0.35, 64 px, random weights), saved."""
    import keras

    inputs = keras.Input((64, 64, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inputs)
    x = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, include_top=False, weights=None)(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="old_head")(x)
    keras.Model(inputs, outputs, name="my_classifier").save(path)
    return path


def test_a_link_restores_the_selection_and_a_reload_keeps_it(server, page):
    """The selection lives in the URL: opening a link with it shows it, and F5 shows it again."""
    from urllib.parse import parse_qs, urlencode, urlparse

    url, home = server
    data = home / "datasets" / "url-colours"
    rng = np.random.default_rng(1)
    for name, colour in COLOURS.items():
        (data / name).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            (data / name / f"{i}.png").write_bytes(_png(colour, rng))
    params = {"data": str(data), "backbone": "MobileNetV2", "input_size": "48", "weights": "none",
              "unfreeze_from": "block_14_expand"}
    sidebar = page.get_by_test_id("stSidebar")

    def check() -> None:
        sidebar.get_by_text("MobileNetV2 · 48 px · no pretraining").wait_for()
        settle(page)
        assert sidebar.get_by_text("url-colours").count() == 1
        assert page.get_by_text("Page not found").count() == 0  # a shared link opens cleanly
        query = parse_qs(urlparse(page.url).query)
        assert {k: v[-1] for k, v in query.items()} == params, page.url

    page.goto(f"{url}/layers?{urlencode(params)}")
    page.get_by_role("heading", name="Layers").first.wait_for()
    check()
    assert page.get_by_text("3 classes, from the dataset url-colours.").count() == 1
    assert page.get_by_text("unfreeze from block_14_expand (Conv2D)").count() == 1
    shot(page, "19-link-restores-the-selection")
    page.reload()
    page.get_by_role("heading", name="Layers").first.wait_for()
    check()
    assert page.get_by_text("unfreeze from block_14_expand (Conv2D)").count() == 1
    page.goto(f"{url}/data?{urlencode(params)}")  # the page that showed the dialog most often
    page.get_by_role("heading", name="Data").first.wait_for()
    check()
