"""Auto mode's plan, in plain Python (no TensorFlow, no Ray): the budget, the folds, the space of
choices, the cost model and the trial plan that `auto.auto_train` follows.

The plan is a pure function of the seed, the options the user gave, the dataset's size, the
budget and the costs measured on this machine (`costs`: ms per image of the backbone at each
candidate size, cached per machine like `tlcore backbones --measure`, and the start-up of a
training process, measured once per machine and cached too). So the same seed on the same
machine gives the same plan even under load; load only makes the budget cut trials at the
end of the plan (docs/RECIPES.md says what is guaranteed).
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from ..core.errors import OptionError

DEFAULT_BUDGET = 600.0  # seconds: `--budget 10m`
MIN_BUDGET = 30.0
SMALL_VALIDATION = 100  # fewer validation images than this: k-fold cross-validation chooses
FINALISTS = 2  # points of the search cross-validated on the other folds
ENSEMBLE_MAX = 3  # the best points (at the chosen input size) averaged into auto's result
RESERVE_MARGIN = 0.10  # the final training's share of the budget is its estimate plus this much
RAY_SECONDS = 12.0  # Ray's start and shutdown around the search (measured here: 6-12 s)
TRANSFER_SIZES = (96, 128, 160, 224)
SCRATCH_SIZES = (48, 64, 96)
SCRATCH_CUTS = ("block_6_expand_relu", "block_10_expand_relu")  # MobileNetV2's, as scratch-small
MAX_TRIALS = 24
FEATURE_COPIES = 5  # recipe.features.AUGMENTED_COPIES: stage 1's cached augmented copies
STAGE2_PASSES = 2.0  # a stage-2 image costs about two forward passes (backward through the unfrozen part)
MAX_HEAD_LR = 0.01  # the head's rates the search tries stay at or under this
MIN_TRIALS = 2


def parse_budget(value) -> float:
    """Seconds from `value`: a number of seconds, or text with an s, m or h suffix ("90", "10m", "1.5h").

    Raises:
        OptionError: (budget) not a duration, or under MIN_BUDGET seconds.
    """
    if value is None:
        return DEFAULT_BUDGET
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(value).lower())
        if not match:
            raise OptionError("budget", "must be seconds, or a number with m (minutes) or h (hours), e.g. 600, "
                                        f"10m, 1.5h. Received: {value!r}")
        seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if not math.isfinite(seconds) or seconds < MIN_BUDGET:
        raise OptionError("budget", f"must be at least {MIN_BUDGET:g} seconds. Received: {value!r}")
    return seconds


def fold_count(n_images: int, n_validation: int) -> int:
    """k of the cross-validation that chooses (0: the validation split chooses alone): 3 to 5 folds
    when the validation split holds fewer than SMALL_VALIDATION images, more folds for fewer images
    (each fold's validation then still holds about a fifth to a third of them)."""
    if n_validation >= SMALL_VALIDATION or n_images < 6:
        return 0
    return 5 if n_images < 150 else 4 if n_images < 300 else 3


def folds(files: list[tuple[str, int]], k: int, seed: int) -> list[list[tuple[str, int]]]:
    """`files` (path, label) in k stratified folds: each class shuffled with `seed`, dealt in turn."""
    rng = random.Random(seed)
    out: list[list[tuple[str, int]]] = [[] for _ in range(k)]
    start = 0
    for label in sorted({label for _, label in files}):
        mine = sorted(f for f in files if f[1] == label)
        rng.shuffle(mine)
        for i, item in enumerate(mine):
            out[(start + i) % k].append(item)
        start += len(mine)  # the next class starts where this one left off: folds stay even
    return out


def write_folds(ds, k: int, seed: int, folder) -> list[str]:
    """k folder datasets (train/ and validation/ per class) of train+validation, stratified;
    files are hard links (copies where linking fails). `folder` is a Path."""
    import os
    import shutil
    from pathlib import Path

    files = list(ds.files.get("train", [])) + list(ds.files.get("validation", []))
    parts = folds(files, k, seed)
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


def quantize(seconds: float) -> float:
    """A cost rounded up to the next power of 2^(1/4): small differences of load between two
    measurements do not change the plan."""
    if seconds <= 0:
        return 0.0
    return float(2 ** (math.ceil(4 * math.log2(seconds)) / 4))


@dataclass(frozen=True)
class Costs:
    """What the plan knows of this machine: ms per image of the backbone's forward pass at each
    input size, and seconds of a training process's fixed part (start, build, evaluation).

    A trial's time, as a training spends it (checked against the natural photos' default run,
    docs/RECIPES.md): the fixed part; stage 1 on the feature cache (the features of
    `FEATURE_COPIES` augmented copies of the training images, or of one without augmentation, then
    epochs of the head alone, nearly free); stage 2 through the backbone (forward and backward
    through the unfrozen part: about twice a forward pass); scoring validation and test."""
    ms_per_image: dict
    fixed_s: float

    def epoch_s(self, size: int, n_train: int, n_val: int, stage: int, augment: bool) -> float:
        ms = self.ms_per_image[int(size)]
        if stage == 1:  # the feature cache: the head alone on stored features
            return 0.0
        return (STAGE2_PASSES * n_train + n_val) * ms / 1000.0

    def start_s(self, size: int, n_train: int, n_val: int, head: int, augment: bool) -> float:
        """The part before the first epoch and after the last: the process, the features, the scoring."""
        ms = self.ms_per_image[int(size)]
        copies = FEATURE_COPIES if augment else 1
        if not head:
            copies = 0
        elif augment and head < 2 * FEATURE_COPIES:  # too few epochs to pay for the copies: end to end
            copies = head
        return self.fixed_s + (copies * n_train + 3 * n_val) * ms / 1000.0

    def trial_s(self, size: int, n_train: int, n_val: int, head: int, fine: int, augment: bool) -> float:
        return quantize(self.start_s(size, n_train, n_val, head, augment)
                        + fine * self.epoch_s(size, n_train, n_val, 2, augment))


@dataclass
class AutoPlan:
    """What auto mode will do, fixed at the start (`make_plan`): trial 0 (the default recipe with
    the given options), then the search's points, all at the same epochs."""
    kind: str  # transfer or scratch
    base: dict  # the options every search trial shares (the given ones among them)
    space: dict  # option -> choices the search draws from
    points: list  # the search's trials, in order (trial 0, the default recipe, comes before them)
    head_epochs: int
    fine_tune_epochs: int
    k: int  # folds (0: validation alone)
    finalists: int
    estimate_s: dict = field(default_factory=dict)  # default, search, cross_validation, final, ensemble
    ensemble: int = ENSEMBLE_MAX  # members of the result's ensemble (at most; 0: a single run)
    references: int = 0  # how many references (linear probe, pixel model) train after trial 0 (`autoprobe`)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "space": self.space, "points": self.points,
                "trials": len(self.points) + 1 + self.references, "trial0": "the default recipe",
                "references": self.references,
                "epochs_per_trial": self.head_epochs + self.fine_tune_epochs,
                "rungs": rungs(self.head_epochs + self.fine_tune_epochs), "folds": self.k,
                "finalists": self.finalists if self.k else 0, "ensemble": self.ensemble,
                "estimate_s": self.estimate_s}


