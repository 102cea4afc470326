"""The audience link: tokens (made, checked, revoked), the shared batched model, the upload gate for
audience sessions, and the audience page in AppTest (only its run; other pages refused with only
a token, with and without a password)."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from apphelp import ROOT


def fake_run(runs_dir, run_id="r1", labels=("red", "green")):
    """A completed run folder (its model never loaded)."""
    path = runs_dir / run_id
    path.mkdir(parents=True)
    (path / "status.json").write_text(json.dumps({"state": "completed"}))
    (path / "labels.json").write_text(json.dumps(list(labels)))
    (path / "config.json").write_text(json.dumps({"options": {"name": f"run {run_id}"}}))
    return path


# --- tokens ----------------------------------------------------------------------------

def test_a_link_opens_its_run_until_revoked_and_only_its_hash_is_stored(tlhome):
    from tlcore.core.links import AudienceLinks

    run = fake_run(tlhome / "runs")
    store = AudienceLinks()
    link, token = store.create(run, note="Room 101")
    assert len(token) >= 40  # token_urlsafe(32)
    assert store.verify(token).run_dir == str(run) and store.verify(token).id == link.id
    stored = (tlhome / "audience" / "links.json").read_text()
    assert token not in stored and link.id in stored
    assert [l.id for l in store.active(run)] == [link.id] and store.active(run)[0].note == "Room 101"
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.verify("") is None and store.verify(None) is None
    assert AudienceLinks().verify(token).id == link.id  # another reader of the same home
    assert store.revoke(link.id) and not store.revoke(link.id)
    assert store.verify(token) is None and store.active() == []


def test_links_are_distinct_per_call_and_die_with_their_run(tlhome):
    import shutil

    from tlcore.core.links import AudienceLinks

    a, b = fake_run(tlhome / "runs", "a"), fake_run(tlhome / "runs", "b")
    store = AudienceLinks()
    (la, ta), (la2, ta2), (lb, tb) = store.create(a), store.create(a), store.create(b)
    assert len({ta, ta2, tb}) == 3 and len({la.id, la2.id, lb.id}) == 3
    assert {l.id for l in store.active(a)} == {la.id, la2.id}
    assert store.revoke_run(a) == 2 and store.verify(ta) is None and store.verify(tb).id == lb.id
    shutil.rmtree(b)
    assert store.verify(tb) is None  # a deleted run opens nothing


def test_a_link_needs_a_run_folder_and_a_short_note(tlhome):
    from tlcore.core.errors import OptionError
    from tlcore.core.links import AudienceLinks

    with pytest.raises(OptionError, match="run_dir"):
        AudienceLinks().create(tlhome / "nothing")
    with pytest.raises(OptionError, match="note"):
        AudienceLinks().create(fake_run(tlhome / "runs"), note="x" * 500)


# --- one shared model, batched ------------------------------------------------------------

class FakeModel:
    def __init__(self, run_dir):
        from types import SimpleNamespace

        self.run = SimpleNamespace(run_id=str(run_dir))
        self.labels = ["a", "b"]
        self.calls: list[int] = []

    def probabilities(self, x):
        self.calls.append(len(x))
        return np.stack([x.reshape(len(x), -1).mean(axis=1), -x.reshape(len(x), -1).mean(axis=1)], axis=1)


def test_sessions_share_one_model_per_run_and_their_requests_are_batched(tmp_path):
    from tlcore.ship.batching import SharedModels

    loads = []
    pool = SharedModels(size=2, loader=lambda d: loads.append(d) or FakeModel(d))
    model = tmp_path / "model.keras"
    model.write_bytes(b"x")
    entries = [pool.hold(f"s{i}", "run1", model) for i in range(5)]
    assert loads == ["run1"] and all(e is entries[0] for e in entries)
    shared = entries[0]
    shared.batcher.wait = 0.2  # long enough for the threads below to arrive together
    out: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, shared.probabilities(np.full((1, 2), i))))
               for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(shared.model.calls) != [1] * 5 and sum(shared.model.calls) == 5  # fewer calls than requests
    assert all(out[i][0, 0] == i for i in range(5))  # each session got its own rows


def test_a_model_nobody_holds_is_dropped_and_at_most_size_are_kept(tmp_path):
    from tlcore.ship.batching import SharedModels

    pool = SharedModels(size=2, loader=FakeModel)
    model = tmp_path / "model.keras"
    model.write_bytes(b"x")
    a = pool.hold("s1", "A", model)
    pool.hold("s2", "A", model)
    pool.release("s1")
    assert list(pool.holders().values()) == [{"s2"}]
    pool.prune(alive={"s1"})  # s2 left
    assert pool.holders() == {}
    with pytest.raises(RuntimeError):
        a.batcher.classify(np.zeros((1, 2)))  # dropped: its worker ended
    assert a.probabilities(np.zeros((1, 2))).shape == (1, 2)  # a caller that kept it still gets an answer
    for i, run in enumerate("BCD"):
        pool.hold(f"t{i}", run, model)
    assert len(pool.holders()) == 2 and ("D", str(model)) == next(reversed(pool.holders()))[:2]
    pool.hold("t3", "B", model)  # one holder holds one model: moving releases the other
    assert all("t3" not in h or k[0] == "B" for k, h in pool.holders().items())


def test_the_batcher_serves_threads_and_event_loops_and_fails_calls_not_itself():
    import asyncio

    from tlcore.core.errors import OptionError
    from tlcore.ship.batching import Batcher, RateLimit

    calls = []

    def fn(x):
        calls.append(len(x))
        if (x < 0).any():
            raise ValueError("negative")
        return x * 2

    batcher = Batcher(fn, wait=0.05)
    assert batcher.classify(np.ones((2, 1)))[:, 0].tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="negative"):
        batcher.classify(-np.ones((1, 1)))
    assert asyncio.run(batcher.submit(np.full((1, 1), 3.0)))[0, 0] == 6.0
    batcher.close()
    with pytest.raises(RuntimeError):
        batcher.classify(np.ones((1, 1)))
    with pytest.raises(OptionError, match="max_batch"):
        Batcher(fn, max_batch=0)
    with pytest.raises(OptionError, match="per_second"):
        RateLimit(fn, 0)
    limited, seen = RateLimit(lambda: seen.append(1), 1000.0), []
    for _ in range(3):
        limited()
    assert seen == [1, 1, 1]


# --- the upload gate --------------------------------------------------------------------

def test_an_audience_session_may_upload_within_its_cap_until_its_link_is_revoked(tlhome, monkeypatch):
    from studio import access

    monkeypatch.setenv("TLSTUDIO_PASSWORD", "pw")
    monkeypatch.setattr(access, "upload_limit_bytes", lambda: 200 * 2**20)
    monkeypatch.setattr(access, "session_upload_bytes", lambda sid: 0)
    link, token = access.audience_links().create(fake_run(tlhome / "runs"))
    try:
        assert access.upload_refusal("sess", 1000)[0] == 403
        access.AUDIENCE.open("sess", link.id)
        assert access.upload_refusal("sess", 1000) is None
        status, reason = access.upload_refusal("sess", (access.AUDIENCE_UPLOAD_MB + 1) * 2**20)
        assert status == 413 and "audience" in reason
        access.audience_links().revoke(link.id)
        assert access.upload_refusal("sess", 1000)[0] == 403
        assert access.AUDIENCE.link("sess") is None
    finally:
        access.AUDIENCE.clear()


# --- the pages (AppTest) ------------------------------------------------------------------

def _app(token=None, page=None, password=None, monkeypatch=None):
    from streamlit.testing.v1 import AppTest

    if password:
        monkeypatch.setenv("TLSTUDIO_PASSWORD", password)
    else:
        monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    if token is not None:
        at.query_params["t"] = token
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _words(at) -> str:
    return " ".join(str(e.value) for kind in ("title", "markdown", "caption", "error", "info") for e in getattr(at, kind))


@pytest.fixture
def two_runs_home(tlhome):
    from tlcore.core.links import AudienceLinks

    shown = fake_run(tlhome / "runs", "shown-run", ("cat", "dog"))
    fake_run(tlhome / "runs", "other-run", ("apple", "pear"))
    (shown / "model.keras").write_bytes(b"not loaded in these tests")
    link, token = AudienceLinks().create(shown)
    return tlhome, link, token


@pytest.mark.parametrize("password", [None, "letmein"])
def test_the_audience_page_shows_its_run_only_and_refuses_every_other_page(two_runs_home, monkeypatch, password):
    from studio import audience

    _, link, token = two_runs_home
    at = _app(token, audience.PAGE, password, monkeypatch)
    words = _words(at)
    assert "run shown-run" in [t.value for t in at.title]
    assert "other-run" not in words and "Sign in" not in [b.label for b in at.button]
    assert len(at.sidebar) == 0 or not _words_of(at.sidebar)
    for page in ("views/5_Train.py", "views/8_Runs.py", "views/7_Predict.py", "views/1_Home.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert [t.value for t in at.title] == ["Not available"], page
        assert "other-run" not in _words(at) and "shown-run" not in _words(at)


def _words_of(block) -> str:
    return " ".join(str(getattr(e, "value", "")) for e in block)


@pytest.mark.parametrize("password", [None, "letmein"])
def test_a_revoked_or_wrong_token_opens_nothing(two_runs_home, monkeypatch, password):
    from studio import access, audience

    _, link, token = two_runs_home
    at = _app("not-a-token", None, password, monkeypatch)
    assert "not valid" in _words(at) and "shown-run" not in _words(at)
    at = _app(token, audience.PAGE, password, monkeypatch)
    access.audience_links().revoke(link.id)
    at.run()  # the same session, after the revocation
    assert "not valid" in _words(at) and "run shown-run" not in [t.value for t in at.title]


def test_the_predict_page_makes_lists_and_revokes_links(two_runs_home, monkeypatch):
    from tlcore.core.links import AudienceLinks

    home, old, _ = two_runs_home
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    at = _app(None, "views/7_Predict.py", None, monkeypatch)
    at.selectbox(key="w:predict_run").select(str(home / "runs" / "shown-run")).run()
    assert f"Link {old.id}" in _words(at)
    at.text_input(key="audience_note").input("Room 7").run()
    at.button(key="audience_make").click().run()
    links = AudienceLinks().active(home / "runs" / "shown-run")
    new = [l for l in links if l.id != old.id]
    assert len(new) == 1 and new[0].note == "Room 7"
    shown = [c.value for c in at.code]
    assert len(shown) == 1 and shown[0].startswith("http") and "/audience?t=" in shown[0]
    token = shown[0].split("t=", 1)[1]
    assert AudienceLinks().verify(token).id == new[0].id
    at.button(key=f"audience_revoke_{old.id}").click().run()
    assert [l.id for l in AudienceLinks().active()] == [new[0].id]
    assert not at.exception
