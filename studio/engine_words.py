"""The engine's own sentences that pages show as they are (a preset's description, the plan's reasons
and warnings), as templates the catalog translates.

The engine speaks English and in arguments (`tlcore` never imports the studio); `say` finds the
template that produced a sentence and returns it in the session's language, its values (layer names,
numbers, a nested reason) kept. A sentence no template fits is returned unchanged: new engine words
show in English until a template is added here (extract, update, translate: docs/OPERATIONS.md).
The engine's error messages are templates of `studio.engine_errors`; `studio.text.error_words` also
puts each option's label where the message names it.
"""
from __future__ import annotations

import functools
import re

from studio.i18n import N_, _, particles

TEMPLATES = [
    # tlcore.recipe.plan: reasons and warnings
    N_("Stage 1 trains the head only; the backbone stays frozen."),
    N_("Stage 2 has no epochs, so nothing is unfrozen."),
    N_("No backbone weight trains in stage 2: {reason} Only the head learns."),
    N_("The freeze/unfreeze patterns change nothing: no stage trains the backbone (fine_tune_epochs is 0)."),
    N_("The backbone holds a SavedModel layer (TFSMLayer), which stays frozen in every stage."),
    N_("weights=none with {epochs} head epochs: stage 1 trains the head on the features of a randomly "
       "initialised, frozen backbone, which carry little. Train from scratch instead (head_epochs 0, "
       "unfreeze_from 0, train_bn)."),
    N_("Training from scratch (weights=none): no head-only stage; every layer, BatchNorm included, trains for "
       "all {epochs} epochs."),
    N_("Training from scratch (weights=none): no head-only stage; every layer trains for all {epochs} epochs."),
    N_("The {option} pattern {pattern} matches only layers after the cut; it changes nothing."),
    N_("The unfreeze point (layer {start}, {start_name}) lies past the cut (layer {cut}, {cut_name}): every "
       "layer it would unfreeze has been cut away."),
    N_("The only layer with weights there is a SavedModel layer (TFSMLayer), which stays frozen."),
    N_("The layers from {first} to {last} hold no weights (the cut layer itself, like InceptionV3's mixed7, is "
       "a concatenation)."),
    N_("The only layers with weights between the unfreeze point and the cut are BatchNormalization layers, "
       "which stay frozen."),
    N_("The freeze patterns freeze every layer that would train."),
    N_("None of the layers between the unfreeze point and the cut has trainable weights."),
    # tlcore.search.auto and automeasure: auto mode's reason, its phrases joined by "; " (`reason`)
    N_("point {point} of {points} had the best validation accuracy ({accuracy}) of {trials} trials scored"),
    N_("no room in the budget for a search: the measured choices alone"),
    N_("no trial was scored: the measured choices alone"),
    N_("no {what}: {seconds} s of the budget were gone before it"),
    N_("no probe: {seconds} s of the budget were gone before it"),
    N_("no learning-rate range test: {seconds} s of the budget were gone before it"),
    N_("cut {cut}: the shallowest block end whose linear probe comes within 0.01 of the best ({accuracy} validation "
       "accuracy, {cuts} cuts probed)"),
    N_("learning rate around {lr}: the range test's steepest fall (stage {stage})"),
    N_("learning rate {lr} (the default: the range test failed: {error})"),
    N_("every scored trial was cut by the budget: chosen on the epochs they finished"),
    N_("{folds}-fold cross-validation on train+validation (fewer than {images} validation images): point {point} "
       "averaged {accuracy} over {done} folds"),
    N_("point {point}: {accuracy}"),
    N_("{epochs} of {planned} epochs in the final run: {seconds} s of the budget were left for it"),
    N_("the final run was stopped by the budget and scored on its best epoch so far"),
    N_("the default recipe (trial 0) had the best validation accuracy ({accuracy}) of {trials} trials scored"),
    N_("no room in the budget for a search: the default recipe alone"),
    N_("{epochs} of {planned} epochs: the budget holds no more"),
    N_("the default recipe failed: {error}"),
    N_("no search: {seconds} s of the budget were gone before it"),
    # tlcore.search.autofinal: the result, an ensemble or a single run
    N_("ensemble of {n}: points {points} (validation accuracy {val}, the best single {best})"),
    N_("a single run: point {point} (validation accuracy {best}, the ensemble of {n} scored {val})"),
    N_("a single run: the ensemble could not be built ({error})"),
    N_("a single run: {left} s of the budget were left, the ensemble needs about {need} s"),
    N_("the result was stopped by the budget and scored on its best epoch so far"),
    # tlcore.search.autoprobe: the linear probe, the reference the search's result must beat
    N_("the linear probe (validation accuracy {probe}): the search's best ({best}) is not significantly better on "
       "the same {n} validation images (McNemar p = {p})"),
    N_("the search's best ({best}) is significantly better than the linear probe ({probe}) on the same {n} "
       "validation images (McNemar p = {p})"),
    N_("no linear probe: {error}"),
    N_("the pixel model (validation accuracy {probe}): the search's best ({best}) is not significantly better on "
       "the same {n} validation images (McNemar p = {p})"),
    N_("the search's best ({best}) is significantly better than the pixel model ({probe}) on the same {n} "
       "validation images (McNemar p = {p})"),
    N_("the pixel model (head_fit pixels, validation accuracy {pixels}) is the reference: the linear probe scored "
       "{probe}"),
    N_("no pixel model: {error}"),
    N_("no trial of the search scored in time: the linear probe (validation accuracy {val}) is the result"),
    N_("no trial of the search scored in time: the pixel model (validation accuracy {val}) is the result"),
    N_("no linear probe: it ended {state}"),
    # tlcore.training.train: a loss or accuracy stuck at chance, and its likely cause
    N_("The validation accuracy never rose clearly above chance (1/{classes}): best {best} in {epochs} epochs. "
       "Likely cause: {cause}"),
    N_("The loss stayed at chance level, ln({classes}) = {chance}, {when}: the model predicts no better than "
       "guessing. Likely cause: {cause}"),
    N_("at the end of the run ({epochs} epochs)"),
    N_("for the first {epochs} epochs"),
    N_("weights=none with a head-only stage: the head learns from the features of a random, frozen backbone, "
       "which carry almost nothing. Train from scratch (head_epochs 0, unfreeze_from 0, train_bn) or give "
       "pretrained weights."),
    N_("random initial weights: from scratch a network often sits at chance for its first epochs; if it stays "
       "there, it needs more epochs, more images, the scratch-small preset (a smaller network), or pretrained "
       "weights."),
    N_("random initial weights: from scratch a network often sits at chance for its first epochs; if it stays "
       "there, it needs more epochs, more images, or pretrained weights."),
    N_("the learning rate ({lr}) may be too high or too low for this setup (try `tlcore lr-find`), or the labels "
       "do not match the images."),
    # tlcore.evaluation.baselines: the baselines' names and the warning when one beats the model
    N_("logistic regression on the backbone's pooled features"),
    N_("SVM (RBF) on raw pixels, 16x16 colour + 32x32 grey"),
    N_("A baseline beats the model: {name} scored {score} on the same {n} test images, above the model's "
       "{accuracy} and its 95% interval [{low}, {high}]. The network adds nothing here: try other options (more "
       "epochs, another learning rate or cut), or use the simpler model."),
    # tlcore.recipe.presets: descriptions
    N_("InceptionV3 at 150x150, features from `mixed7`, Flatten, Dense(1024, relu), Dropout(0.2), "
       "sigmoid/softmax output; everything from `mixed7` on unfrozen; Adam(1e-5), 3 epochs, with the "
       "notebook's augmentation. As written the layers it unfreezes lie at or past the cut and "
       "`mixed7` has no weights, so no backbone weight trains: only the head learns. Give the "
       "weights file the course used with --weights PATH (or imagenet when online)."),
    N_("VGG19 at 224 with ImageNet weights, include_top=False, all frozen, Flatten, one output "
       "unit (sigmoid) or softmax, RMSprop (Keras' default rate 1e-3), the tutorial's augmentation "
       "(rotation 40, shifts 0.2, shear 0.2, zoom 0.2, horizontal flip) on train only; 20 epochs. "
       "Compare with --weights none for the course's with/without pretraining curves."),
    N_("ResNet50, Flatten, Dense(1024, relu), softmax output; train the head (Adam 1e-3, 5 epochs), "
       "then unfreeze `layers[165:]` of the backbone and recompile with Adam(1e-5) for 5 epochs."),
    N_("Two stages: stage 1 trains only the head on the frozen backbone for 10 epochs; stage 2 "
       "unfreezes every layer except BatchNormalization (kept frozen, in inference mode) at a "
       "tenth of stage 1's learning rate for 10 more epochs. Works with any --backbone "
       "(MobileNetV2 unless given)."),
    N_("Today's recipe from Keras' own parts, on the two-stage plan: AdamW (weight decay 1e-4), "
       "cosine decay after one warm-up epoch in each stage, label smoothing 0.1, RandAugment and "
       "MixUp (alpha 0.2). RandAugment and MixUp need the images every epoch, so stage 1 runs "
       "without the feature cache and takes longer. Works with any --backbone (MobileNetV2 "
       "unless given)."),
    N_("Without pretrained weights: a small network trained from scratch. MobileNetV2 up to the "
       "expansion of block 6 (66 k weights, 8x8x192 features) at 64 px, every layer and "
       "BatchNorm training from the first epoch (no head-only stage), Adam 1e-3, batch 16, "
       "flips and any rotation, 45 epochs. Learns the demo shapes (`tlcore demo-data`) to about "
       "0.9 test accuracy in 2-3 minutes on a 2-core CPU; the whole MobileNetV2 learns much more "
       "slowly from scratch. Not a substitute for transfer learning on photos."),
]


