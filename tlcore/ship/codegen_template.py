"""The text of the script `codegen` writes (`tlcore export RUN --format code`).

`SCRIPT` is the whole script with placeholders that `codegen.render` fills: ``#CONSTANTS#`` (the
run's recipe), ``#IMAGES#`` (the studio's image reading), ``#SPLITS#`` and ``#RECIPE#``
(the studio's split, optimizer, schedule, loss and
augmentation functions, copied), and per kind of backbone
(`BACKBONES`: a catalog model, or a saved model file) how the backbone is built, the command-line
argument that names its weights or file, and the value `build_model` gets. Plain text only: this
module imports nothing.
"""

CATALOG_BACKBONE = r'''def build_base(weights):
    """keras.applications.BACKBONE without its top, with `weights`: imagenet, none, or a file."""
    ctor = getattr(keras.applications, BACKBONE)
    shape = (INPUT_SIZE, INPUT_SIZE, 3)
    if weights in ("imagenet", "none"):
        return ctor(include_top=False, weights=None if weights == "none" else "imagenet", input_shape=shape)
    base = ctor(include_top=False, weights=None, input_shape=shape)
    try:
        base.load_weights(weights)
    except Exception:  # a file saved with the ImageNet top: load the full model, copy by layer name
        full = ctor(include_top=True, weights=weights)
        for layer in base.layers:
            if layer.weights:
                layer.set_weights(full.get_layer(layer.name).get_weights())
    return base


def build_backbone(weights):
    """The pretrained base, cut after CUT_LAYER."""
    base = build_base(weights)
    return keras.Model(base.inputs, base.get_layer(CUT_LAYER).output, name="backbone")'''

FILE_BACKBONE = r'''#FLATTEN#


def build_backbone(path):
    """The saved model the run started from (its weights are in the file), cut after CUT_LAYER.

    Layers inside nested models (a classifier wrapping a whole MobileNetV2, say) become layers of
    one graph (flatten_model), so the cut and TRAIN_IN_STAGE_2 reach them by name, as in the studio.
    """
    if not os.path.isfile(path):
        raise SystemExit(f"Backbone model file not found: {path}. This run started from "
                         f"{os.path.basename(BACKBONE_FILE)}: give that file with --backbone-file PATH.")
    with open(path, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != BACKBONE_FILE_SHA256:
            print(f"warning: {path} is not the file this run started from (its SHA-256 differs); "
                  "the model will differ from the run's.")
    model = keras.saving.load_model(path, compile=False)
    if tuple(model.input_shape[1:]) != (INPUT_SIZE, INPUT_SIZE, 3):
        raise SystemExit(f"{path} takes images of {model.input_shape[1:]}, this run's backbone "
                         f"{(INPUT_SIZE, INPUT_SIZE, 3)}: give the file the run started from.")
    flat, paths, outputs = flatten_model(model)
    if CUT_LAYER not in outputs:
        raise SystemExit(f"{path} has no layer named {CUT_LAYER!r}, where this run cut its backbone: "
                         "give the file the run started from.")
    return keras.Model(flat.inputs, outputs[CUT_LAYER], name="backbone")'''

BACKBONES = {
    "catalog": {
        "usage": "[--weights PATH]",
        "argument": '    parser.add_argument("--weights", default=WEIGHTS, help="imagenet, none, or a weights file")',
        "source": "args.weights",
        "code": CATALOG_BACKBONE,
    },
    "file": {
        "usage": "[--backbone-file PATH]",
        "argument": ('    parser.add_argument("--backbone-file", default=BACKBONE_FILE,\n'
                     '                        help="the saved model (.keras or .h5) this run started from")'),
        "source": "args.backbone_file",
        "code": FILE_BACKBONE,
    },
}

