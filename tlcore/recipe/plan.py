"""The one owner of what trains when.

`make_plan(config, num_classes, source)` says, for every layer of the (uncut) backbone, its
role in stage 1 and stage 2 — ``cut`` (after the cut), ``trains`` (at least one of its weights
trains), ``inference_bn`` (a kept BatchNormalization layer that does not train, so it runs in
inference mode) or ``frozen`` — with the parameter counts of the whole model (preprocessing,
backbone, head) per stage, the default unfreeze point, and plain reasons when a stage trains
nothing in the backbone. Training applies a plan with `apply_stage`; lr-find, `tlcore plan`,
the Layers page, its chart and every count read the same plan. Nothing else decides trainability.

Stage 2's backbone (or every epoch of a from-scratch plan) is shaped in this order: layers
from `unfreeze_from` to the cut (BatchNormalization only with `train_bn`), then every
`unfreeze` pattern, then every `freeze` pattern. A pattern is a case-sensitive glob over layer
names or nested paths (`block_1*`, `*/conv*`), or ``re:REGEX`` searched in weight variable paths.
An explicit `unfreeze` pattern unfreezes what it names, BatchNormalization layers included.

The plan never changes the backbone it reads: the app shares one built backbone between
sessions, so counts come from the layers' variables, not from flipping `trainable` flags.
"""
from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass, field

from .config import TrainConfig
from ..core.errors import OptionError
from ..backbones.layers import BackboneFacts, cut_options, facts_of, index_of
from ..data.outputs import output_units

ROLES = ("cut", "trains", "inference_bn", "frozen")
BN_TRAIN_MOMENTUM = 0.9


def default_unfreeze_index(n_layers: int) -> int:
    """Where stage 2 starts by default: the last third of the uncut backbone, as TensorFlow's
    fine-tuning tutorial does."""
    return (2 * int(n_layers)) // 3


@dataclass(frozen=True)
class LayerPoints:
    """Where the backbone is cut and where stage 2 starts: indexes into the layer table, and the
    names a selection records for them (`cut` None: a catalog backbone's whole, no cut)."""
    cut_index: int
    unfreeze_index: int
    cut: str | None
    unfreeze_from: str


def layer_points(table, cut=None, unfreeze_from=None, default_cut: int | None = None,
                 own: bool = False) -> LayerPoints:
    """The cut and the unfreeze point of `cut` and `unfreeze_from` (names, paths or indexes) in
    the layer table `table`, as the pages offer them: a missing or unknown one falls back to its
    default (the clean cut point `default_cut`, else the last one; `default_unfreeze_index`),
    a cut that is not a clean cut point to the default cut. See `pin_points` for the names.

    Args:
        own: the backbone is a model file (its layers are recorded by name even uncut).
    """
    offered = cut_options(table)
    fallback = default_cut if default_cut in offered else offered[-1]
    cut_index = index_of(table, cut, fallback)
    if cut_index not in offered:
        cut_index = fallback
    return pin_points(table, cut_index, index_of(table, unfreeze_from, default_unfreeze_index(len(table))), own)


def pin_points(table, cut_index: int, unfreeze_index: int, own: bool = False) -> LayerPoints:
    """The points at these indexes, named as a run records them: the unfreeze point by its
    layer's name, the cut too unless it is a catalog backbone's last layer (no cut at all)."""
    last = len(table) - 1
    cut = table[cut_index].name if own or cut_index != last else None
    return LayerPoints(int(cut_index), int(unfreeze_index), cut, table[unfreeze_index].name)


@dataclass(frozen=True)
class LayerPlan:
    index: int
    name: str
    type: str
    params: int
    stage1: str
    stage2: str

    def to_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "type": self.type, "params": self.params,
                "stage1": self.stage1, "stage2": self.stage2}


