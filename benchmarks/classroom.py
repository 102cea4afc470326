"""A classroom on one machine: N audience sessions of one run, each dropping an image every 3 s.

    python -m benchmarks.classroom N [--seconds 60] [--every 3] [--size 96] [--json]

Starts the studio (``streamlit run server.py``, behind its upload gate) with a fresh home holding one
run (MobileNetV2 at 96 px, random weights: the same work per image as a trained one), makes an
audience link, and drives N sessions of the audience page from one headless Chromium (one browser
context each). Every session drops a new image every `--every` seconds (the next waits for the label
of the previous one) for `--seconds`, and times each drop from the file being set to its label being
shown. Reports the latency percentiles, errors (a drop without its label within 30 s, an exception
box on the page) and the server's resident memory: with one session (after its first label) and
the most seen with all N.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}
# every page is in the foreground on its own phone: no throttling of background pages' timers
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
        "--disable-features=IntensiveWakeUpThrottling,CalculateNativeWinOcclusion"]
LABEL_TIMEOUT = 30.0


def write_run(runs_dir: Path, size: int = 96, backbone: str = "MobileNetV2", run_id: str = "classroom-run") -> Path:
    """A completed run folder whose model tells the three COLOURS apart by their mean colour, behind
    `backbone` (random weights, its output used a little) or none ("none": a model of a few weights)."""
    import keras

    labels = list(COLOURS)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    conv = keras.layers.Conv2D(3, 1, name="colour_conv", use_bias=False)
    mean = keras.layers.GlobalAveragePooling2D()(conv(x))
    if backbone != "none":
        base = getattr(keras.applications, backbone)(include_top=False, weights=None, input_shape=(size, size, 3))
        features = keras.layers.GlobalAveragePooling2D()(base(keras.layers.Rescaling(2.0, offset=-1.0)(x)))
        mean = keras.layers.Concatenate()([mean, keras.layers.Dense(3, kernel_initializer="zeros")(features)])
        mean = keras.layers.Dense(3, use_bias=False, name="colour_sum")(mean)
    outputs = keras.layers.Activation("softmax")(keras.layers.Rescaling(10.0)(mean))
    model = keras.Model(inputs, outputs)
    conv.set_weights([np.eye(3, dtype="float32").reshape(1, 1, 3, 3)])
    if backbone != "none":
        model.get_layer("colour_sum").set_weights([np.vstack([np.eye(3), np.eye(3)]).astype("float32")])
    path = Path(runs_dir) / run_id
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / "model.keras")
    (path / "labels.json").write_text(json.dumps(labels))
    (path / "config.json").write_text(json.dumps({"options": {
        "backbone": backbone, "input_size": size, "name": "colours", "resize": "stretch"}}))
    (path / "status.json").write_text(json.dumps({"state": "completed", "host": socket.gethostname()}))
    return path


def png(colour, seed: int, size: int = 160) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour, float) + rng.normal(0, 25, (size, size, 3)), 0, 255).astype("uint8")
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def rss_bytes(pid: int) -> int:
    """Resident memory of the process `pid` and its children (the server's own process tree)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def cpu_seconds(pid: int, skip: int | None = None) -> float:
    """CPU time (user + system) of the process `pid` and its descendants, without `skip`'s tree."""
    ticks = 0
    tree = [pid, *_children(pid)]
    skipped = {skip, *_children(skip)} if skip else set()
    for p in tree:
        if p in skipped:
            continue
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = []
    try:
        for child in Path(f"/proc/{pid}/task").glob("*/children"):
            for c in child.read_text().split():
                out += [int(c), *_children(int(c))]
    except OSError:
        pass
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, env: dict) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "server.py", "--server.port", str(port),
                             "--server.headless", "true"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError("the server did not start:\n" + (home / "server.log").read_text()[-3000:])
        time.sleep(0.3)


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


RESULT = "[class*='st-key-audience_result']"


async def drop_and_wait(page, name: str, data: bytes, timeout: float = LABEL_TIMEOUT) -> float:
    """Drop one image on the audience page; seconds until its label is shown (TimeoutError if never)."""
    t0 = time.perf_counter()
    await page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        {"name": name, "mimeType": "image/png", "buffer": data})
    await page.locator(RESULT).filter(has_text=name).locator("h2").first.wait_for(timeout=timeout * 1000)
    return time.perf_counter() - t0


