"""The served studio in headless Chromium: choose, upload, train live, predict, with screenshots.

Skipped only when the `chromium` browser is not installed. Screenshots go to
artifacts/screenshots/ (gitignored).
"""
from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = _free_port()
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TLSTUDIO_PASSWORD", None)
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError("the server did not start:\n" + (home / "server.log").read_text()[-3000:])
        time.sleep(0.3)
    try:
        yield url, home
    finally:
        _stop_training(home)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


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
    page.get_by_test_id("stPlotlyChart").first.wait_for()
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
