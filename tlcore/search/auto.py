"""Auto mode (`tlcore train DATA --auto [--budget B]`, `tlcore.train(..., auto=True)`): the best
model the data allows inside a time budget, measured, not guessed.

Options the user gave are fixed; everything else is chosen: the cut by the linear probe
(`evaluation.probe`), the head's learning rate by the range test (`training.lrfind`), then a
successive-halving search (Ray Tune's ASHA through `tune.run_search`, one trial at a time) over
the unfreeze point, learning rates, augmentation and input size (or, without pretrained weights,
over small networks trained from scratch: scratch-small's family). Trial 0 is always the default
recipe with the given options, scored like every trial, so a search that finds nothing better
keeps it. The references follow (`autoprobe`: the linear probe, the pixel model): the result
replaces the better of them only when the validation images say it is significantly better. Every trial runs the plan's epochs (the given or default ones; only a budget that cannot
hold one run shrinks them), so the result never trains fewer epochs than it was chosen by. The
plan (points, trials, folds) is fixed at the start by `autoplan.make_plan` from the seed and
costs measured on this machine. Selection reads validation accuracy only; with fewer than 100
validation images and a budget that holds it, the search runs on one fold of a k-fold split of
train+validation and the best points are cross-validated on the other folds.

The result (`autofinal`): without folds, the trials trained on the dataset as given with the
seed, so they are the final models themselves; with folds, the finalists train again on the
dataset as given. The best 2-3 different points at the best one's input size are averaged into
one run (`training.ensemble.build_ensemble`), which is the result when validation says so;
otherwise the best single run is. Its config.json (an ensemble's: its first member's options and
its members) repeats it. Every trial is a normal run named after its search.

Time: a watcher stops the search's trials when the search's share of the budget is spent (the
ensemble's and, with folds, the final runs' estimates stay reserved) and asks a final run to
stop at the budget's end, so the whole command ends within the budget plus the saving and scoring.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from ..core import home
from ..core.errors import OptionError, TLCoreError
from ..core.jsonio import read_json, write_json
from ..core.runs import Run, RunStore
from . import autofinal, autoplan, autoprobe
from .automeasure import _costs, _family, _find_lr, _probe_cut, _sizes, _unfreeze_choices
from .record import new_search_id

AUTO_KEYS = ("budget_s", "used_s", "trials", "chosen", "reason")
FINAL_STOP = 0.95  # the final run is asked to stop here: its saving, scoring and baselines follow
STOP_SECONDS = 25.0  # from the search's stop to its end: the cut trial saves its model, Ray shuts down (measured 8-24 s)
ENSEMBLE_GRACE = 0.04  # the ensemble may start while its estimate ends within 4% past the budget (the limit: 10%)


def autos_dir() -> Path:
    return home.home() / "auto"


def process_started() -> float:
    """When this process started (wall clock), from /proc; now where /proc is not there."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


# --- the procedure -----------------------------------------------------------------------

class _Watcher:
    """Stops what runs when its time is up or a stop is asked (the auto folder's `stop` file)."""

    def __init__(self, stop_file: Path):
        self.stop_file = stop_file
        self.targets: list[tuple[float, Path]] = []  # (deadline, file to touch)
        self.cut: set[str] = set()
        self.done = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def at(self, deadline: float, target: Path) -> None:
        self.targets.append((deadline, Path(target)))

    def stopped(self) -> bool:
        return self.stop_file.exists()

    def _loop(self) -> None:
        while not self.done.wait(0.5):
            now, asked = time.time(), self.stop_file.exists()
            for deadline, target in list(self.targets):
                if (asked or now >= deadline) and not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.touch()
                    self.cut.add(str(target))


def _score(run_dir: str) -> tuple[float | None, float | None, int]:
    """(best validation accuracy, its loss, its 1-based epoch) of a run."""
    metrics = [m for m in Run(run_dir).metrics() if m.get("val_accuracy") is not None]
    if not metrics:
        return None, None, 0
    i = max(range(len(metrics)), key=lambda j: (metrics[j]["val_accuracy"], -(metrics[j].get("val_loss") or 0), -j))
    return float(metrics[i]["val_accuracy"]), metrics[i].get("val_loss"), int(metrics[i].get("epoch") or i + 1)


