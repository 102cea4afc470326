"""The words the pages show: number formats, run labels, progress sentences, table columns.

Pure functions from plain values to strings (no Streamlit), so they are tested without a browser.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from studio import engine_words
from studio.i18n import N_, _, ngettext, particles
from tlcore.core.errors import TLCoreError

DEMO_TEXT = N_("Four classes of shapes (circle, square, triangle, star) drawn on textured backgrounds, "
             "150 images each, split 70/15/15: made on this machine in a few seconds, no download.")


# --- user-given names in Markdown --------------------------------------------------

_SPECIAL = re.compile(r"([\\`*{}\[\]()<>!&~$|:]"  # inline Markdown, HTML, entities, directives, LaTeX
                      r"|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")  # an underscore that could open or close emphasis
_LINE_START = re.compile(r"^([#>+=-]|\d+[.)])")  # a heading, quote, list or rule when a line starts with it
_AUTOLINK = re.compile(r"(\\:(?=//)|www(?=\.)|@)", re.IGNORECASE)  # GFM's bare links: ://, www., a@b
_WORD_JOINER = "\u2060"  # invisible; between "http:" and "//" it keeps a bare address from becoming a link


def md(value: object, lines: bool = False) -> str:
    r"""A user-given name (class, run, file, dataset) as Markdown that shows exactly that name.

    Every character that Markdown, HTML or Streamlit could read as markup (emphasis, links, images,
    tags, entities, ``:directives:``, LaTeX, a heading or list at the start) gets a backslash
    (CommonMark's escape); a line break becomes a space; an invisible word joiner keeps a bare
    address (``http://``, ``www.``, ``a@b``) from becoming a link. Letters, digits, ``.``, ``-`` and
    an underscore inside a word are left alone, so ``20261204-101500-mobilenetv2-1a2b`` and
    ``red_0.png`` read the same in the page's source. The one helper for every ``st.markdown``,
    ``st.caption``, alert, label and title that shows a name; plain-text places (select box options,
    image captions, tables, charts) take the name as it is. With `lines`, a message keeps its line
    breaks.

    >>> print(md("**bold** ![t](y.png) <b>"))
    \*\*bold\*\* \!\[t\]\(y.png\) \<b\>
    """
    if lines:  # a message of several lines keeps its line breaks
        return "  \n".join(md(line) for line in str(value).splitlines())
    shown = " ".join(str(value).split())
    escaped = _LINE_START.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], _SPECIAL.sub(r"\\\1", shown))
    return _AUTOLINK.sub(lambda m: m.group(1) + _WORD_JOINER, escaped)


def code(value: object) -> str:
    """A user-given path or name as a Markdown code span that shows it exactly (backticks inside too)."""
    shown = " ".join(str(value).split())
    longest = max((len(run) for run in re.findall(r"`+", shown)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


# --- numbers -----------------------------------------------------------------------

def format_count(n: int | None) -> str:
    """1838275 -> '1,838,275'."""
    return "—" if n is None else f"{int(n):,}"


def format_bytes(n: int | float | None) -> str:
    """Bytes in KB, MB or GB (powers of 1024)."""
    if n is None:
        return "—"
    n = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def format_seconds(seconds: float | None) -> str:
    """42 -> '42 s', 130 -> '2 min 10 s', 4000 -> '1 h 7 min'."""
    if seconds is None:
        return "—"
    s = int(round(max(0.0, float(seconds))))
    if s < 60:
        return _("{s} s").format(s=s)
    if s < 3600:
        return _("{m} min {s:02d} s").format(m=s // 60, s=s % 60)
    return _("{h} h {m:02d} min").format(h=s // 3600, m=(s % 3600) // 60)


def format_percent(x: float | None) -> str:
    return "—" if x is None else f"{100 * float(x):.1f}%"


def interval_words(interval: Sequence[float] | None, n: int | None) -> str:
    """`95% interval 65.5–92.7% · n = 18`: an accuracy's Wilson interval and its images, or "" without one."""
    if not interval:
        return ""
    return _("95% interval {low:.1f}–{high:.1f}%").format(low=100 * interval[0], high=100 * interval[1]) + (
        f" · n = {n}" if n else "")


def accuracy_words(accuracy: float | None, interval: Sequence[float] | None, n: int | None) -> str:
    """`83.3% (95% interval 65.5–92.7% · n = 18)`, or the bare percentage without an interval."""
    words = interval_words(interval, n)
    return format_percent(accuracy) + (f" ({words})" if words and accuracy is not None else "")


INTERVAL_HELP = N_("The 95% Wilson interval: with this many images, the accuracy on new images like these "
                 "lies in this range 19 times in 20. Fewer images make it wider.")


def baseline_rows(model_accuracy: float | None, model_interval, n: int | None, baselines: Sequence[dict]) -> list[dict]:
    """The Evaluate page's table: the model, then each baseline, on the same test images."""
    model, accuracy, interval, prefix = _("model"), _("test accuracy"), _("95% interval"), _("95% interval ")
    rows = [{model: _("This model"), accuracy: format_percent(model_accuracy),
             interval: interval_words(model_interval, n).removeprefix(prefix) or "—"}]
    for b in baselines:
        rows.append({model: baseline_name(b), accuracy: format_percent(b.get("test_accuracy")),
                     interval: interval_words(b.get("test_accuracy_interval"), b.get("test_count"))
                     .removeprefix(prefix) or "—"})
    return rows


def baseline_name(baseline: dict) -> str:
    """`Baseline: SVM (RBF) on raw pixels, …`, saying when the features came from the fine-tuned backbone."""
    if baseline.get("features") == "fine-tuned":
        return _("Baseline: {name} (of the fine-tuned backbone)").format(name=engine_words.say(baseline.get("name")))
    return _("Baseline: {name}").format(name=engine_words.say(baseline.get("name")))


def baselines_beat_words(names: Sequence[str]) -> str:
    """The Evaluate page's warning when baselines beat the model (`tlcore.evaluation.baselines.beats_model`)."""
    which = _(" and ").join(engine_words.say(name) for name in names)
    return ngettext("A simple baseline beats the model: {which} scored above the upper end of the model's 95% interval "
                    "on the same test images. The network adds nothing here yet: try other options (more epochs, "
                    "another learning rate or cut), or use the simpler model.",
                    "Simple baselines beat the model: {which} scored above the upper end of the model's 95% interval "
                    "on the same test images. The network adds nothing here yet: try other options (more epochs, "
                    "another learning rate or cut), or use the simpler model.", len(names)).format(which=which)


def spread_words(group: dict, key: str) -> str:
    """`83.3% ± 4.2 points (min 79.2%, max 87.5%)`: a mean over seeds (`tlcore.evaluation.stats.over_seeds`)
    with its standard deviation and range, or "—"."""
    mean = group.get(f"{key}_mean")
    if mean is None:
        return "—"
    return _("{mean} ± {std:.1f} points (min {low}, max {high})").format(
        mean=format_percent(mean), std=100 * group[f"{key}_std"], low=format_percent(group[f"{key}_min"]),
        high=format_percent(group[f"{key}_max"]))


def seed_group_words(group: dict) -> str:
    """The Runs page's line for a group trained with `--seeds N`."""
    seeds = [s for s in group.get("seeds") or [] if s is not None]
    which = (_("seeds {first}–{last}").format(first=min(seeds), last=max(seeds)) if len(seeds) > 1
             else _("seed {seed}").format(seed=seeds[0]) if seeds else _("seeds"))
    return _("**{n} runs, {which}** · test accuracy {test} · validation accuracy {val}").format(
        n=group["n"], which=which, test=spread_words(group, "test_accuracy"), val=spread_words(group, "val_accuracy"))


def mcnemar_words(result: dict, a: str, b: str) -> str:
    """What the exact McNemar test (`tlcore.evaluation.stats.compare_predictions`) says of runs a and b."""
    if not result.get("same_images"):
        return _("**{a}** and **{b}** were scored on different test images, so their accuracies cannot be "
                 "compared image by image. Evaluate both on the same dataset and split.").format(a=a, b=b)
    p = result["p_value"]
    counts = ngettext("{a_only} image only {a} got right, {b_only} only {b}; exact McNemar p = {p:.3g}, n = {n}",
                      "{a_only} images only {a} got right, {b_only} only {b}; exact McNemar p = {p:.3g}, n = {n}",
                      result["a_only"]).format(a_only=result["a_only"], a=a, b_only=result["b_only"], b=b, p=p,
                                               n=result["n"])
    if result["a_only"] + result["b_only"] == 0:
        return _("**{a}** and **{b}** are right and wrong on exactly the same {n} test images.").format(
            a=a, b=b, n=result["n"])
    if result["significant"]:
        better = a if result["a_only"] > result["b_only"] else b
        return _("**{better}** is significantly more accurate on the same test images ({counts}).").format(
            better=better, counts=counts)
    return _("**{a}** and **{b}** do not differ significantly on the same test images ({counts}).").format(
        a=a, b=b, counts=counts)


def parse_dense(text: str | Sequence[int] | None) -> tuple[int, ...]:
    """Hidden dense layer sizes from text such as ``"1024, 256"`` (empty means none), checked by
    the engine (`tlcore.recipe.config.check_dense`: its limits, its words).

    Raises:
        TLCoreError: anything that is not a list of whole numbers the engine accepts.
    """
    from tlcore.recipe.config import check_dense

    if text is None:
        return ()
    values = list(text) if not isinstance(text, str) else [p for p in re.split(r"[\s,;]+", text.strip()) if p]
    out = []
    for v in values:
        try:
            out.append(int(str(v)))
        except ValueError:
            raise TLCoreError(_("Dense layer sizes must be whole numbers separated by commas, "
                                "such as 1024, 256. Received: {text!r}").format(text=text)) from None
    return check_dense(out)


def upload_limit(limit_bytes: int) -> str:
    """The Data page's note on how much one session may upload (`studio.access.upload_limit_bytes`)."""
    return _("Up to {size} in all per session (the server's `server.maxUploadSize`); "
             "a larger dataset: copy it to the server and open it as a folder there.").format(
        size=format_bytes(limit_bytes))


# --- the catalog -------------------------------------------------------------------

def catalog_rows(times: dict | None = None) -> list[dict]:
    """The backbone catalog as rows of the Keras Applications table (one dict per backbone), with
    "ms/image here" from `times` (`latency.known()`: batch 1 and batch 32, None until measured).

    Accuracies are in percent; missing figures stay None (Keras publishes none).
    """
    from tlcore.backbones.catalog import CATALOG

    times = times or {}

    rows = []
    for b in CATALOG.values():
        rows.append({
            "Model": b.name,
            "ms/image here": times.get(b.name, {}).get("ms_batch1"),
            "ms/image at batch 32": times.get(b.name, {}).get("ms_batch32"),
            "Size (MB)": b.size_mb,
            "Top-1 accuracy": None if b.top1 is None else round(b.top1 * 100, 1),
            "Top-5 accuracy": None if b.top5 is None else round(b.top5 * 100, 1),
            "Parameters (M)": None if b.params is None else round(b.params / 1e6, 1),
            "Depth": b.depth,
            "Input size": b.default_input_size,
            "Min input": b.min_input_size,
            "Preprocessing": b.preprocessing,
        })
    return rows


def describe_backbone(backbone: str | None, input_size: int | None, weights: str | None,
                      cut: str | None = None, backbone_file: str | None = None) -> str:
    """'MobileNetV2 · 224 px · ImageNet weights' (or 'clf.keras · your own model')."""
    from tlcore.backbones.catalog import CATALOG

    if backbone_file:
        return _("{name} · your own model").format(name=Path(str(backbone_file)).name)
    size = input_size or (CATALOG[backbone].default_input_size if backbone in CATALOG else "?")
    shown = {"imagenet": _("ImageNet weights"), "none": _("no pretraining"), None: _("no pretraining")}.get(
        weights) or _("weights {name}").format(name=Path(str(weights)).name)
    return f"{backbone} · {size} px · {shown}" + (_(" · cut at {cut}").format(cut=cut) if cut else "")


# --- runs --------------------------------------------------------------------------

def display_name(name: str | None) -> str:
    """A run's name for people: a sweep's tag ``sweep:ID:CUT:UNFREEZE`` reads as words."""
    parts = str(name or "").split(":")
    if len(parts) == 4 and parts[0] == "sweep":
        return _("sweep {sweep}: cut {cut}, unfreeze {unfreeze}").format(sweep=parts[1], cut=parts[2], unfreeze=parts[3])
    return str(name or "")


def run_label(run) -> str:
    """A short human label of a `tlcore.core.runs.Run`: id, optional name, state."""
    summary = run.summary()
    name = f" ({display_name(summary['name'])})" if summary.get("name") else ""
    return f"{run.run_id}{name} · {state_word(summary['state'])}"


SPLIT_WORDS = {"train": N_("train"), "validation": N_("validation"), "test": N_("test")}  # a split's name as shown


STATE_WORDS = {"queued": N_("queued"), "running": N_("running"), "completed": N_("completed"), "failed": N_("failed"),
               "stopped": N_("stopped"), "interrupted": N_("interrupted")}


def state_word(run_state: str | None) -> str:
    """A run's state (status.json's ``state``) as the page says it."""
    return str(STATE_WORDS.get(run_state, run_state))


def epoch_progress(status: dict, metrics: Sequence[dict], seen: dict | None = None,
                   now: float | None = None) -> tuple[dict, dict]:
    """Progress inside the current epoch, the time left, and the sentence that says so.

    The numbers come from `tlcore.core.runs.progress_estimate` (same arguments).

    Returns:
        ``({fraction, text, epoch_seconds_left, run_seconds_left}, seen)``.
    """
    from tlcore.core.runs import progress_estimate

    numbers, seen = progress_estimate(status, list(metrics), seen, now)
    stage, epoch = status.get("stage"), int(status.get("epoch") or 0)
    epochs_total = int(status.get("epochs_total") or 0)
    batch, batches = int(status.get("batch") or 0), status.get("batches_total")
    epoch_left, run_left = numbers["epoch_seconds_left"], numbers["run_seconds_left"]
    parts = []
    if stage in (1, 2):
        parts.append(_("Stage 1 · training the head") if stage == 1 else _("Stage 2 · fine-tuning"))
    elif stage == "evaluate":
        parts.append(_("Scoring the test images"))
    if epoch and stage in (1, 2):
        parts.append(_("epoch {epoch}/{total}").format(epoch=epoch, total=epochs_total) if epochs_total
                     else _("epoch {epoch}").format(epoch=epoch))
    if batches and stage in (1, 2):
        parts.append(_("batch {batch}/{total}").format(batch=batch, total=batches))
    if epoch_left is not None and stage in (1, 2):
        parts.append(_("about {time} left in this epoch").format(time=format_seconds(epoch_left)))
    stage_left = numbers.get("stage_seconds_left")
    if run_left is not None and stage in (1, 2) and epochs_total > epoch:
        parts.append(_("{time} for the run").format(time=format_seconds(run_left)))
    elif stage_left is not None and stage == 1:
        parts.append(_("{time} for stage 1, then stage 2 (timed once it starts)").format(time=format_seconds(stage_left)))
    text = " · ".join(parts) or _("Preparing: reading the images and building the model")
    return {**numbers, "text": text}, seen


# --- Grad-CAM ----------------------------------------------------------------------

def gradcam_note(cam: dict) -> str | None:
    """Why a Grad-CAM map says nothing about *where* (None when it does)."""
    if not cam.get("flat"):
        return None
    h, w = (cam.get("shape") or (0, 0))[:2]
    if h * w <= 1:
        return _("No Grad-CAM map: the features at this run's cut are {h} × {w}, so they hold no 'where'. "
                 "A larger input size or an earlier cut gives a map.").format(h=h, w=w)
    return _("No Grad-CAM map: no feature at the cut speaks for this label (the map is flat).")


# What the pages call the engine's options, for its errors (the engine names the argument).
OPTION_WORDS = {
    "cut": N_("The cut"), "unfreeze_from": N_("The unfreeze point"), "unfreeze": N_("“Also train in stage 2”"),
    "freeze": N_("“Keep frozen in stage 2”"), "input_size": N_("The input size"), "weights": N_("The weights"),
    "head_epochs": N_("Head epochs"), "head_fit": N_("Head fitted by"), "fine_tune_epochs": N_("Fine-tuning epochs"), "lr": N_("The learning rate"),
    "fine_tune_lr": N_("The fine-tuning learning rate"), "batch_size": N_("The batch size"), "dropout": N_("Dropout"),
    "dense": N_("Dense layer"), "val_split": N_("The validation share"), "test_split": N_("The test share"),
    "seed": N_("The seed"), "early_stopping": N_("Early stopping patience"), "rotation": N_("Rotation"), "zoom": N_("Zoom"),
    "shift": N_("Shift"), "shear": N_("Shear"), "contrast": N_("Contrast"), "flip": N_("Flip"), "augment": N_("Augmentation"),
    "data": N_("The dataset"), "backbone": N_("The backbone"), "backbone_file": N_("The model file"),
    "optimizer": N_("The optimizer"), "weight_decay": N_("Weight decay"), "schedule": N_("The learning-rate schedule"),
    "warmup_epochs": N_("Warm-up epochs"), "label_smoothing": N_("Label smoothing"), "pooling": N_("Pooling"),
    "mixup": N_("MixUp alpha"), "cutmix": N_("CutMix alpha"), "train_bn": N_("“Train BatchNorm layers in stage 2”"),
    "class_weights": N_("Class weights"), "feature_cache": N_("The feature cache"), "mixed_precision": N_("Mixed precision"),
    "xla": N_("XLA compilation"), "deterministic": N_("Determinism"), "resize": N_("“Resize images by”"), "name": N_("The run label"),
    "preset": N_("The preset"), "preprocessing": N_("Preprocessing"),
    # options of auto mode, seeds, search, predict and export; their English is the name as it reads
    "seeds": N_("Seeds"), "ensemble": N_("Ensemble"), "budget": N_("Budget"), "auto": N_("Auto"),
    "twin_from_scratch": N_("Twin from scratch"), "top_k": N_("Top k"), "every": N_("Every"), "tta": N_("Tta"),
    "format": N_("Format"), "quantize": N_("Quantize"), "io": N_("Io"), "include": N_("Include"), "space": N_("Space"),
    "grid": N_("Grid"), "trials": N_("Trials"), "metric": N_("Metric"), "scheduler": N_("Scheduler"), "split": N_("Split"),
    "run_dir": N_("Run dir"), "run_id": N_("Run id"), "note": N_("Note"), "token": N_("Token"), "class": N_("Class"),
    "classes": N_("Classes"), "per_class": N_("Per class"), "out": N_("Out"), "items": N_("Items"), "stage": N_("Stage"),
    "min_lr": N_("Min lr"), "max_lr": N_("Max lr"), "steps": N_("Steps"), "cuts": N_("Cuts"), "size": N_("Size"),
    "hold": N_("Hold"), "config": N_("Config"), "duplicate_distance": N_("Duplicate distance"),
    "background": N_("Background"),
}


def option_word(option: str) -> str:
    """What the pages call an engine option (its widget's label)."""
    return str(OPTION_WORDS.get(option, option.replace("_", " ").capitalize()))


def error_words(exc: Exception | str) -> str:
    """An engine error (or its recorded message) as the page says it: the sentence in the session's
    language (`engine_words.say`, templates in `studio.engine_errors`), and every option it names as
    its label (``The cut`` at the start of a sentence, ``the cut`` inside one)."""
    import re

    if not (getattr(exc, "option", None) and hasattr(exc, "template")):
        return particles(engine_words.say(exc))
    marked = re.sub(r"\{option(?::(\w+))?\}", lambda m: f"\0{m.group(1) or exc.option}\0",
                    engine_words.say(exc.template))

    def word(match: re.Match) -> str:
        label = option_word(match.group(1))
        inside = match.start() > 0 and not re.search(r"[.:!?]\s*$", marked[: match.start()])
        return "the" + label[3:] if inside and label.startswith("The ") else label

    return particles(re.sub("\0(\\w+)\0", word, marked))


def problem_rows(problems: Sequence[dict]) -> list[dict]:
    """A dataset's skipped files (``[{file, reason}]`` of a scan or an import) with each reason in the
    session's language."""
    return [{**p, "reason": error_words(p["reason"])} if p.get("reason") else p for p in problems]


def run_error_words(status: dict) -> str | None:
    """A failed run's reason (status.json) as the page says it: an option's error relabelled."""
    if status.get("error_option") and status.get("error_template"):
        from tlcore.core.errors import OptionError

        return error_words(OptionError(status["error_option"], status["error_template"]))
    return error_words(status["error"]) if status.get("error") else None


def export_check(report: dict) -> str:
    """What an export's check found, in a sentence (or why there was none)."""
    if report.get("format") == "code":
        return _("A Python script: nothing to check against the model; run it with `python SCRIPT DATA`.")
    if report.get("top1_agreement") is None:
        return _("Not checked: ") + " ".join(report.get("warnings") or [_("no images to check on.")])
    where = report.get("checked_on") or {}
    source = (_("the {split} split").format(split=where["split"]) if "split" in where
              else _("the images of {folder}").format(folder=where.get("folder")))
    return _("Checked on {images} images of {source}: the copy agrees with the original on {agreement:.0%} of "
             "top-1 labels (largest probability difference {difference:.2g}).").format(
        images=where.get("images", report.get("images_checked")), source=source,
        agreement=report["top1_agreement"], difference=report["max_probability_difference"]) + quantized_check(report)


def quantized_check(report: dict) -> str:
    """A full-integer TFLite export's scores against the float model, and what int8-mixed kept float."""
    tflite = (report.get("checks") or {}).get("tflite") or report
    scores, mixed = tflite.get("int8") or {}, tflite.get("int8_mixed")
    out = ""
    if scores.get("n"):
        out += _(" The quantized model on {n} images of the {split} split: accuracy {accuracy:.0%} (float: "
                 "{float_accuracy:.0%}), the same top-1 label as the float model on {agreement:.0%}.").format(
            n=scores["n"], split=scores["split"], accuracy=scores["test_accuracy"],
            float_accuracy=scores["float_test_accuracy"], agreement=scores["agreement"])
    if mixed and mixed.get("mixed"):
        out += _(" Full integer agreed with it on {agreement:.0%}, under the {threshold:.0%} needed; kept in float: "
                 "{layers}.").format(agreement=mixed["full_integer_agreement"], threshold=mixed["threshold"],
                                     layers=", ".join(mixed["float_layers"]))
    elif mixed:
        out += _(" Full integer agreed with it on {agreement:.0%} ({threshold:.0%} needed): no layer kept in "
                 "float.").format(agreement=mixed["full_integer_agreement"], threshold=mixed["threshold"])
    return out


# --- the live view ---------------------------------------------------------------------

LIVE_MESSAGES = {  # streamlit-webrtc's own messages inside its frame, in the studio's words
    "start": N_("Start the camera"),
    "stop": N_("Stop"),
    "select_device": N_("Camera"),
    "media_api_not_available": N_("This browser cannot stream the camera here (no WebRTC or camera access: "
                                  "browsers allow it on localhost or over HTTPS). Use a snapshot below."),
    "device_ask_permission": N_("Allow this page to use the camera (the browser asks above)."),
    "device_not_available": N_("No camera found. Plug one in, or use a snapshot below."),
    "device_access_denied": N_("The camera was refused. Allow it in the browser's site settings, or use a snapshot "
                               "below."),
}


def live_line(top: Sequence[dict] | None, fps: float | None) -> str:
    """The live view's text line, exactly 'LABEL · NN% · NN fps' (whole numbers)."""
    if not top:
        return f"… · — · {int(round(fps or 0))} fps"
    return f"{top[0]['label']} · {int(round(100 * float(top[0]['probability'])))}% · {int(round(fps or 0))} fps"


def video_time(seconds: float) -> str:
    """73.25 -> '1:13.2'."""
    seconds = max(0.0, float(seconds))
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


# --- test-time augmentation ----------------------------------------------------------

TTA_LABELS = {"none": N_("None"), "flip": N_("Flip (2 views)"), "flip+crops": N_("Flip + centre crop (4 views)")}
TTA_HELP = N_("Test-time augmentation: classify each image as it is and in mirror image (Flip), and also "
            "its centre crop both ways (Flip + centre crop), then average the probabilities. Costs that "
            "many forward passes per image; the model itself is not changed (exports are the same).")


def tta_cost(tta: dict | None, count: int | None) -> str:
    """'Flip (2 views): 0.84 s for 46 images (18 ms per image)' from an evaluation's `tta`."""
    if not tta:
        return ""
    per = _(" ({ms:.0f} ms per image)").format(ms=1000 * tta["seconds"] / count) if count else ""
    return _("Test-time augmentation {mode}: {seconds:.2f} s for {count} images{per}.").format(
        mode=TTA_LABELS.get(tta["mode"], tta["mode"]), seconds=tta["seconds"], count=count, per=per)
