"""TL Studio: the Streamlit entry point. It only routes; every step is a page in views/.

Run with ``streamlit run server.py`` (scripts/app.sh), which serves this script behind the upload
gate (`studio.access`); ``streamlit run app.py`` works too. With a password set
(``st.secrets["password"]`` or the environment variable ``TLSTUDIO_PASSWORD``) nothing but the
sign-in page is reachable until it is entered; wrong passwords make the next try wait longer and
longer, the sidebar has a Sign out button, and a session idle for ``TLSTUDIO_IDLE_MINUTES``
(default 60) is signed out.

The pages live in ``views/``, not ``pages/``: Streamlit treats a ``pages/`` folder beside the
entry file as its older multipage app, serving each file directly (skipping this script, its
password and sidebar) and answering a shared link such as ``/layers?backbone=...`` with a
"Page not found" dialog. A page run on its own still refuses (`studio.components.page_guard`).

A session opened by an audience link (``/audience?t=TOKEN``, made on the Predict page) sees only
that run's audience page (views/audience.py, not in the sidebar): `studio.audience.route`.

The selection survives a reload: on a fresh session the URL's query parameters are read
back into it before the page runs (`studio.state.restore_from_url`), and after every run they
are rewritten from it (`studio.state.write_url`), because Streamlit clears them on a page change.

The language (English or Korean) is settled first, per session (`studio.i18n.choose`: ``?lang=ko|en``,
the sidebar switch, the browser's Accept-Language); every word below goes through ``_()``.
"""
from __future__ import annotations

import streamlit as st

from studio import webrtc

# Before anything can import TensorFlow: the live view's video library (aiortc) crashes a process
# that loaded TensorFlow first (studio/webrtc.py). Once per server process; a no-op afterwards.
webrtc.preload()

from studio import access, audience, caches, components as ui, i18n, state, widget_words  # noqa: E402
from studio.i18n import _  # noqa: E402

caches.keep_models_warm()  # no keras clear_session after each run: shared models keep their kernels

i18n.choose()  # the session's language (?lang=, the switch, the browser) before any word is shown
st.set_page_config(page_title=_("TL Studio"), page_icon=":material/model_training:", layout="wide")
widget_words.apply()  # Streamlit's own words (the uploader's, the camera's) in a Korean session

PAGES = {
    _("Studio"): [
        st.Page("views/0_Quick_start.py", url_path="quick-start", title=_("Quick start"), icon=":material/bolt:"),
        st.Page("views/1_Home.py", url_path="home", title=_("Home"), icon=":material/home:", default=True),
    ],
    _("Build"): [
        st.Page("views/2_Backbone.py", url_path="backbone", title=_("Backbone"), icon=":material/account_tree:"),
        st.Page("views/3_Layers.py", url_path="layers", title=_("Layers"), icon=":material/layers:"),
        st.Page("views/4_Data.py", url_path="data", title=_("Data"), icon=":material/photo_library:"),
    ],
    _("Train and use"): [
        st.Page("views/5_Train.py", url_path="train", title=_("Train"), icon=":material/model_training:"),
        st.Page("views/6_Evaluate.py", url_path="evaluate", title=_("Evaluate"), icon=":material/fact_check:"),
        st.Page("views/7_Predict.py", url_path="predict", title=_("Predict"), icon=":material/image_search:"),
        st.Page("views/8_Runs.py", url_path="runs", title=_("Runs"), icon=":material/history:"),
        st.Page("views/9_Search.py", url_path="search", title=_("Search"), icon=":material/grid_view:"),
    ],
}

access.guard_uploads_without_gate()  # served without server.py's gate: uploads before sign-in dropped
if audience.route(PAGES):  # opened by an audience link: that run's page only, no password, no sidebar
    caches.settle_heap()
elif not ui.signed_in():  # a password is set, and this session has not signed in (or sat idle too long)
    with st.sidebar:
        i18n.switch()  # English / 한국어, kept in the URL (?lang=)
    st.navigation([st.Page(ui.login_page, title=_("Sign in"), icon=":material/lock:")]).run()
else:
    with st.sidebar:
        i18n.switch()  # English / 한국어, kept in the URL (?lang=)
    page = st.navigation(PAGES)
    state.restore_from_url()  # a fresh session (a reload, a bookmark, a shared link): the URL's selection
    ui.reattach()
    sidebar = st.sidebar.empty()

    def draw_sidebar() -> None:
        with sidebar.container(), ui.guard(_("Drawing the sidebar")):
            ui.render_sidebar()

    with st.sidebar:
        ui.sign_out_button()  # below the selection; once per run (a button drawn twice would clash)
    draw_sidebar()  # at once, then again after the page (which may change the selection)
    try:
        with ui.routed():
            page.run()
    finally:
        draw_sidebar()
        state.write_url()
        caches.settle_heap()  # TensorFlow's objects out of the collections Streamlit runs after each rerun