async def session(browser, link: str, index: int, seconds: float, every: float, start: asyncio.Event,
                  out: dict) -> None:
    context = await browser.new_context(viewport={"width": 420, "height": 860})
    page = await context.new_page()
    try:
        await page.goto(link, timeout=120_000)
        await page.locator("[data-testid='stFileUploaderDropzoneInput']").wait_for(state="attached", timeout=120_000)
        out["ready"] += 1
        await start.wait()
        await asyncio.sleep(every * index / max(1, out["n"]))  # spread the drops over the period
        end = time.monotonic() + seconds
        k = 0
        while time.monotonic() < end:
            tick = time.monotonic()
            colour = list(COLOURS)[k % len(COLOURS)]
            name = f"s{index}-{k}-{colour}.png"
            try:
                out["latencies"].append(await drop_and_wait(page, name, png(COLOURS[colour], index * 1000 + k)))
                text = await page.locator(RESULT).filter(has_text=name).locator("h2").first.inner_text()
                if text.strip() != colour:
                    out["wrong"] += 1
            except Exception as exc:  # a label that never came
                out["errors"].append(f"session {index}, drop {k}: {type(exc).__name__}: {str(exc)[:160]}")
            if await page.locator("[data-testid='stException']").count():
                out["errors"].append(f"session {index}, drop {k}: an exception box on the page")
            k += 1
            await asyncio.sleep(max(0.0, every - (time.monotonic() - tick)))
    except Exception as exc:
        out["errors"].append(f"session {index}: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        await context.close()


async def drive(link: str, n: int, seconds: float, every: float, pid: int) -> dict:
    from playwright.async_api import async_playwright

    out = {"latencies": [], "errors": [], "wrong": 0, "ready": 0, "n": n}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS, headless=True)
        # one session first: the server's memory with the model loaded and one viewer
        one = {"latencies": [], "errors": [], "wrong": 0, "ready": 0, "n": 1}
        go = asyncio.Event()
        go.set()
        await session(browser, link, 0, 2 * every, every, go, one)
        await asyncio.sleep(3)
        rss_one = rss_bytes(pid)
        start = asyncio.Event()
        tasks = [asyncio.create_task(session(browser, link, i, seconds, every, start, out)) for i in range(n)]
        while out["ready"] < n and not all(t.done() for t in tasks):
            await asyncio.sleep(0.5)
        start.set()
        cpu0 = (cpu_seconds(pid), cpu_seconds(os.getpid(), skip=pid))
        peak = rss_bytes(pid)
        cpu1 = cpu0
        while not all(t.done() for t in tasks):  # sampled while the pages live (a closed one takes its CPU time along)
            peak = max(peak, rss_bytes(pid))
            cpu1 = max(cpu1[0], cpu_seconds(pid)), max(cpu1[1], cpu_seconds(os.getpid(), skip=pid))
            await asyncio.sleep(0.5)
        await browser.close()
    lat = np.array(out["latencies"]) if out["latencies"] else np.zeros(0)
    pct = {f"p{q}": round(float(np.percentile(lat, q)), 3) if len(lat) else None for q in (50, 90, 95, 99)}
    return {"sessions": n, "seconds": seconds, "every": every, "drops": len(lat) + len(out["errors"]),
            "labels": len(lat), "latency_s": {**pct, "max": round(float(lat.max()), 3) if len(lat) else None},
            "errors": len(out["errors"]), "error_samples": out["errors"][:5], "wrong_labels": out["wrong"],
            "rss_one_session_mb": round(rss_one / 2**20), "rss_peak_mb": round(peak / 2**20),
            "rss_growth_mb": round((peak - rss_one) / 2**20), "one_session_errors": one["errors"][:3],
            "cpu_s": {"server": round(cpu1[0] - cpu0[0], 1), "browsers": round(cpu1[1] - cpu0[1], 1)},
            "load_average": os.getloadavg()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.classroom", description=__doc__.splitlines()[0])
    parser.add_argument("sessions", type=int, help="audience sessions at once")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long every session drops images")
    parser.add_argument("--every", type=float, default=3.0, help="seconds between one session's drops")
    parser.add_argument("--size", type=int, default=96, help="the model's input size")
    parser.add_argument("--backbone", default="MobileNetV2", help="a keras.applications model, or none")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    if args.sessions < 1:
        parser.error(f"sessions must be at least 1. Received: {args.sessions}")
    if shutil.which("chromium") is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    home = Path(tempfile.mkdtemp(prefix="tl-classroom-"))
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    env.pop("TLSTUDIO_PASSWORD", None)
    os.environ["TLCORE_HOME"] = str(home)
    try:
        run = write_run(home / "runs", args.size, args.backbone)
        from tlcore.core.links import AudienceLinks

        _, token = AudienceLinks(home / "audience").create(run)
        proc, url = start_server(home, env)
        try:
            result = asyncio.run(drive(f"{url}/audience?t={token}", args.sessions, args.seconds, args.every,
                                       proc.pid))
        finally:
            stop_server(proc)
        result["command"] = "python -m benchmarks.classroom " + " ".join(argv if argv is not None else sys.argv[1:])
        print(json.dumps(result, indent=None if args.json else 2))
        return 0 if result["errors"] == 0 else 1
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
