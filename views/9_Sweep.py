"""Sweep: train a grid of cut points × unfreeze points and compare their validation accuracy."""
from __future__ import annotations

import streamlit as st

from studio import caches, charts, components as ui, state
from tlcore.plan import default_unfreeze_index
from tlcore.layers import cut_options, index_of
from tlcore.runs import LIVE_STATES
from tlcore.sweep import MAX_RUNS, best_sweep_row, list_sweeps, point_summary, sweep_matrix


def choose(bb) -> tuple[list[int], list[int]]:
    table = bb.table
    n = len(table)
    cuts_offered = cut_options(table)
    tag = f"{bb.label}:{n}"  # indexes belong to one backbone: new widgets when it changes
    default_cut = index_of(table, state.get("cut"), bb.default_cut)
    default_unfreeze = index_of(table, state.get("unfreeze_from"), default_unfreeze_index(n))
    c1, c2 = st.columns(2, gap="large")
    cuts = c1.multiselect(
        "Cut after (clean cut points)", cuts_offered, key=f"sweep_cuts:{tag}",
        default=[default_cut] if default_cut in cuts_offered else [cuts_offered[-1]],
        format_func=lambda i: f"{i} · {table[i].name}",
        help="Each is a complete feature extractor: every path from input to output passes through it.")
    unfreezes = c2.multiselect(
        "Unfreeze from (stage 2)", list(range(n)), key=f"sweep_unfreezes:{tag}", default=[default_unfreeze],
        format_func=lambda i: f"{i} · {table[i].name}",
        help="In stage 2 this layer and every later one (up to the cut) trains.")
    return sorted(cuts), sorted(unfreezes)


def start(bb, cuts: list[int], unfreezes: list[int], ready: bool) -> None:
    table = bb.table
    c1, c2, c4, c3 = st.columns([1, 1, 1, 2], vertical_alignment="bottom")
    head = c1.number_input("Stage 1 epochs per run", 0, 1000, step=1, key="sweep_head",
                           value=int(state.get("head_epochs")))
    fine = c2.number_input("Stage 2 epochs per run", 1, 1000, step=1, key="sweep_fine",
                           value=max(1, int(state.get("fine_tune_epochs"))))
    seeds = c4.number_input("Seeds per point", 1, 10, step=1, key="sweep_seeds", value=1,
                            help="Train every pair this many times, with seeds seed, seed + 1, …: the matrix "
                                 "shows the mean, the table the spread. Differences smaller than the spread "
                                 "are noise.")
    total = len(cuts) * len(unfreezes) * int(seeds)
    past = sum(1 for c in cuts for u in unfreezes if u > c)
    if past:
        st.caption(f"{past} of the {len(cuts) * len(unfreezes)} pairs unfreeze past their cut: those train the head only, "
                   "a baseline for the others.")
    too_many = total > MAX_RUNS
    if too_many:
        st.error(f"{total} runs is too many for one sweep; choose at most {MAX_RUNS} runs (pairs × seeds).",
                 icon=":material/error:")
    label = f"Start {total} run{'s' if total != 1 else ''}" if total else "Start the sweep"
    if c3.button(label, type="primary", icon=":material/grid_view:", disabled=not (ready and total) or too_many,
                 help="Every run waits in the machine's queue and starts when the one before it ends. Runs "
                      "with the same cut share the stage-1 feature cache."):
        with ui.guard("Starting the sweep"):
            from tlcore.sweep import start_sweep

            base = dict(state.options_from_selection(), head_epochs=int(head), fine_tune_epochs=int(fine))
            with st.spinner(f"Starting {total} training processes…"):
                sweep_id, runs = start_sweep(base, [table[i].name for i in cuts], [table[i].name for i in unfreezes],
                                             seeds=int(seeds))
            st.session_state["sweep_id"] = sweep_id
            st.rerun()


