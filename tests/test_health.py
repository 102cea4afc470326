"""Know your data: the audit finds planted problems, edits undo byte for byte, the probe finds
the depth where classes separate. Backbones are tiny Keras models the tests build and save."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from plant import hashes, plant, save_colour_model, write_patterns
from tlcore.data.pipeline import scan
from tlcore.data.edits import DatasetEditor
from tlcore.core.errors import TLCoreError

# ------------------------------------------------------------------------------ edits


def test_edits_move_exclude_and_undo_restore_every_file_byte_for_byte(tlhome):
    root = write_patterns(tlhome / "datasets" / "colours", counts=(4, 2, 2))
    before = hashes(root)
    ed = DatasetEditor(root)
    a = root / "train" / "red" / "red_0.png"
    b = root / "train" / "red" / "red_1.png"
    c = root / "validation" / "green" / "green_0.png"
    ed.move([a], to_class="green")
    assert (root / "train" / "green" / "red_0.png").is_file() and not a.exists()
    ed.move([b], to_split="test")
    ed.exclude([c, root / "test" / "blue" / "blue_1.png"])
    ds = scan(root)
    assert ds.counts()["train"] == {"blue": 4, "green": 5, "red": 2}
    assert ds.counts()["test"]["red"] == 3 and ds.counts()["validation"]["green"] == 1
    assert all(".tlcore" not in p for s in ds.files.values() for p, _ in s)  # the scan ignores it
    assert len(ed.trash_files()) == 2 and hashes(root) != before
    log = [json.loads(l) for l in (root / ".tlcore" / "changes.jsonl").read_text().splitlines()]
    assert [e["action"] for e in log] == ["move", "move", "exclude"]
    assert log[0]["moves"] == [{"from": "train/red/red_0.png", "to": "train/green/red_0.png"}]
    for _ in range(3):
        assert ed.undo() is not None
    assert ed.undo() is None
    assert hashes(root) == before


def test_a_move_onto_a_taken_name_keeps_both_images(tlhome):
    root = write_patterns(tlhome / "datasets" / "same", counts=(2, 1, 0))
    (root / "train" / "green" / "red_0.png").write_bytes((root / "train" / "red" / "red_1.png").read_bytes())
    before = hashes(root)
    ed = DatasetEditor(root)
    entry = ed.move([root / "train" / "red" / "red_0.png"], to_class="green")
    assert entry["moves"][0]["to"] == "train/green/red_0-1.png"
    assert len(hashes(root)) == len(before)
    ed.undo()
    assert hashes(root) == before


def test_trash_is_kept_until_emptied_and_then_only_earlier_moves_undo(tlhome):
    root = write_patterns(tlhome / "datasets" / "t", counts=(3, 1, 0))
    ed = DatasetEditor(root)
    ed.move([root / "train" / "red" / "red_1.png"], to_class="blue")
    ed.exclude([root / "train" / "red" / "red_0.png"])
    assert [p.name for p in ed.trash_files()] == ["red_0.png"]
    assert ed.empty_trash() == 1 and ed.trash_files() == []
    assert [e["action"] for e in ed.undoable()] == ["move"]
    ed.undo()
    assert (root / "train" / "red" / "red_1.png").is_file() and not (root / "train" / "red" / "red_0.png").exists()
    assert ed.undo() is None


def test_folders_outside_the_datasets_folder_are_read_only(tlhome, tmp_path):
    root = write_patterns(tmp_path / "server" / "data", counts=(2, 1, 0))
    with pytest.raises(TLCoreError, match="read-only.*[Ii]mport a copy"):
        DatasetEditor(root)


def test_flat_layout_moves_class_but_not_split(tlhome):
    root = tlhome / "datasets" / "flat"
    root.parent.mkdir(parents=True, exist_ok=True)
    write_patterns(tlhome / "tmp", counts=(3, 0, 0))
    (tlhome / "tmp" / "train").rename(root)
    ed = DatasetEditor(root)
    with pytest.raises(TLCoreError, match="split"):
        ed.move([root / "red" / "red_0.png"], to_split="test")
    with pytest.raises(TLCoreError, match="class name"):
        ed.move([root / "red" / "red_0.png"], to_class="../x")
    ed.move([root / "red" / "red_0.png"], to_class="blue")
    assert (root / "blue" / "red_0.png").is_file()


# ------------------------------------------------------------------------------ backbones


@pytest.mark.slow
def test_probe_ranks_the_cut_that_keeps_colour_above_the_one_that_lost_it(tmp_path, tlhome):
    from tlcore.recipe.config import TrainConfig
    from tlcore.evaluation.probe import probe, suggest

    root = write_patterns(tmp_path / "d", counts=(20, 10, 0))
    model = save_colour_model(tmp_path / "m.keras", gray_after_colour=True)
    cfg = TrainConfig.from_dict(dict(data=str(root), backbone_file=str(model), preprocessing="none"))
    rows = probe(cfg, cuts=["colour", "gray", "flat"])
    acc = {r["cut"]: r["val_accuracy"] for r in rows}
    assert [r["cut"] for r in rows] == ["colour", "gray", "flat"]
    assert acc["colour"] >= 0.9 and acc["gray"] < 0.6 and acc["flat"] < 0.6
    assert {r["feature_dim"] for r in rows} == {3, 1, 16}
    assert suggest(rows)["cut"] == "colour"


def test_default_cuts_are_block_ends_at_most_twelve_and_suggest_the_shallowest_good_one():
    from tlcore.backbones.layers import LayerInfo
    from tlcore.evaluation.probe import default_cuts, suggest

    table = [LayerInfo(i, f"l{i}", "Conv2D", [], 0, True, i % 2 == 1 or i == 99, f"b{i // 4}")
             for i in range(100)]
    cuts = default_cuts(table)
    assert len(cuts) == 12 and cuts[-1] == 99 and cuts == sorted(cuts)
    assert all(table[i].cut_point for i in cuts)
    rows = [{"cut": "a", "index": 3, "val_accuracy": 0.80}, {"cut": "b", "index": 7, "val_accuracy": 0.905},
            {"cut": "c", "index": 11, "val_accuracy": 0.91}]
    assert suggest(rows)["cut"] == "b"


@pytest.mark.slow
def test_audit_finds_planted_label_errors_copies_across_splits_and_noise(tmp_path, tlhome):
    from tlcore.evaluation.audit import audit
    from tlcore.recipe.config import TrainConfig

    root = write_patterns(tmp_path / "d", counts=(24, 6, 6))
    planted = plant(root, wrong=4, copies=4, noise=2, seed=1)
    model = save_colour_model(tmp_path / "m.keras", gray_after_colour=False)
    cfg = TrainConfig.from_dict(dict(data=str(root), backbone_file=str(model), preprocessing="none",
                                     cut="flat"))
    out = audit(cfg)
    top = [i["file"] for i in out["label_issues"][:8]]
    assert sum(w in top for w in planted["wrong"]) >= 3
    moved = {i["file"]: i for i in out["label_issues"]}
    for w in planted["wrong"]:
        if w in moved:
            assert moved[w]["suggested"] != moved[w]["given"]
    pairs = {frozenset((d["a"], d["b"])): d for d in out["near_duplicates"]}
    for original, copy in planted["copies"]:
        assert frozenset((original, copy)) in pairs, copy
        assert pairs[frozenset((original, copy))]["cross_split"] is True
    assert len(out["near_duplicates"]) <= 2 * len(planted["copies"])
    flagged = [o["file"] for o in out["outliers"][:5]]
    assert all(n in flagged for n in planted["noise"])
    points = out["embedding"]["points"]
    assert out["embedding"]["method"] in ("pca", "umap")
    assert len(points) == sum(1 for p in root.rglob("*") if p.is_file())
    assert all(Path(p["file"]).is_absolute() for p in points)
    assert all({"a", "b", "score"} <= set(r) for r in out["class_overlap"])


@pytest.mark.slow
def test_cli_audit_and_probe_print_one_json_document_and_clear_errors(tmp_path):
    from test_cli import tl

    root = write_patterns(tmp_path / "d", counts=(10, 4, 4))
    planted = plant(root, wrong=0, copies=2, noise=0, seed=2)
    model = save_colour_model(tmp_path / "m.keras", gray_after_colour=True)
    common = ["--backbone-file", model, "--preprocessing", "none", "--json"]
    proc, out = tl("audit", root, "--cut", "flat", *common, home=tmp_path / "h")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert set(out) >= {"embedding", "label_issues", "near_duplicates", "outliers", "class_overlap"}
    assert {tuple(sorted((d["a"], d["b"]))) for d in out["near_duplicates"] if d["cross_split"]} >= \
        {tuple(sorted(pair)) for pair in planted["copies"]}
    proc, rows = tl("probe", root, "--cuts", "colour", "gray", *common, home=tmp_path / "h")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["cut"] for r in rows] == ["colour", "gray"] and rows[0]["val_accuracy"] > rows[1]["val_accuracy"]
    assert set(rows[0]) == {"cut", "index", "val_accuracy", "feature_dim", "seconds"}
    from tlcore.recipe.config import TrainConfig
    from tlcore.evaluation.probe import probe

    with pytest.raises(TLCoreError, match="nope"):
        probe(TrainConfig.from_dict(dict(data=str(root), backbone_file=str(model), preprocessing="none")),
              cuts=["nope"])
    flat = tmp_path / "flat"
    for c in ("red", "green"):
        (flat / c).mkdir(parents=True)
        for f in sorted((root / "train" / c).iterdir())[:3]:
            (flat / c / f.name).write_bytes(f.read_bytes())
    with pytest.raises(TLCoreError, match="no validation images"):
        probe(TrainConfig.from_dict(dict(data=str(flat), backbone_file=str(model), val_split=0.0,
                                         test_split=0.0)))


def test_sklearn_and_cleanlab_are_imported_only_by_the_audit_and_probe_when_they_run():
    import subprocess
    import sys

    code = ("import sys, tlcore.cli.commands, tlcore.training.train, tlcore.evaluation.audit, tlcore.evaluation.probe, tlcore.data.edits, tlcore.evaluation.evaluate, "
            "studio.health, studio.charts; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'cleanlab', 'umap'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
