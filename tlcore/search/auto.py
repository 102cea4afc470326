"""Auto mode (`tlcore train DATA --auto [--budget B]`, `tlcore.train(..., auto=True)`): the best
model the data allows inside a time budget, measured, not guessed.

Options the user gave are fixed; everything else is chosen: the cut by the linear probe
(`evaluation.probe`), the head's learning rate by the range test (`training.lrfind`), then a
successive-halving search (Ray Tune's ASHA through `tune.run_search`, one trial at a time) over
the unfreeze point, learning rates, augmentation and input size (or, without pretrained weights,
over small networks trained from scratch: scratch-small's family). The plan (points, trials,
epochs, folds) is fixed at the start by `autoplan.make_plan` from the seed and costs measured on
this machine. Selection reads validation accuracy only; with fewer than 100 validation images,
the search runs on one fold of a k-fold split of train+validation and the best points are
cross-validated on the other folds. The chosen options then train one normal run on the dataset
as given, whose config.json repeats it. Every trial is a normal run named after its search.

Time: a watcher stops the search's trials when the search's share of the budget is spent (the
final training's estimate stays reserved) and asks the final run to stop at the budget's end,
so the whole command ends within the budget plus the final run's saving and scoring.

Not here yet: choosing an ensemble of the best runs (issue 22's `--ensemble K` is another branch's);
its hook is `scored` in `_auto`, the scored trials best first.
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
from . import autoplan
from .automeasure import _costs, _family, _find_lr, _probe_cut, _sizes, _unfreeze_choices
from .record import new_search_id

AUTO_KEYS = ("budget_s", "used_s", "trials", "chosen", "reason")
FINAL_STOP = 0.95  # the final run is asked to stop here: its saving, scoring and baselines follow


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


# --- folds -----------------------------------------------------------------------------

def _write_folds(ds, k: int, seed: int, folder: Path) -> list[str]:
    """k folder datasets (train/ and validation/ per class) of train+validation, stratified;
    files are hard links (copies where linking fails)."""
    import shutil

    files = list(ds.files.get("train", [])) + list(ds.files.get("validation", []))
    parts = autoplan.folds(files, k, seed)
    out = []
    for j in range(k):
        root = folder / f"fold{j}"
        for split, members in (("validation", parts[j]),
                               ("train", [f for i, p in enumerate(parts) if i != j for f in p])):
            for n, (path, label) in enumerate(members):
                target = root / split / ds.classes[label] / f"{n:05d}_{Path(path).name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    continue
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copyfile(path, target)
        out.append(str(root))
    return out


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
    if n_train < 2:
        raise TLCoreError("Auto mode needs training images of at least 2 classes; see `tlcore scan`.")
    sizes = _sizes(kind, config, fixed)
    costs = _costs(config, sizes)
    k = autoplan.fold_count(n_train + n_val, n_val)
    n_all = n_train + n_val
    fold_train, fold_val = (n_all - n_all // k, n_all // k) if k else (n_train, n_val)
    if len(sizes) > 1:  # sizes whose full training would take over a quarter of the budget are left out
        affordable = [s for s in sizes if costs.trial_s(s, fold_train, fold_val, config.head_epochs,
                                                        config.fine_tune_epochs, True) <= budget_s / 4]
        sizes = affordable or sizes[:1]
    if "input_size" not in fixed and config.backbone:  # the probe, the range test and a plan without
        config = config.replace(input_size=sizes[0])   # a search use the cheapest size
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
        space = autoplan.transfer_space(fixed, lr, sizes, unfreeze,
                                        augments=not ({"flip", "rotation", "zoom"} & fixed))
    else:
        cuts = list(autoplan.SCRATCH_CUTS) if config.backbone == "MobileNetV2" else []
        space = autoplan.scratch_space(fixed, lr, sizes, cuts)
    base = config.replace(lr=lr).to_dict()
    if kind == "scratch" and "fine_tune_lr" not in fixed:  # from scratch, every epoch runs at stage 2's rate
        base["fine_tune_lr"] = lr
    plan = autoplan.make_plan(kind, base, space, costs, budget_s, config.seed, fold_train, fold_val, k,
                              augment_default=config.augment != "none")
    k = plan.k  # the plan may hold fewer folds (or none) than the data asked for
    record.update(phase="searching", plan=plan.to_dict(), costs={"ms_per_image": costs.ms_per_image,
                                                                 "fixed_s": costs.fixed_s})
    write_json(folder / "auto.json", record)
    final_s = plan.estimate_s["final"] * (1 + autoplan.RESERVE_MARGIN)
    search_end = t0 + budget_s - final_s - plan.estimate_s["cross_validation"]
    trials, chosen_point, why = [], {}, ""
    if plan.points and not watcher.stopped():
        fold_dirs = _write_folds(ds, k, config.seed, folder / "folds") if k else []
        data = fold_dirs[0] if k else config.data
        search_id = f"{record['auto_id']}-search"
        from .record import searches_dir
        from .tune import run_search

        watcher.at(search_end, searches_dir() / search_id / "stop")
        base_options = dict(plan.base, data=data, name=None)
        if k:
            base_options.update(val_split=0.0, test_split=0.0)
        summary = run_search(base_options, plan.space, trials=len(plan.points), seeds=1, scheduler="asha",
                             runs_dir=runs_dir, search_id=search_id)
        if watcher.stopped():
            raise KeyboardInterrupt("stopped")
        record["search_dir"] = summary["search_dir"]
        scored, partial = [], []
        for t in summary["trials"]:
            cut = Run(t["run_dir"]).stop_requested()  # the budget's cut, not ASHA's early stop
            acc, loss, epoch = _score(t["run_dir"])
            trials.append({"run_dir": t["run_dir"], "options": t["options"], "val_accuracy": acc,
                           "state": t["state"], "point": t["point"], "fold": 0 if k else None,
                           "cut_by_budget": cut, "epochs": t.get("epochs")})
            if acc is not None:
                (partial if cut else scored).append((-acc, loss if loss is not None else 0.0, t["point"], t, epoch))
        if not scored and partial:  # every scored trial was cut: their epochs so far are all there is
            scored = partial
            notes.append("every scored trial was cut by the budget: chosen on the epochs they finished")
        scored.sort(key=lambda s: s[:3])
        if scored:
            best = scored[0]
            if k:
                best, cv_note = _cross_validate(scored, plan, fold_dirs, config, runs_dir, queue, watcher,
                                                record, trials, t0 + budget_s - final_s)
                notes.append(cv_note)
            chosen_point = dict(best[3]["options"])
            why = (f"point {best[2]} of {len(plan.points)} had the best validation accuracy "
                   f"({-best[0]:.3f}) of {len(scored)} trials scored")
    final = dict(plan.base, **chosen_point)
    final.update(data=config.data, val_split=config.val_split, test_split=config.test_split,
                 name=config.name or f"auto:{record['auto_id']}")
    left = t0 + FINAL_STOP * budget_s - time.time()  # load made the steps before slower: fewer epochs
    epochs = int(final["head_epochs"]) + int(final["fine_tune_epochs"])
    if left < plan.estimate_s["final"] and epochs > 1 and "head_epochs" not in fixed and "fine_tune_epochs" not in fixed:
        share = max(left, 0.0) / max(plan.estimate_s["final"], 1e-9)
        final["head_epochs"] = int(final["head_epochs"] * share)
        final["fine_tune_epochs"] = max(int(final["fine_tune_epochs"] * share), 0 if final["head_epochs"] else 1)
        notes.append(f"{final['head_epochs'] + final['fine_tune_epochs']} of {epochs} epochs in the final run: "
                     f"{max(left, 0):.0f} s of the budget were left for it")
    final_config = TrainConfig.from_dict(final)
    searched = set(plan.space) | {"cut", "lr", "head_epochs", "fine_tune_epochs"}
    chosen = {k: v for k, v in final_config.to_dict().items() if k not in fixed and
              k not in ("data", "name", "seed", "val_split", "test_split") and
              (k in searched or v != TrainConfig().to_dict().get(k))}
    reason = "; ".join([why or ("no room in the budget for a search: the measured choices alone"
                                if not plan.points else "no trial was scored: the measured choices alone"),
                        *notes])
    record.update(phase="final", chosen=chosen, reason=reason, trials=trials)
    write_json(folder / "auto.json", record)
    if watcher.stopped():
        raise KeyboardInterrupt("stopped")
    from ..training.train import train

    def on_run(path):
        watcher.at(t0 + FINAL_STOP * budget_s, Path(path) / "stop")
        record["run_dir"] = str(path)
        write_json(folder / "auto.json", record)
        if announce:
            announce(path)

    result = train(final_config, runs_dir=runs_dir, run_id=run_id, queue=queue, announce=on_run)
    if result.get("state") == "stopped" and result.get("epochs") and not watcher.stopped():
        # stopped by the budget, not by the user: scored as `tlcore evaluate` does (no baselines)
        from ..evaluation.evaluate import evaluate_run

        ev = evaluate_run(result["run_dir"])
        if ev.get("split") == "test":
            result.update(test_accuracy=ev.get("accuracy"), test_accuracy_interval=ev.get("accuracy_interval"),
                          test_count=ev.get("count"))
        notes.append("the final run was stopped by the budget and scored on its best epoch so far")
        reason = "; ".join([reason, notes[-1]])
    auto = {"budget_s": budget_s, "used_s": round(time.time() - t0, 1),
            "trials": [{k: t[k] for k in ("run_dir", "options", "val_accuracy", "fold", "cut_by_budget")}
                       for t in trials],
            "chosen": chosen, "reason": reason, "folds": plan.k, "kind": kind, "plan": plan.to_dict(),
            "auto_dir": str(folder)}
    Run(result["run_dir"]).write_status(auto=auto)
    record.update(state="completed", phase="done", used_s=auto["used_s"], run_dir=result["run_dir"])
    write_json(folder / "auto.json", record)
    result["auto"] = auto
    auto["used_s"] = round(time.time() - t0, 1)
    return result


def _cross_validate(scored, plan, fold_dirs, config, runs_dir, queue, watcher, record, trials, end):
    """The best FINALISTS points trained on the other folds; the best mean validation accuracy
    over the folds every finalist completed wins (ties: the search's order)."""
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
            options = dict(plan.base, **s[3]["options"], data=fold_dirs[j], val_split=0.0, test_split=0.0,
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
                           Run(path).state(), "point": s[2], "fold": j, "cut_by_budget": cut})
            if acc is not None and not cut:
                per_point[s[2]].append(acc)
    if watcher.stopped():
        raise KeyboardInterrupt("stopped")
    folds_done = min(len(v) for v in per_point.values())
    means = {p: sum(v[:folds_done]) / folds_done for p, v in per_point.items()}
    winner = min(finalists, key=lambda s: (-means[s[2]], finalists.index(s)))
    note = (f"{len(fold_dirs)}-fold cross-validation on train+validation (fewer than "
            f"{autoplan.SMALL_VALIDATION} validation images): point {winner[2]} averaged "
            f"{means[winner[2]]:.3f} over {folds_done} folds" +
            "".join(f"; point {p}: {m:.3f}" for p, m in means.items() if p != winner[2]))
    return winner, note


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
