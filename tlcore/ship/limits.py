"""What one client may cost `tlcore serve`, in plain Python (no FastAPI): the decoding worker
processes, the pixel budgets, the token and its lockout. `serve` puts them in front of the model;
docs/SECURITY.md says why each exists."""
from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import secrets
import stat
import time
import warnings
from collections import OrderedDict
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.errors import OptionError
from ..data.images import MAX_PIXELS, ImageProblem, load_image

DECODE_WORKERS = 2
DECODE_NICENESS = 10  # decoding workers run at a lower priority than the event loop
REQUEST_PIXELS = MAX_PIXELS  # decoded pixels of one request's images together
SERVER_PIXELS = DECODE_WORKERS * MAX_PIXELS  # decoded at once by the whole server
FREE_FAILURES = 5  # wrong tokens a client may send before it has to wait
MAX_LOCKOUT = 300.0  # seconds
FORGET_AFTER = 3600.0  # seconds without a wrong token after which a client's count is dropped
TOKEN_ENV = "TLCORE_TOKEN"


class DecodePool:
    """Decodes images in worker processes (spawned, so they hold no TensorFlow), started on first use.

    A worker that dies (the kernel's out-of-memory killer, say) fails only the images it had:
    they get an ImageProblem, and the next request gets a fresh pool.
    """

    def __init__(self, workers: int = DECODE_WORKERS, executor: Executor | None = None):
        self.workers, self._executor, self._own = int(workers), executor, executor is None

    def _pool(self) -> Executor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_lower_priority)
        return self._executor

    async def load(self, data: bytes, size: int, resize: str) -> np.ndarray:
        pool = self._pool()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, load_image, data, size, resize)
        except BrokenProcessPool:
            if self._own and self._executor is pool:
                self._executor = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise ImageProblem("cannot decode: the decoding process stopped (out of memory?)") from None

    def shutdown(self) -> None:
        if self._own and self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _lower_priority() -> None:
    """A decoding worker yields the CPU to the server's event loop (/health, tokens, other requests)."""
    try:
        os.nice(DECODE_NICENESS)
    except OSError:  # pragma: no cover - a platform without nice
        pass


class BodyTooLarge(Exception):
    """Raised inside a request's `receive` once its body passes the limit."""


class PixelBudget:
    """Decoded pixels in flight across the server: `acquire(n)` waits until `n` more fit under `total`."""

    def __init__(self, total: int):
        self.total, self.used = int(total), 0
        self._cond: asyncio.Condition | None = None
        self._loop = None

    def _condition(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._cond is None or self._loop is not loop:  # one per event loop (test clients make new ones)
            self._cond, self._loop, self.used = asyncio.Condition(), loop, 0
        return self._cond

    async def acquire(self, n: int) -> None:
        if n > self.total:
            raise ValueError(f"n={n} is above the budget's total of {self.total}")
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self.used + n <= self.total)
            self.used += n

    async def release(self, n: int) -> None:
        cond = self._condition()
        async with cond:
            self.used -= n
            cond.notify_all()


class TokenGuard:
    """Bearer-token check with a lockout per client after repeated wrong tokens.

    A client (by address) may send `free` wrong tokens; each further one locks it out for a delay
    that doubles (1 s, 2 s, 4 s ... up to `max_lockout`), during which every request it makes
    that needs the token gets a 429 without the token being compared. A right token clears the
    client's count; a client quiet for `forget_after` seconds is forgotten.
    """

    def __init__(self, token: str, free: int = FREE_FAILURES, max_lockout: float = MAX_LOCKOUT,
                 forget_after: float = FORGET_AFTER, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 10_000):
        self.token = token.encode()
        self.free, self.max_lockout, self.forget_after, self.clock = free, max_lockout, forget_after, clock
        self.max_clients = max_clients
        self.failures: OrderedDict[str, tuple[int, float, float]] = OrderedDict()  # client -> (count, last, until)

    def check(self, client: str, header: str) -> tuple[int, str, dict] | None:
        """None if `header` carries the token, else (status, error text, headers) to answer with."""
        now = self.clock()
        count, last, until = self.failures.get(client, (0, now, 0.0))
        if now - last > self.forget_after:
            count, until = 0, 0.0
        if now < until:
            wait = math.ceil(until - now)
            return (429, f"too many wrong tokens from this client: try again in {wait} s",
                    {"Retry-After": str(wait)})
        if header.startswith("Bearer ") and secrets.compare_digest(header[7:].encode(), self.token):
            self.failures.pop(client, None)
            return None
        count += 1
        until = now + min(self.max_lockout, 2.0 ** (count - self.free - 1)) if count > self.free else 0.0
        self.failures[client] = (count, now, until)
        self.failures.move_to_end(client)
        while len(self.failures) > self.max_clients:
            self.failures.popitem(last=False)
        return (401, "missing or wrong token: send the header 'Authorization: Bearer TOKEN'",
                {"WWW-Authenticate": "Bearer"})


def resolve_token(token: str | None = None, token_file=None, environ=None) -> str | None:
    """The bearer token: from `token_file`, else `token` (`--token`), else the TLCORE_TOKEN variable.

    `--token` shows in the process list to every local user; a file (readable by you only) or the
    variable does not. Surrounding whitespace (a file's final newline) is not part of the token.

    Raises:
        OptionError: both `token` and `token_file`; a file that cannot be read; an empty token.
    """
    environ = os.environ if environ is None else environ
    if token is not None and token_file is not None:
        raise OptionError("token_file", "{option} and a token ({option:token}) were both given: give only one")
    if token_file is not None:
        path = Path(str(token_file)).expanduser()
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise OptionError("token_file", f"cannot be read ({path}): {reason}. Give a file holding the token.") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.warn(f"token_file={str(path)!r} can be read by other users (mode {stat.filemode(mode)}): "
                          f"chmod 600 it", stacklevel=2)
        token = text.strip()
        if not token:
            raise OptionError("token_file", f"{path} is empty: write the token in it")
        return token
    if token is not None:
        if not token.strip():
            raise OptionError("token", "must not be empty")
        return token
    value = environ.get(TOKEN_ENV)
    if value is not None and value.strip():
        return value.strip()
    return None
