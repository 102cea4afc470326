"""Data: upload a folder or a .zip, a server folder, the demo dataset or webcam snaps; the scan; splits;
augmentation."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import access, caches, charts, components as ui, health, state, text
from studio.i18n import N_, _, pinned
from tlcore.core import home
from tlcore.data.augment import augmentation_options
from tlcore.data.datasets import (add_class, dataset_size, delete_snap, list_datasets, sample_files, save_snap,
                             snap_counts, snaps, webcam_dataset)
from tlcore.data.images import thumbnail
from tlcore.data.importer import import_uploaded_folder, import_uploaded_zip

AUG_FIELDS = {  # name: (label, min, max, step, help)
    "rotation": (N_("Rotation (degrees)"), 0.0, 180.0, 5.0, N_("random rotation up to this many degrees either way")),
    "zoom": (N_("Zoom"), 0.0, 0.5, 0.05, N_("random zoom in or out by up to this fraction")),
    "shift": (N_("Shift"), 0.0, 0.5, 0.05, N_("random shift by up to this fraction of the width and height")),
    "shear": (N_("Shear"), 0.0, 0.5, 0.05, N_("random shear by up to this fraction")),
    "contrast": (N_("Contrast"), 0.0, 0.5, 0.05, N_("random contrast change by up to this fraction")),
}
SPLIT_IMAGES = {"train": N_("Train images"), "validation": N_("Validation images"), "test": N_("Test images")}
# the augmentation in effect, as its options and values read (English: the names themselves)
IN_EFFECT = {"flip": N_("flip"), "rotation": N_("rotation"), "zoom": N_("zoom"), "shift": N_("shift"),
             "shear": N_("shear"), "contrast": N_("contrast"), "horizontal": N_("horizontal"),
             "vertical": N_("vertical"), "both": N_("both")}
PRESET_HELP = {"none": N_("no augmentation"), "light": N_("flips, small rotations and zoom"),
               "strong": N_("the classic tutorial recipe: rotation 40, shifts, shear, zoom, flips, contrast"),
               "randaugment": N_("Keras RandAugment: two random operations per image (colour, geometry); "
                                 "needs the images every epoch, so no feature cache in stage 1")}


def show_import(result: dict) -> None:
    total = dataset_size(result["counts"])
    st.success(_("Imported **{name}**: {total} images in {classes} "
               "classes ({classes2}{value}).").format(name=text.md(Path(result['path']).name), total=total, classes=len(result['classes']), classes2=text.md(', '.join(result['classes'][:8])), value='…' if len(result['classes']) > 8 else ''),
               icon=":material/check_circle:")
    if result.get("problems"):
        with st.expander(_("{problems} file(s) not imported").format(problems=len(result['problems']))):
            st.dataframe(text.problem_rows(result["problems"]), hide_index=True, column_config={"file": _("File"), "reason": _("Why")})


def upload_folder() -> None:
    files = st.file_uploader(_("Drop a folder of class folders (or with train/ validation/ test/)"),
                             accept_multiple_files="directory", key="upload_folder")
    if not files:
        st.caption(_("Each sub-folder is a class: `cats/`, `dogs/`… or `train/cats/`, `validation/cats/`… ")
                   + text.upload_limit(access.upload_limit_bytes()))
        return
    st.caption(_("{files} files ready, {value}.").format(files=len(files), value=text.format_bytes(sum((f.size for f in files)))))
    batch = tuple(sorted(f.file_id for f in files))
    done = st.session_state.setdefault("_folder_imports", {})
    if batch in done:
        show_import(done[batch])
    elif st.button(_("Import this folder"), type="primary", icon=":material/upload:"):
        with ui.guard(_("Importing the folder")):
            with st.spinner(_("Copying and checking every image…")):
                result = import_uploaded_folder([(f.name, f.getvalue()) for f in files])
            done[batch] = result
            state.put("data", result["path"])
            st.rerun()


def upload_zip() -> None:
    upload = st.file_uploader(_("Drop a .zip of the dataset"), type=["zip"], key="upload_zip")
    if upload is None:
        st.caption(_("A zip of one folder per class, or of train/ validation/ test/ folders. A single "
                   "top folder inside is fine. ") + text.upload_limit(access.upload_limit_bytes()))
        return
    done = st.session_state.setdefault("_zip_imports", {})
    if upload.file_id not in done:
        with ui.guard(_("Importing {name}").format(name=text.md(upload.name))):
            with st.spinner(_("Unpacking {name} and checking every image…").format(name=text.md(upload.name))):
                result = import_uploaded_zip(upload.name, upload.getvalue())
            done[upload.file_id] = result
            state.put("data", result["path"])
            st.rerun()
    if upload.file_id in done:
        show_import(done[upload.file_id])


def server_folder() -> None:
    roots = home.data_roots()
    st.caption(_("Readable folders on this server: ") + ", ".join(text.code(r) for r in roots)
               + _(" (set `TLCORE_DATA_ROOTS` to change them)."))
    path = st.text_input(_("Folder path on the server"), placeholder=str(roots[0] / "my-dataset"),
                         key="server_path")
    if st.button(_("Use this folder"), icon=":material/folder_open:"):
        with ui.guard(_("Opening the folder")):
            folder = home.resolve_under_roots(path, roots)
            caches.scan(str(folder))  # refuse a folder that is not a dataset before selecting it
            state.put("data", str(folder))
            st.rerun()


def imported() -> None:
    sets = list_datasets()
    if not sets:
        st.caption(_("No imported datasets yet."))
        return
    paths = [d["path"] for d in sets]
    labels = {d["path"]: f"{d['name']} · {text.format_bytes(d['bytes'])}" for d in sets}
    current = state.get("data")
    chosen = st.selectbox(_("Imported datasets"), paths, format_func=labels.get,
                          index=paths.index(current) if current in paths else 0)
    if st.button(_("Use this dataset"), icon=":material/check:"):
        state.put("data", chosen)
        st.rerun()


def demo() -> None:
    st.caption(str(text.DEMO_TEXT))
    ui.demo_dataset_button("demo_tab")


def webcam() -> None:
    st.caption(_("Make a dataset with this computer's camera: add a class per kind of object, choose one, snap "
               "a picture at a time. Snaps are kept as `<class>/<n>.png` in a dataset folder of its own."))
    c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
    name = c1.text_input(_("Dataset name"), value="webcam", key="cam_dataset")
    root = None
    with ui.guard(_("Opening the webcam dataset")):
        root = webcam_dataset(name)
    if root is None:
        return
    with c2.form("cam_add_class", clear_on_submit=True, border=False):
        f1, f2 = st.columns([3, 1], vertical_alignment="bottom")
        new = f1.text_input(_("New class"), placeholder=_("e.g. mug, keys, pen"), key="cam_new_class")
        if f2.form_submit_button(_("Add class"), icon=":material/add:"):
            with ui.guard(_("Adding the class")):
                add_class(root, new)
    counts = snap_counts(root)
    if not counts:
        st.caption(_("No classes yet: add at least two."))
        return
    if st.session_state.get("cam_class") not in counts:
        st.session_state["cam_class"] = list(counts)[0]
    cls = st.session_state["cam_class"]
    selector = st.container()  # drawn after the snap is filed, so its counts include it
    if st.toggle(_("Turn the camera on"), key="cam_on",
                 help=_("The browser asks for the camera once; it works on localhost or over HTTPS.")):
        snap = st.camera_input(_("Snap a picture of {cls}").format(cls=text.md(cls)), key="cam_snap")
        saved = st.session_state.setdefault("_snaps_saved", {})
        if snap is not None and snap.file_id not in saved:
            with ui.guard(_("Saving the snap")):
                saved[snap.file_id] = str(save_snap(root, cls, snap.getvalue()))
                counts = snap_counts(root)
                st.toast(_("Added to {cls} ({counts} now).").format(cls=text.md(cls), counts=counts[cls]))
    with selector:
        st.segmented_control(_("Snap into"), list(counts), key="cam_class", required=True,
                             format_func=lambda c: f"{text.md(c)} · {counts.get(c, 0)}")
    pictures = snaps(root, cls)
    st.markdown(_("**{cls}**: {pictures} snap{value}").format(cls=text.md(cls), pictures=len(pictures), value='s' if len(pictures) != 1 else '')
                + (_(" (a few dozen per class give a usable model)") if len(pictures) < 20 else ""))
    shown = pictures[-12:]
    cols = st.columns(6)
    for i, path in enumerate(shown):
        with cols[i % 6]:
            img = thumbnail(path, 96)
            if img is not None:
                st.image(img, width="stretch", caption=path.name)
            if st.button(_("Delete"), key=f"del_snap_{cls}_{path.name}", icon=":material/delete:"):
                with ui.guard(_("Deleting the snap")):
                    delete_snap(root, path)
                    st.rerun()
    if len(pictures) > len(shown):
        st.caption(_("The last {shown} of {pictures}.").format(shown=len(shown), pictures=len(pictures)))
    ready = sum(1 for n in counts.values() if n) >= 2
    if st.button(_("Use this dataset"), key="cam_use", icon=":material/check:", disabled=not ready,
                 help=None if ready else _("Needs snaps in at least two classes.")):
        state.put("data", str(root))
        st.rerun()


def report(ds) -> None:
    counts = ds.counts()
    st.subheader(_("Dataset: {name}").format(name=text.md(ds.root.name)))
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(_("Classes"), len(ds.classes), border=True)
    for col, split in zip((c2, c3, c4), ("train", "validation", "test")):
        col.metric(str(SPLIT_IMAGES.get(split, split)), sum(counts[split].values()), border=True)
    st.caption(_("{root} · layout: ").format(root=text.code(ds.root))
               + (_("split folders (train/validation/test)") if ds.layout == "split" else _("one folder per class, split here")))
    if ds.warnings:
        st.warning("\n".join(f"- {text.md(text.error_words(w))}" for w in ds.warnings), icon=":material/warning:")
    st.plotly_chart(charts.class_counts(counts), key="class_counts")
    st.markdown(_("**Samples**"))
    samples = sample_files(ds, per_class=8)
    for cls in ds.classes[:20]:
        images = [img for img in (thumbnail(p, 96) for p in samples[cls]) if img is not None]
        label, pics = st.columns([1, 6], vertical_alignment="center")
        label.markdown(_("**{cls}**  \n{value} images").format(cls=text.md(cls), value=sum((counts[s][cls] for s in counts))))
        if images:
            pics.image(images, width=72)
        else:
            pics.caption(_("no readable images"))
    if len(ds.classes) > 20:
        st.caption(_("Samples of the first 20 of {classes} classes.").format(classes=len(ds.classes)))
    if ds.problems:
        with st.expander(_("{problems} file(s) skipped").format(problems=len(ds.problems)), icon=":material/block:"):
            st.dataframe(text.problem_rows(ds.problems), hide_index=True, column_config={"file": _("File"), "reason": _("Why")})
    else:
        st.caption(_("No files skipped."))


def split_settings(layout: str | None) -> None:
    st.subheader(_("Splits and resizing"))
    c1, c2, c3, c4 = st.columns(4)
    disabled = layout == "split"
    val = c1.slider(_("Validation share"), 0.0, 0.5, step=0.05, key=state.bound("val_split"), disabled=disabled)
    test = c2.slider(_("Test share"), 0.0, 0.5, step=0.05, key=state.bound("test_split"), disabled=disabled)
    seed = c3.number_input(_("Seed"), min_value=0, max_value=2 ** 31 - 1, step=1, key=state.bound("seed"),
                           help=_("The same seed gives the same split and augmentation."))
    resize = c4.selectbox(_("Resize images by"), state.choices("resize"), key=state.bound("resize"),
                          help=_("stretch: to a square, ignoring the aspect ratio · pad: black borders · "
                               "crop: the centre square"))
    if disabled:
        st.caption(_("The dataset has split folders, so they are used as they are and the shares are ignored."))
    if val + test >= 0.9:
        st.error(_("Validation and test together must leave most images for training (below 90%)."))
    else:
        state.put("val_split", float(val))
        state.put("test_split", float(test))
    state.put("seed", int(seed))
    state.put("resize", resize)


def _new_preset() -> None:
    for name in ("flip", *AUG_FIELDS):
        st.session_state[name] = None
        st.session_state.pop(f"w:{name}", None)


def augmentation(ds) -> None:
    st.subheader(_("Augmentation (training images only)"))
    preset = st.segmented_control(_("Preset"), state.choices("augment"), key=state.bound("augment"),
                                  on_change=_new_preset, required=True,
                                  format_func=pinned(lambda p: {"randaugment": "RandAugment", "none": _("None"), "light": _("Light"),
                                                                "strong": _("Strong")}.get(p, p.capitalize())))
    preset = preset or state.defaults()["augment"]
    state.put("augment", preset)
    st.caption(str(PRESET_HELP.get(preset, "")))
    base = augmentation_options(preset)
    with st.expander(_("Fine-tune the augmentation"), icon=":material/tune:"):
        cols = st.columns(3)
        flip_default = {"horizontal_and_vertical": "both"}.get(base.get("flip"), base.get("flip") or "none")
        flips = state.choices("flip")
        flip = cols[0].selectbox(_("Flip"), flips, key=state.bound("flip", flip_default, lambda v: v in flips))
        state.put("flip", None if flip == flip_default else flip)
        for i, (name, (label, lo, hi, step, help_)) in enumerate(AUG_FIELDS.items(), start=1):
            default = float(base.get(name, 0.0))
            value = cols[i % 3].slider(str(label), lo, hi, step=step, help=str(help_),
                                       key=state.bound(name, default, lambda v: isinstance(v, float), float))
            state.put(name, None if value == default else float(value))
    options = augmentation_options(preset, **{k: state.get(k) for k in ("flip", *AUG_FIELDS)})
    st.caption(_("In effect: ") + (", ".join(f"{IN_EFFECT.get(k, k)} {IN_EFFECT.get(v, v) if isinstance(v, str) else v}"
                                            for k, v in options.items()) or _("nothing")))
    if ds is None or not options:
        return
    samples = [paths[0] for paths in sample_files(ds, per_class=1).values() if paths][:2]
    c1, c2 = st.columns([5, 1], vertical_alignment="bottom")
    c1.markdown(_("**Preview**"))
    if c2.button(_("New samples"), icon=":material/casino:"):
        st.session_state["_aug_seed"] = st.session_state.get("_aug_seed", 0) + 1
    with ui.guard(_("Previewing the augmentation")):
        for path in samples:
            original, variants = caches.augmentation_preview(path, options, n=5,
                                                             seed=st.session_state.get("_aug_seed", 0))
            if original is None:
                continue
            st.image([original, *variants], width=110, caption=[_("original")] + [_("augmented")] * len(variants))


def main() -> None:
    ui.header(_("Data"), _("A folder of images with one sub-folder per class: upload it, or point to it on the server."))
    if not state.get("data") and not list_datasets():
        with st.container(border=True):
            st.markdown(_("**New here? Start with the demo dataset.** ") + str(text.DEMO_TEXT))
            ui.demo_dataset_button("demo_first", primary=True)
    tabs = st.tabs([_("Upload a folder"), _("Upload a .zip"), _("Folder on this server"), _("Imported datasets"),
                    _("Demo dataset"), _("Webcam")])
    with tabs[0]:
        upload_folder()
    with tabs[1]:
        upload_zip()
    with tabs[2]:
        server_folder()
    with tabs[3]:
        imported()
    with tabs[4]:
        demo()
    with tabs[5]:
        webcam()
    ds = None
    if state.get("data"):
        with ui.guard(_("Scanning the dataset")):
            with st.spinner(_("Scanning the dataset…")):
                ds = caches.selected_dataset()
    if ds is not None:
        overview, checkup = st.tabs([_("Overview"), _("Health")])
        with overview:
            report(ds)
        with checkup:
            health.health_tab(ds)
    else:
        st.info(_("No dataset chosen yet. Upload one above, or pick a folder on the server."),
                icon=":material/photo_library:")
    split_settings(ds.layout if ds is not None else None)
    augmentation(ds)
    if ds is not None:
        st.page_link("views/5_Train.py", label=_("Next: train"), icon=":material/arrow_forward:")


ui.page_guard()
main()
