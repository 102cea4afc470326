"""The served studio's gate, in headless Chromium against `streamlit run server.py` (scripts/app.sh's way).

A browser session that has not signed in PUTs files straight to Streamlit's upload endpoint and is
refused; once signed in, the same PUT is taken, up to the session's limit (server.maxUploadSize, 1 MB
here). Then a run named ``**bold** ![r](http://x.invalid/r)`` whose classes are hostile names is
shown on the Predict page and in the sidebar: nothing is fetched from those addresses and nothing of
them renders bold. Screenshots go to artifacts/screenshots/ (gitignored).
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from apphelp import hostile_run, streamlit_server

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
PUT = """async ([sid, size]) => {
    const xsrf = (document.cookie.match(/_streamlit_xsrf=([^;]+)/) || [])[1] || "";
    const body = new FormData();
    body.append("file", new Blob([new Uint8Array(size)]), "data.zip");
    try {
        const r = await fetch(`/_stcore/upload_file/${sid}/f${Math.random()}`,
                              {method: "PUT", body, headers: {"X-Xsrftoken": decodeURIComponent(xsrf)}});
        return [r.status, await r.text()];
    } catch (e) {
        return [0, String(e)];  // the server answered and closed before the whole body was sent
    }
}"""


def _settle(page, timeout: float = 120.0) -> None:
    busy = ("() => !!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"], "
            "[data-stale=\"true\"], [data-testid=\"stSpinner\"]')")
    page.wait_for_timeout(350)
    quiet, deadline = 0, time.time() + timeout
    while quiet < 3:
        quiet = 0 if page.evaluate(busy) else quiet + 1
        assert time.time() < deadline, "the app kept running"
        page.wait_for_timeout(150)
    assert page.get_by_test_id("stException").count() == 0


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("the chromium browser is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    home = tmp_path_factory.mktemp("access-home")
    hostile_run(home, str(home / "data"), ["![t](http://x.invalid/y)", "<img src=http://x.invalid/z>"],
                b"not loaded: no image is classified")
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2", TLSTUDIO_PASSWORD="s3cret")
    command = [sys.executable, "-m", "streamlit", "run", "server.py", "--server.maxUploadSize", "1"]
    with streamlit_server(home, env, command=command) as url:
        yield url, home


def test_uploads_need_sign_in_and_names_never_fetch_or_format(served):
    from playwright.sync_api import sync_playwright
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    url, home = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        sessions, fetched = [], []

        def on_socket(ws):
            def frame(payload):
                if isinstance(payload, bytes):
                    msg = ForwardMsg()
                    msg.ParseFromString(payload)
                    if msg.WhichOneof("type") == "new_session":
                        sessions.append(msg.new_session.initialize.session_id)
            ws.on("framereceived", frame)

        page.on("websocket", on_socket)
        page.on("request", lambda r: fetched.append(r.url))
        page.goto(url)
        page.get_by_role("heading", name="TL Studio").wait_for()
        _settle(page)
        _shot(page, "access-sign-in")
        assert sessions
        sid = sessions[-1]

        # Not signed in: refused, small or large, before Streamlit takes the file.
        assert page.evaluate(PUT, [sid, 1000]) == [403, "Sign in to the studio before uploading files."]
        status, _ = page.evaluate(PUT, [sid, 3_000_000])
        assert status in (0, 403)

        page.get_by_label("Password", exact=True).fill("s3cret")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_test_id("stSidebar").get_by_text("Current selection").wait_for()
        _settle(page)

        # Signed in: taken, until the session holds more than server.maxUploadSize (1 MB here).
        assert sessions[-1] == sid
        assert page.evaluate(PUT, [sid, 600_000])[0] == 204
        status, reason = page.evaluate(PUT, [sid, 600_000])
        assert status == 413 and "server.maxUploadSize" in reason

        # Hostile names: shown as text, nothing fetched from their addresses, nothing bold.
        page.get_by_test_id("stSidebarNav").get_by_text("Predict", exact=True).click()
        page.get_by_text("Classes:").wait_for()
        _settle(page)
        _shot(page, "access-hostile-names")
        assert not [u for u in fetched if "x.invalid" in u], fetched
        sidebar = page.get_by_test_id("stSidebar")
        assert "**bold** ![r](http://x.invalid/r)" in sidebar.inner_text().replace("\u2060", "")
        assert page.locator("strong", has_text="bold").count() == 0
        assert page.locator("img[src*='x.invalid']").count() == 0
        caption = page.get_by_text("Classes:").inner_text().replace("\u2060", "")
        assert "![t](http://x.invalid/y)" in caption and "<img src=http://x.invalid/z>" in caption

        # Sign out: back to the sign-in page, and uploads refused again.
        page.get_by_role("button", name="Sign out").click()
        page.get_by_text("Signed out.").wait_for()
        _settle(page)
        _shot(page, "access-signed-out")
        assert page.evaluate(PUT, [sessions[-1], 1000])[0] == 403

        # Wrong passwords: the second at once is refused with the time to wait.
        for _ in range(2):
            page.get_by_label("Password", exact=True).fill("wrong")
            page.get_by_role("button", name="Sign in").click()
            _settle(page)
        page.get_by_text("Too many wrong passwords").wait_for()
        _shot(page, "access-throttled")
        browser.close()
    log = (home / "server.log").read_text()
    assert "Traceback" not in log and "Upload refused (403)" in log
