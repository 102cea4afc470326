"""`tlcore serve`: a run's model (or a bundle's) behind a small REST API (FastAPI + uvicorn).

Imported only by the `serve` command: FastAPI and uvicorn load nowhere else.

    POST /predict   images as multipart fields named `file` (repeatable), or one image as the raw
                    body with an image content type; query `top_k` (default 5) ->
                    {"predictions": [{"image", "top": [{"label", "probability"}]}]}
    GET  /health    {"status": "ok", ...}, never needs the token
    GET  /labels    {"labels": [...]}
    GET  /docs      OpenAPI docs

Errors are JSON {"error": "..."}: 401 without the bearer token (when one is set), 413 for an
image over the size limit, 415 for a file that is not an image, 422 for a malformed request.
Images that arrive together are classified together: a batcher collects what is waiting (up to
`MAX_BATCH` images, at most `WAIT_SECONDS` after the first) into one call of the model.
"""
from __future__ import annotations

import asyncio
import io
import secrets
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ..core.errors import OptionError, TLCoreError
from ..data.images import ImageProblem, load_image
from ..data.outputs import predict_probabilities
from .predict import load_model, top_labels

MAX_BATCH = 32
WAIT_SECONDS = 0.005
MAX_FILES = 64


class Classifier:
    """A run's model or an unpacked bundle's, with its labels and input settings."""

    def __init__(self, source, runs_dir=None):
        path = Path(str(source)).expanduser()
        if path.is_file() and path.suffix.lower() == ".zip":
            from .bundle import bundle_settings, open_bundle

            folder = open_bundle(path)
            self.labels, _, self.resize = bundle_settings(folder)
            self.model = load_model(folder / "model.keras")
            self.name = path.name
        else:
            from .predict import RunModel

            rm = RunModel(source, runs_dir)
            self.model, self.labels, self.resize, self.name = rm.model, rm.labels, rm.resize, rm.run.run_id
        self.input_size = int(self.model.input_shape[1])
        if int(self.model.output_shape[-1]) != (1 if len(self.labels) == 2 else len(self.labels)):
            raise TLCoreError(f"{source}: {len(self.labels)} labels do not fit the model's outputs.")

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return predict_probabilities(self.model, images, len(self.labels), batch_size=MAX_BATCH)

    def load(self, data: bytes) -> np.ndarray:
        return load_image(io.BytesIO(data), self.input_size, self.resize)