def results(sweep_id: str, order: tuple[list[str], list[str]], was_live: bool) -> None:
    from tlcore.sweep import sweep_results

    rows = sweep_results(sweep_id)
    live = any(r["state"] in LIVE_STATES for r in rows)
    if was_live and not live:
        st.rerun()  # all done: redraw the page once (and stop polling)
    done = sum(r["state"] == "completed" for r in rows)
    st.caption(f"Sweep **{sweep_id}**: {len(rows)} runs, {done} completed"
               + (", the rest waiting or running (this refreshes by itself)." if live else "."))
    cuts, unfreezes, z = sweep_matrix(rows, *order)
    st.plotly_chart(charts.sweep_heatmap(cuts, unfreezes, z), key="sweep_heatmap")
    points = point_summary(rows)
    if any(p["runs"] > 1 for p in points):
        st.markdown("**Per point, over its seeds**")
        st.dataframe([{"cut after": p["cut"], "unfreeze from": p["unfreeze_from"], "runs": p["runs"],
                       "scored": p["scored"], "mean": p["mean"], "spread (std)": p["std"], "min": p["min"],
                       "max": p["max"]} for p in points], hide_index=True,
                     column_config={k: st.column_config.NumberColumn(format="percent")
                                    for k in ("mean", "spread (std)", "min", "max")})
        st.caption("The matrix shows each point's mean validation accuracy. Two points whose means differ "
                   "by less than their spread are not clearly different.")
    st.dataframe([{"cut after": r["cut"], "unfreeze from": r["unfreeze_from"], "seed": r.get("seed"),
                   "state": r["state"], "val accuracy": r["val_accuracy"], "test accuracy": r.get("test_accuracy"),
                   "run": r["run_id"]} for r in rows],
                 hide_index=True, column_config={"val accuracy": st.column_config.NumberColumn(format="percent"),
                                                 "test accuracy": st.column_config.NumberColumn(format="percent")})


live_results = st.fragment(run_every=3)(results)


def main() -> None:
    ui.header("Sweep", "Train every pair of cut point and unfreeze point, and see which transfers best.")
    bb = None
    with ui.guard("Building the backbone"):
        with st.spinner(f"Building {ui.backbone_text()}…"):
            bb = caches.chosen_backbone()
    ready = bool(state.get("data"))
    if bb is not None:
        st.caption(f"Backbone **{ui.backbone_text()}** and the other settings of the Backbone, Layers, Data and "
                   "Train pages; only the cut, the unfreeze point and the epochs change from run to run.")
        if not ready:
            st.info("Choose a dataset first.", icon=":material/photo_library:")
            st.page_link("views/4_Data.py", label="Go to Data", icon=":material/arrow_forward:")
        cuts, unfreezes = choose(bb)
        start(bb, cuts, unfreezes, ready)
    sweeps = list_sweeps()
    if not sweeps:
        st.caption("No sweeps yet.")
        return
    st.subheader("Results")
    current = st.session_state.get("sweep_id")
    sweep_id = st.selectbox("Sweep", sweeps, index=sweeps.index(current) if current in sweeps else 0, key="sweep_pick")
    order = ([r.name for r in bb.table], [r.name for r in bb.table]) if bb is not None else ([], [])
    from tlcore.sweep import sweep_results

    rows = sweep_results(sweep_id)
    if any(r["state"] in LIVE_STATES for r in rows):
        live_results(sweep_id, order, True)
    else:
        results(sweep_id, order, False)
    best = best_sweep_row(rows)
    if best is not None:
        c1, c2 = st.columns([2, 3], vertical_alignment="center")
        if c1.button(f"Open the best run ({best['val_accuracy']:.1%})", icon=":material/trophy:", key="open_best",
                     help=f"Cut after {best['cut']}, unfreeze from {best['unfreeze_from']}: make it the current run."):
            state.put("run_dir", best["run_dir"])
            for key in ("w:evaluate_run", "w:predict_run", "w:runs_run"):  # those pickers start from it
                st.session_state.pop(key, None)
            st.rerun()
        if state.get("run_dir") == best["run_dir"]:
            c2.success(f"The current run is {best['run_id']} (cut after {best['cut']}, unfreeze from "
                       f"{best['unfreeze_from']}).", icon=":material/check_circle:")
            l1, l2, l3 = st.columns(3)
            l1.page_link("views/5_Train.py", label="Its curves", icon=":material/monitoring:")
            l2.page_link("views/6_Evaluate.py", label="Evaluate it", icon=":material/fact_check:")
            l3.page_link("views/7_Predict.py", label="Try it on images", icon=":material/image_search:")


ui.page_guard()
main()
