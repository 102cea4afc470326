"""How to use a run from outside the studio: the commands that export, serve and call it.

Plain text for the Runs page and the README, computed here so the page never re-derives it.
"""
from __future__ import annotations

import shlex


def serve_command(source, port: int = 8000, token: bool = False) -> str:
    """The `tlcore serve` command for a run folder or a bundle .zip."""
    return f"tlcore serve {shlex.quote(str(source))} --port {int(port)}" + (" --token $TOKEN" if token else "")


def curl_example(port: int = 8000, image: str = "picture.jpg", top_k: int = 3, token: bool = False) -> str:
    """A curl call of the server's POST /predict with one image."""
    auth = ' -H "Authorization: Bearer $TOKEN"' if token else ""
    return f'curl{auth} -F "file=@{image}" "http://127.0.0.1:{int(port)}/predict?top_k={int(top_k)}"'


def bundle_command(source, out: str = "model.zip") -> str:
    return f"tlcore export {shlex.quote(str(source))} --format bundle --out {shlex.quote(out)}"
