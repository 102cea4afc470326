"""Streamlit helpers shared by the studio's pages: the selection, errors, caches, sidebar.

The selection (backbone, dataset, run and every training option) lives in
``st.session_state`` under the names of `tlcore.train.TrainConfig`'s fields (plus
``run_dir``), so any page can read it, the Train page turns it into options as they are,
and repeating a run loads its recorded options straight back.
"""
from __future__ import annotations

import contextlib
import contextvars
import hmac
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import streamlit as st

from tlcore.errors import TLCoreError

LOG = logging.getLogger("tlstudio")

APP_DEFAULTS: dict[str, Any] = {"backbone": "MobileNetV2", "input_size": None, "weights": "imagenet",
                                "backbone_file": None, "data": "", "run_dir": None}
# The TrainConfig fields the app edits; everything else keeps the engine's default.
OPTION_NAMES = ("data", "backbone", "backbone_file", "preprocessing", "weights", "input_size", "cut",
                "unfreeze_from", "head_epochs", "fine_tune_epochs", "lr", "fine_tune_lr", "optimizer",
                "batch_size", "pooling", "dense", "dropout", "augment", "flip", "rotation", "zoom",
                "shift", "shear", "contrast", "val_split", "test_split", "seed", "early_stopping",
                "train_bn", "class_weights", "mixed_precision", "xla", "resize", "name", "preset")


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

    With a ``pages/`` folder, Streamlit also serves each page file directly (its older
    multipage mode, at ``/Backbone`` etc.), which would skip the password and the sidebar.
    Such a request is sent to app.py instead.
    """
    if _ROUTED.get():
        return
    from streamlit.errors import StreamlitAPIException

    try:
        st.switch_page("app.py")
    except StreamlitAPIException:  # run as a script of its own (no app.py beside it)
        pass
    st.info("Open TL Studio from its start page (streamlit run app.py).", icon=":material/home:")
    st.stop()


def defaults() -> dict[str, Any]:
    """Every selection's default: the engine's TrainConfig defaults, then the app's own."""
    from tlcore.train import TrainConfig

    return {**TrainConfig().to_dict(), **APP_DEFAULTS}


def get(name: str) -> Any:
    """The current selection `name` (its default when nothing was chosen yet)."""
    if name in st.session_state:
        return st.session_state[name]
    return defaults().get(name)


def put(name: str, value: Any) -> None:
    """Change selection `name` for every page."""
    st.session_state[name] = value


def bound(name: str, default: Any = None, valid=None, coerce=None) -> str:
    """The key of a widget that edits selection `name`, primed with the current value.

    Streamlit drops a widget's state when another page is shown; the selection itself is a
    plain session value, so a widget keyed with this starts from it on every page visit.

    Args:
        name: the selection's name.
        default: used when the selection is unset (else `defaults()`).
        valid: optional predicate; a stored value failing it is replaced by `default`.
        coerce: optional conversion of a stored value (an int where the widget wants a float).
    """
    key = f"w:{name}"
    if key not in st.session_state:
        value = st.session_state.get(name, default if default is not None else defaults().get(name))
        if coerce is not None:
            try:
                value = coerce(value)
            except (TypeError, ValueError):
                value = default
        if valid is not None and not valid(value):
            value = default
        st.session_state[key] = value
    elif valid is not None and not valid(st.session_state[key]):
        st.session_state[key] = default
    return key


def options_from_selection() -> dict[str, Any]:
    """TrainConfig options from the selection (only the fields the app edits).

    With your own model chosen (``backbone_file``), the catalog backbone, its input size and
    weights are left out (the file brings its own); otherwise the file and its preprocessing are.
    """
    d = defaults()
    options = {name: st.session_state.get(name, d.get(name)) for name in OPTION_NAMES}
    if options.get("backbone_file"):
        options.update(backbone=None, input_size=None, weights=None)
    else:
        options.update(backbone_file=None, preprocessing=None)
    return options


