"""Quick start: the shortest path from images to a model that answers, with recommended settings.

Four steps on one page (data, backbone, train, predict); each says what its full page would
let you change, and links to it.
"""
from __future__ import annotations

import streamlit as st

from studio import caches, components as ui, state, text
from studio.i18n import _
from tlcore.backbones.assets import weights_status
from tlcore.data.datasets import dataset_size, list_datasets
from tlcore.core.runs import LIVE_STATES

BACKBONE_KEYS = ("backbone", "input_size", "weights", "backbone_file", "cut", "unfreeze_from")
QUICK_START_SIZE = state.QUICK_START["input_size"]


def step(number: int, title: str, done: bool) -> None:
    icon = ":material/check_circle:" if done else ":material/radio_button_unchecked:"
    st.markdown(f"### {icon} {number} · {title}")


def data_step():
    ds = None
    if state.get("data"):
        with ui.guard(_("Reading the dataset")):
            ds = caches.selected_dataset()
    with st.container(border=True):
        step(1, _("Data"), ds is not None)
        if ds is not None:
            total = dataset_size(ds.counts())
            st.markdown(_("**{name}**: {total} images in {classes} classes "
                        "({classes2}{value}).").format(name=text.md(ds.root.name), total=total, classes=len(ds.classes), classes2=text.md(', '.join(ds.classes[:8])), value='…' if len(ds.classes) > 8 else ''))
        else:
            st.markdown(_("Images in one folder per class. No dataset yet: take the demo one, or one imported before."))
        c1, c2 = st.columns(2, gap="large")
        with c1:
            ui.demo_dataset_button("qs_demo", primary=ds is None)
            st.caption(str(text.DEMO_TEXT))
        sets = list_datasets()
        if sets:
            with c2:
                paths = [d["path"] for d in sets]
                current = state.get("data")
                chosen = st.selectbox(_("Or an imported dataset"), paths, key="qs_dataset",
                                      index=paths.index(current) if current in paths else 0,
                                      format_func=lambda p: next(d["name"] for d in sets if d["path"] == p))
                if st.button(_("Use this dataset"), key="qs_use_dataset", icon=":material/check:"):
                    state.put("data", chosen)
                    st.rerun()
        st.page_link("views/4_Data.py", label=_("Data page: upload a folder or a .zip, open a server folder, snap "
                     "webcam pictures, set the splits and the augmentation"), icon=":material/photo_library:")
    return ds


def backbone_step() -> None:
    recommended = state.quick_start_options()
    if "backbone" not in st.session_state and "w:backbone" not in st.session_state \
            and not st.session_state.get("_qs_applied"):
        state.load_options(recommended)  # a fresh session: start from the recommendation
        st.session_state["_qs_applied"] = True
    current = state.options_from_selection()
    matches = all(current.get(k) == recommended.get(k) for k in BACKBONE_KEYS)
    with st.container(border=True):
        step(2, _("Backbone"), True)
        if recommended["weights"] == "imagenet":
            st.markdown(_("Recommended: **MobileNetV2 at 96 px** with its ImageNet weights (already on this "
                        "machine): small (3.5 M parameters) and quick on a CPU; stage 1 trains the head for 5 "
                        "epochs, stage 2 fine-tunes the last third for 2."))
        else:
            status = weights_status("MobileNetV2", QUICK_START_SIZE)
            st.markdown(_("Recommended here: **MobileNetV2 cut at `{cut}` (its first "
                        "blocks), at {input_size} px, trained from scratch** for "
                        "{fine_tune_epochs} epochs, every layer at once, with flips and "
                        "rotations: about 2 to 3 minutes on a 2-core CPU, and close to 90% right on the "
                        "demo shapes.").format(cut=recommended['cut'], input_size=recommended['input_size'], fine_tune_epochs=recommended['fine_tune_epochs']))
            st.info(_("No ImageNet weights are on this machine, so nothing can be transferred yet: this small "
                    "network learns from your images alone. That is enough for the demo shapes, not for "
                    "photos. For transfer learning, copy "
                    "`{file}` into `{folder}` (Keras downloads it there when online): "
                    "this step then recommends fine-tuning the pretrained MobileNetV2. The Backbone page "
                    "also takes any weights file you upload.").format(file=status['file'], folder=status['folder']), icon=":material/info:")
        if matches:
            st.caption(_("In use: {backbone_text}.").format(backbone_text=text.md(ui.backbone_text())))
        else:
            c1, c2 = st.columns([3, 2], vertical_alignment="center")
            c1.markdown(_("Your selection: **{backbone_text}**.").format(backbone_text=text.md(ui.backbone_text())))
            if c2.button(_("Use the recommended settings"), key="qs_recommended", icon=":material/auto_awesome:"):
                state.load_options(recommended)
                st.rerun()
        c1, c2 = st.columns(2)
        c1.page_link("views/2_Backbone.py", label=_("Backbone page: any of 40 backbones, input size, weights, "
                     "or your own model"), icon=":material/account_tree:")
        c2.page_link("views/3_Layers.py", label=_("Layers page: where to cut, what to unfreeze, the head"),
                     icon=":material/layers:")


