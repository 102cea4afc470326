"""Streamlit's own widget texts in a Korean session (`studio.widget_words`): a style sheet that hides
each built-in English text and shows the catalog's words; nothing at all in an English session."""
from __future__ import annotations

import re

import pytest

from test_i18n import english_sentences


@pytest.fixture
def korean(monkeypatch):
    from studio import i18n

    monkeypatch.setattr(i18n, "current", lambda: "ko")


def test_an_english_session_gets_no_style():
    from studio import widget_words

    assert widget_words.style_sheet(200) == ""


def test_a_korean_session_words_the_uploader_the_camera_and_the_status(korean):
    from studio import widget_words

    sheet = widget_words.style_sheet(1024)
    shown = re.findall(r'content:"([^"]*)"', sheet)
    for testid in ("stFileUploaderDropzone", "stFileUploaderDropzoneInstructions", "stCameraInputButton",
                   "stStatusWidget", "stToastViewButton"):
        assert testid in sheet
    assert "파일당 최대 1GB" in shown and "사진 찍기" in shown and "폴더 올리기" in shown
    assert all(english_sentences(text) == [] and not text.isascii() for text in shown), shown
    assert "modebar-btn[data-title=\"Zoom in\"]" in sheet  # Plotly's toolbar tooltips too


@pytest.mark.parametrize("megabytes, text", [(200, "200MB"), (1024, "1GB"), (1536, "1536MB"), (2048, "2GB")])
def test_the_limit_reads_as_streamlit_writes_it(megabytes, text):
    from studio.widget_words import upload_limit_text

    assert upload_limit_text(megabytes) == text


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_the_app_puts_the_style_sheet_in_korean_sessions_only(tlhome, monkeypatch, lang):
    from streamlit.testing.v1 import AppTest

    from apphelp import ROOT

    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    sheets = [h.proto.body for h in at.get("html") if "stFileUploaderDropzone" in h.proto.body]
    assert len(sheets) == (1 if lang == "ko" else 0)