def load_options(options: dict[str, Any], keep: tuple[str, ...] = ()) -> None:
    """Put recorded options into the selection (a run's for "repeat with changes", a preset's).

    Every widget then starts again from the selection, except those keyed in `keep`.
    """
    for name in OPTION_NAMES:
        if name in options:
            if name == "backbone" and not options[name]:
                continue  # a run on your own model: the catalog choice stays as it was
            st.session_state[name] = options[name]
    if "backbone_file" in options or options.get("backbone"):
        st.session_state["backbone_kind"] = "file" if options.get("backbone_file") else "catalog"
    for key in [k for k in st.session_state if str(k).startswith("w:") and k not in keep]:
        del st.session_state[key]


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Show a failure of `what` as an error box where it happened, never as a traceback."""
    try:
        yield
    except TLCoreError as exc:
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:  # a bug: still plain words on the page, details in the server log
        LOG.exception("%s failed", what)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        st.error(f"{what} failed unexpectedly ({type(exc).__name__}{': ' + first if first else ''}). "
                 "Details are in the server's log.", icon=":material/error:")


def header(title: str, caption: str) -> None:
    st.title(title)
    st.caption(caption)


# --- caches ------------------------------------------------------------------------

@st.cache_resource(show_spinner=False)
def device_info() -> dict:
    """TensorFlow version, GPUs, mixed precision (imports TensorFlow once per server)."""
    from tlcore.device import describe

    return describe()


def device_info_if_loaded() -> dict | None:
    """The device info, but only if TensorFlow is imported already (the sidebar stays cheap)."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        return device_info()
    except Exception:
        return None


@st.cache_resource(show_spinner=False, max_entries=4)
def backbone_and_table(name: str, size: int):
    """A backbone built without weights, and its layer table: once per backbone and size.

    Shared by every session and read-only, except that `studio.stage_parameter_counts`
    flips `trainable` flags under its lock and restores them.
    """
    from tlcore.backbones import build_backbone
    from tlcore.layers import layer_table

    model = build_backbone(name, size, weights=None)
    return model, layer_table(model)


@st.cache_data(show_spinner=False, max_entries=256)
def stage_counts(name: str, size: int, cut: str | None, unfreeze_from: str | None, pooling: str,
                 dense: tuple[int, ...], dropout: float, num_classes: int, train_bn: bool,
                 fine_tune_epochs: int = 1) -> dict:
    from tlcore.catalog import get_backbone
    from tlcore.model import HeadSpec
    from tlcore.studio import stage_parameter_counts

    model, _ = backbone_and_table(name, size)
    counts = stage_parameter_counts(model, cut, unfreeze_from, HeadSpec(pooling, tuple(dense), dropout),
                                    num_classes, train_bn, get_backbone(name).preprocessing,
                                    fine_tune_epochs)
    return counts.to_dict()


@st.cache_resource(show_spinner=False, max_entries=4)
def backbone_file_source(path: str, stamp: int, preprocessing: str):
    """Your own model loaded and flattened (`load_backbone_file`) and its layer table.

    Keyed by the file's modification stamp, so a replaced file loads again. Shared and
    read-only like `backbone_and_table`.
    """
    from tlcore.layers import layer_table
    from tlcore.source import load_backbone_file

    source = load_backbone_file(path, preprocessing)
    return source, layer_table(source.backbone, source.paths)


@dataclass
class Chosen:
    """The backbone of the current selection, built: from the catalog or your own model file."""

    kind: str  # "catalog" or "file"
    label: str  # "MobileNetV2 at 96 px" or the file's name
    model: Any  # the uncut (flat) backbone
    table: list
    preprocessing: str
    input_size: int
    paths: dict
    default_cut: int  # the index training cuts at when no cut is chosen
    file: str | None = None
    name: str | None = None
    source: Any = None


