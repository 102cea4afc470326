"""Plotly figures for the studio's pages: pure functions from plain values to figures,
and where on a chart's epoch axis the two training stages meet. The Layers page's chart is a
Vega-Lite spec instead (`layer_params`: why, there)."""
from __future__ import annotations
from studio.i18n import N_, _
from studio.text import SPLIT_WORDS

from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

TRAIN = "#1f77b4"
VAL = "#ff7f0e"
FROZEN = "#9aa5b1"
TRAINS = "#2ca02c"
CUT_AWAY = "#e3e6ea"
BN_INFERENCE = "#b8a3d6"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1),
                      **kw)
    return fig


ROLE_WORDS = {"trains": N_("trains in stage 2"), "inference_bn": N_("BatchNorm, inference mode"),
              "frozen": N_("frozen"), "cut": N_("cut away")}


def layer_params(rows: Sequence[Mapping], roles: Sequence[str], cut_index: int,
                 unfreeze_index: int | None) -> dict:
    """Parameters per layer, coloured by the plan's role in stage 2, cut and unfreeze marked.

    A Vega-Lite specification (for `st.vega_lite_chart`), not a Plotly figure: the browser
    loads Vega's script in a fraction of Plotly's time (0.8 MB against 4.7 MB), and this chart
    sits on a page users open first. Written as a plain dict: building it through Altair took
    0.4 s for NASNetLarge's 1039 layers, on every widget change.

    Args:
        rows: layer table rows (dicts with index, name, type, params, block).
        roles: `tlcore.recipe.plan` role of each row in stage 2 (trains, inference_bn, frozen, cut).
        cut_index: last layer kept.
        unfreeze_index: first layer that trains in stage 2 (None: nothing unfreezes).
    """
    values = [{"index": r["index"], "params": int(r["params"]), "name": r["name"], "type": r["type"],
               "block": r["block"], "role": str(ROLE_WORDS[role])}
              for r, role in zip(rows, roles) if r["params"] > 0]  # a log axis has no 0
    bars = {
        "data": {"values": values},
        "transform": [{"calculate": "datum.index - 0.45", "as": "start"},
                      {"calculate": "datum.index + 0.45", "as": "end"}, {"calculate": "1", "as": "base"}],
        "mark": "bar",
        "encoding": {
            "x": {"field": "start", "type": "quantitative", "title": _("layer index"),
                  "scale": {"domain": [-1, len(rows) + 1], "nice": False}},
            "x2": {"field": "end"},
            "y": {"field": "params", "type": "quantitative", "title": _("parameters (log scale)"),
                  "scale": {"type": "log", "domainMin": 1},
                  "axis": {"format": "~s", "values": [10 ** k for k in range(10)]}},
            "y2": {"field": "base"},  # bars rise from 1
            "color": {"field": "role", "type": "nominal", "legend": {"orient": "top", "title": None, "labelLimit": 0},
                      "scale": {"domain": [str(w) for w in ROLE_WORDS.values()],
                                "range": [TRAINS, BN_INFERENCE, FROZEN, CUT_AWAY]}},
            "tooltip": [{"field": "index", "title": _("layer")}, {"field": "name", "title": _("name")},
                        {"field": "type", "title": _("type")}, {"field": "block", "title": _("block")},
                        {"field": "params", "title": _("params"), "type": "quantitative", "format": ","}],
        },
    }
    layers = [bars]
    marks = [(cut_index + 0.5, _("cut"), "#d62728", [1, 0])]
    if unfreeze_index is not None:
        marks.append((unfreeze_index - 0.5, _("unfreeze from"), TRAINS, [5, 3]))
    for x, label, colour, dash in marks:
        where = {"data": {"values": [{"x": x}]}, "encoding": {"x": {"field": "x", "type": "quantitative"}}}
        layers.append({**where, "mark": {"type": "rule", "color": colour, "strokeWidth": 2, "strokeDash": dash}})
        layers.append({**where, "mark": {"type": "text", "text": label, "align": "left", "baseline": "top",
                                         "dx": 3, "y": 2, "color": colour, "fontSize": 11}})
    return {"height": 320, "layer": layers}


