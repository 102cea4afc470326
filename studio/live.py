"""The live view (Predict, Quick start): the camera streamed over WebRTC, classified server-side by
`tlcore.live.classifier.LiveClassifier`; its text line (the steady label of `tlcore.ship.smooth`
unless switched off), top-k bars, Grad-CAM, freeze-frame, presenter
layout; teach-by-showing (bursts, the prototype, a real training run); the snapshot fallback.

The frame callback runs in streamlit-webrtc's thread: it only hands the frame over (and draws
the last Grad-CAM on it), never calls Streamlit. The page reads the results in a fragment that
reruns twice a second.
"""
from __future__ import annotations

import gc
import html
import io
import logging

import numpy as np
import streamlit as st

from studio import components as ui, state, text, webrtc
from studio.i18n import _
from tlcore.core.errors import TLCoreError
from tlcore.ship.smooth import SECONDS as SMOOTH_SECONDS

LOG = logging.getLogger(__name__)
REFRESH = 0.5  # seconds between redraws of the label, bars and fps
CAM_EVERY = 1.0  # seconds between Grad-CAM maps
BURST_SECONDS, BURST_RATE = 3.0, 5.0


def _session(key: str):
    """(LiveClassifier, Recorder, options shared with the frame callback) of this session and view."""
    from tlcore.live.classifier import LiveClassifier, Recorder

    slot = f"_live_{key}"
    if slot not in st.session_state:
        st.session_state[slot] = (LiveClassifier(None), Recorder(BURST_SECONDS, BURST_RATE), {"cam": False})
        _freeze_heap()
    return st.session_state[slot]


def _freeze_heap() -> None:
    """The server holds a few hundred thousand objects (TensorFlow, Keras, the models); each full
    garbage collection walks them all, and the video's stream of small objects triggers one every
    few frames: seconds of pauses in every thread. Frozen, they are left out (0.1 s)."""
    gc.freeze()


