"""Streamlit pieces the pages share: routing guard, error boxes, the sidebar, the password,
the run picker and a run's live panel, prediction cards with Grad-CAM, the demo dataset button.

Each draws with ``st.*`` from plain values and engine calls; words come from `studio.text`,
figures from `studio.charts`, the selection from `studio.state`.
"""
from __future__ import annotations

import contextlib
import contextvars
import hmac
import logging
from pathlib import Path
from typing import Iterator

import streamlit as st

from studio import access, caches, charts, engine_words, state, text
from studio.i18n import N_, _
from tlcore.core.errors import TLCoreError

LOG = logging.getLogger("tlstudio")

_ROUTED: contextvars.ContextVar[bool] = contextvars.ContextVar("tlstudio_routed", default=False)


@contextlib.contextmanager
def routed() -> Iterator[None]:
    """Mark the page running inside app.py (its password check and sidebar came first)."""
    token = _ROUTED.set(True)
    try:
        yield
    finally:
        _ROUTED.reset(token)


def page_guard() -> None:
    """Run a page only through app.py.

    A page file run on its own (``streamlit run views/5_Train.py``) would skip the password and
    the sidebar; it is sent to app.py instead, or says where to start.
    """
    if _ROUTED.get():
        return
    from streamlit.errors import StreamlitAPIException

    try:
        st.switch_page("app.py")
    except StreamlitAPIException:  # run as a script of its own (no app.py beside it)
        pass
    st.info(_("Open TL Studio from its start page (streamlit run app.py)."), icon=":material/home:")
    st.stop()


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Show a failure of `what` as an error box where it happened, never as a traceback."""
    try:
        yield
    except TLCoreError as exc:
        st.error(text.md(text.error_words(exc), lines=True), icon=":material/error:")
    except Exception as exc:  # a bug: still plain words on the page, details in the server log
        LOG.exception("%s failed", what)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        st.error(_("{what} failed unexpectedly ({name}{value}). "
                 "Details are in the server's log.").format(what=what, name=type(exc).__name__, value=': ' + text.md(first) if first else ''), icon=":material/error:")


def header(title: str, caption: str) -> None:
    st.title(title)
    st.caption(caption)


# --- runs --------------------------------------------------------------------------

def current_run():
    """The selected run, if its folder still exists."""
    from tlcore.core.runs import Run

    ref = st.session_state.get("run_dir")
    if not ref:
        return None
    run = Run(ref)
    if not (run.path / "status.json").exists():
        st.session_state["run_dir"] = None
        return None
    return run


def reattach() -> None:
    """With no run selected, follow the newest running or queued run (after a reload)."""
    if st.session_state.get("run_dir"):
        return
    from tlcore.core.runs import newest_live_run

    try:
        run = newest_live_run()
    except OSError:
        return
    if run is not None:
        st.session_state["run_dir"] = str(run.path)


def pick_run(label: str, runs: list, key: str, help: str | None = None):
    """A select box over `runs` that starts at the selected run; returns the chosen Run."""
    if not runs:
        return None
    paths = [str(r.path) for r in runs]
    labels = {str(r.path): text.run_label(r) for r in runs}
    current = st.session_state.get("run_dir")
    wkey = f"w:{key}"
    if wkey not in st.session_state or st.session_state[wkey] not in paths:
        st.session_state[wkey] = current if current in paths else paths[0]
    chosen = st.selectbox(label, paths, key=wkey, format_func=labels.get, help=help)
    return runs[paths.index(chosen)]


STATE_BADGES = {"queued": (N_("queued"), "gray", ":material/hourglass_empty:"),
                "running": (N_("running"), "blue", ":material/directions_run:"),
                "completed": (N_("completed"), "green", ":material/check_circle:"),
                "failed": (N_("failed"), "red", ":material/error:"),
                "stopped": (N_("stopped"), "orange", ":material/stop_circle:"),
                "interrupted": (N_("interrupted"), "orange", ":material/warning:")}


def state_badge(run_state: str) -> None:
    label, colour, icon = STATE_BADGES.get(run_state, (run_state, "gray", None))
    st.badge(str(label), color=colour, icon=icon)


# --- sidebar and password ----------------------------------------------------------

def backbone_text() -> str:
    """'MobileNetV2 · 224 px · ImageNet weights' (or 'clf.keras · your own model') for the selection."""
    return text.describe_backbone(state.get("backbone"), state.get("input_size"), state.get("weights"),
                                  state.get("cut"), state.get("backbone_file"))


def render_sidebar() -> None:
    """The device summary and the current selection (backbone, dataset, run)."""
    st.markdown(_("**Current selection**"))
    st.markdown(f":material/layers: {text.md(backbone_text())}")
    data = state.get("data")
    st.markdown(":material/photo_library: " + (text.md(Path(data).name) if data else _("_no dataset yet_")))
    run = current_run()
    st.markdown(":material/monitoring: " + (text.md(text.run_label(run)) if run else _("_no run yet_")))
    st.divider()
    info = caches.device_info_if_loaded()
    if info is None:
        st.caption(":material/memory: " + _("Machine: shown once TensorFlow is loaded (Home)."))
    else:
        gpus = info.get("gpus") or []
        where = ", ".join(g["name"] for g in gpus) if gpus else _("CPU only")
        st.caption(f":material/memory: TensorFlow {info['tensorflow']} · {where}")


def required_password() -> str | None:
    """The password the app asks for: ``st.secrets["password"]`` or ``TLSTUDIO_PASSWORD``."""
    return access.required_password()


def password_ok(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def session_id() -> str:
    """This browser session's id (Streamlit's), the key of the signed-in table and the throttle."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


