"""Home: what the studio does, the machine, and the current selection."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import caches, components as ui, state, text
from studio.i18n import N_, _

STEPS = [
    ("views/2_Backbone.py", N_("Backbone"), ":material/account_tree:", N_("pick a pretrained model and its input size")),
    ("views/3_Layers.py", N_("Layers"), ":material/layers:", N_("choose where to cut it and where fine-tuning starts")),
    ("views/4_Data.py", N_("Data"), ":material/photo_library:", N_("bring a folder of images, one sub-folder per class")),
    ("views/5_Train.py", N_("Train"), ":material/model_training:", N_("train the head, then fine-tune, with live charts")),
    ("views/6_Evaluate.py", N_("Evaluate"), ":material/fact_check:", N_("test scores, confusion matrix, mistakes")),
    ("views/7_Predict.py", N_("Predict"), ":material/image_search:", N_("drop images and see what the model says")),
    ("views/8_Runs.py", N_("Runs"), ":material/history:", N_("compare, resume, repeat, export")),
    ("views/9_Search.py", N_("Search"), ":material/grid_view:", N_("many runs over cut, unfreeze point and other options, compared")),
]


def machine() -> None:
    st.subheader(_("This machine"))
    with ui.guard(_("Looking at the machine")):
        with st.spinner(_("Loading TensorFlow…")):
            info = caches.device_info()
        gpus = info.get("gpus") or []
        c1, c2, c3 = st.columns(3)
        c1.metric(_("TensorFlow"), info["tensorflow"], help=_("Keras {keras}").format(keras=info['keras']), border=True)
        c2.metric(_("GPUs"), len(gpus) if gpus else _("CPU only"), border=True)
        c3.metric(_("Mixed precision"), _("available") if info["mixed_precision_available"] else _("not available"),
                  help=_("float16 compute on GPUs of compute capability 7.0 or more"), border=True)
        for gpu in gpus:
            memory = f"{gpu['memory_mb']:,} MB" if gpu.get("memory_mb") else _("memory unknown")
            st.markdown(f":material/memory: **{gpu['name']}** · {memory}"
                        + (_(" · compute capability {str}").format(str='.'.join(map(str, gpu['compute_capability'])))
                           if gpu.get("compute_capability") else ""))
        if not gpus:
            st.caption(_("No GPU found: training runs on the CPU. Small backbones (MobileNet, "
                       "EfficientNetB0) and small input sizes keep it quick."))


def selection() -> None:
    st.subheader(_("Current selection"))
    c1, c2, c3 = st.columns(3)
    with c1.container(border=True):
        st.markdown(_("**Backbone**"))
        st.markdown(ui.backbone_text())
        st.page_link("views/2_Backbone.py", label=_("Change"), icon=":material/edit:")
    with c2.container(border=True):
        st.markdown(_("**Dataset**"))
        data = state.get("data")
        st.markdown(text.md(Path(data).name) if data else _("_none yet_"))
        st.page_link("views/4_Data.py", label=_("Choose data"), icon=":material/edit:")
    with c3.container(border=True):
        st.markdown(_("**Run**"))
        run = ui.current_run()
        st.markdown(f"{text.md(run.run_id)} · {text.state_word(run.state())}" if run else _("_none yet_"))
        st.page_link("views/5_Train.py", label=_("Train"), icon=":material/play_arrow:")


def main() -> None:
    ui.header(_("TL Studio"), _("Transfer learning and fine-tuning of image classifiers, point and click."))
    st.markdown(
        _("Pick a pretrained Keras backbone and see every layer of it.  \n"
        "Cut it, choose what to unfreeze, add a head, and bring a folder-per-class image dataset.  \n"
        "Train with live charts (on a GPU when there is one), evaluate, and try the model on your own images."))
    with st.container(border=True):
        c1, c2 = st.columns([1, 4], vertical_alignment="center")
        c1.page_link("views/0_Quick_start.py", label=_("Quick start"), icon=":material/bolt:")
        c2.caption(_("New here? Four steps with recommended settings: the demo dataset (or yours), a small fast "
                   "backbone, a short training with live charts, and your first predictions."))
    with st.container(border=True):
        cols = st.columns(len(STEPS))
        for col, (path, title, icon, what) in zip(cols, STEPS):
            with col:
                st.page_link(path, label=str(title), icon=icon)
                st.caption(str(what))
    selection()
    machine()


ui.page_guard()
main()
