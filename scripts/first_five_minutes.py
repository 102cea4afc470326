"""A newcomer's first five minutes, timed, in headless Chromium; the README's pictures.

Starts the studio the README's way (`bash scripts/app.sh`) with a new TL Studio home and a
Keras folder without weights (as on a machine with no network), then on the Quick start page:
Use the demo dataset -> Start training with the recommended settings -> drop a test image.
Prints one JSON document with the time of each step; writes the screenshots to
docs/screenshots/ (or --shots DIR).

    .venv/bin/python scripts/first_five_minutes.py [--shots DIR] [--keep-home]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from apphelp import streamlit_server  # the browser tests' server: start, health, stop

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
BUSY = ("() => !!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"], "
        "[data-stale=\"true\"], [data-testid=\"stSpinner\"]')")


def settle(page, timeout: float = 120.0) -> None:
    page.wait_for_timeout(350)
    quiet, deadline = 0, time.time() + timeout
    while quiet < 3 and time.time() < deadline:
        quiet = 0 if page.evaluate(BUSY) else quiet + 1
        page.wait_for_timeout(150)


def shot(page, folder: Path, name: str) -> None:
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1000")
    page.set_viewport_size({"width": 1400, "height": max(900, min(int(height), 4000))})
    page.wait_for_timeout(500)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})


def go(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title).first.wait_for()
    settle(page)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shots", default=str(ROOT / "docs" / "screenshots"))
    p.add_argument("--keep-home", action="store_true")
    a = p.parse_args()
    from playwright.sync_api import sync_playwright

    shots = Path(a.shots)
    shots.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="tlstudio-first-"))
    env = dict(os.environ, TLCORE_HOME=str(home / "tlcore"), KERAS_HOME=str(home / "keras"))
    env.pop("TLSTUDIO_PASSWORD", None)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        # The first start sets the machine up (scripts/app.sh), so it may take minutes: no deadline.
        with streamlit_server(home, env, command=["bash", "scripts/app.sh"], timeout=None) as url:
            times["app_started"] = time.perf_counter() - t0
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(url)
                page.get_by_test_id("stSidebarNav").wait_for(timeout=120_000)
                settle(page)
                shot(page, shots, "home")
                go(page, "Quick start")
                page.get_by_role("button", name="Use the demo dataset").click()
                page.get_by_text("600 images in 4 classes").first.wait_for(timeout=120_000)
                settle(page)
                times["demo_dataset_ready"] = time.perf_counter() - t0
                shot(page, shots, "quick-start")
                page.get_by_role("button", name="Start training").click()
                page.get_by_text(re.compile(r"epoch \d+/\d+")).first.wait_for(timeout=120_000)
                page.wait_for_timeout(30_000)  # some epochs into the run
                settle(page)
                shot(page, shots, "quick-start-training")
                page.get_by_test_id("stMetric").filter(has_text="Test accuracy").wait_for(timeout=600_000)
                settle(page)
                times["trained"] = time.perf_counter() - t0
                test = home / "tlcore" / "datasets" / "demo-shapes" / "test"
                probe = sorted((test / "star").iterdir())[0]
                uploader = page.get_by_test_id("stFileUploader").filter(has_text="Drop images")
                uploader.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(probe))
                page.get_by_text("Grad-CAM · ").first.wait_for(timeout=120_000)
                settle(page)
                times["predicted"] = time.perf_counter() - t0
                verdict = page.locator("[data-testid='stMarkdownContainer'] strong").filter(
                    has_text="star").count() > 0
                shot(page, shots, "quick-start-done")
                metrics = {m.split("\n")[0]: m.split("\n")[-1] for m in
                           page.get_by_test_id("stMetric").all_inner_texts()}
                for title in ("Evaluate", "Layers", "Backbone", "Data"):
                    go(page, title)
                    page.wait_for_timeout(3000)
                    settle(page)
                    shot(page, shots, title.lower())
                browser.close()
            print(json.dumps({"seconds": {k: round(v, 1) for k, v in times.items()}, "metrics": metrics,
                              "star_predicted_as_star": verdict, "screenshots": str(shots)}, indent=2))
            return 0
    finally:
        if not a.keep_home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
