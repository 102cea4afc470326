"""`tlcore train --auto`: the budget, the folds, the plan (no TensorFlow), and one real auto run (slow)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datagen import write_split
from tlcore.core.errors import OptionError
from tlcore.search import autoplan

COSTS = autoplan.Costs({48: 0.5, 64: 1.0, 96: 2.0, 128: 4.0}, fixed_s=8.0)
SPACE = {"lr": [0.0003, 0.001, 0.003], "fine_tune_lr": [1e-4, 3e-5, 1e-5], "augment": ["none", "light", "strong"],
         "input_size": [48, 64, 96, 128]}
BASE = {"backbone": "MobileNetV2", "input_size": 96, "head_epochs": 10, "fine_tune_epochs": 5, "seed": 0}


# --- the budget, the folds, the plan --------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("90", 90), ("10m", 600), ("1.5h", 5400), (45, 45), ("120s", 120),
                                           (None, autoplan.DEFAULT_BUDGET)])
def test_budget_reads_seconds_minutes_and_hours(text, seconds):
    assert autoplan.parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["soon", "10 minutes", "-5", "5", "0m"])
def test_a_bad_budget_is_named_with_examples(text):
    with pytest.raises(OptionError) as info:
        autoplan.parse_budget(text)
    assert info.value.option == "budget" and repr(text) in str(info.value)


def test_folds_only_when_validation_is_small_and_more_of_them_for_less_data():
    assert autoplan.fold_count(1000, 150) == 0
    small = [autoplan.fold_count(n, 12) for n in (40, 200, 400)]
    assert all(3 <= k <= 5 for k in small) and small == sorted(small, reverse=True)


def test_folds_are_stratified_disjoint_and_follow_the_seed():
    files = [(f"c{c}_{i}.png", c) for c in range(3) for i in range(10)]
    parts = autoplan.folds(files, 5, seed=1)
    assert sorted(f for p in parts for f in p) == sorted(files)
    assert all({label for _, label in p} == {0, 1, 2} for p in parts)  # every class in every fold
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert autoplan.folds(files, 5, seed=1) == parts and autoplan.folds(files, 5, seed=2) != parts


def test_the_plan_is_a_function_of_seed_budget_and_costs():
    plan = autoplan.make_plan("transfer", BASE, SPACE, COSTS, 900, 0, 400, 100, 0)
    again = autoplan.make_plan("transfer", BASE, SPACE, COSTS, 900, 0, 400, 100, 0)
    assert plan.to_dict() == again.to_dict() and plan.points
    other = autoplan.make_plan("transfer", BASE, SPACE, COSTS, 900, 7, 400, 100, 0)
    assert other.points != plan.points
    # exactly the points the search draws from the same space, trials and seed (tune.run_search)
    from tlcore.search.space import points

    assert plan.points == points(SPACE, len(plan.points), grid=False, seed=0)
    for point in plan.points:
        assert all(point[k] in SPACE[k] for k in SPACE)


def test_a_larger_budget_buys_more_trials_never_fewer_epochs():
    plans = [autoplan.make_plan("transfer", BASE, SPACE, COSTS, b, 0, 400, 100, 0) for b in (120, 300, 900, 3600)]
    sizes = [len(p.points) for p in plans]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    for plan in plans:  # every budget here holds the default run: the epochs stay the given ones
        assert (plan.head_epochs, plan.fine_tune_epochs) == (10, 5)
        assert plan.to_dict()["rungs"][-1] == 15 and plan.to_dict()["trials"] == len(plan.points) + 1


def test_a_budget_holding_the_default_run_several_times_never_shrinks_its_epochs():
    """The natural-photo case that shrank the epochs to 3+1: the default run about 40 s, 10 minutes."""
    costs = autoplan.Costs({160: 10.0}, fixed_s=22.6)
    plan = autoplan.make_plan("transfer", dict(BASE, input_size=160), {"lr": [1e-3, 3e-3], "augment": ["none", "light"]},
                              costs, 600, 0, 126, 42, autoplan.fold_count(168, 42), default_size=160, n_test=42)
    assert 600 / plan.estimate_s["default"] >= 4  # the budget holds the default run several times over
    assert (plan.head_epochs, plan.fine_tune_epochs) == (10, 5) and len(plan.points) >= autoplan.MIN_TRIALS
    assert plan.ensemble >= 2 and plan.estimate_s["ensemble"] > 0
    total = sum(plan.estimate_s.values()) + autoplan.RAY_SECONDS
    assert total <= 600  # trial 0, the search and the ensemble planned inside the budget


def test_fewer_trials_before_fewer_epochs_and_epochs_only_when_one_run_does_not_fit():
    costs = autoplan.Costs({96: 4.0}, fixed_s=8.0)
    space = {"lr": [1e-3, 3e-3], "augment": ["none", "light"]}
    one = autoplan.make_plan("transfer", BASE, space, costs, 30, 0, 400, 100, 0, default_size=96)
    assert one.points == [] and one.head_epochs + one.fine_tune_epochs < 15  # not even the default run fits
    roomier = autoplan.make_plan("transfer", BASE, space, costs, 2 * one.estimate_s["default"] + 60, 0, 400, 100, 0,
                                 default_size=96)
    assert (roomier.head_epochs, roomier.fine_tune_epochs) == (10, 5)


def test_no_room_for_a_search_leaves_the_default_run_alone():
    plan = autoplan.make_plan("transfer", BASE, SPACE, autoplan.Costs({96: 50.0, 48: 50.0, 64: 50.0, 128: 50.0}, 60.0),
                              60, 0, 400, 100, 0)
    assert plan.points == [] and plan.k == 0 and plan.ensemble == 0


def test_k_fold_cross_validation_is_planned_for_a_small_validation_split():
    k = autoplan.fold_count(42, 12)
    plan = autoplan.make_plan("transfer", BASE, SPACE, COSTS, 1800, 0, 34, 8, k)
    assert plan.k == k >= 3 and plan.to_dict()["finalists"] == autoplan.FINALISTS
    assert plan.estimate_s["cross_validation"] > 0


def test_given_options_stay_out_of_the_space():
    space = autoplan.transfer_space({"lr", "input_size", "augment"}, 1e-3, [96, 128], ["block_13_expand"])
    assert set(space) == {"fine_tune_lr", "unfreeze_from"}
    assert autoplan.transfer_space(set(), 1e-3, [96], [], fine_tune_epochs=5)["fine_tune_epochs"] == [5, 0]
    assert autoplan.transfer_space(set(), 1e-3, [96], [])["lr"] == [0.00033, 0.001, 0.003]
    for found in (0.013, 0.03, 0.3):  # a range test's high rate still leaves three rates, none over the cap
        rates = autoplan.transfer_space(set(), found, [96], [])["lr"]
        assert len(rates) == 3 and max(rates) == autoplan.MAX_HEAD_LR, rates
    assert "fine_tune_epochs" not in autoplan.transfer_space({"head_epochs"}, 1e-3, [96], [], fine_tune_epochs=5)
    scratch = autoplan.scratch_space(set(), 1e-3, [48, 64], ["a", "b"])
    assert {"fine_tune_lr", "input_size", "cut"} <= set(scratch) and "lr" not in scratch


def test_fold_datasets_hold_train_and_validation_once_each(tmp_path):
    from tlcore.data.pipeline import scan
    from tlcore.search.autoplan import write_folds

    data = write_split(tmp_path / "data", counts=(6, 3, 2))
    ds = scan(str(data))
    roots = write_folds(ds, 3, 0, tmp_path / "folds")
    def ids(paths):  # the same file (linked, or copied with its bytes) whatever its name
        return sorted((p.parent.name, p.read_bytes()) for p in paths)

    everything = ids(p for split in ("train", "validation") for p in (tmp_path / "data" / split).glob("*/*.png"))
    for root in roots:
        train, val = (ids(Path(root, split).glob("*/*.png")) for split in ("train", "validation"))
        assert not set(train) & set(val)
        assert sorted(train + val) == everything
    assert sorted(v for r in roots for v in ids(Path(r, "validation").glob("*/*.png"))) == everything


# --- the command line ---------------------------------------------------------------------

def test_budget_without_auto_and_auto_with_resume_are_usage_errors(tmp_path, capfd):
    from tlcore.cli.commands import main

    assert main(["train", str(tmp_path), "--budget", "10m", "--json"]) == 2
    assert "--budget goes with --auto" in json.loads(capfd.readouterr().out)["error"]
    assert main(["train", "--auto", "--resume", str(tmp_path), "--json"]) == 2


def test_a_bad_budget_is_answered_before_any_work(tmp_path, capfd):
    from tlcore.cli.commands import main

    data = write_split(tmp_path / "data", counts=(4, 2, 2))
    assert main(["train", str(data), "--auto", "--budget", "soon", "--json"]) == 1
    error = json.loads(capfd.readouterr().out)["error"]
    assert "--budget" in error and "10m" in error


def test_auto_and_a_plain_train_command_line_import_no_ray():
    code = ("import sys; import tlcore.cli.commands as c, tlcore.search.auto, tlcore.search.autoplan, tlcore.api; "
            "c.build_parser(); assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))


@pytest.mark.slow
def test_a_plain_train_runs_without_importing_ray(tmp_path):
    data = write_split(tmp_path / "data", counts=(4, 2, 2))
    code = ("import sys; from tlcore.cli.commands import main; "
            f"code = main(['train', {str(data)!r}, '--backbone', 'MobileNetV2', '--weights', 'none', "
            "'--input-size', '32', '--head-epochs', '0', '--fine-tune-epochs', '1', '--augment', 'none', '--json']); "
            "assert code == 0, code; assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, TLCORE_HOME=str(tmp_path / "home")),
                   stdout=subprocess.DEVNULL)


# --- a real auto run ----------------------------------------------------------------------------

BUDGET = 60


@pytest.mark.slow
def test_auto_keeps_given_options_stays_in_budget_and_reports_its_choice(tmp_path):
    """One real auto run, tiny: trial 0 and the search's trials are real runs, the result trains
    what auto chose (an ensemble of the best points when validation holds it) within the budget."""
    from tlcore.backbones.build import build_backbone
    from tlcore.backbones.latency import machine_key

    data = write_split(tmp_path / "data", counts=(6, 3, 3))
    weights = tmp_path / "mobilenet_v2_32_notop.weights.h5"
    build_backbone("MobileNetV2", 32, weights=None).save_weights(weights)
    home = tmp_path / "home"
    home.mkdir()
    # this machine's costs, as an earlier auto run measured them: the plan needs no measuring
    (home / "auto-costs.json").write_text(json.dumps({machine_key(): {"process_s": 4.0,
                                                                      "ms_per_image": {"MobileNetV2@32": 0.5}}}))
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    given = ["--backbone", "MobileNetV2", "--weights", str(weights), "--input-size", "32", "--batch-size", "8",
             "--head-epochs", "1", "--fine-tune-epochs", "1", "--cut", "block_6_expand_relu", "--lr", "0.003"]
    proc = subprocess.run([sys.executable, "-m", "tlcore", "train", str(data), "--auto", "--budget", f"{BUDGET}s",
                           *given, "--seed", "3", "--json"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    auto = out["auto"]
    assert set(autoplan_keys()) <= set(auto)
    assert auto["budget_s"] == BUDGET and 0 < auto["used_s"] <= 1.1 * BUDGET, auto
    assert out["state"] in ("completed", "stopped") and Path(out["run_dir"]).is_dir()
    config = json.loads(Path(out["run_dir"], "config.json").read_text())
    options = config["options"]
    assert options["input_size"] == 32 and options["batch_size"] == 8 and options["seed"] == 3
    assert options["weights"] == str(weights) and options["backbone"] == "MobileNetV2"
    assert (options["head_epochs"], options["fine_tune_epochs"]) == (1, 1)
    fixed = {"input_size", "batch_size", "weights", "backbone", "seed", "cut", "lr", "head_epochs", "fine_tune_epochs"}
    assert not fixed & set(auto["chosen"])
    assert all(options[k] == v for k, v in auto["chosen"].items())  # the result trained what auto chose
    assert auto["reason"] and auto["trials"][0]["default"] and auto["trials"][0]["options"] == {}
    for trial in auto["trials"]:  # every trial a normal run, named after its search, with the given epochs
        assert {"run_dir", "options", "val_accuracy"} <= set(trial)
        trial_options = json.loads(Path(trial["run_dir"], "config.json").read_text())["options"]
        assert trial_options["name"].startswith(("search:", "auto:")), trial_options["name"]
        assert (trial_options["head_epochs"], trial_options["fine_tune_epochs"]) == (1, 1)
    status = json.loads(Path(out["run_dir"], "status.json").read_text())
    assert status["auto"]["chosen"] == auto["chosen"] and status["auto"]["budget_s"] == BUDGET
    if auto["ensemble"] and auto["ensemble"]["chosen"]:  # the result is the ensemble: its config lists its members
        assert out["run_dir"] == auto["ensemble"]["run_dir"]
        members = config["ensemble"]["members"]
        assert len(members) >= 2 and all(m["options"]["seed"] == 3 for m in members)
    # the result repeats from its config.json (an ensemble's: its best member's options)
    from tlcore.recipe.config import TrainConfig, options_from

    repeated = TrainConfig.from_dict(options_from({}, Path(out["run_dir"], "config.json")))
    assert repeated.to_dict() == TrainConfig.from_dict(options).to_dict()


def autoplan_keys():
    from tlcore.search.auto import AUTO_KEYS

    return AUTO_KEYS


# --- the Train page -----------------------------------------------------------------------------

def test_train_page_auto_hides_the_options_it_chooses_and_shows_its_choice(tmp_path, monkeypatch):
    import apphelp
    from tlcore.core.jsonio import write_json

    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    monkeypatch.delenv("TLCORE_DATA_ROOTS", raising=False)
    data = write_split(tmp_path / "home" / "data", counts=(4, 2, 2))
    folder = tmp_path / "home" / "auto" / "a1"
    folder.mkdir(parents=True)
    write_json(folder / "auto.json", {
        "auto_id": "a1", "state": "completed", "phase": "done", "budget_s": 120.0, "used_s": 118.0,
        "pid": os.getpid(), "chosen": {"lr": 0.003, "augment": "strong"}, "reason": "point 1 of 3 had the best",
        "trials": [{"run_dir": str(tmp_path / "r1"), "options": {"lr": 0.003}, "val_accuracy": 0.75, "fold": None}]})
    at = apphelp.open_page("views/5_Train.py", data=str(data), backbone="MobileNetV2", input_size=32, weights="none")
    assert any(n.label.startswith("Stage 1 epochs") for n in at.number_input)
    at.segmented_control(key="w:train_mode").set_value("Auto").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any(n.label.startswith("Stage 1 epochs") for n in at.number_input)  # auto chooses those
    assert at.slider(key="w:auto_budget").value == 10
    at.session_state["_auto_dir"] = str(folder)
    at.run()
    frames = [df.value for df in at.dataframe]
    assert any("augment" in list(f["option"]) for f in frames if "option" in f.columns)
    assert any(list(f["validation accuracy"]) == [0.75] for f in frames if "validation accuracy" in f.columns)
    assert "point 1 of 3 had the best" in "\n".join(c.value for c in at.caption)


def test_tlcore_stop_on_an_auto_folder_asks_it_to_stop(tmp_path, capfd):
    from tlcore.cli.commands import main
    from tlcore.core.jsonio import write_json

    folder = tmp_path / "auto" / "a1"
    folder.mkdir(parents=True)
    write_json(folder / "auto.json", {"auto_id": "a1", "state": "running", "pid": os.getpid()})
    assert main(["stop", str(folder), "--json"]) == 0
    assert json.loads(capfd.readouterr().out)["stop_requested"] is True and (folder / "stop").exists()


def test_cross_validation_picks_the_best_mean_over_the_folds(tmp_path, monkeypatch):
    """Fold 0 (the search) prefers point 0; the other folds prefer point 1 enough to win on the mean."""
    import time

    from tlcore.core.jsonio import append_jsonl, write_json
    from tlcore.search import auto, tune

    accuracy = {(0, 1): 0.5, (0, 2): 0.5, (1, 1): 0.9, (1, 2): 0.9}

    def fake_trial(options, run_id, runs_dir, queue, stop_file, report=None):
        point, fold = int(run_id.split("-p")[1].split("-f")[0]), int(run_id.rsplit("-f", 1)[1])
        run = Path(runs_dir) / run_id
        run.mkdir(parents=True)
        write_json(run / "config.json", {"options": options})
        write_json(run / "status.json", {"state": "completed"})
        append_jsonl(run / "metrics.jsonl", {"epoch": 1, "val_accuracy": accuracy[point, fold], "val_loss": 0.1})
        return {"state": "completed"}

    monkeypatch.setattr(tune, "run_trial", fake_trial)
    plan = autoplan.AutoPlan("transfer", {"lr": 0.001}, {}, [{"lr": 1}, {"lr": 2}], 1, 1, 3, 2)
    scored = [(-0.8, 0.1, 0, {"options": {"lr": 1}}, 2), (-0.7, 0.1, 1, {"options": {"lr": 2}}, 2)]
    folder = tmp_path / "auto"
    folder.mkdir()
    watcher = auto._Watcher(folder / "stop")
    trials = []
    try:
        ranked, note = auto._cross_validate(scored, plan, ["f0", "f1", "f2"], None, str(tmp_path / "runs"), False,
                                            watcher, {"auto_id": "a", "auto_dir": str(folder)}, trials,
                                            time.time() + 600)
    finally:
        watcher.done.set()
    assert [r[2] for r in ranked] == [1, 0] and "3-fold" in note  # means: point 0 (0.8+0.5+0.5)/3 = 0.6, point 1 0.833
    assert sorted((t["point"], t["fold"]) for t in trials) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    names = [json.loads(Path(t["run_dir"], "config.json").read_text())["options"]["name"] for t in trials]
    assert all(n.startswith("auto:a:") for n in names)


def test_the_python_api_takes_auto_and_budget_the_same_way(tmp_path):
    import tlcore
    from tlcore.core.errors import TLCoreError

    data = write_split(tmp_path / "data", counts=(4, 2, 2))
    with pytest.raises(OptionError, match="auto=True"):
        tlcore.train(data, budget="10m", backbone="MobileNetV2")
    with pytest.raises(OptionError) as info:  # the same check as --budget, before any work
        tlcore.train(data, auto=True, budget="soon", backbone="MobileNetV2")
    assert info.value.option == "budget"
    with pytest.raises(TLCoreError):
        tlcore.train(data, auto=True, background=True)


def test_without_room_for_a_search_the_final_run_keeps_the_epochs_its_share_holds():
    costs = autoplan.Costs({96: 1.0}, fixed_s=20.0)
    plan = autoplan.make_plan("transfer", BASE, {"lr": [0.001, 0.003]}, costs, 100, 0, 400, 100, 0)
    assert plan.points == [] and (plan.head_epochs, plan.fine_tune_epochs) == (10, 5)  # 10+5 fit in 100 s


# --- the procedure with its trainings faked: trial 0, the epochs, the ensemble -----------------

def _fake_run(root: Path, run_id: str, options: dict, accuracy: float) -> Path:
    from tlcore.core.jsonio import append_jsonl, write_json

    run = root / run_id
    run.mkdir(parents=True)
    write_json(run / "config.json", {"options": options})
    write_json(run / "status.json", {"state": "completed", "started_at": "2026-12-05T00:00:00Z",
                                     "ended_at": "2026-12-05T00:00:10Z"})
    for epoch in range(1, int(options["head_epochs"]) + int(options["fine_tune_epochs"]) + 1):
        append_jsonl(run / "metrics.jsonl", {"epoch": epoch, "val_loss": 0.1} if accuracy is None else
                     {"epoch": epoch, "val_accuracy": accuracy * epoch / 15, "val_loss": 0.1})
    return run


@pytest.fixture
def faked(tmp_path, monkeypatch):
    """auto_train with every training faked: trials score `scores(options)`; the ensemble scores `ensemble_val`."""
    from tlcore.search import auto, autoplan as plan_module, autoprobe, tune
    from tlcore.training import ensemble

    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    state = {"scores": lambda options: 0.5, "ensemble_val": 0.9, "ensembles": [], "trials": []}
    monkeypatch.setattr(auto, "_costs", lambda config, sizes: plan_module.Costs({int(s): 1.0 for s in sizes}, 2.0))
    monkeypatch.setattr(auto, "_probe_cut", lambda config, notes: "block_13_expand_relu")
    monkeypatch.setattr(auto, "_find_lr", lambda config, stage, notes: 0.003)
    monkeypatch.setattr(auto, "_unfreeze_choices", lambda config, n: ["block_10_expand", "block_12_expand"])

    def run_trial(options, run_id, runs_dir, queue, stop_file, report=None, stage1_dir=None):
        state["trials"].append(dict(options))
        _fake_run(Path(runs_dir), run_id, options, state["scores"](options))
        return {"state": "completed"}

    def run_search(base, space, trials, seeds, scheduler, runs_dir, search_id):
        from tlcore.core.runs import RunStore

        root, out = RunStore(runs_dir).root, []
        for i, point in enumerate(plan_module.draw_points(space, trials, base["seed"])):
            options = dict(base, **point, name=f"search:{search_id}:{i}:0")
            state["trials"].append(options)
            run = _fake_run(root, f"{search_id}-p{i}-s0", options, state["scores"](options))
            out.append({"run_dir": str(run), "options": point, "state": "completed", "point": i, "epochs": 15})
        return {"search_dir": str(tmp_path / "home" / "searches" / search_id), "trials": out}

    def build_ensemble(run_dirs, runs_dir=None, name=None, announce=None, **kw):
        state["ensembles"].append(list(run_dirs))
        run = Path(run_dirs[0]).parent / f"ensemble-{len(state['ensembles'])}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"options": json.loads(Path(run_dirs[0], "config.json").read_text())
                                                     ["options"], "ensemble": {"members": list(run_dirs)}}))
        (run / "status.json").write_text(json.dumps({"state": "completed", "val_accuracy": state["ensemble_val"]}))
        return {"run_dir": str(run), "state": "completed", "epochs": 0, "val_accuracy": state["ensemble_val"],
                "test_accuracy": None, "seconds": 1.0}

    monkeypatch.setattr(tune, "run_trial", run_trial)
    monkeypatch.setattr(tune, "run_search", run_search)
    monkeypatch.setattr(ensemble, "build_ensemble", build_ensemble)
    # which validation images a run gets right (None: not known, the search's result stays)
    state["correct"] = lambda run_dir: None
    monkeypatch.setattr(autoprobe, "validation_correct", lambda run_dir: state["correct"](run_dir))
    # 100 validation images: no folds, the validation split alone chooses
    state["data"] = write_split(tmp_path / "data", counts=(4, 100, 2))
    weights = tmp_path / "mobilenet_v2_96_notop.weights.h5"
    weights.write_bytes(b"")  # never read: the trainings are faked
    state["given"] = {"data": str(state["data"]), "backbone": "MobileNetV2", "weights": str(weights), "input_size": 96,
                      "seed": 0}
    return state


def test_trial_0_is_the_default_recipe_and_every_trial_trains_its_full_epochs(faked):
    from tlcore.search.auto import auto_train

    out = auto_train(faked["given"], budget=600)
    auto = out["auto"]
    first = auto["trials"][0]
    assert first["default"] and first["point"] == 0 and first["options"] == {}
    default = faked["trials"][0]  # the given options and the defaults, none of the measured choices
    assert default["lr"] == 1e-3 and default["cut"] is None and default["unfreeze_from"] is None
    assert default["name"].startswith("auto:") and default["input_size"] == 96
    probe = faked["trials"][1]  # the linear probe: trial 0's options, its head fitted in one step, no stage 2
    assert probe["head_fit"] == "logistic" and probe["fine_tune_epochs"] == 0 and probe["name"].endswith(":probe")
    assert {k: v for k, v in probe.items() if k not in ("head_fit", "fine_tune_epochs", "name")} == \
        {k: v for k, v in default.items() if k not in ("head_fit", "fine_tune_epochs", "name")}
    assert [t["point"] for t in auto["trials"][:2]] == [0, -1] and auto["trials"][1]["probe"]
    pixels = faked["trials"][2]  # the pixel model: no backbone, no stage 2
    assert pixels["head_fit"] == "pixels" and pixels["fine_tune_epochs"] == 0 and pixels["name"].endswith(":pixels")
    assert [t["point"] for t in auto["trials"][:3]] == [0, -1, -2] and auto["trials"][2]["pixels"]
    searched = faked["trials"][3:]
    assert searched and all(t["cut"] == "block_13_expand_relu" and t["head_fit"] == "epochs" for t in searched)
    assert (default["head_epochs"], default["fine_tune_epochs"]) == (10, 5)
    # the plan's epochs, never fewer; stage 2 itself is a choice (5 epochs, or the head alone)
    assert all(t["head_epochs"] == 10 and t["fine_tune_epochs"] in (5, 0) for t in searched)
    result = json.loads(Path(out["run_dir"], "config.json").read_text())["options"]
    best = max(auto["trials"], key=lambda t: t["val_accuracy"])
    trained = json.loads(Path(best["run_dir"], "config.json").read_text())["options"]
    assert (result["head_epochs"], result["fine_tune_epochs"]) == (trained["head_epochs"], trained["fine_tune_epochs"])
    assert auto["plan"]["trials"] == len(auto["trials"]) and auto["budget_s"] == 600


def test_the_ensemble_of_the_best_different_points_is_the_result_when_validation_holds_it(faked):
    from tlcore.search.auto import auto_train

    faked["scores"] = lambda o: {"none": 0.8, "light": 0.9, "strong": 0.7}[o["augment"]] - 1e-4 * (o["lr"] or 0)
    out = auto_train(faked["given"], budget=600)
    auto = out["auto"]
    assert len(faked["ensembles"]) == 1
    members = faked["ensembles"][0]
    assert 2 <= len(members) <= 3 and len(set(members)) == len(members)
    points = [m["point"] for m in auto["ensemble"]["members"]]
    assert len(set(points)) == len(points)
    vals = [m["val_accuracy"] for m in auto["ensemble"]["members"]]
    assert vals == sorted(vals, reverse=True) and vals[0] == max(t["val_accuracy"] for t in auto["trials"])
    assert out["run_dir"] == auto["ensemble"]["run_dir"] and auto["ensemble"]["chosen"]
    assert auto["reason"].count("ensemble of") == 1
    assert all(m["options"]["seed"] == 0 and m["options"]["input_size"] == 96 for m in auto["ensemble"]["members"])
    status = json.loads(Path(out["run_dir"], "status.json").read_text())
    assert status["auto"]["chosen"] == auto["chosen"]


def test_a_search_that_finds_nothing_better_keeps_the_default_run(faked):
    from tlcore.search.auto import auto_train

    faked["scores"] = lambda o: 0.9 if str(o.get("name", "")).endswith(":default") else 0.4
    out = auto_train(faked["given"], budget=600)
    auto = out["auto"]
    assert out["run_dir"] == auto["trials"][0]["run_dir"]  # the default run itself, not trained again
    assert auto["ensemble"] is None and not faked["ensembles"]  # no point validation cannot tell from it
    assert auto["reason"].startswith("the default recipe (trial 0)")
    assert out["val_accuracy"] == pytest.approx(0.9)


def test_ensemble_members_are_points_validation_cannot_tell_from_the_best():
    from tlcore.search.autofinal import members_of

    def entry(point, acc, size=96, state="completed"):
        return (-acc, 0.1, point, {"run_dir": f"r{point}", "state": state, "full": {"input_size": size, "lr": point}}, 5)

    scored = [entry(0, 0.90), entry(1, 0.88), entry(2, 0.86, size=128), entry(3, 0.85, state="stopped"),
              entry(4, 0.30), entry(5, 0.84)]
    assert [m[2] for m in members_of(scored, 3, n_val=48)] == [0, 1, 5]  # 0.30 lies outside 0.90's interval
    assert [m[2] for m in members_of(scored, 3)] == [0, 1, 4]  # without a count: any completed point at the size
    assert members_of([entry(7, 0.5), entry(8, 0.5, size=128)], 3, 48)[0][2] == 7


def test_an_ensemble_that_validation_scores_lower_leaves_the_best_single_run(faked):
    from tlcore.search.auto import auto_train

    faked["scores"] = lambda o: 0.9
    faked["ensemble_val"] = 0.5
    out = auto_train(faked["given"], budget=600)
    auto = out["auto"]
    assert len(faked["ensembles"]) == 1 and not auto["ensemble"]["chosen"]
    assert out["run_dir"] == auto["trials"][0]["run_dir"]  # all tie: trial 0, the default, comes first
    assert "a single run: point 0" in auto["reason"]


def _correct(right: int, n: int = 100, offset: int = 0):
    import numpy as np

    out = np.zeros(n, bool)
    out[offset:offset + right] = True
    return out


def test_the_linear_probe_stays_the_result_unless_the_search_is_significantly_better(faked):
    from tlcore.search.auto import auto_train

    faked["scores"] = lambda o: 0.94 if o.get("augment") == "light" and o.get("head_fit") == "epochs" else 0.9
    faked["ensemble_val"] = 0.5  # the best single run is the search's result
    # the result: 4 images right that the probe gets wrong, 2 the other way (p = 0.69)
    faked["correct"] = lambda run_dir: _correct(90) if run_dir.endswith("-probe") else _correct(92, offset=2)
    out = auto_train(faked["given"], budget=600)
    auto = out["auto"]
    probe = next(t for t in auto["trials"] if t.get("probe"))
    assert out["run_dir"] == probe["run_dir"]
    assert auto["probe"]["result_only"] == 4 and auto["probe"]["probe_only"] == 2 and auto["probe"]["p_value"] > 0.5
    assert "the linear probe" in auto["reason"] and "not significantly better" in auto["reason"]
    assert auto["chosen"]["head_fit"] == "logistic" and auto["chosen"]["fine_tune_epochs"] == 0
    result = json.loads(Path(out["run_dir"], "config.json").read_text())["options"]
    assert all(result[k] == v for k, v in auto["chosen"].items())


def test_a_search_significantly_better_than_the_probe_stays_the_result(faked):
    from tlcore.search.auto import auto_train

    faked["scores"] = lambda o: 0.99 if o.get("augment") == "light" and o.get("head_fit") == "epochs" else 0.8
    faked["ensemble_val"] = 0.5
    # 12 images right only by the result, none only by the probe: p < 0.001
    faked["correct"] = lambda run_dir: _correct(80) if run_dir.endswith("-probe") else _correct(92)
    out = auto_train(faked["given"], budget=600)
    auto = out["auto"]
    assert not out["run_dir"].endswith("-probe") and "significantly better than the linear probe" in auto["reason"]
    assert auto["probe"]["result_only"] == 12 and auto["probe"]["p_value"] < 0.001
    assert auto["chosen"].get("head_fit", "epochs") == "epochs"


def test_no_reference_where_the_user_fixed_what_it_cannot_keep():
    from tlcore.search import autoprobe

    full0 = {"head_epochs": 10, "fine_tune_epochs": 5, "dense": [], "name": "auto:x:default"}

    def fits(fixed, kind="transfer", **changes):
        return [c["head_fit"] for c in autoprobe.candidates(dict(full0, **changes), fixed, kind)]

    assert autoprobe.candidates(full0, set(), "transfer")[0]["fine_tune_epochs"] == 0
    assert autoprobe.candidates(full0, {"fine_tune_epochs"}, "transfer")[0]["fine_tune_epochs"] == 5  # LP-FT, as given
    assert fits(set()) == ["logistic", "pixels"]
    assert fits({"fine_tune_epochs"}) == ["logistic"]  # the pixel model has no stage 2 to keep
    assert fits({"dense"}, dense=[64]) == ["pixels"] and fits({"head_fit"}) == []
    assert fits(set(), "scratch", head_epochs=0) == ["pixels"]
    assert autoprobe.candidates(dict(full0, head_epochs=0), set(), "scratch")[0]["head_epochs"] == 1


def test_the_reference_is_the_better_of_probe_and_pixel_model():
    from tlcore.search import autoprobe

    probe = {"probe": True, "val_accuracy": 0.9}
    notes = []
    assert autoprobe.reference([probe, {"pixels": True, "val_accuracy": 0.9}], notes) is probe and not notes
    pixels = {"pixels": True, "val_accuracy": 0.95}
    assert autoprobe.reference([probe, pixels], notes) is pixels and "the pixel model" in notes[0]
    assert autoprobe.reference([pixels], []) is pixels and autoprobe.reference([], []) is None


def test_the_plan_reserves_the_probe():
    without = autoplan.make_plan("transfer", BASE, SPACE, COSTS, 300, 0, 400, 100, 0)
    with_probe = autoplan.make_plan("transfer", BASE, SPACE, COSTS, 300, 0, 400, 100, 0, references=2)
    assert with_probe.estimate_s["probe"] > 0 and without.estimate_s["probe"] == 0
    assert len(with_probe.points) <= len(without.points)


def test_with_no_trial_scored_in_time_the_reference_is_the_result(faked):
    from tlcore.search.auto import auto_train

    faked["scores"] = lambda o: 0.8 if o.get("head_fit") in ("logistic", "pixels") else None
    out = auto_train(faked["given"], budget=600)
    auto = out["auto"]
    assert out["run_dir"] == next(t for t in auto["trials"] if t.get("probe"))["run_dir"]  # a tie: the probe
    assert auto["reason"].startswith("no trial of the search scored in time: the linear probe")
    assert auto["chosen"]["head_fit"] == "logistic"