live_panel = st.fragment(run_every=2)(ui.run_panel)


def train_step(ready: bool):
    run = ui.current_run()
    with st.container(border=True):
        step(3, _("Train"), run is not None and run.state() == "completed")
        c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
        head = c1.number_input(_("Head epochs (stage 1)"), 0, 1000, step=1, key=state.bound("head_epochs"))
        fine = c2.number_input(_("Fine-tuning epochs (stage 2)"), 0, 1000, step=1, key=state.bound("fine_tune_epochs"))
        state.put("head_epochs", int(head))
        state.put("fine_tune_epochs", int(fine))
        if c3.button(_("Start training"), key="qs_start", type="primary", icon=":material/play_arrow:",
                     disabled=not ready, help=None if ready else _("Choose a dataset first (step 1).")):
            with ui.guard(_("Starting the training")):
                from tlcore.training.jobs import start_training

                with st.spinner(_("Starting a training process…")):
                    run = start_training(state.options_from_selection())
                state.put("run_dir", str(run.path))
                st.rerun()
        if run is not None:
            if run.state() in LIVE_STATES:
                live_panel(str(run.path), True, False)
            else:
                ui.run_panel(str(run.path), False, False)
        st.page_link("views/5_Train.py", label=_("Train page: presets, a learning-rate finder, optimizer, batch "
                     "size, early stopping, a from-scratch comparison"), icon=":material/model_training:")
    return run


def predict_step(run) -> None:
    usable = run is not None and run.state() not in LIVE_STATES and run.model_path() is not None
    with st.container(border=True):
        title = st.empty()  # the step's tick shows once something was predicted
        files, streaming = [], False
        if not usable:
            st.caption(_("Once the model is trained, drop an image here, snap one, or turn on the live camera to "
                       "see what it says."))
        else:
            files = list(st.file_uploader(_("Drop images"), type=["png", "jpg", "jpeg", "webp", "bmp", "gif"],
                                          accept_multiple_files=True, key="qs_images") or [])
            if st.toggle(_("Use the webcam"), key="qs_camera_on"):
                snap = st.camera_input(_("Snap a photo"), key="qs_camera")
                if snap is not None:
                    files.append(snap)
            if files:
                ui.show_predictions(run, files, min(3, max(1, len(run.labels()))), with_gradcam=True)
            if st.toggle(_("Live camera"), key="qs_live_on", help=_("Classify the camera's video continuously.")):
                from studio import live
                from tlcore.live.classifier import Classifier

                with ui.guard(_("Loading the model")):
                    classifier = Classifier.of_run(caches.load_run_model(run)).warm_up()
                    streaming = live.live_view("qs", classifier, min(3, max(1, len(run.labels()))))
        with title.container():
            step(4, _("Predict"), bool(files) or streaming)
        c1, c2 = st.columns(2)
        c1.page_link("views/7_Predict.py", label=_("Predict page: videos, teach by showing, ImageNet mode"),
                     icon=":material/image_search:")
        c2.page_link("views/6_Evaluate.py", label=_("Evaluate page: test scores, confusion matrix, calibration, "
                     "top losses"), icon=":material/fact_check:")


def main() -> None:
    ui.header(_("Quick start"), _("From a folder of images to a model that answers, in four steps with "
              "recommended settings."))
    ds = data_step()
    backbone_step()
    run = train_step(ds is not None)
    predict_step(run)


ui.page_guard()
main()
