"""Predict: drop images (or snap one) and see the top labels of a run's model, with Grad-CAM;
or classify with the untouched ImageNet model and its 1000 classes."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import components as ui, state, text
from tlcore.errors import TLCoreError
from tlcore.imagenet import imagenet_weights
from tlcore.images import IMAGE_EXTENSIONS, display_image
from tlcore.runs import RunStore

MODES = {"run": "A trained run", "imagenet": "ImageNet (1000 classes)"}


def images() -> list:
    """The dropped images, plus a webcam snap when the camera is on."""
    files = list(st.file_uploader("Images", type=sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS),
                                  accept_multiple_files=True, key="predict_images") or [])
    if st.toggle("Use the webcam", key="predict_camera_on",
                 help="Take a snapshot with this computer's camera (browsers allow it on localhost or HTTPS)."):
        snap = st.camera_input("Snap a photo to classify", key="predict_camera")
        if snap is not None:
            files.append(snap)
    return files


def with_run() -> None:
    runs = [r for r in RunStore().runs() if r.model_path() is not None]
    if not runs:
        st.info("No trained model yet. Train one first, or switch to ImageNet mode.", icon=":material/model_training:")
        st.page_link("views/5_Train.py", label="Go to Train", icon=":material/arrow_forward:")
        return
    c1, c2, c3, c4 = st.columns([3, 1, 1, 2], vertical_alignment="bottom")
    with c1:
        run = ui.pick_run("Model of run", runs, "predict_run")
    state.put("run_dir", str(run.path))
    labels = run.labels()
    k = c2.slider("Top k", 1, max(1, min(10, len(labels))), min(5, max(1, len(labels))), key=f"top_k_{len(labels)}") \
        if len(labels) > 1 else 1
    cam = c3.toggle("Grad-CAM", value=True, key="predict_gradcam",
                    help="Beside each image, a heatmap of where the features that decided its top label lie.")
    tta = c4.selectbox("Test-time augmentation", list(text.TTA_LABELS), format_func=text.TTA_LABELS.get,
                       key="predict_tta", help=text.TTA_HELP)
    files = images()
    if not files:
        st.caption(f"Classes: {', '.join(labels)}")
        return
    ui.show_predictions(run, files, k, cam, tta)


def with_imagenet() -> None:
    if state.get("backbone_file"):
        st.info("ImageNet mode classifies with a Keras Applications backbone and its ImageNet top; your own "
                "model has none. Choose a catalog backbone on the Backbone page.", icon=":material/info:")
        return
    name = state.get("backbone")
    try:
        weights = imagenet_weights(state.get("weights"))
    except TLCoreError:
        st.error("ImageNet mode classifies with the pretrained 1000-class model, but the Backbone page has no "
                 "pretrained weights chosen (None). Choose ImageNet, or upload a weights file saved with the "
                 "top, on the Backbone page.", icon=":material/error:")
        st.page_link("views/2_Backbone.py", label="Choose weights", icon=":material/arrow_forward:")
        return
    shown = "ImageNet weights" if weights == "imagenet" else f"the weights file {Path(weights).name}"
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    c1.caption(f"**{name}** untouched, with {shown} and its 1000-class ImageNet top, at its default input "
               "size: what the backbone saw before any transfer learning. The backbone and weights are those "
               "chosen on the Backbone page; a weights file must include the top.")
    k = c2.slider("Top k", 1, 10, 5, key="imagenet_top_k")
    files = images()
    if not files:
        return
    with ui.guard(f"Classifying with {name}'s ImageNet model"):
        from tlcore.imagenet import classify

        with st.spinner(f"Building {name} with its ImageNet top (once)…"):
            for f in files:
                f.seek(0)
            results = classify(name, files, weights, k)
        for f, r in zip(files, results):
            ui.prediction_card(f.name, display_image(f), r["top"], f"in_{f.file_id}", error=r.get("error"))


def main() -> None:
    ui.header("Predict", "Drop images or snap one; the model says what it sees, and where it looked.")
    mode = st.segmented_control("Classify with", list(MODES), format_func=MODES.get, default="run",
                                key="predict_mode", required=True)
    if mode == "imagenet":
        with_imagenet()
    else:
        with_run()


ui.page_guard()
main()
