"""Who may use the studio: the password, signed-in sessions and their idle time, the sign-in
throttle, and the upload gate in front of Streamlit's upload endpoint.

Streamlit serves ``PUT /_stcore/upload_file/{session_id}/{file_id}`` to any open session, signed in
or not, and keeps what arrives in memory until the session ends. `UploadGate` is an ASGI
middleware (installed by ``server.py``, the served entry, through ``st.App``) that answers such a
PUT before Streamlit takes its body (a small body is read and dropped, a large one left unread):
403 for a session that has not signed in (when a password is set), 413 when the session would hold more than the upload limit (``server.maxUploadSize``, which is the
largest dataset one session may upload: a zip, or a folder's files together). A session opened by an
audience link (`AUDIENCE`, `studio.audience`) may upload without signing in, up to
`AUDIENCE_UPLOAD_MB` in all, while its link is not revoked.

The signed-in sessions live here, in one process-wide table (the page script signs a session in
and out; the gate, on the server's event loop, reads it). A session is signed out after
``TLSTUDIO_IDLE_MINUTES`` (default 60; 0 never) without a run of the page script, which is what
any click does. Failed sign-ins make the next attempt wait, per client address and per session,
1 s after the first failure, doubling up to `MAX_DELAY` seconds.

No Streamlit widget is drawn here; `studio.components` draws the sign-in page and the sign-out button.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Callable, Iterable

LOG = logging.getLogger("tlstudio")

DEFAULT_IDLE_MINUTES = 60.0
FIRST_DELAY = 1.0       # seconds to wait after the first wrong password
MAX_DELAY = 300.0       # the delay doubles with each failure, up to this
FORGET_AFTER = 3600.0   # failures older than this (seconds) are forgotten
UPLOAD_PATH = re.compile(r"/_stcore/upload_file/(?P<session>[^/]+)/[^/]+/?$")
DRAIN_LIMIT = 1 << 20   # a refused upload up to this size is read (and dropped) so the client sees the answer
AUDIENCE_UPLOAD_MB = 15  # what an audience session may hold in uploads (a phone photo or two)

_now: Callable[[], float] = time.monotonic  # tests replace it to move time on


def required_password() -> str | None:
    """The password the studio asks for: ``st.secrets["password"]`` or ``TLSTUDIO_PASSWORD``."""
    secret = None
    try:
        import streamlit as st

        secret = st.secrets.get("password")
    except Exception:  # no secrets.toml at all
        secret = None
    return str(secret) if secret else (os.environ.get("TLSTUDIO_PASSWORD") or None)


def idle_seconds() -> float | None:
    """How long a signed-in session may stay idle (``TLSTUDIO_IDLE_MINUTES``); None for ever.

    A value that is not a number is ignored (with a warning in the log) for the default.
    """
    raw = os.environ.get("TLSTUDIO_IDLE_MINUTES", "").strip()
    minutes = DEFAULT_IDLE_MINUTES
    if raw:
        try:
            minutes = float(raw)
        except ValueError:
            LOG.warning("TLSTUDIO_IDLE_MINUTES=%r is not a number of minutes; using %s", raw, DEFAULT_IDLE_MINUTES)
    return None if minutes <= 0 else minutes * 60.0


# --- signed-in sessions -------------------------------------------------------------

class Sessions:
    """Signed-in session ids and when each last ran the page script. Thread-safe."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def sign_in(self, session_id: str) -> None:
        with self._lock:
            self._seen[session_id] = _now()

    def sign_out(self, session_id: str) -> None:
        with self._lock:
            self._seen.pop(session_id, None)

    def active(self, session_id: str) -> bool:
        """Signed in and not idle too long (an expired session is signed out here)."""
        limit = idle_seconds()
        with self._lock:
            seen = self._seen.get(session_id)
            if seen is None:
                return False
            if limit is not None and _now() - seen > limit:
                del self._seen[session_id]
                return False
            return True

    def touch(self, session_id: str) -> bool:
        """Record activity of a signed-in session; False when it is not (or no longer) signed in."""
        if not self.active(session_id):
            return False
        with self._lock:
            if session_id in self._seen:
                self._seen[session_id] = _now()
                return True
        return False

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


SESSIONS = Sessions()


# --- audience sessions --------------------------------------------------------------

