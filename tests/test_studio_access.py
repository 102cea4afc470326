"""Who may use the studio (studio/access.py) and how names are shown (studio/text.md).

Sign-in throttle, idle expiry and Sign out through AppTest with a clock the test moves; the upload
gate's decisions as plain functions; hostile class, run and file names rendered by a CommonMark
parser and through the pages. The served gate (a PUT without signing in) is in
tests/test_studio_access_browser.py.
"""
from __future__ import annotations

import html as html_lib
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from studio import access, text
from apphelp import hostile_run, plain

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ["![t](http://x.invalid/y)", "**bold**", "<img src=x onerror=alert(1)>", "_it_", ":red[red]",
           ":material/home:", "$x^2$", "&lt;b&gt;", "[link](javascript:alert(1))", "# heading", "- item",
           "1. item", "`code`", "a\\*b", "http://x.invalid/bare", "www.x.invalid", "me@x.invalid", "| a | b |",
           "~~gone~~", "line\nbreak"]
PARSER = MarkdownIt("commonmark").enable("strikethrough").enable("table")


class Clock:
    """A monotonic clock the test moves on (studio.access reads `access._now`)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(access, "_now", c)
    access.THROTTLE.clear()
    access.SESSIONS.clear()
    yield c
    access.THROTTLE.clear()
    access.SESSIONS.clear()


# --- text.md: one helper for names in Markdown ---------------------------------------

@pytest.mark.parametrize("name", HOSTILE)
def test_an_escaped_name_renders_as_exactly_its_text(name):
    html = PARSER.render(f"Class: {text.md(name)}").strip()
    assert html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1, html
    inner = html[3:-4]
    for tag in ("<img", "<a ", "<strong", "<em", "<code", "<h1", "<li", "<del", "<table"):
        assert tag not in inner, (name, html)
    shown = PARSER.renderInline(text.md(name))
    assert html_lib.unescape(shown).replace(text._WORD_JOINER, "") == " ".join(name.split())


def test_names_made_of_letters_digits_dots_and_dashes_are_left_as_they_are():
    for name in ("20261204-101500-mobilenetv2-1a2b", "red_0.png", "cats", "my-data.v2"):
        assert text.md(name) == name


def test_an_escaped_message_keeps_its_lines():
    assert text.md("a*\nb_", lines=True) == "a\\*  \nb\\_"


def test_a_code_span_shows_a_path_with_backticks():
    for value in ("/data/a`b", "`x", "plain"):
        inner = PARSER.renderInline(text.code(value))
        assert inner.startswith("<code>")
        assert html_lib.unescape(inner[len("<code>"):-len("</code>")]) == value


# --- the throttle and the signed-in sessions -------------------------------------------

def test_failed_sign_ins_make_the_next_try_wait_longer_each_time(clock):
    keys = ["session:a", "client:1.2.3.4"]
    waits = [access.THROTTLE.failed(keys) for _ in range(4)]
    assert waits == sorted(waits) and waits[0] > 0 and waits[-1] > waits[0]
    assert access.THROTTLE.wait(keys) == waits[-1]
    clock.t += waits[-1] / 2
    assert 0 < access.THROTTLE.wait(keys) < waits[-1]
    clock.t += waits[-1]
    assert access.THROTTLE.wait(keys) == 0
    # the client's failures hold for a new session of the same client, and another client is free
    assert access.THROTTLE.failed(["session:b", "client:1.2.3.4"]) > waits[-1]
    assert access.THROTTLE.wait(["session:c", "client:1.2.3.4"]) > 0
    assert access.THROTTLE.wait(["session:c", "client:5.6.7.8"]) == 0
    access.THROTTLE.succeeded(keys + ["session:b"])
    assert access.THROTTLE.wait(keys) == 0


def test_the_delay_is_capped():
    t = access.Throttle()
    assert t.delay(0) == 0 and t.delay(1) == access.FIRST_DELAY
    assert t.delay(100) == access.MAX_DELAY


def test_a_session_idle_too_long_is_signed_out(clock, monkeypatch):
    monkeypatch.setenv("TLSTUDIO_IDLE_MINUTES", "2")
    access.SESSIONS.sign_in("s1")
    clock.t += 100
    assert access.SESSIONS.touch("s1")  # activity restarts the idle time
    clock.t += 100
    assert access.SESSIONS.active("s1")
    clock.t += 21
    assert not access.SESSIONS.active("s1") and not access.SESSIONS.touch("s1")
    monkeypatch.setenv("TLSTUDIO_IDLE_MINUTES", "0")  # never
    access.SESSIONS.sign_in("s2")
    clock.t += 10 ** 7
    assert access.SESSIONS.active("s2")
    monkeypatch.setenv("TLSTUDIO_IDLE_MINUTES", "soon")  # not a number: the default
    assert access.idle_seconds() == access.DEFAULT_IDLE_MINUTES * 60


# --- the upload gate's decision -------------------------------------------------------

def test_uploads_before_sign_in_are_refused_and_a_session_is_capped(clock, monkeypatch):
    monkeypatch.setenv("TLSTUDIO_PASSWORD", "s3cret")
    monkeypatch.setattr(access, "upload_limit_bytes", lambda: 1000)
    held = {"s1": 0}
    monkeypatch.setattr(access, "session_upload_bytes", lambda sid: held.get(sid, 0))
    assert access.upload_refusal("s1", 10)[0] == 403
    access.SESSIONS.sign_in("s1")
    assert access.upload_refusal("s1", 10) is None
    held["s1"] = 900
    status, reason = access.upload_refusal("s1", 200)
    assert status == 413 and "server.maxUploadSize" in reason
    assert access.upload_refusal("s1", 100) is None
    access.SESSIONS.sign_out("s1")
    assert access.upload_refusal("s1", 10)[0] == 403
    monkeypatch.delenv("TLSTUDIO_PASSWORD")  # no password: no sign-in, the cap still holds
    assert access.upload_refusal("s9", 10) is None and access.upload_refusal("s1", 200)[0] == 413


def test_the_gate_answers_an_upload_put_before_reading_its_body(clock, monkeypatch):
    import asyncio

    monkeypatch.setenv("TLSTUDIO_PASSWORD", "s3cret")
    calls, sent = [], []

    async def inner(scope, receive, send):
        calls.append(scope["path"])

    async def receive():
        raise AssertionError("the body was read")

    async def send(message):
        sent.append(message)

    monkeypatch.setattr(access.UploadGate, "installed", False)
    gate = access.UploadGate(inner)
    assert access.UploadGate.installed
    scope = {"type": "http", "method": "PUT", "path": "/base/_stcore/upload_file/s1/f1",
             "headers": [(b"content-length", b"5000000")]}
    asyncio.run(gate(scope, receive, send))
    assert sent[0]["status"] == 403 and b"Sign in" in sent[1]["body"] and not calls
    asyncio.run(gate({**scope, "method": "GET", "path": "/_stcore/health"}, receive, send))
    assert calls == ["/_stcore/health"]


def test_a_small_refused_body_is_read_and_dropped_so_the_client_sees_the_answer(clock, monkeypatch):
    """A client still sending when the connection closes may lose the answer: a refused body up to
    DRAIN_LIMIT is read first and the connection kept; a body that turns out longer is cut off."""
    import asyncio

    monkeypatch.setenv("TLSTUDIO_PASSWORD", "s3cret")
    monkeypatch.setattr(access, "DRAIN_LIMIT", 100)

    def run(length, chunks):
        sent, queue = [], list(chunks)

        async def inner(scope, receive, send):
            raise AssertionError("Streamlit was given the upload")

        async def receive():
            body, more = queue.pop(0)
            return {"type": "http.request", "body": body, "more_body": more}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "PUT", "path": "/_stcore/upload_file/s1/f1",
                 "headers": [(b"content-length", str(length).encode())]}
        asyncio.run(access.UploadGate(inner)(scope, receive, send))
        return sent, queue

    sent, left = run(80, [(b"x" * 40, True), (b"x" * 40, False)])
    headers = dict(sent[0]["headers"])
    assert sent[0]["status"] == 403 and not left and b"connection" not in headers
    # Content-Length understated: reading stops past the limit and the connection is closed.
    sent, left = run(80, [(b"x" * 90, True), (b"x" * 90, True), (b"x", False)])
    assert sent[0]["status"] == 403 and dict(sent[0]["headers"])[b"connection"] == b"close" and len(left) == 1


def test_served_without_the_gate_uploads_before_sign_in_are_dropped(clock, monkeypatch):
    """`streamlit run app.py` (no server.py): Streamlit's upload manager keeps nothing of a session
    that has not signed in."""
    from types import SimpleNamespace

    from streamlit import runtime

    kept = []
    manager = SimpleNamespace(add_file=lambda sid, rec: kept.append((sid, rec)))
    monkeypatch.setattr(runtime, "exists", lambda: True)
    monkeypatch.setattr(runtime, "get_instance", lambda: SimpleNamespace(uploaded_file_mgr=manager))
    monkeypatch.setattr(access.UploadGate, "installed", False)
    monkeypatch.setenv("TLSTUDIO_PASSWORD", "s3cret")
    access.guard_uploads_without_gate()
    access.guard_uploads_without_gate()  # once per process: not wrapped twice
    manager.add_file("s1", "before sign-in")
    access.SESSIONS.sign_in("s1")
    manager.add_file("s1", "after sign-in")
    assert kept == [("s1", "after sign-in")]


# --- the sign-in page, Sign out and expiry through AppTest -----------------------------

def _app(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    monkeypatch.setenv("TLSTUDIO_PASSWORD", "s3cret")
    monkeypatch.setenv("TLSTUDIO_IDLE_MINUTES", "30")
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()


def _sign_in(at: AppTest, password: str) -> None:
    at.text_input[0].input(password)
    at.button[0].click().run()


def test_wrong_passwords_slow_the_next_sign_in_down(tmp_path, monkeypatch, clock):
    at = _app(tmp_path, monkeypatch)
    _sign_in(at, "wrong")
    assert any(e.value.startswith("Wrong password.") for e in at.error)
    _sign_in(at, "s3cret")  # at once: refused without checking, even the right password
    assert any("Too many wrong passwords" in plain(e.value) for e in at.error) and not at.metric
    clock.t += access.FIRST_DELAY + 0.1
    _sign_in(at, "wrong")
    _sign_in(at, "s3cret")
    assert any("Too many wrong passwords" in plain(e.value) for e in at.error)
    clock.t += access.FIRST_DELAY + 0.1  # the second failure waits longer than the first
    _sign_in(at, "s3cret")
    assert any("Too many wrong passwords" in plain(e.value) for e in at.error)
    clock.t += access.Throttle().delay(2)
    _sign_in(at, "s3cret")
    assert not at.exception and not at.error and any(m.label == "GPUs" for m in at.metric)


def test_sign_out_and_idle_expiry_return_to_the_sign_in_page(tmp_path, monkeypatch, clock):
    at = _app(tmp_path, monkeypatch)
    _sign_in(at, "s3cret")
    assert any(m.label == "GPUs" for m in at.metric)
    sign_out = [b for b in at.sidebar.button if b.label == "Sign out"]
    assert sign_out
    sign_out[0].click().run()
    assert [t.value for t in at.title] == ["TL Studio"] and not at.metric
    assert any(i.value == "Signed out." for i in at.info)
    _sign_in(at, "s3cret")
    assert any(m.label == "GPUs" for m in at.metric)
    clock.t += 29 * 60
    at.run()  # activity within the idle time keeps the session
    assert any(m.label == "GPUs" for m in at.metric)
    clock.t += 31 * 60
    at.run()
    assert not at.metric and any("without activity" in i.value for i in at.info)


def test_without_a_password_there_is_no_sign_out(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception and not [b for b in at.sidebar.button if b.label == "Sign out"]


# --- hostile names on the pages ---------------------------------------------------------

def _rendered(at: AppTest) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "info", "success", "warning", "error", "subheader"):
        out += [PARSER.render(e.value) for e in getattr(at, kind)]
    out += [PARSER.render(e.value) for e in at.sidebar.markdown]
    return out


def test_hostile_run_and_class_names_show_as_text_on_the_pages(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    run = hostile_run(tmp_path, str(tmp_path / "**data**"), ["![t](http://x.invalid/y)", "<b>b</b>"],
                      b"not loaded by these pages")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["run_dir"] = str(run)
    at.run()
    at.switch_page("views/7_Predict.py").run()
    assert not at.exception, [e.value for e in at.exception]
    pages = _rendered(at)
    assert any("![t](http://x.invalid/y)" in p.replace("\u2060", "") for p in pages), pages
    assert any("**bold**" in p for p in pages)  # the sidebar's run label, literally
    for html in pages:
        assert "<img" not in html and 'href="http://x.invalid' not in html, html
        assert "<strong>bold</strong>" not in html and "<b>b</b>" not in html, html


def test_engine_errors_that_echo_a_name_are_escaped_in_the_error_box():
    """An engine error that repeats a user-given name (a class, a file) shows it as text: the
    error box renders Markdown, so an image in the name must not become a fetch."""
    def page():
        from studio import components as ui
        from tlcore.core.errors import TLCoreError

        with ui.guard("Reading the dataset"):
            raise TLCoreError("No images in class '![t](http://x.invalid/y)' of **data**")

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception and len(at.error) == 1
    value = at.error[0].value
    assert "![t](" not in value and "**data**" not in value  # escaped in the Markdown source
    assert plain(value) == "No images in class '![t](http://x.invalid/y)' of **data**"  # shown as given
