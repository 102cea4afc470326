"""What the public API shows in Jupyter: HTML for plans, runs and evaluations, an SVG chart of a
run's curves, and progress while a run trains (a bar per stage; in a notebook a live chart).

Everything here draws plain values (a plan's `to_dict()`, a run's metrics.jsonl and status.json)
as HTML and SVG strings: no plotting library, no TensorFlow. IPython and tqdm are imported only
when there is something to show, and only if installed. Progress reads the run store, the one
channel every follower of a run reads (the command line, the app, this).
"""
from __future__ import annotations

import html
import math
import sys
from typing import Any, Callable

ROLE_COLOURS = {"trains": "#2e7d32", "inference_bn": "#1565c0", "frozen": "#757575", "cut": "#c62828"}
CURVE_COLOURS = {"train": "#1f77b4", "val": "#ff7f0e"}
LAYER_ROWS_SHOWN = 400  # a table longer than this shows its first and last rows


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where HTML output is drawn), False in a terminal or script."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def _e(value: Any) -> str:
    return html.escape(str(value))


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int) and abs(value) >= 10000:
        return f"{value:,}"
    return _e(value)


def _table(header: list[str], rows: list[list[str]], scroll: bool = False) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='padding:1px 8px'>{c}</td>" for c in row) + "</tr>"
                   for row in rows)
    table = f"<table style='border-collapse:collapse;font-size:12px'><thead><tr>{head}</tr></thead>" \
            f"<tbody>{body}</tbody></table>"
    if scroll:
        return f"<div style='max-height:360px;overflow:auto;border:1px solid #ddd'>{table}</div>"
    return table


def _role(role: str) -> str:
    colour = ROLE_COLOURS.get(role, "#000")
    return f"<span style='color:{colour};font-weight:{600 if role == 'trains' else 400}'>{_e(role)}</span>"


def plan_html(plan: dict) -> str:
    """A plan (`Plan.to_dict()`): what trains in each stage, warnings, the layer table with roles."""
    stages = plan.get("stages") or {}
    rows = []
    for s in ("1", "2"):
        info = stages.get(s) or {}
        rows.append([f"stage {s}", _number(info.get("epochs")), _number(info.get("lr"), 6),
                     _number(info.get("trainable")), _number(info.get("backbone_trainable")),
                     _number(info.get("total")), _e(info.get("reason") or "")])
    parts = ["<div><b>Plan</b>: cut after layer {} ({} features), head {} parameters, {} output unit{}".format(
        _e(plan.get("cut_index")), _e("x".join(str(d) for d in plan.get("feature_shape") or [])),
        _number(plan.get("head_params")), _e(plan.get("output_units")),
        "" if plan.get("output_units") == 1 else "s") + "</div>",
        _table(["", "epochs", "learning rate", "trainable", "of it backbone", "total", "note"], rows)]
    for text in plan.get("warnings") or []:
        parts.append(f"<div style='color:#b26a00'>warning: {_e(text)}</div>")
    layers = list(plan.get("layers") or [])
    shown = layers if len(layers) <= LAYER_ROWS_SHOWN else \
        layers[:LAYER_ROWS_SHOWN // 2] + [None] + layers[-LAYER_ROWS_SHOWN // 2:]
    table_rows = [["…"] * 6 if row is None else
                  [_e(row["index"]), _e(row["name"]), _e(row["type"]), _number(row["params"]),
                   _role(row["stage1"]), _role(row["stage2"])] for row in shown]
    parts.append(_table(["index", "layer", "type", "parameters", "stage 1", "stage 2"], table_rows, scroll=True))
    legend = " ".join(_role(r) for r in ROLE_COLOURS)
    parts.append(f"<div style='font-size:11px'>roles: {legend}</div>")
    return "\n".join(parts)


def curves_svg(metrics: list[dict], width: int = 640, height: int = 220) -> str:
    """Loss and accuracy per epoch (training solid, validation dashed) as one inline SVG, two
    panels side by side; a dotted line where stage 2 begins. Empty string without epochs."""
    if not metrics:
        return ""
    panel_w = width // 2
    panels = []
    for p, (title, keys) in enumerate((("loss", ("loss", "val_loss")), ("accuracy", ("accuracy", "val_accuracy")))):
        panels.append(_panel(metrics, title, keys, p * panel_w, panel_w, height))
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"style='font:11px sans-serif'>{''.join(panels)}</svg>")


