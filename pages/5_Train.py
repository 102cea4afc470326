"""Train: hyperparameters, Start (a process of its own), live charts and progress, Stop, queue."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

import studio_charts as charts
import studio_ui as ui
from tlcore import home, studio
from tlcore.runs import LIVE_STATES, Run, RunStore
from tlcore.train import OPTIMIZERS


def plan() -> bool:
    """What will be trained; False when something needed is missing."""
    o = ui.options_from_selection()
    data = o["data"]
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        c1.markdown(f"**Backbone**  \n{o['backbone']} · {o['input_size'] or 'default'} px  \n"
                    f"weights: {o['weights'] if o['weights'] in ('imagenet', 'none') else Path(str(o['weights'])).name}")
        c2.markdown(f"**Model**  \ncut: {o['cut'] or 'last layer'} · unfreeze from: "
                    f"{o['unfreeze_from'] or 'last third'}  \nhead: {o['pooling']} pooling"
                    + (f", dense {', '.join(map(str, o['dense']))}" if o["dense"] else "")
                    + f", dropout {o['dropout']}" + (" · BatchNorm trains" if o["train_bn"] else ""))
        c3.markdown(f"**Data**  \n{Path(data).name if data else '—'}  \naugmentation: {o['augment']}"
                    f" · splits {o['val_split']:.0%}/{o['test_split']:.0%} · seed {o['seed']}")
    if not data:
        st.info("Choose a dataset first.", icon=":material/photo_library:")
        st.page_link("pages/4_Data.py", label="Go to Data", icon=":material/arrow_forward:")
        return False
    return True


def hyperparameters() -> None:
    st.subheader("Hyperparameters")
    c1, c2, c3, c4 = st.columns(4)
    head = c1.number_input("Stage 1 epochs (head only)", 0, 1000, step=1, key=ui.bound("head_epochs"))
    fine = c2.number_input("Stage 2 epochs (fine-tuning)", 0, 1000, step=1, key=ui.bound("fine_tune_epochs"))
    batch = c3.number_input("Batch size", 1, 4096, step=1, key=ui.bound("batch_size"))
    patience = c4.number_input("Early stopping patience", 0, 1000, step=1, key=ui.bound("early_stopping"),
                               help="Stop when the validation loss has not improved for this many "
                                    "epochs, and keep the best weights. 0 turns it off.")
    c1, c2, c3, c4 = st.columns(4)
    optimizer = c1.selectbox("Optimizer", OPTIMIZERS, key=ui.bound("optimizer", "adam", lambda v: v in OPTIMIZERS),
                             format_func={"adam": "Adam", "rmsprop": "RMSprop", "sgd": "SGD (momentum 0.9)"}.get)
    lr = c2.number_input("Learning rate, stage 1", min_value=1e-7, max_value=1.0, step=1e-4, format="%.1e",
                         key=ui.bound("lr", coerce=float))
    auto = c3.toggle("Stage 2 at a tenth of it", key=ui.bound("fine_tune_lr_auto", ui.get("fine_tune_lr") is None),
                     help="The usual recipe: fine-tune with a learning rate one tenth of stage 1's.")
    if auto:
        c4.metric("Learning rate, stage 2", f"{lr / 10:.1e}")
        fine_lr = None
    else:
        fine_lr = c4.number_input("Learning rate, stage 2", min_value=1e-8, max_value=1.0, step=1e-5,
                                  format="%.1e", key=ui.bound("fine_tune_lr", lr / 10, coerce=float))
    with st.expander("More options", icon=":material/tune:"):
        c1, c2, c3, c4 = st.columns(4)
        weights = c1.selectbox("Class weights", ["auto", "none"], key=ui.bound("class_weights"),
                               help="auto: balance imbalanced classes")
        mp = c2.selectbox("Mixed precision", ["auto", "on", "off"], key=ui.bound("mixed_precision"),
                          help="auto: on for GPUs that support float16 well")
        xla = c3.toggle("XLA compilation", key=ui.bound("xla", False))
        name = c4.text_input("Run label", key=ui.bound("name", ""), placeholder="optional")
    for key, value in (("head_epochs", int(head)), ("fine_tune_epochs", int(fine)), ("batch_size", int(batch)),
                       ("early_stopping", int(patience)), ("optimizer", optimizer), ("lr", float(lr)),
                       ("fine_tune_lr", None if fine_lr is None else float(fine_lr)),
                       ("class_weights", weights), ("mixed_precision", mp), ("xla", bool(xla)),
                       ("name", name or None)):
        ui.put(key, value)


def start() -> None:
    live = [r for r in RunStore().runs() if r.state() in LIVE_STATES]
    label = "Start training" if not live else "Start (waits in the queue)"
    if st.button(label, type="primary", icon=":material/play_arrow:"):
        with ui.guard("Starting the training"):
            with st.spinner("Starting a training process…"):
                from tlcore.jobs import start_training

                run = start_training(ui.options_from_selection())
            ui.put("run_dir", str(run.path))
            st.rerun()


def render_run(run_dir: str, was_live: bool) -> None:
    """The run's state, progress, charts and controls, read from the run store."""
    run = Run(run_dir)
    with ui.guard("Reading the run"):
        status = run.status()
        state = status.get("state", "unknown")
        metrics = run.metrics()
        options = run.config().get("options") or {}
        if was_live and state not in LIVE_STATES:
            st.rerun()  # finished: redraw the whole page (and stop polling)
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        with c1:
            ui.state_badge(state)
            st.markdown(f"**{run.run_id}**" + (f" · {options['name']}" if options.get("name") else ""))
        if state in LIVE_STATES:
            if c2.button("Stop", icon=":material/stop:", key="stop_run",
                         help="Ends within one batch; the model so far is saved."):
                run.request_stop()
            if run.stop_requested():
                st.caption("Stop requested: the run ends after the current batch and saves its model.")
        if state == "queued":
            st.info("Waiting for the machine: another training is running. This one starts when it ends.",
                    icon=":material/hourglass_empty:")
        elif state == "running":
            seen = st.session_state.get("_progress_seen")
            progress, seen = studio.epoch_progress(status, metrics, seen)
            st.session_state["_progress_seen"] = seen
            st.progress(progress["fraction"], text=progress["text"])
        elif state == "failed":
            st.error(f"The training failed: {status.get('error') or 'no reason recorded'}",
                     icon=":material/error:")
            st.caption(f"The training log is `{home.home() / 'logs' / (run.run_id + '.log')}`.")
        elif state == "interrupted":
            st.warning("The training process is gone (the machine restarted, or it was killed). Resume it "
                       "from its last checkpoint on the Runs page.", icon=":material/warning:")
        elif state == "stopped":
            st.info("Stopped on request; the model so far is saved.", icon=":material/stop_circle:")
        if metrics:
            boundary = studio.stage_boundary(metrics) or (
                studio.planned_boundary(options) if state in LIVE_STATES else None)
            st.plotly_chart(charts.training_curves(metrics, boundary, status.get("epochs_total")),
                            key=f"curves_{run.run_id}")
        elif state in LIVE_STATES:
            st.caption("The charts appear when the first epoch ends.")
        if state == "completed":
            final(run, metrics)


