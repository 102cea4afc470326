"""The Data page's Health tab (the audit's map and lists) and the image actions it shares with
the Evaluate page: move to another class or split, exclude to the trash, Undo."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import charts, components as ui, state, text
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
    st.info("This folder is outside the studio's datasets folder, so it is read-only here: the studio never "
            "changes your own folders. Import a copy to fix labels and exclude images there.",
            icon=":material/lock:")
    if st.button("Import a copy to edit", icon=":material/content_copy:", key=f"{key}_import"):
        from tlcore.data.importer import import_dataset

        with ui.guard("Importing a copy"):
            with st.spinner("Copying the dataset into the studio…"):
                result = import_dataset(str(ds.root))
            state.put("data", result["path"])
            st.session_state.pop("_audit", None)
            st.rerun()


def _done(entry: dict, what: str) -> None:
    n = len(entry.get("moves", []))
    st.session_state["_edit_note"] = f"{what}: {n} image{'s' if n != 1 else ''}. Undo puts them back."
    st.rerun()


def actions(files: list[str], ds, key: str) -> None:
    """Buttons acting on `files`: move to a class, move to a split (split folders only), exclude."""
    ed = editor(ds.root)
    if ed is None:
        st.caption("Read-only folder: import a copy (above) to move or exclude images.")
        return
    files = [f for f in files if Path(f).is_file()]
    if not files:
        st.caption("Select images to move or exclude them.")
        return
    n = f"{len(files)} image{'s' if len(files) != 1 else ''}"
    st.markdown(f"**{n} selected**")
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    target = c1.selectbox("Move to class", ds.classes, key=f"{key}_class")
    if c2.button("Move", icon=":material/label:", key=f"{key}_move", width="stretch",
                 help=f"Move the {n} into the class folder {target}."):
        with ui.guard("Moving the images"):
            _done(ed.move(files, to_class=target), f"Moved to {text.md(target)}")
    if ds.layout == "split":
        c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
        split = c1.selectbox("Move to split", ["train", "validation", "test"], key=f"{key}_split")
        if c2.button("Move", icon=":material/call_split:", key=f"{key}_tosplit", width="stretch",
                     help=f"Move the {n} into the {split} folder (same class)."):
            with ui.guard("Moving the images"):
                _done(ed.move(files, to_split=split), f"Moved to {text.md(split)}")
    if st.button(f"Exclude {n}", icon=":material/delete:", key=f"{key}_exclude",
                 help="Moves them into the dataset's hidden trash (.tlcore/trash); Undo brings them back."):
        with ui.guard("Excluding the images"):
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
    if c1.button("Undo", icon=":material/undo:", key=f"{key}_undo", disabled=not pending,
                 help="Put the images of the last action back where they were."):
        with ui.guard("Undoing"):
            entry = ed.undo()
            st.session_state["_edit_note"] = f"Undone: {len(entry['moves'])} image(s) back in place." if entry else None
            st.rerun()
    if c2.button(f"Empty trash ({len(trash)})", icon=":material/delete_forever:", key=f"{key}_empty",
                 disabled=not trash, help="Deletes the excluded images for good; they cannot be undone then."):
        with ui.guard("Emptying the trash"):
            gone = ed.empty_trash()
            st.session_state["_edit_note"] = f"Deleted {gone} image(s) for good."
            st.rerun()
    c3.caption(f"{len(pending)} change(s) can be undone · logged in `.tlcore/changes.jsonl`.")


def _pick_grid(items: list[dict], key: str, caption, extra=None) -> list[str]:
    """Thumbnails with a tick box each (and `extra(item, i)` drawn below); returns the ticked files."""
    picked = []
    for start in range(0, len(items), PER_ROW):
        cols = st.columns(PER_ROW)
        for i, item in enumerate(items[start:start + PER_ROW], start=start):
            with cols[i - start]:
                img = thumbnail(item["file"], 112)
                if img is None:
                    st.caption(f"{text.md(Path(item['file']).name)} (gone)")
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
        st.caption("No suspected label errors: every image agrees with its class.")
        return
    st.caption("Images whose own class the model (never trained on them) finds unlikely, most suspicious "
               "first. Tick the ones that are really wrong and move them to their class.")
    ed = editor(ds.root)

    def fix(item: dict, i: int) -> None:
        if ed is not None and st.button(f"To {text.md(item['suggested'])}", key=f"li_fix_{i}_{item['file']}",
                                        icon=":material/label:", help=f"Move it into {text.md(item['suggested'])}"):
            with ui.guard("Moving the image"):
                _done(ed.move([item["file"]], to_class=item["suggested"]), f"Moved to {text.md(item['suggested'])}")

    picked = _pick_grid(items, "li", lambda i: f"{Path(i['file']).parent.name}/{Path(i['file']).name} · "
                                               f"given {i['given']} · looks like {i['suggested']} · {i['score']:.2f}",
                        fix)
    actions(picked, ds, "li_act")


def _duplicates(result: dict, ds) -> None:
    pairs = [p for p in result["near_duplicates"] if Path(p["a"]).is_file() and Path(p["b"]).is_file()][:SHOWN]
    if not pairs:
        st.caption("No near-duplicates.")
        return
    leaks = sum(p["cross_split"] for p in result["near_duplicates"])
    st.caption(f"Resized, re-encoded or lightly cropped copies; {leaks} pair(s) straddle splits (a leak: "
               "validation and test scores look better than they are). Exclude one of each pair.")
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
            cols[2].markdown(("**Across splits (leak)** · " if p["cross_split"] else "Same split · ")
                             + f"feature distance {p['distance']:.3f}")
    actions(picked, ds, "dup_act")


def _outliers(result: dict, ds) -> None:
    items = [i for i in result["outliers"] if Path(i["file"]).is_file()][:SHOWN]
    if not items:
        st.caption("No outliers: every image has close neighbours.")
        return
    st.caption("Images far from every other one: noise, blank frames, something else entirely. Farthest first.")
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
        st.caption(f"Every image as a point ({emb['method'].upper()} of the backbone's features): colour is "
                   "its class, the shape its split (circle train, diamond validation, square test). Draw a "
                   "lasso or a box to see the images.")
    chosen = []
    for p in (getattr(getattr(event, "selection", None), "points", None) or []):
        cd = p.get("customdata")
        idx = cd[0] if isinstance(cd, (list, tuple)) else cd
        if isinstance(idx, int) and 0 <= idx < len(points):
            chosen.append(points[idx]["file"])
    with right:
        live = [f for f in chosen if Path(f).is_file()]
        if not live:
            st.caption("Selected images appear here.")
            return
        shown = [img for img in (thumbnail(f, 96) for f in live[:40]) if img is not None]
        st.image(shown, width=56)
        if len(live) > 40:
            st.caption(f"The first 40 of {len(live)}.")
        actions(live, ds, "map_act")


def health_tab(ds) -> None:
    st.caption("Runs the chosen backbone over every image once (features are cached) and looks for what "
               "usually hurts a small classifier: wrong folders, the same photo in train and test, outliers.")
    key = (str(ds.root), state.get("backbone"), state.get("backbone_file"), state.get("input_size"),
           state.get("cut"), state.get("weights"))
    if st.button("Run the health check", icon=":material/health_and_safety:", key="audit_button",
                 type="primary"):
        with ui.guard("Checking the dataset"):
            from tlcore.evaluation.audit import audit
            from tlcore.recipe.config import TrainConfig

            with st.spinner(f"Features of every image with {text.md(ui.backbone_text())}, then cross-validation…"):
                result = audit(TrainConfig.from_dict(state.options_from_selection()))
            st.session_state["_audit"] = {"key": key, "result": result}
    undo_bar(ds)
    found = st.session_state.get("_audit")
    if not found or found["key"] != key:
        return
    result = found["result"]
    if any(not Path(p["file"]).is_file() for p in result["embedding"]["points"]):
        st.caption("The dataset changed since the check: moved images are left out; run it again for a fresh map.")
    _map(result, ds)
    tabs = st.tabs([f"Suspected label errors ({len(result['label_issues'])})",
                    f"Near-duplicates ({len(result['near_duplicates'])})",
                    f"Outliers ({len(result['outliers'])})", f"Class overlap ({len(result['class_overlap'])})"])
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
                         column_config={"share of images": st.column_config.NumberColumn(format="%.3f")})
            st.caption("Pairs of classes the model mixes up (cleanlab's joint probability): candidates to "
                       "merge, or to collect clearer examples of.")
        else:
            st.caption("No overlapping classes.")
