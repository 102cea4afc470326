"""The Data page's Health tab (the audit's map and lists) and the image actions it shares with
the Evaluate page: move to another class or split, exclude to the trash, Undo."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import charts, components as ui, state, text
from studio.i18n import _, ngettext
from tlcore.core.errors import TLCoreError
from tlcore.data.images import thumbnail

SHOWN = 24
PER_ROW = 6


def editor(root):
    """A `DatasetEditor` for a managed dataset, or None for a read-only folder."""
    from tlcore.data.edits import DatasetEditor

    try:
        return DatasetEditor(root)
    except TLCoreError:
        return None


def read_only_note(ds, key: str) -> None:
    st.info(_("This folder is outside the studio's datasets folder, so it is read-only here: the studio never "
            "changes your own folders. Import a copy to fix labels and exclude images there."),
            icon=":material/lock:")
    if st.button(_("Import a copy to edit"), icon=":material/content_copy:", key=f"{key}_import"):
        from tlcore.data.importer import import_dataset

        with ui.guard(_("Importing a copy")):
            with st.spinner(_("Copying the dataset into the studio…")):
                result = import_dataset(str(ds.root))
            state.put("data", result["path"])
            st.session_state.pop("_audit", None)
            st.rerun()


def _done(entry: dict, what: str) -> None:
    n = len(entry.get("moves", []))
    st.session_state["_edit_note"] = ngettext("{what}: {n} image. Undo puts them back.",
                                                 "{what}: {n} images. Undo puts them back.", n).format(what=what, n=n)
    st.rerun()


def actions(files: list[str], ds, key: str) -> None:
    """Buttons acting on `files`: move to a class, move to a split (split folders only), exclude."""
    ed = editor(ds.root)
    if ed is None:
        st.caption(_("Read-only folder: import a copy (above) to move or exclude images."))
        return
    files = [f for f in files if Path(f).is_file()]
    if not files:
        st.caption(_("Select images to move or exclude them."))
        return
    n = ngettext("{count} image", "{count} images", len(files)).format(count=len(files))
    st.markdown(_("**{n} selected**").format(n=n))
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    target = c1.selectbox(_("Move to class"), ds.classes, key=f"{key}_class")
    if c2.button(_("Move"), icon=":material/label:", key=f"{key}_move", width="stretch",
                 help=_("Move the {n} into the class folder {target}.").format(n=n, target=target)):
        with ui.guard(_("Moving the images")):
            _done(ed.move(files, to_class=target), _("Moved to {name}").format(name=text.md(target)))
    if ds.layout == "split":
        c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
        split = c1.selectbox(_("Move to split"), ["train", "validation", "test"], key=f"{key}_split")
        if c2.button(_("Move"), icon=":material/call_split:", key=f"{key}_tosplit", width="stretch",
                     help=_("Move the {n} into the {split} folder (same class).").format(n=n, split=split)):
            with ui.guard(_("Moving the images")):
                _done(ed.move(files, to_split=split), _("Moved to {name}").format(name=text.md(split)))
    if st.button(_("Exclude {n}").format(n=n), icon=":material/delete:", key=f"{key}_exclude",
                 help=_("Moves them into the dataset's hidden trash (.tlcore/trash); Undo brings them back.")):
        with ui.guard(_("Excluding the images")):
            _done(ed.exclude(files), "Excluded")


def undo_bar(ds, key: str = "health") -> None:
    """The last edit's note, Undo, and emptying the trash."""
    ed = editor(ds.root)
    note = st.session_state.pop("_edit_note", None)
    if note:
        st.success(note, icon=":material/check_circle:")
    if ed is None:
        read_only_note(ds, key)
        return
    pending = ed.undoable()
    trash = ed.trash_files()
    c1, c2, c3 = st.columns([1, 1, 3], vertical_alignment="center")
    if c1.button(_("Undo"), icon=":material/undo:", key=f"{key}_undo", disabled=not pending,
                 help=_("Put the images of the last action back where they were.")):
        with ui.guard(_("Undoing")):
            entry = ed.undo()
            st.session_state["_edit_note"] = (_("Undone: {n} image(s) back in place.").format(n=len(entry["moves"]))
                                                if entry else None)
            st.rerun()
    if c2.button(_("Empty trash ({trash})").format(trash=len(trash)), icon=":material/delete_forever:", key=f"{key}_empty",
                 disabled=not trash, help=_("Deletes the excluded images for good; they cannot be undone then.")):
        with ui.guard(_("Emptying the trash")):
            gone = ed.empty_trash()
            st.session_state["_edit_note"] = _("Deleted {n} image(s) for good.").format(n=gone)
            st.rerun()
    c3.caption(_("{pending} change(s) can be undone · logged in `.tlcore/changes.jsonl`.").format(pending=len(pending)))


