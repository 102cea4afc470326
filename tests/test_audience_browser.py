"""An audience link in a fresh browser (served studio, headless Chromium): the page of its run only,
no sidebar; a dropped image gets its label; another page's URL with the same token is refused.

Skipped only when the `chromium` browser is not installed.
"""
from __future__ import annotations

import os
import sys
import shutil

import pytest

from apphelp import streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


@pytest.mark.parametrize("password", [None, "classroom-pw"])
def test_an_audience_link_drops_an_image_sees_its_label_and_nothing_else(tmp_path, password):
    if CHROMIUM is None:
        pytest.skip("the chromium browser is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import sync_playwright

    from benchmarks.classroom import COLOURS, RESULT, png, write_run
    from tlcore.core.links import AudienceLinks

    run = write_run(tmp_path / "runs", size=32, backbone="none")
    _, token = AudienceLinks(tmp_path / "audience").create(run)
    env = dict(os.environ, TLCORE_HOME=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TLSTUDIO_PASSWORD", None)
    if password:
        env["TLSTUDIO_PASSWORD"] = password
    command = [sys.executable, "-m", "streamlit", "run", "server.py"]  # behind the upload gate
    with streamlit_server(tmp_path, env, command=command, timeout=180) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 420, "height": 900}).new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{url}/audience?t={token}")
            page.get_by_role("heading", name="colours").wait_for()
            assert page.get_by_test_id("stSidebar").count() == 0 and page.get_by_test_id("stSidebarNav").count() == 0
            for colour in ("blue", "red"):
                name = f"drop-{colour}.png"
                page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
                    {"name": name, "mimeType": "image/png", "buffer": png(COLOURS[colour], 1)})
                label = page.locator(RESULT).filter(has_text=name).locator("h2").first
                label.wait_for()
                assert label.inner_text().strip() == colour
            assert page.get_by_test_id("stException").count() == 0

            other = browser.new_context().new_page()  # a fresh browser, the token on another page's URL
            other.set_default_timeout(120_000)
            for path in ("train", "runs", "predict"):
                other.goto(f"{url}/{path}?t={token}")
                other.get_by_role("heading", name="Not available").wait_for()
                main = other.get_by_test_id("stMain").inner_text()
                assert "classroom-run" not in main and "Sign in" not in main
            other.goto(f"{url}/train")  # no token at all: the sign-in page with a password, the studio without
            if password:
                other.get_by_role("button", name="Sign in").wait_for()
            else:
                other.get_by_role("heading", name="Train").first.wait_for()
        finally:
            browser.close()
