"""The audience page: one run's model for a room of phones, opened by an audience link (made on the
Predict page; `studio.audience` routes it). Drop or snap a photo and see the label, Grad-CAM on tap;
or the live camera, rate-limited. No sidebar, no other run, no training, no file system."""
from __future__ import annotations

import streamlit as st

from studio import audience, components as ui, live, text
from studio.i18n import N_, _, shown
from tlcore.core.runs import Run
from tlcore.data.images import IMAGE_EXTENSIONS

INPUTS = {"photo": N_("Photo"), "live": N_("Live camera")}


def photo() -> object | None:
    """The newest image: a snap when the camera is on and has one, else the dropped file."""
    dropped = st.file_uploader(_("Drop or choose a photo"), type=sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS),
                               key="audience_image")
    if st.toggle(_("Use the camera"), key="audience_camera_on",
                 help=_("Take a photo with this device's camera (the browser asks first; over HTTPS only).")):
        snap = st.camera_input(_("Snap a photo"), key="audience_camera")
        if snap is not None:
            return snap
    return dropped


def main() -> None:
    link = audience.current_link()
    if link is None:
        st.stop()
    run = Run(link.run_dir)
    name = text.display_name((run.config().get("options") or {}).get("name")) or run.run_id
    st.title(name)
    with ui.guard(_("Loading the model")):
        shared = audience.shared_model(link)
        labels = shared.model.labels
        st.caption(_("What does the model see? It knows {n} classes: {labels}.").format(
            n=len(labels), labels=text.md(", ".join(labels))))
        source = st.segmented_control(_("Input"), list(INPUTS), format_func=shown(INPUTS), default="photo",
                                      key="audience_input", required=True, label_visibility="collapsed")
        if source == "live":
            live.live_view("audience", audience.live_classifier(shared), audience.TOP_K, allow_cam=False)
            return
        image = photo()
        if image is None:
            return
        audience.show_result(shared, image, audience.classify(shared, image))


st.set_page_config(page_title=_("TL Studio · audience"), layout="centered", initial_sidebar_state="collapsed")
ui.page_guard()
main()
