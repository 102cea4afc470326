"""The layer table of a backbone: every layer, its block, and whether it is a clean cut point.

A clean cut point is a layer that every path from the input to the output passes through,
so the model cut there is a self-contained feature extractor (InceptionV3's `mixed7` is one;
a layer inside a residual branch is not). In a topological order that is exactly a layer
that no edge of the graph jumps over.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

from ..core.errors import OptionError, TLCoreError


@dataclass(frozen=True)
class LayerInfo:
    index: int
    name: str
    type: str
    output_shape: list
    params: int
    trainable: bool
    cut_point: bool
    block: str

    def to_dict(self) -> dict:
        return asdict(self)


def _own_nodes(model, layer) -> list:
    """The nodes of `layer` that belong to `model`'s graph (a layer shared with a nested or
    flattened copy of a model has nodes in several graphs)."""
    own = getattr(model, "_nodes", None)
    if not own:
        return list(layer._inbound_nodes)
    ids = {id(n) for n in own}
    return [n for n in layer._inbound_nodes if id(n) in ids] or list(layer._inbound_nodes)


def layer_output(model, layer):
    """`layer`'s output tensor in `model`'s own graph (not `layer.output`, its first graph's)."""
    nodes = _own_nodes(model, layer)
    outputs = nodes[-1].outputs
    return outputs[0] if len(outputs) == 1 else outputs


def _operations(model) -> list:
    """Every operation of the graph in topological order: layers, and bare ops such as the
    `inputs + x` of a ConvNeXt residual, which `model.layers` leaves out."""
    ops = list(getattr(model, "operations", None) or model.layers)
    return ops if all(any(op is l for op in ops) for l in model.layers) else list(model.layers)


def _edges(model, ops: list) -> list[tuple[int, int]]:
    index = {id(op): i for i, op in enumerate(ops)}
    edges = []
    for i, op in enumerate(ops):
        for node in _own_nodes(model, op):
            for parent in node.parent_nodes:
                j = index.get(id(parent.operation))
                if j is not None:
                    edges.append((j, i))
    return edges


def cut_points(model) -> list[bool]:
    """For each layer of `model.layers`, whether it is a clean cut point."""
    ops = _operations(model)
    n = len(ops)
    diff = [0] * (n + 1)
    for u, v in _edges(model, ops):
        lo, hi = min(u, v), max(u, v)
        if hi - lo > 1:
            diff[lo + 1] += 1
            diff[hi] -= 1
    flag_of, running = {}, 0
    for i, op in enumerate(ops):
        running += diff[i]
        flag_of[id(op)] = running == 0 and i > 0
    return [flag_of.get(id(layer), False) and not _is_input(layer) for layer in model.layers]


def _is_input(layer) -> bool:
    return type(layer).__name__ == "InputLayer"


_BLOCK_PATTERNS = [
    (re.compile(r"^(.*stage_\d+_block_\d+)(?:_|$)"), None),  # ConvNeXt
    (re.compile(r"^(conv\d+_block\d+)(?:_|$)"), None),  # ResNet, DenseNet
    (re.compile(r"^(block_?\d+[a-z]?(?:_\d+)?)(?:_|$)"), None),  # VGG, Xception, MobileNetV2, EfficientNet
    (re.compile(r"^(expanded_conv(?:_\d+)?)(?:_|$)"), None),  # MobileNetV2/V3
    (re.compile(r"^(mixed\d+)"), None),  # Inception
    (re.compile(r"^(pool\d+)_"), None),  # DenseNet transitions
    (re.compile(r"^conv_(?:dw|pw|pad)_(\d+)"), "block_{}"),  # MobileNet v1
    (re.compile(r"^(?:conv1|stem|Conv1|bn_Conv1|conv_stem|conv1_)"), "stem"),
    (re.compile(r"^(normal|reduction)_\w*?_((?:stem_)?\d+)$"), "{}_cell_{}"),  # NASNet
]


def _named_block(name: str) -> str | None:
    for pattern, template in _BLOCK_PATTERNS:
        m = pattern.match(name)
        if m:
            if template is None:
                return m.group(1)
            return template.format(*m.groups())
    return None


def _blocks(model) -> list[str]:
    """Block of each layer: from its name where Keras names it, else the next named block."""
    named = [_named_block(layer.name) for layer in model.layers]
    out = list(named)
    following = "top"
    for i in range(len(named) - 1, -1, -1):
        if named[i]:
            following = named[i]
        else:
            out[i] = following
    first_named = next((i for i, b in enumerate(named) if b), len(named))
    for i in range(first_named):
        out[i] = "stem"
    return out


def _output_shape(layer) -> list:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return []
    return [None if d is None else int(d) for d in shape]


def layer_table(model, paths: dict[str, str] | None = None) -> list[LayerInfo]:
    """Every layer of `model` with index, name, type, output shape, params, trainability, block.

    `paths` names layers that came from inside nested models by their path (see source.py).
    """
    paths = paths or {}
    flags = cut_points(model)
    blocks = _blocks(model)
    return [
        LayerInfo(
            index=i,
            name=paths.get(layer.name, layer.name),
            type=type(layer).__name__,
            output_shape=_output_shape(layer),
            params=int(layer.count_params()) if layer.built else 0,
            trainable=bool(layer.trainable),
            cut_point=flags[i],
            block=blocks[i],
        )
        for i, layer in enumerate(model.layers)
    ]


def resolve_layer(model, spec, what: str = "layer", paths: dict[str, str] | None = None) -> int:
    """Index in `model.layers` of a layer given by name, index, or negative index.

    Raises:
        TLCoreError: no such layer; the message suggests close names.
    """
    names = [layer.name for layer in model.layers]
    return _resolve(names, [(paths or {}).get(n, n) for n in names], spec, what)


def _resolve(names: list[str], full: list[str], spec, what: str) -> int:
    """Index of the layer `spec` (index, graph name or path) among `names` / `full`."""
    n = len(names)
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().lstrip("-").isdigit()):
        i = int(spec)
        if not -n <= i < n:
            raise OptionError(what, f"index {i} is out of range: the backbone has {n} layers "
                              f"(0 to {n - 1}, or -1 to -{n} from the end).")
        return i % n
    if spec in names:
        return names.index(spec)
    if spec in full:
        return full.index(spec)
    close = difflib.get_close_matches(str(spec), full, n=5)
    hint = f" Did you mean: {', '.join(close)}?" if close else " Run `tlcore layers` to list them."
    raise OptionError(what, f"The backbone has no layer named {spec!r} (given as {{option}}).{hint}")


