"""Issue 27, the engine side: what hostile files, names and clients could do, each reproduction a test.

Mutated files of every format Pillow writes (fixed seeds) only ever give an ImageProblem, and
scan and import list them as skipped; the exported training script quotes every name it embeds;
edits refuse symlinks in a managed dataset's path; bundles carry no absolute path of the machine;
`tlcore serve` decodes off the event loop, caps bodies as they stream and rate-limits bad tokens.
docs/SECURITY.md describes each case.
"""
from __future__ import annotations

import functools
import io
import json
import random
import re
import subprocess
import sys
import threading
import tokenize
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datagen import write_flat
from test_cli import tl

MUTATIONS = 120  # per seed file; about 4,000 files decoded in a few seconds
LARGE_SEED = 100_000  # ICNS writes every size up to 1024 px: fewer mutations of its 1.6 MB


@functools.lru_cache(maxsize=1)
def _seed_files() -> dict[str, bytes]:
    """One small file per format Pillow can write here (and EXIF-carrying ones where it can)."""
    Image.init()
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 20, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: exif_transpose has work to do
    exif[0x010F] = "maker"
    exif[0x8769] = {0x9003: "2026:01:01 00:00:00"}
    seeds = {}
    for fmt in sorted(Image.SAVE):
        for mode in ("RGB", "L", "1", "P", "RGBA", "I;16"):
            try:
                out = io.BytesIO()
                rgb.convert(mode).save(out, format=fmt)
            except Exception:  # this writer takes another mode (or needs a missing library)
                continue
            seeds[fmt] = out.getvalue()
            break
        for extra in ({"exif": exif}, {"exif": exif.tobytes()}):
            try:
                out = io.BytesIO()
                rgb.save(out, format=fmt, **extra)
            except Exception:
                continue
            if out.getvalue() != seeds.get(fmt):
                seeds[f"{fmt}+exif"] = out.getvalue()
                break
    return seeds


