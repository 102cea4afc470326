"""The studio in Korean and English (`studio.i18n`, the catalogs in studio/locale, scripts/i18n.py).

- every UI string marked in app.py, views/ and studio/ has a Korean translation, not fuzzy, and the
  committed .mo is compiled from the .po;
- with ``?lang=ko`` every page renders with no English sentence in its titles, sidebar, buttons,
  labels and messages; ``?lang=en`` is English as before;
- the language is per session (two sessions, two languages), follows the browser's Accept-Language,
  and the sidebar switch writes it into the URL.

"English sentence" here: two ASCII words in a row of which one is an English function word (the, of,
to, is, …), after code spans, file names, URLs and Material icons are taken out. Identifiers, model
names and option values (`MobileNetV2 · 224 px`, `Ray Tune`, `float16`) are not sentences.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from apphelp import open_page

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["views/1_Home.py", "views/0_Quick_start.py", "views/2_Backbone.py", "views/3_Layers.py", "views/4_Data.py",
         "views/5_Train.py", "views/6_Evaluate.py", "views/7_Predict.py", "views/8_Runs.py", "views/9_Search.py"]
FUNCTION_WORDS = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "is", "are", "be", "this",
                  "that", "it", "its", "by", "from", "your", "no", "not", "yet", "at", "as", "here", "one", "all",
                  "you", "what", "when", "then", "than", "each", "every", "first", "more", "there", "has", "have"}


def _tool():
    spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "scripts" / "i18n.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def english_sentences(text: str) -> list[str]:
    """The English word pairs in `text` (see the module's docstring), empty for Korean text."""
    text = re.sub(r"`[^`]*`", " ", str(text))  # code spans: paths, commands, layer names
    text = re.sub(r":material/\w+:|https?://\S+|\S+\.(png|py|zip|keras|h5|json|jsonl)\b", " ", text)
    words = re.findall(r"[A-Za-z][A-Za-z'’-]*|[^\sA-Za-z]+", text)
    pairs = []
    for a, b in zip(words, words[1:]):
        if a.isascii() and b.isascii() and a[0].isalpha() and b[0].isalpha() and len(a) > 1 and len(b) > 1:
            if {a.lower(), b.lower()} & FUNCTION_WORDS:
                pairs.append(f"{a} {b}")
    return pairs


def test_the_sentence_detector():
    assert english_sentences("Choose a dataset first.")
    assert english_sentences("Pretrained weights for the backbone") != []
    for korean in ("먼저 데이터셋을 고르세요.", "MobileNetV2 · 224 px · ImageNet 가중치", "Ray Tune 사용: 실행 하나씩",
                   "`python train.py DATA`로 실행하세요.", ":material/memory: TensorFlow 2.21.0 · CPU만 사용"):
        assert english_sentences(korean) == [], korean


# --- the catalogs ---------------------------------------------------------------------

def test_every_ui_string_has_a_korean_translation():
    tool = _tool()
    template = tool.extract()
    assert len(template) > 500  # the pages' strings were found at all
    assert tool.problems(template, tool.po_path("ko"), tool.po_path("ko").with_suffix(".mo")) == []


def test_the_check_names_a_new_untranslated_string_and_a_stale_mo(tmp_path):
    tool = _tool()
    page = tmp_path / "views" / "new_page.py"
    page.parent.mkdir()
    page.write_text('from studio.i18n import N_, _\nLABEL = N_("A label nobody translated")\n'
                    'def main():\n    return _("{n} new sentences here").format(n=2)\n')
    template = tool.extract(tmp_path, ("views",))
    found = tool.problems(template, tool.po_path("ko"))
    assert any("A label nobody translated" in p and "views/new_page.py:2" in p for p in found), found
    assert any("{n} new sentences here" in p for p in found), found

    po = tmp_path / "tlstudio.po"  # the catalog with one translation changed after compiling
    po.write_text(tool.po_path("ko").read_text(encoding="utf-8").replace('msgstr "TL 스튜디오"', 'msgstr "TL 스튜디오!"'),
                  encoding="utf-8")
    found = tool.problems(tool.extract(), po, tool.po_path("ko").with_suffix(".mo"))
    assert found and "not compiled from the current" in found[-1]


def test_a_fuzzy_translation_counts_as_missing(tmp_path):
    tool = _tool()
    text = tool.po_path("ko").read_text(encoding="utf-8")
    po = tmp_path / "tlstudio.po"
    po.write_text(text.replace('msgid "TL Studio"', '#, fuzzy\nmsgid "TL Studio"', 1), encoding="utf-8")
    found = tool.problems(tool.extract(), po)
    assert any(p.startswith("fuzzy") and "'TL Studio'" in p for p in found), found


def test_translations_keep_their_placeholders():
    """A translation may drop a placeholder (a plural 's') but never invent one `.format` would miss."""
    import string

    from babel.messages.pofile import read_po

    with open(_tool().po_path("ko"), "rb") as f:
        catalog = read_po(f)

    def fields(s: str) -> set:
        return {name for _, name, _, _ in string.Formatter().parse(s) if name is not None}

    for message in catalog:
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        for s in strings:
            assert fields(s) <= set().union(*map(fields, ids)), (message.id, s)


# --- per session, lazily ----------------------------------------------------------------

def test_outside_a_session_the_words_are_english():
    from studio import i18n, text

    assert i18n._("TL Studio") == "TL Studio"
    assert str(i18n.N_("Train")) == "Train" and f"{i18n.N_('Train')}" == "Train"
    assert text.format_seconds(130) == "2 min 10 s" and text.option_word("cut") == "The cut"


def test_korean_words_come_from_the_catalog(monkeypatch):
    from studio import i18n, text

    monkeypatch.setattr(i18n, "current", lambda: "ko")
    assert i18n._("TL Studio") == "TL 스튜디오"
    assert str(i18n.N_("Train")) == "학습"
    assert text.format_seconds(130) == "2분 10초" and text.format_seconds(42) == "42초"
    assert text.option_word("cut") == "자르기 지점"
    assert "1 ·" not in text.state_word("completed") and text.state_word("completed") == "완료"


def test_engine_errors_are_worded_with_the_translated_option_label(monkeypatch):
    from studio import i18n
    from studio.text import error_words
    from tlcore.core.errors import OptionError

    exc = OptionError("cut", "{option:cut}='nope' is not a layer of MobileNetV2.")
    assert error_words(exc).startswith("The cut=")
    monkeypatch.setattr(i18n, "current", lambda: "ko")
    assert error_words(exc).startswith("자르기 지점='nope'")


@pytest.mark.parametrize("header, lang", [("ko-KR,ko;q=0.9,en-US;q=0.8", "ko"), ("en-US,en;q=0.9,ko;q=0.8", "en"),
                                          ("de-DE,ko;q=0.5", "ko"), ("de-DE,fr;q=0.9", None), ("", None),
                                          ("ko_KR", "ko"), ("en;q=0.2,ko;q=0.7", "ko")])
def test_the_browser_language(header, lang):
    from studio.i18n import from_accept_language

    assert from_accept_language(header) == lang


# --- the pages --------------------------------------------------------------------------

def _shown(at) -> list[str]:
    """Every text the user reads on the page: titles, markdown, alerts, widget labels and help."""
    out = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success",
                 "exception"):
        out += [str(e.value) for e in getattr(at, kind)]
    for kind in ("button", "checkbox", "toggle", "selectbox", "multiselect", "radio", "text_input", "text_area",
                 "number_input", "slider", "select_slider", "button_group", "expander", "tabs", "metric"):
        for e in getattr(at, kind):
            out += [str(getattr(e, "label", "") or ""), str(getattr(e, "help", "") or "")]
            if kind in ("radio", "button_group"):
                out += [str(o) for o in getattr(e, "options", [])]
    return [s for s in out if s]