@dataclass
class Plan:
    """What trains in each stage; see the module docstring."""

    layers: list[LayerPlan]
    stages: dict[int, dict]
    cut_index: int
    unfreeze_index: int | None
    feature_shape: tuple
    head_params: int
    output_units: int
    warnings: list[str] = field(default_factory=list)
    trainable_keys: dict[int, frozenset] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """The `tlcore plan --json` document."""
        return {
            "layers": [row.to_dict() for row in self.layers],
            "stages": {str(s): dict(info) for s, info in self.stages.items()},
            "warnings": list(self.warnings),
            "cut_index": self.cut_index, "unfreeze_index": self.unfreeze_index,
            "feature_shape": list(self.feature_shape), "head_params": self.head_params,
            "output_units": self.output_units,
        }

    def parameters_by_stage(self) -> dict:
        """`{"1": {trainable, non_trainable, total}, "2": {...}}` as status.json records it."""
        return {str(s): {k: info[k] for k in ("trainable", "non_trainable", "total")}
                for s, info in self.stages.items()}

    def roles(self, stage: int) -> list[str]:
        return [getattr(row, f"stage{stage}") for row in self.layers]


# --- building a plan ------------------------------------------------------------------------

def make_plan(config: TrainConfig, num_classes: int, source=None) -> Plan:
    """The plan training would follow for `config` on a dataset of `num_classes` classes.

    Args:
        config: the options (`head_epochs`, `fine_tune_epochs`, `cut`, `unfreeze_from`,
            `unfreeze`, `freeze`, `train_bn`, head options, `lr`, `fine_tune_lr`).
        num_classes: classes of the dataset (two give one sigmoid unit).
        source: the backbone (`source.load_source(config)`) or its `layers.BackboneFacts`;
            when None, a catalog backbone's facts come from its stored layer table
            (`tablestore.catalog_facts`: no build when known), a model file is loaded.

    Raises:
        TLCoreError: an unknown layer, a cut that is not a clean cut point, a pattern that
            matches no layer (the error names the closest ones), a bad head.
    """
    if int(num_classes) < 2:
        raise OptionError("classes", f"must be at least 2 for a classifier. Received: {num_classes}")
    return _plan(config, int(num_classes), backbone_facts(config, source))


def backbone_facts(config: TrainConfig, source=None) -> BackboneFacts:
    """What a plan reads of the backbone: `source` as facts, or the facts `config` names."""
    if isinstance(source, BackboneFacts):
        return source
    if source is None and not config.backbone_file:  # the architecture is all a plan needs
        from ..backbones.build import check_input_size
        from ..backbones.catalog import get_backbone
        from ..backbones.tablestore import catalog_facts

        name = get_backbone(config.backbone).name
        return catalog_facts(name, check_input_size(name, config.input_size))
    if source is None:
        from ..backbones.source import load_source

        source = load_source(config)
    return facts_of(source.backbone, source.paths or {}, source.preprocessing, source.input_size,
                    source.default_cut)


