"""`tlcore serve`: a run's model (or a bundle's) behind a small REST API (FastAPI + uvicorn).

Imported only by the `serve` command: FastAPI and uvicorn load nowhere else.

    POST /predict   images as multipart fields named `file` (repeatable), or one image as the raw
                    body with an image content type; query `top_k` (default 5) ->
                    {"predictions": [{"image", "top": [{"label", "probability"}]}]}
    GET  /health    {"status": "ok", ...}, never needs the token
    GET  /labels    {"labels": [...]}
    GET  /docs      OpenAPI docs

Errors are JSON {"error": "..."}: 401 without the bearer token (when one is set), 413 for a body,
an image or a request's pixels over the limits, 415 for a file that is not an image, 422 for a
malformed request, 429 after too many wrong tokens from one client.
Images that arrive together are classified together: a batcher (`batching.Batcher`, which the studio's
audience page shares) collects what is waiting (up to `MAX_BATCH` images, at most `WAIT_SECONDS` after
the first) into one call of the model.

What a client can cost the server is bounded (docs/SECURITY.md):
- the whole body (`max_body_mb`, default 64 MB) is counted as it streams, with a Content-Length or
  chunked: a declared length over it gets a 413 before a byte is read, a stream is cut off once
  over it; multipart files are spooled by Starlette (1 MB in memory each) and decoded from there;
- images are decoded in `DECODE_WORKERS` worker processes (`DecodePool`), never on the event
  loop and without holding its GIL, so /health answers while they decode, and a decode that runs
  out of memory ends a worker, not the server; before decoding, their headers' pixel counts are
  added up (in a thread): a request over `REQUEST_PIXELS` gets a 413, and the server decodes at
  most `SERVER_PIXELS` pixels at once (further requests wait for their turn);
- at most `MAX_CONNECTIONS` requests at once (uvicorn answers 503 beyond);
- after `FREE_FAILURES` wrong tokens a client (by address) gets 429s for a delay that doubles
  with every further wrong token, up to `MAX_LOCKOUT` seconds; a right token clears its count.
The token comes from `--token-file`, the `TLCORE_TOKEN` variable or `--token` (`resolve_token`).
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ..core.errors import OptionError, TLCoreError
from ..data.images import MAX_PIXELS, ImageProblem, image_size, load_image
from ..data.outputs import predict_probabilities
from .batching import Batcher
from .limits import (DECODE_WORKERS, REQUEST_PIXELS, SERVER_PIXELS, BodyTooLarge, DecodePool, PixelBudget, TokenGuard, resolve_token)
from .predict import load_model, top_labels

MAX_BATCH = 32
WAIT_SECONDS = 0.005
MAX_FILES = 64
MAX_BODY_MB = 64
MAX_CONNECTIONS = 64


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

    def load(self, source) -> np.ndarray:
        """One image (bytes or a seekable binary file) as the model's input; ImageProblem if it is none."""
        return load_image(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source,
                          self.input_size, self.resize)


def _error(status: int, text: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status, headers=headers)