def rungs(epochs: int) -> list[int]:
    """The epochs at which successive halving (ASHA, grace 1, factor 2) compares trials."""
    out, r = [], 1
    while r < epochs:
        out.append(r)
        r *= 2
    return out + [epochs]


def transfer_space(given: set, lr: float, sizes: list[int], unfreeze: list[str], augments: bool = True,
                   fine_tune_epochs: int = 0) -> dict:
    """The choices of a transfer search, around the measured head rate `lr`; given options stay out.
    Stage 2 itself is a choice (its `fine_tune_epochs`, or none: the head alone on the frozen
    backbone, which the features' logistic-regression baseline says is often as good on small data)."""
    space = {}
    if fine_tune_epochs and not {"fine_tune_epochs", "head_epochs"} & given:
        space["fine_tune_epochs"] = [int(fine_tune_epochs), 0]
    if "lr" not in given:
        top = min(lr * 3, MAX_HEAD_LR)  # three rates a factor 3 apart, the highest at most MAX_HEAD_LR
        space["lr"] = sorted({_round(min(top / 9, lr / 3)), _round(min(top / 3, lr)), _round(top)})
    if "fine_tune_lr" not in given:  # fine-tuning a pretrained backbone past 1e-4 undoes it (measured)
        space["fine_tune_lr"] = [_round(min(lr, 1e-3) / d) for d in (10, 30, 100)]
    if "unfreeze_from" not in given and unfreeze:
        space["unfreeze_from"] = list(unfreeze)
    if "augment" not in given and augments:
        space["augment"] = ["none", "light", "strong"]
    if "input_size" not in given and len(sizes) > 1:
        space["input_size"] = list(sizes)
    return space


def scratch_space(given: set, lr: float, sizes: list[int], cuts: list[str]) -> dict:
    """The choices of a from-scratch search (small networks: scratch-small's family)."""
    space = {}
    if "lr" not in given and "fine_tune_lr" not in given:  # from scratch, stage 2's rate is the one
        space["fine_tune_lr"] = [_round(lr / 3), _round(lr), _round(min(lr * 3, 0.05))]
    if "input_size" not in given and len(sizes) > 1:
        space["input_size"] = list(sizes)
    if "cut" not in given and len(cuts) > 1:
        space["cut"] = list(cuts)
    if "augment" not in given and "flip" not in given:
        space["flip"] = ["both", "horizontal", "none"]
    return space


def _round(x: float) -> float:
    return float(f"{x:.2g}")