def _plan(config: TrainConfig, num_classes: int, facts: BackboneFacts) -> Plan:
    from .surgery import HeadSpec, head_param_count, preprocessing_param_count

    table, names = facts.table, facts.names
    n = len(table)
    cut_index = facts.resolve_cut(config.cut)
    unfreeze_index = None
    if config.fine_tune_epochs > 0:
        unfreeze_index = default_unfreeze_index(n) if config.unfreeze_from in (None, "") else \
            facts.resolve_layer(config.unfreeze_from, "unfreeze_from")

    kept = range(cut_index + 1)
    intrinsic = {(names[i], j): w[2] for i in kept for j, w in enumerate(facts.weights[i])}
    frozen_for_good = {i for i in kept if table[i].type == "TFSMLayer"}
    frozen_names = {names[i] for i in frozen_for_good}
    warnings: list[str] = []

    train2: set = set()
    if unfreeze_index is not None:
        for i in range(unfreeze_index, cut_index + 1):
            if i in frozen_for_good or (facts.batchnorm[i] and not config.train_bn):
                continue
            train2 |= {(names[i], j) for j in range(-1, len(facts.weights[i]))}
        for name, add in (("unfreeze", True), ("freeze", False)):
            for pattern in getattr(config, name):
                keys = _pattern_keys(pattern, name, facts, cut_index, warnings)
                keys = {k for k in keys if k[0] not in frozen_names}
                train2 = train2 | keys if add else train2 - keys
    elif config.unfreeze or config.freeze:
        warnings.append("The freeze/unfreeze patterns change nothing: no stage trains the backbone "
                        "(fine_tune_epochs is 0).")
    # (name, -1) marks a layer as switched on even without weights: Keras' flag only, no role
    train2 = {k for k in train2 if k[1] == -1 or intrinsic.get(k)}
    trainable_keys = {1: frozenset(), 2: frozenset(train2)}

    # Counts, from the facts (a shared variable counts once, where it first appears).
    feature_shape = tuple(int(d) for d in facts.shapes[cut_index][1:])
    head_params = head_param_count(feature_shape, num_classes,
                                   HeadSpec(config.pooling, tuple(config.dense), config.dropout))
    sizes = {(names[i], j): w[1] for i in kept for j, w in enumerate(facts.weights[i])}
    total = preprocessing_param_count(facts.preprocessing) + sum(sizes.values()) + head_params
    epochs = {1: int(config.head_epochs), 2: int(config.fine_tune_epochs)}
    lrs = {1: float(config.lr), 2: float(config.stage2_lr)}
    stages = {}
    for s in (1, 2):
        backbone_trainable = sum(sizes.get(k, 0) for k in trainable_keys[s])
        trainable = head_params + backbone_trainable
        stages[s] = {"epochs": epochs[s], "trainable": trainable, "non_trainable": total - trainable,
                     "total": total, "backbone_trainable": backbone_trainable, "lr": lrs[s], "reason": None}

    rows = []
    for i, row in enumerate(table):
        roles = []
        for s in (1, 2):
            if i > cut_index:
                roles.append("cut")
            elif any((names[i], j) in trainable_keys[s] for j in range(len(facts.weights[i]))):
                roles.append("trains")
            elif facts.batchnorm[i]:
                roles.append("inference_bn")
            else:
                roles.append("frozen")
        rows.append(LayerPlan(i, row.name, row.type, row.params, *roles))

    plan = Plan(rows, stages, cut_index, unfreeze_index, feature_shape, head_params,
                output_units(num_classes), warnings, trainable_keys)
    stages[1]["reason"] = "Stage 1 trains the head only; the backbone stays frozen."
    if stages[2]["backbone_trainable"] == 0:
        stages[2]["reason"] = _no_training_reason(plan, config, frozen_for_good)
        if epochs[2] > 0:
            warnings.append(f"No backbone weight trains in stage 2: {stages[2]['reason']} Only the "
                            "head learns.")
    if frozen_for_good and epochs[2] > 0:
        warnings.append("The backbone holds a SavedModel layer (TFSMLayer), which stays frozen in "
                        "every stage.")
    weights = getattr(config, "weights", None)
    if not getattr(config, "backbone_file", None) and weights in (None, "none"):
        if epochs[1] > 0:
            warnings.append(f"weights=none with {epochs[1]} head epochs: stage 1 trains the head on the "
                            "features of a randomly initialised, frozen backbone, which carry little. "
                            "Train from scratch instead (head_epochs 0, unfreeze_from 0, train_bn).")
        elif unfreeze_index == 0:
            warnings.append(f"Training from scratch (weights=none): no head-only stage; every layer"
                            f"{', BatchNorm included,' if config.train_bn else ''} trains for all "
                            f"{epochs[2]} epochs.")
    return plan


