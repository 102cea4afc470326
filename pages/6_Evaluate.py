"""Evaluate: a run's test scores, per-class table, confusion matrix and its mistakes."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

import studio_charts as charts
import studio_ui as ui
from tlcore import studio
from tlcore.runs import RunStore

GALLERY = 24


def evaluate(run, split: str | None) -> None:
    from tlcore.evaluate import evaluate_run

    with ui.guard("Evaluating the run"):
        with st.spinner("Scoring every test image…"):
            evaluate_run(run.path, split=split)
        st.rerun()


def scores(ev: dict) -> None:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Accuracy", studio.format_percent(ev.get("accuracy")), border=True)
    c2.metric("Loss", "—" if ev.get("loss") is None else f"{ev['loss']:.4f}", border=True)
    c3.metric("Calibration error (ECE)", "—" if ev.get("ece") is None else f"{ev['ece']:.3f}", border=True,
              help="How far the model's confidence is from its accuracy; 0 is perfectly calibrated.")
    c4.metric("Images scored", ev.get("count", "—"), border=True)
    left, right = st.columns([6, 5], gap="large")
    with left:
        st.markdown("**Per class**")
        st.dataframe(
            [{"class": name, **values} for name, values in ev.get("per_class", {}).items()],
            hide_index=True,
            column_config={**{k: st.column_config.ProgressColumn(k, min_value=0.0, max_value=1.0, format="%.2f",
                                                                 width="small")
                              for k in ("precision", "recall", "f1")},
                           "support": st.column_config.NumberColumn("images", width="small")})
    with right:
        st.markdown("**Confusion matrix**")
        st.plotly_chart(charts.confusion_matrix(ev["confusion_matrix"], ev["labels"]), key="confusion")


def mistakes(ev: dict) -> None:
    wrong = ev.get("misclassified") or []
    st.markdown(f"**Misclassified images** ({len(wrong)})")
    if not wrong:
        st.caption("None: every image was classified correctly.")
        return
    shown = wrong[:GALLERY]
    cols = st.columns(6)
    for i, item in enumerate(shown):
        with cols[i % 6]:
            img = studio.thumbnail(item["file"], 128)
            if img is None:
                st.caption(f"{Path(item['file']).name} (file gone)")
            else:
                st.image(img, width="stretch")
            st.caption(f"true **{item['true']}** → predicted **{item['predicted']}** "
                       f"({item['probability']:.0%})")
    if len(wrong) > GALLERY:
        st.caption(f"The {GALLERY} most confident mistakes of {len(wrong)}.")


def main() -> None:
    ui.header("Evaluate", "How the model does on images it never trained on.")
    runs = [r for r in RunStore().runs() if r.model_path() is not None]
    if not runs:
        st.info("No trained model yet. Train one first.", icon=":material/model_training:")
        st.page_link("pages/5_Train.py", label="Go to Train", icon=":material/arrow_forward:")
        return
    run = ui.pick_run("Run", runs, "evaluate_run")
    ui.put("run_dir", str(run.path))
    ev = run.evaluation()
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    split = c1.segmented_control("Split to score", ["test", "validation"], default=(ev or {}).get("split", "test"),
                                 key=f"split_{run.run_id}", required=True)
    if c2.button("Evaluate now" if not ev else "Evaluate again", icon=":material/refresh:"):
        evaluate(run, split)
    if not ev:
        st.info("This run has not been scored yet (it did not complete, or had no test images). "
                "Evaluate it now.", icon=":material/fact_check:")
        return
    st.caption(f"Scored on the **{ev['split']}** split of `{Path(run.config().get('options', {}).get('data', '')).name}`.")
    scores(ev)
    mistakes(ev)


ui.page_guard()
main()