SCRIPT = r'''import argparse
import hashlib
import io
import math
import os
import random
import unicodedata
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

# --- this run's recipe -------------------------------------------------------------------
#CONSTANTS#

SPLIT_NAMES = {"train": "train", "training": "train", "validation": "validation", "val": "validation",
               "valid": "validation", "test": "test", "testing": "test"}
IGNORED = {".ds_store", "thumbs.db", "desktop.ini"}


# --- reading the images: the studio's own functions (tlcore/data/images.py), copied as they are ---

def ignored(name):
    return name.startswith(".") or name.lower() in IGNORED or name == "__MACOSX"


def subdirs(folder):
    return sorted(p for p in (os.path.join(folder, n) for n in os.listdir(folder))
                  if os.path.isdir(p) and not ignored(os.path.basename(p)) and not os.path.islink(p))


def image_files(class_dir):
    files = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = sorted(d for d in dirnames if not ignored(d))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if not ignored(name) and not os.path.islink(path) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                files.append(path)
    return files


def unwrap(root):
    """Go down through single top folders that hold everything (cats_vs_dogs/train/...)."""
    for _ in range(5):
        subs = subdirs(root)
        files = [n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n)) and not ignored(n)]
        if (len(subs) == 1 and not any(os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS for n in files)
                and os.path.basename(subs[0]).lower() not in SPLIT_NAMES and subdirs(subs[0])):
            root = subs[0]
        else:
            break
    return root


#SPLITS#


def split_dataset(data):
    """{split: [(path, label)]}: split folders if there are any, else a seeded split per class."""
    root = unwrap(os.path.abspath(os.path.expanduser(data)))
    split_dirs = {}
    for d in subdirs(root):
        key = SPLIT_NAMES.get(os.path.basename(d).lower())
        if key and key not in split_dirs:
            split_dirs[key] = d
    nfc = lambda p: unicodedata.normalize("NFC", os.path.basename(p))
    if "train" in split_dirs:
        found = sorted({nfc(d) for d in subdirs(split_dirs["train"])})
        index = {c: i for i, c in enumerate(found)}
        files = {"train": [], "validation": [], "test": []}
        for split, sdir in split_dirs.items():
            for cdir in subdirs(sdir):
                if nfc(cdir) in index:
                    files[split] += [(f, index[nfc(cdir)]) for f in image_files(cdir)]
        if not files["validation"]:
            by_class = {i: [f for f, l in files["train"] if l == i] for i in range(len(found))}
            parts = stratified_split(by_class, DEFAULT_VAL_SPLIT, 0.0, SEED, split_dirs["train"], SPLIT_METHOD)
            files["train"], files["validation"] = parts["train"], parts["validation"]
    else:
        subs = subdirs(root)
        found = [nfc(d) for d in subs]
        files = stratified_split({i: image_files(d) for i, d in enumerate(subs)}, VAL_SPLIT, TEST_SPLIT, SEED, root,
                                 SPLIT_METHOD)
    if found != CLASSES:
        raise SystemExit(f"The data's classes {found} are not the run's {CLASSES}.")
    return files


#IMAGES#


Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def load_split(pairs):
    images, labels = [], []
    for path, label in pairs:
        try:
            images.append(load_image(path, INPUT_SIZE, RESIZE))
            labels.append(label)
        except Exception as exc:  # an unreadable file is skipped, as the studio does
            print(f"skipped {path}: {exc}")
    images = np.stack(images) if images else np.zeros((0, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    return images, np.array(labels, dtype=np.int64)


# --- the model ------------------------------------------------------------------------------

def binary():
    return len(CLASSES) == 2


def preprocessing_layers():
    """What keras.applications' preprocess_input does, as stock layers inside the model."""
    if PREPROCESSING == "tf":
        return [keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess_tf", dtype="float32")]
    if PREPROCESSING == "torch":
        std = (0.229, 0.224, 0.225)
        return [keras.layers.Rescaling(1 / 255.0, name="preprocess_scale", dtype="float32"),
                keras.layers.Normalization(mean=[0.485, 0.456, 0.406], variance=[s * s for s in std],
                                           name="preprocess_torch", dtype="float32")]
    if PREPROCESSING == "caffe":  # RGB -> BGR, minus the ImageNet means, as a frozen 1x1 convolution
        kernel = np.zeros((1, 1, 3, 3), dtype="float32")
        for out_channel, in_channel in enumerate((2, 1, 0)):
            kernel[0, 0, in_channel, out_channel] = 1.0
        return [keras.layers.Conv2D(3, 1, name="preprocess_caffe", trainable=False, dtype="float32",
                                    kernel_initializer=keras.initializers.Constant(kernel),
                                    bias_initializer=keras.initializers.Constant(-np.array((103.939, 116.779, 123.68))))]
    return []


#BACKBONE#


def build_model(source):
    """image (RGB 0-255) -> preprocessing -> backbone (cut) -> head, as the studio assembles it."""
    backbone = build_backbone(source)
    features = keras.Input(shape=backbone.output.shape[1:], name="features")
    x = features
    if len(features.shape) == 4:
        x = {"avg": keras.layers.GlobalAveragePooling2D(name="head_pool"),
             "max": keras.layers.GlobalMaxPooling2D(name="head_pool"),
             "flatten": keras.layers.Flatten(name="head_flatten")}[POOLING](x)
    elif len(features.shape) != 2:
        x = keras.layers.Flatten(name="head_flatten")(x)
    for i, units in enumerate(DENSE, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"head_dense_{i}")(x)
        if DROPOUT:
            x = keras.layers.Dropout(DROPOUT, name=f"head_dropout_{i}")(x)
    if DROPOUT and not DENSE:
        x = keras.layers.Dropout(DROPOUT, name="head_dropout")(x)
    outputs = keras.layers.Dense(1 if binary() else len(CLASSES), activation="sigmoid" if binary() else "softmax",
                                 name="predictions", dtype="float32")(x)
    head = keras.Model(features, outputs, name="head")
    image = keras.Input(shape=(INPUT_SIZE, INPUT_SIZE, 3), name="image", dtype="float32")
    x = image
    for layer in preprocessing_layers():
        x = layer(x)
    return keras.Model(image, head(backbone(x)), name="classifier")


def set_stage(model, stage):
    """Stage 1: only the head trains. Stage 2: the head and TRAIN_IN_STAGE_2."""
    backbone = model.get_layer("backbone")
    backbone.trainable = True
    for layer in backbone.layers:
        layer.trainable = stage == 2 and layer.name in TRAIN_IN_STAGE_2
        if layer.trainable:
            for v in layer.weights:
                if v.path in FROZEN_WEIGHTS:
                    v.trainable = False
            if isinstance(layer, keras.layers.BatchNormalization) and layer.momentum > 0.9:
                layer.momentum = 0.9  # moving statistics catch up within a few hundred steps
    model.get_layer("head").trainable = True
    for layer in model.layers:
        if layer.name.startswith("preprocess_"):
            layer.trainable = False


# --- the recipe: optimizer, learning-rate schedule, loss, augmentation, MixUp/CutMix ----------
# (the studio's own functions, as they are in tlcore/recipe/optimizer.py, tlcore/data/outputs.py and tlcore/data/pipeline.py)

#RECIPE#


# --- data pipeline --------------------------------------------------------------------------

def dataset(images, labels, shuffle=False, augment=(), mix=None):
    """Batches of float RGB 0-255 and their targets: shuffled, augmented and mixed for training."""
    y = targets(labels, len(CLASSES), soft_targets(len(CLASSES), LABEL_SMOOTHING, bool(MIXUP or CUTMIX)))
    ds = tf.data.Dataset.from_tensor_slices((images, y))
    if shuffle:
        ds = ds.shuffle(len(images), seed=SEED, reshuffle_each_iteration=True)
    ds = ds.batch(BATCH_SIZE).map(lambda x, t: (tf.cast(x, tf.float32), t), num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        def apply(x, t):
            for layer in augment:
                x = layer(x, training=True)
            return tf.clip_by_value(x, 0.0, 255.0), t
        ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    if mix is not None:
        ds = mix(ds)
    return ds.prefetch(tf.data.AUTOTUNE)


def class_weights(labels):
    """Inverse-frequency weights when the classes are imbalanced (largest/smallest above 1.5)."""
    if CLASS_WEIGHTS == "none":
        return None
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(float)
    present = counts[counts > 0]
    if len(present) < 2 or present.max() / present.min() <= 1.5:
        return None
    return {i: float(counts.sum() / (len(CLASSES) * c)) if c else 0.0 for i, c in enumerate(counts)}


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the lowest validation loss, across both stages."""

    def __init__(self):
        super().__init__()
        self.best, self.weights = None, None

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        if loss is not None and (self.best is None or loss < self.best):
            self.best, self.weights = loss, self.model.get_weights()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
#SOURCE_ARGUMENT#
    parser.add_argument("--epochs-scale", type=float, default=1.0)
    parser.add_argument("--out", default="model.keras")
    args = parser.parse_args()

    keras.utils.set_random_seed(SEED)
    if DETERMINISTIC == "on" or (DETERMINISTIC == "auto" and not tf.config.list_physical_devices("GPU")):
        tf.config.experimental.enable_op_determinism()
    files = split_dataset(args.data)
    x_train, y_train = load_split(files["train"])
    x_val, y_val = load_split(files["validation"])
    train_ds = dataset(x_train, y_train, shuffle=True, augment=augmentation_layers(AUGMENT, SEED),
                       mix=mixer(MIXUP, CUTMIX, SEED))
    val_ds = dataset(x_val, y_val) if len(x_val) else None
    weights = class_weights(y_train)

    model = build_model(#SOURCE#)
    best = BestWeights()
    scale = lambda n: max(1, round(n * args.epochs_scale)) if n else 0
    first = 0
    for stage, epochs, lr in ((1, scale(HEAD_EPOCHS), LR), (2, scale(FINE_TUNE_EPOCHS), FINE_TUNE_LR)):
        if not epochs:
            continue
        set_stage(model, stage)  # recompile after every change of `trainable`
        rate = learning_rate(SCHEDULE, lr, epochs, steps_per_epoch(len(x_train), BATCH_SIZE), WARMUP_EPOCHS)
        model.compile(optimizer=make_optimizer(OPTIMIZER, rate, WEIGHT_DECAY), metrics=["accuracy"],
                      loss=loss(len(CLASSES), LABEL_SMOOTHING, bool(MIXUP or CUTMIX)))
        callbacks = [best]
        if EARLY_STOPPING and val_ds is not None:
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=EARLY_STOPPING,
                                                           restore_best_weights=True))
        model.fit(train_ds, validation_data=val_ds, epochs=first + epochs, initial_epoch=first,
                  class_weight=weights, callbacks=callbacks, verbose=2)
        first += epochs
    if EARLY_STOPPING and best.weights is not None:
        model.set_weights(best.weights)
    model.save(args.out)
    split = "test" if files["test"] else "validation"
    x_eval, y_eval = load_split(files[split])
    if len(x_eval):
        probs = np.asarray(model.predict(x_eval.astype("float32"), batch_size=BATCH_SIZE, verbose=0))
        predicted = (probs[:, 0] > 0.5).astype(int) if binary() else probs.argmax(axis=1)
        print(f"{split}_accuracy: {float((predicted == y_eval).mean()):.4f}")


if __name__ == "__main__":
    main()
'''
