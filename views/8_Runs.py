"""Runs: every run with its results; compare curves; resume, repeat, delete, export; housekeeping."""
from __future__ import annotations

import streamlit as st

from studio import charts, components as ui, state, text
from studio.i18n import N_, _, pinned, shown
from tlcore.core import home
from tlcore.data.datasets import delete_dataset, list_datasets
from tlcore.ship.export import export_file
from tlcore.evaluation.stats import compare_predictions, seed_groups
from tlcore.recipe.features import clear_cache
from tlcore.core.runs import LIVE_STATES, RunStore, option_differences
from tlcore.ship.export import FORMATS
from tlcore.ship.tflite import IO_TYPES, QUANTIZE
from tlcore.ship.usage import curl_example, serve_command

EXPORTS = {"bundle": N_("Bundle (.zip: models, labels, model card)"), "keras": "Keras (.keras)",
           "savedmodel": N_("TensorFlow SavedModel (.zip)"), "tflite": "TFLite (.tflite)", "onnx": "ONNX (.onnx)",
           "code": N_("Training script (.py)")}
QUANTIZE_WORDS = {"none": N_("none (float32)"), "float16": N_("float16 weights"),
                  "dynamic": N_("dynamic range (int8 weights)"), "int8": N_("full integer (int8)"),
                  "int8-mixed": N_("mixed integer (int8-mixed)")}
CURVES = {"val_accuracy": N_("validation accuracy"), "val_loss": N_("validation loss"),
          "accuracy": N_("training accuracy"), "loss": N_("training loss")}


def table(runs) -> None:
    rows = []
    for r in runs:
        s = r.summary()
        metrics = r.metrics()
        rows.append({"run": s["run_id"], "label": text.display_name(s.get("name")), "state": s["state"],
                     "error": s["error"] or "", "backbone": s["backbone"],
                     "dataset": (s["dataset"] or "").rstrip("/").split("/")[-1],
                     "epochs": len(metrics), "val accuracy": s["val_accuracy"],
                     "val 95% interval": text.interval_words(s.get("val_accuracy_interval"), s.get("val_count"))
                     .removeprefix(_("95% interval ")),
                     "test accuracy": s["test_accuracy"],
                     "test 95% interval": text.interval_words(s.get("test_accuracy_interval"), s.get("test_count"))
                     .removeprefix(_("95% interval ")), "started": s["started_at"]})
    st.dataframe([{**row, "state": text.state_word(row["state"])} for row in rows], hide_index=True, column_config={
        "run": _("run"), "label": _("label"), "state": _("state"), "backbone": _("backbone"),
        "dataset": _("dataset"), "epochs": _("epochs"), "val 95% interval": _("val 95% interval"),
        "test 95% interval": _("test 95% interval"), "started": _("started"),
        "val accuracy": st.column_config.NumberColumn(_("val accuracy"), format="percent"),
        "test accuracy": st.column_config.NumberColumn(_("test accuracy"), format="percent"),
        "error": st.column_config.TextColumn(_("error"), width="medium", help=_("the first line of why the run failed or stopped"))})
    failed = sum(row["state"] == "failed" for row in rows)
    if failed:
        prune_failed(failed)


def prune_failed(count: int) -> None:
    """One button deleting every failed run (`tlcore runs --prune failed` does the same)."""
    c1, c2 = st.columns([3, 1], vertical_alignment="center")
    c1.caption(_("{count} failed run{value}: the error column says why. Deleting them "
               "keeps every other run.").format(count=count, value='s' if count > 1 else ''))
    if c2.button(_("Delete failed runs ({count})").format(count=count), icon=":material/delete_sweep:", key="prune_failed"):
        with ui.guard(_("Deleting the failed runs")):
            removed = RunStore().prune(["failed"])
            if state.get("run_dir") in {r["run_dir"] for r in removed}:
                state.put("run_dir", None)
            st.session_state.pop("w:runs_run", None)
            st.toast(_("Deleted {removed} failed run{value}.").format(removed=len(removed), value='s' if len(removed) != 1 else ''))
            st.rerun()


def groups(runs) -> None:
    """Runs trained together over seeds (`tlcore train --seeds N`): their mean and spread."""
    found = seed_groups(runs)
    if not found:
        return
    st.subheader(_("Over seeds"))
    st.caption(_("Runs trained with the same options and different seeds: how much the result owes to the seed."))
    for group in found:
        with st.container(border=True):
            st.markdown(text.seed_group_words(group))
            runs_line = ", ".join(_("{run} (seed {seed}: {accuracy})").format(
                run=text.md(r["run_id"]), seed=r["seed"], accuracy=text.format_percent(r["test_accuracy"]))
                for r in group["runs"])
            ens = group.get("ensemble")
            line = _("Group {group}: {runs}").format(group=text.md(group["group"]), runs=runs_line)
            if ens:
                line += _(". Their ensemble {run}: test accuracy {accuracy}").format(
                    run=text.md(ens["run_id"]), accuracy=text.accuracy_words(
                        ens["test_accuracy"], ens.get("test_accuracy_interval"), ens.get("test_count")))
            st.caption(line)


