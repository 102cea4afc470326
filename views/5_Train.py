"""Train: a preset, hyperparameters, a learning-rate finder, Start (a process of its own), live charts."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import charts, components as ui, engine_words, state, text
from studio.i18n import N_, _, pinned, shown
from tlcore.recipe.presets import list_presets
from tlcore.recipe.config import TrainConfig
from tlcore.training.jobs import queued_runs
from tlcore.core.runs import LIVE_STATES, RunStore

AUGMENT_VALUES = {"none": N_("none"), "light": N_("light"), "strong": N_("strong")}  # the summary's words for --augment

PRESETS = {p.name: p for p in list_presets()}


def plan() -> bool:
    """What will be trained; False when something needed is missing."""
    o = state.options_from_selection()
    data = o["data"]
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        if o["backbone_file"]:
            c1.markdown(_("**Backbone**  \nyour own model {name}  \n"
                        "preprocessing: {value}").format(name=text.code(Path(str(o['backbone_file'])).name), value=o['preprocessing'] or 'auto'))
        else:
            c1.markdown(_("**Backbone**  \n{backbone} · {value} px  \n"
                        "weights: {value2}").format(backbone=o['backbone'], value=o['input_size'] or _('default'), value2=o['weights'] if o['weights'] in ('imagenet', 'none') else text.md(Path(str(o['weights'])).name)))
        c2.markdown(_("**Model**  \ncut: {value}"
                    " · unfreeze from: {value2}  \nhead: {pooling} pooling").format(value=text.md(o['cut'] or (_('its old head removed') if o['backbone_file'] else _('last layer'))), value2=text.md(o['unfreeze_from'] or _('last third')), pooling=o['pooling'])
                    + (_(", dense {str}").format(str=', '.join(map(str, o['dense']))) if o["dense"] else "")
                    + _(", dropout {dropout}").format(dropout=o['dropout']) + (_(" · BatchNorm trains") if o["train_bn"] else "")
                    + {"logistic": _(" · fitted by logistic regression"),
                       "pixels": _(" · a pixel model instead (no backbone)")}.get(o.get("head_fit"), ""))
        mixing = " · ".join(f"{k} {o[k]:g}" for k in ("mixup", "cutmix") if o.get(k))
        c3.markdown(_("**Data**  \n{value}  \naugmentation: {augment}").format(value=text.md(Path(data).name) if data else '—', augment=AUGMENT_VALUES.get(o['augment'], o['augment']))
                    + (f" · {mixing}" if mixing else "")
                    + _(" · splits {val_split:.0%}/{test_split:.0%} · seed {seed}").format(val_split=o['val_split'], test_split=o['test_split'], seed=o['seed']))
    if not data:
        st.info(_("Choose a dataset first."), icon=":material/photo_library:")
        st.page_link("views/4_Data.py", label=_("Go to Data"), icon=":material/arrow_forward:")
        return False
    return True


NO_PRESET = "—"  # a selectbox shows None as "no choice", so "no preset" needs a value of its own


def _apply_preset() -> None:
    name = st.session_state.get("w:preset_choice")
    name = None if name == NO_PRESET else name
    state.put("preset", name)
    if name:
        state.load_options(state.preset_form_options(name, state.options_from_selection()), keep=("w:preset_choice",))


def preset() -> None:
    key = "w:preset_choice"
    if st.session_state.get(key) not in (NO_PRESET, *PRESETS):
        st.session_state[key] = state.get("preset") if state.get("preset") in PRESETS else NO_PRESET
    name = st.selectbox(
        _("Start from a classic recipe"), [NO_PRESET, *PRESETS], on_change=_apply_preset, key=key,
        format_func=pinned(lambda n: _("None: my own settings") if n == NO_PRESET else n),
        help=_("Puts a recipe of the course material into the form (and on the Backbone, Layers and Data "
             "pages). Change anything afterwards: your edits win."))
    if name != NO_PRESET:
        p = PRESETS[name]
        st.caption(engine_words.say(p.description))
        shown = ", ".join(f"{k} {v}" for k, v in state.preset_form_options(name, state.options_from_selection()).items()
                          if v is not None)
        st.caption(_("It set: {shown}. The run records the preset's name.").format(shown=shown))


def hyperparameters() -> None:
    st.subheader(_("Hyperparameters"))
    preset()
    c1, c2, c3, c4 = st.columns(4)
    head = c1.number_input(_("Stage 1 epochs (head only)"), 0, 1000, step=1, key=state.bound("head_epochs"))
    fine = c2.number_input(_("Stage 2 epochs (fine-tuning)"), 0, 1000, step=1, key=state.bound("fine_tune_epochs"))
    batch = c3.number_input(_("Batch size"), 1, 4096, step=1, key=state.bound("batch_size"))
    patience = c4.number_input(_("Early stopping patience"), 0, 1000, step=1, key=state.bound("early_stopping"),
                               help=_("Stop when the validation loss has not improved for this many "
                                    "epochs, and keep the best weights. 0 turns it off."))
    c1, c2, c3, c4 = st.columns(4)
    optimizers = state.choices("optimizer")
    optimizer = c1.selectbox(_("Optimizer"), optimizers, key=state.bound("optimizer", valid=lambda v: v in optimizers),
                             format_func={"adam": _("Adam"), "adamw": _("AdamW"), "rmsprop": _("RMSprop"),
                                          "sgd": _("SGD (momentum 0.9)")}.get)
    lr = c2.number_input(_("Learning rate, stage 1"), min_value=1e-7, max_value=1.0, step=1e-4, format="%.1e",
                         key=state.bound("lr", coerce=float))
    auto = c3.toggle(_("Stage 2 at a tenth of it"), key=state.bound("fine_tune_lr_auto", state.get("fine_tune_lr") is None),
                     help=_("The usual recipe: fine-tune with a learning rate one tenth of stage 1's."))
    stage2_lr = TrainConfig(lr=float(lr)).stage2_lr  # the engine's rule for stage 2's rate
    if auto:
        c4.metric(_("Learning rate, stage 2"), f"{stage2_lr:.1e}")
        fine_lr = None
    else:
        fine_lr = c4.number_input(_("Learning rate, stage 2"), min_value=1e-8, max_value=1.0, step=1e-5,
                                  format="%.1e", key=state.bound("fine_tune_lr", stage2_lr, coerce=float))
    c1, c2, c3, c4 = st.columns(4)
    schedules = state.choices("schedule")
    schedule = c1.selectbox(_("Learning-rate schedule"), schedules, key=state.bound("schedule",
                            valid=lambda v: v in schedules), format_func={"constant": _("Constant"), "cosine": _("Cosine decay"),
                                                                   "onecycle": _("One cycle")}.get,
                            help=_("Over each stage. Cosine decay (Keras CosineDecay) falls to 0 after the warm-up; "
                                 "one cycle warms up over 3 tenths of the stage from lr/25, then decays."))
    warmup = c2.number_input(_("Warm-up epochs"), 0, 100, step=1, key=state.bound("warmup_epochs"),
                             disabled=schedule != "cosine", help=_("With cosine decay: linear warm-up from 0 "
                             "at the start of each stage."))
    smoothing = c3.number_input(_("Label smoothing"), 0.0, 0.5, step=0.05, key=state.bound("label_smoothing", coerce=float),
                                help=_("0 = off; 0.1 is usual. Softens the targets so the model is less sure."))
    decay = c4.number_input(_("Weight decay"), 0.0, 0.5, step=1e-4, format="%.5f",
                            key=state.bound("weight_decay", coerce=lambda v: float(v or 0.0)),
                            help=_("Decoupled weight decay; 0 = none (AdamW then uses its own 0.004)."))
    with st.expander(_("More options"), icon=":material/tune:"):
        c1, c2, c3, c4 = st.columns(4)
        mixup = c1.number_input(_("MixUp alpha"), 0.0, 10.0, step=0.1, key=state.bound("mixup", coerce=float),
                                help=_("Keras MixUp: blends pairs of training images and their labels. 0 = off, "
                                     "0.2 is usual. Needs the images every epoch: no feature cache in stage 1."))
        cutmix = c2.number_input(_("CutMix alpha"), 0.0, 10.0, step=0.1, key=state.bound("cutmix", coerce=float),
                                 help=_("Keras CutMix: pastes a patch of another image, labels mixed by area. "
                                      "0 = off, 1.0 is usual. With MixUp too, batches alternate."))
        fits = state.choices("head_fit")
        head_fit = c3.selectbox(_("Head fitted by"), fits, key=state.bound("head_fit", valid=lambda v: v in fits),
                                format_func={"epochs": _("Epochs of gradient descent"),
                                             "logistic": _("Logistic regression (linear probe)"),
                                             "pixels": _("Pixel model (no backbone)")}.get,
                                help=_("Stage 1. Logistic regression fits the output layer in one step on the frozen "
                                       "backbone's features, its strength chosen by cross-validation: the same "
                                       "data always gives the same head. It needs no hidden dense layer. Stage 2, "
                                       "if any, fine-tunes from it. The pixel model leaves the backbone out: a "
                                       "kernel logistic regression on the raw pixels (the pixel baseline as a "
                                       "network), often the best on small greyscale sets; no stage 2."))
        c1, c2, c3, c4 = st.columns(4)
        weights = c1.selectbox(_("Class weights"), state.choices("class_weights"), key=state.bound("class_weights"),
                               help=_("auto: balance imbalanced classes"))
        mp = c2.selectbox(_("Mixed precision"), state.choices("mixed_precision"), key=state.bound("mixed_precision"),
                          help=_("auto: on for GPUs that support float16 well"))
        xla = c3.toggle(_("XLA compilation"), key=state.bound("xla"))
        name = c4.text_input(_("Run label"), key=state.bound("name", coerce=lambda v: v or ""), placeholder="optional")
    for key, value in (("head_epochs", int(head)), ("fine_tune_epochs", int(fine)), ("batch_size", int(batch)),
                       ("early_stopping", int(patience)), ("optimizer", optimizer), ("lr", float(lr)),
                       ("fine_tune_lr", None if fine_lr is None else float(fine_lr)),
                       ("class_weights", weights), ("mixed_precision", mp), ("xla", bool(xla)),
                       ("schedule", schedule), ("warmup_epochs", int(warmup)),
                       ("label_smoothing", float(smoothing)), ("weight_decay", float(decay) or None),
                       ("mixup", float(mixup)), ("cutmix", float(cutmix)), ("head_fit", head_fit),
                       ("name", name or None)):
        state.put(key, value)


def _use_rate(stage: int, lr: float) -> None:
    state.put("lr" if stage == 1 else "fine_tune_lr", float(lr))
    for key in ("w:lr", "w:fine_tune_lr", "w:fine_tune_lr_auto"):
        st.session_state.pop(key, None)


def lr_finder(ready: bool) -> None:
    result = st.session_state.get("_lr_find")
    with st.expander(_("Find a learning rate"), icon=":material/search:", expanded=result is not None):
        st.caption(_("A range test (as fastai's lr_find): a few hundred training images, one batch per step, "
                   "the learning rate rising from 1e-7 to 1; the suggestion is where the loss falls fastest. "
                   "Takes a few seconds to a minute."))
        c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
        stage = c1.segmented_control(_("For"), [1, 2], default=1, key="lr_stage", required=True,
                                     format_func={1: _("Stage 1 (head)"), 2: _("Stage 2 (fine-tuning)")}.get)
        if c2.button(_("Find learning rate"), icon=":material/search:", disabled=not ready):
            with ui.guard(_("Finding a learning rate")):
                from tlcore.training.lrfind import lr_find
                from tlcore.recipe.config import TrainConfig

                with st.spinner(_("Training on a few batches at rising learning rates…")):
                    result = lr_find(TrainConfig.from_dict(state.options_from_selection()), stage=int(stage or 1))
                st.session_state["_lr_find"] = result
        if result:
            st.plotly_chart(charts.lr_finder(result["lrs"], result["losses"], result["suggested_lr"]),
                            key="lr_chart")
            which = _("stage 1") if result["stage"] == 1 else _("stage 2")
            st.button(_("Use this rate: {suggested_lr:.1e} for {which}").format(suggested_lr=result['suggested_lr'], which=which), icon=":material/check:",
                      on_click=_use_rate, args=(result["stage"], result["suggested_lr"]), key="use_lr")


def start() -> None:
    o = state.options_from_selection()
    live = [r for r in RunStore().runs() if r.state() in LIVE_STATES]
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    main = c1.button(_("Start training") if not live else _("Start (waits in the queue)"), type="primary",
                     icon=":material/play_arrow:")
    why_not = (_("Your own model keeps its own weights, so there is no from-scratch twin to train.")
               if o["backbone_file"] else
               _("The weights are None already: this run trains from scratch.") if o["weights"] in (None, "none")
               else None)
    compare = c2.button(_("Also train from scratch (compare)"), icon=":material/compare_arrows:",
                        disabled=why_not is not None,
                        help=why_not or _("Starts this run and, right after it in the queue, the same model from "
                                        "random weights (everything trains from the first epoch, as many epochs). "
                                        "The Runs page then overlays both curves."))
    if main or compare:
        with ui.guard(_("Starting the training")):
            from tlcore.training.jobs import start_training
            from tlcore.training.sweep import from_scratch

            with st.spinner(_("Starting a training process…")):
                run = start_training(o)
                state.put("run_dir", str(run.path))
                if compare:
                    scratch = start_training(from_scratch(o))
                    st.session_state["_compare_pair"] = [run.run_id, scratch.run_id]
            st.rerun()
    pair = st.session_state.get("_compare_pair")
    if pair:
        st.caption(_("Pretrained {pair} and from scratch {pair2}: both queue, one after the other.").format(pair=pair[0], pair2=pair[1]))
        st.page_link("views/8_Runs.py", label=_("Compare their curves on Runs"), icon=":material/stacked_line_chart:")


live_run = st.fragment(run_every=2)(ui.run_panel)

# What auto mode takes from the other pages as fixed; everything else it chooses (tlcore.search.auto).
TRAIN_MODES = {"Manual": N_("Manual"), "Auto": N_("Auto")}
AUTO_GIVEN = ("data", "backbone", "backbone_file", "weights", "preprocessing", "input_size", "cut", "batch_size",
              "seed", "val_split", "test_split", "resize", "class_weights", "mixed_precision", "name")


def auto_mode(ready: bool) -> None:
    """The Auto choice: a budget, Start, and what auto chose and why."""
    st.subheader(_("Auto mode"))
    st.caption(_("Give a time budget; the studio chooses the rest, measured on this machine: the cut from linear "
               "probes, the learning rate from a range test, then a search that stops weak trials early over "
               "the unfreeze point, learning rates, epochs, augmentation and input size (small networks from "
               "scratch when there are no pretrained weights). The backbone, weights, input size, cut and "
               "batch size you chose on the other pages stay as they are. The best choice on validation "
               "(cross-validated when the validation split is small) trains one normal run."))
    minutes = st.slider(_("Budget (minutes)"), 1, 60, key="w:auto_budget", value=10,
                        help=_("The whole auto mode, final training included, ends within this time (plus at "
                               "most a tenth)."))
    folder = st.session_state.get("_auto_dir")
    record = None
    if folder:
        from tlcore.search.auto import load_auto

        record = load_auto(folder)
    running = bool(record) and record.get("state") == "running"
    if st.button(_("Start auto mode"), type="primary", icon=":material/auto_awesome:", disabled=not ready or running):
        with ui.guard(_("Starting auto mode")):
            from tlcore.search.auto import start_auto

            o = state.options_from_selection()
            given = {k: o[k] for k in AUTO_GIVEN if o.get(k) not in (None, "")}
            with st.spinner(_("Starting auto mode…")):
                st.session_state["_auto_dir"] = start_auto(given, minutes * 60)
            st.rerun()
    if folder:
        auto_panel(folder)


@st.fragment(run_every=2)
def auto_panel(folder: str) -> None:
    from tlcore.search.auto import load_auto, stop_auto

    record = load_auto(folder)
    state_now = record.get("state")
    phases = {"measuring": _("measuring this machine and the data (probe, learning-rate range test)"),
              "searching": _("searching"), "final": _("training the chosen options"), "done": _("done")}
    states = {"running": _("running"), "completed": _("completed"), "stopped": _("stopped"), "failed": _("failed")}
    used = record.get("used_s")
    st.markdown(_("**Auto mode**: {state} · {phase} · budget {minutes:.0f} min").format(
        state=states.get(state_now, state_now), phase=phases.get(record.get("phase"), record.get("phase") or ""),
        minutes=record.get("budget_s", 0) / 60) + (_(" · used {seconds:.0f} s").format(seconds=used) if used else ""))
    if state_now == "running" and st.button(_("Stop auto mode"), icon=":material/stop:", key="auto_stop"):
        stop_auto(folder)
    if record.get("error") and state_now != "completed":
        st.error(_("Auto mode ended: {error}").format(error=text.md(text.error_words(record["error"]))))
    plan_ = record.get("plan") or {}
    if plan_ and state_now == "running" and record.get("phase") == "searching":
        st.caption(_("{trials} trials planned, up to {epochs} epochs each").format(
            trials=plan_.get("trials", 0), epochs=plan_.get("epochs_per_trial"))
            + (_(", {folds}-fold cross-validation of the best {finalists}").format(
                folds=plan_["folds"], finalists=plan_["finalists"]) if plan_.get("folds") else ""))
    if record.get("chosen") is not None:
        auto_choice(record)
    if record.get("run_dir") and state.get("run_dir") != record["run_dir"]:  # the final run: follow it below
        state.put("run_dir", record["run_dir"])
        st.rerun()


def auto_choice(auto: dict) -> None:
    """What auto chose and why, with its trials (from auto.json or the run's status.json)."""
    st.markdown(_("**What auto chose**"))
    st.dataframe([{"option": k, "value": str(v)} for k, v in (auto.get("chosen") or {}).items()], hide_index=True,
                 column_config={"option": _("option"), "value": _("value")})
    st.caption(_("Why: {reason}").format(reason=text.md(engine_words.reason(auto.get("reason")))))
    trials = auto.get("trials") or []
    if trials:
        st.dataframe([{"run": Path(t["run_dir"]).name, "fold": t.get("fold"),
                       "validation accuracy": t.get("val_accuracy"),
                       "options": _("the default recipe") if t.get("default") else
                       ", ".join(f"{k} {v}" for k, v in (t.get("options") or {}).items()),
                       "cut by the budget": bool(t.get("cut_by_budget"))} for t in trials], hide_index=True,
                     column_config={"run": _("run"), "fold": _("fold"), "validation accuracy": _("validation accuracy"),
                                    "options": _("options"), "cut by the budget": _("cut by the budget")})


def queue() -> None:
    waiting = queued_runs()
    if waiting:
        st.subheader(_("Queue"))
        st.dataframe([{"position": i + 1, "run": r.run_id, "backbone": r.summary()["backbone"],
                       "queued since": r.raw_status().get("started_at")} for i, r in enumerate(waiting)],
                     hide_index=True, column_config={"position": _("position"), "run": _("run"), "backbone": _("backbone"),
                                                    "queued since": _("queued since")})


def main() -> None:
    ui.header(_("Train"), _("Stage 1 trains the head on the frozen backbone; stage 2 fine-tunes from the unfreeze point."))
    ready = plan()
    mode = st.segmented_control(_("Options"), ["Manual", "Auto"], default="Manual", key="w:train_mode", required=True,
                                format_func=shown(TRAIN_MODES),
                                help=_("Auto: give a time budget and the studio chooses the training options."))
    if mode == "Auto":
        auto_mode(ready)
    else:
        hyperparameters()
        lr_finder(ready)
        if ready:
            start()
    run = ui.current_run()
    if run is not None:
        st.subheader(_("Run"))
        if run.state() in LIVE_STATES:
            live_run(str(run.path), True)
        else:
            ui.run_panel(str(run.path), False)
            if mode != "Auto" and run.raw_status().get("auto"):
                auto_choice(run.raw_status()["auto"])
    queue()
    st.caption(_("Training runs in a process of its own: closing or reloading this page does not stop it, "
               "and coming back shows it again."))


ui.page_guard()
main()