def _settle(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture
def quiet_home(tlhome, monkeypatch):
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    return tlhome


@pytest.mark.slow  # every page once, about a minute
def test_every_page_in_korean_has_no_english_sentence(quiet_home):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params["lang"] = "ko"
    at.run()
    _settle(at)
    assert [t.value for t in at.title] == ["TL 스튜디오"]
    found = {}
    for page in PAGES:
        at.switch_page(page).run()
        _settle(at)
        assert at.title and re.search(r"[가-힣]", at.title[0].value), (page, [t.value for t in at.title])
        english = [(s[:90], english_sentences(s)) for s in _shown(at) if english_sentences(s)]
        if english:
            found[page] = english
        assert at.query_params.get("lang") == "ko", page  # the language stays in the URL on every page
    assert found == {}, "\n".join(f"{page}: {text!r}" for page, texts in found.items() for text, _ in texts)


def test_lang_en_is_english_as_before(quiet_home):
    at = open_page(None, timeout=180)
    assert [t.value for t in at.title] == ["TL Studio"]
    assert "lang" not in at.query_params  # nothing asked: the URL stays as it was

    from streamlit.testing.v1 import AppTest

    en = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    en.query_params["lang"] = "en"
    en.run()
    _settle(en)
    assert [t.value for t in en.title] == ["TL Studio"] and en.query_params["lang"] == "en"
    assert any(c.value.startswith("Transfer learning and fine-tuning") for c in en.caption)


def test_the_sidebar_switch_changes_the_language_and_the_url(quiet_home):
    at = open_page(None, timeout=180)
    switch = at.sidebar.radio[0]
    assert list(switch.options) and switch.value == "en"
    switch.set_value("ko").run()
    _settle(at)
    assert [t.value for t in at.title] == ["TL 스튜디오"] and at.query_params["lang"] == "ko"
    at.switch_page("views/5_Train.py").run()
    _settle(at)
    assert at.title[0].value == "학습" and any(b.label == "학습률 찾기" for b in at.button)
    at.sidebar.radio[0].set_value("en").run()
    _settle(at)
    assert at.title[0].value == "Train" and at.query_params["lang"] == "en"


def test_two_sessions_keep_their_own_language(quiet_home):
    """Sessions share one process (and its catalogs); each sees its own language."""
    from streamlit.testing.v1 import AppTest

    ko = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    ko.query_params["lang"] = "ko"
    en = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    ko.run()
    en.run()
    ko.run()
    assert [t.value for t in ko.title] == ["TL 스튜디오"] and [t.value for t in en.title] == ["TL Studio"]


def test_engine_sentences_the_pages_show_have_korean_templates(monkeypatch):
    """Every preset's description (the Train page shows it) fits a template of `studio.engine_words`,
    so a changed engine sentence fails here instead of showing English in a Korean page."""
    from studio import engine_words, i18n
    from tlcore.recipe.presets import list_presets

    monkeypatch.setattr(i18n, "current", lambda: "ko")
    for preset in list_presets():
        assert english_sentences(engine_words.say(preset.description)) == [], preset.name
    nested = "No backbone weight trains in stage 2: Stage 2 has no epochs, so nothing is unfrozen. Only the head learns."
    said = engine_words.say(nested)  # the warning and the reason inside it, both in Korean
    assert i18n._("Stage 2 has no epochs, so nothing is unfrozen.") in said and english_sentences(said) == []
    assert engine_words.say("A sentence the engine added later.") == "A sentence the engine added later."


@pytest.fixture(scope="module")
def korean_run(tmp_path_factory, small_two_stage_run):
    """A completed two-stage run (the session's small one, conftest.py: MobileNetV2 at 32 px, random
    weights) copied into a home of its own."""
    import shutil

    home = tmp_path_factory.mktemp("korean-run") / "home"
    run_dir = home / "runs" / Path(small_two_stage_run.run_dir).name
    shutil.copytree(small_two_stage_run.run_dir, run_dir)
    return home, small_two_stage_run.data, str(run_dir)


@pytest.mark.slow
def test_pages_with_a_finished_run_in_korean(korean_run, monkeypatch):
    """Evaluate, Predict, Runs and Train with a completed run selected: its results, panels and
    tables in Korean too."""
    from streamlit.testing.v1 import AppTest

    home, data, run_dir = korean_run
    monkeypatch.setenv("TLCORE_HOME", str(home))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.query_params.update(lang="ko", data=str(data), run_dir=run_dir, backbone="MobileNetV2", input_size="32",
                           weights="none")
    at.run()
    _settle(at)
    found = {}
    for page in ("views/5_Train.py", "views/6_Evaluate.py", "views/7_Predict.py", "views/8_Runs.py",
                 "views/3_Layers.py", "views/4_Data.py"):
        at.switch_page(page).run()
        _settle(at)
        english = [s[:90] for s in _shown(at) if english_sentences(s)]
        if english:
            found[page] = english
    assert found == {}, "\n".join(f"{page}: {text!r}" for page, texts in found.items() for text in texts)


def test_the_sign_in_page_in_korean(tlhome, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TLSTUDIO_PASSWORD", "open sesame")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["lang"] = "ko"
    at.run()
    _settle(at)
    assert at.text_input and at.text_input[0].label == "비밀번호", ([t.value for t in at.title], [m.value for m in at.markdown])
    assert [s for s in _shown(at) if english_sentences(s)] == []
    at.text_input[0].input("wrong")
    at.button[0].click().run()
    assert at.error and all(english_sentences(e.value) == [] for e in at.error)


def test_every_marked_string_is_a_literal_babel_can_extract():
    """``_(name)`` with a variable is never in the catalog: it would stay English in every language.
    (`studio.i18n` and `studio.engine_words` translate what was marked elsewhere.)"""
    import ast

    found = []
    for path in [ROOT / "app.py", *sorted((ROOT / "views").glob("*.py")), *sorted((ROOT / "studio").glob("*.py"))]:
        if path.name in ("i18n.py", "engine_words.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "N_", "ngettext"):
                literal = [a for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                if len(literal) != (2 if node.func.id == "ngettext" else 1):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