def _pattern_keys(pattern: str, option: str, facts: BackboneFacts, cut_index: int,
                  warnings: list[str]) -> set:
    """(layer name, weight index) pairs a pattern names among the kept layers.

    Raises:
        OptionError: the pattern names nothing in the whole backbone; the closest layers are named.
    """
    hits: set = set()
    hits_after_cut = 0
    names, full = facts.names, [row.name for row in facts.table]
    if pattern.startswith("re:"):
        regex = re.compile(pattern[3:])
        for i, name in enumerate(names):
            for j, w in enumerate(facts.weights[i]):
                if regex.search(w[0]):
                    if i <= cut_index:
                        hits.add((name, j))
                    else:
                        hits_after_cut += 1
    else:
        for i, name in enumerate(names):
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(full[i], pattern):
                if i <= cut_index:
                    hits |= {(name, j) for j in range(len(facts.weights[i]))}
                    hits.add((name, -1))  # a layer without weights still counts as matched
                else:
                    hits_after_cut += 1
    if not hits and not hits_after_cut:
        probe = pattern[3:] if pattern.startswith("re:") else pattern.replace("*", "").replace("?", "")
        close = difflib.get_close_matches(probe, full, n=5, cutoff=0.3)
        hint = f" Closest layers: {', '.join(close)}." if close else " Run `tlcore layers` to list them."
        what = "no weight path of any layer" if pattern.startswith("re:") else "no layer name or path"
        raise OptionError(option, f"pattern {pattern!r} matches {what} of the backbone.{hint}")
    if not hits:
        warnings.append(f"The {option} pattern {pattern!r} matches only layers after the cut; it "
                        "changes nothing.")
    return hits


def _no_training_reason(plan: Plan, config: TrainConfig, frozen_for_good: set) -> str:
    """Why no backbone weight trains in stage 2, in plain words."""
    rows, cut, start = plan.layers, plan.cut_index, plan.unfreeze_index
    if start is None:
        return "Stage 2 has no epochs, so nothing is unfrozen."
    if start > cut:
        return (f"The unfreeze point (layer {start}, {rows[start].name}) lies past the cut (layer "
                f"{cut}, {rows[cut].name}): every layer it would unfreeze has been cut away.")
    span = rows[start:cut + 1]
    if frozen_for_good and all(r.params == 0 or r.index in frozen_for_good for r in span):
        return "The only layer with weights there is a SavedModel layer (TFSMLayer), which stays frozen."
    if all(r.params == 0 for r in span):
        return (f"The layers from {rows[start].name} to {rows[cut].name} hold no weights (the cut "
                "layer itself, like InceptionV3's mixed7, is a concatenation).")
    if not config.train_bn and all(r.params == 0 or r.type == "BatchNormalization" for r in span):
        return ("The only layers with weights between the unfreeze point and the cut are "
                "BatchNormalization layers, which stay frozen.")
    if config.freeze:
        return "The freeze patterns freeze every layer that would train."
    return "None of the layers between the unfreeze point and the cut has trainable weights."


# --- applying a plan --------------------------------------------------------------------------

def apply_stage(model, plan: Plan, stage: int) -> None:
    """Make `model` (built by `model.build_model`, never a shared one) train what `plan` says
    for `stage`: the head always, preprocessing never, backbone weights as planned.

    BatchNormalization layers that train get a moving-average momentum of at most 0.9: Keras'
    applications use 0.99-0.999, and with the few hundred steps of a small dataset the moving
    statistics would never catch up with the batch ones.
    """
    from ..backbones.layers import is_batchnorm

    keys = plan.trainable_keys.get(stage, frozenset())
    backbone = model.get_layer("backbone")
    backbone.trainable = True
    for layer in backbone.layers:
        weights = list(layer.weights)
        if weights:
            on = any((layer.name, j) in keys for j in range(len(weights)))
        else:
            on = (layer.name, -1) in keys
        if type(layer).__name__ == "TFSMLayer":
            on = False
        layer.trainable = on  # Keras sets the flag of every variable that trains by nature
        if on:
            for j, v in enumerate(weights):
                if v.trainable and (layer.name, j) not in keys:
                    v.trainable = False  # a re: pattern froze this one weight
        if on and is_batchnorm(layer) and getattr(layer, "momentum", 0) > BN_TRAIN_MOMENTUM:
            layer.momentum = BN_TRAIN_MOMENTUM
    model.get_layer("head").trainable = True
    for layer in model.layers:
        if layer.name.startswith("preprocess_"):
            layer.trainable = False