class Batcher:
    """Classifies the images of requests that arrive together in one call, in one worker thread."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn
        self.queue: asyncio.Queue | None = None
        self.loop = None
        self.worker = None  # the task answering the queue (kept so it is not garbage-collected)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tlcore-serve")
        self.batches: list[int] = []  # sizes of the calls made (the tests read them)

    async def submit(self, images: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if self.queue is None or self.loop is not loop:  # one queue and worker per event loop
            self.queue, self.loop = asyncio.Queue(), loop
            self.worker = loop.create_task(self._work(self.queue))
        future = loop.create_future()
        await self.queue.put((images, future))
        return await future

    async def _work(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await queue.get()]
            count = len(items[0][0])
            deadline = loop.time() + WAIT_SECONDS
            while count < MAX_BATCH:
                try:
                    item = await asyncio.wait_for(queue.get(), max(0.0, deadline - loop.time()))
                except asyncio.TimeoutError:
                    break
                items.append(item)
                count += len(item[0])
            try:
                probs = await loop.run_in_executor(self.pool, self.fn, np.concatenate([i for i, _ in items]))
                self.batches.append(len(probs))
                start = 0
                for images, future in items:
                    if not future.done():
                        future.set_result(probs[start:start + len(images)])
                    start += len(images)
            except Exception as exc:  # one failing call fails its requests, not the server
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)


def _error(status: int, text: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status, headers=headers)


def create_app(classifier: Classifier, token: str | None = None, max_image_mb: float = 20) -> FastAPI:
    """The FastAPI application serving `classifier`."""
    limit = int(float(max_image_mb) * 1024 * 1024)
    batcher = Batcher(classifier.probabilities)
    app = FastAPI(title=f"TL Studio model {classifier.name}",
                  description=f"Image classifier of {len(classifier.labels)} classes: {', '.join(classifier.labels)}.")
    app.state.batcher = batcher

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return _error(422, "; ".join(parts) or "malformed request")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if token and request.url.path != "/health":
            given = request.headers.get("authorization", "")
            if not (given.startswith("Bearer ") and secrets.compare_digest(given[7:].encode(), token.encode())):
                return _error(401, "missing or wrong token: send the header 'Authorization: Bearer TOKEN'",
                              {"WWW-Authenticate": "Bearer"})
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit * MAX_FILES + 1024 * 1024:
            return _error(413, f"request of {int(length):,} bytes is over the limit")
        return await call_next(request)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": classifier.name, "classes": len(classifier.labels),
                "input_size": classifier.input_size}

    @app.get("/labels")
    async def labels():
        return {"labels": classifier.labels}

    @app.post("/predict")
    async def predict(request: Request, top_k: int = Query(5, ge=1, description="labels per image")):
        """Classify images: multipart fields named `file`, or one image as the raw body."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        uploads: list[tuple[str, bytes]] = []
        if kind == "multipart/form-data":
            try:
                form = await request.form(max_files=MAX_FILES)
            except Exception as exc:
                return _error(422, f"malformed multipart body: {exc}")
            files = form.getlist("file")
            if not files:
                return _error(422, "no field named 'file': send each image as a multipart field named file")
            for item in files:
                if not isinstance(item, UploadFile):
                    return _error(422, "the field 'file' must be a file upload, not text")
                data = await item.read(limit + 1)
                if len(data) > limit:
                    return _error(413, f"{item.filename}: over the limit of {max_image_mb:g} MB per image")
                uploads.append((item.filename or f"file{len(uploads)}", data))
        elif kind.startswith("image/") or kind == "application/octet-stream":
            data = bytearray()
            async for chunk in request.stream():
                data += chunk
                if len(data) > limit:
                    return _error(413, f"image over the limit of {max_image_mb:g} MB")
            if not data:
                return _error(422, "empty body: send the image bytes")
            uploads.append(("body", bytes(data)))
        else:
            return _error(415, f"content type {kind or 'none'!r}: send multipart/form-data with fields named "
                               "file, or one image with an image/* content type")
        arrays = []
        for name, data in uploads:
            try:
                arrays.append(classifier.load(data))
            except ImageProblem as exc:
                return _error(415, f"{name}: {exc}")
        probs = await batcher.submit(np.stack(arrays))
        return {"predictions": [{"image": name, "top": top_labels(p, classifier.labels, top_k)}
                                for (name, _), p in zip(uploads, probs)]}

    return app


def _bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise TLCoreError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Choose another --port "
                          "(0 takes any free one).") from None
    sock.set_inheritable(True)
    return sock


def serve(source, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
          max_image_mb: float = 20, runs_dir=None, ready: Callable[[dict], None] | None = None) -> dict:
    """Serve until stopped (Ctrl+C or SIGTERM); `ready({url, port})` once requests are answered."""
    import uvicorn

    if not 0 <= int(port) <= 65535:
        raise OptionError("port", f"must be from 0 to 65535. Received: {port}")
    if not float(max_image_mb) > 0:
        raise OptionError("max_image_mb", f"must be above 0. Received: {max_image_mb}")
    if token is not None and not token.strip():
        raise OptionError("token", "must not be empty")
    classifier = Classifier(source, runs_dir)
    classifier.probabilities(np.zeros((1, classifier.input_size, classifier.input_size, 3), np.float32))  # trace
    sock = _bind(host, int(port))
    real_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(classifier, token, max_image_mb), log_level="warning",
                                           access_log=False))

    async def main():
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started and ready:
            shown = f"[{host}]" if ":" in host else host
            ready({"url": f"http://{shown}:{real_port}", "port": real_port})
        await task

    try:
        asyncio.run(main())
    finally:
        sock.close()
    return {"stopped": True, "port": real_port}