def _panel(metrics: list[dict], title: str, keys: tuple[str, str], x0: int, w: int, h: int) -> str:
    left, right, top, bottom = 50, 10, 26, 24
    epochs = [int(m.get("epoch") or i + 1) for i, m in enumerate(metrics)]
    values = [m.get(k) for m in metrics for k in keys if isinstance(m.get(k), (int, float))]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if title == "accuracy":
        lo, hi = min(lo, 0.0), max(hi, 1.0)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    e_lo, e_hi = min(epochs), max(epochs)
    span = max(1, e_hi - e_lo)

    def px(epoch: float) -> float:
        return x0 + left + (epoch - e_lo) / span * (w - left - right)

    def py(value: float) -> float:
        return top + (hi - value) / (hi - lo) * (h - top - bottom)

    out = [f"<text x='{x0 + left}' y='12' font-weight='bold'>{title}</text>",
           f"<rect x='{x0 + left}' y='{top}' width='{w - left - right}' height='{h - top - bottom}' "
           "fill='none' stroke='#ccc'/>"]
    decimals = max(2, min(6, round(-math.log10(hi - lo)) + 2))  # ticks that differ
    for value in (lo, (lo + hi) / 2, hi):
        tick = f"{value:.{decimals}f}"
        tick = tick.rstrip("0").rstrip(".") if decimals > 2 else tick
        out.append(f"<text x='{x0 + left - 4}' y='{py(value) + 4:.1f}' text-anchor='end'>{tick}</text>")
    for epoch in sorted({e_lo, e_hi}):
        out.append(f"<text x='{px(epoch):.1f}' y='{h - 8}' text-anchor='middle'>{epoch}</text>")
    out.append(f"<text x='{x0 + (left + w - right) / 2:.1f}' y='{h - 8}' text-anchor='middle'>epoch</text>")
    stage2 = [e for e, m in zip(epochs, metrics) if m.get("stage") == 2]
    if stage2 and min(stage2) > e_lo:
        x = px(min(stage2) - 0.5)
        out.append(f"<line x1='{x:.1f}' y1='{top}' x2='{x:.1f}' y2='{h - bottom}' stroke='#999' "
                   "stroke-dasharray='2,3'><title>stage 2 begins</title></line>")
    for key, colour, dash in ((keys[0], CURVE_COLOURS["train"], ""), (keys[1], CURVE_COLOURS["val"], "5,3")):
        points = [(px(e), py(m[key])) for e, m in zip(epochs, metrics) if isinstance(m.get(key), (int, float))]
        if not points:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(f"<polyline points='{path}' fill='none' stroke='{colour}' stroke-width='1.8' "
                   f"stroke-dasharray='{dash}'><title>{key}</title></polyline>")
        out += [f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2' fill='{colour}'/>" for x, y in points]
    for i, (label, colour, dash) in enumerate((("training", CURVE_COLOURS["train"], ""),
                                                ("validation", CURVE_COLOURS["val"], "5,3"))):
        legend_x, y = x0 + w - right - 170 + 80 * i, 9  # beside the title, above the plot
        out.append(f"<line x1='{legend_x}' y1='{y}' x2='{legend_x + 18}' y2='{y}' stroke='{colour}' "
                   f"stroke-width='1.8' stroke-dasharray='{dash}'/>"
                   f"<text x='{legend_x + 22}' y='{y + 4}'>{label}</text>")
    return "".join(out)


def run_html(summary: dict, metrics: list[dict], status: dict) -> str:
    """A run: id, state, backbone, accuracies, where it is, its warnings and its curves."""
    state = summary.get("state")
    facts = [("state", state), ("backbone", summary.get("backbone")), ("dataset", summary.get("dataset")),
             ("best validation accuracy", _number(summary.get("val_accuracy"))),
             ("test accuracy", _number(summary.get("test_accuracy"))), ("epochs done", len(metrics))]
    if state in ("queued", "running"):
        facts.append(("now", f"stage {status.get('stage')}, epoch {status.get('epoch')}/{status.get('epochs_total')}"))
    if status.get("error"):
        facts.append(("error", status.get("error")))
    rows = [[_e(k), v if k.endswith("accuracy") else _e(v)] for k, v in facts if v not in (None, "")]
    parts = [f"<div><b>Run</b> <code>{_e(summary.get('run_dir'))}</code></div>", _table(["", ""], rows)]
    for text in status.get("warnings") or []:
        parts.append(f"<div style='color:#b26a00'>warning: {_e(text)}</div>")
    parts.append(curves_svg(metrics))
    return "\n".join(parts)


def evaluation_html(ev: dict) -> str:
    """An evaluation (`tlcore evaluate --json`): accuracy, loss, per class, confusion matrix."""
    head = "<div><b>Evaluation</b> on {} images of the {} split: accuracy {}, loss {}, ECE {}</div>".format(
        _e(ev.get("count")), _e(ev.get("split")), _number(ev.get("accuracy")), _number(ev.get("loss")),
        _number(ev.get("ece")))
    per_class = ev.get("per_class") or {}
    rows = [[_e(name), _number(v.get("precision")), _number(v.get("recall")), _number(v.get("f1")),
             _e(v.get("support"))] for name, v in per_class.items()]
    labels = ev.get("labels") or list(per_class)
    cm = ev.get("confusion_matrix") or []
    cm_rows = [[_e(labels[i]) if i < len(labels) else ""] + [_e(c) for c in row] for i, row in enumerate(cm)]
    return "\n".join([head, _table(["class", "precision", "recall", "f1", "images"], rows),
                      "<div style='font-size:11px'>confusion matrix (rows: true, columns: predicted)</div>",
                      _table(["", *labels], cm_rows)])


def scan_html(report: dict) -> str:
    """A scanned dataset (`tlcore scan --json`): images per split and class, problems, warnings."""
    counts = report.get("counts") or {}
    classes = list(report.get("classes") or [])
    splits = [s for s in ("train", "validation", "test") if s in counts] + \
        [s for s in counts if s not in ("train", "validation", "test")]
    rows = [[_e(c)] + [_e((counts.get(s) or {}).get(c, 0)) for s in splits] for c in classes]
    parts = [f"<div><b>Dataset</b> <code>{_e(report.get('path'))}</code> ({_e(report.get('layout'))} layout, "
             f"{len(classes)} classes)</div>", _table(["class", *splits], rows)]
    for text in report.get("warnings") or []:
        parts.append(f"<div style='color:#b26a00'>warning: {_e(text)}</div>")
    problems = report.get("problems") or []
    if problems:
        parts.append(f"<div style='color:#c62828'>{len(problems)} file(s) cannot be used, e.g. "
                     f"{_e(problems[0])}</div>")
    return "\n".join(parts)


def image_html(image, caption: str = "", max_side: int = 320) -> str:
    """A PIL image as an inline PNG, with a caption."""
    import base64
    import io

    im = image.copy()
    im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"<figure style='margin:0'><img src='data:image/png;base64,{data}'/>" \
           f"<figcaption>{_e(caption)}</figcaption></figure>"


# --- progress while a run trains -----------------------------------------------------------

class _PlainBar:
    """A one-line text progress bar on stderr, for when tqdm is not installed."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.n, self.postfix = total, desc, 0, ""

    def update_to(self, n: int, total: int | None = None, postfix: str | None = None) -> None:
        self.total = total or self.total
        self.n, self.postfix = n, self.postfix if postfix is None else postfix
        postfix = self.postfix
        done = min(1.0, n / self.total) if self.total else 0.0
        bar = "#" * int(done * 30)
        sys.stderr.write(f"\r{self.desc} [{bar:<30}] {done:4.0%} {postfix}   ")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


class _TqdmBar:
    def __init__(self, total: int, desc: str, tqdm_class):
        self.bar = tqdm_class(total=total, desc=desc, unit="batch", leave=True)

    def update_to(self, n: int, total: int | None = None, postfix: str | None = None) -> None:
        if (n, total, postfix) == getattr(self, "_last", None):
            return  # nothing new to draw
        self._last = (n, total, postfix)
        if total and total != self.bar.total:
            self.bar.total = total
        self.bar.n = n
        if postfix is not None:
            self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _bar_factory() -> Callable[[int, str], Any]:
    """tqdm.auto's bar when tqdm is installed (its text bar in a notebook without ipywidgets),
    else a plain text bar."""
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return _PlainBar
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.auto import tqdm as bar_class
        except ImportError:
            from tqdm.std import tqdm as bar_class
    else:
        from tqdm.auto import tqdm as bar_class
    return lambda total, desc: _TqdmBar(total, desc, bar_class)


class Progress:
    """Follows one run through its store: a bar per stage (batches of that stage's epochs, with
    the epoch and the last losses), and in a notebook a chart of the curves redrawn after every
    epoch. `update` is called by whoever waits for the run; `close` ends the bars."""

    def __init__(self, enabled: bool = True, chart: bool | None = None):
        self.enabled = enabled
        self.chart = in_notebook() if chart is None else chart
        self.bars: dict[int, Any] = {}  # stage -> its bar (None once closed)
        self.totals: dict[int, int] = {}
        self.make_bar = _bar_factory() if enabled else None
        self.epochs_drawn = -1
        self.handle = None

    def update(self, status: dict, metrics: list[dict]) -> None:
        if not self.enabled:
            return
        stage = status.get("stage")
        stage_epochs = {int(k): int(v) for k, v in (status.get("stage_epochs") or {}).items()}
        batches = status.get("batches_total")
        if stage in (1, 2) and stage_epochs.get(stage) and batches:
            for earlier in [s for s in self.bars if s < stage and self.bars[s] is not None]:
                if sum(1 for m in metrics if m.get("stage") == earlier) >= stage_epochs.get(earlier, 0):
                    self.bars[earlier].update_to(self.totals[earlier])  # its last batches passed unseen
                self._finish(earlier)
            offset = stage_epochs.get(1, 0) if stage == 2 else 0
            epochs = stage_epochs[stage]
            total = epochs * int(batches)
            epoch = int(status.get("epoch") or 0) - offset
            n = max(0, (epoch - 1) * int(batches) + int(status.get("batch") or 0))
            if stage not in self.bars:
                self.bars[stage] = self.make_bar(total, f"stage {stage}")
            if self.bars[stage] is None:
                return
            self.totals[stage] = total
            last = [m for m in metrics if m.get("stage") == stage][-1:]
            postfix = f"epoch {max(epoch, 1)}/{epochs}"
            if last:
                postfix += "".join(f" {k} {last[0][k]:.3f}" for k in ("loss", "val_loss", "val_accuracy")
                                   if isinstance(last[0].get(k), (int, float)))
            if status.get("feature_cache", "").startswith("computing") and stage == 1:
                postfix += " (computing the feature cache)"
            self.bars[stage].update_to(min(n, total), total, postfix)
        if self.chart and len(metrics) != self.epochs_drawn and metrics:
            self.epochs_drawn = len(metrics)
            self._draw(curves_svg(metrics))

    def _draw(self, svg: str) -> None:
        try:
            from IPython.display import HTML, display
        except ImportError:
            return
        if self.handle is None:
            self.handle = display(HTML(svg), display_id=True)
        else:
            self.handle.update(HTML(svg))

    def _finish(self, stage: int) -> None:
        bar = self.bars.pop(stage, None)
        if bar is not None:
            bar.close()
            self.bars[stage] = None  # closed; never reopened

    def close(self, status: dict | None = None, metrics: list[dict] | None = None) -> None:
        if status is not None:
            self.update(status, metrics or [])
        for stage in list(self.bars):
            if self.bars[stage] is not None:
                self._finish(stage)