class AudienceSessions:
    """Sessions opened by an audience link: session id -> the link's id. Thread-safe."""

    def __init__(self) -> None:
        self._links: dict[str, str] = {}
        self._lock = threading.Lock()

    def open(self, session_id: str, link_id: str) -> None:
        with self._lock:
            self._links[session_id] = link_id

    def close(self, session_id: str) -> None:
        with self._lock:
            self._links.pop(session_id, None)

    def link(self, session_id: str) -> str | None:
        with self._lock:
            return self._links.get(session_id)

    def drop_link(self, link_id: str) -> list[str]:
        """Forget the sessions of a revoked link; their ids."""
        with self._lock:
            gone = [s for s, link in self._links.items() if link == link_id]
            for s in gone:
                del self._links[s]
        return gone

    def prune(self, alive) -> None:
        """Forget sessions not in `alive` (the sessions still connected)."""
        alive = set(alive)
        with self._lock:
            for s in [s for s in self._links if s not in alive]:
                del self._links[s]

    def sessions(self) -> dict[str, str]:
        with self._lock:
            return dict(self._links)

    def clear(self) -> None:
        with self._lock:
            self._links.clear()


AUDIENCE = AudienceSessions()
_LINK_STORES: dict = {}


def audience_links():
    """The audience links of the current home folder (`tlcore.core.links.AudienceLinks`, one per home)."""
    from tlcore.core import home
    from tlcore.core.links import AudienceLinks

    root = str(home.home() / "audience")
    store = _LINK_STORES.get(root)
    if store is None:
        store = _LINK_STORES[root] = AudienceLinks(root)
    return store


def audience_link_of(session_id: str) -> str | None:
    """The id of the (not revoked) audience link `session_id` was opened with, or None."""
    link_id = AUDIENCE.link(session_id)
    if link_id is not None and not audience_links().is_active(link_id):
        AUDIENCE.close(session_id)
        return None
    return link_id


def active_session_ids() -> set[str] | None:
    """The ids of the sessions connected to this server now (None without a runtime)."""
    from streamlit import runtime

    if not runtime.exists():
        return None
    try:
        manager = runtime.get_instance()._session_mgr
        return {info.session.id for info in manager.list_active_sessions()}
    except Exception:  # Streamlit's internals moved: nothing is pruned
        return None


# --- the sign-in throttle -----------------------------------------------------------

