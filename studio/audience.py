"""The audience link: one run's read-only page for a room of phones, and the links that open it.

A session whose URL carries an audience token (``/audience?t=TOKEN``, made on the Predict page) is
an audience session for as long as it lives: app.py hands it to `route` before the password and the
sidebar. It sees the audience page of the link's run (views/audience.py) and nothing else: any
other page of the studio, asked for by its URL, is refused; a revoked or unknown token shows only
a refusal. Its uploads are let through the upload gate up to `access.AUDIENCE_UPLOAD_MB`.

All audience sessions of a run share one loaded model (`MODELS`, a
`tlcore.ship.batching.SharedModels`): their images are classified together by the model's batcher,
as `tlcore serve` does. A session that leaves releases its hold at once (a session-scoped resource whose
release Streamlit calls when the session disconnects or ends: `_left`), and a model
nobody holds is dropped. Grad-CAM is computed on tap only; the live camera is rate-limited to
`LIVE_PER_SECOND` classifications a second per viewer.
"""
from __future__ import annotations

import io
import logging
import threading
from urllib.parse import urlsplit

import streamlit as st

from studio import access, components as ui, text
from studio.i18n import _
from tlcore.core.errors import TLCoreError
from tlcore.ship.batching import SharedModels

LOG = logging.getLogger("tlstudio")
PARAM = "t"                       # the token's query parameter
URL_PATH = "audience"
PAGE = "views/audience.py"
LIVE_PER_SECOND = 2.0             # live-camera classifications per second, per viewer
TOP_K = 3
MODELS = SharedModels(size=3)     # one model per run, for every audience session of this server
_TOKEN, _LINK, _RESULTS, _CAM = "_audience_token", "_audience_link", "_audience_results", "_audience_cam"
_LIVE_CLASSIFIERS: dict[str, tuple] = {}  # session id -> (model key, its live camera's classifier)
_LIVE_LOCK = threading.Lock()


# --- routing (app.py) -------------------------------------------------------------------

def session_token() -> str | None:
    """The audience token of this session: from its URL on the first run, kept for its lifetime."""
    token = st.query_params.get(PARAM)
    if token:
        st.session_state[_TOKEN] = str(token)
    return st.session_state.get(_TOKEN)


def route(pages: dict) -> bool:
    """Serve this session if it is an audience session (True); False for everybody else.

    `pages` are app.py's pages: registered (hidden) so that their URLs resolve, but never run here.
    """
    token = session_token()
    if not token:
        return False
    sid = ui.session_id()
    _watch_departure(sid)
    _prune()
    link = access.audience_links().verify(token)
    if link is None:
        access.AUDIENCE.close(sid)
        MODELS.release(sid)
        st.session_state.pop(_LINK, None)
        st.navigation([st.Page(_invalid, title=_("Audience link"), url_path=URL_PATH, icon=":material/link_off:")],
                      position="hidden").run()
        return True
    access.AUDIENCE.open(sid, link.id)
    st.session_state[_LINK] = link
    here = st.Page(PAGE, url_path=URL_PATH, title=_("Audience"), icon=":material/groups:")
    page = st.navigation({"": [here], **pages}, position="hidden")
    if page is here:
        with ui.routed():
            page.run()
    else:
        _refused()
    return True


def _left(session_id: str) -> None:
    """A session has left (Streamlit released its session resources: the browser disconnected or the
    session ended): its hold on a model ends at once, so a model nobody else holds is dropped now,
    not when another audience session happens to run. A session that comes back holds again."""
    access.AUDIENCE.close(session_id)
    MODELS.release(session_id)
    with _LIVE_LOCK:
        _LIVE_CLASSIFIERS.pop(session_id, None)


@st.cache_resource(scope="session", on_release=_left, show_spinner=False)
def _watch_departure(session_id: str) -> str:
    """A resource of this session whose release (`_left`) is the session's departure: Streamlit
    releases session-scoped resources when the session disconnects or ends."""
    return session_id