def chosen_backbone() -> Chosen:
    """Build (once, cached) the backbone the selection names.

    Raises:
        TLCoreError: an unknown backbone, or a model file that cannot be used.
    """
    from tlcore.catalog import get_backbone
    from tlcore.studio import backbone_file_stamp

    file = get("backbone_file")
    if file:
        source, table = backbone_file_source(str(file), backbone_file_stamp(file), get("preprocessing") or "auto")
        default = source.default_cut if source.default_cut is not None else len(table) - 1
        return Chosen("file", Path(str(file)).name, source.backbone, table, source.preprocessing,
                      int(source.input_size), dict(source.paths), int(default), str(file), None, source)
    info = get_backbone(get("backbone"))
    size = int(get("input_size") or info.default_input_size)
    model, table = backbone_and_table(info.name, size)
    return Chosen("catalog", f"{info.name} at {size} px", model, table, info.preprocessing, size, {},
                  len(table) - 1, None, info.name)


@st.cache_data(show_spinner=False, max_entries=256)
def file_stage_counts(path: str, stamp: int, preprocessing: str, cut: str | None, unfreeze_from: str | None,
                      pooling: str, dense: tuple[int, ...], dropout: float, num_classes: int,
                      train_bn: bool, fine_tune_epochs: int = 1) -> dict:
    from tlcore.model import HeadSpec
    from tlcore.studio import stage_parameter_counts

    source, _ = backbone_file_source(path, stamp, preprocessing)
    counts = stage_parameter_counts(source.backbone, cut, unfreeze_from, HeadSpec(pooling, tuple(dense), dropout),
                                    num_classes, train_bn, source.preprocessing, fine_tune_epochs,
                                    paths=source.paths, default_cut=source.default_cut)
    return counts.to_dict()


def chosen_stage_counts(bb: Chosen, cut, unfreeze_from, pooling: str, dense, dropout: float, num_classes: int,
                        train_bn: bool, fine_tune_epochs: int) -> dict:
    """Parameters per stage of what training would build on `bb` (cached per choice)."""
    if bb.kind == "file":
        from tlcore.studio import backbone_file_stamp

        return file_stage_counts(bb.file, backbone_file_stamp(bb.file), get("preprocessing") or "auto", cut,
                                 unfreeze_from, pooling, tuple(dense), float(dropout), int(num_classes),
                                 bool(train_bn), int(fine_tune_epochs))
    return stage_counts(bb.name, bb.input_size, cut, unfreeze_from, pooling, tuple(dense), float(dropout),
                        int(num_classes), bool(train_bn), int(fine_tune_epochs))


def _folder_stamp(path: str) -> tuple:
    p = Path(path)
    try:
        stamps = [p.stat().st_mtime_ns]
        for child in p.iterdir():
            stamps.append(child.stat().st_mtime_ns)
            if child.is_dir():
                stamps += [c.stat().st_mtime_ns for c in child.iterdir()]
        return (len(stamps), max(stamps))
    except OSError:
        return (0, 0)


@st.cache_data(show_spinner=False, max_entries=32, ttl=600)
def _scan(path: str, val_split: float, test_split: float, seed: int, stamp: tuple):
    from tlcore.data import scan

    return scan(path, val_split, test_split, seed)


def scan(path: str, val_split: float = 0.2, test_split: float = 0.1, seed: int = 42):
    """`tlcore.data.scan`, cached until the folder changes (or ten minutes pass)."""
    return _scan(str(path), float(val_split), float(test_split), int(seed), _folder_stamp(str(path)))


def live(name: str) -> Any:
    """Selection `name` as its widget shows it right now (the widget may sit further down)."""
    return st.session_state.get(f"w:{name}", get(name))


def selected_dataset():
    """The scanned current dataset, or None (errors shown by the caller's guard)."""
    data = get("data")
    if not data:
        return None
    return scan(data, live("val_split"), live("test_split"), live("seed"))


@st.cache_resource(show_spinner=False, max_entries=8)
def run_model(run_dir: str, model_path: str, mtime_ns: int):
    """A run's model ready to classify (keyed by model file and mtime, so a newer model reloads)."""
    from tlcore.predict import RunModel

    return RunModel(run_dir)


def load_run_model(run):
    path = run.model_path()
    if path is None:
        raise TLCoreError(f"Run {run.run_id} has no model yet (state {run.state()}).")
    return run_model(str(run.path), str(path), path.stat().st_mtime_ns)


# --- runs --------------------------------------------------------------------------

