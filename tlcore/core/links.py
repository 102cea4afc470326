"""Audience links: read-only tokens that open one run's audience page in the studio.

A link holds a token made by `secrets.token_urlsafe` (32 random bytes); only its SHA-256 is kept,
in ``TLCORE_HOME/audience/links.json`` (written atomically), so the file alone opens nothing.
Each link has a short public id (shown on the Predict page, used to revoke it), the run folder it
opens, when it was made and an optional note. Revoking a link deletes its entry: the token then
opens nothing, at once for every session that holds it (the studio checks it on every rerun).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from . import home
from .errors import OptionError
from .jsonio import read_json, write_json
from .runs import now_iso

TOKEN_BYTES = 32
MAX_NOTE = 80

_LOCK = threading.Lock()  # one writer at a time in this process (the studio's sessions are threads)


@dataclass(frozen=True)
class AudienceLink:
    """One active link: `id` (public, for revoking), the run folder it opens, when, a note."""

    id: str
    run_dir: str
    created_at: str
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AudienceLinks:
    """The audience links of one home folder (`root`, default ``TLCORE_HOME/audience``)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root else home.home() / "audience"
        self.path = self.root / "links.json"
        self._cache: tuple[tuple, dict] | None = None  # (file stamp, entries): verify runs on every rerun

    # --- reading --------------------------------------------------------------------------
    def _entries(self) -> dict:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            return {}
        cached = self._cache
        if cached is not None and cached[0] == stamp:
            return cached[1]
        data = read_json(self.path, {}) or {}
        entries = data.get("links") if isinstance(data, dict) else None
        entries = entries if isinstance(entries, dict) else {}
        self._cache = (stamp, entries)
        return entries

    def verify(self, token: str | None) -> AudienceLink | None:
        """The link `token` belongs to, or None (unknown, revoked, malformed, or its run deleted)."""
        if not token or not isinstance(token, str) or len(token) > 200:
            return None
        digest = _digest(token)
        for link_id, entry in self._entries().items():
            if isinstance(entry, dict) and hmac.compare_digest(str(entry.get("sha256", "")), digest):
                run_dir = str(entry.get("run_dir", ""))
                if not (Path(run_dir) / "status.json").exists():
                    return None
                return AudienceLink(link_id, run_dir, str(entry.get("created_at", "")), str(entry.get("note", "")))
        return None

    def active(self, run_dir: str | os.PathLike | None = None) -> list[AudienceLink]:
        """The links not revoked, oldest first; only those of `run_dir` when given."""
        wanted = None if run_dir is None else str(Path(run_dir).expanduser().absolute())
        out = [AudienceLink(k, str(e.get("run_dir", "")), str(e.get("created_at", "")), str(e.get("note", "")))
               for k, e in self._entries().items() if isinstance(e, dict)]
        return sorted([link for link in out if wanted is None or link.run_dir == wanted],
                      key=lambda link: (link.created_at, link.id))

    def is_active(self, link_id: str) -> bool:
        return link_id in self._entries()

    # --- writing --------------------------------------------------------------------------
    def create(self, run_dir: str | os.PathLike, note: str = "") -> tuple[AudienceLink, str]:
        """A new link to the run at `run_dir`: (the link, its token). The token is returned only here.

        Raises:
            OptionError: `run_dir` is not a run folder, or `note` is too long.
        """
        path = Path(run_dir).expanduser().absolute()
        if not (path / "status.json").exists():
            raise OptionError("run_dir", f"is not a run folder (it has no status.json). Received: {str(run_dir)!r}")
        note = str(note or "").strip()
        if len(note) > MAX_NOTE:
            raise OptionError("note", f"must be at most {MAX_NOTE} characters. Received: {len(note)} characters")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with _LOCK:
            entries = dict(self._entries())
            link_id = secrets.token_hex(4)
            while link_id in entries:
                link_id = secrets.token_hex(4)
            link = AudienceLink(link_id, str(path), now_iso(), note)
            entries[link_id] = {"sha256": _digest(token), "run_dir": link.run_dir, "created_at": link.created_at,
                                "note": note}
            self._write(entries)
        return link, token

    def revoke(self, link_id: str) -> bool:
        """Revoke the link `link_id`; False when there is no such link (revoked already)."""
        with _LOCK:
            entries = dict(self._entries())
            if entries.pop(str(link_id), None) is None:
                return False
            self._write(entries)
        return True

    def revoke_run(self, run_dir: str | os.PathLike) -> int:
        """Revoke every link of the run at `run_dir`; how many were revoked."""
        wanted = str(Path(run_dir).expanduser().absolute())
        with _LOCK:
            entries = dict(self._entries())
            kept = {k: e for k, e in entries.items() if not (isinstance(e, dict) and e.get("run_dir") == wanted)}
            if len(kept) != len(entries):
                self._write(kept)
        return len(entries) - len(kept)

    def _write(self, entries: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.path, {"links": entries})
        self._cache = None