def resolve_cut(model, cut=None, paths: dict[str, str] | None = None, default: int | None = None) -> int:
    """Index of the layer where the backbone ends: `cut` (name, path or index), else `default`,
    else the last layer.

    Raises:
        TLCoreError: unknown layer, the input layer, or a layer that is not a clean cut point.
    """
    names = [layer.name for layer in model.layers]
    full = [(paths or {}).get(n, n) for n in names]
    return _resolve_cut(names, full, lambda: cut_points(model), cut, default)


def _resolve_cut(names: list[str], full: list[str], flags, cut, default: int | None) -> int:
    """`resolve_cut` over layer names; `flags()` gives the clean cut points (asked only if needed)."""
    n = len(names)
    if cut in (None, ""):
        index = n - 1 if default is None else int(default)
    else:
        index = _resolve(names, full, cut, "cut")
    if index == 0:
        raise OptionError("cut", "cannot be the input layer; choose a layer after it.")
    if index != n - 1 and not flags()[index]:
        raise TLCoreError(
            f"Layer {names[index]!r} (index {index}) is not a clean cut point: some path from the "
            "input to the output goes around it (it sits inside a branch). Choose a layer marked "
            "cut_point in `tlcore layers`, such as the end of a block."
        )
    return index


def cut_options(table: Sequence[LayerInfo]) -> list[int]:
    """Indexes where the backbone may be cut: every clean cut point, and always the last layer."""
    out = [row.index for row in table if row.cut_point]
    last = len(table) - 1
    if last > 0 and (not out or out[-1] != last):
        out.append(last)
    return out


def index_of(table: Sequence[LayerInfo], spec, default: int) -> int:
    """Index of a layer given by name or index in `table`; `default` when None or unknown."""
    if spec in (None, ""):
        return default
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().lstrip("-").isdigit()):
        i = int(spec)
        return i % len(table) if -len(table) <= i < len(table) else default
    for row in table:
        if row.name == spec:
            return row.index
    return default


def filter_layers(table: Sequence[LayerInfo], search: str = "", types: Iterable[str] = (),
                  blocks: Iterable[str] = ()) -> list[LayerInfo]:
    """Rows whose name, type or block contains `search` (case-insensitive), of the given types
    and blocks (all when empty)."""
    needle = (search or "").strip().lower()
    types, blocks = set(types), set(blocks)
    return [row for row in table
            if (not needle or needle in row.name.lower() or needle in row.type.lower()
                or needle in row.block.lower())
            and (not types or row.type in types) and (not blocks or row.block in blocks)]


def block_summary(table: Sequence[LayerInfo]) -> list[dict]:
    """One row per block, in order: ``{block, first, last, last_layer, layers, params,
    ends_at_cut_point}`` (first and last layer index, the last layer's name, layer count,
    parameters, and whether the block ends at a clean cut point)."""
    out: list[dict] = []
    for row in table:
        if out and out[-1]["block"] == row.block:
            cur = out[-1]
            cur["last"] = row.index
            cur["last_layer"] = row.name
            cur["layers"] += 1
            cur["params"] += row.params
            cur["ends_at_cut_point"] = row.cut_point
        else:
            out.append({"block": row.block, "first": row.index, "last": row.index,
                        "last_layer": row.name, "layers": 1, "params": row.params,
                        "ends_at_cut_point": row.cut_point})
    return out