def auto_train(given: dict, budget=None, config_file: str | None = None, runs_dir: str | None = None,
               run_id: str | None = None, queue: bool = False, announce=None,
               started: float | None = None) -> dict:
    """Choose and train inside `budget` (see the module doc); returns the train JSON with `auto`.

    Args:
        given: the options the user gave (fixed); TrainConfig field names.
        budget: seconds, or text with m/h (`autoplan.parse_budget`); default 10 minutes.
        started: the wall-clock time the budget counts from (the command's start).

    Raises:
        OptionError: a bad budget or option; TLCoreError: data that cannot be used.
    """
    from ..data.pipeline import scan
    from ..recipe.config import TrainConfig, options_from

    t0 = time.time() if started is None else float(started)
    budget_s = autoplan.parse_budget(budget)
    options = options_from(dict(given), config_file)
    fixed = set(given) | (set(options) if config_file else set())
    fixed.discard("name")
    kind, options = _family(options, fixed)
    config = TrainConfig.from_dict(options)
    config.check()
    auto_id = new_search_id()
    folder = autos_dir() / auto_id
    folder.mkdir(parents=True, exist_ok=True)
    record = {"auto_id": auto_id, "auto_dir": str(folder), "state": "running", "pid": os.getpid(),
              "budget_s": budget_s, "kind": kind, "fixed": sorted(fixed), "phase": "measuring"}
    write_json(folder / "auto.json", record)
    watcher = _Watcher(folder / "stop")
    previous = None
    if threading.current_thread() is threading.main_thread():  # a stop before the search or the run
        import signal

        def on_signal(signum, frame):
            raise KeyboardInterrupt(signal.Signals(signum).name)
        previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        result = _auto(config, kind, fixed, budget_s, t0, folder, record, watcher, runs_dir, run_id, queue,
                       announce, scan)
    except BaseException as exc:
        record.update(state="stopped" if isinstance(exc, KeyboardInterrupt) else "failed",
                      error=str(exc) or type(exc).__name__, used_s=round(time.time() - t0, 1))
        write_json(folder / "auto.json", record)
        raise
    finally:
        watcher.done.set()
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)
    return result