def stage_boundary(metrics: Sequence[Mapping]) -> float | None:
    """The x position between the last stage-1 epoch and the first stage-2 epoch, if both ran."""
    s1 = [m["epoch"] for m in metrics if m.get("stage") == 1]
    s2 = [m["epoch"] for m in metrics if m.get("stage") == 2]
    if s1 and s2:
        return (max(s1) + min(s2)) / 2
    return None


def planned_boundary(options: Mapping) -> float | None:
    """Where stage 2 will start (x between epochs), from a run's options, if both stages run."""
    head, fine = int(options.get("head_epochs") or 0), int(options.get("fine_tune_epochs") or 0)
    return head + 0.5 if head and fine else None


def training_curves(metrics: Sequence[Mapping], boundary: float | None = None,
                    epochs_total: int | None = None) -> go.Figure:
    """Accuracy and loss per epoch, training and validation, with the stage boundary marked."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(_("Accuracy"), _("Loss")), horizontal_spacing=0.08)
    epochs = [m["epoch"] for m in metrics]
    for col, key in ((1, "accuracy"), (2, "loss")):
        for prefix, colour, label, dash in (("", TRAIN, _("training"), "solid"),
                                            ("val_", VAL, _("validation"), "dash")):
            ys = [m.get(prefix + key) for m in metrics]
            if all(y is None for y in ys):
                continue
            fig.add_trace(go.Scatter(
                x=epochs, y=ys, mode="lines+markers", name=label, legendgroup=label,
                showlegend=col == 1, line=dict(color=colour, dash=dash), marker=dict(size=8),
                hovertemplate=_("epoch %{{x}}<br>{label} {key} %{{y:.4f}}<extra></extra>").format(
                    label=label, key={"accuracy": _("accuracy"), "loss": _("loss")}[key])), row=1, col=col)
    if boundary is not None:
        for col in (1, 2):
            fig.add_vline(x=boundary, line_color="#7f7f7f", line_dash="dot", row=1, col=col)
        fig.add_annotation(x=boundary, y=1.0, yref="y domain", xref="x", text=_("fine-tuning →"),
                           showarrow=False, xanchor="left", yanchor="top", font=dict(size=11))
    right = max([*epochs, epochs_total or 0, 1])
    fig.update_xaxes(title=_("epoch"), range=[0.5, right + 0.5], dtick=1 if right <= 20 else None)
    fig.update_yaxes(range=[0, 1.02], row=1, col=1)
    _layout(fig, 380)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="center", x=0.5),
                      margin=dict(l=10, r=10, t=40, b=40))
    return fig


def overlay_curves(series: Mapping[str, Sequence[Mapping]], key: str = "val_accuracy") -> go.Figure:
    """One line per run: `key` per epoch (several runs compared)."""
    fig = go.Figure()
    for i, (label, metrics) in enumerate(series.items()):
        fig.add_trace(go.Scatter(
            x=[m["epoch"] for m in metrics], y=[m.get(key) for m in metrics], mode="lines+markers",
            name=label, line=dict(color=PALETTE[i % len(PALETTE)])))
    right = max([m["epoch"] for metrics in series.values() for m in metrics] or [1])
    fig.update_xaxes(title=_("epoch"), range=[0.5, right + 0.5], dtick=1 if right <= 20 else None)
    fig.update_yaxes(title={"val_accuracy": _("val accuracy"), "val_loss": _("val loss"), "accuracy": _("accuracy"),
                            "loss": _("loss")}.get(key, key.replace("_", " ")),
                     range=[0, 1.02] if key.endswith("accuracy") else None, rangemode="tozero")
    return _layout(fig, 340)


def class_counts(counts: Mapping[str, Mapping[str, int]]) -> go.Figure:
    """Images per class, one bar per split."""
    fig = go.Figure()
    colours = {"train": TRAIN, "validation": VAL, "test": "#2ca02c"}
    for split, per_class in counts.items():
        if not any(per_class.values()):
            continue
        fig.add_trace(go.Bar(x=list(per_class), y=list(per_class.values()), name=str(SPLIT_WORDS.get(split, split)),
                             marker_color=colours.get(split)))
    fig.update_yaxes(title=_("images"))
    return _layout(fig, 300, barmode="group")


def confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> go.Figure:
    """Counts of true (rows) against predicted (columns) classes."""
    fig = go.Figure(go.Heatmap(
        z=matrix, x=list(labels), y=list(labels), colorscale="Blues", text=matrix,
        texttemplate="%{text}", hovertemplate=_("true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>")))
    fig.update_xaxes(title=_("predicted"), side="bottom")
    fig.update_yaxes(title=_("true"), autorange="reversed")
    side = max(300, 60 * len(labels) + 120)
    return _layout(fig, min(side, 700))


def top_k(top: Sequence[Mapping]) -> go.Figure:
    """Horizontal bars of the top-k labels and their probabilities, best on top."""
    labels = [t["label"] for t in top][::-1]
    probs = [t["probability"] for t in top][::-1]
    fig = go.Figure(go.Bar(x=probs, y=labels, orientation="h", marker_color=TRAIN,
                           text=[f"{p:.1%}" for p in probs], textposition="auto",
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, 60 + 34 * len(labels))


def reliability(bins: Sequence[Mapping], ece: float | None = None) -> go.Figure:
    """Reliability diagram: accuracy per confidence bin (bars) against the diagonal.

    Args:
        bins: equal-width confidence bins from `evaluate.calibration_bins`, in order:
            ``{confidence (mean in the bin), accuracy (None when empty), count}``.
        ece: expected calibration error, shown in the title.
    """
    n = max(len(bins), 1)
    width = 1.0 / n
    centres = [(i + 0.5) * width for i in range(len(bins))]
    acc = [b["accuracy"] if b.get("accuracy") is not None else 0.0 for b in bins]
    fig = go.Figure()
    fig.add_trace(go.Bar(
        x=centres, y=acc, width=[width * 0.92] * len(bins), name=_("accuracy in the bin"),
        marker_color=TRAIN, marker_line_width=0,
        customdata=[[b.get("count", 0), b.get("confidence") or 0.0, i * width, (i + 1) * width]
                    for i, b in enumerate(bins)],
        hovertemplate=_("confidence %{customdata[2]:.1f}–%{customdata[3]:.1f}<br>accuracy %{y:.1%}"
                        "<br>mean confidence %{customdata[1]:.1%}<br>%{customdata[0]} images<extra></extra>")))
    fig.add_trace(go.Scatter(
        x=[b.get("confidence") for b in bins if b.get("count")],
        y=[b.get("accuracy") for b in bins if b.get("count")], mode="markers", name=_("mean confidence"),
        marker=dict(color=VAL, size=9, symbol="diamond"), showlegend=True,
        hovertemplate=_("mean confidence %{x:.1%}<br>accuracy %{y:.1%}<extra></extra>")))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=_("perfectly calibrated"),
                             line=dict(color="#7f7f7f", dash="dash"), hoverinfo="skip"))
    for x, b in zip(centres, bins):  # how many images each bin holds, in a row above the bars
        if b.get("count"):
            fig.add_annotation(x=x, y=1.07, text=f"n={b['count']}", showarrow=False, font=dict(size=10, color="#555"))
    fig.update_xaxes(title=_("confidence (probability of the predicted class)"), range=[0, 1], tickformat=".0%",
                     dtick=width if n <= 10 else None)
    fig.update_yaxes(title=_("accuracy"), range=[0, 1.12], tickformat=".0%")
    title = None if ece is None else dict(text=_("ECE {ece:.3f}").format(ece=ece), x=0.01, y=0.98, font=dict(size=13))
    return _layout(fig, 340, title=title, bargap=0)


def lr_finder(lrs: Sequence[float], losses: Sequence[float], suggested: float | None = None) -> go.Figure:
    """Smoothed loss against the learning rate (log scale), the suggestion marked."""
    fig = go.Figure(go.Scatter(x=list(lrs), y=list(losses), mode="lines", name=_("loss (smoothed)"),
                               line=dict(color=TRAIN),
                               hovertemplate=_("learning rate %{x:.2e}<br>loss %{y:.4f}<extra></extra>")))
    if suggested is not None and len(lrs):
        i = min(range(len(lrs)), key=lambda j: abs(lrs[j] - suggested))
        fig.add_trace(go.Scatter(x=[suggested], y=[losses[i]], mode="markers+text", name=_("suggestion"),
                                 marker=dict(color="#d62728", size=12), text=[f"  {suggested:.1e}"],
                                 textposition="bottom right",
                                 hovertemplate=_("suggested %{x:.2e}<extra></extra>")))
        fig.add_vline(x=suggested, line_color="#d62728", line_dash="dot")
    fig.update_xaxes(type="log", title=_("learning rate (log scale)"), exponentformat="power")
    fig.update_yaxes(title=_("training loss"))
    return _layout(fig, 320)


def sweep_heatmap(cuts: Sequence[str], unfreezes: Sequence[str], z: Sequence[Sequence]) -> go.Figure:
    """Validation accuracy of each (cut, unfreeze point) run of a sweep; blank until scored."""
    text = [["" if v is None else f"{v:.1%}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=[[None if v is None else float(v) for v in row] for row in z], x=list(unfreezes), y=list(cuts),
        colorscale="Viridis", zmin=0, zmax=1, text=text, texttemplate="%{text}",
        colorbar=dict(title=_("val acc"), tickformat=".0%"),
        hovertemplate=_("cut %{y}<br>unfreeze from %{x}<br>validation accuracy %{z:.1%}<extra></extra>")))
    fig.update_xaxes(title=_("unfreeze from"), type="category")
    fig.update_yaxes(title=_("cut after"), type="category", autorange="reversed")
    return _layout(fig, min(700, max(260, 70 * len(cuts) + 140)))


def probe_accuracy(rows: Sequence[Mapping], current: int | None = None,
                   suggested: int | None = None) -> go.Figure:
    """Validation accuracy of a linear probe against the cut's depth (layer index); the
    current cut and the suggested one marked."""
    xs = [r["index"] for r in rows]
    ys = [r["val_accuracy"] for r in rows]
    fig = go.Figure(go.Scatter(
        x=xs, y=ys, mode="lines+markers", name=_("linear probe"), line=dict(color=TRAIN),
        customdata=[[r["cut"], r["feature_dim"]] for r in rows],
        hovertemplate=_("%{customdata[0]} (layer %{x})<br>validation accuracy %{y:.1%}<br>"
                        "%{customdata[1]} features<extra></extra>")))
    if suggested is not None:
        row = next((r for r in rows if r["index"] == suggested), None)
        if row is not None:
            fig.add_trace(go.Scatter(x=[suggested], y=[row["val_accuracy"]], mode="markers+text",
                                     name=_("suggested"), marker=dict(color=TRAINS, size=14, symbol="star"),
                                     text=[row["cut"].rsplit("/", 1)[-1]], textposition="bottom center",
                                     hoverinfo="skip"))
    if current is not None:
        fig.add_vline(x=current, line_color="#d62728", line_dash="dot",
                      annotation_text=_("current cut"), annotation_position="bottom left")
    fig.update_xaxes(title=_("cut after layer (depth)"))
    fig.update_yaxes(title=_("validation accuracy"), tickformat=".0%", rangemode="tozero")
    return _layout(fig, 320)


def embedding_map(points: Sequence[Mapping], classes: Sequence[str], method: str = "pca") -> go.Figure:
    """The dataset as a 2-D map, one colour per class, one marker shape per split; each point's
    index in `points` is its customdata (for selections)."""
    symbols = {"train": "circle", "validation": "diamond", "test": "square"}
    fig = go.Figure()
    for i, name in enumerate(classes):
        idx = [k for k, p in enumerate(points) if p["label"] == name]
        if not idx:
            continue
        fig.add_trace(go.Scattergl(
            x=[points[k]["x"] for k in idx], y=[points[k]["y"] for k in idx], mode="markers", name=name,
            marker=dict(color=PALETTE[i % len(PALETTE)], size=7, opacity=0.8,
                        symbol=[symbols.get(points[k]["split"], "circle") for k in idx]),
            customdata=idx, text=[f"{SPLIT_WORDS.get(points[k]['split'], points[k]['split'])} · "
                                  f"{points[k]['file'].rsplit('/', 1)[-1]}" for k in idx],
            hovertemplate="%{text}<extra>" + name + "</extra>"))
    fig.update_xaxes(title=f"{method.upper()} 1", showticklabels=False)
    fig.update_yaxes(title=f"{method.upper()} 2", showticklabels=False)
    fig = _layout(fig, 460, dragmode="lasso")
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.08, xanchor="left", x=0))
    return fig


def confusion_cells(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> go.Figure:
    """The confusion matrix with a clickable marker on every cell (customdata [true, predicted])."""
    fig = confusion_matrix(matrix, labels)
    xs, ys, data = [], [], []
    for t, row in enumerate(matrix):
        for p, _count in enumerate(row):
            xs.append(labels[p])
            ys.append(labels[t])
            data.append([t, p])
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", customdata=data, showlegend=False,
                             marker=dict(size=40, symbol="square", color="rgba(0,0,0,0.01)"),
                             hovertemplate=_("true %{y}<br>predicted %{x}<br>click to see the images"
                                             "<extra></extra>")))
    return fig


def search_points(points: Sequence[Mapping], metric: str = "val_accuracy") -> go.Figure:
    """A search's points as parallel coordinates: one axis per searched option (choices as
    categories, numbers as numbers), the last the point's mean validation metric."""
    scored = [p for p in points if p.get(f"{metric}_mean") is not None]
    names = list(dict.fromkeys(k for p in points for k in p["options"]))
    dims = []
    for name in names:
        values = [p["options"].get(name) for p in scored]
        if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dims.append(dict(label=name, values=[float(v) for v in values]))
        else:
            labels = list(dict.fromkeys(str(v) for v in values))
            dims.append(dict(label=name, values=[labels.index(str(v)) for v in values],
                             tickvals=list(range(len(labels))), ticktext=labels))
    score = [float(p[f"{metric}_mean"]) for p in scored]
    shown = {"val_accuracy": _("val accuracy"), "val_loss": _("val loss")}.get(metric, metric.replace("_", " "))
    dims.append(dict(label=shown + _(" (mean)"), values=score))
    fig = go.Figure(go.Parcoords(line=dict(color=score, colorscale="Viridis", showscale=bool(score)),
                                 dimensions=dims))
    return _layout(fig, 340)


def label_timeline(results: Sequence[Mapping], labels: Sequence[str]) -> go.Figure:
    """A video's top label over time: one marker per classified frame, its probability as opacity."""
    t = [r["time"] for r in results if r.get("top")]
    y = [r["top"][0]["label"] for r in results if r.get("top")]
    p = [r["top"][0]["probability"] for r in results if r.get("top")]
    fig = go.Figure(go.Scatter(x=t, y=y, mode="markers+lines", line={"width": 1, "shape": "hv"},
                               marker={"size": 9, "opacity": 1.0, "color": p, "colorscale": "Blues", "cmin": 0,
                                       "cmax": 1, "showscale": True, "colorbar": {"title": "p"}},
                               hovertemplate=_("%{x:.2f} s · %{y}<extra></extra>")))
    fig.update_yaxes(categoryorder="array", categoryarray=list(labels), title=None)
    fig.update_xaxes(title=_("seconds"))
    return _layout(fig, max(220, 60 + 40 * len(labels)))