def _throttle_keys() -> list[str]:
    """The sign-in throttle counts failures per session and per client address."""
    keys = [f"session:{session_id()}"]
    try:
        address = st.context.ip_address
    except Exception:  # no request context (AppTest)
        address = None
    keys.append(f"client:{address or 'local'}")
    return keys


def signed_in() -> bool:
    """Whether this session may see the studio: no password set, or signed in and not idle too long.

    Every run of the page script counts as activity. A session that was idle too long is signed out
    (its uploads freed) and the sign-in page says why.
    """
    if not required_password():
        return True
    sid = session_id()
    if access.SESSIONS.touch(sid):
        return True
    if st.session_state.pop("authenticated", False):  # was signed in: expired since
        access.free_uploads(sid)
        minutes = (access.idle_seconds() or 0) / 60
        st.session_state["_signed_out_why"] = _(
            "Signed out after {minutes:g} minutes without activity. Sign in again to continue.").format(minutes=minutes)
    return False


def sign_out() -> None:
    """End this session's sign-in and drop its uploads."""
    sid = session_id()
    access.SESSIONS.sign_out(sid)
    access.free_uploads(sid)
    st.session_state.pop("authenticated", None)
    st.session_state["_signed_out_why"] = _("Signed out.")


def sign_out_button() -> None:
    """The sidebar's Sign out button (only with a password set)."""
    if required_password() and st.button(_("Sign out"), icon=":material/logout:", key="sign_out",
                                         help=_("Ends this session; uploads not yet imported are dropped.")):
        sign_out()
        st.rerun()


def login_page() -> None:
    """The only page shown until the password is entered. Wrong passwords make the next try wait
    (`studio.access.THROTTLE`), per session and per client address."""
    st.title(_("TL Studio"))
    st.caption(_("This studio is protected by a password."))
    why = st.session_state.get("_signed_out_why")
    if why:
        st.info(why, icon=":material/logout:")
    with st.form("login"):
        given = st.text_input(_("Password"), type="password")
        ok = st.form_submit_button(_("Sign in"), type="primary")
    if not ok:
        return
    keys = _throttle_keys()
    wait = access.THROTTLE.wait(keys)
    if wait > 0:
        st.error(_("Too many wrong passwords. Try again in {value}.").format(value=text.format_seconds(max(1.0, wait))),
                 icon=":material/timer:")
        return
    if password_ok(given, required_password() or ""):
        access.THROTTLE.succeeded(keys)
        access.SESSIONS.sign_in(session_id())
        st.session_state["authenticated"] = True
        st.session_state.pop("_signed_out_why", None)
        LOG.info("Signed in (session %s)", session_id())
        st.rerun()
    else:
        wait = access.THROTTLE.failed(keys)
        LOG.warning("Wrong password (session %s, %s)", session_id(), keys[-1])
        st.error(_("Wrong password. The next try is possible in {value}.").format(value=text.format_seconds(max(1.0, wait))),
                 icon=":material/lock:")


# --- a run's live panel (Train, Quick start) ----------------------------------------

