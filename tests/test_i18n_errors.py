"""The engine's error messages in the studio's Korean (`studio.engine_errors`, `studio.engine_words.say`,
`studio.text.error_words`).

The engine raises English and names arguments; the studio words each message in the session's language.
Every message tlcore raises (its command line's own aside) is read from its source and must fit a
template with a Korean translation, so a new engine error fails here instead of reaching a Korean page
in English. Bad inputs through the engine's public functions show in Korean, and in English exactly as
the engine wrote them (with the pages' labels for options, as before).
"""
from __future__ import annotations

import importlib.util
import re
import string
from pathlib import Path

import pytest

from test_i18n import english_sentences

ROOT = Path(__file__).resolve().parents[1]
# messages that are not text written where they are raised, each with why the studio never shows it
UNTRACED = {"tlcore/training/train.py": "a multi-worker cluster's failure (device.worker_failure): the command line's",
            "tlcore/data/images.py": "images._open_reason's sentences, which studio/engine_errors.py holds"}


def _tool():
    spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "scripts" / "i18n.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def korean(monkeypatch):
    from studio import i18n

    monkeypatch.setattr(i18n, "current", lambda: "ko")


def _fields(template: str) -> set:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_every_engine_error_has_a_korean_template():
    from studio import engine_errors, i18n

    tool = _tool()
    found = tool.engine_errors()
    assert len(found) > 250  # the scan saw the engine's errors at all
    korean = i18n.translations("ko")
    templates = {}
    for t in engine_errors.TEMPLATES:
        templates.setdefault(tool.error_shape(t.message), t.message)
    missing = []
    for error in found:
        if error["shape"] is None:
            if error["where"].split(":")[0] not in UNTRACED:
                missing.append(f"{error['where']}: a message the scan cannot follow")
            continue
        template = templates.get(error["shape"])
        if template is None:
            missing.append(f"{error['where']}: no template in studio/engine_errors.py for {error['draft']!r}")
            continue
        said = korean.gettext(template)
        words = re.search(r"[A-Za-z]{2}", tool.error_shape(template).replace("{option}", ""))
        if (said == template and words) or english_sentences(said):
            missing.append(f"{error['where']}: no Korean for {template!r}")
        markers = lambda s: sorted(f for f in _fields(s) if f == "option")  # noqa: E731
        if _fields(said) - _fields(template) or markers(said) != markers(template):
            missing.append(f"{error['where']}: the Korean of {template!r} changes its places: {said!r}")
    assert missing == [], "run `python scripts/i18n.py engine` for drafts:\n" + "\n".join(missing)


def test_the_scan_finds_a_new_engine_error(tmp_path):
    tool = _tool()
    module = tmp_path / "tlcore" / "newpart.py"
    module.parent.mkdir()
    module.write_text('from .core.errors import OptionError, TLCoreError\nHINT = " Try again."\n'
                      'def check(x, path):\n'
                      '    if x < 0:\n        raise OptionError("x", f"must be 0 or more. Received: {x!r}")\n'
                      '    message = f"No such widget: {path}.{HINT}"\n    raise TLCoreError(message)\n')
    (tmp_path / "tlcore" / "cli").mkdir()
    (tmp_path / "tlcore" / "cli" / "main.py").write_text('raise TLCoreError("A command-line-only error.")\n')
    found = {e["draft"] for e in tool.engine_errors(tmp_path)}
    assert found == {"{option} must be 0 or more. Received: {x}", "No such widget: {path}. Try again."}
    assert tool.error_shape("{option} must be 0 or more. Received: {value}") == "{option} must be 0 or more. Received: \0"


def _raised(call) -> Exception:
    from tlcore.core.errors import TLCoreError

    with pytest.raises(TLCoreError) as info:
        call()
    return info.value


def _bad_inputs(tmp_path):
    """Errors a studio user can meet, raised by the engine's own functions."""
    from tlcore.backbones.catalog import get_backbone
    from tlcore.core.runs import RunStore
    from tlcore.data.datasets import check_name
    from tlcore.data.pipeline import check_folder
    from tlcore.recipe.config import TrainConfig, check_dense

    data = tmp_path / "data"
    (data / "cats").mkdir(parents=True)
    (data / "cats" / "notes.txt").write_text("not a folder")
    base = dict(data=str(data), backbone="MobileNetV2", weights="none")
    configs = [dict(batch_size=0), dict(lr=20), dict(dropout=1.5), dict(head_epochs=0, fine_tune_epochs=0),
               dict(seed=-1), dict(optimizer="adamax"), dict(weights=str(tmp_path / "missing.weights.h5")),
               dict(backbone="MobileNetV9"), dict(input_size=8), dict(rotation=400),
               dict(unfreeze=[""]), dict(backbone=None, backbone_file=str(tmp_path / "clf.keras"))]
    errors = [_raised(lambda o=o: TrainConfig(**{**base, **o}).check()) for o in configs]
    errors += [_raised(lambda: check_dense([0])), _raised(lambda: check_name("")), _raised(lambda: check_name("a/b")),
               _raised(lambda: get_backbone("ResNet5")), _raised(lambda: check_folder(str(tmp_path / "nowhere"))),
               _raised(lambda: check_folder(str(data / "cats" / "notes.txt"))), _raised(lambda: RunStore(tmp_path / "runs").get("no-such-run"))]
    return errors


