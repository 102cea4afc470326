"""A session that leaves frees what it held (`studio.audience`): its hold on a shared model ends the
moment Streamlit releases the session's resources (when the browser disconnects or the session ends),
so a model held only by a departed session is dropped and freed, while other sessions keep theirs."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from test_audience import FakeModel


def _audience_session(model_path: str, run: str) -> None:
    """The part of an audience session's run that holds a model (as `studio.audience.route` and
    `shared_model` do), in AppTest."""
    import streamlit as st

    from studio import audience, components as ui

    sid = ui.session_id()
    audience._watch_departure(sid)
    audience.MODELS.hold(sid, run, model_path)
    st.session_state["sid"] = sid


def _wait_until(condition, tries: int = 200) -> bool:
    """`condition()` once it holds (a worker thread ending, the collector running), else False."""
    import threading

    done = threading.Event()
    for _ in range(tries):
        gc.collect()
        if condition():
            return True
        done.wait(0.05)
    return False


@pytest.fixture
def pool(monkeypatch):
    from studio import audience
    from tlcore.ship.batching import SharedModels

    models = SharedModels(size=3, loader=FakeModel)
    monkeypatch.setattr(audience, "MODELS", models)
    return models


def test_a_model_held_only_by_a_departed_session_is_released(pool, tmp_path):
    from streamlit.runtime import caching
    from streamlit.testing.v1 import AppTest

    model = tmp_path / "model.keras"
    model.write_bytes(b"x")
    at = AppTest.from_function(_audience_session, args=(str(model), "RUN-A"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    sid = at.session_state["sid"]
    pool.hold("still-here", "RUN-B", model)  # another session, on another run, stays
    (key_a,) = [k for k, h in pool.holders().items() if sid in h]
    held = weakref.ref(pool._entries[key_a].model)  # noqa: SLF001 - the loaded model itself
    batcher = pool._entries[key_a].batcher  # noqa: SLF001

    caching.clear_session_resource_cache(sid)  # what Streamlit does when the session disconnects or ends

    assert key_a not in pool.holders() and list(pool.holders().values()) == [{"still-here"}]
    with pytest.raises(RuntimeError):
        batcher.classify(np.zeros((1, 2)))  # its batcher is closed
    del batcher
    assert _wait_until(lambda: held() is None), "the departed session's model is still referenced"


def test_a_session_that_comes_back_holds_again(pool, tmp_path):
    from streamlit.runtime import caching
    from streamlit.testing.v1 import AppTest

    model = tmp_path / "model.keras"
    model.write_bytes(b"x")
    at = AppTest.from_function(_audience_session, args=(str(model), "RUN-A"), default_timeout=60)
    at.run()
    sid = at.session_state["sid"]
    caching.clear_session_resource_cache(sid)
    assert pool.holders() == {}
    at.run()  # the same session runs again (a reconnect): its hold, and the watch on its departure, return
    assert [h for h in pool.holders().values()] == [{sid}]
    caching.clear_session_resource_cache(sid)
    assert pool.holders() == {}