def run_panel(run_dir: str, was_live: bool, links: bool = True) -> None:
    """The run's state, progress, charts and controls, read from the run store.

    Drawn inside a fragment that reruns every two seconds while the run is live; when it ends,
    the whole page reruns once (and stops polling).
    """
    from tlcore.core import home
    from tlcore.core.runs import LIVE_STATES, Run

    run = Run(run_dir)
    with guard(_("Reading the run")):
        status = run.status()
        run_state = status.get("state", "unknown")
        metrics = run.metrics()
        options = run.config().get("options") or {}
        if was_live and run_state not in LIVE_STATES:
            st.rerun()  # finished: redraw the whole page (and stop polling)
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        with c1:
            state_badge(run_state)
            st.markdown(f"**{text.md(run.run_id)}**" + (f" · {text.md(text.display_name(options['name']))}" if options.get("name") else ""))
        if run_state in LIVE_STATES:
            if c2.button(_("Stop"), icon=":material/stop:", key="stop_run",
                         help=_("Ends within one batch; the model so far is saved.")):
                run.request_stop()
            if run.stop_requested():
                st.caption(_("Stop requested: the run ends after the current batch and saves its model."))
        if run_state == "queued":
            position = status.get("queue_position")
            st.info(_("Waiting for the machine: another training is running. This one starts when it ends")
                    + (_(" (number {position} in the queue).").format(position=position) if position else "."),
                    icon=":material/hourglass_empty:")
        elif run_state == "running":
            seen = st.session_state.get("_progress_seen")
            progress, seen = text.epoch_progress(status, metrics, seen)
            st.session_state["_progress_seen"] = seen
            st.progress(progress["fraction"], text=progress["text"])
        elif run_state == "failed":
            st.error(_("The training failed: {value}").format(value=text.md(text.run_error_words(status) or _('no reason recorded'), lines=True)),
                     icon=":material/error:")
            st.caption(_("The training log is {value}.").format(value=text.code(home.home() / 'logs' / (run.run_id + '.log'))))
        elif run_state == "interrupted":
            st.warning(_("The training process is gone (the machine restarted, or it was killed). Resume it "
                       "from its last checkpoint on the Runs page."), icon=":material/warning:")
        elif run_state == "stopped":
            st.info(_("Stopped on request; the model so far is saved."), icon=":material/stop_circle:")
        for warning in status.get("warnings") or []:  # the plan's notes, a loss stuck at chance
            st.warning(engine_words.say(warning), icon=":material/warning:")
        if metrics:
            boundary = charts.stage_boundary(metrics) or (
                charts.planned_boundary(options) if run_state in LIVE_STATES else None)
            st.plotly_chart(charts.training_curves(metrics, boundary, status.get("epochs_total")),
                            key=f"curves_{run.run_id}")
        elif run_state in LIVE_STATES:
            st.caption(_("The charts appear when the first epoch ends."))
        if run_state == "completed":
            run_results(run, metrics, links)


def run_results(run, metrics: list[dict], links: bool = True) -> None:
    summary = run.summary()
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(_("Best validation accuracy"), text.format_percent(summary["val_accuracy"]), border=True,
              help=str(text.INTERVAL_HELP))
    c1.caption(text.interval_words(summary.get("val_accuracy_interval"), summary.get("val_count")))
    c2.metric(_("Test accuracy"), text.format_percent(summary["test_accuracy"]), border=True, help=str(text.INTERVAL_HELP))
    c2.caption(text.interval_words(summary.get("test_accuracy_interval"), summary.get("test_count")))
    c3.metric(_("Epochs"), len(metrics), border=True)
    c4.metric(_("Time"), text.format_seconds(sum(m.get("seconds") or 0 for m in metrics)), border=True)
    if links:
        l1, l2, _l3 = st.columns([1, 1, 3])
        l1.page_link("views/6_Evaluate.py", label=_("Evaluate"), icon=":material/fact_check:")
        l2.page_link("views/7_Predict.py", label=_("Try it on images"), icon=":material/image_search:")


# --- predictions with Grad-CAM (Predict, Quick start) -------------------------------

_CAM_CACHE = "_gradcam"


def gradcam(rm, source, key: tuple, label: str | None = None) -> dict:
    """`explain.explain_image` for one image, kept in the session under `key` (model, image, class).

    Raises:
        TLCoreError: a model without spatial features at its cut, an unreadable image.
    """
    cache = st.session_state.setdefault(_CAM_CACHE, {})
    if key not in cache:
        from tlcore.evaluation.explain import explain_image

        if hasattr(source, "seek"):
            source.seek(0)
        result = explain_image(rm, source, label)
        while len(cache) >= 48:
            cache.pop(next(iter(cache)))
        heat = result["heatmap"]
        cache[key] = {"overlay": result["overlay"], "label": result["label"],
                      "probability": result["probability"], "shape": tuple(heat.shape),
                      "flat": bool(heat.size == 0 or float(heat.max()) - float(heat.min()) < 1e-6)}
    return cache[key]