def _prune() -> None:
    """Forget the audience sessions that have left (and their hold on a model)."""
    alive = access.active_session_ids()
    if alive is not None:
        access.AUDIENCE.prune(alive)
        MODELS.prune(alive)


def _refused() -> None:
    st.title(_("Not available"))
    st.error(_("This link opens one model's audience page only, not the rest of the studio."),
             icon=":material/block:")
    st.markdown("[{back}]({path}?{param}={token})".format(back=_("Back to the audience page"), path=URL_PATH, param=PARAM,
                                                          token=st.session_state.get(_TOKEN, "")))


def _invalid() -> None:
    st.title(_("TL Studio"))
    st.error(_("This audience link is not valid (any more): it was revoked, or its run was deleted. Ask the "
               "presenter for a new one."), icon=":material/link_off:")


# --- the audience page (views/audience.py) -------------------------------------------------

def current_link():
    """The audience link of this session (`tlcore.core.links.AudienceLink`); None outside one."""
    return st.session_state.get(_LINK)


def shared_model(link):
    """The run's shared model (`tlcore.ship.batching.Shared`), held by this session.

    Raises:
        TLCoreError: the run has no model.
    """
    from tlcore.core.runs import Run

    run = Run(link.run_dir)
    path = run.model_path()
    if path is None:
        raise TLCoreError(_("Run {run_id} has no model any more.").format(run_id=run.run_id))
    return MODELS.hold(ui.session_id(), str(run.path), path)


def classify(shared, image) -> dict:
    """{name, top, error} of one dropped image or snap, kept in the session per file."""
    from tlcore.data.images import ImageProblem
    from tlcore.ship.predict import top_labels

    results = st.session_state.setdefault(_RESULTS, {})
    key = (shared.key, image.file_id)
    if key not in results:
        results.clear()  # only the newest is kept: the session holds little
        try:
            image.seek(0)
            x = shared.model.load(image)
        except ImageProblem as exc:
            results[key] = {"name": image.name, "top": None, "error": text.error_words(exc)}
        else:
            probs = shared.probabilities(x[None])[0]
            results[key] = {"name": image.name, "top": top_labels(probs, shared.model.labels, TOP_K), "error": None}
    return results[key]


def show_result(shared, image, result: dict) -> None:
    """The label (large) and the top classes as bars; on tap, the photo with Grad-CAM."""
    from tlcore.data.images import display_image

    with st.container(key="audience_result", border=True):
        if result["error"]:
            st.error(_("Cannot read this image: {error}").format(error=text.md(result["error"])), icon=":material/broken_image:")
            return
        best = result["top"][0]
        st.markdown(f"## {text.md(best['label'])}")
        st.caption(_("{name} · {probability:.0%} sure").format(name=text.md(result["name"]), probability=best["probability"]))
        for item in result["top"]:
            st.progress(min(1.0, max(0.0, float(item["probability"]))),
                        text=f"{text.md(item['label'])} · {item['probability']:.0%}")
        cam_key = (shared.key, image.file_id)
        if st.session_state.get(_CAM) != cam_key:  # the photo is drawn on tap only: each drop stays light
            if st.button(_("Where did it look?"), key="audience_gradcam", icon=":material/visibility:",
                         help=_("Grad-CAM: where the features that decided the label lie.")):
                st.session_state[_CAM] = cam_key
                st.rerun()
            return
        with ui.guard("Grad-CAM"):
            with st.spinner(_("Looking where it looked…")):
                cam = ui.gradcam(shared.model, image, (*ui.model_stamp(shared.model), image.file_id, None))
            note = text.gradcam_note(cam)
            photo, heat = st.columns(2)
            photo.image(display_image(image), width="stretch")
            if note:
                heat.caption(note)
            else:
                heat.image(cam["overlay"], width="stretch", caption=f"Grad-CAM · {text.md(cam['label'])}")