def test_bad_inputs_show_in_korean(tmp_path, korean):
    from studio.text import error_words

    errors = _bad_inputs(tmp_path)
    said = {str(exc): error_words(exc) for exc in errors}
    english = {original: text for original, text in said.items() if english_sentences(text)}
    assert english == {}
    assert not any("{option" in text or "은(는)" in text.split("입력값")[0] for text in said.values() if
                   not text.split("은(는)")[0][-1:].isascii()), said  # markers placed, particles fitted


def test_in_english_an_error_reads_as_the_engine_wrote_it(tmp_path):
    from studio.text import error_words, option_word

    for exc in _bad_inputs(tmp_path):
        if getattr(exc, "option", None):
            assert error_words(exc).lower() == exc.phrased(lambda o: str(option_word(o))).lower()
        else:
            assert error_words(exc) == str(exc)


def test_values_inside_a_sentence_are_worded_too(korean):
    from studio import engine_words
    from studio.text import error_words, run_error_words
    from tlcore.core.errors import OptionError

    nested = OptionError("lr", OptionError("lr", "must be a positive number below 10. Received: 20").template
                         + " (in the space's point {'lr': 20})")
    said = error_words(nested)
    assert said.startswith("학습률은 10보다 작은 양수") and "{'lr': 20}" in said and english_sentences(said) == []
    assert engine_words.say("Auto mode did not start: see its log.") == "자동 모드가 시작되지 않았습니다: 로그를 보세요."
    failed = run_error_words({"error": "Run abc has no labels.json."})
    assert failed == "실행 abc에 labels.json이 없습니다."
    assert engine_words.say("An error the engine added later.") == "An error the engine added later."


def test_korean_particles_fit_the_word_before_them():
    from studio.i18n import particles

    assert particles("배치 크기은(는) 학습률은(는) “레이어”을(를) 폴더(으)로 파일(으)로") == "배치 크기는 학습률은 “레이어”를 폴더로 파일로"
    assert particles("run-1은(는) 3이(가)") == "run-1은(는) 3이(가)"  # not Hangul: both forms stay
    assert particles("The cut is fine (or not).") == "The cut is fine (or not)."


def test_every_phrase_of_auto_modes_reason_has_a_korean_template():
    from studio import engine_words, i18n

    tool = _tool()
    found = tool.auto_phrases()
    assert len(found) >= 8  # the scan saw auto mode's phrases at all
    korean = i18n.translations("ko")
    # the scan leaves a phrase's trailing value out ("the default recipe failed: {error}")
    templates = {tool.error_shape(t.message).rstrip("\0"): t.message for t in engine_words.TEMPLATES}
    missing = [f"{p['where']}: {p['shape']!r}" for p in found if p["shape"] not in templates
               or english_sentences(korean.gettext(templates[p["shape"]]))]
    assert missing == []


def test_auto_modes_reason_in_korean(korean):
    from studio import engine_words

    reason = ("point 2 of 6 had the best validation accuracy (0.850) of 6 trials scored; learning rate around 0.001: "
              "the range test's steepest fall (stage 1); 3-fold cross-validation on train+validation (fewer than "
              "200 validation images): point 2 averaged 0.833 over 3 folds; point 5: 0.800; no probe: 95 s of the "
              "budget were gone before it")
    said = engine_words.reason(reason)
    assert said.count("; ") == reason.count("; ") and english_sentences(said) == [], said
    assert "0.850" in said and "0.001" in said and "지점 5: 0.800" in said


def test_auto_modes_result_phrases_in_korean(korean):
    from studio import engine_words
    from tlcore.search import autofinal, autoprobe

    reason = "; ".join([
        "the default recipe (trial 0) had the best validation accuracy (0.905) of 11 trials scored",
        autofinal.ENSEMBLE_CHOSEN.format(n=3, points="8, 3, 2", val=0.929, best=0.905),
        autofinal.NO_TIME_FOR_ENSEMBLE.format(left=3, need=31),
        autoprobe.PROBE_KEPT.format(probe=0.929, best=0.952, n=42, p=1.0),
        "the default recipe failed: Run abc has no labels.json."])
    said = engine_words.reason(reason)
    assert said.count("; ") == reason.count("; ") and english_sentences(said) == [], said
    assert "8, 3, 2" in said and "0.929" in said and "31" in said and "labels.json" in said
    assert "McNemar p = 1.00" in said and "선형 프로브" in said
