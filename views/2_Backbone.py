"""Backbone: the catalog as a sortable table (backbone, input size, weights), or your own saved model."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import caches, components as ui, state, text
from studio.i18n import N_, _, pinned, shown
from tlcore.core import home
from tlcore.backbones.assets import (backbone_file_stamp, is_weights_only, list_model_files, list_weights_files,
                           save_model_file, save_weights_file, weights_status)
from tlcore.backbones.catalog import CATALOG, get_backbone
from tlcore.backbones.source import source_summary

PREPROCESSING = {
    "tf": N_("scales pixels to [-1, 1]"),
    "caffe": N_("converts RGB to BGR and subtracts the ImageNet means"),
    "torch": N_("scales to [0, 1], then normalises with the ImageNet mean and standard deviation"),
    "none": N_("the model preprocesses 0–255 pixels itself"),
}
WEIGHT_CHOICES = {"imagenet": N_("ImageNet (pretrained)"), "none": N_("None (train from scratch)"),
                  "file": N_("Upload a weights file")}
SOURCES = {"catalog": N_("A Keras Applications backbone"), "file": N_("Your own model")}
PREPROCESSING_CHOICES = {"auto": N_("auto (from the model)"), "none": PREPROCESSING["none"],
                         "tf": PREPROCESSING["tf"], "caffe": PREPROCESSING["caffe"], "torch": PREPROCESSING["torch"]}


def catalog_table() -> None:
    from tlcore.backbones.latency import known

    st.dataframe(
        text.catalog_rows(known()), hide_index=True, height=320,
        column_config={
            "ms/image here": st.column_config.NumberColumn(
                _("ms/image here"), format="%.1f ms", help=_("Measured on this machine at the default input size, one image at a time "
                                       "(median after warm-up). Empty until measured: use the buttons below.")),
            "ms/image at batch 32": st.column_config.NumberColumn(
                _("ms/image at batch 32"), format="%.1f ms", help=_("The same, per image in batches of 32 (training, evaluation).")),
            "Model": st.column_config.TextColumn(_("Model")),
            "Size (MB)": st.column_config.NumberColumn(_("Size (MB)"), format="%.0f"),
            "Top-1 accuracy": st.column_config.NumberColumn(_("Top-1 accuracy"), format="%.1f%%", help=_("ImageNet validation")),
            "Top-5 accuracy": st.column_config.NumberColumn(_("Top-5 accuracy"), format="%.1f%%", help=_("ImageNet validation")),
            "Parameters (M)": st.column_config.NumberColumn(_("Parameters (M)"), format="%.1f M", help=_("with the ImageNet top")),
            "Depth": st.column_config.NumberColumn(_("Depth"), help=_("as Keras publishes it")),
            "Input size": st.column_config.NumberColumn(_("Input size"), format="%d px", help=_("default input size")),
            "Min input": st.column_config.NumberColumn(_("Min input"), format="%d px"),
            "Preprocessing": st.column_config.TextColumn(_("Preprocessing")),
        })
    st.caption(_("Figures as Keras publishes them in its Applications table, and the time per image measured "
               "here. Click a column to sort."))
    measure_buttons()


def measure_buttons() -> None:
    """Time the selected backbone, or every one, on this machine (cached), with a progress bar."""
    name = state.get("backbone") or _("MobileNetV2")
    c1, c2, _c3 = st.columns([2, 2, 2])
    one = c1.button(_("Measure {name} here").format(name=name), icon=":material/timer:", key="measure_one")
    every = c2.button(_("Measure all 40 (takes minutes)"), icon=":material/timer:", key="measure_all")
    from tlcore.backbones.latency import known

    mine = known().get(name)
    if mine:
        st.caption(_("{name} here: {ms_batch1:.1f} ms per image one at a time, "
                   "{ms_batch32:.1f} ms per image in batches of 32 (at {input_size} px).").format(name=name, ms_batch1=mine['ms_batch1'], ms_batch32=mine['ms_batch32'], input_size=mine['input_size']))
    if one or every:
        from tlcore.backbones.latency import measure

        bar = st.progress(0.0, text=_("Building the first backbone…"))

        def progress(i: int, n: int, current: str) -> None:
            bar.progress(i / n, text=_("Measuring {current} ({value} of {n})…").format(current=current, value=i + 1, n=n) if current else _("Done."))

        with ui.guard(_("Measuring the backbones")):
            measure([name] if one else None, on_progress=progress)
            st.rerun()


def _reset_size() -> None:
    name = st.session_state["w:backbone"]
    st.session_state["w:input_size"] = get_backbone(name).default_input_size
    for key in ("cut", "unfreeze_from"):  # layer names belong to the old backbone
        st.session_state[key] = None


def choose_backbone() -> None:
    names = list(CATALOG)
    c1, c2 = st.columns([2, 1])
    with c1:
        name = st.selectbox(
            _("Backbone"), names, key=state.bound("backbone", valid=lambda v: v in CATALOG),
            on_change=_reset_size,
            format_func=lambda n: f"{n} · {CATALOG[n].size_mb or '?'} MB"
                                  + (f" · {CATALOG[n].top1:.1%} top-1" if CATALOG[n].top1 else ""))
    info = get_backbone(name)
    with c2:
        size = st.number_input(
            _("Input size (pixels)"), min_value=info.min_input_size, max_value=2048, step=1,
            key=state.bound("input_size", info.default_input_size,
                         lambda v: isinstance(v, int) and info.min_input_size <= v <= 2048),
            help=_("{name} was trained at {default_input_size} px; it accepts {min_input_size} px or more. "
                 "Smaller is faster; larger sees more detail.").format(name=name, default_input_size=info.default_input_size, min_input_size=info.min_input_size))
    state.put("backbone", name)
    state.put("input_size", int(size))
    caches.prebuild(name, int(size))  # the Layers page will find it built
    params = _("{millions:.1f} M parameters").format(millions=info.params / 1e6) if info.params else _("parameters not published")
    st.caption(_("{family} family · {params} · preprocessing: {preprocessing} "
               "(built into the trained model).").format(family=info.family, params=params, preprocessing=str(PREPROCESSING.get(info.preprocessing, info.preprocessing))))


def imagenet_status(name: str, size: int | None) -> None:
    with ui.guard(_("Looking for the ImageNet weights")):
        with st.spinner(_("Looking for the weights file…")):
            status = weights_status(name, size)
        if status["file"] is None:
            st.warning(text.md(text.error_words(status["error"]), lines=True) if status.get("error") else _("Keras publishes no ImageNet weights for {name}.").format(name=name))
        elif status["cached"]:
            st.success(_("Already on this machine: `{path}`").format(path=status['path']), icon=":material/check_circle:")
        else:
            st.info(_("Not on this machine yet: Keras downloads `{file}` when training starts. "
                    "Without internet access, copy that file into `{folder}`, or upload it "
                    "below as a weights file.").format(file=status['file'], folder=status['folder']), icon=":material/cloud_download:")


def weights_file(name: str, size: int) -> str | None:
    saved = list_weights_files()
    upload = st.file_uploader(_("Weights file (.h5, .weights.h5, .keras)"), type=["h5", "hdf5", "keras"],
                              help=_("Saved from keras.applications.{name}, with or without its top. "
                                   "Kept in {weights_dir}.").format(name=name, weights_dir=home.weights_dir()))
    if upload is not None:
        done = st.session_state.setdefault("_weights_uploads", {})
        if upload.file_id not in done:
            with ui.guard(_("Saving the weights file")):
                done[upload.file_id] = str(save_weights_file(upload.name, upload.getvalue()))
                saved = list_weights_files()
        if upload.file_id in done:
            state.put_weights(done[upload.file_id])
    if not saved:
        st.caption(_("No weights files uploaded yet."))
        return None
    paths = [str(p) for p in saved]
    current = state.get("weights")
    chosen = st.selectbox(_("Use the file"), paths, index=paths.index(current) if current in paths else 0,
                          format_func=lambda p: Path(p).name)
    if st.button(_("Check that it fits"), icon=":material/rule:"):
        with ui.guard(_("Checking the weights file")):
            from tlcore.backbones.build import build_backbone

            with st.spinner(_("Loading it into {name}…").format(name=name)):
                build_backbone(name, size, weights=chosen)
            st.success(_("{name} fits {name2}.").format(name=text.md(Path(chosen).name), name2=name), icon=":material/check_circle:")
    return chosen


def choose_weights() -> None:
    name, size = state.get("backbone"), state.get("input_size")
    current = state.get("weights")
    kind = current if current in ("imagenet", "none") else "file"
    choice = st.radio(_("Weights"), list(WEIGHT_CHOICES), format_func=shown(WEIGHT_CHOICES), horizontal=True,
                      key=state.bound("weights_kind", kind, lambda v: v in WEIGHT_CHOICES))
    if choice == "imagenet":
        state.put_weights("imagenet")
        imagenet_status(name, size)
    elif choice == "none":
        state.put_weights("none")
        st.caption(_("Random initial weights: nothing is transferred, so expect to need far more "
                   "images and epochs. Useful as a baseline to compare pretraining against. The Train "
                   "page's plan is the from-scratch one: every layer trains from the first epoch."))
    else:
        path = weights_file(name, size)
        if path:
            state.put_weights(path)


def _adopt(path: str) -> str | None:
    """Load a model file as the backbone; the refusal in plain words, or None when it is usable."""
    from tlcore.core.errors import TLCoreError

    try:
        caches.backbone_file_source(path, backbone_file_stamp(path), state.get("preprocessing") or "auto")
    except TLCoreError as exc:
        return text.error_words(exc)
    except Exception as exc:  # a bug: plain words, details in the log
        ui.LOG.exception("Loading %s failed", path)
        return _("Loading {name} failed unexpectedly ({error}). Details are in the server's log.").format(
            name=Path(path).name, error=type(exc).__name__)
    return None


def upload_model() -> None:
    upload = st.file_uploader(_("Model file (.keras or .h5, saved with model.save)"), type=["keras", "h5", "hdf5"],
                              key="model_upload",
                              help=_("A whole Keras model, such as a classifier you trained before. Kept in "
                                   "{models_dir}.").format(models_dir=home.models_dir()))
    if upload is None:
        st.caption(_("Its layers, nested models included, become the backbone: the old head is cut off by default, "
                   "and you can cut and unfreeze anywhere inside on the Layers page."))
        return
    done = st.session_state.setdefault("_model_uploads", {})
    if upload.file_id not in done and is_weights_only(upload.name):
        done[upload.file_id] = {"error": _("{name} holds weights only, not a model. Use it as the weights "
                                           "of a Keras Applications backbone instead (Source: A Keras Applications "
                                           "backbone, then Weights: Upload a weights file).").format(name=upload.name)}
    if upload.file_id not in done:
        with ui.guard(_("Saving the model file")):
            with st.spinner(_("Loading {name} in Keras' safe mode…").format(name=upload.name)):
                path = save_model_file(upload.name, upload.getvalue())
                error = _adopt(str(path))
            if error:
                path.unlink(missing_ok=True)  # a refused model is not kept
                done[upload.file_id] = {"error": error}
            else:
                done[upload.file_id] = {"path": str(path)}
                state.put("backbone_file", str(path))
    result = done.get(upload.file_id, {})
    if result.get("error"):
        st.error(text.md(result["error"], lines=True), icon=":material/block:")
    elif result.get("path"):
        st.success(_("Saved as {path}.").format(path=text.code(result['path'])), icon=":material/check_circle:")


def savedmodel_folder() -> None:
    roots = home.data_roots()
    st.caption(_("A TensorFlow SavedModel folder (TF-Hub style) on this server, below ")
               + ", ".join(f"`{r}`" for r in roots) + _(". It is used whole and frozen: it cannot be cut."))
    path = st.text_input(_("SavedModel folder on the server"), placeholder=str(roots[0] / "my-savedmodel"),
                         key="savedmodel_path")
    if st.button(_("Use this folder"), icon=":material/folder_open:", key="use_savedmodel"):
        with ui.guard(_("Opening the SavedModel folder")):
            folder = home.resolve_under_roots(path, roots)
            with st.spinner(_("Loading the SavedModel…")):
                error = _adopt(str(folder))
            if error:
                st.error(text.md(error, lines=True), icon=":material/block:")
            else:
                state.put("backbone_file", str(folder))
                st.rerun()


def own_model() -> None:
    tabs = st.tabs([_("Upload a .keras or .h5 model"), _("SavedModel folder on this server")])
    with tabs[0]:
        upload_model()
    with tabs[1]:
        savedmodel_folder()
    current = state.get("backbone_file")
    choices = [str(p) for p in list_model_files()]
    if current and current not in choices:
        choices.insert(0, current)
    if not choices:
        st.info(_("No model yet. Upload one above; until then training uses the Keras Applications backbone "
                "({value}).").format(value=state.get('backbone')), icon=":material/upload_file:")
        return
    c1, c2 = st.columns([2, 1])
    chosen = c1.selectbox(_("Use the model"), choices, index=choices.index(current) if current in choices else 0,
                          format_func=pinned(lambda p: Path(p).name + (_("/ (SavedModel)") if Path(p).is_dir() else "")))
    pre = c2.selectbox(_("Preprocessing"), list(PREPROCESSING_CHOICES), format_func=shown(PREPROCESSING_CHOICES),
                       key=state.bound("preprocessing", "auto", lambda v: v in PREPROCESSING_CHOICES),
                       help=_("What the model expects before its first layer, given 0–255 RGB pixels. auto: "
                            "nothing when the model rescales itself, else what the Keras Applications model "
                            "it wraps expects."))
    state.put("preprocessing", pre)
    error = _adopt(chosen)
    if error:
        st.error(text.md(error, lines=True), icon=":material/block:")
        return
    state.put("backbone_file", chosen)
    with ui.guard(_("Reading the model")):
        bb = caches.chosen_backbone()
        info = source_summary(bb.source, bb.table)
        c1, c2, c3, c4 = st.columns(4)
        c1.metric(_("Layers (flattened)"), info["layers"], border=True,
                  help=_("{nested} of them come from inside nested models and are named by their path.").format(nested=info['nested']))
        c2.metric(_("Input size"), f"{info['input_size']} px", border=True)
        c3.metric(_("Preprocessing"), info["preprocessing"], border=True,
                  help=str(PREPROCESSING.get(info["preprocessing"], "")))
        c4.metric(_("Cut by default after"), f"#{info['default_cut']}", border=True,
                  help=_("The last layer with spatial features: the model's old head (pooling, dense) goes."))
        st.caption(_("Default cut after **{default_cut_name}**. ").format(default_cut_name=info['default_cut_name'])
                   + (_("Frozen as a whole: a SavedModel cannot be cut or fine-tuned layer by layer, and its "
                      "trained model loads only with this package.") if not info["portable"] else
                      _("On the Layers page you can cut and unfreeze anywhere inside.")))


def main() -> None:
    ui.header(_("Backbone"), _("The pretrained network whose features your classifier builds on."))
    kind = st.segmented_control(_("Source"), list(SOURCES), format_func=shown(SOURCES), required=True,
                                key=state.bound("backbone_kind", "file" if state.get("backbone_file") else "catalog",
                                             lambda v: v in SOURCES))
    state.put("backbone_kind", kind)
    if kind == "file":
        own_model()
    else:
        state.put("backbone_file", None)
        catalog_table()
        st.subheader(_("Your choice"))
        choose_backbone()
        choose_weights()
    st.page_link("views/3_Layers.py", label=_("Next: layers, cut and head"), icon=":material/arrow_forward:")


ui.page_guard()
main()
