"""Layers: the layer table, where to cut, where fine-tuning starts, BatchNorm, and the head."""
from __future__ import annotations

import glob

import streamlit as st

from studio import caches, charts, components as ui, engine_words, state, text
from studio.i18n import N_, _, shown
from tlcore.backbones.layers import block_summary, cut_options, filter_layers
from tlcore.recipe.plan import layer_points, pin_points

POOLING_LABELS = {"avg": N_("Global average"), "max": N_("Global max"), "flatten": N_("Flatten")}
BN_WHY = N_("Frozen by default: with small batches, updating BatchNormalization statistics would "
          "overwrite what the backbone learned on ImageNet, so frozen BN layers run in inference mode.")
ROLE_WORDS = {"trains": N_("trains"), "inference_bn": N_("BatchNorm, inference"), "frozen": N_("frozen"),
              "cut": N_("cut away")}
PATTERN_HELP = N_("Layer names or paths with * and ? (block_1*, */conv*), or re:REGEX searched in weight "
                "paths (re:_bn/gamma$). Separate several with commas. Applied after the unfreeze point: "
                "first the ones to train, then the ones to keep frozen.")


def num_classes() -> int:
    with ui.guard(_("Reading the dataset")):
        ds = caches.selected_dataset()
        if ds is not None:
            st.caption(_("{classes} classes, from the dataset {name}.").format(classes=len(ds.classes), name=text.md(ds.root.name)))
            return len(ds.classes)
    return int(st.number_input(_("Classes"), min_value=2, max_value=100_000, step=1,
                               key=state.bound("num_classes", 2),
                               help=_("No dataset chosen yet: how many classes the head will output.")))


def cut_and_unfreeze(table, default_cut: int, own: bool) -> tuple[int, int]:
    n = len(table)
    options = cut_options(table)
    points = layer_points(table, state.get("cut"), state.get("unfreeze_from"), default_cut, own)
    cut_key = "w:cut_index"
    if st.session_state.get(cut_key) not in options:
        st.session_state[cut_key] = points.cut_index
    cut = st.select_slider(
        _("Cut after layer (clean cut points only)"), options=options, key=cut_key,
        format_func=lambda i: f"{i} · {table[i].name}",
        help=_("The backbone ends here. Only layers every path from input to output passes through "
             "are offered, so the cut model is a complete feature extractor."))
    un_key = "w:unfreeze_index"
    if not isinstance(st.session_state.get(un_key), int) or not 0 <= st.session_state[un_key] < n:
        st.session_state[un_key] = points.unfreeze_index
    unfreeze = st.select_slider(_("Unfreeze from layer (stage 2)"), options=list(range(n)), key=un_key,
                                format_func=lambda i: f"{i} · {table[i].name}",
                                help=_("In stage 2 (fine-tuning) this layer and every later one trains; "
                              "earlier layers stay frozen."))
    st.caption(_("Cut after **{name}** ({type}) · unfreeze from "
               "**{name2}** ({type2}).").format(name=table[cut].name, type=table[cut].type, name2=table[unfreeze].name, type2=table[unfreeze].type))
    pinned = pin_points(table, cut, unfreeze, own)
    state.put("cut", pinned.cut)
    state.put("unfreeze_from", pinned.unfreeze_from)
    return cut, unfreeze


def head_designer() -> tuple[str, tuple[int, ...], float]:
    st.markdown(_("**Head**"))
    poolings = state.choices("pooling")
    pooling = st.segmented_control(_("Pooling"), poolings, format_func=shown(POOLING_LABELS),
                                   key=state.bound("pooling", valid=lambda v: v in poolings), required=True)
    pooling = pooling or state.defaults()["pooling"]
    current = state.get("dense") or []
    typed = st.text_input(_("Hidden dense layers (units, comma-separated)"),
                         key=state.bound("dense_text", ", ".join(str(u) for u in current)),
                         placeholder=_("none, e.g. 1024 or 512, 128"),
                         help=_("ReLU layers between the pooling and the output. Empty: straight to the output."))
    dense: tuple[int, ...] = tuple(current)
    with ui.guard(_("Reading the dense layers")):
        dense = text.parse_dense(typed)
    dropout = st.slider(_("Dropout"), 0.0, 0.9, step=0.05, key=state.bound("dropout"))
    state.put("pooling", pooling)
    state.put("dense", list(dense))
    state.put("dropout", float(dropout))
    return pooling, dense, float(dropout)


