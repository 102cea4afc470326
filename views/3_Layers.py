"""Layers: the layer table, where to cut, where fine-tuning starts, BatchNorm, and the head."""
from __future__ import annotations

import glob

import streamlit as st

from studio import caches, charts, components as ui, state, text
from tlcore.backbones.layers import block_summary, cut_options, filter_layers
from tlcore.recipe.plan import layer_points, pin_points

POOLING_LABELS = {"avg": "Global average", "max": "Global max", "flatten": "Flatten"}
BN_WHY = ("Frozen by default: with small batches, updating BatchNormalization statistics would "
          "overwrite what the backbone learned on ImageNet, so frozen BN layers run in inference mode.")
ROLE_WORDS = {"trains": "trains", "inference_bn": "BatchNorm, inference", "frozen": "frozen", "cut": "cut away"}
PATTERN_HELP = ("Layer names or paths with * and ? (block_1*, */conv*), or re:REGEX searched in weight "
                "paths (re:_bn/gamma$). Separate several with commas. Applied after the unfreeze point: "
                "first the ones to train, then the ones to keep frozen.")


def num_classes() -> int:
    with ui.guard("Reading the dataset"):
        ds = caches.selected_dataset()
        if ds is not None:
            st.caption(f"{len(ds.classes)} classes, from the dataset {text.md(ds.root.name)}.")
            return len(ds.classes)
    return int(st.number_input("Classes", min_value=2, max_value=100_000, step=1,
                               key=state.bound("num_classes", 2),
                               help="No dataset chosen yet: how many classes the head will output."))


def cut_and_unfreeze(table, default_cut: int, own: bool) -> tuple[int, int]:
    n = len(table)
    options = cut_options(table)
    points = layer_points(table, state.get("cut"), state.get("unfreeze_from"), default_cut, own)
    cut_key = "w:cut_index"
    if st.session_state.get(cut_key) not in options:
        st.session_state[cut_key] = points.cut_index
    cut = st.select_slider(
        "Cut after layer (clean cut points only)", options=options, key=cut_key,
        format_func=lambda i: f"{i} · {table[i].name}",
        help="The backbone ends here. Only layers every path from input to output passes through "
             "are offered, so the cut model is a complete feature extractor.")
    un_key = "w:unfreeze_index"
    if not isinstance(st.session_state.get(un_key), int) or not 0 <= st.session_state[un_key] < n:
        st.session_state[un_key] = points.unfreeze_index
    unfreeze = st.select_slider("Unfreeze from layer (stage 2)", options=list(range(n)), key=un_key,
                                format_func=lambda i: f"{i} · {table[i].name}",
                                help="In stage 2 (fine-tuning) this layer and every later one trains; "
                              "earlier layers stay frozen.")
    st.caption(f"Cut after **{table[cut].name}** ({table[cut].type}) · unfreeze from "
               f"**{table[unfreeze].name}** ({table[unfreeze].type}).")
    pinned = pin_points(table, cut, unfreeze, own)
    state.put("cut", pinned.cut)
    state.put("unfreeze_from", pinned.unfreeze_from)
    return cut, unfreeze


def head_designer() -> tuple[str, tuple[int, ...], float]:
    st.markdown("**Head**")
    poolings = state.choices("pooling")
    pooling = st.segmented_control("Pooling", poolings, format_func=POOLING_LABELS.get,
                                   key=state.bound("pooling", valid=lambda v: v in poolings), required=True)
    pooling = pooling or state.defaults()["pooling"]
    current = state.get("dense") or []
    typed = st.text_input("Hidden dense layers (units, comma-separated)",
                         key=state.bound("dense_text", ", ".join(str(u) for u in current)),
                         placeholder="none, e.g. 1024 or 512, 128",
                         help="ReLU layers between the pooling and the output. Empty: straight to the output.")
    dense: tuple[int, ...] = tuple(current)
    with ui.guard("Reading the dense layers"):
        dense = text.parse_dense(typed)
    dropout = st.slider("Dropout", 0.0, 0.9, step=0.05, key=state.bound("dropout"))
    state.put("pooling", pooling)
    state.put("dense", list(dense))
    state.put("dropout", float(dropout))
    return pooling, dense, float(dropout)


def patterns() -> None:
    """The freeze/unfreeze pattern boxes; they edit the selection's `unfreeze` and `freeze`."""
    c1, c2 = st.columns(2)
    for col, name, label in ((c1, "unfreeze", "Also train in stage 2"), (c2, "freeze", "Keep frozen in stage 2")):
        key = f"w:{name}_text"
        if key not in st.session_state or st.session_state.get(f"{key}:from") != state.get(name):
            st.session_state[key] = ", ".join(state.get(name) or [])
        typed = col.text_input(label, key=key, placeholder="e.g. block_16*, re:_bn/", help=PATTERN_HELP)
        values = [p.strip() for p in typed.split(",") if p.strip()]
        state.put(name, values)
        st.session_state[f"{key}:from"] = values


