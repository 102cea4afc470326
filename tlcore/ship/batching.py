"""Many callers, one model: requests that arrive together classified in one call, and one loaded
model per run shared by everyone who uses it.

`Batcher` collects the images of requests arriving together (up to `max_batch` images, at most
`wait` seconds after the first) into one call of a function, in one worker thread of its own. It
serves threads (`classify`, blocking: the studio's sessions) and event loops (`submit`, awaited:
`tlcore serve`) alike.

`SharedModels` keeps one `predict.RunModel` (with its `Batcher`) per run and model file, shared
read-only by its holders (the studio's audience sessions): at most `size` are kept, the least
recently used dropped first; a holder that leaves (`release`, or `prune` with the holders still
there) frees its hold, and a model nobody holds is dropped.
"""
from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from typing import Callable, Iterable

import numpy as np

from ..core.errors import OptionError

MAX_BATCH = 32
WAIT_SECONDS = 0.005
_STOP = object()


class Batcher:
    """Classifies the images of requests that arrive together in one call of `fn`, in one thread.

    Args:
        fn: images [n, ...] -> results [n, ...] (one row per image).
        max_batch: the most images in one call (a request larger than this is one call of its own).
        wait: seconds to wait after the first request for others to join its call.
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], max_batch: int = MAX_BATCH,
                 wait: float = WAIT_SECONDS, name: str = "tlcore-batcher"):
        if int(max_batch) < 1:
            raise OptionError("max_batch", f"must be at least 1. Received: {max_batch}")
        if float(wait) < 0:
            raise OptionError("wait", f"must be 0 or more seconds. Received: {wait}")
        self.fn, self.max_batch, self.wait, self.name = fn, int(max_batch), float(wait), name
        self.batches: list[int] = []  # sizes of the calls made (the tests and benchmarks read them)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def future(self, images: np.ndarray) -> Future:
        """Queue `images` for the next call; a Future of their rows of the result."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("this Batcher is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
        self._queue.put((np.asarray(images), future))
        return future

    def classify(self, images: np.ndarray, timeout: float | None = None) -> np.ndarray:
        """The results of `images`, computed together with whatever else is waiting (blocks)."""
        return self.future(images).result(timeout)

    __call__ = classify

    async def submit(self, images: np.ndarray) -> np.ndarray:
        """`classify` for an event loop: awaits the result without blocking the loop."""
        return await asyncio.wrap_future(self.future(images))

    def close(self) -> None:
        """End the worker once what is queued is answered; later requests raise RuntimeError."""
        with self._lock:
            self._closed = True
            if self._thread is not None:
                self._queue.put(_STOP)

    def _work(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                return
            items = [item]
            count = len(item[0])
            deadline = time.monotonic() + self.wait
            while count < self.max_batch:
                left = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                items.append(item)
                count += len(item[0])
            self._answer(items)

    def _answer(self, items: list) -> None:
        try:
            results = self.fn(np.concatenate([images for images, _ in items]))
            self.batches.append(len(results))
            start = 0
            for images, future in items:
                if not future.done():
                    future.set_result(results[start:start + len(images)])
                start += len(images)
        except Exception as exc:  # one failing call fails its requests, not the worker
            for _, future in items:
                if not future.done():
                    future.set_exception(exc)


class RateLimit:
    """`fn` called at most `per_second` times a second: a call too soon waits for its turn.

    Wraps the probabilities of one live camera, whose worker classifies the newest frame whenever
    it is free: slowed down, it skips frames instead of queueing them.
    """

    def __init__(self, fn: Callable, per_second: float):
        if not float(per_second) > 0:
            raise OptionError("per_second", f"must be above 0. Received: {per_second}")
        self.fn, self.interval = fn, 1.0 / float(per_second)
        self._next = 0.0
        self._lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)
        return self.fn(*args, **kwargs)


class Shared:
    """One run's model shared by its holders: the `RunModel` (read-only) and its `Batcher`."""

    def __init__(self, model, key: tuple):
        self.model, self.key = model, key
        self.batcher = Batcher(model.probabilities, name=f"tlcore-batcher-{model.run.run_id}")
        self.holders: set[str] = set()

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of `images` (the model's input), batched with other holders' requests."""
        try:
            return self.batcher.classify(np.asarray(images))
        except RuntimeError:  # dropped from the pool meanwhile (closed): this one call goes alone
            return self.model.probabilities(np.asarray(images))


class SharedModels:
    """One loaded model per run (and model file), shared by holders; at most `size` kept.

    Args:
        size: models kept at most; beyond it the least recently used is dropped (its holders load it
            again on their next `hold`).
        loader: run folder -> `predict.RunModel` (tests pass their own).
    """

    def __init__(self, size: int = 3, loader: Callable | None = None):
        if int(size) < 1:
            raise OptionError("size", f"must be at least 1. Received: {size}")
        self.size = int(size)
        self._loader = loader
        self._entries: OrderedDict[tuple, Shared] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def _load(self, run_dir: str):
        if self._loader is not None:
            return self._loader(run_dir)
        from .predict import RunModel

        return RunModel(run_dir)

    @staticmethod
    def key(run_dir: str, model_path) -> tuple:
        from pathlib import Path

        path = Path(model_path)
        return (str(run_dir), str(path), path.stat().st_mtime_ns if path.exists() else 0)

    def hold(self, holder: str, run_dir: str, model_path) -> Shared:
        """The shared model of the run at `run_dir` (its file `model_path`), held by `holder`.

        A holder holds one model at a time: holding another releases the first. Loads the model
        (once, whoever asks first) when it is not kept yet.
        """
        key = self.key(run_dir, model_path)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                gate = self._loading.setdefault(key, threading.Lock())
        if entry is None:
            with gate:  # one load per key; others asking meanwhile wait for it
                with self._lock:
                    entry = self._entries.get(key)
                if entry is None:
                    entry = Shared(self._load(run_dir), key)
                    with self._lock:
                        self._entries[key] = entry
                        self._loading.pop(key, None)
        with self._lock:
            for other in self._entries.values():
                if other is not entry:
                    other.holders.discard(holder)
            entry.holders.add(holder)
            self._entries[key] = entry
            self._entries.move_to_end(key)
            self._drop(keep=entry)
        return entry

    def release(self, holder: str) -> None:
        """`holder` left: its hold ends; a model nobody holds any more is dropped."""
        with self._lock:
            for entry in self._entries.values():
                entry.holders.discard(holder)
            self._drop()

    def prune(self, alive: Iterable[str]) -> None:
        """Release every holder not in `alive` (the sessions still connected)."""
        alive = set(alive)
        with self._lock:
            for entry in self._entries.values():
                entry.holders &= alive
            self._drop()

    def holders(self) -> dict[tuple, set[str]]:
        with self._lock:
            return {k: set(e.holders) for k, e in self._entries.items()}

    def _drop(self, keep: Shared | None = None) -> None:
        """Drop unheld models, then the least recently used beyond `size` (caller holds the lock)."""
        for key, entry in list(self._entries.items()):
            if entry is not keep and not entry.holders:
                self._entries.pop(key).batcher.close()
        while len(self._entries) > self.size:
            key = next(k for k, e in self._entries.items() if e is not keep)
            self._entries.pop(key).batcher.close()