def patterns() -> None:
    """The freeze/unfreeze pattern boxes; they edit the selection's `unfreeze` and `freeze`."""
    c1, c2 = st.columns(2)
    for col, name, label in ((c1, "unfreeze", _("Also train in stage 2")), (c2, "freeze", _("Keep frozen in stage 2"))):
        key = f"w:{name}_text"
        if key not in st.session_state or st.session_state.get(f"{key}:from") != state.get(name):
            st.session_state[key] = ", ".join(state.get(name) or [])
        typed = col.text_input(label, key=key, placeholder=_("e.g. block_16*, re:_bn/"), help=str(PATTERN_HELP))
        values = [p.strip() for p in typed.split(",") if p.strip()]
        state.put(name, values)
        st.session_state[f"{key}:from"] = values


def counts_row(plan: dict) -> None:
    s1, s2 = plan["stages"]["1"], plan["stages"]["2"]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(_("Trainable, stage 1 (head)"), text.format_count(s1["trainable"]), border=True)
    c2.metric(_("Trainable, stage 2"), text.format_count(s2["trainable"]), border=True,
              help=_("Backbone weights that train in stage 2 (from the unfreeze point to the cut, with "
                   "the patterns applied), plus the head."))
    c3.metric(_("Non-trainable, stage 2"), text.format_count(s2["non_trainable"]), border=True)
    c4.metric(_("Total parameters"), text.format_count(s2["total"]), border=True,
              help=_("Of the cut model with its head and preprocessing."))


def plan_notes(plan: dict) -> None:
    s2 = plan["stages"]["2"]
    if s2["backbone_trainable"] == 0 and s2["epochs"] > 0:
        st.warning(_("**No backbone weight will train in stage 2.** {reason} Only the head "
                   "({head_params} parameters) learns. Move the unfreeze "
                   "point before the cut to fine-tune the backbone.").format(reason=text.md(engine_words.say(s2['reason'])), head_params=text.format_count(plan['head_params'])), icon=":material/warning:")
    elif s2["backbone_trainable"] == 0:
        st.caption(_("{reason} Only the head ({head_params} parameters) learns.").format(reason=engine_words.say(s2['reason']), head_params=text.format_count(plan['head_params'])))
    else:
        st.caption(_("Stage 2 trains {backbone_trainable} backbone parameters and "
                   "{head_params} in the head. Features leave the cut as "
                   "{str}.").format(backbone_trainable=text.format_count(s2['backbone_trainable']), head_params=text.format_count(plan['head_params']), str=' × '.join(map(str, plan['feature_shape']))))
    for warning in plan["warnings"]:
        if not warning.startswith("No backbone weight trains"):
            st.info(engine_words.say(warning), icon=":material/info:")


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
    tab_layers, tab_blocks = st.tabs([_("Layers"), _("Blocks")])
    roles = {row["index"]: row for row in plan["layers"]}
    with tab_layers:
        c1, c2, c3 = st.columns([2, 2, 2])
        search = c1.text_input(_("Search"), placeholder=_("name, type or block"), key="w:layer_search")
        types = c2.multiselect(_("Types"), sorted({r.type for r in table}), key="w:layer_types",
        placeholder=_("Choose options"))
        blocks = c3.multiselect(_("Blocks"), list(dict.fromkeys(r.block for r in table)), key="w:layer_blocks",
        placeholder=_("Choose options"))
        shown = filter_layers(table, search, types, blocks)
        names = [r.name for r in shown]
        trains = [roles[r.index]["stage2"] == "trains" for r in shown]
        st.data_editor(
            [{"#": r.index, "block": r.block, "name": r.name, "type": r.type,
              "output shape": " × ".join("?" if d is None else str(d) for d in r.output_shape[1:]),
              "params": r.params, "clean cut point": r.cut_point,
              "stage 1": str(ROLE_WORDS[roles[r.index]["stage1"]]), "stage 2": str(ROLE_WORDS[roles[r.index]["stage2"]]),
              "trains in stage 2": t} for r, t in zip(shown, trains)],
            hide_index=True, height=420, key="w:layer_editor", on_change=_apply_table_edits,
            column_order=["#", "name", "type", "params", "stage 1", "stage 2", "trains in stage 2", "block",
                          "output shape", "clean cut point"],
            args=(names, trains), disabled=["#", "block", "name", "type", "output shape", "params",
                                            "clean cut point", "stage 1", "stage 2"],
            column_config={"params": st.column_config.NumberColumn(_("params"), format="localized"),
                           "clean cut point": st.column_config.CheckboxColumn(_("clean cut point")),
                           "name": _("name"), "type": _("type"), "block": _("block"),
                           "output shape": _("output shape"), "stage 1": _("stage 1"), "stage 2": _("stage 2"),
                           "trains in stage 2": st.column_config.CheckboxColumn(
                               _("trains in stage 2"), help=_("Tick or untick to train or freeze this layer in stage 2: it is "
                                    "added to the patterns above, by its exact name."))})
        st.caption(_("{shown} of {table} layers. Roles come from the same plan training follows.").format(shown=len(shown), table=len(table)))
    with tab_blocks:
        st.dataframe(block_summary(table), hide_index=True, height=420,
                     column_config={"params": st.column_config.NumberColumn(_("params"), format="localized"),
                                    "block": _("block"), "layers": _("layers"),
                                    "last_layer": st.column_config.TextColumn(_("last layer")),
                                    "ends_at_cut_point": st.column_config.CheckboxColumn(_("ends at cut point"))})