def current_run():
    """The selected run, if its folder still exists."""
    from tlcore.runs import Run

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
    from tlcore.studio import newest_live_run

    try:
        run = newest_live_run()
    except OSError:
        return
    if run is not None:
        st.session_state["run_dir"] = str(run.path)


def pick_run(label: str, runs: list, key: str, help: str | None = None):
    """A select box over `runs` that starts at the selected run; returns the chosen Run."""
    from tlcore.studio import run_label

    if not runs:
        return None
    paths = [str(r.path) for r in runs]
    labels = {str(r.path): run_label(r) for r in runs}
    current = st.session_state.get("run_dir")
    wkey = f"w:{key}"
    if wkey not in st.session_state or st.session_state[wkey] not in paths:
        st.session_state[wkey] = current if current in paths else paths[0]
    chosen = st.selectbox(label, paths, key=wkey, format_func=labels.get, help=help)
    return runs[paths.index(chosen)]


STATE_BADGES = {"queued": ("queued", "gray", ":material/hourglass_empty:"),
                "running": ("running", "blue", ":material/directions_run:"),
                "completed": ("completed", "green", ":material/check_circle:"),
                "failed": ("failed", "red", ":material/error:"),
                "stopped": ("stopped", "orange", ":material/stop_circle:"),
                "interrupted": ("interrupted", "orange", ":material/warning:")}


def state_badge(state: str) -> None:
    label, colour, icon = STATE_BADGES.get(state, (state, "gray", None))
    st.badge(label, color=colour, icon=icon)


# --- sidebar and password ----------------------------------------------------------

def backbone_text() -> str:
    """'MobileNetV2 · 224 px · ImageNet weights' (or 'clf.keras · your own model') for the selection."""
    from tlcore.catalog import CATALOG

    if get("backbone_file"):
        return f"{Path(str(get('backbone_file'))).name} · your own model"
    name = get("backbone")
    size = get("input_size") or (CATALOG[name].default_input_size if name in CATALOG else "?")
    weights = get("weights")
    shown = {"imagenet": "ImageNet weights", "none": "no pretraining", None: "no pretraining"}.get(
        weights, f"weights {Path(str(weights)).name}")
    cut = f" · cut at {get('cut')}" if get("cut") else ""
    return f"{name} · {size} px · {shown}{cut}"


def render_sidebar() -> None:
    """The device summary and the current selection (backbone, dataset, run)."""
    from tlcore.studio import run_label

    st.markdown("**Current selection**")
    st.markdown(f":material/layers: {backbone_text()}")
    data = get("data")
    st.markdown(f":material/photo_library: {Path(data).name if data else '_no dataset yet_'}")
    run = current_run()
    st.markdown(f":material/monitoring: {run_label(run) if run else '_no run yet_'}")
    st.divider()
    info = device_info_if_loaded()
    if info is None:
        st.caption(":material/memory: Machine: shown once TensorFlow is loaded (Home).")
    else:
        gpus = info.get("gpus") or []
        where = ", ".join(g["name"] for g in gpus) if gpus else "CPU only"
        st.caption(f":material/memory: TensorFlow {info['tensorflow']} · {where}")


def required_password() -> str | None:
    """The password the app asks for: ``st.secrets["password"]`` or ``TLSTUDIO_PASSWORD``."""
    secret = None
    try:
        secret = st.secrets.get("password")
    except Exception:  # no secrets.toml at all
        secret = None
    return str(secret) if secret else (os.environ.get("TLSTUDIO_PASSWORD") or None)