HOLE = re.compile(r"\{(?!option[}:])(\w+)\}")  # a value's place; ``{option}`` / ``{option:NAME}`` mark an option


def _regex(template: str) -> re.Pattern:
    """The sentences `template` makes: its literal text, anything for each ``{name}`` (``{{``/``}}`` are braces)."""
    parts = HOLE.split(template)
    return re.compile("".join(re.escape(p.replace("{{", "{").replace("}}", "}")) if i % 2 == 0 else f"(?P<{p}>.+?)"
                              for i, p in enumerate(parts)), re.DOTALL)


@functools.cache
def _patterns() -> list[tuple[re.Pattern, str]]:
    """Every template as (regex, template), the most specific (most literal text) first, so a
    template made mostly of values (``{name}: {error}``) only takes what no other one fits."""
    from studio import engine_errors

    templates = {t.message for t in (*TEMPLATES, *engine_errors.TEMPLATES, *engine_errors.PIECES)}
    literal = {t: len(HOLE.sub("", t)) for t in templates}
    return [(_regex(t), t) for t in sorted(templates, key=lambda t: (-literal[t], t)) if literal[t]]


def fill(template: str, values: dict) -> str:
    """`template` with its ``{name}`` places filled and ``{{``/``}}`` as braces (option markers kept;
    not `str.format`, which would read ``{option:cut}`` as a format spec)."""
    parts = HOLE.split(template)
    return "".join(p.replace("{{", "{").replace("}}", "}") if i % 2 == 0 else str(values.get(p, "{" + p + "}"))
                   for i, p in enumerate(parts))


def say(sentence: object) -> str:
    """An engine sentence in the running session's language (unchanged when no template fits), the
    values in it worded too (a nested reason, a hint). Option markers (``{option}``) stay for
    `studio.text.error_words`."""
    text = str(sentence)
    for pattern, template in _patterns():
        match = pattern.fullmatch(text)
        if match:
            return particles(fill(_(template), {k: say(v) for k, v in match.groupdict().items()}))
    return text


def reason(text: object, separator: str = "; ") -> str:
    """A sentence the engine joined from phrases (auto mode's ``reason``: "point 3 of 8 had …; learning
    rate around 0.001: …"), each phrase in the session's language."""
    return separator.join(say(phrase) for phrase in str(text or "").split(separator))