def _mutate(data: bytes, seed: int) -> bytes:
    rnd = random.Random(seed)
    d = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        op = rnd.random()
        if op < 0.6 and d:
            d[rnd.randrange(len(d))] = rnd.randrange(256)
        elif op < 0.8:
            d = d[:rnd.randrange(1, len(d) + 1)]
        else:
            at = rnd.randrange(len(d) + 1)
            d[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
    return bytes(d)


@pytest.fixture(scope="module")
def fuzzed():
    """[(format, seed, bytes)] of every mutation; the same on every run."""
    return [(fmt, s, _mutate(data, s)) for fmt, data in _seed_files().items()
            for s in range(MUTATIONS if len(data) < LARGE_SEED else MUTATIONS // 10)]


def test_every_format_pillow_writes_is_among_the_seeds():
    seeds = _seed_files()
    for fmt in ("JPEG", "PNG", "TIFF", "DDS", "WEBP", "GIF", "BMP", "JPEG+exif", "TIFF+exif"):
        assert fmt in seeds, sorted(seeds)
    assert len({k.split("+")[0] for k in seeds}) >= 20


def test_fuzzed_files_of_every_format_decode_or_give_an_image_problem(fuzzed, tmp_path):
    from tlcore.data.images import ImageProblem, check_image, display_image, load_image, thumbnail

    failures, problems = [], 0
    for fmt, seed, data in fuzzed:
        try:
            arr = load_image(io.BytesIO(data), 16)
            assert arr.shape == (16, 16, 3) and arr.dtype == np.uint8
        except ImageProblem as exc:
            problems += 1
            assert str(exc), (fmt, seed)
        except Exception as exc:  # noqa: BLE001 - what the test is for
            failures.append((fmt, seed, f"{type(exc).__name__}: {exc}"))
        assert display_image(io.BytesIO(data)) is None or display_image(io.BytesIO(data)).ndim == 3
    assert not failures, failures[:10]
    assert problems > len(fuzzed) // 10  # the mutations do break files
    # from a path too (JPEG draft, the scan's check, thumbnails)
    for fmt, seed, data in fuzzed[::7]:
        path = tmp_path / f"{fmt}-{seed}.img"
        path.write_bytes(data)
        reason = check_image(path)
        assert reason is None or isinstance(reason, str) and reason
        try:
            load_image(path, 16)
        except ImageProblem:
            pass
        assert thumbnail(path) is None or thumbnail(path).shape == (96, 96, 3)


def test_reproductions_plugin_errors_outside_the_old_exceptions_are_image_problems(fuzzed):
    """NotImplementedError (DDS), RuntimeError (AVIF) and the like, which images.py let through before
    (it caught OSError, ValueError, SyntaxError and EOFError only): now the decoder's error is the reason."""
    from tlcore.data.images import ImageProblem, load_image

    old = (OSError, ValueError, SyntaxError, EOFError, ImageProblem, Image.DecompressionBombError)
    kinds = {}
    for fmt, seed, data in fuzzed:
        try:
            load_image(io.BytesIO(data), 16)
        except ImageProblem as exc:
            cause = exc.__context__  # what the decoder raised
            if cause is not None and not isinstance(cause, old):
                kinds.setdefault(type(cause).__name__, (fmt, seed))
                assert type(cause).__name__ in str(exc) and str(exc).startswith("cannot "), str(exc)
    assert "NotImplementedError" in kinds, kinds


def test_a_typeerror_in_a_plugin_is_an_image_problem(monkeypatch, tmp_path):
    """The TIFF reproduction: a plug-in raising TypeError while decoding (here forced, since which
    mutation triggers it depends on Pillow's version)."""
    import PIL.ImageFile

    from tlcore.data.images import ImageProblem, check_image, load_image

    path = tmp_path / "a.tif"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)

    def broken(self, *args, **kwargs):
        raise TypeError("'NoneType' object is not subscriptable")

    monkeypatch.setattr(PIL.ImageFile.ImageFile, "load", broken)
    with pytest.raises(ImageProblem, match="TypeError"):
        load_image(path, 8)
    assert "TypeError" in check_image(path)


def _bad_dataset(root: Path, fuzzed) -> tuple[Path, set[str]]:
    """Two good classes plus one in three of the fuzzed files that do not decode, named as images."""
    from tlcore.data.images import check_image

    write_flat(root, n=6)
    bad = set()
    for i, (fmt, seed, data) in enumerate(fuzzed):
        if i % 3:
            continue
        ext = {"JPEG": ".jpg", "TIFF": ".tif", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp"}.get(
            fmt.split("+")[0], ".png")
        path = root / ("red" if i % 2 else "green") / f"fuzz_{fmt.replace('+', '_')}_{seed}{ext}"
        path.write_bytes(data)
        if check_image(path):
            bad.add(path.relative_to(root).as_posix())
        else:
            path.unlink()
    return root, bad


def test_scan_and_import_finish_on_fuzzed_files_and_list_them_as_skipped(fuzzed, tmp_path):
    data, bad = _bad_dataset(tmp_path / "data", fuzzed)
    assert len(bad) > 100
    proc, res = tl("scan", data, "--json", home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = {p["file"] for p in res["problems"]}
    assert bad <= listed and res["counts"]["train"]["red"] + res["counts"]["train"].get("green", 0) > 0
    archive = tmp_path / "fuzz.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(data.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(data).as_posix())
    proc, res = tl("import", archive, "--name", "fuzz", "--json", home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert bad <= {p["file"] for p in res["problems"]} and set(res["classes"]) == {"red", "green"}


# --- the exported training script -----------------------------------------------------------

HOSTILE = 'a""";__import__("os").system("touch pwned");"""'
HOSTILE_NAMES = [HOSTILE, "b'''; import os; os.system('touch pwned') #", "#SOURCE#", "#CONSTANTS#",
                 "c\\\nd", "e\u2028f", "{INPUT_SIZE}", "%(prog)s %s", "<img src=x onerror=alert(1)>"]


def _hostile_values(tmp_path: Path) -> dict:
    return {
        "RUN_ID": HOSTILE, "INPUT_SIZE": 32, "PREPROCESSING": "[-1, 1]", "CUT_LAYER": HOSTILE,
        "CLASSES": HOSTILE_NAMES, "POOLING": "avg", "DENSE": [], "DROPOUT": 0.2, "HEAD_EPOCHS": 1,
        "FINE_TUNE_EPOCHS": 0, "LR": 0.001, "FINE_TUNE_LR": 0.0001, "OPTIMIZER": "adam", "WEIGHT_DECAY": None,
        "SCHEDULE": "constant", "WARMUP_EPOCHS": 0, "LABEL_SMOOTHING": 0.0, "MIXUP": 0.0, "CUTMIX": 0.0,
        "BATCH_SIZE": 8, "AUGMENT": {"flip": HOSTILE}, "CLASS_WEIGHTS": "none", "EARLY_STOPPING": 0, "SEED": 1,
        "VAL_SPLIT": 0.2, "TEST_SPLIT": 0.0, "SPLIT_METHOD": "stratified", "RESIZE": "stretch",
        "DETERMINISTIC": "auto", "TRAIN_IN_STAGE_2": [HOSTILE], "FROZEN_WEIGHTS": ["#RECIPE#"],
        "IMAGE_EXTENSIONS": [".png"], "RUN_VAL_ACCURACY": HOSTILE, "RUN_TEST_ACCURACY": None,
        "BACKBONE_FILE": str(tmp_path / f"{HOSTILE}.keras"), "BACKBONE_FILE_SHA256": "0" * 64,
    }


def test_the_script_quotes_every_value_it_embeds(tmp_path):
    """Hostile names (a docstring breaker, a placeholder, a line break) come back as the same values."""
    import ast

    from tlcore.ship.codegen import render

    values = _hostile_values(tmp_path)
    for kind in ("file", "catalog"):
        if kind == "catalog":
            values = {k: v for k, v in values.items() if not k.startswith("BACKBONE_FILE")}
            values.update(BACKBONE=HOSTILE, WEIGHTS=HOSTILE)
        text = render(values)
        tree = ast.parse(text)
        assert ast.get_docstring(tree).startswith("Train the model of a TL Studio run")
        assigned = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
                    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id in values}
        assert assigned == values
        assert HOSTILE not in ast.get_docstring(tree) and "touch pwned" not in ast.get_docstring(tree)
        # the hostile text is only ever inside string literals, never code, a comment or the docstring
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        holding = [t for t in tokens if "pwned" in t.string]
        assert holding and all(t.type == tokenize.STRING for t in holding)
        assert all(t.string != tree.body[0].value.value for t in holding)


@pytest.mark.slow  # imports TensorFlow in a child: seconds
def test_the_script_with_hostile_names_runs_help_without_running_them(tmp_path):
    from tlcore.ship.codegen import render

    out = tmp_path / "train_run.py"
    out.write_text(render(_hostile_values(tmp_path)), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(out), "--help"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--backbone-file" in proc.stdout and "Train the model of a TL Studio run" in proc.stdout
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow
def test_reproduction_a_backbone_file_named_to_break_the_docstring(tmp_path):
    """Issue 27's reproduction: train with --backbone-file on a model file whose name closes the
    script's docstring and calls os.system, export --format code, run the script's --help: nothing runs."""
    import keras

    image = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(keras.layers.Rescaling(1 / 127.5, offset=-1.0)(image))
    x = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model_file = tmp_path / 'a""";__import__("os").system("id>pwned");""".keras'
    keras.Model(image, x).save(model_file)
    data = write_flat(tmp_path / "data", n=8)
    home = tmp_path / "home"
    proc, res = tl("train", data, "--backbone-file", model_file, "--cut", "conv", "--head-epochs", "1",
                   "--fine-tune-epochs", "0", "--batch-size", "8", "--augment", "none", "--json", home=home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "train_run.py"
    proc, _ = tl("export", res["run_dir"], "--format", "code", "--out", out, "--json", home=home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"BACKBONE_FILE = {str(model_file)!r}" in out.read_text()
    proc = subprocess.run([sys.executable, str(out), "--help"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0 and "--backbone-file" in proc.stdout, proc.stderr[-2000:]
    assert not (tmp_path / "pwned").exists()


# --- tlcore serve -----------------------------------------------------------------------------

class FakeClassifier:
    """What create_app needs of a Classifier, without a model (the decoding is the real one)."""

    def __init__(self):
        self.name, self.labels, self.input_size, self.resize = "fake", ["cat", "dog"], 8, "stretch"

    def probabilities(self, images):
        p = images.reshape(len(images), -1).mean(axis=1, keepdims=True) / 255.0
        return np.concatenate([p, 1 - p], axis=1)


class GatedPool(ThreadPoolExecutor):
    """A decoder whose jobs wait for `gate`: a decode that takes as long as the test wants."""

    def __init__(self):
        super().__init__(max_workers=2)
        self.gate, self.decoding = threading.Event(), threading.Event()

    def submit(self, fn, /, *args, **kwargs):
        def held(*a, **k):
            self.decoding.set()
            assert self.gate.wait(60)
            return fn(*a, **k)

        return super().submit(held, *args, **kwargs)


class Served:
    """create_app(...) behind a real uvicorn on a free loopback port, in a thread."""

    def __init__(self, app):
        import uvicorn

        started = threading.Event()

        class Server(uvicorn.Server):
            async def startup(self, sockets=None):
                await super().startup(sockets)
                started.set()

        self.server = Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                            access_log=False, limit_concurrency=16))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert started.wait(60)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def served():
    running = []

    def start(classifier=None, **options):
        from tlcore.ship.serve import create_app

        running.append(Served(create_app(classifier or FakeClassifier(), **options)))
        return running[-1]

    yield start
    for s in running:
        s.close()


def _png(size=(8, 8), mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 200).save(out, format="PNG")
    return out.getvalue()


def _raw(port: int, head: bytes, body_chunks=(), timeout=30) -> tuple[int, dict, int]:
    """Send a request by hand; (status, JSON body, bytes of body sent before the answer)."""
    import socket

    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sent = 0
    try:
        sock.sendall(head)
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            sock.setblocking(False)
            try:
                peek = sock.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                peek = None
            finally:
                sock.setblocking(True)
            if peek is not None:  # the server answered (or closed): stop sending
                break
        data = b""
        while True:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            data += part
    finally:
        sock.close()
    head_text, _, body = data.partition(b"\r\n\r\n")
    status = int(head_text.split()[1])
    if b"chunked" in head_text.lower():
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return status, json.loads(body), sent


def test_health_answers_while_an_image_is_decoding(served):
    """Decoding happens in the decoder pool, off the event loop: /health answers while a decode is in
    progress (the test holds the decode until /health has answered)."""
    import httpx

    pool = GatedPool()
    s = served(decoder=pool)
    answers = []
    client = threading.Thread(target=lambda: answers.append(httpx.post(
        f"{s.url}/predict", files=[("file", ("a.png", _png(), "image/png"))], timeout=60)))
    client.start()
    try:
        assert pool.decoding.wait(60)
        r = httpx.get(f"{s.url}/health", timeout=60)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert not answers  # the prediction is still decoding
    finally:
        pool.gate.set()
        client.join(60)
    assert answers[0].status_code == 200 and answers[0].json()["predictions"][0]["image"] == "a.png"


def test_the_default_decoder_is_worker_processes_that_answer_like_load_image(served):
    import httpx

    from tlcore.data.images import load_image

    s = served()
    data = _png((40, 30))
    r = httpx.post(f"{s.url}/predict", files=[("file", ("a.png", data, "image/png"))], timeout=120)
    assert r.status_code == 200
    want = FakeClassifier().probabilities(load_image(io.BytesIO(data), 8)[None])[0]
    top = {t["label"]: t["probability"] for t in r.json()["predictions"][0]["top"]}
    assert abs(top["cat"] - want[0]) < 1e-6
    r = httpx.post(f"{s.url}/predict", headers={"Content-Type": "image/png"}, content=data, timeout=120)
    assert r.status_code == 200 and r.json()["predictions"][0]["image"] == "body"


def test_a_body_declared_over_the_limit_gets_413_before_it_is_sent(served):
    """The 80 MB reproduction: the answer comes on the headers alone, not one body byte read."""
    s = served()
    for kind in ("application/octet-stream", "multipart/form-data; boundary=x", "image/png"):
        head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {80 * 2**20}\r\n\r\n").encode()
        status, body, sent = _raw(s.port, head)
        assert status == 413 and "64 MB" in body["error"] and "--max-body" in body["error"] and sent == 0


def test_a_chunked_body_over_the_limit_is_cut_off_while_it_streams(served):
    s = served(max_body_mb=1)
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
    piece = 64 * 1024
    chunks = (f"{piece:x}\r\n".encode() + b"\0" * piece + b"\r\n" for _ in range(200))  # 12.5 MB offered
    status, body, sent = _raw(s.port, head, chunks)
    assert status == 413 and "1 MB" in body["error"]
    assert sent < 200 * piece  # refused before the whole body was sent
    # multipart without a length too
    s2 = served(max_body_mb=1, max_image_mb=5)
    head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=bnd\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    start = b'--bnd\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    parts = [f"{len(start):x}\r\n".encode() + start + b"\r\n"]
    parts += [f"{piece:x}\r\n".encode() + b"\1" * piece + b"\r\n" for _ in range(200)]
    status, body, sent = _raw(s2.port, head, iter(parts))
    assert status == 413 and "limit" in body["error"] and sent < 200 * piece


def test_a_request_over_its_pixel_budget_gets_413_before_decoding(served):
    import httpx

    s = served(request_pixels=1000, server_pixels=2000)
    one = [("file", ("a.png", _png((30, 30)), "image/png"))]
    assert httpx.post(f"{s.url}/predict", files=one, timeout=60).status_code == 200
    r = httpx.post(f"{s.url}/predict", files=one + [("file", ("b.png", _png((30, 30)), "image/png"))], timeout=60)
    assert r.status_code == 413 and "1,800 pixels" in r.json()["error"] and "1,000" in r.json()["error"]


def test_the_server_decodes_at_most_its_pixel_budget_at_once():
    import asyncio

    from tlcore.ship.serve import PixelBudget

    async def main():
        budget, order = PixelBudget(100), []
        await budget.acquire(70)
        waiting = asyncio.create_task(budget.acquire(50))
        await asyncio.sleep(0)
        order.append(("waiting", waiting.done(), budget.used))
        await budget.release(70)
        await waiting
        order.append(("after release", budget.used))
        with pytest.raises(ValueError, match="n=101"):
            await budget.acquire(101)
        return order

    assert asyncio.run(main()) == [("waiting", False, 70), ("after release", 50)]


def test_fuzzed_and_hostile_images_get_415_json_never_500(served, fuzzed):
    import httpx

    from tlcore.data.images import ImageProblem, load_image

    s = served()
    bad = []
    for fmt, seed, data in fuzzed[::11]:
        try:
            load_image(io.BytesIO(data), 8)
        except ImageProblem:
            bad.append((fmt, seed, data))
    assert len(bad) > 20
    with httpx.Client(base_url=s.url, timeout=60) as c:
        for fmt, seed, data in bad:
            r = c.post("/predict", files=[("file", (f"{fmt}-{seed}", data, "image/png"))])
            assert r.status_code == 415 and set(r.json()) == {"error"}, (fmt, seed, r.text)
            assert r.json()["error"].startswith(f"{fmt}-{seed}: ")


def test_wrong_tokens_lock_a_client_out_for_a_growing_delay():
    from tlcore.ship.serve import TokenGuard

    now = [1000.0]
    guard = TokenGuard("s3cret", free=3, max_lockout=8, clock=lambda: now[0])
    right, wrong = "Bearer s3cret", "Bearer guess"
    assert guard.check("a", right) is None
    for _ in range(3):
        assert guard.check("a", wrong)[0] == 401
    assert guard.check("a", wrong)[0] == 401  # the fourth wrong one starts a lockout of 1 s
    status, text, headers = guard.check("a", right)  # even the right token waits: no guessing during it
    assert status == 429 and headers["Retry-After"] == "1" and "try again" in text
    assert guard.check("b", right) is None  # another client is not held up
    delays = []
    for _ in range(5):
        now[0] += 100
        assert guard.check("a", wrong)[0] == 401
        delays.append(guard.check("a", wrong)[2]["Retry-After"])  # locked: a 429, not counted
    assert delays == ["2", "4", "8", "8", "8"]  # doubling, up to max_lockout
    now[0] += 100
    assert guard.check("a", right) is None  # the right token clears the count
    assert guard.check("a", wrong)[0] == 401 and guard.check("a", wrong)[0] == 401


def test_the_app_answers_429_after_repeated_wrong_tokens(served):
    import httpx

    s = served(token="s3cret")
    with httpx.Client(base_url=s.url, timeout=60) as c:
        codes = [c.get("/labels", headers={"Authorization": "Bearer nope"}).status_code for _ in range(8)]
        assert codes[:5] == [401] * 5 and 429 in codes
        r = c.get("/labels", headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and set(r.json()) == {"error"}
        assert c.get("/health").status_code == 200


def test_the_token_comes_from_a_file_or_the_environment(tmp_path):
    from tlcore.core.errors import OptionError
    from tlcore.ship.serve import resolve_token

    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    assert resolve_token(token_file=secret, environ={}) == "s3cret"
    assert resolve_token(environ={"TLCORE_TOKEN": "from-env"}) == "from-env"
    assert resolve_token(environ={}) is None
    assert resolve_token("given", environ={"TLCORE_TOKEN": "from-env"}) == "given"
    with pytest.raises(OptionError, match="both"):
        resolve_token("given", secret, environ={})
    with pytest.raises(OptionError, match="cannot be read"):
        resolve_token(token_file=tmp_path / "missing", environ={})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(OptionError, match="empty"):
        resolve_token(token_file=tmp_path / "empty", environ={})
    secret.chmod(0o644)
    with pytest.warns(UserWarning, match="chmod 600"):
        resolve_token(token_file=secret, environ={})


def test_serve_on_the_command_line_takes_a_token_file_and_refuses_two_tokens(tmp_path):
    proc, res = tl("serve", tmp_path / "nowhere", "--token", "a", "--token-file", tmp_path / "t", "--json",
                   home=tmp_path / "home")
    assert proc.returncode == 1 and "--token-file" in res["error"] and "both" in res["error"]
    proc, _ = tl("serve", "--help", home=tmp_path / "home")
    assert "--token-file" in proc.stdout and "TLCORE_TOKEN" in proc.stdout and "--max-body" in proc.stdout
    docker = (Path(__file__).parent.parent / "Dockerfile").read_text()
    assert "--token" not in docker.split("CMD", 1)[1] and "TLCORE_TOKEN" in docker


# --- edits and trash never follow a symbolic link ------------------------------------------------

def _linked_setup(tlhome: Path):
    root = write_flat(tlhome / "datasets" / "mine", n=3)
    outside = tlhome / "outside"
    write_flat(outside, classes=("red",), n=2)
    return root, outside, sorted(p.name for p in outside.rglob("*"))


def test_reproduction_a_tlcore_link_makes_exclude_and_empty_trash_refuse(tlhome):
    """Issue 27: a `.tlcore` symlink inside a managed dataset made exclude move files out of it and
    empty-trash delete outside it. Now both refuse, and nothing outside changes."""
    from tlcore.core.errors import TLCoreError
    from tlcore.data.edits import DatasetEditor

    root, outside, before = _linked_setup(tlhome)
    (outside / "trash").mkdir()
    (outside / "trash" / "keep.txt").write_text("mine")
    (root / ".tlcore").symlink_to(outside, target_is_directory=True)
    ed = DatasetEditor(root)
    image = root / "red" / "red_0.png"
    with pytest.raises(TLCoreError, match="symbolic link"):
        ed.exclude([image])
    assert image.is_file()
    with pytest.raises(TLCoreError, match="symbolic link"):
        ed.empty_trash()
    assert (outside / "trash" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in outside.rglob("*")) == sorted(before + ["trash", "keep.txt"])
    assert ed.history() == [] and ed.trash_files() == []  # what is behind a link is not read either


def test_links_as_class_folders_files_or_the_dataset_itself_are_refused(tlhome):
    from tlcore.core.errors import TLCoreError
    from tlcore.data.edits import DatasetEditor

    root, outside, before = _linked_setup(tlhome)
    (root / "blue").symlink_to(outside / "red", target_is_directory=True)  # a class folder leading out
    ed = DatasetEditor(root)
    with pytest.raises(TLCoreError, match="symbolic link"):
        ed.move([root / "red" / "red_0.png"], to_class="blue")  # into it
    with pytest.raises(TLCoreError):
        ed.exclude([root / "blue" / "red_0.png"])  # out of it
    (root / "green" / "link.png").symlink_to(outside / "red" / "red_1.png")
    with pytest.raises(TLCoreError, match="symbolic link"):
        ed.exclude([root / "green" / "link.png"])
    assert sorted(p.name for p in outside.rglob("*")) == before and (root / "red" / "red_0.png").is_file()
    (tlhome / "datasets" / "alias").symlink_to(root, target_is_directory=True)
    with pytest.raises(TLCoreError, match="symbolic link"):
        DatasetEditor(tlhome / "datasets" / "alias")


def test_a_tampered_log_cannot_make_undo_move_files_outside(tlhome):
    from tlcore.core.errors import TLCoreError
    from tlcore.data.edits import DatasetEditor

    root, outside, before = _linked_setup(tlhome)
    ed = DatasetEditor(root)
    ed.move([root / "red" / "red_0.png"], to_class="green")
    entry = json.loads(ed.log_path.read_text())
    entry["moves"] = [{"from": "../../outside/red/red_0.png", "to": "green/red_0.png"}]
    ed.log_path.write_text(json.dumps(entry) + "\n")
    with pytest.raises(TLCoreError, match="outside the dataset"):
        ed.undo()
    assert sorted(p.name for p in outside.rglob("*")) == before and (root / "green" / "red_0.png").is_file()


def test_webcam_snaps_refuse_a_linked_class_folder(tlhome):
    from tlcore.core.errors import TLCoreError
    from tlcore.data.datasets import delete_class, save_snap, webcam_dataset

    root = webcam_dataset("cam")
    root.mkdir(parents=True)
    outside = tlhome / "outside"
    outside.mkdir()
    (root / "cat").symlink_to(outside, target_is_directory=True)
    for action in (lambda: save_snap(root, "cat", _png()), lambda: delete_class(root, "cat")):
        with pytest.raises(TLCoreError, match="symbolic link"):
            action()
    assert outside.is_dir() and not any(outside.iterdir())


# --- bundles: no server paths, escaped names -----------------------------------------------------

EVIL_CLASS = '![t](https://example.invalid/x.png)'
EVIL_HTML = '<img src=x onerror="alert(1)">'


def _fake_run_model(tmp_path: Path):
    from types import SimpleNamespace

    data = tmp_path / "srv" / "datasets" / "my-pets"
    config = {"options": {"name": "**bold** ![i](https://example.invalid/i.png)", "data": str(data),
                          "backbone_file": str(tmp_path / "srv" / "models" / "base.keras"), "cut": "conv3_block4_out",
                          "weights": str(tmp_path / "srv" / "w.weights.h5"), "seed": 1, "lr": 0.01,
                          "freeze": ["re:bn_[a-z]*"], "head_epochs": 1, "fine_tune_epochs": 0},
              "resolved": {"layout": "folders", "preprocessing": "[-1, 1]",
                           "backbone_source": {"kind": "keras", "weights": str(tmp_path / "srv" / "w.weights.h5")}},
              "dataset_counts": {"train": {EVIL_CLASS: 3, EVIL_HTML: 4, "a|b": 1}},
              "versions": {"tlcore": "1", "path": "x"}}
    run = SimpleNamespace(config=lambda: config, raw_status=lambda: {"state": "completed"}, metrics=lambda: [],
                          run_id="20261204-run", evaluation=lambda: None)
    return SimpleNamespace(run=run, labels=[EVIL_CLASS, EVIL_HTML, "a|b"], input_size=32, resize="stretch"), data


def test_the_model_card_escapes_names_and_holds_no_path(tmp_path):
    from tlcore.ship.bundle import model_card

    rm, data = _fake_run_model(tmp_path)
    evaluation = {"split": "test", "accuracy": 0.5, "count": 2, "per_class": {
        c: {"precision": 1.0, "recall": 0.5, "f1": 0.6, "support": 1} for c in rm.labels}}
    card = model_card(rm, evaluation, {})
    assert str(tmp_path) not in card and "my-pets" in card and "base.keras" in card
    assert "<img" not in card and "&lt;img" in card  # no raw HTML
    assert "![" not in card and "](" not in card.replace("\\](", "")  # no image or link syntax
    assert "**bold**" not in card and "\\*\\*bold\\*\\*" in card
    # every table row keeps its columns: a class's `|` is escaped
    rows = [l for l in card.splitlines() if l.startswith("| ") and "precision" not in l and "train" not in l]
    assert rows and all(len(re.findall(r"(?<!\\)\|", l)) in (5, 6) for l in rows), rows
    assert "conv3_block4_out" in card  # layer names stay readable


def test_a_bundle_evaluation_names_images_relative_to_the_dataset(tmp_path):
    from tlcore.ship.bundle import portable_evaluation

    root = tmp_path / "srv" / "datasets" / "pets"
    evaluation = {"accuracy": 1.0, "predictions": [{"file": str(root / "test" / "cat" / "1.png"), "true": "cat"}],
                  "misclassified": [{"file": str(tmp_path / "elsewhere" / "2.png")}],
                  "skipped": [{"file": str(root / "bad.png"), "reason": "truncated image file"}],
                  "note": "not a path", "labels": ["cat", "/dog"]}
    out = portable_evaluation(evaluation, root)
    assert out["predictions"][0] == {"file": "test/cat/1.png", "true": "cat"}
    assert out["misclassified"][0]["file"] == "2.png" and out["skipped"][0]["file"] == "bad.png"
    assert out["note"] == "not a path" and str(tmp_path) not in json.dumps(out)
    assert evaluation["predictions"][0]["file"].startswith(str(root))  # the run's own copy is untouched


# Issue 27 (a bundle held the machine's absolute paths: evaluation.json every scored image's, MODEL_CARD.md
# the data folder's): every file of a bundle, binaries included, is searched for this machine's paths in
# test_ship.py (test_bundle_onnx_and_int8_tflite_agree_with_predict_without_tlcore), on the bundle it makes.


def test_a_16_bit_image_is_converted_without_a_float_copy_of_the_whole_image():
    """The 1.3-2.0 GB reproduction, scaled down: what Python and numpy allocate to decode a 16-bit image
    stays a few bytes per pixel (its bytes, the 8-bit result), not the 24 of float64 copies as before
    (tracemalloc sees numpy's allocations, not Pillow's own)."""
    import tracemalloc

    from tlcore.data.images import load_image

    side = 3000
    arr = np.zeros((side, side), np.uint16)
    arr[::7] = 50000
    out = io.BytesIO()
    Image.fromarray(arr).save(out, format="PNG")
    data = out.getvalue()
    del arr
    tracemalloc.start()
    try:
        got = load_image(io.BytesIO(data), 16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.shape == (16, 16, 3) and got.max() > 0
    assert peak < 6 * side * side, f"{peak / side / side:.1f} bytes per pixel"