def _use_cut(index: int) -> None:
    st.session_state["w:cut_index"] = index


def separability(bb, cut: int) -> None:
    """Linear probes at every block end (`tlcore.evaluation.probe`): accuracy against depth, a suggestion."""
    st.markdown(_("**Where does it become separable?**"))
    data = state.get("data")
    if not data:
        st.caption(_("Choose a dataset on the Data page to see at which depth its classes become separable."))
        return
    key = (bb.label, bb.file, str(data), state.get("weights"), state.get("seed"), state.get("val_split"),
           state.get("test_split"), state.get("resize"))
    st.caption(_("Fits a linear classifier on the training images' features at the end of each block (at "
               "most 12 cuts, all from one pass through the backbone) and scores it on validation."))
    if st.button(_("Where does it become separable?"), icon=":material/insights:", key="probe_button"):
        with ui.guard(_("Probing the cuts")):
            from tlcore.recipe.config import TrainConfig
            from tlcore.evaluation.probe import probe

            with st.spinner(_("One pass through the backbone, then a linear classifier at every block end…")):
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
        st.caption(_("Best validation accuracy {top}; the shallowest cut within one point "
                   "of it is **{cut}** (layer {index}, {val_accuracy}, "
                   "{feature_dim} features). A shallower cut is faster and leaves more to fine-tune.").format(top=text.format_percent(top), cut=best['cut'], index=best['index'], val_accuracy=text.format_percent(best['val_accuracy']), feature_dim=best['feature_dim']))
        if best["index"] != cut and best["index"] in cut_options(bb.table):
            st.button(_("Cut after {cut}").format(cut=best['cut']), icon=":material/content_cut:", key="probe_use",
                      on_click=_use_cut, args=(best["index"],))


def main() -> None:
    ui.header(_("Layers"), _("Where to cut the backbone, what fine-tuning unfreezes, and the head on top."))
    bb = None
    with ui.guard(_("Reading the backbone's layers")):
        with st.spinner(_("Reading the layers of {backbone_text} (built once when no table is stored)…").format(backbone_text=text.md(ui.backbone_text()))):
            bb = caches.chosen_backbone()
    if bb is None:
        return
    table = bb.table
    rows = [r.to_dict() for r in table]
    own = bb.kind == "file"
    st.caption((_("**{label}**, your own model,").format(label=text.md(bb.label)) if own else f"**{bb.name}**")
               + _(" at {input_size} × {input_size} px: {table} layers, "
               "{value} clean cut points.").format(input_size=bb.input_size, table=len(table), value=sum((r.cut_point for r in table)))
               + (_(" Layers from nested models are named by their path; by default the cut drops the old "
                  "head (after {name}).").format(name=text.md(table[bb.default_cut].name)) if own else ""))
    counts_slot = st.container()
    chart_slot = st.container()
    cut, unfreeze = cut_and_unfreeze(table, bb.default_cut, own)
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown(_("**BatchNormalization**"))
        train_bn = st.toggle(_("Train BatchNorm layers in stage 2"), key=state.bound("train_bn"))
        st.caption(str(BN_WHY))
        state.put("train_bn", bool(train_bn))
        classes = num_classes()
    with right:
        pooling, dense, dropout = head_designer()
    patterns()
    plan = None
    with counts_slot:
        with ui.guard(_("Planning what trains")):
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
