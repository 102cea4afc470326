"""Predict: drop images (or snap one), a video file, or the live camera, and see the top labels of a
run's model, with Grad-CAM; teach new classes by showing them to the camera; or classify with the
untouched ImageNet model and its 1000 classes."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import audience, caches, charts, components as ui, live, state, text
from studio.i18n import N_, _, shown
from tlcore.core.errors import TLCoreError
from tlcore.ship.imagenet import imagenet_weights
from tlcore.data.images import IMAGE_EXTENSIONS, display_image
from tlcore.core.runs import RunStore
from tlcore.ship.predict import TTA_MODES

MODES = {"run": N_("A trained run"), "teach": N_("Teach by showing"), "imagenet": N_("ImageNet (1000 classes)")}
INPUTS = {"images": N_("Images"), "video": N_("A video file"), "live": N_("Live camera")}
VIDEO_TYPES = ["mp4", "mov", "avi", "mkv", "webm"]


def images() -> list:
    """The dropped images, plus a webcam snap when the camera is on."""
    files = list(st.file_uploader(_("Images"), type=sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS),
                                  accept_multiple_files=True, key="predict_images") or [])
    if st.toggle(_("Use the webcam"), key="predict_camera_on",
                 help=_("Take a snapshot with this computer's camera (browsers allow it on localhost or HTTPS).")):
        snap = st.camera_input(_("Snap a photo to classify"), key="predict_camera")
        if snap is not None:
            files.append(snap)
    return files


def with_run() -> None:
    runs = [r for r in RunStore().runs() if r.model_path() is not None]
    if not runs:
        st.info(_("No trained model yet. Train one first, or switch to ImageNet mode."), icon=":material/model_training:")
        st.page_link("views/5_Train.py", label=_("Go to Train"), icon=":material/arrow_forward:")
        return
    c1, c2, c3, c4 = st.columns([3, 1, 1, 2], vertical_alignment="bottom")
    with c1:
        run = ui.pick_run(_("Model of run"), runs, "predict_run")
    state.put("run_dir", str(run.path))
    audience.link_panel(run)
    labels = run.labels()
    k = c2.slider(_("Top k"), 1, max(1, min(10, len(labels))), min(5, max(1, len(labels))), key=f"top_k_{len(labels)}") \
        if len(labels) > 1 else 1
    source = st.segmented_control(_("Input"), list(INPUTS), format_func=shown(INPUTS), default="images",
                                  key="predict_input", required=True)
    if source == "live":
        classifier = None
        with ui.guard(_("Loading the model")):
            from tlcore.live.classifier import Classifier

            classifier = Classifier.of_run(caches.load_run_model(run)).warm_up()
        if classifier is not None:
            live.live_view("predict", classifier, k)
        return
    if source == "video":
        with_video(run, k)
        return
    cam = c3.toggle(_("Grad-CAM"), value=True, key="predict_gradcam",
                    help=_("Beside each image, a heatmap of where the features that decided its top label lie."))
    tta = c4.selectbox(_("Test-time augmentation"), list(TTA_MODES), format_func=shown(text.TTA_LABELS),
                       key="predict_tta", help=str(text.TTA_HELP))
    files = images()
    if not files:
        st.caption(_("Classes: {labels}").format(labels=text.md(', '.join(labels))))
        return
    ui.show_predictions(run, files, k, cam, tta)


def with_video(run, k: int) -> None:
    """A video file: every N-th frame classified, the top label drawn along time."""
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    video = c1.file_uploader(_("Video"), type=VIDEO_TYPES, key="predict_video")
    every = c2.number_input(_("Every N-th frame"), 1, 1000, 5, key="predict_every",
                            help=_("1 classifies every frame; 5 one frame in five (quicker on long videos)."))
    if video is None:
        return
    with ui.guard(_("Classifying the video")):
        with st.spinner(_("Reading and classifying the frames…")):
            results = _video_results(run, video, int(every), k)
        st.caption(_("{results} frames classified, from {time} to "
                   "{time2}.").format(results=len(results), time=text.video_time(results[0]['time']), time2=text.video_time(results[-1]['time'])))
        st.plotly_chart(charts.label_timeline(results, run.labels()), key="predict_timeline")
        st.dataframe([{"frame": r["image"].rsplit("=", 1)[1], "time": text.video_time(r["time"]),
                       "label": r["top"][0]["label"], "probability": r["top"][0]["probability"]} for r in results],
                     hide_index=True, height=240,
                     column_config={"frame": _("frame"), "time": _("time"), "label": _("label"),
                                    "probability": st.column_config.ProgressColumn(_("probability"), min_value=0,
                                                                                   max_value=1)})


def _video_results(run, video, every: int, k: int) -> list[dict]:
    """The video's results, kept in the session for this file, model and sampling."""
    from tlcore.ship.video import predict_video

    key = (*ui.run_stamp(run), video.file_id, every, k)
    kept = st.session_state.get("_video_results")
    if not kept or kept[0] != key:
        video.seek(0)
        kept = (key, predict_video(caches.load_run_model(run), video, every, k, label=video.name))
        st.session_state["_video_results"] = kept
    return kept[1]


def with_imagenet() -> None:
    if state.get("backbone_file"):
        st.info(_("ImageNet mode classifies with a Keras Applications backbone and its ImageNet top; your own "
                "model has none. Choose a catalog backbone on the Backbone page."), icon=":material/info:")
        return
    name = state.get("backbone")
    try:
        weights = imagenet_weights(state.get("weights"))
    except TLCoreError:
        st.error(_("ImageNet mode classifies with the pretrained 1000-class model, but the Backbone page has no "
                 "pretrained weights chosen (None). Choose ImageNet, or upload a weights file saved with the "
                 "top, on the Backbone page."), icon=":material/error:")
        st.page_link("views/2_Backbone.py", label=_("Choose weights"), icon=":material/arrow_forward:")
        return
    shown = _("ImageNet weights") if weights == "imagenet" else _("the weights file {name}").format(name=Path(weights).name)
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    c1.caption(_("**{name}** untouched, with {shown} and its 1000-class ImageNet top, at its default input "
               "size: what the backbone saw before any transfer learning. The backbone and weights are those "
               "chosen on the Backbone page; a weights file must include the top.").format(name=name, shown=shown))
    k = c2.slider(_("Top k"), 1, 10, 5, key="imagenet_top_k")
    files = images()
    if not files:
        return
    with ui.guard(_("Classifying with {name}'s ImageNet model").format(name=name)):
        from tlcore.ship.imagenet import classify

        with st.spinner(_("Building {name} with its ImageNet top (once)…").format(name=name)):
            for f in files:
                f.seek(0)
            results = classify(name, files, weights, k)
        for f, r in zip(files, results):
            ui.prediction_card(f.name, display_image(f), r["top"], f"in_{f.file_id}", error=r.get("error"))


def main() -> None:
    ui.header(_("Predict"), _("Drop images, a video or point the camera; the model says what it sees, and where it "
              "looked. Or teach it new classes by showing them."))
    mode = st.segmented_control(_("Classify with"), list(MODES), format_func=shown(MODES), default="run",
                                key="predict_mode", required=True)
    if mode == "imagenet":
        with_imagenet()
    elif mode == "teach":
        live.teach_view()
    else:
        with_run()


ui.page_guard()
main()
