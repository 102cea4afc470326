"""The served studio in Korean, in headless Chromium: ``?lang=ko`` on every page (screenshots in
artifacts/screenshots/ko-*.png), a reload keeps the language, the sidebar switches back to English,
and a browser that asks for Korean (Accept-Language) gets it without a parameter.

Skipped only when the `chromium` browser is not installed.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from apphelp import streamlit_server
from test_browser import ARGS, SHOTS, settle, shot
from test_i18n import english_sentences as _english

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
KOREAN_PAGES = ["빠른 시작", "백본", "레이어", "데이터", "학습", "평가", "예측", "실행 기록", "탐색"]
ENGLISH_LINKS = ["Quick start", "Home", "Backbone", "Layers", "Data", "Train", "Evaluate", "Predict", "Runs", "Search"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("the chromium browser is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    home = tmp_path_factory.mktemp("i18n-home")
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TLSTUDIO_PASSWORD", None)
    with streamlit_server(home, env) as url:
        yield url


@pytest.fixture(scope="module")
def finished_run(server, tmp_path_factory, small_two_stage_run):
    """A completed run (the session's small one, conftest.py: MobileNetV2 at 32 px, random weights)
    copied into a home of its own, served by a second studio: its Evaluate, Predict and Runs pages
    in Korean."""
    home = tmp_path_factory.mktemp("i18n-run") / "home"
    run_dir = home / "runs" / Path(small_two_stage_run.run_dir).name
    shutil.copytree(small_two_stage_run.run_dir, run_dir)
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TLSTUDIO_PASSWORD", None)
    with streamlit_server(home, env) as url:
        yield url, str(run_dir), small_two_stage_run.data


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def _open(browser, locale: str = "en-US"):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(120_000)
    return context, page


def _nav(page) -> str:
    return page.get_by_test_id("stSidebarNav").inner_text()


def english_sentences(page) -> list[str]:
    """English on the page's main part and sidebar, by the catalog test's rule (`test_i18n.english_sentences`:
    word pairs holding a function word; a list of class or package names holds none)."""
    text = page.get_by_test_id("stMain").inner_text() + "\n" + page.get_by_test_id("stSidebar").inner_text()
    return [pair for line in text.splitlines() for pair in _english(line)]  # a pair within one line of text


def test_korean_pages_reload_and_switch_back(server, browser):
    context, page = _open(browser)
    try:
        page.goto(f"{server}/?lang=ko")
        page.get_by_role("heading", name="TL 스튜디오").first.wait_for()
        page.get_by_text("이 컴퓨터").first.wait_for()  # Home's machine section (TensorFlow loaded)
        settle(page)
        nav = _nav(page)
        assert all(word in nav for word in ["홈", *KOREAN_PAGES]), nav
        assert not any(re.search(rf"\b{link}\b", nav) for link in ENGLISH_LINKS), nav
        assert not english_sentences(page), english_sentences(page)
        shot(page, "ko-01-home")
        for i, title in enumerate(KOREAN_PAGES, start=2):
            page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
            page.get_by_role("heading", name=title).first.wait_for()
            settle(page)
            assert "lang=ko" in page.url, page.url
            assert not english_sentences(page), (title, english_sentences(page))
            shot(page, f"ko-{i:02d}-{i}")

        page.reload()  # a reload (a fresh session) keeps the language: it is in the URL
        page.get_by_role("heading", name=KOREAN_PAGES[-1]).first.wait_for()
        settle(page)
        assert "홈" in _nav(page)

        page.get_by_test_id("stSidebar").get_by_text("English", exact=True).click()
        page.get_by_role("heading", name="Search").first.wait_for()
        settle(page)
        assert "Home" in _nav(page) and "lang=en" in page.url
        assert english_sentences(page)  # the check above sees English where there is some
        shot(page, "ko-12-switched-to-english")
    finally:
        context.close()


def test_run_pages_in_korean(finished_run, browser):
    from urllib.parse import urlencode

    url, run_dir, data = finished_run
    context, page = _open(browser)
    try:
        query = urlencode({"lang": "ko", "run_dir": run_dir, "data": str(data), "backbone": "MobileNetV2",
                           "input_size": "32", "weights": "none"})
        page.goto(f"{url}/evaluate?{query}")
        page.get_by_role("heading", name="평가").first.wait_for()
        page.get_by_text("혼동 행렬").first.wait_for()
        settle(page)
        assert not english_sentences(page), english_sentences(page)
        shot(page, "ko-21-evaluate-run")
        for title, name in (("예측", "ko-22-predict-run"), ("실행 기록", "ko-23-runs"), ("학습", "ko-24-train-run")):
            page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
            page.get_by_role("heading", name=title).first.wait_for()
            settle(page)
            assert "lang=ko" in page.url
            assert not english_sentences(page), (title, english_sentences(page))
            shot(page, name)
    finally:
        context.close()


def test_a_browser_asking_for_korean_gets_korean(server, browser):
    context, page = _open(browser, locale="ko-KR")
    try:
        page.goto(server)
        page.get_by_role("heading", name="TL 스튜디오").first.wait_for()
        settle(page)
        assert "홈" in _nav(page) and "lang=" not in page.url  # the browser's wish is not written into links
    finally:
        context.close()
