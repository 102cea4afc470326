"""Search: many runs over cut, unfreeze point and other options (on Ray Tune), followed live;
the cut × unfreeze heatmap for grid spaces, parallel coordinates for the others."""
from __future__ import annotations

import streamlit as st

from studio import caches, charts, components as ui, state, text
from studio.i18n import _, ngettext
from tlcore.backbones.layers import cut_options
from tlcore.recipe.plan import layer_points
from tlcore.search.record import list_searches, load_search, request_stop
from tlcore.training.sweep import sweep_matrix

MAX_RUNS = 60
LRS = [0.01, 0.003, 0.001, 0.0003, 0.0001]
DROPOUTS = [0.0, 0.1, 0.2, 0.3, 0.5]
BATCHES = [8, 16, 32, 64]


def choose(bb) -> dict:
    """The space: cut and unfreeze points from the layer table, other options from widgets."""
    table = bb.table
    n = len(table)
    cuts_offered = cut_options(table)
    tag = f"{bb.label}:{n}"  # indexes belong to one backbone: new widgets when it changes
    points = layer_points(table, state.get("cut"), state.get("unfreeze_from"), bb.default_cut, bb.kind == "file")
    c1, c2 = st.columns(2, gap="large")
    cuts = c1.multiselect(
        _("Cut after (clean cut points)"), cuts_offered, key=f"search_cuts:{tag}",
        default=[points.cut_index],
        format_func=lambda i: f"{i} · {table[i].name}",
        help=_("Each is a complete feature extractor: every path from input to output passes through it."),
        placeholder=_("Choose options"))
    unfreezes = c2.multiselect(
        _("Unfreeze from (stage 2)"), list(range(n)), key=f"search_unfreezes:{tag}", default=[points.unfreeze_index],
        format_func=lambda i: f"{i} · {table[i].name}",
        help=_("In stage 2 this layer and every later one (up to the cut) trains."),
        placeholder=_("Choose options"))
    c1, c2, c3 = st.columns(3)
    lr = float(state.get("lr"))
    lrs = c1.multiselect(_("Learning rate (stage 1)"), sorted(set(LRS + [lr]), reverse=True), default=[lr],
                         key="search_lr",
        placeholder=_("Choose options"))
    dropout = float(state.get("dropout"))
    dropouts = c2.multiselect(_("Dropout"), sorted(set(DROPOUTS + [dropout])), default=[dropout], key="search_dropout",
        placeholder=_("Choose options"))
    batch = int(state.get("batch_size"))
    batches = c3.multiselect(_("Batch size"), sorted(set(BATCHES + [batch])), default=[batch], key="search_batch",
        placeholder=_("Choose options"))
    space = {"cut": [table[i].name for i in sorted(cuts)], "unfreeze_from": [table[i].name for i in sorted(unfreezes)],
             "lr": lrs, "dropout": dropouts, "batch_size": batches}
    return {k: v for k, v in space.items() if v}


def start(space: dict, ready: bool) -> None:
    c1, c2, c3, c4 = st.columns(4, vertical_alignment="bottom")
    head = c1.number_input(_("Stage 1 epochs per run"), 0, 1000, step=1, key="search_head",
                           value=int(state.get("head_epochs")))
    fine = c2.number_input(_("Stage 2 epochs per run"), 1, 1000, step=1, key="search_fine",
                           value=max(1, int(state.get("fine_tune_epochs"))))
    seeds = c3.number_input(_("Seeds per point"), 1, 10, step=1, key="search_seeds", value=1,
                            help=_("Train every point this many times (seeds seed, seed + 1, …): the tables show "
                                 "the mean and the spread. Differences smaller than the spread are noise."))
    mode = c4.radio(_("Points"), ["every combination", "random"], key="search_mode", horizontal=True,
                    format_func={"every combination": _("every combination"), "random": _("random")}.get)
    combos = 1
    for values in space.values():
        combos *= len(values)
    grid = mode == "every combination"
    trials = combos if grid else st.number_input(_("Random points"), 1, MAX_RUNS, value=min(8, combos), key="search_trials")
    asha = st.checkbox(_("Stop weak runs early (ASHA)"), key="search_asha",
                       help=_("Ray Tune's ASHA compares runs epoch by epoch and stops those clearly behind."))
    total = int(trials) * int(seeds)
    if total > MAX_RUNS:
        st.error(_("{total} runs is too many for one search here; choose at most {max_runs} (points × seeds).").format(total=total, max_runs=MAX_RUNS),
                 icon=":material/error:")
    label = ngettext("Start {total} run", "Start {total} runs", total).format(total=total) if total else _("Start the search")
    if st.button(label, type="primary", icon=":material/grid_view:", disabled=not (ready and total) or total > MAX_RUNS,
                 help=_("On Ray Tune: one run at a time on this machine, each waiting its turn in the machine's queue; "
                      "every run appears on the Runs page.")):
        with ui.guard(_("Starting the search")):
            from tlcore.search.tune import start_search

            base = dict(state.options_from_selection(), head_epochs=int(head), fine_tune_epochs=int(fine))
            with st.spinner(_("Starting the search…")):
                folder = start_search(base, space, grid=grid, trials=int(trials), seeds=int(seeds),
                                      scheduler="asha" if asha else "none")
            st.session_state["search_dir"] = folder
            st.rerun()


