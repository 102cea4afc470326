"""The Layers page of a large catalog backbone, served and opened in headless Chromium: its
shipped layer table and plan are shown without building the backbone or importing TensorFlow.

The server runs with a `sitecustomize` that replaces `tlcore.backbones.build.build_backbone` by a
function that records the call and refuses; a size without a stored table shows that the hook
is in force (the page reports the refused build in words).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from apphelp import streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
HOOK = '''
import os

import tlcore.backbones.build


def _refuse(*args, **kwargs):
    with open(os.environ["TLCORE_TEST_BUILDS"], "a") as f:
        f.write(f"{args[:2]}\\n")
    raise RuntimeError("this test forbids building a backbone")


tlcore.backbones.build.build_backbone = _refuse
'''


def test_a_large_backbone_with_a_shipped_table_is_shown_without_a_build(tmp_path):
    if CHROMIUM is None:
        pytest.skip("the chromium browser is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    builds = tmp_path / "builds.txt"
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2", TLCORE_TEST_BUILDS=str(builds),
               PYTHONPATH=os.pathsep.join([str(hook), str(ROOT)]))
    env.pop("TLSTUDIO_PASSWORD", None)
    with streamlit_server(home, env) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(90_000)
        # Opened directly, and after a slider change (a second run): TensorFlow is never imported
        # (the sidebar names its version once anything has loaded it).
        page.goto(f"{url}/layers?backbone=NASNetLarge")
        page.locator('[data-testid="stDataFrame"] canvas').first.wait_for()
        caption = page.get_by_text(re.compile(r"^Cut after .* unfreeze from ")).first
        before = caption.inner_text()
        page.get_by_role("slider").nth(1).press("ArrowLeft")
        page.wait_for_function("(b) => ![...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
                               ".some(e => e.innerText === b)", arg=before)
        page.get_by_text("1039 of 1039 layers").first.wait_for()
        page.wait_for_timeout(1500)  # the run's end, sidebar included
        sidebar = page.get_by_test_id("stSidebar")
        assert sidebar.get_by_text("Machine: shown once TensorFlow is loaded").count() == 1
        assert sidebar.get_by_text(re.compile("TensorFlow 2")).count() == 0

        # The Backbone page starts the background read as soon as the backbone is picked.
        page.goto(f"{url}/backbone?backbone=NASNetLarge")
        page.get_by_role("heading", name="Backbone").first.wait_for()
        page.get_by_test_id("stSidebarNav").get_by_text("Layers", exact=True).click()
        page.get_by_text("1039 of 1039 layers").first.wait_for()
        page.locator('[data-testid="stDataFrame"] canvas').first.wait_for()
        assert page.get_by_text(re.compile(r"NASNetLarge at 331 × 331 px: 1039 layers")).count() == 1
        metric = page.get_by_test_id("stMetric").filter(has_text="Total parameters")
        metric.first.wait_for()  # the metrics render after the table in the same run
        assert metric.count() == 1
        assert page.get_by_test_id("stException").count() == 0
        assert not builds.exists(), builds.read_text()
        assert not (home / "cache" / "layer-tables").exists()

        # No table is stored at 332 px: the page has to build, and the hook refuses in words.
        page.goto(f"{url}/layers?backbone=NASNetLarge&input_size=332")
        page.get_by_text("failed unexpectedly").first.wait_for()
        assert "('NASNetLarge', 332)" in builds.read_text()
        browser.close()
