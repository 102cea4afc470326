"""How fast every page of the studio answers a widget change once its data is cached, in headless
Chromium against a served app.

One fresh TLCORE_HOME holds a small demo dataset and one completed run (``tlcore demo-data``, then
``tlcore train`` MobileNetV2 without weights at 96 px, one head epoch: about 15 s). The app is opened
with that dataset, backbone and run in the URL; then each page is visited once (its data cached),
and one typical widget of it is changed several times, back and forth between two values. Timed
per change, from the input event (a click or key press) to

- server: the app's "script finished" message arriving over the websocket (the rerun done);
- settled: the page in the browser with nothing running, nothing stale and no spinner
  (`benchmarks.pages._idle`).

The median and the slowest of the changes are reported. Pages without an input widget of their
own (Home, Quick start with one dataset and no camera) are rerun with Streamlit's "R" key instead.

Run from the project root: ``python -m benchmarks.widgets [PAGES...] [--changes N] [--json]
[--shots DIR] [--root CHECKOUT]``. Needs the `chromium` browser and Playwright. Prints the machine's
load average with the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.pages import ARGS, ROOT, _idle, _load


def _click(label: str, scope: str = "stMain"):
    def act(page, i):
        page.get_by_test_id(scope).get_by_text(label, exact=True).first.click()
    return act


def _between(a: str, b: str, where: str):
    """Click `a` on even changes and `b` on odd ones, inside the element with test id `where`."""
    def act(page, i):
        page.get_by_test_id(where).get_by_text(b if i % 2 == 0 else a, exact=True).first.click()
    return act


def _segmented(a: str, b: str):
    def act(page, i):
        page.get_by_test_id("stMain").get_by_role("radio", name=b if i % 2 == 0 else a, exact=True).first.click()
    return act


def _slider(nth: int, keys=("ArrowLeft", "ArrowRight")):
    def act(page, i):
        slider = page.get_by_role("slider").nth(nth)
        slider.focus()
        slider.press(keys[i % 2])
    return act


def _stepper(nth: int = 0):
    def act(page, i):
        which = "stNumberInputStepUp" if i % 2 == 0 else "stNumberInputStepDown"
        page.get_by_test_id(which).nth(nth).click()
    return act


def _rerun(page, i):
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # no widget focused
    page.keyboard.press("r")


# page title in the sidebar -> (the widget changed, how)
PAGES = {
    "Quick start": ("rerun (R key)", _rerun),
    "Home": ("rerun (R key)", _rerun),
    "Backbone": ("Weights radio", _between("ImageNet (pretrained)", "None (train from scratch)", "stRadio")),
    "Layers": ("Unfreeze slider", _slider(1)),
    "Data": ("Augmentation preset", _segmented("Light", "Strong")),
    "Train": ("Stage 1 epochs +/-", _stepper(0)),
    "Evaluate": ("Split to score", _segmented("test", "validation")),
    "Predict": ("Top k slider", _slider(0)),
    "Runs": ("Show the script", _click("Show the script")),
    "Search": ("ASHA checkbox", _click("Stop weak runs early (ASHA)")),
}


def make_home(home: Path, root: Path = ROOT) -> tuple[Path, Path]:
    """A demo dataset and one completed tiny run in `home`: (dataset, run folder)."""
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(root))
    data = home / "datasets" / "demo-shapes"
    cli = [sys.executable, "-m", "tlcore"]
    subprocess.run(cli + ["demo-data", str(data), "--classes", "3", "--per-class", "20", "--json"],
                   env=env, cwd=root, check=True, capture_output=True)
    subprocess.run(cli + ["train", str(data), "--backbone", "MobileNetV2", "--weights", "none", "--input-size",
                          "96", "--head-epochs", "1", "--fine-tune-epochs", "0", "--json"],
                   env=env, cwd=root, check=True, capture_output=True)
    runs = sorted((home / "runs").iterdir())
    return data, runs[-1]


class Finished:
    """Times at which the app's websocket said a full script run finished."""

    def __init__(self, page):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self.times: list[float] = []
        self._msg = ForwardMsg

        def on_ws(ws):
            ws.on("framereceived", self._frame)
        page.on("websocket", on_ws)

    def _frame(self, payload):
        if isinstance(payload, str):
            return
        try:
            msg = self._msg.FromString(payload)
        except Exception:
            return
        if msg.WhichOneof("type") == "script_finished" and msg.script_finished == self._msg.FINISHED_SUCCESSFULLY:
            self.times.append(time.perf_counter())

    def wait_after(self, page, t0: float, timeout: float = 120.0) -> float:
        deadline = time.perf_counter() + timeout
        while not any(t > t0 for t in self.times):
            if time.perf_counter() > deadline:
                raise TimeoutError("no rerun finished")
            page.wait_for_timeout(5)
        return min(t for t in self.times if t > t0) - t0