def results(ref: str, order: tuple[list[str], list[str]], was_live: bool) -> None:
    record = load_search(ref)
    live = record["state"] == "running"
    if was_live and not live:
        st.rerun()  # all done: redraw the page once (and stop polling)
    trials = record["trials"]
    done = sum(t["state"] == "completed" for t in trials)
    planned = len(record["points"]) * len(record.get("seeds") or [1])
    st.caption(_("Search **{search_id}** ({state}): {trials} of {planned} runs started, "
               "{done} completed").format(search_id=record['search_id'], state=record['state'], trials=len(trials), planned=planned, done=done) + (_(" (this refreshes by itself).") if live else "."))
    points = record["points_summary"]
    varying = {k for k, v in record["space"].items() if not isinstance(v, list) or len(v) > 1}
    if varying <= {"cut", "unfreeze_from"} and record.get("grid"):
        rows = [{"cut": p["options"].get("cut"), "unfreeze_from": p["options"].get("unfreeze_from"),
                 "val_accuracy": p["val_accuracy_mean"]} for p in points]
        st.plotly_chart(charts.sweep_heatmap(*sweep_matrix(rows, *order)), key="search_heatmap")
    elif any(p["val_accuracy_mean"] is not None for p in points):
        st.plotly_chart(charts.search_points(points), key="search_points")
    percent = st.column_config.NumberColumn(format="percent")
    if any(p["runs"] > 1 for p in points):
        st.markdown(_("**Per point, over its seeds**"))
        st.dataframe([{**p["options"], "runs": p["runs"], "mean": p["val_accuracy_mean"],
                       "spread (std)": p["val_accuracy_std"], "test mean": p.get("test_accuracy_mean"),
                       "test spread (std)": p.get("test_accuracy_std")} for p in points], hide_index=True,
                     column_config={k: percent for k in ("mean", "spread (std)", "test mean", "test spread (std)")},
                     key="search_point_table")
    st.dataframe([{**t["options"], "seed": t["seed"], "state": t["state"], "epochs": t["epochs"],
                   "val accuracy": t["val_accuracy"], "run": t["run_dir"].rsplit("/", 1)[-1]} for t in trials],
                 hide_index=True, column_config={"val accuracy": percent}, key="search_trial_table")


live_results = st.fragment(run_every=3)(results)


def best_run(record: dict) -> None:
    best = record.get("best")
    if best is None:
        return
    words = ", ".join(f"{k} {v}" for k, v in best["options"].items())
    c1, c2 = st.columns([2, 3], vertical_alignment="center")
    if c1.button(_("Open the best run ({val_accuracy:.1%})").format(val_accuracy=best['val_accuracy']), icon=":material/trophy:", key="open_best",
                 help=_("The best point ({words}): make its best run the current run.").format(words=words)):
        state.put("run_dir", best["run_dir"])
        for key in ("w:evaluate_run", "w:predict_run", "w:runs_run"):  # those pickers start from it
            st.session_state.pop(key, None)
        st.rerun()
    if state.get("run_dir") == best["run_dir"]:
        c2.success(_("The current run is {value} ({words}).").format(value=text.md(best['run_dir'].rsplit('/', 1)[-1]), words=words), icon=":material/check_circle:")
        l1, l2, l3 = st.columns(3)
        l1.page_link("views/5_Train.py", label=_("Its curves"), icon=":material/monitoring:")
        l2.page_link("views/6_Evaluate.py", label=_("Evaluate it"), icon=":material/fact_check:")
        l3.page_link("views/7_Predict.py", label=_("Try it on images"), icon=":material/image_search:")


def main() -> None:
    ui.header(_("Search"), _("Train many runs over cut points, unfreeze points and other options, and see which "
                        "transfers best."))
    bb = None
    with ui.guard(_("Building the backbone")):
        with st.spinner(_("Building {backbone_text}…").format(backbone_text=text.md(ui.backbone_text()))):
            bb = caches.chosen_backbone()
    ready = bool(state.get("data"))
    if bb is not None:
        st.caption(_("Backbone **{backbone_text}** and the other settings of the Backbone, Layers, Data and "
                   "Train pages; what you pick here changes from run to run.").format(backbone_text=text.md(ui.backbone_text())))
        if not ready:
            st.info(_("Choose a dataset first."), icon=":material/photo_library:")
            st.page_link("views/4_Data.py", label=_("Go to Data"), icon=":material/arrow_forward:")
        start(choose(bb), ready)
    searches = list_searches()
    if not searches:
        st.caption(_("No searches yet."))
        return
    st.subheader(_("Results"))
    folders = [s["search_dir"] for s in searches]
    current = st.session_state.get("search_dir")
    folder = st.selectbox(_("Search"), folders, index=folders.index(current) if current in folders else 0,
                          format_func=lambda f: f.rsplit("/", 1)[-1], key="search_pick")
    order = ([r.name for r in bb.table], [r.name for r in bb.table]) if bb is not None else ([], [])
    record = load_search(folder)
    if record["state"] == "running":
        if st.button(_("Stop the search"), icon=":material/stop_circle:", key="search_stop",
                     help=_("Every run still training stops (and keeps its model); no new run starts.")):
            request_stop(folder)
        live_results(folder, order, True)
    else:
        results(folder, order, False)
    best_run(load_search(folder))


ui.page_guard()
main()
