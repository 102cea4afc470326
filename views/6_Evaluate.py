"""Evaluate: test scores, per-class table, confusion matrix, calibration, and the top losses."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import caches, charts, components as ui, health, state, text
from studio.i18n import _, shown
from tlcore.evaluation.calibrate import calibration_info
from tlcore.evaluation.baselines import beats_model
from tlcore.evaluation.evaluate import SPLITS, top_losses
from tlcore.ship.predict import TTA_MODES
from tlcore.data.images import thumbnail
from tlcore.core.runs import RunStore
from tlcore.data.splits import of_run

GALLERY = 24
PER_ROW = 4


def evaluate(run, split: str | None, tta: str = "none") -> None:
    from tlcore.evaluation.evaluate import evaluate_run

    with ui.guard(_("Evaluating the run")):
        with st.spinner(_("Scoring every test image…")):
            evaluate_run(run.path, split=split, tta=tta)
        st.rerun()


def scores(run, ev: dict) -> None:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(_("Accuracy"), text.format_percent(ev.get("accuracy")), border=True, help=str(text.INTERVAL_HELP))
    c1.caption(text.interval_words(ev.get("accuracy_interval"), ev.get("count")))
    c2.metric(_("Loss"), "—" if ev.get("loss") is None else f"{ev['loss']:.4f}", border=True)
    c3.metric(_("Calibration error (ECE)"), "—" if ev.get("ece") is None else f"{ev['ece']:.3f}", border=True,
              help=_("Expected calibration error: how far the model's confidence is from its accuracy, "
                   "averaged over confidence bins; 0 is perfectly calibrated."))
    c4.metric(_("Images scored"), ev.get("count", "—"), border=True)
    left, right = st.columns([6, 5], gap="large")
    with left:
        st.markdown(_("**Per class**"))
        st.dataframe(
            [{"class": name, **values} for name, values in ev.get("per_class", {}).items()],
            hide_index=True,
            column_config={**{k: st.column_config.ProgressColumn(label, min_value=0.0, max_value=1.0, format="%.2f",
                                                                 width="small")
                              for k, label in (("precision", _("precision")), ("recall", _("recall")), ("f1", "f1"))},
                           "class": _("class"), "support": st.column_config.NumberColumn(_("images"), width="small")})
    with right:
        st.markdown(_("**Confusion matrix**"))
        event = st.plotly_chart(charts.confusion_cells(ev["confusion_matrix"], ev["labels"]), key="confusion",
                                on_select="rerun", selection_mode="points")
        st.caption(_("Click a cell to see its images."))
        for point in (getattr(getattr(event, "selection", None), "points", None) or [])[:1]:
            cd = point.get("customdata")
            if isinstance(cd, (list, tuple)) and len(cd) == 2:
                st.session_state["_cell"] = (run.run_id, ev.get("split"), int(cd[0]), int(cd[1]))


def baselines(ev: dict) -> None:
    """The model beside the baselines its training fitted, on the same test images."""
    if ev.get("split") != "test":
        return
    st.subheader(_("Beside simple baselines"))
    found = ev.get("baselines") or []
    if not found:
        st.caption(_("No baselines were recorded for this run (it was trained before they existed, or "
                   "without a test split). Train it again to see them."))
        return
    st.dataframe(text.baseline_rows(ev.get("accuracy"), ev.get("accuracy_interval"), ev.get("count"), found),
                 hide_index=True, key="baselines")
    st.caption(_("Each baseline is fitted on the same training images (at most 2,000) and scored on the same "
               "test images as the model."))
    beaten = [b["name"] for b in found if beats_model(b, ev.get("accuracy"), ev.get("count"))]
    if beaten:
        st.warning(text.baselines_beat_words(beaten), icon=":material/warning:")


def calibration(run, ev: dict) -> None:
    st.subheader(_("Calibration"))
    left, right = st.columns([6, 5], gap="large")
    with left:
        if ev.get("calibration"):
            st.plotly_chart(charts.reliability(ev["calibration"], ev.get("ece")), key="reliability")
            st.caption(_("Bars: the accuracy of the images whose confidence falls in each bin (n: how many). "
                       "On the dashed diagonal, confidence matches accuracy; bars below it mean an "
                       "overconfident model, above it an underconfident one."))
        else:
            st.caption(_("This evaluation has no calibration bins; evaluate again."))
    with right:
        st.markdown(_("**Temperature scaling**"))
        st.caption(_("Fits one number T on the validation split so that the probabilities match how often the "
                   "model is right (Guo et al. 2017), and builds it into the model: predictions keep their "
                   "order, only the confidence changes. Predict, evaluate and exports use it from then on."))
        done = calibration_info(run)
        if done:
            st.markdown(_("Calibrated: **T = {temperature:.3f}** (validation log-loss "
                        "{val_log_loss_before:.4f} → {val_log_loss_after:.4f}).").format(temperature=done['temperature'], val_log_loss_before=done['val_log_loss_before'], val_log_loss_after=done['val_log_loss_after']))
        if st.button(_("Calibrate (temperature scaling)") if not done else _("Calibrate again"),
                     icon=":material/thermostat:", key="calibrate"):
            with ui.guard(_("Calibrating the model")):
                from tlcore.evaluation.calibrate import calibrate_run
                from tlcore.evaluation.evaluate import evaluate_run

                with st.spinner(_("Fitting the temperature on the validation images…")):
                    result = calibrate_run(run.path)
                with st.spinner(_("Scoring again with the calibrated model…")):
                    evaluate_run(run.path, split=ev.get("split"))
                st.session_state["_calibrated"] = {"run": run.run_id, **result}
                st.rerun()
    fresh = st.session_state.get("_calibrated")
    if fresh and fresh["run"] == run.run_id:
        c1, c2, c3, _c4 = st.columns([1, 1, 1, 1])
        c1.metric(_("Temperature T"), f"{fresh['temperature']:.3f}", border=True,
                  help=_("Above 1 softens an overconfident model; below 1 sharpens a timid one."))
        c2.metric(_("Val log-loss before"), f"{fresh['val_log_loss_before']:.4f}", border=True)
        c3.metric(_("Val log-loss after"), f"{fresh['val_log_loss_after']:.4f}", border=True,
                  delta=f"{fresh['val_log_loss_after'] - fresh['val_log_loss_before']:+.4f}",
                  delta_color="inverse")


def _explain(run, item: dict, key: tuple) -> dict | None:
    with ui.guard(_("Computing the Grad-CAM")):
        model = caches.load_run_model(run)
        with st.spinner(_("Grad-CAM…")):
            return ui.gradcam(model, item["file"], key, item["predicted"])
    return None


def _run_dataset(run):
    cfg = run.config()
    if not cfg.get("options", {}).get("data"):
        return None
    with ui.guard(_("Reading the run's dataset")):  # split as the run split it
        return caches.scan(cfg["options"]["data"], **of_run(cfg))
    return None


def _gallery(run, items: list[dict], key: str, describe, picked: list[str] | None = None) -> None:
    """Image cards in rows, each with its text (`describe(item)`) and a Grad-CAM button; with
    `picked`, a "select" box per card adds its file there (for the health actions)."""
    cams = st.session_state.get("_gradcam", {})
    stamp = ui.run_stamp(run)
    for start in range(0, len(items), PER_ROW):
        cols = st.columns(PER_ROW)
        for i, item in enumerate(items[start:start + PER_ROW], start=start):
            with cols[i - start].container(border=True):
                img = thumbnail(item["file"], 160)
                if img is None:
                    st.caption(_("{name} (moved or gone)").format(name=text.md(Path(item['file']).name)))
                    continue
                picture = st.empty()
                describe(item)
                cam_key = (*stamp, item["file"], item["predicted"])
                cam = cams.get(cam_key)
                if cam is None:
                    slot = st.empty()
                    if slot.button(_("Grad-CAM"), key=f"{key}_cam_{i}", icon=":material/blur_on:",
                                   help=_("Where the evidence for {predicted} lies (computed now)").format(predicted=text.md(item['predicted']))):
                        slot.empty()
                        cam = _explain(run, item, cam_key)
                with picture.container():
                    if cam is not None and not text.gradcam_note(cam):
                        a, b = st.columns(2)
                        a.image(img, width="stretch")
                        b.image(cam["overlay"], width="stretch")
                    else:
                        st.image(img, width="stretch")
                        if cam is not None:
                            st.caption(text.gradcam_note(cam))
                if picked is not None and st.checkbox("select", key=f"{key}_pick_{i}_{item['file']}"):
                    picked.append(item["file"])


def _loss_caption(item: dict) -> None:
    st.markdown(_("true **{true}** · predicted **{predicted}**").format(true=text.md(item['true']), predicted=text.md(item['predicted'])))
    loss = item.get("loss")
    st.caption(_("probability {probability:.0%} · loss {loss:.2f}").format(probability=item['probability'], loss=loss) if loss is not None
               else _("probability {probability:.0%}").format(probability=item['probability']))


def cell(run, ev: dict) -> None:
    """The images of the clicked confusion-matrix cell: probabilities, Grad-CAM, fixes."""
    chosen = st.session_state.get("_cell")
    labels = ev["labels"]
    if not chosen or tuple(chosen[:2]) != (run.run_id, ev.get("split")) or max(chosen[2:]) >= len(labels):
        return
    t, p = labels[chosen[2]], labels[chosen[3]]
    preds = ev.get("predictions")
    if preds is None:  # an evaluation from before predictions were recorded
        preds = ev.get("misclassified") or []
        if t == p:
            st.info(_("This evaluation lists only the mistakes; evaluate again to see the correct images too."))
            return
    items = [x for x in preds if x["true"] == t and x["predicted"] == p]
    items.sort(key=lambda x: x["probability"], reverse=t != p)
    st.subheader(_("True {t}, predicted {p}: {items} image{value}").format(t=text.md(t), p=text.md(p), items=len(items), value='s' if len(items) != 1 else ''))
    st.caption(_("Most confident mistakes first.") if t != p else _("Least confident first: correct, but only just."))
    if not items:
        return
    picked: list[str] = []
    _gallery(run, items[:GALLERY], "cell", lambda item: st.caption(
        f"{text.md(Path(item['file']).name)} · {text.md(p)} {item['probability']:.0%}"), picked)
    if len(items) > GALLERY:
        st.caption(_("The first {gallery} of {items}.").format(gallery=GALLERY, items=len(items)))
    ds = _run_dataset(run)
    if ds is not None:
        health.undo_bar(ds, "cell")
        health.actions(picked, ds, "cell_act")


def mistakes(run, ev: dict) -> None:
    wrong = ev.get("misclassified") or []
    st.subheader(_("Top losses ({wrong} misclassified)").format(wrong=len(wrong)))
    if not wrong:
        st.caption(_("None: every image was classified correctly."))
        return
    st.caption(_("The mistakes the model is surest of, highest loss first. Grad-CAM shows where in the image "
               "the features pushed it to the wrong answer."))
    _gallery(run, top_losses(ev, GALLERY), "loss", _loss_caption)
    if len(wrong) > GALLERY:
        st.caption(_("The {gallery} highest losses of {wrong} mistakes.").format(gallery=GALLERY, wrong=len(wrong)))


def main() -> None:
    ui.header(_("Evaluate"), _("How the model does on images it never trained on."))
    runs = [r for r in RunStore().runs() if r.model_path() is not None]
    if not runs:
        st.info(_("No trained model yet. Train one first."), icon=":material/model_training:")
        st.page_link("views/5_Train.py", label=_("Go to Train"), icon=":material/arrow_forward:")
        return
    run = ui.pick_run(_("Run"), runs, "evaluate_run")
    state.put("run_dir", str(run.path))
    ev = run.evaluation()
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    split = c1.segmented_control(_("Split to score"), list(SPLITS), default=(ev or {}).get("split", SPLITS[0]),
                                 format_func=shown(text.SPLIT_WORDS), key=f"split_{run.run_id}", required=True)
    tta = c2.selectbox(_("Test-time augmentation"), list(TTA_MODES), format_func=shown(text.TTA_LABELS),
                       index=TTA_MODES.index(((ev or {}).get("tta") or {}).get("mode", TTA_MODES[0])),
                       key=f"tta_{run.run_id}", help=str(text.TTA_HELP))
    if c3.button(_("Evaluate now") if not ev else _("Evaluate again"), icon=":material/refresh:"):
        evaluate(run, split, tta)
    if not ev:
        st.info(_("This run has not been scored yet (it did not complete, or had no test images). "
                "Evaluate it now."), icon=":material/fact_check:")
        return
    st.caption(_("Scored on the **{split}** split of {name}. ").format(split=text.SPLIT_WORDS.get(ev['split'], ev['split']), name=text.code(Path(run.config().get('options', {}).get('data', '')).name))
               + text.tta_cost(ev.get("tta"), ev.get("count")))
    scores(run, ev)
    baselines(ev)
    cell(run, ev)
    calibration(run, ev)
    mistakes(run, ev)


ui.page_guard()
main()