def draw_points(space: dict, n: int, seed: int) -> list[dict]:
    """The n points of `space` that the search runs: `space.points` with the same seed, exactly
    the draw `tune.run_search` makes from the same space, trials and seed."""
    from .space import points

    return points(space, n, grid=False, seed=seed) if space else []


def make_plan(kind: str, base: dict, space: dict, costs: Costs, budget_s: float, seed: int,
              n_train: int, n_val: int, k: int, augment_default: bool = True, default_size: int | None = None,
              n_test: int | None = None, references: int = 0) -> AutoPlan:
    """The trial plan: how many search points, folds, ensemble members; from the budget and `costs` only.

    Trial 0, the default recipe, always runs (at `default_size`); every trial runs the given epochs
    (successive halving stops the weak ones early), and the result is never trained for fewer
    epochs than the trials it was chosen by. Reserved first: trial 0, the `references`
    (`autoprobe`'s linear probe and pixel model), Ray's start, the ensemble's
    building and scoring, and, with folds, the finalists' cross-validation and their final runs on
    the dataset as given. The rest holds as many search points as successive halving's expected
    cost allows (each trial to the first rung, half of them to the second, ...), at most
    MAX_TRIALS. When MIN_TRIALS and the folds do not fit, the folds go down to 3, then to none (the
    validation split alone chooses, and the trials themselves are the final models); then fewer
    points, down to none (trial 0 alone). Only when trial 0 itself does not fit in the budget do
    the epochs shrink.
    """
    head = int(base.get("head_epochs", 0))
    fine = int(base.get("fine_tune_epochs", 0))
    sizes = space.get("input_size") or [int(base["input_size"])]
    big = max(sizes)
    default_size = int(default_size or big)
    if default_size not in costs.ms_per_image:  # no cost known at the default size: the search's largest
        default_size = big
    augment = augment_default
    n_test = n_val if n_test is None else n_test

    def full(h, f, size=big):
        return costs.trial_s(size, n_train, n_val, h, f, augment)

    def halving(h, f, n):  # expected cost of n trials under successive halving
        e, start = h + f, costs.start_s(big, n_train, n_val, h, augment)
        stage2 = costs.epoch_s(big, n_train, n_val, 2, augment)
        reached = [max(1, n // 2 ** i) - (max(1, n // 2 ** (i + 1)) if i + 1 < len(rungs(e)) else 0)
                   for i in range(len(rungs(e)))]  # how many trials stop at each rung
        return sum(count * (start + max(0, r - h) * stage2) for count, r in zip(reached, rungs(e)))

    ms = costs.ms_per_image[max(default_size, big)]
    ensemble_s = quantize(costs.fixed_s + 2 * ENSEMBLE_MAX * (n_val + n_test) * ms / 1000.0)
    # the references: a process each, the features of every image, and the comparison with the result
    probe_s = quantize(references * costs.fixed_s + (n_train + 3 * n_val + n_test) * ms / 1000.0) if references else 0.0

    def reserved(h, f, k):
        finals = FINALISTS * full(h, f) * (1 + RESERVE_MARGIN) if k else 0.0  # trained again on the data as given
        cv = FINALISTS * (k - 1) * full(h, f) if k else 0.0
        return full(h, f, default_size) + RAY_SECONDS + ensemble_s + finals + cv + probe_s \
            + costs.fixed_s  # fixed_s: the cut's probe, the range test

    def fits(h, f, n, k):
        return budget_s - reserved(h, f, k) >= halving(h, f, n)

    k = next((kk for kk in sorted({k, min(k, 3)}, reverse=True) if kk and fits(head, fine, MIN_TRIALS, kk)), 0)
    n = 0
    while n < MAX_TRIALS and fits(head, fine, n + 1, k):
        n += 1
    if n < MIN_TRIALS:
        k = 0
    if not n:
        # no room for a search: trial 0, the default recipe, is the result, with as many of the
        # given epochs as the budget holds
        while head + fine > 1 and full(head, fine, default_size) * (1 + RESERVE_MARGIN) + costs.fixed_s + probe_s > budget_s:
            head, fine = (max(head * 2 // 3, 1 if head else 0), max(fine * 2 // 3, 1 if fine else 0))
            if head + fine <= 2:
                break
    points = draw_points(space, n, seed) if n and space else []
    final = full(head, fine)
    estimate = {"default": round(full(head, fine, default_size), 1),
                "search": round(halving(head, fine, len(points)) + RAY_SECONDS, 1) if points else 0.0,
                "cross_validation": round(FINALISTS * (k - 1) * final, 1) if (k and points) else 0.0,
                "final": round(FINALISTS * final, 1) if (k and points) else 0.0,
                "ensemble": round(ensemble_s, 1) if points else 0.0, "probe": round(probe_s, 1)}
    return AutoPlan(kind, dict(base, head_epochs=head, fine_tune_epochs=fine), space, points, head, fine,
                    k if points else 0, FINALISTS, estimate, ENSEMBLE_MAX if points else 0, references)
