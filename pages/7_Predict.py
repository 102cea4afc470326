"""Predict: drop images and see the top labels of a run's model for each."""
from __future__ import annotations

import numpy as np
import streamlit as st

import studio_charts as charts
import studio_ui as ui
from tlcore import studio
from tlcore.images import IMAGE_EXTENSIONS, ImageProblem
from tlcore.runs import RunStore


def main() -> None:
    ui.header("Predict", "Drop images; the model says what it sees.")
    runs = [r for r in RunStore().runs() if r.model_path() is not None]
    if not runs:
        st.info("No trained model yet. Train one first.", icon=":material/model_training:")
        st.page_link("pages/5_Train.py", label="Go to Train", icon=":material/arrow_forward:")
        return
    c1, c2 = st.columns([3, 1])
    with c1:
        run = ui.pick_run("Model of run", runs, "predict_run")
    ui.put("run_dir", str(run.path))
    labels = run.labels()
    k = c2.slider("Top k", 1, max(1, min(10, len(labels))), min(5, max(1, len(labels))), key=f"top_k_{len(labels)}") \
        if len(labels) > 1 else 1
    files = st.file_uploader("Images", type=sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS),
                             accept_multiple_files=True, key="predict_images")
    if not files:
        st.caption(f"Classes: {', '.join(labels)}")
        return
    with ui.guard("Classifying the images"):
        from tlcore.predict import top_labels

        with st.spinner("Loading the model…"):
            model = ui.load_run_model(run)
        arrays, ok, problems = [], [], {}
        for f in files:
            try:
                arrays.append(model.load(f))
                ok.append(f)
            except ImageProblem as exc:
                problems[f.file_id] = str(exc)
        probs = model.probabilities(np.stack(arrays)) if arrays else []
        results = {f.file_id: top_labels(p, model.labels, k) for f, p in zip(ok, probs)}
        for f in files:
            with st.container(border=True):
                left, right = st.columns([1, 3], vertical_alignment="center")
                if f.file_id in problems:
                    left.markdown(f"**{f.name}**")
                    right.error(f"Cannot read this image: {problems[f.file_id]}", icon=":material/broken_image:")
                    continue
                top = results[f.file_id]
                shown = studio.display_image(f)
                if shown is not None:
                    left.image(shown, width="stretch")
                left.caption(f"{f.name}")
                right.markdown(f"**{top[0]['label']}** · {top[0]['probability']:.1%}")
                right.plotly_chart(charts.top_k(top), key=f"top_{f.file_id}")


ui.page_guard()
main()