def compare(runs) -> None:
    with_metrics = [r for r in runs if r.metrics()]
    if len(with_metrics) < 1:
        return
    st.subheader(_("Compare"))
    ids = [r.run_id for r in with_metrics]
    pair = st.session_state.get("_compare_pair") or []
    if pair and st.session_state.get("_compared") != pair:  # just started "with versus without pretraining"
        st.session_state["compare_runs"] = [i for i in pair if i in ids] or ids[:3]
        if all(i in ids for i in pair):
            st.session_state["_compared"] = pair
    elif [i for i in st.session_state.get("compare_runs", []) if i not in ids]:
        st.session_state["compare_runs"] = [i for i in st.session_state["compare_runs"] if i in ids]
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect(_("Runs"), ids, default=ids[:3] if "compare_runs" not in st.session_state else None,
                            key="compare_runs",
        placeholder=_("Choose options"))
    key = c2.selectbox(_("Curve"), list(CURVES), format_func=shown(CURVES), key="compare_curve")
    if chosen:
        series = {r.run_id: r.metrics() for r in with_metrics if r.run_id in chosen}
        st.plotly_chart(charts.overlay_curves(series, key), key="overlay")
        picked = [r for r in with_metrics if r.run_id in chosen]
        if len(picked) > 1:
            differ = option_differences(picked)
            if differ:
                st.markdown(_("**What differs between them**"))
                st.dataframe([{k: v if k == "option" else ("" if v is None else str(v)) for k, v in row.items()}
                              for row in differ], hide_index=True, key="compare_differ")
            else:
                st.caption(_("These runs were trained with the same options."))
            significance(picked)


def significance(picked) -> None:
    """Whether each pair of the compared runs differs significantly on the same test images."""
    st.markdown(_("**Do they differ on the same test images?**"))
    evaluations = {r.run_id: r.evaluation() or {} for r in picked}
    for i, a in enumerate(picked):
        for b in picked[i + 1:]:
            ea, eb = evaluations[a.run_id], evaluations[b.run_id]
            if ea.get("predictions") is None or eb.get("predictions") is None:
                missing = ", ".join(r.run_id for r, e in ((a, ea), (b, eb)) if e.get("predictions") is None)
                st.caption(_("{missing}: no per-image results; evaluate on the Evaluate page to compare.").format(missing=missing))
                continue
            if ea.get("split") != eb.get("split"):
                st.markdown(text.mcnemar_words({"same_images": False}, a.run_id, b.run_id))
                continue
            st.markdown(text.mcnemar_words(compare_predictions(ea["predictions"], eb["predictions"]),
                                           a.run_id, b.run_id))


def actions(runs) -> None:
    st.subheader(_("One run"))
    run = ui.pick_run(_("Run"), runs, "runs_run")
    run_state = run.state()
    c1, c2, c3 = st.columns(3)
    with c1.container(border=True):
        st.markdown(_("**Resume**"))
        can_resume = run_state in ("interrupted", "stopped") and run.model_path() is not None
        st.caption(_("Continue an interrupted or stopped run from its last checkpoint.")
                   if can_resume else _("Only interrupted or stopped runs resume (this one is {run_state}).").format(run_state=text.state_word(run_state)))
        if st.button(_("Resume"), icon=":material/play_arrow:", disabled=not can_resume, key="resume"):
            with ui.guard(_("Resuming the run")):
                from tlcore.training.jobs import resume_training

                with st.spinner(_("Starting the training process…")):
                    resumed = resume_training(run.path)
                state.put("run_dir", str(resumed.path))
                st.switch_page("views/5_Train.py")
    with c2.container(border=True):
        st.markdown(_("**Repeat with changes**"))
        st.caption(_("Load this run's settings into the studio, change what you like, train again."))
        if st.button(_("Load its settings"), icon=":material/replay:", key="repeat",
                     disabled=not run.config().get("options")):
            state.load_options(run.config()["options"])
            st.switch_page("views/5_Train.py")
    with c3.container(border=True):
        st.markdown(_("**Delete**"))
        live = run_state in LIVE_STATES
        sure = st.checkbox(_("Yes, delete {run_id}").format(run_id=text.md(run.run_id)), key=f"sure_{run.run_id}", disabled=live)
        if st.button(_("Delete run"), icon=":material/delete:", disabled=not sure or live, key="delete_run"):
            with ui.guard(_("Deleting the run")):
                RunStore().delete(run.run_id)
                if state.get("run_dir") == str(run.path):
                    state.put("run_dir", None)
                st.session_state.pop("w:runs_run", None)
                st.toast(_("Deleted {run_id}.").format(run_id=text.md(run.run_id)))
                st.rerun()
    export(run)