def live_classifier(shared):
    """The live camera's classifier for this session: the shared model, rate-limited per viewer."""
    from tlcore.live.classifier import Classifier
    from tlcore.ship.batching import RateLimit

    sid = ui.session_id()
    with _LIVE_LOCK:
        kept = _LIVE_CLASSIFIERS.get(sid)
    if kept is None or kept[0] != shared.key:
        rm = shared.model
        classifier = Classifier(RateLimit(shared.probabilities, LIVE_PER_SECOND), rm.labels, rm.input_size,
                                rm.resize, None, rm.run.run_id).warm_up()
        kept = (shared.key, classifier)
        with _LIVE_LOCK:  # kept here, not in the session's state: dropped the moment the session leaves
            _LIVE_CLASSIFIERS[sid] = kept
    return kept[1]


# --- making and revoking links (Predict) -----------------------------------------------

def base_url() -> str:
    """The studio's address as this browser reached it (``TLSTUDIO_PUBLIC_URL`` overrides it)."""
    import os

    from streamlit import config

    public = os.environ.get("TLSTUDIO_PUBLIC_URL", "").strip().rstrip("/")
    if public:
        return public
    try:
        seen = urlsplit(st.context.url or "")
    except Exception:  # no request context (AppTest)
        seen = urlsplit("")
    root = f"{seen.scheme}://{seen.netloc}" if seen.scheme and seen.netloc else "http://localhost:8501"
    prefix = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"{root}/{prefix}" if prefix else root


def link_url(token: str, base: str | None = None) -> str:
    return f"{base or base_url()}/{URL_PATH}?{PARAM}={token}"


def qr_png(url: str) -> bytes:
    """A QR code of `url` as PNG bytes."""
    import segno

    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=6, border=2)
    return buf.getvalue()


def link_panel(run) -> None:
    """On the Predict page: make a read-only audience link (with its QR code) to `run`; list and
    revoke the active ones."""
    from tlcore.core.links import MAX_NOTE

    store = access.audience_links()
    made = st.session_state.setdefault("_audience_made", {})
    with st.expander(_("Audience link: this model on the room's phones"), icon=":material/qr_code_2:"):
        if run.state() != "completed":
            st.caption(_("Audience links are made from a completed run."))
            return
        st.caption(_("A read-only page for this run only: people drop or snap a photo (or point their camera) and "
                     "see the label. It opens no other page of the studio, even without the password. Phones give "
                     "the camera only over HTTPS (docs/OPERATIONS.md)."))
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        note = c1.text_input(_("Note (optional)"), key="audience_note", max_chars=MAX_NOTE,
                             placeholder=_("Room 101, Monday"))
        if c2.button(_("Make an audience link"), key="audience_make", icon=":material/add_link:"):
            with ui.guard(_("Making the audience link")):
                link, token = store.create(run.path, note)
                made[link.id] = token
        links = store.active(run.path)
        if not links:
            st.caption(_("No active link to this run."))
        for link in links:
            with st.container(border=True):
                a, b = st.columns([4, 1], vertical_alignment="center")
                token = made.get(link.id)
                with a:
                    st.markdown(_("**Link {id}** · made {when}").format(id=text.md(link.id), when=text.md(link.created_at))
                                + (f" · {text.md(link.note)}" if link.note else ""))
                    if token:
                        url = link_url(token)
                        st.code(url, language=None)
                        st.image(qr_png(url), width=180, caption=_("Scan to open"))
                    else:
                        st.caption(_("Its address is shown only in the session that made it (the studio keeps only "
                                     "a hash of the token). Make a new link to show one again."))
                if b.button(_("Revoke"), key=f"audience_revoke_{link.id}", icon=":material/link_off:",
                            help=_("The link stops working at once, also for people who have it open.")):
                    store.revoke(link.id)
                    access.AUDIENCE.drop_link(link.id)
                    made.pop(link.id, None)
                    st.rerun()