class Throttle:
    """Failed sign-ins per key (a client address, a session): how long the next try must wait."""

    def __init__(self, first: float = FIRST_DELAY, cap: float = MAX_DELAY) -> None:
        self.first, self.cap = first, cap
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, time of the last failure)
        self._lock = threading.Lock()

    def delay(self, failures: int) -> float:
        """Seconds to wait after `failures` failures in a row: 0, then 1, 2, 4, ... up to the cap."""
        return 0.0 if failures <= 0 else min(self.cap, self.first * 2 ** (failures - 1))

    def wait(self, keys: Iterable[str]) -> float:
        """Seconds until any of `keys` may try again (0 when all may try now)."""
        now = _now()
        wait = 0.0
        with self._lock:
            for key in keys:
                if key in self._failures:
                    count, last = self._failures[key]
                    wait = max(wait, self.delay(count) - (now - last))
        return wait

    def failed(self, keys: Iterable[str]) -> float:
        """Count a failure for every key; returns the wait before the next try."""
        now = _now()
        with self._lock:
            for key, (count, last) in list(self._failures.items()):
                if now - last > FORGET_AFTER:
                    del self._failures[key]
            for key in keys:
                count = self._failures.get(key, (0, now))[0]
                self._failures[key] = (count + 1, now)
        return self.wait(keys)

    def succeeded(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()


THROTTLE = Throttle()


# --- uploads ------------------------------------------------------------------------

def upload_limit_bytes() -> int:
    """The most one session may upload and hold: ``server.maxUploadSize`` (megabytes)."""
    from streamlit import config

    return int(config.get_option("server.maxUploadSize")) * 1024 * 1024


def session_upload_bytes(session_id: str) -> int:
    """Bytes of uploaded files Streamlit holds for `session_id` (0 when none or no runtime)."""
    from streamlit import runtime

    if not runtime.exists():
        return 0
    manager = runtime.get_instance().uploaded_file_mgr
    storage = getattr(manager, "file_storage", {})
    lock = getattr(manager, "_lock", None) or threading.Lock()
    with lock:
        files = storage.get(session_id) or {}
        return sum(len(f.data) for f in files.values())


def free_uploads(session_id: str) -> None:
    """Drop every file `session_id` uploaded (sign-out, expiry)."""
    from streamlit import runtime

    if runtime.exists():
        runtime.get_instance().uploaded_file_mgr.remove_session_files(session_id)


def upload_refusal(session_id: str, length: int | None) -> tuple[int, str] | None:
    """Why an upload of `length` bytes for `session_id` is refused, as (HTTP status, reason); None if not."""
    signed_in = SESSIONS.active(session_id)
    audience = not signed_in and audience_link_of(session_id) is not None
    if required_password() and not signed_in and not audience:
        return 403, "Sign in to the studio before uploading files."
    limit = upload_limit_bytes()
    held = session_upload_bytes(session_id)
    if audience and held + max(0, length or 0) > min(limit, AUDIENCE_UPLOAD_MB * 1024 * 1024):
        return 413, (f"The audience page takes images of up to {AUDIENCE_UPLOAD_MB} MB; this one (with "
                     f"{held} bytes held already) is larger. Send a smaller photo.")
    if held + max(0, length or 0) > limit:
        return 413, (f"This session already holds {held} bytes of uploads; with this file it would pass "
                     f"the limit of {limit} bytes (server.maxUploadSize).")
    return None


class UploadGate:
    """ASGI middleware: refuses an upload PUT by `upload_refusal` before Streamlit takes its body.

    A refused body of up to `DRAIN_LIMIT` bytes (by its Content-Length) is read and dropped so that
    the client gets the answer; a longer one is answered unread and the connection closed.
    """

    installed = False

    def __init__(self, app) -> None:
        self.app = app
        UploadGate.installed = True

    async def __call__(self, scope, receive, send) -> None:
        if scope.get("type") == "http" and scope.get("method") == "PUT":
            match = UPLOAD_PATH.search(scope.get("path") or "")
            if match:
                length = None
                for name, value in scope.get("headers") or ():
                    if name.lower() == b"content-length":
                        try:
                            length = int(value)
                        except ValueError:
                            length = None
                refusal = upload_refusal(match["session"], length)
                if refusal is not None:
                    status, reason = refusal
                    LOG.warning("Upload refused (%s): %s", status, reason)
                    drained = length is not None and length <= DRAIN_LIMIT and await _drain(receive)
                    body = reason.encode("utf-8")
                    headers = [(b"content-type", b"text/plain; charset=utf-8"),
                               (b"content-length", str(len(body)).encode())]
                    if not drained:
                        headers.append((b"connection", b"close"))
                    await send({"type": "http.response.start", "status": status, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


async def _drain(receive) -> bool:
    """Read and drop a request body of at most `DRAIN_LIMIT` bytes; False if it was longer or cut off.

    A client still sending when the server closes the connection may lose the answer (browsers then
    report status 0), so a small refused body is read first; a large one is never read.
    """
    seen = 0
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            return False
        seen += len(message.get("body") or b"")
        if seen > DRAIN_LIMIT:
            return False
        if not message.get("more_body"):
            return True


def guard_uploads_without_gate() -> None:
    """Served as ``streamlit run app.py`` (no `UploadGate`) with a password set: the next best thing.

    Streamlit's upload manager then keeps no file of a session that has not signed in (the body is
    still read, then dropped at once), and the server's log says to serve ``server.py`` instead.
    Installed once per process; a no-op behind the gate or without a password.
    """
    from streamlit import runtime

    if UploadGate.installed or not required_password() or not runtime.exists():
        return
    manager = runtime.get_instance().uploaded_file_mgr
    if getattr(manager.add_file, "_tlstudio_guard", False):
        return
    add_file = manager.add_file

    def add_file_if_signed_in(session_id, file, *args, **kwargs):
        if not SESSIONS.active(session_id) and audience_link_of(session_id) is None:
            LOG.warning("Upload dropped: session %s has not signed in", session_id)
            return None
        return add_file(session_id, file, *args, **kwargs)

    add_file_if_signed_in._tlstudio_guard = True  # type: ignore[attr-defined]
    manager.add_file = add_file_if_signed_in
    LOG.warning("TL Studio runs without its upload gate (streamlit run app.py): uploads before sign-in "
                "are read, then dropped. Serve it with `streamlit run server.py` (scripts/app.sh) to refuse them unread.")