class Guard:
    """ASGI middleware in front of every route: the token (with its lockout), then the body limit.

    A Content-Length over `max_body` is answered 413 before a byte of the body is read; a body
    without one (chunked) is counted as it streams and cut off with a 413 once over the limit.
    """

    def __init__(self, app, max_body: int, guard: TokenGuard | None = None):
        self.app, self.max_body, self.guard = app, int(max_body), guard

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        if self.guard and scope.get("path") != "/health":
            client = (scope.get("client") or ("unknown", 0))[0]
            refusal = self.guard.check(client, headers.get("authorization", ""))
            if refusal:
                return await _send_error(send, *refusal, close=True)
        length = headers.get("content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > self.max_body):
            shown = f"{int(length):,} bytes" if length.strip().isdigit() else f"Content-Length {length!r}"
            return await _send_error(send, 413, f"request of {shown} is over the limit of "
                                     f"{self.max_body / 2**20:g} MB (--max-body)", close=True)
        seen, started = 0, False

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge()
            return message

        async def tracked(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except BodyTooLarge:
            if not started:
                await _send_error(send, 413, f"request body over the limit of {self.max_body / 2**20:g} MB "
                                  "(--max-body)", close=True)


async def _send_error(send, status: int, text: str, headers: dict | None = None, close: bool = False) -> None:
    headers = dict(headers or {})
    if close:  # the unread body is not worth keeping the connection for
        headers["Connection"] = "close"
    response = _error(status, text, headers)
    await response({"type": "http"}, None, send)


def create_app(classifier: Classifier, token: str | None = None, max_image_mb: float = 20,
               max_body_mb: float = MAX_BODY_MB, request_pixels: int = REQUEST_PIXELS,
               server_pixels: int = SERVER_PIXELS, guard: TokenGuard | None = None,
               decoder: Executor | None = None) -> FastAPI:
    """The FastAPI application serving `classifier`; images are decoded by `decoder` (default: a
    `DecodePool` of worker processes)."""
    if int(request_pixels) > int(server_pixels):
        raise OptionError("request_pixels", f"must not be above server_pixels ({server_pixels}). "
                          f"Received: {request_pixels}")
    limit = int(float(max_image_mb) * 1024 * 1024)
    max_body = int(float(max_body_mb) * 1024 * 1024)
    batcher = Batcher(classifier.probabilities, MAX_BATCH, WAIT_SECONDS, name="tlcore-serve")
    budget = PixelBudget(server_pixels)
    pool = DecodePool(executor=decoder)
    headers = ThreadPoolExecutor(max_workers=DECODE_WORKERS, thread_name_prefix="tlcore-headers")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        pool.shutdown()
        batcher.close()
        headers.shutdown(wait=False)

    app = FastAPI(title=f"TL Studio model {classifier.name}", lifespan=lifespan,
                  description=f"Image classifier of {len(classifier.labels)} classes: {', '.join(classifier.labels)}.")
    app.state.batcher, app.state.budget, app.state.decoder = batcher, budget, pool
    app.add_middleware(Guard, max_body=max_body, guard=guard or (TokenGuard(token) if token else None))

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return _error(422, "; ".join(parts) or "malformed request")

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
        uploads: list[tuple[str, object]] = []  # (name, bytes or a spooled file)
        if kind == "multipart/form-data":
            try:
                form = await request.form(max_files=MAX_FILES)
            except BodyTooLarge:
                raise
            except Exception as exc:
                return _error(422, f"malformed multipart body: {exc}")
            files = form.getlist("file")
            if not files:
                return _error(422, "no field named 'file': send each image as a multipart field named file")
            for item in files:
                if not isinstance(item, UploadFile):
                    return _error(422, "the field 'file' must be a file upload, not text")
                size = item.size if item.size is not None else _file_size(item.file)
                if size > limit:
                    return _error(413, f"{item.filename}: over the limit of {max_image_mb:g} MB per image")
                item.file.seek(0)
                uploads.append((item.filename or f"file{len(uploads)}", item.file))
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
        loop = asyncio.get_running_loop()
        pixels = []
        for name, source in uploads:  # headers only, in a thread: a hostile header costs no event-loop time
            try:
                width, height = await loop.run_in_executor(headers, image_size, _stream(source))
            except ImageProblem as exc:
                return _error(415, f"{name}: {exc}")
            if width * height > MAX_PIXELS:
                return _error(415, f"{name}: image too large: {width}x{height} pixels is above the limit of "
                                   f"{MAX_PIXELS}")
            pixels.append(width * height)
        if sum(pixels) > request_pixels:
            return _error(413, f"the request's {len(pixels)} images have {sum(pixels):,} pixels together, over the "
                               f"limit of {int(request_pixels):,} per request: send fewer or smaller images")
        await budget.acquire(sum(pixels))
        try:
            results = await asyncio.gather(*[_load(pool, headers, classifier, source) for _, source in uploads])
        finally:
            await budget.release(sum(pixels))
        arrays = []
        for (name, _), result in zip(uploads, results):
            if isinstance(result, ImageProblem):
                return _error(415, f"{name}: {result}")
            arrays.append(result)
        probs = await batcher.submit(np.stack(arrays))
        return {"predictions": [{"image": name, "top": top_labels(p, classifier.labels, top_k)}
                                for (name, _), p in zip(uploads, probs)]}

    return app


def _stream(source):
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source


async def _load(pool: DecodePool, threads: Executor, classifier, source) -> np.ndarray | ImageProblem:
    """Decode in the pool; a problem is returned (not raised) so the request names the file."""
    if not isinstance(source, (bytes, bytearray)):  # a spooled upload, read in a thread
        source = await asyncio.get_running_loop().run_in_executor(threads, _read, source)
    try:
        return await pool.load(bytes(source), classifier.input_size, classifier.resize)
    except ImageProblem as exc:
        return exc


def _read(f) -> bytes:
    f.seek(0)
    return f.read()


def _file_size(f) -> int:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    return size


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
          max_image_mb: float = 20, runs_dir=None, ready: Callable[[dict], None] | None = None,
          token_file=None, max_body_mb: float = MAX_BODY_MB) -> dict:
    """Serve until stopped (Ctrl+C or SIGTERM); `ready({url, port})` once requests are answered.

    The token is `resolve_token(token, token_file)`: a file, `--token`, or the TLCORE_TOKEN variable.
    """
    import uvicorn

    if not 0 <= int(port) <= 65535:
        raise OptionError("port", f"must be from 0 to 65535. Received: {port}")
    if not float(max_image_mb) > 0:
        raise OptionError("max_image_mb", f"must be above 0. Received: {max_image_mb}")
    if not float(max_body_mb) > 0:
        raise OptionError("max_body_mb", f"must be above 0. Received: {max_body_mb}")
    token = resolve_token(token, token_file)
    classifier = Classifier(source, runs_dir)
    classifier.probabilities(np.zeros((1, classifier.input_size, classifier.input_size, 3), np.float32))  # trace
    sock = _bind(host, int(port))
    real_port = sock.getsockname()[1]
    app = create_app(classifier, token, max_image_mb, max_body_mb)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           limit_concurrency=MAX_CONNECTIONS))

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
