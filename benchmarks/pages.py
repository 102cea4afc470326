"""How fast the studio's Layers page answers, in headless Chromium against a served app.

For each backbone (at its default input size, in a fresh TLCORE_HOME and a fresh server):
the app is opened on the Home page with the backbone in the URL; then timed are

- open: from the click on "Layers" in the sidebar to the layer table on screen (its grid
  drawn), and to the end of the page's run (nothing running, no spinner, nothing stale);
- change: from a key press on the "Unfreeze from layer" slider (one step left) to the new
  choice in the page's caption, and to the end of the run (the plan, counts, chart and table
  redrawn); five changes, the first and the median reported (and the slowest to settle).

Run from the project root: ``python -m benchmarks.pages [NAMES...] [--json] [--shots DIR]
[--root CHECKOUT]`` (default: MobileNetV2 NASNetLarge ConvNeXtXLarge EfficientNetV2L; --root
times another checkout's app, for a before/after). Needs the `chromium` browser and
Playwright. Prints the machine's load average with the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["MobileNetV2", "NASNetLarge", "ConvNeXtXLarge", "EfficientNetV2L"]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
BUSY = ("() => !!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"], "
        "[data-stale=\"true\"], [data-testid=\"stSpinner\"]')")


def _load() -> str:
    """The 1, 5 and 15-minute load averages."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _idle(page, timeout: float = 300.0) -> None:
    """Until the page's run has ended (three quiet looks 50 ms apart)."""
    quiet, deadline = 0, time.time() + timeout
    while quiet < 3:
        quiet = 0 if page.evaluate(BUSY) else quiet + 1
        if time.time() > deadline:
            raise TimeoutError("the app kept running")
        page.wait_for_timeout(50)


def _caption(page) -> str:
    return page.get_by_text(re.compile(r"^Cut after .* unfreeze from ")).first.inner_text()


def measure(page, url: str, name: str, changes: int = 5) -> dict:
    """The times for one backbone, in seconds (see the module docstring)."""
    page.goto(f"{url}/?backbone={name}")
    page.get_by_test_id("stSidebarNav").wait_for()
    _idle(page)
    t0 = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_text("Layers", exact=True).click()
    page.locator('[data-testid="stDataFrame"] canvas').first.wait_for(timeout=300_000)  # the grid drawn
    shown = time.perf_counter() - t0
    _idle(page)
    settled = time.perf_counter() - t0 - 0.1  # the quiet looks
    out = {"backbone": name, "open_table_s": round(shown, 2), "open_settled_s": round(settled, 2)}
    if page.get_by_test_id("stException").count():
        out["error"] = page.get_by_test_id("stException").first.inner_text()[:300]
        return out
    slider = page.get_by_role("slider").nth(1)  # cut, then unfreeze
    shown_s, settled_s = [], []
    for _ in range(changes):
        before = _caption(page)
        slider.focus()
        t0 = time.perf_counter()
        slider.press("ArrowLeft")
        page.wait_for_function("(b) => ![...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
                               ".some(e => e.innerText === b)", arg=before, timeout=60_000)
        shown_s.append(time.perf_counter() - t0)
        _idle(page)
        settled_s.append(time.perf_counter() - t0 - 0.1)
    out.update(change_first_s=round(shown_s[0], 2), change_first_settled_s=round(settled_s[0], 2),
               change_median_s=round(statistics.median(shown_s), 2),
               change_median_settled_s=round(statistics.median(settled_s), 2),
               change_max_settled_s=round(max(settled_s), 2))
    return out


def run(names: list[str], shots: Path | None = None, root: Path = ROOT) -> list[dict]:
    """Measure each backbone in a fresh home and server of the checkout at `root`."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(root / "tests"))  # its apphelp starts its app
    from apphelp import streamlit_server

    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS, headless=True)
        for name in names:
            with tempfile.TemporaryDirectory(prefix="tlcore-pages-") as tmp:
                home = Path(tmp)
                env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2",
                           PYTHONPATH=str(root))
                env.pop("TLSTUDIO_PASSWORD", None)
                with streamlit_server(home, env) as url:
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    page.set_default_timeout(120_000)
                    row = measure(page, url, name)
                    row["load_after"] = _load()
                    built = home / "cache" / "layer-tables"
                    row["built_a_table"] = built.exists() and any(built.iterdir())
                    if shots:
                        shots.mkdir(parents=True, exist_ok=True)
                        height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')"
                                               "?.scrollHeight || 1000")  # Streamlit scrolls inside stMain
                        page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height), 6000))})
                        page.wait_for_timeout(800)
                        page.screenshot(path=str(shots / f"layers-{name}.png"), full_page=True)
                    context.close()
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        browser.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=DEFAULT, help="catalog backbones (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--shots", type=Path, default=None, help="save a screenshot of each Layers page here")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the checkout whose app to time (another branch, for a before/after)")
    a = parser.parse_args(argv)
    load = _load()
    rows = run(a.names, a.shots, a.root.resolve())
    if a.json:
        print(json.dumps({"load_before": load, "rows": rows}))
        return
    print(f"load average before: {load}")
    print(f"{'backbone':<16} {'open: table':>11} {'settled':>8} {'1st change':>10} {'settled':>8} "
          f"{'median':>7} {'settled':>8} {'max':>6}  built?")
    nan = float("nan")
    for r in rows:
        print(f"{r['backbone']:<16} {r['open_table_s']:>10.2f}s {r['open_settled_s']:>7.2f}s "
              f"{r.get('change_first_s', nan):>9.2f}s {r.get('change_first_settled_s', nan):>7.2f}s "
              f"{r.get('change_median_s', nan):>6.2f}s {r.get('change_median_settled_s', nan):>7.2f}s "
              f"{r.get('change_max_settled_s', nan):>5.2f}s  {'yes' if r['built_a_table'] else 'no'}"
              f"  (load {r['load_after']})" + (f"  ERROR {r['error']}" if "error" in r else ""))


if __name__ == "__main__":
    main()
