"""The selection: backbone, dataset, run and every training option the pages edit.

It lives in ``st.session_state`` under the names of `tlcore.recipe.config.TrainConfig`'s fields (plus
``run_dir``), so any page can read it, the Train page turns it into options as they are, and
repeating a run loads its recorded options straight back. Its core (`URL_KEYS`) is also
written into the URL's query parameters after every run of the app, so a reload (F5), a
bookmark or a shared link restores it (`restore_from_url`, checked by `selection_from_url`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import streamlit as st

from tlcore.recipe.config import (DEFAULTS as CONFIG_DEFAULTS, OPTION_NAMES as CONFIG_OPTION_NAMES, SCRATCH_KEYS,
                                  choices_of)
from studio.i18n import N_, _
from tlcore.core.errors import TLCoreError
from tlcore.recipe.presets import get_preset

APP_DEFAULTS: dict[str, Any] = {"backbone": "MobileNetV2", "input_size": None, "weights": "imagenet",
                                "backbone_file": None, "data": "", "run_dir": None}
# Every TrainConfig option is part of the selection, named as the engine names it.
OPTION_NAMES = CONFIG_OPTION_NAMES
# The part of the selection kept in the URL, named as TrainConfig's fields (and the run's folder).
URL_KEYS = ("data", "backbone", "backbone_file", "preprocessing", "input_size", "weights", "cut",
            "unfreeze_from", "run_dir")
URL_WORDS = {"data": N_("dataset"), "backbone": N_("backbone"), "backbone_file": N_("model file"),
             "preprocessing": N_("preprocessing"), "input_size": N_("input size"), "weights": N_("weights file"),
             "cut": N_("cut"), "unfreeze_from": N_("unfreeze point"), "run_dir": N_("run")}
MAX_URL_VALUE = 4096
_RESTORED = "_url_restored"


# --- the selection in the session ---------------------------------------------------

def defaults() -> dict[str, Any]:
    """Every selection's default: the engine's TrainConfig defaults, then the app's own."""
    return {**CONFIG_DEFAULTS, **APP_DEFAULTS}


def get(name: str) -> Any:
    """The current selection `name` (its default when nothing was chosen yet)."""
    if name in st.session_state:
        return st.session_state[name]
    return defaults().get(name)


def put(name: str, value: Any) -> None:
    """Change selection `name` for every page."""
    st.session_state[name] = value


def choices(name: str) -> list:
    """The choices a widget offers for option `name`: the engine's (`TrainConfig`), in its order."""
    return list(choices_of(name) or ())


def put_weights(value: str) -> None:
    """Choose the weights ("imagenet", "none" or a file). A switch between random and pretrained
    weights also switches the stage plan, as `tlcore train --weights none` does: nothing
    pretrained to freeze, so every layer trains from the first epoch for all the epochs
    (`tlcore.recipe.config.scratch_options`); back to pretrained weights, the engine's two stages."""
    old = get("weights")
    put("weights", value)
    if (old == "none") == (value == "none"):
        return
    from tlcore.recipe.config import scratch_options

    plan = scratch_options({k: get(k) for k in (*SCRATCH_KEYS, "lr")}) if value == "none" else defaults()
    for key in SCRATCH_KEYS:
        st.session_state[key] = plan[key]
        st.session_state.pop(f"w:{key}", None)  # its widget starts again from the new value


def live(name: str) -> Any:
    """Selection `name` as its widget shows it right now (the widget may sit further down)."""
    return st.session_state.get(f"w:{name}", get(name))


def bound(name: str, default: Any = None, valid=None, coerce=None) -> str:
    """The key of a widget that edits selection `name`, primed with the current value.

    Streamlit drops a widget's state when another page is shown; the selection itself is a
    plain session value, so a widget keyed with this starts from it on every page visit.

    Args:
        name: the selection's name.
        default: used when the selection is unset (else `defaults()`, the engine's default).
        valid: optional predicate; a stored value failing it is replaced by the default.
        coerce: optional conversion of a stored value (an int where the widget wants a float).
    """
    key = f"w:{name}"
    if default is None:
        default = defaults().get(name)
        if coerce is not None:
            try:
                default = coerce(default)
            except (TypeError, ValueError):
                pass
    if key not in st.session_state:
        value = st.session_state.get(name, default)
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


# --- the selection in the URL -------------------------------------------------------

