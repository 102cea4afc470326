"""Streamlit's own widget texts in the session's language.

Streamlit draws some words itself, in English, with no option to change them (1.67: no locale
setting, no text parameter on `st.file_uploader` or `st.camera_input`; streamlit/streamlit#13500
asks for one):
the file uploader's button ("Upload", "Upload directories"), its limit ("1GB per file"), its drag
overlay ("Drag and drop files here"), the camera's buttons ("Take Photo", "Clear photo") and its
permission note, a toast's "view more", and the status widget's "Stop". In a Korean session a style sheet hides each of those
texts and shows the catalog's words in its place (a CSS ``::after`` on the same element, found by
Streamlit's ``data-testid``s); an English session gets no style at all, so it stays exactly as before.

Plotly's toolbar (its "modebar", on a chart's hover) draws its tooltips the same way, from each button's
``data-title``; those are replaced too.
"""
from __future__ import annotations

import json

from studio import i18n
from studio.i18n import _


def _content(text: str) -> str:
    """`text` as a CSS string (``content: "..."``)."""
    return json.dumps(str(text), ensure_ascii=False)


def upload_limit_text(megabytes: int) -> str:
    """Streamlit's size limit as it writes it ("1GB", "200MB")."""
    return f"{megabytes // 1024}GB" if megabytes >= 1024 and megabytes % 1024 == 0 else f"{megabytes}MB"


def _replace(selector: str, text: str, size: str = "0.875rem", disabled: str | None = None) -> str:
    """CSS that hides `selector`'s own text and shows `text` instead."""
    rules = (f'{selector}{{font-size:0 !important;}}'
             f'{selector}::after{{content:{_content(text)};font-size:{size};line-height:1.6;}}')
    if disabled:
        rules += f'{selector}:disabled::after{{content:{_content(disabled)};}}'
    return rules


def style_sheet(max_upload_mb: int) -> str:
    """The style sheet that words Streamlit's own texts in the running session's language ("" in English)."""
    if i18n.current() == "en":
        return ""
    drop = '[data-testid="stFileUploaderDropzone"]'
    camera = '[data-testid="stCameraInput"]'
    ask = f'{camera} *:has(> a[target="_blank"])'
    asking = _("This app would like to use your camera.")
    overlay = "{drop} > div:not([data-testid]):not(:has([data-testid])) > span"
    rules = [
        _replace(f'{drop} button [data-testid="stMarkdownContainer"] p', _("Upload")),
        _replace(f'{drop}:has(input[webkitdirectory]) button [data-testid="stMarkdownContainer"] p',
                 _("Upload directories")),
        _replace(f'{drop} [data-testid="stFileUploaderDropzoneInstructions"] span',
                 _("{size} per file").format(size=upload_limit_text(max_upload_mb))),
        # the overlay while a file is dragged over (a div of one span; the chips of dropped files hold testids)
        _replace(overlay.format(drop=drop), _("Drag and drop files here"), size="1rem"),
        _replace(overlay.format(drop=f"{drop}:has(input:not([multiple]))"), _("Drag and drop a file here"), size="1rem"),
        _replace(overlay.format(drop=f"{drop}:has(input[webkitdirectory])"), _("Drag and drop directories here"),
                 size="1rem"),
        # the camera: one button, "Take Photo" (its own text), then "Clear photo" (a span: an icon and the text)
        _replace(f'{camera} button[data-testid="stCameraInputButton"]:not(:has(svg))', _("Take Photo"), size="1rem"),
        _replace(f'{camera} button[data-testid="stCameraInputButton"] > span:has(svg)', _("Clear photo"), size="1rem"),
        f'{camera} button[data-testid="stCameraInputButton"] > span:has(svg)'
        '{display:inline-flex !important;align-items:center;gap:0.35rem;}',
        # the camera's note while the browser has not given it (a sentence, then a link)
        f'{ask}{{font-size:0 !important;}}{ask}::before{{content:{_content(asking + " ")};font-size:1rem;}}',
        _replace(f'{ask} > a', _("Learn how to allow access."), size="1rem"),
        # a toast's "view more" / "view less" (one button; the page cannot tell which it shows)
        _replace('[data-testid="stToastViewButton"]', _("more / less")),
        # the status widget in the top bar while a page runs
        _replace('[data-testid="stStatusWidget"] button', _("Stop"), disabled=_("Stopping...")),
    ]
    # Plotly's toolbar: its tooltips are the buttons' data-title, drawn by a CSS ::after
    rules += [f'.js-plotly-plot .plotly .modebar-btn[data-title={_content(title)}]::after'
              f'{{content:{_content(word)} !important;}}' for title, word in plotly_words().items()]
    return "<style>" + "".join(rules) + "</style>"


def apply() -> None:
    """Put the style sheet into the page (nothing in an English session)."""
    import streamlit as st

    sheet = style_sheet(int(st.get_option("server.maxUploadSize")))
    if sheet:
        st.html(sheet)


def plotly_words() -> dict[str, str]:
    """Plotly's toolbar tooltips (its buttons' ``data-title``) in the running session's language."""
    return {"Download plot as a PNG": _("Download plot as a PNG"), "Download plot": _("Download plot"),
            "Fullscreen": _("Fullscreen"),
            "Zoom": _("Zoom"), "Pan": _("Pan"), "Box Select": _("Box Select"), "Lasso Select": _("Lasso Select"),
            "Zoom in": _("Zoom in"), "Zoom out": _("Zoom out"), "Autoscale": _("Autoscale"),
            "Reset axes": _("Reset axes"), "Toggle Spike Lines": _("Toggle Spike Lines"),
            "Show closest data on hover": _("Show closest data on hover"),
            "Compare data on hover": _("Compare data on hover"), "Reset view": _("Reset view")}