def final(run: Run, metrics: list[dict]) -> None:
    summary = run.summary()
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Best validation accuracy", studio.format_percent(summary["val_accuracy"]), border=True)
    c2.metric("Test accuracy", studio.format_percent(summary["test_accuracy"]), border=True)
    c3.metric("Epochs", len(metrics), border=True)
    c4.metric("Time", studio.format_seconds(sum(m.get("seconds") or 0 for m in metrics)), border=True)
    l1, l2, _ = st.columns([1, 1, 3])
    l1.page_link("pages/6_Evaluate.py", label="Evaluate", icon=":material/fact_check:")
    l2.page_link("pages/7_Predict.py", label="Try it on images", icon=":material/image_search:")


live_run = st.fragment(run_every=2)(render_run)


def queue() -> None:
    waiting = studio.queued_runs()
    if waiting:
        st.subheader("Queue")
        st.dataframe([{"position": i + 1, "run": r.run_id, "backbone": r.summary()["backbone"],
                       "queued since": r.raw_status().get("started_at")} for i, r in enumerate(waiting)],
                     hide_index=True)


def main() -> None:
    ui.header("Train", "Stage 1 trains the head on the frozen backbone; stage 2 fine-tunes from the unfreeze point.")
    ready = plan()
    hyperparameters()
    if ready:
        start()
    run = ui.current_run()
    if run is not None:
        st.subheader("Run")
        state = run.state()
        if state in LIVE_STATES:
            live_run(str(run.path), True)
        else:
            render_run(str(run.path), False)
    queue()
    st.caption("Training runs in a process of its own: closing or reloading this page does not stop it, "
               "and coming back shows it again.")


ui.page_guard()
main()
