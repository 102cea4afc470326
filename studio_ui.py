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
from pathlib import Path
from typing import Any, Iterator

import streamlit as st

from tlcore.errors import TLCoreError

LOG = logging.getLogger("tlstudio")

APP_DEFAULTS: dict[str, Any] = {"backbone": "MobileNetV2", "input_size": None, "weights": "imagenet",
                                "data": "", "run_dir": None}
# The TrainConfig fields the app edits; everything else keeps the engine's default.
OPTION_NAMES = ("data", "backbone", "weights", "input_size", "cut", "unfreeze_from", "head_epochs",
                "fine_tune_epochs", "lr", "fine_tune_lr", "optimizer", "batch_size", "pooling",
                "dense", "dropout", "augment", "flip", "rotation", "zoom", "shift", "shear",
                "contrast", "val_split", "test_split", "seed", "early_stopping", "train_bn",
                "class_weights", "mixed_precision", "xla", "resize", "name")


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
    """TrainConfig options from the selection (only the fields the app edits)."""
    d = defaults()
    return {name: st.session_state.get(name, d.get(name)) for name in OPTION_NAMES}


def load_options(options: dict[str, Any]) -> None:
    """Put a run's recorded options into the selection (for "repeat with changes")."""
    for name in OPTION_NAMES:
        if name in options:
            st.session_state[name] = options[name]
    for key in [k for k in st.session_state if str(k).startswith("w:")]:
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
    """'MobileNetV2 · 224 px · ImageNet weights' for the current selection."""
    from tlcore.catalog import CATALOG

    name = get("backbone")
    size = get("input_size") or (CATALOG[name].default_input_size if name in CATALOG else "?")
    weights = get("weights")
    shown = {"imagenet": "ImageNet weights", "none": "no pretraining", None: "no pretraining"}.get(
        weights, f"weights {Path(str(weights)).name}")
    return f"{name} · {size} px · {shown}"


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
