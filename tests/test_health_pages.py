"""The pages of issue 14 through AppTest: the Data page's Health tab (audit, fix a label, Undo),
a read-only folder, the Layers page's separability probe, the Evaluate page's cell view."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from apphelp import open_page
from plant import hashes, plant, save_colour_model, write_patterns

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture
def health_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TLCORE_HOME", str(home))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    monkeypatch.delenv("TLCORE_DATA_ROOTS", raising=False)
    (home / "models").mkdir(parents=True)
    model = save_colour_model(home / "models" / "colour.keras", gray_after_colour=False)
    return home, model


def _selection(data, model) -> dict:
    return {"data": str(data), "backbone_file": str(model), "preprocessing": "none", "cut": "flat"}


def test_fix_a_suspected_label_in_the_health_tab_then_undo_restores_every_file(health_home):
    home, model = health_home
    data = write_patterns(home / "datasets" / "colours", counts=(16, 4, 4))
    planted = plant(data, wrong=1, copies=0, noise=0, seed=4)
    before = hashes(data)
    at = open_page("views/4_Data.py", timeout=120, **_selection(data, model))
    at.button(key="audit_button").click().run()
    assert not at.exception, at.exception
    result = at.session_state["_audit"]["result"]
    suspects = [i["file"] for i in result["label_issues"]]
    wrong = planted["wrong"][0]
    assert wrong in suspects[:4]
    issue = next(i for i in result["label_issues"] if i["file"] == wrong)
    at.checkbox(key=f"li_{suspects.index(wrong)}_{wrong}").check().run()
    at.selectbox(key="li_act_class").select(issue["suggested"]).run()
    at.button(key="li_act_move").click().run()
    assert not at.exception, at.exception
    fixed = Path(wrong).parent.parent / issue["suggested"] / Path(wrong).name
    assert fixed.is_file() and not Path(wrong).exists()
    assert hashes(data) != before
    at.button(key="health_undo").click().run()
    assert not at.exception, at.exception
    assert hashes(data) == before
    log = [json.loads(line) for line in (data / ".tlcore" / "changes.jsonl").read_text().splitlines()]
    assert [e["action"] for e in log] == ["move", "undo"]


def test_a_folder_outside_the_home_is_read_only_with_an_import_offer(health_home, tmp_path):
    home, model = health_home
    data = write_patterns(tmp_path / "server" / "colours", counts=(6, 2, 2))
    before = hashes(data)
    at = open_page("views/4_Data.py", timeout=120, **_selection(data, model))
    at.button(key="audit_button").click().run()
    assert not at.exception, at.exception
    assert any("read-only" in i.value for i in at.info)
    assert sum("read-only" in i.value for i in at.info) == 1
    at.button(key="health_import").click().run()
    assert not at.exception, at.exception
    copy = Path(at.session_state["data"])
    assert copy.is_relative_to(home / "datasets") and hashes(copy) == before == hashes(data)


def test_layers_page_shows_where_the_classes_become_separable(health_home, tmp_path):
    home, _ = health_home
    model = save_colour_model(home / "models" / "gray.keras", gray_after_colour=True)
    data = write_patterns(home / "datasets" / "colours", counts=(12, 6, 0))
    at = open_page("views/3_Layers.py", timeout=120, data=str(data), backbone_file=str(model), preprocessing="none")
    at.button(key="probe_button").click().run()
    assert not at.exception, at.exception
    rows = at.session_state["_probe"]["rows"]
    assert [r["cut"] for r in rows][:2] == ["colour", "gray"] and len(rows) <= 12
    assert any("shallowest cut within one point" in c.value and "**colour**" in c.value for c in at.caption)