def password_ok(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def login_page() -> None:
    """The only page shown until the password is entered."""
    st.title("TL Studio")
    st.caption("This studio is protected by a password.")
    with st.form("login"):
        given = st.text_input("Password", type="password")
        ok = st.form_submit_button("Sign in", type="primary")
    if ok:
        if password_ok(given, required_password() or ""):
            st.session_state["authenticated"] = True
            st.rerun()
        else:
            st.error("Wrong password.", icon=":material/lock:")


# --- a run's live panel (Train, Quick start) ----------------------------------------

def run_panel(run_dir: str, was_live: bool, links: bool = True) -> None:
    """The run's state, progress, charts and controls, read from the run store.

    Drawn inside a fragment that reruns every two seconds while the run is live; when it ends,
    the whole page reruns once (and stops polling).
    """
    import studio_charts as charts
    from tlcore import home, studio
    from tlcore.runs import LIVE_STATES, Run

    run = Run(run_dir)
    with guard("Reading the run"):
        status = run.status()
        state = status.get("state", "unknown")
        metrics = run.metrics()
        options = run.config().get("options") or {}
        if was_live and state not in LIVE_STATES:
            st.rerun()  # finished: redraw the whole page (and stop polling)
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        with c1:
            state_badge(state)
            st.markdown(f"**{run.run_id}**" + (f" · {studio.display_name(options['name'])}" if options.get("name") else ""))
        if state in LIVE_STATES:
            if c2.button("Stop", icon=":material/stop:", key="stop_run",
                         help="Ends within one batch; the model so far is saved."):
                run.request_stop()
            if run.stop_requested():
                st.caption("Stop requested: the run ends after the current batch and saves its model.")
        if state == "queued":
            st.info("Waiting for the machine: another training is running. This one starts when it ends.",
                    icon=":material/hourglass_empty:")
        elif state == "running":
            seen = st.session_state.get("_progress_seen")
            progress, seen = studio.epoch_progress(status, metrics, seen)
            st.session_state["_progress_seen"] = seen
            st.progress(progress["fraction"], text=progress["text"])
        elif state == "failed":
            st.error(f"The training failed: {status.get('error') or 'no reason recorded'}",
                     icon=":material/error:")
            st.caption(f"The training log is `{home.home() / 'logs' / (run.run_id + '.log')}`.")
        elif state == "interrupted":
            st.warning("The training process is gone (the machine restarted, or it was killed). Resume it "
                       "from its last checkpoint on the Runs page.", icon=":material/warning:")
        elif state == "stopped":
            st.info("Stopped on request; the model so far is saved.", icon=":material/stop_circle:")
        if metrics:
            boundary = studio.stage_boundary(metrics) or (
                studio.planned_boundary(options) if state in LIVE_STATES else None)
            st.plotly_chart(charts.training_curves(metrics, boundary, status.get("epochs_total")),
                            key=f"curves_{run.run_id}")
        elif state in LIVE_STATES:
            st.caption("The charts appear when the first epoch ends.")
        if state == "completed":
            run_results(run, metrics, links)


def run_results(run, metrics: list[dict], links: bool = True) -> None:
    from tlcore import studio

    summary = run.summary()
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Best validation accuracy", studio.format_percent(summary["val_accuracy"]), border=True)
    c2.metric("Test accuracy", studio.format_percent(summary["test_accuracy"]), border=True)
    c3.metric("Epochs", len(metrics), border=True)
    c4.metric("Time", studio.format_seconds(sum(m.get("seconds") or 0 for m in metrics)), border=True)
    if links:
        l1, l2, _ = st.columns([1, 1, 3])
        l1.page_link("pages/6_Evaluate.py", label="Evaluate", icon=":material/fact_check:")
        l2.page_link("pages/7_Predict.py", label="Try it on images", icon=":material/image_search:")


# --- predictions with Grad-CAM (Predict, Quick start) -------------------------------

_CAM_CACHE = "_gradcam"


def gradcam(rm, source, key: tuple, label: str | None = None) -> dict:
    """`explain.explain_image` for one image, kept in the session under `key` (model, image, class).

    Raises:
        TLCoreError: a model without spatial features at its cut, an unreadable image.
    """
    cache = st.session_state.setdefault(_CAM_CACHE, {})
    if key not in cache:
        from tlcore.explain import explain_image

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


def gradcam_note(cam: dict) -> str | None:
    """Why a Grad-CAM map says nothing about *where* (None when it does)."""
    if not cam.get("flat"):
        return None
    h, w = (cam.get("shape") or (0, 0))[:2]
    if h * w <= 1:
        return (f"No Grad-CAM map: the features at this run's cut are {h} × {w}, so they hold no 'where'. "
                "A larger input size or an earlier cut gives a map.")
    return "No Grad-CAM map: no feature at the cut speaks for this label (the map is flat)."


def run_stamp(run) -> tuple:
    """(run folder, model file mtime): what a Grad-CAM of this run's model is keyed by."""
    path = run.model_path()
    return (str(run.path), path.stat().st_mtime_ns if path else 0)


def model_stamp(rm) -> tuple:
    return run_stamp(rm.run)


def prediction_card(name: str, shown, top: list[dict] | None, key: str, error: str | None = None,
                    cam: dict | None = None, cam_error: str | None = None) -> None:
    """One image: the picture (and its Grad-CAM), the best label, the top-k bars."""
    import studio_charts as charts

    with st.container(border=True):
        left, right = st.columns([2 if cam is not None or cam_error else 1, 3], vertical_alignment="center")
        if error:
            left.markdown(f"**{name}**")
            right.error(f"Cannot read this image: {error}", icon=":material/broken_image:")
            return
        with left:
            if cam is not None or cam_error:
                a, b = st.columns(2)
                if shown is not None:
                    a.image(shown, width="stretch", caption=name)
                if cam is not None and gradcam_note(cam):
                    b.caption(gradcam_note(cam))
                elif cam is not None:
                    b.image(cam["overlay"], width="stretch", caption=f"Grad-CAM · {cam['label']}")
                else:
                    b.caption(cam_error)
            else:
                if shown is not None:
                    st.image(shown, width="stretch")
                st.caption(name)
        right.markdown(f"**{top[0]['label']}** · {top[0]['probability']:.1%}")
        right.plotly_chart(charts.top_k(top), key=f"top_{key}")


def show_predictions(run, files: list, k: int, with_gradcam: bool = True) -> None:
    """Classify uploaded files (or camera snaps) with a run's model; one card per file."""
    import numpy as np

    from tlcore import studio
    from tlcore.errors import TLCoreError as _Err
    from tlcore.images import ImageProblem
    from tlcore.predict import top_labels

    with guard("Classifying the images"):
        with st.spinner("Loading the model…"):
            model = load_run_model(run)
        arrays, ok, problems = [], [], {}
        for f in files:
            try:
                if hasattr(f, "seek"):
                    f.seek(0)
                arrays.append(model.load(f))
                ok.append(f)
            except ImageProblem as exc:
                problems[f.file_id] = str(exc)
        probs = model.probabilities(np.stack(arrays)) if arrays else []
        results = {f.file_id: top_labels(p, model.labels, k) for f, p in zip(ok, probs)}
        stamp = model_stamp(model)
        for f in files:
            if f.file_id in problems:
                prediction_card(f.name, None, None, f.file_id, error=problems[f.file_id])
                continue
            cam, cam_error = None, None
            if with_gradcam:
                try:
                    with st.spinner(f"Grad-CAM for {f.name}…"):
                        cam = gradcam(model, f, (*stamp, f.file_id, None))
                except _Err as exc:
                    cam_error = str(exc)
                except Exception as exc:  # a bug: the prediction still shows
                    LOG.exception("Grad-CAM failed")
                    cam_error = f"Grad-CAM failed unexpectedly ({type(exc).__name__}); see the server's log."
            prediction_card(f.name, studio.display_image(f), results[f.file_id], f.file_id, cam=cam,
                            cam_error=cam_error)


# --- the demo dataset (Data, Quick start) --------------------------------------------

DEMO_TEXT = ("Four classes of shapes (circle, square, triangle, star) drawn on textured backgrounds, "
             "150 images each, split 70/15/15: made on this machine in a few seconds, no download.")


def demo_dataset_button(key: str, primary: bool = False) -> bool:
    """A button that makes the demo dataset if missing, selects it and reruns the page."""
    from tlcore import studio

    if st.button("Use the demo dataset", key=key, type="primary" if primary else "secondary",
                 icon=":material/category:"):
        with guard("Making the demo dataset"):
            with st.spinner("Drawing the demo images…"):
                result = studio.ensure_demo_dataset(classes=4, per_class=150)
            put("data", result["path"])
            st.rerun()
    return False