def url_params(selection: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters that carry `selection`: every `URL_KEYS` value that is set, as text."""
    out: dict[str, str] = {}
    for key in URL_KEYS:
        value = selection.get(key)
        if value is None or value == "":
            continue
        out[key] = str(int(value)) if key == "input_size" else str(value)
    return out


def selection_from_url(params: Mapping[str, Any], roots: Sequence[str | os.PathLike]) -> tuple[dict, list[str]]:
    """The selection a link's query parameters carry, checked; and a sentence per value left out.

    A path (data, backbone_file, a weights file, run_dir) is accepted only inside one of
    `roots` (symlinks resolved) and only if it still exists; a backbone must be in the catalog,
    an input size a whole number the backbone accepts. Keys other than `URL_KEYS` are ignored.

    Args:
        params: query parameters (a value may be a list: its last element counts).
        roots: the folders paths may lie in (`tlcore.core.home.readable_roots()`).

    Returns:
        ``(values, notices)``: the accepted values by selection name, and why each other was dropped.
    """
    values: dict[str, Any] = {}
    notices: list[str] = []
    for key in URL_KEYS:
        if key not in params:
            continue
        raw = params[key]
        if isinstance(raw, (list, tuple)):
            raw = raw[-1] if raw else ""
        text = str(raw).strip()
        if not text:
            continue
        try:
            if len(text) > MAX_URL_VALUE or any(ord(c) < 32 for c in text):
                raise TLCoreError(_("not a usable value (too long, or control characters)."))
            values[key] = _CHECKS[key](text, values, roots)
        except (TLCoreError, OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            shown = text if len(text) <= 80 else text[:77] + "…"
            from studio.text import error_words

            why = error_words(exc) if isinstance(exc, TLCoreError) else _("it cannot be read on this server ({error}).").format(
                error=type(exc).__name__)
            notices.append(_("The link's {what} `{value}` is left out: {why}").format(what=URL_WORDS[key], value=shown,
                                                                                     why=why))
    return values, notices


def restore_from_url() -> None:
    """Once per browser session (a fresh one after a reload), put the URL's selection in place."""
    if st.session_state.get(_RESTORED):
        return
    st.session_state[_RESTORED] = True
    params = st.query_params.to_dict()
    if not any(key in params for key in URL_KEYS):
        return
    from tlcore.core.home import readable_roots

    values, notices = selection_from_url(params, readable_roots())
    if "weights" in values:
        put_weights(values.pop("weights"))  # first: random weights bring the from-scratch plan
    for name, value in values.items():
        st.session_state[name] = value
    if values.get("backbone_file"):
        st.session_state["backbone_kind"] = "file"
    elif values.get("backbone"):
        st.session_state["backbone_kind"] = "catalog"
    for notice in notices:
        st.toast(notice, icon=":material/link_off:")


def write_url() -> None:
    """Rewrite the URL's query parameters from the selection (Streamlit clears them on a page change)."""
    wanted = url_params({key: st.session_state.get(key) for key in URL_KEYS})
    from studio.i18n import SESSION_KEY, url_value

    if url_value():  # a language chosen by a link or the switch (not the browser's) stays in the URL
        wanted[SESSION_KEY] = url_value()
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def _path(text: str, roots, kind: str) -> str:
    from tlcore.core.home import resolve_under_roots

    resolved = resolve_under_roots(text, roots, kind)
    return text if Path(text).expanduser().is_absolute() else str(resolved)


def _check_backbone(text: str, values: dict, roots) -> str:
    from tlcore.backbones.catalog import get_backbone

    return get_backbone(text).name


def _check_input_size(text: str, values: dict, roots) -> int:
    from tlcore.backbones.build import check_input_size

    try:
        size = int(text)
    except ValueError:
        raise TLCoreError(_("input_size must be a whole number of pixels. Received: {text!r}").format(text=text)) from None
    return check_input_size(values.get("backbone") or APP_DEFAULTS["backbone"], size)


def _check_preprocessing(text: str, values: dict, roots) -> str:
    from tlcore.backbones.source import PREPROCESSING_CHOICES

    if text not in PREPROCESSING_CHOICES:
        raise TLCoreError(_("preprocessing must be one of {choices}. Received: {text!r}").format(
            choices=", ".join(PREPROCESSING_CHOICES), text=text))
    return text


def _check_weights(text: str, values: dict, roots) -> str:
    from tlcore.backbones.assets import WEIGHTS_SUFFIXES

    if text in ("imagenet", "none"):
        return text
    if not text.lower().endswith(WEIGHTS_SUFFIXES):
        raise TLCoreError(_("weights must be imagenet, none or a weights file ({suffixes}). Received: {text!r}").format(
            suffixes=", ".join(WEIGHTS_SUFFIXES), text=text))
    return _path(text, roots, "file")


def _check_backbone_file(text: str, values: dict, roots) -> str:
    from tlcore.backbones.assets import MODEL_SUFFIXES, is_weights_only

    path = _path(text, roots, "any")
    if Path(path).is_file() and (is_weights_only(path) or not path.lower().endswith(MODEL_SUFFIXES)):
        raise TLCoreError(_("backbone_file must be a model file ({suffixes}) or a SavedModel folder. "
                            "Received: {text!r}").format(suffixes=", ".join(MODEL_SUFFIXES), text=text))
    return path


def _check_data(text: str, values: dict, roots) -> str:
    return _path(text, roots, "folder")


def _check_layer(text: str, values: dict, roots) -> str:
    return text  # a layer name or index: the Layers page falls back to its default if it is unknown


def _check_run_dir(text: str, values: dict, roots) -> str:
    path = _path(text, roots, "folder")
    if not (Path(path) / "status.json").is_file():
        raise TLCoreError(_("run_dir is not a run folder (no status.json): {path}").format(path=path))
    return path


_CHECKS = {"data": _check_data, "backbone": _check_backbone, "backbone_file": _check_backbone_file,
           "preprocessing": _check_preprocessing, "input_size": _check_input_size, "weights": _check_weights,
           "cut": _check_layer, "unfreeze_from": _check_layer, "run_dir": _check_run_dir}


# --- recipes the forms start from ---------------------------------------------------

# The quick start's own choices; every other option it resets goes back to the engine's default.
QUICK_START_CHOICES = {"backbone": "MobileNetV2", "input_size": 96, "weights": "imagenet", "head_epochs": 5,
                       "fine_tune_epochs": 2, "early_stopping": 3}
QUICK_START = {**{k: CONFIG_DEFAULTS[k] for k in (
    "backbone_file", "cut", "unfreeze_from", "lr", "fine_tune_lr", "batch_size", "pooling", "dense", "dropout",
    "augment", "flip", "rotation", "train_bn", "preset")}, **QUICK_START_CHOICES}
# Without ImageNet weights nothing can be transferred, so the quick start trains a small network
# from random weights instead: the engine's `scratch-small` preset (MobileNetV2 up to block 6 at
# 64 px, every layer and BatchNorm training from the first epoch, 45 epochs).
QUICK_START_SCRATCH = dict(QUICK_START, **get_preset("scratch-small").options, preset="scratch-small")


def quick_start_options() -> dict:
    """The quick start's recommended settings: transfer learning from MobileNetV2 at 96 px when its
    ImageNet weights file is on this machine already, else a small network trained from scratch
    (`QUICK_START_SCRATCH`)."""
    from tlcore.backbones.assets import weights_status

    status = weights_status("MobileNetV2", QUICK_START["input_size"])
    return dict(QUICK_START) if status["cached"] else dict(QUICK_START_SCRATCH)


def preset_form_options(name: str, current: dict | None = None) -> dict:
    """The options a preset puts into the form (`presets.apply_preset` with nothing explicit).

    Args:
        name: the preset.
        current: the options chosen so far. With your own model chosen (``backbone_file``) the
            backbone stays: the preset's backbone, input size, weights and layer names are left
            out. A preset that changes the backbone resets what belonged to the old one (input
            size, cut, unfreeze point, a weights file) unless it sets them itself.
    """
    from tlcore.recipe.presets import apply_preset

    current = current or {}
    opts = apply_preset(name, {})
    opts.pop("preset", None)
    if current.get("backbone_file"):
        for key in ("backbone", "input_size", "weights", "cut", "unfreeze_from"):
            opts.pop(key, None)
    elif "backbone" in opts:
        for key in ("input_size", "cut", "unfreeze_from"):
            opts.setdefault(key, None)
        if opts["backbone"] != current.get("backbone") and current.get("weights") not in (None, "imagenet", "none"):
            opts.setdefault("weights", "imagenet")  # a weights file fits only the backbone it came from
    return opts
