"""The WebRTC side of the live view: streamlit-webrtc (on aiortc) loaded before TensorFlow, the ICE
servers, and the loopback mode the tests use.

Importing aiortc (its SRTP library, pylibsrtp) in a process that has already imported
TensorFlow crashes that process (a segmentation fault); importing it first works. So
`app.py` calls `preload()` before anything can import TensorFlow, and a process where
TensorFlow came first (an AppTest after other tests, say) simply has no live view: pages
then offer the snapshot camera instead, never a crash.

No STUN or TURN server is used unless `TLSTUDIO_ICE_SERVERS` names some (a JSON list of
RTCIceServer dicts, e.g. a TURN server for a studio reached across NAT). With
`TLSTUDIO_WEBRTC_LOOPBACK=1` the server offers only a 127.0.0.1 host candidate (aioice skips
loopback addresses otherwise), so media never leaves the machine's loopback interface.
"""
from __future__ import annotations

import json
import logging
import os
import sys

from studio.i18n import N_

LOG = logging.getLogger(__name__)
_STATE: dict = {"loaded": None, "reason": ""}


def loopback_only() -> bool:
    return os.environ.get("TLSTUDIO_WEBRTC_LOOPBACK", "").strip() == "1"


def preload() -> bool:
    """Import streamlit-webrtc and aiortc now if that is still safe; True when the live view can run."""
    if _STATE["loaded"] is not None:
        return _STATE["loaded"]
    if os.environ.get("TLSTUDIO_LIVE", "").strip() == "0":
        return _fail(N_("The live view is switched off on this server (TLSTUDIO_LIVE=0)."))
    if "aiortc" not in sys.modules and "tensorflow" in sys.modules:
        return _fail(N_("The live view cannot start in this process: TensorFlow was loaded before the "
                        "video library (aiortc), and loading it now would crash the server. Restart the studio."))
    try:
        import streamlit_webrtc  # noqa: F401  (imports aiortc, av)
    except Exception as exc:  # not installed, or a broken install
        return _fail(f"The live view needs streamlit-webrtc, aiortc and av ({type(exc).__name__}: {exc}).")
    if loopback_only():
        _patch_loopback()
    _STATE["loaded"] = True
    return True


def available() -> bool:
    return bool(_STATE["loaded"]) if _STATE["loaded"] is not None else preload()


def reason() -> str:
    """Why the live view is not available (empty when it is)."""
    return str(_STATE["reason"])  # a lazy message: in the language of the session that asks


def _fail(why: str) -> bool:
    _STATE.update(loaded=False, reason=why)
    LOG.info("live view unavailable: %s", why)
    return False


def _patch_loopback() -> None:
    """aioice gathers host candidates from `get_host_addresses`, which leaves out 127.0.0.1: make it
    return exactly that (IPv4 only), so no candidate names another interface of this machine."""
    import aioice.ice

    def loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback_addresses
    LOG.info("WebRTC: loopback only (TLSTUDIO_WEBRTC_LOOPBACK=1)")


def ice_servers() -> list[dict]:
    """ICE servers from TLSTUDIO_ICE_SERVERS (JSON list); none by default (no STUN, no TURN)."""
    raw = os.environ.get("TLSTUDIO_ICE_SERVERS", "").strip()
    if not raw:
        return []
    try:
        servers = json.loads(raw)
        if isinstance(servers, dict):
            servers = [servers]
        if not isinstance(servers, list) or not all(isinstance(s, dict) and s.get("urls") for s in servers):
            raise ValueError("expected a list of objects with 'urls'")
    except ValueError as exc:
        LOG.warning("TLSTUDIO_ICE_SERVERS ignored (%s): %s", exc, raw[:200])
        return []
    return [] if loopback_only() else servers


def rtc_configuration() -> dict:
    return {"iceServers": ice_servers()}
