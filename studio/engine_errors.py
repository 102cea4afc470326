"""The engine's error sentences as templates the catalog translates (`engine_words.say` matches them).

The engine raises `TLCoreError` / `OptionError` in English, naming arguments (``{option}`` and
``{option:NAME}`` mark an option's name; `studio.text.error_words` puts the page's label there). Each
template below is one of the engine's messages with ``{placeholders}`` for its values (``{{`` and ``}}``
are literal braces); ``python scripts/i18n.py engine`` lists the messages of tlcore that have none
(tests/test_i18n_errors.py fails on them), so a new engine error cannot reach a Korean page in English.
"""
from __future__ import annotations

from studio.i18n import N_

TEMPLATES = [
    # tlcore/api.py
    N_("{option} is not a training option.{did_you_mean} The options are TrainConfig's fields (`tlcore train --help` lists them)."),
    N_('{option} budget goes with auto=True, and auto mode blocks (no background=True) and trains its own runs (no seeds or ensemble).'),
    N_('{option} starts one run; train several seeds blocking instead.'),
    # tlcore/backbones/assets.py
    N_('Too many files named {base} in {out_dir}.'),
    N_('{base} holds weights only, not a model: pass it as the `weights` of a Keras Applications backbone instead.'),
    N_('A model file must end in {MODEL_SUFFIXES} (saved with model.save). Received: filename={filename}'),
    N_('The model file {base} is empty; upload it again.'),
    N_('A weights file must end in {WEIGHTS_SUFFIXES} (such as mobilenet_v2.weights.h5). Received: filename={filename}'),
    N_('The weights file {base} is empty; upload it again.'),
    N_('{option} imagenet: the ImageNet weights of {name} are not on this machine and cannot be downloaded now ({why}; no network?). Copy {status} into {status4} and run again, give a weights file with {option} PATH, or train from random weights with {option} none.'),
    N_('TLCORE_WEIGHTS_PROBE must be HOST:PORT, such as 127.0.0.1:9. Received: {text}'),
    # tlcore/backbones/build.py
    N_("The weights file {path_name} does not fit {name} ({value} its top): {error}. Use a file saved from "
       "keras.applications.{name2}, or 'imagenet' / 'none'."),
    N_("The weights file {path_name} does not fit {name} (with its top): {error}. Use a file saved from "
       "keras.applications.{name2}, or 'imagenet' / 'none'."),  # the line above, with and without
    N_("The weights file {path_name} does not fit {name} (without its top): {error}. Use a file saved from "
       "keras.applications.{name2}, or 'imagenet' / 'none'."),
    N_("Weights file not found: {path}. Give the path of a Keras weights file (.h5 or .weights.h5), 'imagenet' or 'none'."),
    N_('{option} must be a file, not a folder: {path}'),
    N_('Could not download the ImageNet weights for {name} (no network?). Keras wants the file {fname}: copy it into {keras_models_dir} and run again, or pass the file itself with {option} PATH (or {option} none to train from scratch).'),
    N_('Could not build {name} with ImageNet weights: {splitlines}'),
    N_('{info_name} needs an input size of at least {min_input_size} pixels. Received: input_size={size}. Its default is {default_input_size}.'),
    N_('{option} {size} is too large; use at most 2048 pixels.'),
    N_('{option} must be a whole number of pixels. Received: {input_size}'),
    N_('Keras publishes no ImageNet weights for {name}.'),
    # tlcore/backbones/catalog.py
    N_('Unknown backbone {name}.{did_you_mean} Choose one of: {CATALOG} (or give a saved model with {option:backbone_file}).'),
    # tlcore/backbones/layers.py
    N_('{option} cannot be the input layer; choose a layer after it.'),
    N_('Layer {names} (index {index}) is not a clean cut point: some path from the input to the output goes around it (it sits inside a branch). Choose a layer marked cut_point in `tlcore layers`, such as the end of a block.'),
    N_('The backbone has no layer named {spec} (given as {option}).{hint}'),
    N_('{option} index {i} is out of range: the backbone has {n} layers (0 to {value}, or -1 to -{n4} from the end).'),
    # tlcore/backbones/source.py
    N_('{folder} is not a SavedModel folder (no saved_model.pb).'),
    N_("{folder}'s signature has no fixed input size; re-export it with one."),
    N_('{folder} has no usable serving signature: {exc}'),
    N_('{option} must be one of {PREPROCESSING_CHOICES}. Received: {preprocessing}'),
    N_('Backbone file not found: {p}. Give a .keras or .h5 model file, or a SavedModel folder.'),
    N_('{p_name}: a backbone file must be a .keras or .h5 model (or a SavedModel folder). For a weights-only file use {option:backbone} NAME with {option:weights} PATH.'),
    N_('{p_name} must take one RGB image input (height, width, 3); it takes {value}.'),
    N_('{p_name} must have a fixed square input size; it has {height}x{width}.'),
    N_('{p_name}: {exc}'),
    N_('{path_name} is not a Keras model file (neither a .keras zip nor an HDF5 file). Give a model saved with model.save(...).'),
    N_('{path_name} is not a Keras model file that loads: {splitlines}'),
    N_("{path_name} holds a Lambda layer (arbitrary Python code), which Keras' safe mode refuses to load, so the studio will not run it. Rebuild the model without Lambda layers (use stock Keras layers), or save only its weights and load them into the matching catalog backbone as a weights file."),
    N_('{path_name} uses custom layers this studio does not know, so it cannot be loaded safely ({splitlines}). Save a model made of stock Keras layers.'),
    N_('{path_name} holds weights only, not a model. Use {option:backbone} NAME with {option:weights} PATH for a weights file of a catalog backbone.'),
    # tlcore/core/cache.py
    N_('TLCORE_CACHE_MAX must be a size in bytes, or with a K, M, G or T suffix (e.g. 500M, 6G). Received: TLCORE_CACHE_MAX={text}'),
    # tlcore/core/home.py
    N_('path is empty: give the path of a {noun} on the server.'),
    N_('path cannot contain a NUL character. Received: {text}'),
    N_('{text} is outside the folders this server may read ({shown}). Ask the administrator to add its folder to TLCORE_DATA_ROOTS, or upload it instead.'),
    N_('No such {noun} on the server: {resolved}'),
    N_("{resolved} is a file, not a folder; give the dataset's folder."),
    N_("{resolved} is a folder, not a file; give the file's path."),
    # tlcore/core/links.py
    N_('{option} is not a run folder (it has no status.json). Received: {str}'),
    N_('{option} must be at most {MAX_NOTE} characters. Received: {len} characters'),
    # tlcore/core/runs.py
    N_('{option} takes run states among {PRUNABLE_STATES}. Received: {value}'),
    N_('Run {run_id} is still {status}; stop it first.'),
    N_('No run at {ref}: give a run folder (as printed by `tlcore train`) or a run id from `tlcore runs`.'),
    N_('Could not create a new run folder in {root}.'),
    N_("{option} may use letters, digits, '.', '_' and '-' (up to 100). Received: {run_id}"),
    N_('A run named {run_id} exists already in {root}. Choose another --run-id.'),
    N_('Only {value} MiB free where runs are kept ({root}): free some space or choose another --runs-dir.'),
    N_('Cannot write runs to {root}: {value}. Choose another folder with --runs-dir, or set TLCORE_HOME.'),
    # tlcore/data/augment.py
    N_('{option} must be from 0 to {top}{unit}. Received: {opts}'),
    N_("{option} must be from 0 to {top} degrees. Received: {opts}"),  # the two units of the line above
    N_("{option} must be from 0 to {top} (a fraction of the image). Received: {opts}"),
    # tlcore/data/datasets.py
    N_('{class_name} holds other files too ({others}); delete it by hand.'),
    N_('{path} is not a snap of the dataset {base_name}; nothing deleted.'),
    N_('No class {class_name} in {name}; add it first.'),
    N_('The snap is not a usable image: {exc}'),
    N_('Type a {what} name first.'),
    N_('A {what} name has at most 64 characters. Received: {len}'),
    N_('A {what} name cannot contain / \\ : * ? " < > | or start or end with a dot. Received: {text}'),
    N_('{text} is the name of a split folder; a class called that would make the dataset read as train/validation/test folders. Choose another name.'),
    N_('Cannot create the demo dataset at {target}.'),
    N_('{path} is not an imported dataset in {root}; only those can be deleted.'),
    N_('{rel} leads outside the dataset {base_name}; nothing was changed.'),
    N_('{current} is a symbolic link; the studio does not follow links inside a dataset (one could lead its edits outside it). Replace the link with the real folder or file, or remove it. Nothing was changed.'),
    # tlcore/data/demo.py
    N_('{option} must be from 2 to {len}. Received: {classes}'),
    N_('{option} must be from 10 to 5000. Received: {per_class}'),
    N_('{out} exists and is not empty; choose a new folder for the demo dataset.'),
    N_('Cannot write the demo dataset to {out}: {value}'),
    # tlcore/data/edits.py
    N_('Moved {len} of {len2} image(s); {src} could not be moved: {exc}'),
    N_('No images given.'),
    N_('Cannot undo: {len} file(s) are no longer where this action put them: {missing}'),
    N_('Cannot undo: another file now sits at {taken}; move it away first.'),
    N_('Say where to move the images: another class or another split.'),
    N_('to_split must be train, validation or test. Received: {to_split}'),
    N_('Moving to another split needs train/validation/test folders; in this dataset (one folder per class) the split comes from each file.'),
    N_('{rel} is not inside a split and class folder.'),
    N_('{rel} is not inside a class folder.'),
    N_('{path} is in the trash; use Undo to bring it back.'),
    N_('No such image in the dataset: {rel}'),
    N_('{path} is not inside the dataset {root}.'),
    N_('Dataset folder not found: {root}'),
    N_("{root} is not in the studio's datasets folder ({datasets_dir}), so it is read-only here. Import a copy (tlcore import FOLDER) and edit the copy."),
    # tlcore/data/importer.py
    N_('filename must end in .zip. Received: filename={filename}'),
    N_('files is empty: no files were uploaded; give a folder of class folders.'),
    N_('{archive} unpacks to more than the limit of {human} (MAX_TOTAL_BYTES); it looks like a zip bomb. Unpack it yourself if you trust it, then import the folder.'),
    N_('{filename} in {archive} unpacks to more than its declared {human}; it looks like a zip bomb. Unpack it yourself if you trust it, then import the folder.'),
    N_('{src_name} holds {len} files, above the limit of {MAX_FILES} (MAX_FILES); it looks like a zip bomb. Unpack it yourself if you trust it, then import the folder.'),
    N_('{src_name} unpacks to {human}, above the limit of {human3} (MAX_TOTAL_BYTES); it looks like a zip bomb. Unpack it yourself if you trust it, then import the folder.'),
    N_('{filename} in {src_name} is compressed {ratio} to 1, above the limit of {MAX_RATIO} (MAX_RATIO); it looks like a zip bomb. Unpack it yourself if you trust it, then import the folder.'),
    N_('Not enough free disk space: the dataset needs {human} but only {human2} is free in {folder}. Free some space or use another --datasets-dir.'),
    N_('Nothing to import: {src} does not exist. Give the path of a .zip file or of a folder of class folders.'),
    N_('{src} is neither a folder nor a .zip file. Give a folder of class folders, or a .zip of one.'),
    N_("{src} contains the datasets folder {parent}, so it cannot be imported into it. Give the dataset's own folder."),
    N_('{src} is not a valid zip file (damaged or not fully downloaded). Download or create it again.'),
    N_('Cannot write in the datasets folder {parent}: {exc}. Check its permissions or use another --datasets-dir.'),
    N_('{src} is damaged and cannot be unpacked ({exc}). Download or create the zip again.'),
    N_('Could not import {src}: {exc}. Check free disk space and write permission in {parent}.'),
    N_('Nothing was imported from {src}: {reason}'),
    # tlcore/data/mapped.py
    N_('{path} could no longer be read ({exc}); it was readable when the run started. Restore the file or remove it and start again.'),
    N_('The cache file {path} is shorter than its header says; clear the cache (`tlcore cache --clear`) and start again.'),
    # tlcore/data/pipeline.py
    N_('{option} must be auto or none. Received: {mode}'),
    N_('A classifier needs at least 2 classes with images; {root} has {len} ({value}). Add a folder of images per class.'),
    N_('{option} plus {option:test_split} must leave images to train on. Received: {val_split} + {test_split}'),
    N_('{option} must be at least 0 and below 1. Received: {value}'),
    N_("{split_dirs} has no class folders. Put each class's images in train/<class>/."),
    N_("{root} has no class folders. Put each class's images in its own sub-folder (DATA/cats/, DATA/dogs/), or use DATA/train/<class>/ and DATA/validation/<class>/."),
    N_('Dataset folder not found: {root}. Give a folder with one sub-folder per class, or with train/ and validation/ folders.'),
    N_('The dataset must be a folder, not a file: {root}. Use `tlcore import` for a .zip.'),
    # tlcore/evaluation/audit.py
    N_('Give the dataset folder to audit.'),
    N_('No readable images in the dataset; see `tlcore scan`.'),
    N_("Every class needs at least 2 images for the audit's cross-validation; counts per class: {tolist}."),
    # tlcore/evaluation/calibrate.py
    N_('Run {run_id} has no finished model.keras to calibrate.'),
    N_('Run {run_id} is an ensemble: calibrate its member runs, then build the ensemble again (`tlcore ensemble`).'),
    N_('Temperature scaling needs validation images; this dataset has too few.'),
    # tlcore/evaluation/evaluate.py
    N_("The dataset's classes {classes} differ from the model's {labels}."),
    N_('The dataset has no {chosen} images to evaluate on.'),
    N_('The run does not record its dataset; give one with {option}.'),
    # tlcore/evaluation/explain.py
    N_('{option} must be a .png file. Received: {out}'),
    N_('The folder {parent} does not exist; create it first.'),
    N_('No such image: {image}'),
    N_("{option} {label} is not one of the model's classes: {labels}"),
    N_('Cannot read the image: {exc}'),
    N_("Grad-CAM needs spatial features: this run's cut ends after pooling. Cut at a convolutional block instead."),
    N_('This model was not built by the studio (no backbone/head parts); Grad-CAM needs a studio run.'),
    # tlcore/evaluation/probe.py
    N_('Give the dataset folder to probe.'),
    N_('The dataset has no validation images: the probe scores on validation. Give {option} above 0 or a validation/ folder.'),
    N_('{option} found no clean cut point in the backbone to probe.'),
    N_('No readable images in the train or validation split; see `tlcore scan`.'),
    N_('The train split needs images of at least 2 classes to fit a probe.'),
    # tlcore/evaluation/stats.py
    N_('{option} must score the same {len} images as a_correct. Received: {len2}'),
    N_('{option} must be a whole number of 0 or more. Received: {n}'),
    N_('{option} must be a whole number from 0 to n={n}. Received: {correct}'),
    # tlcore/live/prototype.py
    N_('Record frames of at least two classes first.'),
    N_("Run {run_id}'s model was not built by the studio (no backbone part); choose another run."),
    # tlcore/recipe/config.py
    N_('{option} must be a whole number from 0 to {value}. Received: {seed}'),
    N_('Give exactly one of {option} NAME or {option:backbone_file} PATH.'),
    N_('Nothing to train: {option} and {option:fine_tune_epochs} are both 0.'),
    N_('{option} must be a whole number from 1 to 4096. Received: {batch_size}'),
    N_('{option} not found: {backbone_file}'),
    N_('{option} must be imagenet, none, or a weights file. File not found: {weights}'),
    N_('{option} must be a whole number, 0 or more. Received: {warmup_epochs}'),
    N_('Give the dataset folder (DATA).'),
    N_('{option} must be a positive number below 10. Received: {value}'),
    N_('{option} must be from 0 (off) to 10. Received: {value}'),
    N_('Unknown training option(s): {unknown}.'),
    N_('{option} patterns must be non-empty text. Received: {pattern}'),
    N_('{option} pattern {pattern} is not a valid regular expression: {exc}'),
    N_('{option} holds at most {MAX_DENSE_LAYERS} layers. Received: {len}'),
    N_('{option} units must be whole numbers from 1 to {MAX_DENSE_UNITS}. Received: {value}'),
    N_('{option} {config_file}: not a readable config.json.'),
    # tlcore/recipe/plan.py
    N_('{option} pattern {pattern} matches {what} of the backbone.{hint}'),
    N_('{option} must be at least 2 for a classifier. Received: {num_classes}'),
    # tlcore/recipe/presets.py
    N_('Unknown preset {name}.{did_you_mean} Choose one of: {PRESETS}.'),
    # tlcore/recipe/surgery.py
    N_('A classifier needs at least 2 classes. Received: {num_classes}'),
    N_('Unknown preprocessing {mode}: expected caffe, tf, torch or none.'),
    # tlcore/run.py
    N_('{option} must name at least one image. Received: []'),
    N_('{option} must be a whole number, 1 or more. Received: {top_k}'),
    N_('{option} must be a path, image bytes, an RGB array or a PIL image. Received: {__name__}'),
    N_('{option} arrays must be [height, width, 3] RGB (0-255). Received shape {shape}'),
    N_('{option} must be image paths, bytes or arrays. Received: {__name__}'),
    # tlcore/search/auto.py
    N_("{option} no auto mode's folder at {folder}"),
    N_('Auto mode did not start within two minutes; see its log under TLCORE_HOME/logs.'),
    N_('Auto mode did not start: {spawn_error}'),
    N_('Auto mode needs training images of at least 2 classes; see `tlcore scan`.'),
    N_('Auto mode scored no trial: {value}'),
    # tlcore/search/autoplan.py
    N_('{option} must be at least {MIN_BUDGET} seconds. Received: {value}'),
    N_('{option} must be seconds, or a number with m (minutes) or h (hours), e.g. 600, 10m, 1.5h. Received: {value}'),
    # tlcore/search/record.py
    N_('No search at {ref}: give a search id or its folder (TLCORE_HOME/searches/ID).'),
    # tlcore/search/space.py
    N_('{option} must be at least 1. Received: {trials}'),
    N_('{option} needs lists of choices; {ranges} is a range. Give a list, or search at random with --trials.'),
    N_('{option} would run {len} points; keep a grid under 500.'),
    N_('{option} must be a JSON object of option name to choices, e.g. {{"lr": [0.001, 0.0003], "dropout": {{"min": 0.1, "max": 0.5}}}}.'),
    N_('{option} must be a JSON file or a JSON object. No file at {path}.'),
    N_('{option} names an option that train does not have: {name}.{hint}'),
    N_('{option} could not be read as JSON ({path}): {exc}'),
    N_('{option} gives no choice for {name}: list at least one value.'),
    N_('{option} {name} must map to a list of choices or a range object. Received: {spec}'),
    N_('{option} is not valid JSON: {exc}'),
    N_('{option} range for {name} needs numbers min < max (and optional "log", "int"). Received: {spec}'),
    N_('{option} {name} is not a number option; list its choices instead.'),
    N_('{option} a log range for {name} needs min > 0. Received: {lo}'),
    # tlcore/search/tune.py
    N_('The search did not start within two minutes; see its log under TLCORE_HOME/logs.'),
    N_('The search did not start: {spawn_error}'),
    N_("--resume {search_dir}: no search.json there. Give a search's folder (TLCORE_HOME/searches/ID) or its id."),
    N_('The search {record} is still running (pid {record2}); stop it first (`tlcore stop SEARCH_DIR`) or wait for it.'),
    N_("{template} (in the space's point {point})"),
    N_('A search needs the dataset and the runs folder on storage every node can read and write (a shared file system mounted at the same path): {lines}.'),
    N_('Trial {run_id} failed: {reason}.'),
    # tlcore/ship/batching.py
    N_('{option} must be above 0. Received: {per_second}'),
    N_('{option} must be 0 or more seconds. Received: {wait}'),
    # tlcore/ship/bundle.py
    N_('{path} is not a .zip bundle (make one with `tlcore export RUN --format bundle`).'),
    N_('{path_name} holds no model.keras and labels.txt: export the bundle with --include keras (the default includes it).'),
    # tlcore/ship/codegen.py
    N_("{option} code writes runs on a catalog backbone or a .keras/.h5 model file; this run's backbone is a SavedModel folder ({path_name}), which plain Keras wraps as a frozen TFSMLayer it cannot cut. Export the model instead ({option} savedmodel or tflite)."),
    N_("The run's backbone file {path} is gone: the script is written from its layers (the cut, what trains in stage 2). Put the file back at that path and export again."),
    N_('The backbone file {path} changed since the run (its SHA-256 differs from the one in config.json), so a script written from it would not rebuild this run. Put back the file the run started from and export again.'),
    N_("Run {run_id} is an ensemble of other runs, not one training: export the script of a member run (config.json's ensemble.members) instead."),
    N_('Run {run_id} has no config.json options to write as code.'),
    # tlcore/ship/export.py
    N_("{option} and {option:io} apply to {option:format} tflite (or a bundle's TFLite) only."),
    N_('{option} applies to {option:format} bundle only.'),
    N_('A {fmt} export must end in {suffix}. Received: {out}'),
    N_('{out} exists and is not an empty folder; choose a new folder for the SavedModel.'),
    N_('{option} must be a comma-separated list of {MODEL_FORMATS}. Received: {include}'),
    N_('ONNX export failed: {splitlines}'),
    N_('{option} {data}: no readable images there.'),
    # tlcore/ship/imagenet.py
    N_('{option} must be 1 or more. Received: {top_k}'),
    N_('No images found in what was given.'),
    N_("The untouched ImageNet model needs pretrained weights, but there are no pretrained weights chosen (weights={weights}). Pass weights='imagenet', or a weights file saved with the top (include_top=True)."),
    # tlcore/ship/limits.py
    N_('{option} and a token ({option:token}) were both given: give only one'),
    N_('{option} {path} is empty: write the token in it'),
    N_('{option} must not be empty'),
    N_('{option} cannot be read ({path}): {reason}. Give a file holding the token.'),
    # tlcore/ship/predict.py
    N_('Run {run_id} has no model yet (state {state}): wait until its first epoch ends, or train it again.'),
    N_('Run {run_id} has no labels.json.'),
    N_('{option} must be 1 or more (1 keeps every frame). Received: {every}'),
    N_('No such image or folder: {p}'),
    N_('Model file not found: {path}'),
    N_('Cannot load the model {path}: {splitlines}'),
    # tlcore/ship/serve.py
    N_("{source}: {len} labels do not fit the model's outputs."),
    N_('{option} must be from 0 to 65535. Received: {port}'),
    N_('Cannot listen on {host}:{port}: {value}. Choose another --port (0 takes any free one).'),
    N_('{option} must not be above server_pixels ({server_pixels}). Received: {request_pixels}'),
    # tlcore/ship/smooth.py
    N_('{option} must be a time constant in seconds, above 0 (e.g. 0.3). Received: {seconds}'),
    # tlcore/ship/tflite.py
    N_('TFLite conversion failed ({quantize}): {splitlines}'),
    N_("Full-integer quantization ({option} {quantize}) needs representative images: the run's training images are not there. Pass {option:data} FOLDER with images like the ones the model will see."),
    N_('{option} int8/uint8 (integer input and output) needs full-integer quantization ({option:quantize} int8; int8-mixed keeps float32 input and output). Received: io={io} with quantize={quantize}'),
    # tlcore/ship/video.py
    N_('No frames to write.'),
    N_('The video {name} has no frames to classify.'),
    N_('Cannot read the video {name}: {exc}. Give a .mp4, .mov, .avi, .mkv or .webm file that a video player opens.'),
    N_('{name} has no video stream.'),
    N_('The video {name} is damaged after its first frames: {exc}'),
    N_('Reading videos needs PyAV: pip install av'),
    # tlcore/training/device.py
    N_("TF_CONFIG is not valid JSON; see the README's 'More than one machine'."),
    # tlcore/training/ensemble.py
    N_('An ensemble averages 2 runs or more; {len} given.'),
    N_('The same run is named twice: every member of an ensemble must be another run.'),
    N_('Run {run_id} is {state}; an ensemble takes completed runs only.'),
    N_('Run {run_id} holds out other test images than run {run_id2} (a folder per class is split by the seed): one member may have trained on images the ensemble is tested on. Ensemble runs of a dataset with a test/ folder.'),
    N_('Run {run_id} has {what} {mine}, run {run_id4} {theirs}: the members of an ensemble read the same images the same way. Pick runs trained with the same classes, input size and resize mode.'),
    # tlcore/training/jobs.py
    N_('Run {run_id} is still {state}.'),
    N_('Run {run_id} has no checkpoint to resume from.'),
    N_('Resuming failed: {value}'),
    N_('A run named {run_id} exists already in {root}. Choose another run_id.'),
    N_('Training did not start within a minute; see the log under TLCORE_HOME/logs.'),
    N_('Training did not start: {tail}'),
    # tlcore/training/lrfind.py
    N_('The loss was not finite even at the smallest rate; check the data.'),
    N_('{option} must be 1 or 2. Received: {stage}'),
    N_('Need 0 < {option} < {option:max_lr} <= 10. Received: {min_lr}, {max_lr}'),
    N_('{option} must be from 10 to 1000. Received: {steps}'),
    N_('No training images could be read.'),
    # tlcore/training/seeds.py
    N_('{option} over {option:seeds} needs a dataset with train/ and test/ folders: on a folder per class the seed also draws the split, so every run would hold out other test images, some of which another run trained on. Split the dataset into train/, validation/ and test/ folders first.'),
    N_('{option} must be a whole number of 1 or more. Received: {seeds}'),
    N_('{option} must be 2 or more (the runs it averages). Received: {ensemble}'),
    N_('{option} {ensemble} averages the best {ensemble2} runs, but {option:seeds} {seeds} trains only {seeds4}: give {option:seeds} {ensemble5} or more.'),
    # tlcore/training/steps.py
    N_('No training images could be read; see `tlcore scan` for the reasons.'),
    N_("The dataset's classes changed since the run started ({saved} -> {classes}); it cannot be resumed."),
    # tlcore/training/train.py
    N_('{resume} has no config.json to resume from.'),
    N_('Run {run_id} is still {status}; it cannot be resumed twice.'),
    N_('Run {run_id} has no checkpoint to resume from; start it again instead.'),
    # tlcore/training/twin.py
    N_('{option} needs a catalog backbone: a backbone file ({option:backbone_file}) keeps its own weights, so there is no from-scratch twin to train.'),
    N_('{option}: the weights are none already, so this run trains from scratch itself. Give {option:weights} imagenet or a weights file.'),
    # tlcore/data/images.py: why an image cannot be read (ImageProblem)
    N_("empty file"),
    N_("not an image (Pillow cannot identify it)"),
    N_("image too large: above the limit of {limit} pixels"),
    N_("cannot open: {reason}"),
    N_("cannot decode: not enough memory for this image"),
    N_("cannot decode: {reason}"),
    N_("an image array must be uint8 [height, width] or [height, width, 3 or 4]. Received: dtype {dtype}, shape {shape}"),
    N_("cannot decode: floating-point pixels that are not finite numbers"),
    N_("image too large: {width}x{height} pixels is above the limit of {limit}"),
    N_("image has no pixels ({width}x{height})"),
    N_("image too large: {reason}"),
    N_("image too large: metadata decompresses beyond Pillow's limit"),
    N_("cannot open: not enough memory for this image"),
    N_("truncated image file"),
    # tlcore/ship/limits.py
    N_("cannot decode: the decoding process stopped (out of memory?)"),
    # tlcore.data.pipeline and importer: why a file of a dataset was skipped (a problem's reason)
    N_("path leads outside the folder, refused"),
    N_("path leads outside the folder, skipped"),
    N_("another file or folder has the same name, skipped"),
    N_("symbolic link, skipped"),
    N_("special file (device, pipe or socket), skipped"),
    N_("archive inside the folder, not expanded"),
    N_("archive inside the dataset, not expanded"),
    N_("file outside any class folder, skipped"),
    N_("folder is not train, validation or test, skipped"),
    N_("class not in train/, skipped"),
    N_("not an image file (extension {extension})"),
    # tlcore.data.pipeline: warnings about a dataset (`Dataset.warnings`, the Data page shows them)
    N_("No validation/ folder: 20% of train/ is held out for validation."),
    N_("Class {name} has no usable images."),
    N_("Class {name} has only {count} training images; aim for at least {least}."),
    N_("Class {name} has no validation images."),
    N_("Classes are imbalanced (largest {largest} vs smallest {smallest} training images); class weights "
       "(--class-weights auto) compensate."),
    N_("{leaks} image(s) appear in more than one split (identical files): validation and test scores will look "
       "better than they are."),
]