def run_stamp(run) -> tuple:
    """(run folder, model file mtime): what a Grad-CAM of this run's model is keyed by."""
    path = run.model_path()
    return (str(run.path), path.stat().st_mtime_ns if path else 0)


def model_stamp(rm) -> tuple:
    return run_stamp(rm.run)


def prediction_card(name: str, shown, top: list[dict] | None, key: str, error: str | None = None,
                    cam: dict | None = None, cam_error: str | None = None) -> None:
    """One image: the picture (and its Grad-CAM), the best label, the top-k bars."""
    with st.container(border=True):
        left, right = st.columns([2 if cam is not None or cam_error else 1, 3], vertical_alignment="center")
        if error:
            left.markdown(f"**{text.md(name)}**")
            right.error(_("Cannot read this image: {error}").format(error=text.md(error)), icon=":material/broken_image:")
            return
        with left:
            if cam is not None or cam_error:
                a, b = st.columns(2)
                if shown is not None:
                    a.image(shown, width="stretch", caption=name)
                if cam is not None and text.gradcam_note(cam):
                    b.caption(text.gradcam_note(cam))
                elif cam is not None:
                    b.image(cam["overlay"], width="stretch", caption=_("Grad-CAM · {label}").format(label=cam["label"]))
                else:
                    b.caption(cam_error)
            else:
                if shown is not None:
                    st.image(shown, width="stretch")
                st.caption(text.md(name))
        right.markdown(f"**{text.md(top[0]['label'])}** · {top[0]['probability']:.1%}")
        right.plotly_chart(charts.top_k(top), key=f"top_{key}")


def show_predictions(run, files: list, k: int, with_gradcam: bool = True, tta: str = "none") -> None:
    """Classify uploaded files (or camera snaps) with a run's model, averaged over the views of `tta`;
    one card per file."""
    import time

    import numpy as np

    from tlcore.data.images import ImageProblem, display_image
    from tlcore.ship.predict import top_labels

    with guard(_("Classifying the images")):
        with st.spinner(_("Loading the model…")):
            model = caches.load_run_model(run)
        arrays, ok, problems = [], [], {}
        for f in files:
            try:
                if hasattr(f, "seek"):
                    f.seek(0)
                arrays.append(model.load(f))
                ok.append(f)
            except ImageProblem as exc:
                problems[f.file_id] = text.error_words(exc)
        t0 = time.perf_counter()
        probs = model.probabilities(np.stack(arrays), tta=tta) if arrays else []
        if arrays and tta != "none":
            seconds = time.perf_counter() - t0
            st.caption(text.tta_cost({"mode": tta, "seconds": seconds}, len(arrays)))
        results = {f.file_id: top_labels(p, model.labels, k) for f, p in zip(ok, probs)}
        stamp = model_stamp(model)
        for f in files:
            if f.file_id in problems:
                prediction_card(f.name, None, None, f.file_id, error=problems[f.file_id])
                continue
            cam, cam_error = None, None
            if with_gradcam:
                try:
                    with st.spinner(_("Grad-CAM for {name}…").format(name=text.md(f.name))):
                        cam = gradcam(model, f, (*stamp, f.file_id, None))
                except TLCoreError as exc:
                    cam_error = text.error_words(exc)
                except Exception as exc:  # a bug: the prediction still shows
                    LOG.exception("Grad-CAM failed")
                    cam_error = _("Grad-CAM failed unexpectedly ({error}); see the server's log.").format(
                        error=type(exc).__name__)
            prediction_card(f.name, display_image(f), results[f.file_id], f.file_id, cam=cam,
                            cam_error=cam_error)


# --- the demo dataset (Data, Quick start) --------------------------------------------

def demo_dataset_button(key: str, primary: bool = False) -> bool:
    """A button that makes the demo dataset if missing, selects it and reruns the page."""
    from tlcore.data.datasets import ensure_demo_dataset

    if st.button(_("Use the demo dataset"), key=key, type="primary" if primary else "secondary",
                 icon=":material/category:"):
        with guard(_("Making the demo dataset")):
            with st.spinner(_("Drawing the demo images…")):
                result = ensure_demo_dataset(classes=4, per_class=150)
            state.put("data", result["path"])
            st.rerun()
    return False