def measure_page(page, finished: Finished, title: str, changes: int) -> dict:
    """Visit `title` (its first run caches its data), then change its widget `changes` times."""
    widget, act = PAGES[title]
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    t0 = time.perf_counter()
    finished.wait_after(page, t0 - 0.01, timeout=300)
    _idle(page)
    visit = time.perf_counter() - t0 - 0.1
    page.wait_for_timeout(300)
    row = {"page": title, "widget": widget, "first_visit_s": round(visit, 2)}
    server, settled = [], []
    try:
        for i in range(changes):
            _idle(page)
            t0 = time.perf_counter()
            act(page, i)
            server.append(finished.wait_after(page, t0))
            _idle(page)
            settled.append(time.perf_counter() - t0 - 0.1)  # the quiet looks
    except Exception as e:  # a widget not found, a timeout: say so in the row
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    if page.get_by_test_id("stException").count():
        row["error"] = page.get_by_test_id("stException").first.inner_text()[:300]
    if server:
        row.update(server_median_s=round(statistics.median(server), 2), server_max_s=round(max(server), 2),
                   median_s=round(statistics.median(settled), 2), max_s=round(max(settled), 2),
                   changes=len(settled))
    return row


def run(titles: list[str], changes: int = 5, shots: Path | None = None, root: Path = ROOT) -> list[dict]:
    from urllib.parse import urlencode

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(root / "tests"))
    from apphelp import streamlit_server

    rows = []
    with tempfile.TemporaryDirectory(prefix="tlcore-widgets-") as tmp, sync_playwright() as p:
        home = Path(tmp)
        data, run_dir = make_home(home, root)
        env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(root))
        env.pop("TLSTUDIO_PASSWORD", None)
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS, headless=True)
        with streamlit_server(home, env) as url:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(120_000)
            finished = Finished(page)
            query = urlencode({"backbone": "MobileNetV2", "input_size": 96, "data": str(data),
                               "run_dir": str(run_dir)})
            page.goto(f"{url}/?{query}")
            page.get_by_test_id("stSidebarNav").wait_for()
            _idle(page)
            page.set_default_timeout(20_000)  # a widget not found fails fast
            for title in titles:
                row = measure_page(page, finished, title, changes)
                row["load_after"] = _load()
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                if shots:
                    shots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(shots / f"widget-{title.replace(' ', '_')}.png"), full_page=True)
            context.close()
        browser.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", default=list(PAGES), help="page titles (default: all)")
    parser.add_argument("--changes", type=int, default=5, help="widget changes per page (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--shots", type=Path, default=None, help="save a screenshot of each page here")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app to time")
    a = parser.parse_args(argv)
    unknown = [t for t in a.pages if t not in PAGES]
    if unknown:
        parser.error(f"unknown page {', '.join(unknown)}; known: {', '.join(PAGES)}")
    load = _load()
    rows = run(a.pages, a.changes, a.shots, a.root.resolve())
    if a.json:
        print(json.dumps({"load_before": load, "load_after": _load(), "rows": rows}))
        return
    print(f"load average before: {load}, after: {_load()}")
    print(f"{'page':<12} {'widget':<22} {'1st visit':>9} {'server med':>10} {'max':>6} {'settled med':>11} "
          f"{'max':>6}")
    nan = float("nan")
    for r in rows:
        print(f"{r['page']:<12} {r['widget']:<22} {r['first_visit_s']:>8.2f}s {r.get('server_median_s', nan):>9.2f}s "
              f"{r.get('server_max_s', nan):>5.2f}s {r.get('median_s', nan):>10.2f}s {r.get('max_s', nan):>5.2f}s"
              f"  (load {r['load_after']})" + (f"  ERROR {r['error']}" if "error" in r else ""))


if __name__ == "__main__":
    main()