TEMPLATES += [  # the linear probe (tlcore.training.headfit, head_fit in tlcore.recipe.config)
    N_("{option} logistic fits the head's one output layer on the frozen backbone in stage 1: it needs "
       "{option:head_epochs} of at least 1 and no hidden dense layers ({option:dense}). Received: head_epochs "
       "{head_epochs}, dense {list}."),
    N_("{option} {head_fit} runs on one machine: it fits on every training image at once. Train it without a cluster "
       "(TF_CONFIG), or with head_fit epochs."),
    N_("The linear probe (head_fit logistic) needs training images of at least 2 classes; this dataset's training "
       "split has {len}."),
    N_("{option} pixels fits a model of the raw pixels in one step, without the backbone: it needs {option:head_epochs} "
       "of at least 1 and {option:fine_tune_epochs} 0 (nothing to fine-tune). Received: head_epochs {head_epochs}, "
       "fine_tune_epochs {fine_tune_epochs}."),
    N_("A pixel model (head_fit pixels) reads the raw pixels, with no backbone: it has no feature maps, so Grad-CAM "
       "has nothing to show for it."),
    N_("Run {run_id}'s head was fitted by scikit-learn (head_fit {head_fit}), which the script, Keras alone, does not "
       "do: export its model instead (--format onnx, savedmodel, tflite or bundle)."),
]

# Pieces the engine puts into the sentences above (a hint, a unit, a kind of thing); `say` words them too.
PIECES = [
    N_(" Did you mean {names}?"),
    N_(" Did you mean {first} or {second}?"),
    N_(" Did you mean {first} or {second} or {third}?"),
    N_(" Did you mean: {names}?"),
    N_(" Closest layers: {names}."),
    N_(" Run `tlcore layers` to list them."),
    N_("no weight path of any layer"),
    N_("no layer name or path"),
    N_("class"),
    N_("dataset"),
    N_("file"),
    N_("folder"),
    N_("file or folder"),
    N_("classes"),
    N_("input size"),
    N_("resize mode"),
    N_("see its log."),
    N_("queued"), N_("running"), N_("completed"), N_("failed"), N_("stopped"), N_("interrupted"),
]