def _pick_grid(items: list[dict], key: str, caption, extra=None) -> list[str]:
    """Thumbnails with a tick box each (and `extra(item, i)` drawn below); returns the ticked files."""
    picked = []
    for start in range(0, len(items), PER_ROW):
        cols = st.columns(PER_ROW)
        for i, item in enumerate(items[start:start + PER_ROW], start=start):
            with cols[i - start]:
                img = thumbnail(item["file"], 112)
                if img is None:
                    st.caption(_("{name} (gone)").format(name=text.md(Path(item['file']).name)))
                    continue
                st.image(img, width="stretch")
                st.caption(text.md(caption(item)))
                if st.checkbox("select", key=f"{key}_{i}_{item['file']}", label_visibility="collapsed"):
                    picked.append(item["file"])
                if extra is not None:
                    extra(item, i)
    return picked


def _label_issues(result: dict, ds) -> None:
    items = [i for i in result["label_issues"] if Path(i["file"]).is_file()][:SHOWN]
    if not items:
        st.caption(_("No suspected label errors: every image agrees with its class."))
        return
    st.caption(_("Images whose own class the model (never trained on them) finds unlikely, most suspicious "
               "first. Tick the ones that are really wrong and move them to their class."))
    ed = editor(ds.root)

    def fix(item: dict, i: int) -> None:
        if ed is not None and st.button(_("To {suggested}").format(suggested=text.md(item['suggested'])), key=f"li_fix_{i}_{item['file']}",
                                        icon=":material/label:", help=_("Move it into {suggested}").format(suggested=text.md(item['suggested']))):
            with ui.guard(_("Moving the image")):
                _done(ed.move([item["file"]], to_class=item["suggested"]), _("Moved to {name}").format(name=text.md(item["suggested"])))

    picked = _pick_grid(items, "li", lambda i: f"{Path(i['file']).parent.name}/{Path(i['file']).name} · " + _(
                            "given {given} · looks like {suggested} · {score:.2f}").format(
                            given=i["given"], suggested=i["suggested"], score=i["score"]),
                        fix)
    actions(picked, ds, "li_act")


def _duplicates(result: dict, ds) -> None:
    pairs = [p for p in result["near_duplicates"] if Path(p["a"]).is_file() and Path(p["b"]).is_file()][:SHOWN]
    if not pairs:
        st.caption(_("No near-duplicates."))
        return
    leaks = sum(p["cross_split"] for p in result["near_duplicates"])
    st.caption(_("Resized, re-encoded or lightly cropped copies; {leaks} pair(s) straddle splits (a leak: "
               "validation and test scores look better than they are). Exclude one of each pair.").format(leaks=leaks))
    picked = []
    for k, p in enumerate(pairs):
        with st.container(border=True):
            cols = st.columns([1, 1, 3], vertical_alignment="center")
            for col, f in zip(cols[:2], (p["a"], p["b"])):
                img = thumbnail(f, 112)
                if img is not None:
                    col.image(img, width=112)
                if col.checkbox(text.md(f"{Path(f).parent.parent.name}/{Path(f).parent.name}/{Path(f).name}"),
                                key=f"dup_{k}_{f}"):
                    picked.append(f)
            cols[2].markdown((_("**Across splits (leak)** · ") if p["cross_split"] else _("Same split · "))
                             + _("feature distance {distance:.3f}").format(distance=p['distance']))
    actions(picked, ds, "dup_act")