def export(run) -> None:
    if run.model_path() is None:
        return
    with st.container(border=True):
        st.markdown(_("**Export**"))
        c1, c2, c3, c4 = st.columns([3, 2, 1.4, 1.6], vertical_alignment="bottom")
        formats = sorted(FORMATS, key=lambda f: list(EXPORTS).index(f) if f in EXPORTS else len(EXPORTS))
        fmt = c1.selectbox(_("Format"), formats, format_func=pinned(lambda f: str(EXPORTS.get(f, f))), key="export_format")
        tflite = fmt in ("tflite", "bundle")
        quantize = c2.selectbox(_("TFLite quantization"), list(QUANTIZE), format_func=pinned(lambda q: str(QUANTIZE_WORDS.get(q, q))),
                                key="export_quantize", disabled=not tflite)
        io = c3.selectbox(_("TFLite input/output"), list(IO_TYPES), key="export_io",
                          disabled=not tflite or quantize != "int8")
        if c4.button(_("Prepare the file"), icon=":material/build:", key="export"):
            with ui.guard(_("Exporting the model")):
                with st.spinner(_("Exporting and checking every copy against the original…")):
                    name, data, report = export_file(run.path, fmt, quantize if tflite else "none", io=(
                        io if tflite and quantize == "int8" else "float32"))
                st.session_state["_export"] = {"run": run.run_id, "name": name, "data": data, "report": report}
        ready = st.session_state.get("_export")
        if ready and ready["run"] == run.run_id:
            report = ready["report"]
            st.download_button(_("Download {name} ({data})").format(name=text.md(ready['name']), data=text.format_bytes(len(ready['data']))),
                               ready["data"], file_name=ready["name"], icon=":material/download:",
                               mime="application/octet-stream", type="primary")
            st.caption(text.export_check(report))
    serving(run)
    as_code(run)


def serving(run) -> None:
    with st.container(border=True):
        st.markdown(_("**Serve it over HTTP**"))
        st.caption(_("A REST server on this machine (FastAPI): POST images to /predict, API docs at /docs. "
                   "Add --token to require a bearer token; a bundle .zip serves the same way, and the Dockerfile "
                   "in the project builds a serving image from one."))
        st.code(serve_command(run.path), language="bash")
        st.code(curl_example(), language="bash")


def as_code(run) -> None:
    with st.container(border=True):
        st.markdown(_("**This run as code**"))
        st.caption(_("One standalone Keras script (keras, tensorflow, numpy, Pillow) that rebuilds this model "
                   "and trains it the same way: run it with `python train.py DATA`."))
        if st.toggle(_("Show the script"), key=f"code_{run.run_id}"):
            with ui.guard(_("Writing the script")), st.spinner(_("Writing the script…")):
                st.code(_script(str(run.path), str(run.file("config.json").stat().st_mtime_ns)),
                        language="python", line_numbers=True)


@st.cache_data(max_entries=8, show_spinner=False)  # the caller says it, in the session's language
def _script(run_dir: str, stamp: str) -> str:
    from tlcore.ship.codegen import script_text

    return script_text(run_dir)


def housekeeping() -> None:
    st.subheader(_("Housekeeping"))
    c1, c2 = st.columns(2)
    with c1.container(border=True):
        st.markdown(_("**Imported datasets**"))
        sets = list_datasets()
        if not sets:
            st.caption(_("None in {datasets_dir}.").format(datasets_dir=text.code(home.datasets_dir())))
        else:
            labels = {d["path"]: f"{d['name']} · {text.format_bytes(d['bytes'])}" for d in sets}
            chosen = st.multiselect(_("Datasets to delete"), list(labels), format_func=labels.get, key="del_sets",
        placeholder=_("Choose options"))
            sure = st.checkbox(_("Yes, delete them"), key="sure_sets", disabled=not chosen)
            if st.button(_("Delete datasets"), icon=":material/delete:", disabled=not (chosen and sure)):
                with ui.guard(_("Deleting the datasets")):
                    for path in chosen:
                        delete_dataset(path)
                        if state.get("data") == path:
                            state.put("data", "")
                    st.toast(_("Deleted {chosen} dataset(s).").format(chosen=len(chosen)))
                    for key in ("del_sets", "sure_sets"):
                        st.session_state.pop(key, None)
                    st.rerun()
    with c2.container(border=True):
        st.markdown(_("**Cache**"))
        size = home.folder_size(home.cache_dir())
        st.caption(_("Decoded images and features: {size} in {cache_dir}. "
                   "Deleting it is safe; the next training decodes the images again.").format(size=text.format_bytes(size), cache_dir=text.code(home.cache_dir())))
        sure = st.checkbox(_("Yes, clear the cache"), key="sure_cache", disabled=size == 0)
        if st.button(_("Clear the cache"), icon=":material/cleaning_services:", disabled=not sure or size == 0):
            with ui.guard(_("Clearing the cache")):
                freed = clear_cache()
                st.toast(_("Freed {freed}.").format(freed=text.format_bytes(freed)))
                st.session_state.pop("sure_cache", None)
                st.rerun()


def main() -> None:
    ui.header(_("Runs"), _("Every training run on this machine, from the app and the command line."))
    runs = RunStore().runs()
    if not runs:
        st.info(_("No runs yet."), icon=":material/history:")
        st.page_link("views/5_Train.py", label=_("Go to Train"), icon=":material/arrow_forward:")
    else:
        table(runs)
        groups(runs)
        compare(runs)
        actions(runs)
    housekeeping()


ui.page_guard()
main()
