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