def counts_row(plan: dict) -> None:
    s1, s2 = plan["stages"]["1"], plan["stages"]["2"]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Trainable, stage 1 (head)", text.format_count(s1["trainable"]), border=True)
    c2.metric("Trainable, stage 2", text.format_count(s2["trainable"]), border=True,
              help="Backbone weights that train in stage 2 (from the unfreeze point to the cut, with "
                   "the patterns applied), plus the head.")
    c3.metric("Non-trainable, stage 2", text.format_count(s2["non_trainable"]), border=True)
    c4.metric("Total parameters", text.format_count(s2["total"]), border=True,
              help="Of the cut model with its head and preprocessing.")


def plan_notes(plan: dict) -> None:
    s2 = plan["stages"]["2"]
    if s2["backbone_trainable"] == 0 and s2["epochs"] > 0:
        st.warning(f"**No backbone weight will train in stage 2.** {text.md(s2['reason'])} Only the head "
                   f"({text.format_count(plan['head_params'])} parameters) learns. Move the unfreeze "
                   "point before the cut to fine-tune the backbone.", icon=":material/warning:")
    elif s2["backbone_trainable"] == 0:
        st.caption(f"{s2['reason']} Only the head ({text.format_count(plan['head_params'])} parameters) learns.")
    else:
        st.caption(f"Stage 2 trains {text.format_count(s2['backbone_trainable'])} backbone parameters and "
                   f"{text.format_count(plan['head_params'])} in the head. Features leave the cut as "
                   f"{' × '.join(map(str, plan['feature_shape']))}.")
    for warning in plan["warnings"]:
        if not warning.startswith("No backbone weight trains"):
            st.info(warning, icon=":material/info:")


def _apply_table_edits(names: list[str], trains: list[bool]) -> None:
    """The "trains in stage 2" checkboxes become exact-name patterns (the plan stays the owner)."""
    edits = st.session_state.get("w:layer_editor", {}).get("edited_rows", {})
    unfreeze, freeze = list(state.get("unfreeze") or []), list(state.get("freeze") or [])
    for row, change in edits.items():
        if "trains in stage 2" not in change or int(row) >= len(names):
            continue
        pattern = glob.escape(names[int(row)])
        unfreeze = [p for p in unfreeze if p != pattern]
        freeze = [p for p in freeze if p != pattern]
        want = bool(change["trains in stage 2"])
        if want != trains[int(row)]:
            (unfreeze if want else freeze).append(pattern)
    state.put("unfreeze", unfreeze)
    state.put("freeze", freeze)


def layer_tables(table, plan: dict) -> None:
    tab_layers, tab_blocks = st.tabs(["Layers", "Blocks"])
    roles = {row["index"]: row for row in plan["layers"]}
    with tab_layers:
        c1, c2, c3 = st.columns([2, 2, 2])
        search = c1.text_input("Search", placeholder="name, type or block", key="w:layer_search")
        types = c2.multiselect("Types", sorted({r.type for r in table}), key="w:layer_types")
        blocks = c3.multiselect("Blocks", list(dict.fromkeys(r.block for r in table)), key="w:layer_blocks")
        shown = filter_layers(table, search, types, blocks)
        names = [r.name for r in shown]
        trains = [roles[r.index]["stage2"] == "trains" for r in shown]
        st.data_editor(
            [{"#": r.index, "block": r.block, "name": r.name, "type": r.type,
              "output shape": " × ".join("?" if d is None else str(d) for d in r.output_shape[1:]),
              "params": r.params, "clean cut point": r.cut_point,
              "stage 1": ROLE_WORDS[roles[r.index]["stage1"]], "stage 2": ROLE_WORDS[roles[r.index]["stage2"]],
              "trains in stage 2": t} for r, t in zip(shown, trains)],
            hide_index=True, height=420, key="w:layer_editor", on_change=_apply_table_edits,
            column_order=["#", "name", "type", "params", "stage 1", "stage 2", "trains in stage 2", "block",
                          "output shape", "clean cut point"],
            args=(names, trains), disabled=["#", "block", "name", "type", "output shape", "params",
                                            "clean cut point", "stage 1", "stage 2"],
            column_config={"params": st.column_config.NumberColumn(format="localized"),
                           "clean cut point": st.column_config.CheckboxColumn(),
                           "trains in stage 2": st.column_config.CheckboxColumn(
                               help="Tick or untick to train or freeze this layer in stage 2: it is "
                                    "added to the patterns above, by its exact name.")})
        st.caption(f"{len(shown)} of {len(table)} layers. Roles come from the same plan training follows.")
    with tab_blocks:
        st.dataframe(block_summary(table), hide_index=True, height=420,
                     column_config={"params": st.column_config.NumberColumn(format="localized"),
                                    "last_layer": st.column_config.TextColumn("last layer"),
                                    "ends_at_cut_point": st.column_config.CheckboxColumn("ends at cut point")})


