"""The live view in headless Chromium with a fake camera (a y4m video the test makes from demo shapes).

Media stays on loopback: the app runs with TLSTUDIO_WEBRTC_LOOPBACK=1 (its only ICE candidate is
127.0.0.1, no STUN server), and Chromium may use loopback for peer connections and shows its own
host candidates without mDNS names. Each browser launch reads one video (Chromium loops it).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from apphelp import streamlit_server
from fakecam import write_y4m

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium")
BASE_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns"]
LINE = re.compile(r"^(\S+) · (\d+)% · (\d+) fps$")
# MobileNetV2 at 96 px (cut at block 6, the quick start's from-scratch recipe: no ImageNet weights
# here), trained long enough on 7 training pictures per shape to know them: the videos show those.
TRAIN = ["--preset", "scratch-small", "--input-size", "96", "--fine-tune-epochs", "60", "--batch-size", "4",
         "--flip", "none", "--rotation", "0", "--seed", "1"]


def _busy() -> float:
    """How many times over the two cores are asked for (1 on an idle machine): the test's server
    gets about 1/_busy() of the CPU when other work runs beside it, so its time limits stretch."""
    return max(1.0, os.getloadavg()[0] / 2.0)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The studio on loopback with a MobileNetV2 (96 px) run trained on two demo shapes."""
    if CHROMIUM is None:
        pytest.skip("the chromium browser is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    home = tmp_path_factory.mktemp("live-home")
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2", TLSTUDIO_WEBRTC_LOOPBACK="1")
    env.pop("TLSTUDIO_PASSWORD", None)
    env.pop("TLSTUDIO_ICE_SERVERS", None)
    data = home / "datasets" / "shapes"
    made = subprocess.run([sys.executable, "-m", "tlcore", "demo-data", str(data), "--classes", "2",
                           "--per-class", "10", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    trained = subprocess.run([sys.executable, "-m", "tlcore", "train", str(data), *TRAIN, "--run-id", "shapes96",
                              "--json"], capture_output=True, text=True, env=env, timeout=900)
    assert trained.returncode == 0, trained.stderr[-3000:]
    with streamlit_server(home, env, address="127.0.0.1") as url:
        yield url, home, data


def _picture(data: Path, shape: str, index: int = 0) -> Path:
    return sorted((data / "train" / shape).glob("*.png"))[index]


def _marked(path: Path, marker: int) -> Image.Image:
    """The picture with a small corner block (white or black) saying which segment of the video plays."""
    arr = np.asarray(Image.open(path).convert("RGB")).copy()
    arr[:8, :8] = marker
    return Image.fromarray(arr)


def _browser(p, video: Path):
    browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                args=[*BASE_ARGS, f"--use-file-for-fake-video-capture={video}"])
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(120_000)
    return browser, page


def _open_live(page, url: str, mode: str) -> None:
    page.goto(f"{url}/predict")
    page.get_by_role("heading", name="Predict").first.wait_for()
    page.get_by_test_id("stButtonGroup").first.get_by_text(mode, exact=True).click()


def _start_camera(page) -> None:
    frame = page.frame_locator("iframe[title*='streamlit_webrtc']").first
    frame.get_by_role("button", name="Start the camera").click(timeout=120_000)


def _line(page, key: str) -> str:
    loc = page.locator(f".st-key-{key}_line")
    return loc.inner_text().strip() if loc.count() else ""


def _watch(page, key: str, seconds: float, every: float = 0.1) -> list[tuple[float, str]]:
    out, end = [], time.time() + seconds
    while time.time() < end:
        out.append((time.time(), _line(page, key)))
        page.wait_for_timeout(int(every * 1000))
    return out


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_live_view_labels_a_still_shape_at_10_fps_and_follows_a_change(live_server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, home, data = live_server
    # 4 s of a circle, then 4 s of a square, looped by Chromium
    video = write_y4m(tmp_path / "circle-then-square.y4m",
                      [_picture(data, "circle", 1), _picture(data, "square", 1)], seconds_each=4.0)
    with sync_playwright() as p:
        browser, page = _browser(p, video)
        try:
            _open_live(page, url, "A trained run")
            page.get_by_test_id("stButtonGroup").nth(1).get_by_text("Live camera", exact=True).click()
            _start_camera(page)
            page.wait_for_function("() => /^(circle|square) · .* fps$/.test(document.querySelector("
                                   "'.st-key-predict_line')?.innerText.trim() || '')", timeout=120_000)
            page.wait_for_timeout(2000)  # the first classifications warm the model up
            seen = _watch(page, "predict", 16.0)
            latencies = [float(m.group(1)) for m in re.finditer(r"(\d+) ms from capture to label",
                                                                 page.locator("body").inner_text())]
            _shot(page, "live-01-predict")
        finally:
            browser.close()
    parsed = [(t, LINE.match(s)) for t, s in seen]
    assert all(m for _, m in parsed), [s for _, s in seen if not LINE.match(s)][:5]
    labels = [(t, m.group(1), int(m.group(3))) for t, m in parsed]
    assert {lab for _, lab, _ in labels} == {"circle", "square"}
    # at least 10 fps from the 15 fps camera, once warm (the median of the readings), on 2 idle cores;
    # less in proportion when other work shares them (never below 3)
    fps = float(np.median([f for *_, f in labels]))
    assert fps >= max(3.0, 10 / _busy()), (fps, os.getloadavg(), labels[::10])
    # the label follows the video: it changes every 4 s (not drifting later and later, as a queue would)
    changes = [t for (t, a, _), (_, b, _) in zip(labels, labels[1:]) if a != b]
    runs = np.diff(changes)
    assert len(changes) >= 3 and all(abs(r - 4.0) < 1.5 for r in runs), runs
    # (a change of the video shows within 2 s: no stretch of the old label lasts 2 s past its 4 s)
    assert all(r < 6.0 for r in runs), runs
    # the server's delay from a frame's arrival to its label, as the page reports it, stays small
    assert latencies and max(latencies) < 2000, latencies

def test_teach_by_showing_two_bursts_tell_two_shapes_apart(live_server, tmp_path):
    """Bursts of a circle and of a square (the video alternates every 8 s; a corner block says which
    plays), then the prototype labels both right within 2 s, before any training."""
    from playwright.sync_api import sync_playwright

    url, home, data = live_server
    video = write_y4m(tmp_path / "teach.y4m", [_marked(_picture(data, "circle", 5), 255),
                                               _marked(_picture(data, "square", 5), 0)], seconds_each=8.0)
    marker_js = """() => {
        const f = document.querySelector("iframe[title*='streamlit_webrtc']");
        const v = f && f.contentDocument && f.contentDocument.querySelector('video');
        if (!v || !v.videoWidth) return -1;
        const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
        const g = c.getContext('2d'); g.drawImage(v, 0, 0);
        const d = g.getImageData(4, 4, 1, 1).data; return (d[0] + d[1] + d[2]) / 3; }"""

    def showing(page) -> str | None:
        level = page.evaluate(marker_js)
        return None if level < 0 else "circle" if level > 200 else "square" if level < 55 else None

    def record(page, shape: str) -> float:
        box = page.get_by_label("Class to show")
        box.fill(shape)
        box.press("Enter")
        page.wait_for_timeout(1500)
        deadline = time.time() + 40
        while showing(page) == shape:  # wait for the next segment of this shape to start
            assert time.time() < deadline, "the fake camera's video does not play"
            page.wait_for_timeout(100)
        while showing(page) != shape:
            assert time.time() < deadline, "the fake camera's video does not play"
            page.wait_for_timeout(100)
        page.get_by_role("button", name="Record 3 s").click()
        clicked = time.time()
        page.get_by_text(f"frames of «{shape}» learnt").first.wait_for(timeout=60_000)
        return clicked

    with sync_playwright() as p:
        browser, page = _browser(p, video)
        try:
            _open_live(page, url, "Teach by showing")
            _start_camera(page)
            page.wait_for_function("() => /fps$/.test(document.querySelector('.st-key-teach_line')"
                                   "?.innerText.trim() || '')", timeout=120_000)
            record(page, "circle")
            burst_end = record(page, "square") + 3.0
            learnt = time.time()
            seen = []
            while time.time() - learnt < 18:
                seen.append((time.time(), showing(page), _line(page, "teach")))
                page.wait_for_timeout(100)
            _shot(page, "live-02-teach")
        finally:
            browser.close()
    # within 2 s of the end of the second burst the prototype classifies right (on idle cores; longer
    # in proportion when other work shares them) ...
    first = next(t for t, shape, line in seen if LINE.match(line) and LINE.match(line).group(1) == shape)
    assert first - burst_end < 2.0 * _busy(), (first - burst_end, os.getloadavg())
    # ... and, away from the switches of the video, the label is the shape on show
    agree = [LINE.match(line).group(1) == shape for t, shape, line in seen
             if shape and LINE.match(line) and all(s2 == shape for t2, s2, _ in seen if abs(t2 - t) < 0.8)]
    assert len(agree) > 30 and np.mean(agree) >= 0.9, (np.mean(agree), len(agree))
    # the bursts are on disk as a dataset: datasets/<name>/<class>/
    counts = {c: len(list((home / "datasets" / "taught" / c).glob("*.png"))) for c in ("circle", "square")}
    assert all(n >= 8 for n in counts.values()), counts


def test_without_a_camera_the_page_says_so_and_offers_snapshots(live_server):
    """A browser with no camera at all (no fake device): the component's message, the snapshot
    camera, no exception."""
    from playwright.sync_api import sync_playwright

    url, _, _ = live_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BASE_ARGS[:5])
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(120_000)
            _open_live(page, url, "A trained run")
            page.get_by_test_id("stButtonGroup").nth(1).get_by_text("Live camera", exact=True).click()
            _start_camera(page)
            frame = page.frame_locator("iframe[title*='streamlit_webrtc']").first
            frame.get_by_text(re.compile("NotFoundError|No camera found|not available")).first.wait_for()
            page.get_by_text("the box on the left says why", exact=False).first.wait_for()
            page.get_by_text("No live video? Take a snapshot instead").click()
            page.get_by_test_id("stCameraInput").wait_for()
            assert page.get_by_test_id("stException").count() == 0
        finally:
            browser.close()


def test_the_steady_label_switch_is_on_by_default_and_the_line_keeps_its_form(live_server, tmp_path):
    """The live view's Steady label switch: on at first, the line `LABEL · NN% · NN fps` names the
    still shape on show with it on and with it off."""
    from playwright.sync_api import sync_playwright

    url, home, data = live_server
    video = write_y4m(tmp_path / "circle.y4m", [_picture(data, "circle", 2)], seconds_each=2.0)
    line_js = ("() => /^circle · .* fps$/.test(document.querySelector('.st-key-predict_line')"
               "?.innerText.trim() || '')")
    with sync_playwright() as p:
        browser, page = _browser(p, video)
        try:
            _open_live(page, url, "A trained run")
            page.get_by_test_id("stButtonGroup").nth(1).get_by_text("Live camera", exact=True).click()
            switch = page.get_by_test_id("stCheckbox").filter(has_text="Steady label").locator("input")
            switch.wait_for(state="attached")
            assert switch.is_checked()
            _start_camera(page)
            page.wait_for_function(line_js, timeout=120_000)
            steady = _watch(page, "predict", 3.0)
            _shot(page, "live-03-steady-label")
            page.get_by_test_id("stCheckbox").get_by_text("Steady label", exact=True).click()
            deadline = time.time() + 60
            while switch.is_checked():
                assert time.time() < deadline, "the switch did not turn off"
                page.wait_for_timeout(100)
            page.wait_for_function(line_js, timeout=60_000)
            raw = _watch(page, "predict", 3.0)
            assert page.get_by_test_id("stException").count() == 0
        finally:
            browser.close()
    for seen in (steady, raw):
        matched = [LINE.match(s) for _, s in seen]
        assert all(matched), [s for _, s in seen if not LINE.match(s)][:5]
        assert {m.group(1) for m in matched} == {"circle"}
