"""The classic recipes as named option sets for `tlcore train --preset NAME`.

Each reproduces a recipe of the course material the studio replaces, quirks included;
explicit options given with the preset win. Where a recipe is silent (epochs, say), the
value is the one its notebook used, or the studio's default, as noted.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.errors import TLCoreError

TUTORIAL_AUGMENTATION = {"augment": "none", "flip": "horizontal", "rotation": 40.0, "shift": 0.2,
                         "shear": 0.2, "zoom": 0.2}


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "options": dict(self.options)}


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset(
        "inception-mixed7",
        "InceptionV3 at 150x150, features from `mixed7`, Flatten, Dense(1024, relu), Dropout(0.2), "
        "sigmoid/softmax output; everything from `mixed7` on unfrozen; Adam(1e-5), 3 epochs, with the "
        "notebook's augmentation. As written the layers it unfreezes lie at or past the cut and "
        "`mixed7` has no weights, so no backbone weight trains: only the head learns. Give the "
        "weights file the course used with --weights PATH (or imagenet when online).",
        {"backbone": "InceptionV3", "input_size": 150, "cut": "mixed7", "pooling": "flatten",
         "dense": [1024], "dropout": 0.2, "unfreeze_from": "mixed7", "head_epochs": 0,
         "fine_tune_epochs": 3, "fine_tune_lr": 1e-5, "lr": 1e-5, "optimizer": "adam",
         "early_stopping": 0, **TUTORIAL_AUGMENTATION},
    ),
    Preset(
        "vgg19-frozen",
        "VGG19 at 224 with ImageNet weights, include_top=False, all frozen, Flatten, one output "
        "unit (sigmoid) or softmax, RMSprop (Keras' default rate 1e-3), the tutorial's augmentation "
        "(rotation 40, shifts 0.2, shear 0.2, zoom 0.2, horizontal flip) on train only; 20 epochs. "
        "Compare with --weights none for the course's with/without pretraining curves.",
        {"backbone": "VGG19", "input_size": 224, "weights": "imagenet", "pooling": "flatten",
         "dense": [], "dropout": 0.0, "optimizer": "rmsprop", "lr": 1e-3, "head_epochs": 20,
         "fine_tune_epochs": 0, "early_stopping": 0, **TUTORIAL_AUGMENTATION},
    ),
    Preset(
        "resnet50-layers165",
        "ResNet50, Flatten, Dense(1024, relu), softmax output; train the head (Adam 1e-3, 5 epochs), "
        "then unfreeze `layers[165:]` of the backbone and recompile with Adam(1e-5) for 5 epochs.",
        {"backbone": "ResNet50", "pooling": "flatten", "dense": [1024], "dropout": 0.0,
         "optimizer": "adam", "lr": 1e-3, "head_epochs": 5, "unfreeze_from": "165",
         "fine_tune_epochs": 5, "fine_tune_lr": 1e-5, "augment": "none"},
    ),
    Preset(
        "two-stage",
        "Two stages: stage 1 trains only the head on the frozen backbone for 10 epochs; stage 2 "
        "unfreezes every layer except BatchNormalization (kept frozen, in inference mode) at a "
        "tenth of stage 1's learning rate for 10 more epochs. Works with any --backbone "
        "(MobileNetV2 unless given).",
        {"backbone": "MobileNetV2", "head_epochs": 10, "fine_tune_epochs": 10, "unfreeze_from": "0",
         "lr": 1e-3, "fine_tune_lr": 1e-4, "train_bn": False, "pooling": "avg", "dropout": 0.2},
    ),
    Preset(
        "modern",
        "Today's recipe from Keras' own parts, on the two-stage plan: AdamW (weight decay 1e-4), "
        "cosine decay after one warm-up epoch in each stage, label smoothing 0.1, RandAugment and "
        "MixUp (alpha 0.2). RandAugment and MixUp need the images every epoch, so stage 1 runs "
        "without the feature cache and takes longer. Works with any --backbone (MobileNetV2 "
        "unless given).",
        {"backbone": "MobileNetV2", "optimizer": "adamw", "weight_decay": 1e-4, "schedule": "cosine",
         "warmup_epochs": 1, "label_smoothing": 0.1, "augment": "randaugment", "mixup": 0.2},
    ),
    Preset(
        "scratch-small",
        "Without pretrained weights: a small network trained from scratch. MobileNetV2 up to the "
        "expansion of block 6 (66 k weights, 8x8x192 features) at 64 px, every layer and "
        "BatchNorm training from the first epoch (no head-only stage), Adam 1e-3, batch 16, "
        "flips and any rotation, 45 epochs. Learns the demo shapes (`tlcore demo-data`) to about "
        "0.9 test accuracy in 2-3 minutes on a 2-core CPU; the whole MobileNetV2 learns much more "
        "slowly from scratch. Not a substitute for transfer learning on photos.",
        {"backbone": "MobileNetV2", "input_size": 64, "weights": "none", "cut": "block_6_expand_relu",
         "unfreeze_from": "0", "train_bn": True, "head_epochs": 0, "fine_tune_epochs": 45,
         "lr": 1e-3, "fine_tune_lr": 1e-3, "batch_size": 16, "pooling": "avg", "dense": [],
         "dropout": 0.2, "augment": "none", "flip": "both", "rotation": 180.0, "early_stopping": 0},
    ),
]}


def list_presets() -> list[Preset]:
    return list(PRESETS.values())


def get_preset(name: str) -> Preset:
    """The preset called `name`; the error lists the ones that exist."""
    if name not in PRESETS:
        from ..core.console import did_you_mean

        raise TLCoreError(f"Unknown preset {name!r}.{did_you_mean(name, PRESETS)} Choose one of: {', '.join(PRESETS)}.")
    return PRESETS[name]


def apply_preset(name: str | None, options: dict) -> dict:
    """The preset's options with `options` (given explicitly) over them."""
    if not name:
        return dict(options)
    merged = dict(get_preset(name).options)
    if options.get("backbone_file"):
        merged.pop("backbone", None)
    merged.update(options)
    merged["preset"] = name
    return merged