def _callback(live, recorder, opts):
    from tlcore.live.classifier import blend_cam

    def on_frame(frame):
        import av

        image = frame.to_ndarray(format="rgb24")
        live.submit(image)
        recorder.offer(image)
        cam = live.cam() if opts.get("cam") else None
        if cam is None or cam.get("heatmap") is None:
            return frame
        out = av.VideoFrame.from_ndarray(blend_cam(image, cam["heatmap"]), format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    return on_frame


def _same(a, b) -> bool:
    """The same model and labels (a page builds a new Classifier on every run)."""
    if a is None or b is None:
        return a is b
    return a.probabilities == b.probabilities and a.labels == b.labels

def live_view(key: str, classifier, top_k: int = 3, allow_cam: bool = True, after=None) -> bool:
    """The camera, classified live with `classifier` (a `tlcore.live.classifier.Classifier`, or None while a
    prototype has fewer than two classes). `after(live, recorder)` runs in the refreshing
    fragment (teach-by-showing's bursts). Returns whether the camera is streaming."""
    if not webrtc.available():
        st.warning(_("No live video here: {reason} Take snapshots instead.").format(reason=webrtc.reason()), icon=":material/videocam_off:")
        snapshot_fallback(key, classifier, top_k, expanded=True)
        return False
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    live, recorder, opts = _session(key)
    if not _same(live.classifier, classifier):
        live.set_classifier(classifier)
        _freeze_heap()  # the new model's objects too
    live.top_k = max(1, int(top_k))
    c1, c2, c3 = st.columns(3)
    steady = c3.toggle(_("Steady label"), value=True, key=f"{key}_steady",
                       help=_("Averages the probabilities over the last fraction of a second, and changes the "
                              "label only once another class has led for a moment: no flicker between close "
                              "classes. Off: every frame's own label."))
    live.set_smoothing(SMOOTH_SECONDS if steady else None)
    presenter = c1.toggle(_("Presenter layout"), key=f"{key}_presenter",
                          help=_("Only the video and a large label: for a room watching the screen."))
    opts["cam"] = allow_cam and classifier is not None and classifier.model is not None and c2.toggle(
        _("Grad-CAM on the video"), key=f"{key}_cam", help=_("Once a second, where the model looked, drawn over the video."))
    live.cam_every = CAM_EVERY if opts["cam"] else None
    video, side = st.columns([3, 2] if presenter else [1, 1], vertical_alignment="top")
    with video:
        ctx = webrtc_streamer(
            key=f"{key}_webrtc", mode=WebRtcMode.SENDRECV, rtc_configuration=webrtc.rtc_configuration(),
            media_stream_constraints={"video": {"width": {"ideal": 640}}, "audio": False},
            video_frame_callback=_callback(live, recorder, opts), async_processing=True,
            translations={key: str(words) for key, words in text.LIVE_MESSAGES.items()})
    playing = bool(ctx.state.playing)
    if not playing:
        live.reset_smoothing()  # a new stream starts afresh
    with side:
        _results(key, live, recorder, playing, presenter, after)
    if not presenter:
        _frozen_cards(key)
        snapshot_fallback(key, classifier, top_k)
    return playing


@st.fragment(run_every=REFRESH)
def _results(key: str, live, recorder, playing: bool, presenter: bool, after) -> None:
    result = live.latest()
    line = text.live_line(result["top"] if result else None, live.fps())
    size = "3.4rem" if presenter else "1.6rem"
    with st.container(key=f"{key}_line"):
        st.markdown(_("<div style='font-size:{size};font-weight:700;line-height:1.2'>{line}</div>").format(size=size, line=html.escape(line)),
                    unsafe_allow_html=True)
    if live.error:
        st.caption(_("The last frame could not be classified: {error}").format(error=live.error))
    if after is not None:
        after(live, recorder)
    if presenter:
        return
    if live.classifier is None:
        st.caption(_("Nothing to classify with yet."))
    elif result is None:
        st.caption(_("Press «Start the camera» on the left; the label appears here once frames arrive. Without "
                   "a camera, with the camera refused, or in a browser without WebRTC, the box on the left says "
                   "why, and snapshots below still work.") if not playing else _("Waiting for the first frame…"))
    else:
        for item in result["top"]:
            st.progress(float(item["probability"]), text=f"{text.md(item['label'])} · {item['probability']:.0%}")
        latency = result.get("latency_ms")
        st.caption(_("Model: {model} · {classified} frames classified, {dropped} "
                   "skipped while busy").format(model=text.md(result['model']), classified=result['classified'], dropped=result['dropped']) + (_(" · {latency:.0f} ms from capture to label").format(latency=latency) if latency else ""))
        if result.get("cam") and result["cam"].get("error"):
            st.caption(_("Grad-CAM: {error}").format(error=text.error_words(result['cam']['error'])))
        if st.button(_("Freeze frame"), key=f"{key}_freeze", icon=":material/photo_camera:",
                     help=_("Keep this frame and its prediction as a card below.")):
            frozen = st.session_state.setdefault(f"_frozen_{key}", [])
            frozen.insert(0, {"frame": result["frame"], "top": result["top"], "model": result["model"]})
            del frozen[12:]
            st.rerun(scope="app")


def _frozen_cards(key: str) -> None:
    frozen = st.session_state.get(f"_frozen_{key}") or []
    if not frozen:
        return
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    c1.markdown(_("**Frozen frames**"))
    if c2.button(_("Clear"), key=f"{key}_clear_frozen", icon=":material/delete:"):
        st.session_state[f"_frozen_{key}"] = []
        st.rerun()
    for i, item in enumerate(frozen):
        ui.prediction_card(_("Frozen frame {n} · {model}").format(n=len(frozen) - i, model=item["model"]), item["frame"], item["top"],
                           f"{key}_frozen_{len(frozen) - i}")


def snapshot_fallback(key: str, classifier, top_k: int, expanded: bool = False) -> None:
    """st.camera_input: one photo per click, classified with the same classifier."""
    with st.expander(_("No live video? Take a snapshot instead"), expanded=expanded, icon=":material/photo_camera:"):
        st.caption(_("Snapshots work wherever the browser allows the camera (localhost or HTTPS), without "
                   "WebRTC. The camera, if refused or missing, is reported here by the browser."))
        snap = st.camera_input(_("Snapshot"), key=f"{key}_snapshot")
        if snap is None or classifier is None:
            return
        from tlcore.data.images import ImageProblem, display_image
        from tlcore.ship.predict import top_labels

        with ui.guard(_("Classifying the snapshot")):
            try:
                image = classifier.prepare(snap)
            except ImageProblem as exc:
                raise TLCoreError(_("The snapshot is not a usable image: {error}").format(error=exc)) from None
            probs = classifier.probabilities(image[None])[0]
            ui.prediction_card(_("Snapshot"), display_image(snap), top_labels(probs, classifier.labels, top_k),
                               f"{key}_snap_card")


# --- teach by showing ------------------------------------------------------------------

def _png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


def teach_view() -> None:
    """Name classes, record bursts, classify at once with the prototype; save it or train for real."""
    from tlcore.data.datasets import add_class, check_name, webcam_dataset
    from tlcore.live.classifier import Classifier
    from tlcore.core.runs import RunStore

    runs = [r for r in RunStore().runs() if r.model_path() is not None and r.state() == "completed"]
    choices = ["selection"] + [str(r.path) for r in runs]
    names = {"selection": _("The Backbone page's choice ({backbone})").format(backbone=ui.backbone_text()),
             **{str(r.path): _("The backbone of run {run}").format(run=text.run_label(r)) for r in runs}}
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    source = c1.selectbox(_("Features from"), choices, format_func=names.get, key="teach_source",
                          index=1 if runs else 0,
                          help=_("The prototype compares frames by this backbone's features. A run trained on "
                               "similar pictures tells new classes apart best."))
    name = c2.text_input(_("Dataset name"), value="taught", key="teach_dataset",
                         help=_("Recorded frames are kept in datasets/<name>/<class>/ for a real training run."))
    proto = None
    with ui.guard(_("Preparing the backbone")):
        root = webcam_dataset(name)
        proto = _prototype(source)
    if proto is None:
        return
    slot = st.session_state.setdefault("_teach", {})
    classifier = slot.get("classifier")
    if slot.get("proto") is not proto:
        slot.update(proto=proto, classifier=None)
        classifier = None
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    label = c1.text_input(_("Class to show"), key="teach_class", placeholder=_("e.g. mug"))
    record = c2.button(_("Record {burst_seconds:.0f} s").format(burst_seconds=BURST_SECONDS), key="teach_record", icon=":material/fiber_manual_record:",
                       type="primary", help=_("Keeps {burst_rate:.0f} frames a second for {burst_seconds:.0f} s "
                       "while you show the object from several sides.").format(burst_rate=BURST_RATE, burst_seconds=BURST_SECONDS))
    live, recorder, _frames = _session("teach")
    if record:
        with ui.guard(_("Starting the burst")):
            add_class(root, check_name(label))
            recorder.start(check_name(label))

    def after(live, recorder) -> None:
        if recorder.recording:
            st.info(_("Recording «{label}»: {count} frames…").format(label=text.md(recorder.label), count=recorder.count()), icon=":material/fiber_manual_record:")
        elif recorder.finished:
            cls, frames = recorder.take()
            with ui.guard(_("Learning the burst")):
                for frame in frames:
                    from tlcore.data.datasets import save_snap

                    save_snap(root, cls, _png(frame))
                if frames:
                    proto.add(cls, np.stack([Classifier.of_prototype(proto).prepare(f) for f in frames]))
                if proto.ready:
                    slot["classifier"] = Classifier.of_prototype(proto)
                    live.set_classifier(slot["classifier"])
                    _freeze_heap()
                slot["note"] = (_("{n} frames of «{name}» learnt.").format(n=len(frames), name=cls) if frames else
                                _("No frames arrived during the burst: start the camera first."))
            st.rerun(scope="app")  # the whole page: the buttons that need two classes, the classifier
        note = slot.pop("note", None)
        if note:
            st.toast(note, icon=":material/school:")
        counts = proto.counts
        st.caption(_("Learnt: ") + (", ".join(f"{text.md(c)} ({n} frames)" for c, n in counts.items()) if counts else
                                 _("nothing yet. Name a class, press Record and show it to the camera.")))
        _training_switch(live)

    live_view("teach", classifier, top_k=3, allow_cam=False, after=after)
    _teach_actions(proto, root)


def _prototype(source: str):
    """The session's prototype for this backbone source (built once)."""
    from tlcore.live.prototype import Prototype

    cache = st.session_state.setdefault("_teach_protos", {})
    if source not in cache:
        with st.spinner(_("Loading the backbone…")):
            cache.clear()
            cache[source] = Prototype.from_options(state.options_from_selection()) if source == "selection" \
                else Prototype.from_run(source)
    return cache[source]


def _teach_actions(proto, root) -> None:
    slot = st.session_state.setdefault("_teach", {})
    c1, c2 = st.columns(2)
    if c1.button(_("Save the prototype as a run"), key="teach_save", icon=":material/save:", disabled=not proto.ready,
                 help=_("A normal run (backbone + a Dense layer set from the class means): Predict, Evaluate and "
                      "Export work on it.")):
        with ui.guard(_("Saving the prototype")):
            run = proto.save_run(data=root)
            state.put("run_dir", str(run.path))
            st.success(_("Saved as run {run_id}.").format(run_id=run.run_id), icon=":material/check_circle:")
    if c2.button(_("Train a real run on these frames"), key="teach_train", icon=":material/model_training:",
                 disabled=not proto.ready, help=_("The Quick start's recommended recipe for this machine, on the "
                 "recorded dataset; the live view switches to the trained run when it is done.")):
        with ui.guard(_("Starting the training")):
            from tlcore.training.jobs import start_training

            options = {**state.quick_start_options(), "data": str(root)}
            run = start_training(options)
            slot["training"] = str(run.path)
            st.info(_("Training run {run_id} started.").format(run_id=run.run_id), icon=":material/model_training:")


def _training_switch(live) -> None:
    """While a run started here trains, say so; once it completes, classify live with it."""
    slot = st.session_state.get("_teach", {})
    run_dir = slot.get("training")
    if not run_dir:
        return
    from tlcore.live.classifier import Classifier
    from tlcore.core.runs import RunStore

    run = RunStore().get(run_dir)
    run_state = run.state()
    if run_state == "completed" and slot.get("switched") != run_dir:
        from studio import caches

        rm = caches.load_run_model(run)
        slot["classifier"] = Classifier.of_run(rm)
        slot["switched"] = run_dir
        live.set_classifier(slot["classifier"])
        st.toast(_("The live view now uses the trained run {run_id}.").format(run_id=run.run_id), icon=":material/check_circle:")
    elif run_state not in ("completed",):
        st.caption(_("Training run {run_id}: {run_state}.").format(run_id=run.run_id, run_state=text.state_word(run_state)))
    if slot.get("switched") == run_dir:
        st.caption(_("Classifying with the trained run {run_id}.").format(run_id=run.run_id))