def _outliers(result: dict, ds) -> None:
    items = [i for i in result["outliers"] if Path(i["file"]).is_file()][:SHOWN]
    if not items:
        st.caption(_("No outliers: every image has close neighbours."))
        return
    st.caption(_("Images far from every other one: noise, blank frames, something else entirely. Farthest first."))
    picked = _pick_grid(items, "out", lambda i: f"{Path(i['file']).parent.name}/{Path(i['file']).name} · "
                                                f"{i['score']:.2f}")
    actions(picked, ds, "out_act")


def _map(result: dict, ds) -> None:
    emb = result["embedding"]
    points = emb["points"]
    left, right = st.columns([3, 2], gap="medium")
    with left:
        event = st.plotly_chart(charts.embedding_map(points, ds.classes, emb["method"]), key="health_map",
                                on_select="rerun", selection_mode=("lasso", "box", "points"))
        st.caption(_("Every image as a point ({upper} of the backbone's features): colour is "
                   "its class, the shape its split (circle train, diamond validation, square test). Draw a "
                   "lasso or a box to see the images.").format(upper=emb['method'].upper()))
    chosen = []
    for p in (getattr(getattr(event, "selection", None), "points", None) or []):
        cd = p.get("customdata")
        idx = cd[0] if isinstance(cd, (list, tuple)) else cd
        if isinstance(idx, int) and 0 <= idx < len(points):
            chosen.append(points[idx]["file"])
    with right:
        live = [f for f in chosen if Path(f).is_file()]
        if not live:
            st.caption(_("Selected images appear here."))
            return
        shown = [img for img in (thumbnail(f, 96) for f in live[:40]) if img is not None]
        st.image(shown, width=56)
        if len(live) > 40:
            st.caption(_("The first 40 of {live}.").format(live=len(live)))
        actions(live, ds, "map_act")


def health_tab(ds) -> None:
    st.caption(_("Runs the chosen backbone over every image once (features are cached) and looks for what "
               "usually hurts a small classifier: wrong folders, the same photo in train and test, outliers."))
    key = (str(ds.root), state.get("backbone"), state.get("backbone_file"), state.get("input_size"),
           state.get("cut"), state.get("weights"))
    if st.button(_("Run the health check"), icon=":material/health_and_safety:", key="audit_button",
                 type="primary"):
        with ui.guard(_("Checking the dataset")):
            from tlcore.evaluation.audit import audit
            from tlcore.recipe.config import TrainConfig

            with st.spinner(_("Features of every image with {backbone_text}, then cross-validation…").format(backbone_text=text.md(ui.backbone_text()))):
                result = audit(TrainConfig.from_dict(state.options_from_selection()))
            st.session_state["_audit"] = {"key": key, "result": result}
    undo_bar(ds)
    found = st.session_state.get("_audit")
    if not found or found["key"] != key:
        return
    result = found["result"]
    if any(not Path(p["file"]).is_file() for p in result["embedding"]["points"]):
        st.caption(_("The dataset changed since the check: moved images are left out; run it again for a fresh map."))
    _map(result, ds)
    tabs = st.tabs([_("Suspected label errors ({label_issues})").format(label_issues=len(result['label_issues'])),
                    _("Near-duplicates ({near_duplicates})").format(near_duplicates=len(result['near_duplicates'])),
                    _("Outliers ({outliers})").format(outliers=len(result['outliers'])), _("Class overlap ({class_overlap})").format(class_overlap=len(result['class_overlap']))])
    with tabs[0]:
        _label_issues(result, ds)
    with tabs[1]:
        _duplicates(result, ds)
    with tabs[2]:
        _outliers(result, ds)
    with tabs[3]:
        if result["class_overlap"]:
            st.dataframe([{"class": r["a"], "confused with": r["b"], "share of images": r["score"]}
                          for r in result["class_overlap"]], hide_index=True,
                         column_config={"class": _("class"), "confused with": _("confused with"),
                                        "share of images": st.column_config.NumberColumn(_("share of images"),
                                                                                         format="%.3f")})
            st.caption(_("Pairs of classes the model mixes up (cleanlab's joint probability): candidates to "
                       "merge, or to collect clearer examples of."))
        else:
            st.caption(_("No overlapping classes."))
