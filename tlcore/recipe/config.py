"""`TrainConfig`: every training option, its default, its choices and its check, in one place.

The command line's flags and choices, the app's option names and the presets all derive
from the fields below (`OPTIONS`), so nothing keeps a copy of the list. `check()` raises on
the first bad option and changes nothing; `resolved()` returns the config with the backbone's
canonical name, its input size and absolute paths, as config.json records it. Neither imports
TensorFlow, so bad input is refused before a run folder exists.

Engine errors name the option (`head_epochs must be ...`); `OptionError.option` lets the command
line say `--head-epochs` and the app say the widget's label.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backbones.source import PREPROCESSING_CHOICES
from ..core.errors import OptionError, TLCoreError
from ..data.images import RESIZE_MODES
from ..data.augment import AUGMENTS, FLIPS
from ..data.splits import DEFAULT_SEED, DEFAULT_TEST_SPLIT, DEFAULT_VAL_SPLIT

# Choices owned here; the others come from the module that owns the concept (resize modes:
# images; augmentation presets and flips: the data pipeline; preprocessing: backbone sources).
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine", "onecycle")
POOLINGS = ("avg", "max", "flatten")
HEAD_FITS = ("epochs", "logistic", "pixels")
AUTO_ON_OFF = ("auto", "on", "off")
CLASS_WEIGHTS = ("auto", "none")
MAX_DENSE_UNITS = 65536
MAX_DENSE_LAYERS = 8
# Options whose presence (from the command line or a preset) keeps a --weights none run in the
# usual two-stage plan; without them, random weights train from scratch (see `resolve_options`).
STAGE_OPTIONS = ("head_epochs", "fine_tune_epochs", "unfreeze_from")
# The options `scratch_options` plans differently for random weights.
SCRATCH_KEYS = ("head_epochs", "fine_tune_epochs", "unfreeze_from", "train_bn", "early_stopping", "fine_tune_lr")
SCRATCH_EPOCHS = 15  # the default plan's 10 head + 5 fine-tuning epochs, all trained from scratch
# The options stage 1 (the head on the frozen backbone) never reads: what stage 2 unfreezes, how
# long and how fast it trains, and the run's label. Every other option counts as a stage-1 option
# (`TrainConfig.stage1_options`), so a new option is on the safe side until it is listed here.
STAGE2_ONLY = ("fine_tune_epochs", "fine_tune_lr", "unfreeze_from", "unfreeze", "freeze", "train_bn", "name")


def _opt(default: Any, help: str, *, type: Any = None, choices: tuple | None = None,
         nargs: str | None = None, flag: bool = False, cli: bool = True) -> Any:
    """A dataclass field carrying what the command line needs to offer it."""
    meta = {"help": help, "type": type, "choices": choices, "nargs": nargs, "flag": flag, "cli": cli}
    if isinstance(default, list):
        return field(default_factory=list, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    data: str = _opt("", "the dataset folder (one sub-folder per class, or train/validation[/test])",
                     cli=False)
    backbone: str | None = _opt(None, "catalog backbone name (see `tlcore backbones`)")
    backbone_file: str | None = _opt(None, "a saved model (.keras/.h5) or SavedModel folder as backbone")
    weights: str | None = _opt("imagenet", "imagenet (default), none, or a weights file")
    input_size: int | None = _opt(None, "input side in pixels (the backbone's default)", type=int)
    cut: str | None = _opt(None, "layer name or index where the backbone ends")
    unfreeze_from: str | None = _opt(None, "layer name or index from which stage 2 trains "
                                     "(negative from the end; default: the last third)")
    unfreeze: list = _opt([], "also train these layers in stage 2: globs over layer names or paths, "
                          "or re:REGEX over weight paths", nargs="+")
    freeze: list = _opt([], "keep these frozen in stage 2 (applied last): globs or re:REGEX", nargs="+")
    head_epochs: int = _opt(10, "stage 1: epochs training the head on the frozen backbone", type=int)
    fine_tune_epochs: int = _opt(5, "stage 2: epochs fine-tuning from the unfreeze point", type=int)
    head_fit: str = _opt("epochs", "stage 1: how the head is fitted: epochs of gradient descent, or logistic "
                         "(a linear probe: an L2-regularised logistic regression on the frozen backbone's features of "
                         "the training images, its strength chosen by cross-validation, in one step), or pixels (no backbone: "
                         "a kernel logistic regression on the raw pixels, the pixel baseline as a network)",
                         choices=HEAD_FITS)
    lr: float = _opt(1e-3, "stage 1 learning rate", type=float)
    fine_tune_lr: float | None = _opt(None, "stage 2 learning rate (default: lr / 10)", type=float)
    optimizer: str = _opt("adam", "optimizer (sgd with momentum 0.9; adamw: Adam with decoupled weight decay)",
                          choices=OPTIMIZERS)
    weight_decay: float | None = _opt(None, "decoupled weight decay of the optimizer (default: none; "
                                      "AdamW's own 0.004 with --optimizer adamw)", type=float)
    schedule: str = _opt("constant", "learning rate over each stage: constant, cosine decay (Keras "
                         "CosineDecay, after --warmup-epochs), or onecycle (a warm-up over 3 tenths of the steps from lr/25, "
                         "then cosine decay)", choices=SCHEDULES)
    warmup_epochs: int = _opt(0, "with --schedule cosine: epochs of linear warm-up from 0 at the start of "
                              "each stage", type=int)
    label_smoothing: float = _opt(0.0, "label smoothing of the loss, 0 = off (0.1 is usual)", type=float)
    batch_size: int = _opt(32, "images per batch", type=int)
    pooling: str = _opt("avg", "pooling of the backbone's features", choices=POOLINGS)
    dense: list = _opt([], "hidden dense layer sizes (none by default)", type=int, nargs="*")
    dropout: float = _opt(0.2, "dropout before the output", type=float)
    augment: str = _opt("light", "augmentation preset (randaugment: Keras RandAugment, 2 random ops "
                        "per image; it needs images, so no feature cache)", choices=AUGMENTS)
    mixup: float = _opt(0.0, "MixUp alpha (Keras MixUp; 0 = off, 0.2 is usual): blend pairs of "
                        "training images and labels; needs images, so no feature cache", type=float)
    cutmix: float = _opt(0.0, "CutMix alpha (Keras CutMix; 0 = off, 1.0 is usual): paste a patch of "
                         "another image; with --mixup too, batches alternate", type=float)
    flip: str | None = _opt(None, "random flips", choices=FLIPS)
    rotation: float | None = _opt(None, "random rotation, degrees", type=float)
    zoom: float | None = _opt(None, "random zoom, fraction", type=float)
    shift: float | None = _opt(None, "random shift, fraction", type=float)
    shear: float | None = _opt(None, "random shear, fraction", type=float)
    contrast: float | None = _opt(None, "random contrast, fraction", type=float)
    val_split: float = _opt(DEFAULT_VAL_SPLIT, "validation fraction (flat layout)", type=float)
    test_split: float = _opt(DEFAULT_TEST_SPLIT, "test fraction (flat layout)", type=float)
    seed: int = _opt(DEFAULT_SEED, "seed of the split, the initial weights and the shuffling", type=int)
    early_stopping: int = _opt(5, "patience in epochs, 0 = off", type=int)
    train_bn: bool = _opt(False, "train BatchNormalization layers in stage 2", flag=True)
    class_weights: str = _opt("auto", "weight classes by inverse frequency", choices=CLASS_WEIGHTS)
    feature_cache: str = _opt("auto", "cache stage 1's backbone features", choices=AUTO_ON_OFF)
    mixed_precision: str = _opt("auto", "float16 compute on capable GPUs", choices=AUTO_ON_OFF)
    xla: bool = _opt(False, "compile with XLA", flag=True)
    deterministic: str = _opt("auto", "repeatable runs: TensorFlow op determinism (auto: on without a GPU, "
                              "where it costs nothing measurable; on a GPU it is slower)", choices=AUTO_ON_OFF)
    resize: str = _opt("stretch", "how images reach the input size", choices=RESIZE_MODES)
    name: str | None = _opt(None, "a label for the run")
    preset: str | None = _opt(None, "a classic recipe (`tlcore presets`); explicit options win")
    preprocessing: str | None = _opt(None, "with --backbone-file: what to do to 0-255 RGB before the "
                                     "model (auto: guess)", choices=PREPROCESSING_CHOICES)

    # --- conversion -------------------------------------------------------------------

    @classmethod
    def from_dict(cls, options: dict) -> "TrainConfig":
        """A config from option names and values (config.json's `options`, the app's selection).

        Raises:
            TLCoreError: an option name that does not exist.
        """
        unknown = sorted(set(options) - set(OPTION_NAMES))
        if unknown:
            raise TLCoreError(f"Unknown training option(s): {', '.join(unknown)}.")
        values = dict(options)
        for name in ("dense", "freeze", "unfreeze"):
            if name in values:
                values[name] = [] if values[name] is None else list(values[name])
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def augment_overrides(self) -> dict:
        return {k: getattr(self, k) for k in ("flip", "rotation", "zoom", "shift", "shear", "contrast")}

    def image_recipe(self) -> list[str]:
        """What needs the images themselves every epoch (so no stage-1 feature cache)."""
        return [name for name, on in (("RandAugment", self.augment == "randaugment"),
                                      ("MixUp", bool(self.mixup)), ("CutMix", bool(self.cutmix))) if on]

    @property
    def stage2_lr(self) -> float:
        return self.fine_tune_lr if self.fine_tune_lr is not None else self.lr / 10.0

    @property
    def epochs_total(self) -> int:
        return int(self.head_epochs) + int(self.fine_tune_epochs)

    def stage1_options(self) -> dict:
        """The options that decide stage 1's result (all but `STAGE2_ONLY`): two configs with the
        same stage-1 options (resolved, on the same data) train the same stage 1, which a search
        then trains once (`training.stage1`)."""
        return {k: v for k, v in self.to_dict().items() if k not in STAGE2_ONLY}

    # --- checks -----------------------------------------------------------------------

    def check(self, data: bool = True) -> None:
        """Every argument check that needs no TensorFlow, before any work; changes nothing.

        Args:
            data: also check the dataset folder (`tlcore plan` has none).

        Raises:
            TLCoreError: the first bad option; `OptionError` names it.
        """
        if data:
            if not self.data:
                raise TLCoreError("Give the dataset folder (DATA).")
            from ..data.pipeline import check_folder

            check_folder(self.data)
        for name in ("val_split", "test_split"):
            _fraction(name, getattr(self, name))
        if not _whole(self.seed) or not 0 <= self.seed < 2 ** 32:
            raise OptionError("seed", f"must be a whole number from 0 to {2 ** 32 - 1}. Received: {self.seed!r}")
        if bool(self.backbone) == bool(self.backbone_file):
            raise OptionError("backbone", "Give exactly one of {option} NAME or {option:backbone_file} PATH.")
        if self.backbone:
            from ..backbones.build import check_input_size
            from ..backbones.catalog import get_backbone

            check_input_size(get_backbone(self.backbone).name, self.input_size)
        for name in ("head_epochs", "fine_tune_epochs", "early_stopping"):
            value = getattr(self, name)
            if not _whole(value) or value < 0:
                raise OptionError(name, f"must be a whole number, 0 or more. Received: {value!r}")
        if self.head_epochs + self.fine_tune_epochs == 0:
            raise OptionError("head_epochs", "Nothing to train: {option} and {option:fine_tune_epochs} are both 0.")
        if self.head_fit == "logistic" and (not self.head_epochs or self.dense):
            raise OptionError("head_fit", "{option} logistic fits the head's one output layer on the frozen backbone in stage 1: "
                              "it needs {option:head_epochs} of at least 1 and no hidden dense layers "
                              f"({{option:dense}}). Received: head_epochs {self.head_epochs}, dense {list(self.dense)}.")
        if self.head_fit == "pixels" and (not self.head_epochs or self.fine_tune_epochs):
            raise OptionError("head_fit", "{option} pixels fits a model of the raw pixels in one step, without the "
                              "backbone: it needs {option:head_epochs} of at least 1 and {option:fine_tune_epochs} 0 "
                              f"(nothing to fine-tune). Received: head_epochs {self.head_epochs}, "
                              f"fine_tune_epochs {self.fine_tune_epochs}.")
        if not _whole(self.batch_size) or not 1 <= self.batch_size <= 4096:
            raise OptionError("batch_size", f"must be a whole number from 1 to 4096. Received: {self.batch_size!r}")
        for name in ("lr", "fine_tune_lr"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 < value < 10):
                raise OptionError(name, f"must be a positive number below 10. Received: {value!r}")
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value is not None and value not in choices:
                raise OptionError(f.name, f"must be one of {', '.join(choices)}. Received: {value!r}")
        if self.backbone_file and not Path(self.backbone_file).expanduser().exists():
            raise OptionError("backbone_file", f"not found: {self.backbone_file}")
        if self.weights not in (None, "imagenet", "none") and not Path(self.weights).expanduser().is_file():
            raise OptionError("weights", f"must be imagenet, none, or a weights file. File not found: {self.weights}")
        if not _whole(self.warmup_epochs) or self.warmup_epochs < 0:
            raise OptionError("warmup_epochs", f"must be a whole number, 0 or more. Received: {self.warmup_epochs!r}")
        _fraction("label_smoothing", self.label_smoothing)
        if self.weight_decay is not None:
            _fraction("weight_decay", self.weight_decay)
        for name in ("mixup", "cutmix"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 10.0 \
                    or math.isnan(value):
                raise OptionError(name, f"must be from 0 (off) to 10. Received: {value!r}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= float(self.dropout) < 1.0:
            raise OptionError("dropout", f"must be at least 0 and below 1. Received: {self.dropout}")
        check_dense(self.dense)
        for name in ("freeze", "unfreeze"):
            for pattern in getattr(self, name):
                _check_pattern(name, pattern)
        from ..data.augment import augmentation_options

        augmentation_options(self.augment, **self.augment_overrides())

    def resolved(self) -> "TrainConfig":
        """The config as a run records it: checked, canonical backbone name, its input size,
        absolute paths (so `evaluate` works from any folder)."""
        self.check(data=bool(self.data))
        changes: dict[str, Any] = {}
        if self.backbone:
            from ..backbones.build import check_input_size
            from ..backbones.catalog import get_backbone

            name = get_backbone(self.backbone).name
            changes.update(backbone=name, input_size=check_input_size(name, self.input_size))
        if self.data:
            changes["data"] = str(Path(self.data).expanduser().resolve())
        if self.backbone_file:
            changes["backbone_file"] = str(Path(self.backbone_file).expanduser().resolve())
        if self.weights not in (None, "imagenet", "none"):
            changes["weights"] = str(Path(self.weights).expanduser().resolve())
        return self.replace(**changes)


OPTIONS: tuple[dataclasses.Field, ...] = dataclasses.fields(TrainConfig)
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in OPTIONS)
DEFAULTS: dict[str, Any] = TrainConfig().to_dict()
_FIELDS = {f.name: f for f in OPTIONS}


def resolve_options(options: dict, given: set[str] | None = None, preset: bool = True) -> dict:
    """Options after the preset and the from-scratch default, as `TrainConfig.from_dict` takes.

    `given` are the names that came from the user (command line, app, --config); a preset's
    options count as given too. With `preset` False a named preset is only recorded (a
    config.json holds its options already). With ``weights="none"`` and none of head_epochs,
    fine_tune_epochs or unfreeze_from given, nothing pretrained exists to freeze, so the plan is
    the from-scratch one: no head-only stage, every layer and BatchNorm training for all the
    epochs (`scratch_options`).
    """
    from .presets import apply_preset

    given = set(options) if given is None else set(given)
    name = options.get("preset") if preset else None
    out = apply_preset(name, options) if name else dict(options)
    if name:
        from .presets import get_preset

        given |= set(get_preset(name).options)
    if out.get("weights") == "none" and not given & set(STAGE_OPTIONS):
        out = scratch_options(out, given)
    return out


def options_from(given: dict, config_file: str | Path | None = None) -> dict:
    """TrainConfig fields from defaults < preset < a run's config.json < `given`, then the
    from-scratch default for ``weights="none"`` (`resolve_options`): what `tlcore train`, `plan`,
    `lr-find`, `probe`, `audit`, `search` and the Python API (`tlcore.train`, `tlcore.plan`) pass
    to `TrainConfig.from_dict`.

    Args:
        given: options named by the user (flags, keyword arguments), TrainConfig's field names.
        config_file: a run's config.json (or a JSON object of options) to start from; a preset
            recorded there is already applied, so it is applied again only when `given` names one.

    Raises:
        OptionError: `config` is not a readable config.json.
    """
    options: dict[str, Any] = {}
    if config_file:
        from ..core.jsonio import read_json

        cfg = read_json(config_file)
        if not isinstance(cfg, dict) or not isinstance(cfg.get("options", cfg), dict):
            raise OptionError("config", f"{{option}} {config_file}: not a readable config.json.")
        options.update(cfg.get("options", cfg))
    options.update(given)
    return resolve_options(options, set(options), preset="preset" in given)


def scratch_options(options: dict, given: set[str] = frozenset()) -> dict:
    """The from-scratch plan of `options`: every epoch trains every layer (BatchNorm included)
    at the stage-1 rate, for as many epochs as the two stages would have had, all of them
    (no early stopping unless asked for)."""
    out = dict(options)
    epochs = int(out.get("head_epochs", DEFAULTS["head_epochs"])) + \
        int(out.get("fine_tune_epochs", DEFAULTS["fine_tune_epochs"]))
    out.update(head_epochs=0, fine_tune_epochs=epochs, unfreeze_from="0")
    if "train_bn" not in given:
        out["train_bn"] = True
    if "early_stopping" not in given:  # from random weights the validation loss wanders for a while
        out["early_stopping"] = 0
    if "fine_tune_lr" not in given:
        out["fine_tune_lr"] = float(out.get("lr", DEFAULTS["lr"]))
    return out


def choices_of(name: str) -> tuple | None:
    """The choices of option `name` (None for a free value): what the parser and the app offer."""
    return _FIELDS[name].metadata.get("choices")


def check_dense(units) -> tuple[int, ...]:
    """Hidden dense layer sizes as whole numbers, checked: 1 to MAX_DENSE_UNITS units each, at
    most MAX_DENSE_LAYERS layers.

    Raises:
        OptionError: ``dense``, naming the value that is wrong.
    """
    out = []
    for value in units:
        if not _whole(value) or not 1 <= value <= MAX_DENSE_UNITS:
            raise OptionError("dense", f"units must be whole numbers from 1 to {MAX_DENSE_UNITS}. Received: {value}")
        out.append(int(value))
    if len(out) > MAX_DENSE_LAYERS:
        raise OptionError("dense", f"holds at most {MAX_DENSE_LAYERS} layers. Received: {len(out)}")
    return tuple(out)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fraction(name: str, value) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (0.0 <= value < 1.0) \
            or math.isnan(value):
        raise OptionError(name, f"must be at least 0 and below 1. Received: {value!r}")


def _check_pattern(name: str, pattern) -> None:
    import re

    if not isinstance(pattern, str) or not pattern.strip():
        raise OptionError(name, f"patterns must be non-empty text. Received: {pattern!r}")
    if pattern.startswith("re:"):
        try:
            re.compile(pattern[3:])
        except re.error as exc:
            raise OptionError(name, f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