def _use_cut(index: int) -> None:
    st.session_state["w:cut_index"] = index


def separability(bb, cut: int) -> None:
    """Linear probes at every block end (`tlcore.evaluation.probe`): accuracy against depth, a suggestion."""
    st.markdown("**Where does it become separable?**")
    data = state.get("data")
    if not data:
        st.caption("Choose a dataset on the Data page to see at which depth its classes become separable.")
        return
    key = (bb.label, bb.file, str(data), state.get("weights"), state.get("seed"), state.get("val_split"),
           state.get("test_split"), state.get("resize"))
    st.caption("Fits a linear classifier on the training images' features at the end of each block (at "
               "most 12 cuts, all from one pass through the backbone) and scores it on validation.")
    if st.button("Where does it become separable?", icon=":material/insights:", key="probe_button"):
        with ui.guard("Probing the cuts"):
            from tlcore.recipe.config import TrainConfig
            from tlcore.evaluation.probe import probe

            with st.spinner("One pass through the backbone, then a linear classifier at every block end…"):
                rows = probe(TrainConfig.from_dict(state.options_from_selection()))
            st.session_state["_probe"] = {"key": key, "rows": rows}
    result = st.session_state.get("_probe")
    if not result or result["key"] != key:
        return
    from tlcore.evaluation.probe import suggest

    rows = result["rows"]
    best = suggest(rows)
    st.plotly_chart(charts.probe_accuracy(rows, cut, best["index"] if best else None), key="probe_chart")
    if best:
        top = max(r["val_accuracy"] for r in rows)
        st.caption(f"Best validation accuracy {text.format_percent(top)}; the shallowest cut within one point "
                   f"of it is **{best['cut']}** (layer {best['index']}, {text.format_percent(best['val_accuracy'])}, "
                   f"{best['feature_dim']} features). A shallower cut is faster and leaves more to fine-tune.")
        if best["index"] != cut and best["index"] in cut_options(bb.table):
            st.button(f"Cut after {best['cut']}", icon=":material/content_cut:", key="probe_use",
                      on_click=_use_cut, args=(best["index"],))


def main() -> None:
    ui.header("Layers", "Where to cut the backbone, what fine-tuning unfreezes, and the head on top.")
    bb = None
    with ui.guard("Reading the backbone's layers"):
        with st.spinner(f"Reading the layers of {text.md(ui.backbone_text())} (built once when no table is stored)…"):
            bb = caches.chosen_backbone()
    if bb is None:
        return
    table = bb.table
    rows = [r.to_dict() for r in table]
    own = bb.kind == "file"
    st.caption((f"**{text.md(bb.label)}**, your own model," if own else f"**{bb.name}**")
               + f" at {bb.input_size} × {bb.input_size} px: {len(table)} layers, "
               f"{sum(r.cut_point for r in table)} clean cut points."
               + (f" Layers from nested models are named by their path; by default the cut drops the old "
                  f"head (after {text.md(table[bb.default_cut].name)})." if own else ""))
    counts_slot = st.container()
    chart_slot = st.container()
    cut, unfreeze = cut_and_unfreeze(table, bb.default_cut, own)
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**BatchNormalization**")
        train_bn = st.toggle("Train BatchNorm layers in stage 2", key=state.bound("train_bn"))
        st.caption(BN_WHY)
        state.put("train_bn", bool(train_bn))
        classes = num_classes()
    with right:
        pooling, dense, dropout = head_designer()
    patterns()
    plan = None
    with counts_slot:
        with ui.guard("Planning what trains"):
            options = state.options_from_selection()  # the whole config, as training gets it
            options.update(pooling=pooling, dense=list(dense), dropout=dropout, train_bn=bool(train_bn))
            plan = caches.chosen_plan(bb, options, classes)
            counts_row(plan)
            plan_notes(plan)
    if plan is None:
        return
    with chart_slot:
        st.vega_lite_chart(charts.layer_params(rows, [r["stage2"] for r in plan["layers"]], plan["cut_index"],
                                               plan["unfreeze_index"]), key="layer_chart")
    separability(bb, cut)
    layer_tables(table, plan)


ui.page_guard()
main()