def cached_layer_table(name: str, size: int, build=None) -> list[LayerInfo]:
    """The layer table of catalog backbone `name` at `size` (see `tablestore.catalog_facts`):
    shipped with the package or cached in the home, else built once. Needs no TensorFlow when known."""
    from .tablestore import catalog_facts

    return catalog_facts(name, size, build).table


# --- what a plan needs of a backbone, without the built model ----------------------------------

Weight = tuple  # (variable path, size, trains by nature)


@dataclass(frozen=True)
class BackboneFacts:
    """Everything `plan.make_plan` reads of a backbone, as plain data that a file can hold.

    `table` is the layer table (names there are paths for layers of nested models); `names` are
    the layers' names in the graph; `weights[i]` lists layer i's variables as (path, size,
    trains by nature), a variable shared with an earlier layer with size 0 (counted once);
    `batchnorm[i]` says whether layer i is a BatchNormalization; `shapes[i]` is its output
    shape in the backbone's own graph (batch dimension first).
    """

    table: list[LayerInfo]
    names: list[str]
    weights: list[list[Weight]]
    batchnorm: list[bool]
    shapes: list[list]
    preprocessing: str = "none"
    input_size: int = 0
    default_cut: int | None = None

    def resolve_layer(self, spec, what: str = "layer") -> int:
        """Like `resolve_layer`, over the facts."""
        return _resolve(self.names, [row.name for row in self.table], spec, what)

    def resolve_cut(self, cut=None) -> int:
        """Like `resolve_cut` (default: `default_cut`, else the last layer), over the facts."""
        return _resolve_cut(self.names, [row.name for row in self.table],
                            lambda: [row.cut_point for row in self.table], cut, self.default_cut)

    def to_json(self) -> dict:
        """The stored form (without preprocessing, size and default cut, which the caller knows)."""
        return {"layers": [row.to_dict() for row in self.table], "names": self.names,
                "weights": [[list(w) for w in ws] for ws in self.weights],
                "batchnorm": [i for i, bn in enumerate(self.batchnorm) if bn],
                "shapes": self.shapes}

    @classmethod
    def from_json(cls, doc: dict, **extra) -> "BackboneFacts":
        """Facts from `to_json()`'s document. Raises KeyError/TypeError/ValueError when malformed."""
        table = [LayerInfo(**row) for row in doc["layers"]]
        n = len(table)
        weights = [[(str(p), int(size), bool(t)) for p, size, t in ws] for ws in doc["weights"]]
        bn = set(doc["batchnorm"])
        names, shapes = list(doc["names"]), list(doc["shapes"])
        if not n or len(weights) != n or len(names) != n or len(shapes) != n:
            raise ValueError("layer facts of different lengths")
        return cls(table, names, weights, [i in bn for i in range(n)], shapes, **extra)


def is_batchnorm(layer) -> bool:
    import keras

    return isinstance(layer, keras.layers.BatchNormalization)


def trainable_by_nature(layer) -> set[int]:
    """ids of the layer's variables that train by nature (BatchNorm's moving statistics never
    do), whatever `trainable` flags were set since: Keras keeps them apart from creation on."""
    own = getattr(layer, "_trainable_variables", None)
    if own is None:
        return {id(v) for v in layer.weights if v.trainable}
    ids = {id(v) for v in own}
    for sub in getattr(layer, "_layers", []) or []:
        ids |= trainable_by_nature(sub)
    return ids


def facts_of(model, paths: dict[str, str] | None = None, preprocessing: str = "none",
             input_size: int = 0, default_cut: int | None = None) -> BackboneFacts:
    """The `BackboneFacts` of a built backbone (its table included)."""
    table = layer_table(model, paths)
    seen: set[int] = set()
    weights, shapes = [], []
    for layer in model.layers:
        nature = trainable_by_nature(layer)
        rows = []
        for v in layer.weights:
            size = 0 if id(v) in seen else int(math.prod(int(d) for d in v.shape))
            seen.add(id(v))
            rows.append((str(getattr(v, "path", v.name)), size, id(v) in nature))
        weights.append(rows)
        try:
            shape = layer_output(model, layer).shape
            shapes.append([None if d is None else int(d) for d in shape])
        except (AttributeError, IndexError, ValueError):
            shapes.append(list(table[len(shapes)].output_shape))
    return BackboneFacts(table, [layer.name for layer in model.layers], weights,
                         [is_batchnorm(layer) for layer in model.layers], shapes,
                         preprocessing, int(input_size), default_cut)
