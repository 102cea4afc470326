"""The studio served by Streamlit in its own process, for the browser tests."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(home: Path, env: dict, address: str | None = None, command: list[str] | None = None,
                     timeout: float | None = 60):
    """`streamlit run app.py` (or `command`, which takes Streamlit's options after it, such as
    `bash scripts/app.sh`) on a free port, its output in HOME/server.log; yields its URL once
    healthy (waiting up to `timeout` seconds, None for as long as it runs), and ends its whole
    process group afterwards."""
    port = free_port()
    log = open(home / "server.log", "wb")
    args = (command or [sys.executable, "-m", "streamlit", "run", "app.py"]) + [
        "--server.port", str(port), "--server.headless", "true"] + (["--server.address", address] if address else [])
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = None if timeout is None else time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or (deadline is not None and time.time() > deadline):
            raise RuntimeError("the server did not start:\n" + (home / "server.log").read_text()[-3000:])
        time.sleep(0.3)
    try:
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def plain(markdown: str) -> str:
    """What a Markdown string escaped by `studio.text.md` shows: its backslash escapes and word
    joiners removed (AppTest's `.value` is the source, not the rendered text)."""
    import re

    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


def open_page(page: str | None, timeout: float = 60, **state):
    """The app in AppTest with `state` in its session, switched to `page` (None: the app's first
    page), after checking that no page raised."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def hostile_run(home: Path, data: str, labels: list[str], model: bytes = b"not loaded") -> Path:
    """A finished run (no real model: the pages only list it) named with Markdown and an image, its
    dataset at `data` and its classes `labels`, in HOME/runs."""
    import json

    path = home / "runs" / "20261204-101500-hostile-1a2b"
    path.mkdir(parents=True)
    (path / "status.json").write_text(json.dumps({"state": "completed", "host": socket.gethostname()}))
    (path / "config.json").write_text(json.dumps({"options": {
        "backbone": "MobileNetV2", "data": data, "name": "**bold** ![r](http://x.invalid/r)",
        "head_epochs": 1, "fine_tune_epochs": 1}}))
    (path / "labels.json").write_text(json.dumps(labels))
    (path / "model.keras").write_bytes(model)
    return path