def _auto(config, kind, fixed, budget_s, t0, folder, record, watcher, runs_dir, run_id, queue, announce, scan):
    from ..recipe.config import TrainConfig

    notes: list[str] = []
    ds = scan(config.data, config.val_split, config.test_split, config.seed)
    n_train, n_val = len(ds.files.get("train", [])), len(ds.files.get("validation", []))
    n_test = len(ds.files.get("test", []))
    if n_train < 2:
        raise TLCoreError("Auto mode needs training images of at least 2 classes; see `tlcore scan`.")
    default = config  # trial 0: the default recipe with the options given
    sizes = _sizes(kind, config, fixed)
    default_size = int(config.resolved().input_size or 0) if config.backbone else 0
    costs = _costs(config, sorted(set(sizes) | ({default_size} if default_size else set())))
    default_size = default_size or max(costs.ms_per_image)
    k = autoplan.fold_count(n_train + n_val, n_val)
    n_all = n_train + n_val
    fold_train, fold_val = (n_all - n_all // k, n_all // k) if k else (n_train, n_val)
    if len(sizes) > 1:  # sizes whose full training would take over a quarter of the budget are left out
        affordable = [s for s in sizes if costs.trial_s(s, fold_train, fold_val, config.head_epochs,
                                                        config.fine_tune_epochs, True) <= budget_s / 4]
        sizes = affordable or sizes[:1]
    if "input_size" not in fixed and config.backbone:  # the probe, the range test and the search's base
        config = config.replace(input_size=sizes[0])   # use the cheapest size
    def late(share: float, what: str) -> bool:  # the measurements took their share: go on without it
        if time.time() - t0 <= share * budget_s:
            return False
        notes.append(f"no {what}: {time.time() - t0:.0f} s of the budget were gone before it")
        return True

    if kind == "transfer" and "cut" not in fixed and n_val and not late(0.25, "probe"):
        cut = _probe_cut(config, notes)
        if cut:
            config = config.replace(cut=cut)
    lr = config.lr
    if "lr" not in fixed and not late(0.35, "learning-rate range test"):
        try:
            lr = _find_lr(config, 1 if kind == "transfer" else 2, notes)
        except TLCoreError as exc:
            notes.append(f"learning rate {lr:g} (the default: the range test failed: {exc})")
    if kind == "transfer":
        unfreeze = _unfreeze_choices(config, len(ds.classes)) if "unfreeze_from" not in fixed else []
        if unfreeze:
            config = config.replace(unfreeze_from=unfreeze[0])
        space = autoplan.transfer_space(fixed, lr, sizes, unfreeze, augments=not ({"flip", "rotation", "zoom"} & fixed),
                                        fine_tune_epochs=config.fine_tune_epochs)
    else:
        cuts = list(autoplan.SCRATCH_CUTS) if config.backbone == "MobileNetV2" else []
        space = autoplan.scratch_space(fixed, lr, sizes, cuts)
    base = config.replace(lr=lr).to_dict()
    if kind == "scratch" and "fine_tune_lr" not in fixed:  # from scratch, every epoch runs at stage 2's rate
        base["fine_tune_lr"] = lr
    plan = autoplan.make_plan(kind, base, space, costs, budget_s, config.seed, fold_train, fold_val, k,
                              augment_default=config.augment != "none", default_size=default_size, n_test=n_test,
                              references=len(autoprobe.candidates(config.to_dict(), fixed, kind)))
    k = plan.k  # the plan may hold fewer folds (or none) than the data asked for
    if not plan.points:
        notes.append("no room in the budget for a search: the default recipe alone")
    if plan.head_epochs + plan.fine_tune_epochs < default.head_epochs + default.fine_tune_epochs:
        notes.append(f"{plan.head_epochs + plan.fine_tune_epochs} of {default.head_epochs + default.fine_tune_epochs} "
                     "epochs: the budget holds no more")
    record.update(phase="searching", plan=plan.to_dict(), costs={"ms_per_image": costs.ms_per_image,
                                                                 "fixed_s": costs.fixed_s})
    write_json(folder / "auto.json", record)
    est = plan.estimate_s
    end_s = t0 + budget_s  # the final runs (with folds) and the ensemble are reserved at the end
    search_end = end_s - est["final"] * (1 + autoplan.RESERVE_MARGIN) - est["ensemble"] - est["cross_validation"] \
        - (STOP_SECONDS if est["ensemble"] else 0.0)  # a stopped search's trial saves, Ray shuts down
    from .record import searches_dir
    from .tune import run_search, run_trial

    store = RunStore(runs_dir)
    fold_dirs = autoplan.write_folds(ds, k, config.seed, folder / "folds") if k else []
    data = fold_dirs[0] if k else config.data
    search_id = f"{record['auto_id']}-search"
    stage1_dir = searches_dir() / search_id / "stage1"
    stage1_dir.mkdir(parents=True, exist_ok=True)
    trials, scored, partial = [], [], []

    def add(path, options, full, point, state):
        cut = Run(path).stop_requested()  # the budget's cut, not ASHA's early stop
        acc, loss, epoch = _score(path)
        trial = {"run_dir": str(path), "options": options, "val_accuracy": acc, "state": state, "point": point,
                 "fold": 0 if k else None, "cut_by_budget": cut, "full": full, "default": point == 0}
        trials.append(trial)
        if acc is not None:
            (partial if cut else scored).append((-acc, loss if loss is not None else 0.0, point, trial, epoch))

    # trial 0: the default recipe (the given options, the plan's epochs), scored like every trial
    full0 = dict(default.to_dict(), head_epochs=plan.head_epochs, fine_tune_epochs=plan.fine_tune_epochs,
                 input_size=default_size if default.backbone else default.input_size, data=data,
                 name=f"auto:{record['auto_id']}:default")
    if k:
        full0.update(val_split=0.0, test_split=0.0)
    stop0 = folder / "default-stop"
    watcher.at(search_end if plan.points else t0 + FINAL_STOP * budget_s, stop0)
    id0 = f"{search_id}-default"
    try:
        status0 = run_trial(full0, id0, str(store.root), queue, str(stop0), stage1_dir=str(stage1_dir))
        add(store.root / id0, {}, full0, 0, status0.get("state"))
    except TLCoreError as exc:
        notes.append(f"the default recipe failed: {exc}")
        if (store.root / id0).exists():
            add(store.root / id0, {}, full0, 0, "failed")
    probe = None
    if not watcher.stopped():  # the references the search must beat: the linear probe, the pixel model
        watcher.at(search_end if plan.points else t0 + FINAL_STOP * budget_s, folder / "probe-stop")
        references = autoprobe.train_references(full0, fixed, kind, config.data, config.val_split, config.test_split,
                                                search_id, runs_dir, queue, str(folder / "probe-stop"), notes)
        trials.extend(references)
        probe = autoprobe.reference(references, notes)
    if watcher.stopped():
        raise KeyboardInterrupt("stopped")
    if plan.points and time.time() < search_end:
        watcher.at(search_end, searches_dir() / search_id / "stop")
        base_options = dict(plan.base, data=data, name=None)
        if k:
            base_options.update(val_split=0.0, test_split=0.0)
        summary = run_search(base_options, plan.space, trials=len(plan.points), seeds=1, scheduler="asha",
                             runs_dir=runs_dir, search_id=search_id)
        if watcher.stopped():
            raise KeyboardInterrupt("stopped")
        record["search_dir"] = summary["search_dir"]
        for t in summary["trials"]:
            add(t["run_dir"], t["options"], dict(base_options, **t["options"]), t["point"] + 1, t["state"])
    elif plan.points:
        notes.append(f"no search: {time.time() - t0:.0f} s of the budget were gone before it")
    if not scored and partial:  # every scored trial was cut: their epochs so far are all there is
        scored = partial
        notes.append("every scored trial was cut by the budget: chosen on the epochs they finished")
    scored.sort(key=lambda s: (s[3]["state"] != "completed", *s[:3]))  # full-length trials first
    if not scored and probe is None:
        raise TLCoreError("Auto mode scored no trial: " + ("; ".join(notes) or "no validation accuracy was recorded"))
    if not scored:  # nothing of the search scored in time: the reference is the result
        why = (autoprobe.ONLY_PIXELS if probe.get("pixels") else autoprobe.ONLY_PROBE).format(val=probe["val_accuracy"])
        result, ens_record = autofinal.result_of_run(probe["run_dir"]), None
        final_config = TrainConfig.from_dict(probe["full"])
    else:
        result, ens_record, final_config, why = _choose(scored, plan, k, fold_dirs, config, runs_dir, run_id, queue,
                                                        announce, watcher, record, trials, notes, probe, t0, budget_s,
                                                        end_s, est, n_val, folder)
    searched = set(plan.space) | {"cut", "lr", "head_epochs", "fine_tune_epochs", "unfreeze_from"}
    chosen = {key: v for key, v in final_config.to_dict().items() if key not in fixed and
              key not in ("data", "name", "seed", "val_split", "test_split") and
              (key in searched or v != TrainConfig().to_dict().get(key))}
    reason = "; ".join([why, *notes])
    auto = {"budget_s": budget_s, "used_s": round(time.time() - t0, 1), "trials": [_public(t) for t in trials],
            "chosen": chosen, "reason": reason, "folds": plan.k, "kind": kind, "plan": plan.to_dict(),
            "auto_dir": str(folder), "ensemble": ens_record, "probe": record.get("probe")}
    Run(result["run_dir"]).write_status(auto=auto)
    record.update(state="completed", phase="done", used_s=auto["used_s"], run_dir=result["run_dir"], chosen=chosen,
                  reason=reason, ensemble=ens_record)
    write_json(folder / "auto.json", record)
    result["auto"] = auto
    auto["used_s"] = round(time.time() - t0, 1)
    return result


def _choose(scored, plan, k, fold_dirs, config, runs_dir, run_id, queue, announce, watcher, record, trials, notes,
            probe, t0, budget_s, end_s, est, n_val, folder):
    """The search's best (cross-validated with folds), its result (`_finish`), then the gate
    against the reference (`autoprobe.gate`): (result, ensemble record, final config, why)."""
    from ..recipe.config import TrainConfig

    best = scored[0]
    if k and len(scored) > 1:
        ranked, cv_note = _cross_validate(scored, plan, fold_dirs, config, runs_dir, queue, watcher, record, trials,
                                          end_s - est["final"] * (1 + autoplan.RESERVE_MARGIN) - est["ensemble"])
        notes.append(cv_note)
        best = ranked[0]
    why = ((f"the default recipe (trial 0) had the best validation accuracy ({-best[0]:.3f}) of {len(scored)} "
            "trials scored") if best[2] == 0 else
           (f"point {best[2]} of {len(plan.points)} had the best validation accuracy ({-best[0]:.3f}) of "
            f"{len(scored)} trials scored"))
    final_config = TrainConfig.from_dict(dict(best[3]["full"], data=config.data, val_split=config.val_split,
                                              test_split=config.test_split))
    record.update(phase="final", reason="; ".join([why, *notes]), trials=[_public(t) for t in trials])
    write_json(folder / "auto.json", record)
    if watcher.stopped():
        raise KeyboardInterrupt("stopped")
    result, ens_record = _finish(ranked if k and len(scored) > 1 else scored, best, plan, config, final_config,
                                 record, watcher, runs_dir, run_id, queue, announce, notes, t0, budget_s, n_val)
    if result.get("state") == "stopped" and result.get("epochs") and not watcher.stopped():
        autofinal.scored_when_stopped(result)  # stopped by the budget, not by the user: scored as `evaluate` does
        notes.append(autofinal.RESULT_STOPPED)
    if probe is not None and result.get("run_dir") != probe["run_dir"] and not watcher.stopped():
        keep, phrase, record["probe"] = autoprobe.gate(result, probe)
        notes.extend([phrase] if phrase else [])
        if not keep:
            result, final_config = autofinal.result_of_run(probe["run_dir"]), TrainConfig.from_dict(probe["full"])
            if ens_record:
                ens_record["chosen"] = False
    return result, ens_record, final_config, why


def _public(trial: dict) -> dict:
    return {key: trial.get(key) for key in ("run_dir", "options", "val_accuracy", "fold", "cut_by_budget", "point",
                                            "default", "probe", "pixels")}


def _finish(ranked, best, plan, config, final_config, record, watcher, runs_dir, run_id, queue, announce, notes,
            t0, budget_s, n_val):
    """The result: without folds, the trials are the final models (trained on the dataset as
    given, with the seed): the best one, or the ensemble of the best points; with folds, the
    finalists trained again on the dataset as given, then the same choice."""
    from ..recipe.config import TrainConfig
    from ..training.train import train

    name = config.name or f"auto:{record['auto_id']}"
    deadline = t0 + budget_s * (1 + ENSEMBLE_GRACE)
    if plan.k:
        finals = []
        for i, entry in enumerate([e for e in ranked if e[3].get("full")][:max(plan.ensemble and autoplan.FINALISTS, 1)]):
            if watcher.stopped() or (i and time.time() > deadline - plan.estimate_s["final"] / autoplan.FINALISTS):
                break
            options = dict(entry[3]["full"], data=config.data, val_split=config.val_split,
                           test_split=config.test_split, name=name)

            def on_run(path):
                watcher.at(t0 + FINAL_STOP * budget_s, Path(path) / "stop")
                record.setdefault("final_runs", []).append(str(path))
                write_json(Path(record["auto_dir"]) / "auto.json", record)
                if announce:
                    announce(path)

            got = train(TrainConfig.from_dict(options), runs_dir=runs_dir,
                        run_id=(f"{run_id}-{i}" if i else run_id) if run_id else None, queue=queue, announce=on_run)
            acc = _score(got["run_dir"])[0]
            finals.append(((-acc if acc is not None else 1.0), 0.0, entry[2],
                           {"run_dir": got["run_dir"], "state": got.get("state"), "full": options,
                            "cut_by_budget": Run(got["run_dir"]).stop_requested()}, 0, got))
        if watcher.stopped():
            raise KeyboardInterrupt("stopped")
        members = autofinal.members_of(finals, autoplan.FINALISTS, n_val)
        single = finals[0][5]
        if len(members) < 2 or members[0] is not finals[0]:
            return single, None
        built, phrase, ens = autofinal.choose(members, -members[0][0], n_val, runs_dir, f"{name}:ensemble",
                                              deadline, plan.estimate_s["ensemble"], announce)
        notes.append(phrase)
        return (built or single), ens
    members = autofinal.members_of(ranked, plan.ensemble, n_val)
    if len(members) < 2 or members[0] is not best:
        return autofinal.result_of_run(best[3]["run_dir"]), None
    built, phrase, ens = autofinal.choose(members, -best[0], n_val, runs_dir, f"{name}:ensemble", deadline,
                                          plan.estimate_s["ensemble"], announce)
    notes.append(phrase)
    return (built or autofinal.result_of_run(best[3]["run_dir"])), ens


def _cross_validate(scored, plan, fold_dirs, config, runs_dir, queue, watcher, record, trials, end):
    """The best FINALISTS points trained on the other folds; ranked by their mean validation
    accuracy over the folds every finalist completed (ties: the search's order). Returns the
    finalists ranked, and the reason's note."""
    from .tune import run_trial

    store = RunStore(runs_dir)
    stop_file = Path(record["auto_dir"]) / "cv-stop"
    watcher.at(end, stop_file)
    finalists = scored[:plan.finalists]
    per_point = {s[2]: [-s[0]] for s in finalists}
    for s in finalists:
        for j in range(1, len(fold_dirs)):
            if stop_file.exists():
                break
            full = s[3].get("full") or dict(plan.base, **s[3]["options"])
            options = dict(full, data=fold_dirs[j], val_split=0.0, test_split=0.0,
                           name=f"auto:{record['auto_id']}:{s[2]}:fold{j}")
            run_id = f"{record['auto_id']}-p{s[2]}-f{j}"
            try:
                run_trial(options, run_id, str(store.root), queue, str(stop_file))
            except TLCoreError:
                continue
            path = str(store.root / run_id)
            acc, _, _ = _score(path)
            cut = Run(path).stop_requested()
            trials.append({"run_dir": path, "options": s[3]["options"], "val_accuracy": acc, "state":
                           Run(path).state(), "point": s[2], "fold": j, "cut_by_budget": cut,
                           "default": s[2] == 0})
            if acc is not None and not cut:
                per_point[s[2]].append(acc)
    if watcher.stopped():
        raise KeyboardInterrupt("stopped")
    folds_done = min(len(v) for v in per_point.values())
    means = {p: sum(v[:folds_done]) / folds_done for p, v in per_point.items()}
    ranked = sorted(finalists, key=lambda s: (-means[s[2]], finalists.index(s)))
    winner = ranked[0]
    note = (f"{len(fold_dirs)}-fold cross-validation on train+validation (fewer than "
            f"{autoplan.SMALL_VALIDATION} validation images): point {winner[2]} averaged "
            f"{means[winner[2]]:.3f} over {folds_done} folds" +
            "".join(f"; point {p}: {m:.3f}" for p, m in means.items() if p != winner[2]))
    return ranked, note


def start_auto(options: dict, budget, runs_dir: str | None = None) -> str:
    """Start `tlcore train --auto` in its own process (as the app starts trainings); returns the
    auto folder (TLCORE_HOME/auto/ID) once its auto.json exists, whose `run_dir` appears when the
    final training starts and whose `stop` file stops it all."""
    from ..training.jobs import _spawn, spawn_error

    budget_s = autoplan.parse_budget(budget)
    before = set(p.name for p in autos_dir().glob("*")) if autos_dir().exists() else set()
    pending = home.home() / "pending"
    pending.mkdir(parents=True, exist_ok=True)
    tag = new_search_id()
    cfg = pending / f"auto-{tag}.json"
    write_json(cfg, {"options": dict(options)})
    args = ["train", "--auto", "--budget", str(budget_s), "--config", str(cfg), "--json"]
    if runs_dir:
        args += ["--runs-dir", str(runs_dir)]
    proc = _spawn(args, f"auto-{tag}")
    deadline = time.time() + 120
    while time.time() < deadline:
        new = [p for p in autos_dir().glob("*") if p.name not in before and (p / "auto.json").exists()] \
            if autos_dir().exists() else []
        mine = [p for p in new if (read_json(p / "auto.json") or {}).get("pid") == proc.pid]
        if mine:
            return str(mine[0])
        if proc.poll() is not None:
            raise TLCoreError("Auto mode did not start: " + spawn_error(f"auto-{tag}"))
        time.sleep(0.2)
    raise TLCoreError("Auto mode did not start within two minutes; see its log under TLCORE_HOME/logs.")


def load_auto(folder: str) -> dict:
    """An auto folder's record (auto.json), with `state` interrupted when its process is gone."""
    from ..core.runs import process_alive

    record = read_json(Path(folder) / "auto.json") or {}
    if record.get("state") == "running" and not process_alive(record.get("pid")):
        record["state"] = "interrupted"
    return record


def stop_auto(folder: str) -> None:
    """Ask an auto mode to stop: its search's trials and its final run stop within a batch."""
    if not (Path(folder) / "auto.json").exists():
        raise OptionError("auto", f"no auto mode's folder at {folder}")
    (Path(folder) / "stop").touch()
