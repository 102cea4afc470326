"""tlcore.backbones.catalog: every keras.applications backbone, and each one built and checked.

The per-backbone tests share one module-scoped, parametrised fixture, so pytest builds each
backbone once (weights=None, at its smallest input size), runs every check on it, and drops
it before the next one.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect

import keras
import numpy as np
import pytest

from tlcore.backbones.build import build_backbone
from tlcore.backbones.catalog import CATALOG, Backbone, get_backbone, list_backbones
from tlcore.core.errors import TLCoreError
from tlcore.backbones.layers import layer_table
from tlcore.recipe.surgery import cut_backbone, preprocessing_layers

NAMES = list(CATALOG)
PREPROCESSING = {"caffe", "tf", "torch", "none"}


def keras_constructors() -> set[str]:
    """Model constructors exported at the top of keras.applications (capitalised functions)."""
    return {name for name in dir(keras.applications)
            if name[:1].isupper() and inspect.isfunction(getattr(keras.applications, name))}


def keras_module(name: str):
    """The public keras.applications module a constructor lives in (vgg16, resnet, ...)."""
    private = getattr(keras.applications, name).__module__  # keras.src.applications.resnet
    return importlib.import_module("keras.applications." + private.rsplit(".", 1)[1])


# ---------------------------------------------------------------- the catalog as data


def test_catalog_has_exactly_the_keras_applications_models():
    expected = keras_constructors()
    assert len(expected) == 40
    assert set(CATALOG) == expected
    assert len(CATALOG) == 40


def test_records_are_frozen_and_consistent():
    for name, info in CATALOG.items():
        assert isinstance(info, Backbone)
        assert info.name == name
        assert info.preprocessing in PREPROCESSING, name
        assert 32 <= info.min_input_size <= info.default_input_size, name
        assert info.family
        d = info.to_dict()
        assert d["name"] == name and set(d) >= {"name", "family", "default_input_size",
                                                "min_input_size", "params", "depth", "size_mb",
                                                "top1", "top5", "preprocessing"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        CATALOG["VGG16"].name = "other"


def test_get_backbone_is_case_insensitive():
    assert get_backbone("resnet50") is CATALOG["ResNet50"]
    assert get_backbone("INCEPTIONV3") is CATALOG["InceptionV3"]


def test_unknown_backbone_error_lists_every_name():
    with pytest.raises(TLCoreError) as err:
        get_backbone("ResNet51")
    message = str(err.value)
    assert "'ResNet51'" in message
    for name in CATALOG:
        assert name in message


def test_list_backbones_filters_by_pattern():
    assert [b.name for b in list_backbones()] == NAMES
    eff = [b.name for b in list_backbones("Eff*")]
    assert eff == [n for n in NAMES if n.startswith("EfficientNet")]
    assert len(eff) == 15
    assert [b.name for b in list_backbones("eff*")] == eff  # case-insensitive
    v2 = [b.name for b in list_backbones("*V2")]
    assert v2 == [n for n in NAMES if n.lower().endswith("v2")]
    assert "MobileNetV2" in v2 and "InceptionResNetV2" in v2 and "EfficientNetV2B0" not in v2
    assert [b.name for b in list_backbones("resnet???")] == ["ResNet101", "ResNet152"]
    assert list_backbones("nothing*") == []


# ---------------------------------------------------------------- every backbone built


def build_size(info: Backbone) -> int:
    return info.min_input_size


@pytest.fixture(scope="module", params=NAMES)
def built(request):
    """(catalog record, backbone with weights=None, its layer table), one backbone at a time."""
    info = CATALOG[request.param]
    model = build_backbone(info.name, build_size(info), weights=None)
    table = layer_table(model)
    yield info, model, table
    del model, table
    keras.backend.clear_session()


def test_backbone_builds_at_its_minimum_size(built):
    info, model, _ = built
    size = build_size(info)
    assert tuple(model.input_shape) == (None, size, size, 3)
    assert len(model.output_shape) == 4  # include_top=False: a feature map


def test_layer_table_matches_the_model(built):
    _, model, table = built
    n = len(model.layers)
    assert len(table) == n
    assert [row.index for row in table] == list(range(n))
    assert [row.name for row in table] == [layer.name for layer in model.layers]
    assert [row.type for row in table] == [type(layer).__name__ for layer in model.layers]
    assert sum(row.params for row in table) == model.count_params()
    assert table[-1].cut_point, "the output layer is always a clean cut point"
    assert not table[0].cut_point, "the input layer is never a cut point"
    assert list(table[-1].output_shape) == list(model.output_shape)
    assert all(row.block for row in table)


def test_a_middle_cut_point_cuts(built):
    _, model, table = built
    cuts = [row.index for row in table if row.cut_point and row.index < len(table) - 1]
    if not cuts:
        pytest.fail("no cut point before the output")
    middle = min(cuts, key=lambda i: abs(i - len(table) // 2))
    cut, index = cut_backbone(model, table[middle].name)
    assert index == middle
    assert list(cut.output_shape) == list(table[middle].output_shape)
    assert cut.count_params() == sum(row.params for row in table[: middle + 1])


def test_baked_preprocessing_equals_keras_preprocess_input(built):
    info, _, _ = built
    module = keras_module(info.name)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    expected = np.asarray(module.preprocess_input(x.copy()))
    y = x
    for layer in preprocessing_layers(info.preprocessing):
        y = keras.ops.convert_to_numpy(layer(y))
    if info.preprocessing == "none":
        np.testing.assert_array_equal(expected, x)  # the module's preprocess_input is the identity
    np.testing.assert_allclose(y, expected, atol=1e-4, rtol=0)


def _graph_cut_points(model) -> list[bool]:
    """Independent oracle: a layer is a clean cut point when removing it from the full graph of
    operations (layers and the bare ops Keras records, such as `x + y`) disconnects the input
    from the output."""
    ops = list(model.operations)
    ids = {id(op): i for i, op in enumerate(ops)}
    children: dict[int, set[int]] = {i: set() for i in range(len(ops))}
    for i, op in enumerate(ops):
        for node in op._inbound_nodes:
            for parent in node.parent_nodes:
                j = ids.get(id(parent.operation))
                if j is not None:
                    children[j].add(i)
    source, target = ids[id(model.layers[0])], ids[id(model.layers[-1])]

    def reaches_output_without(skip: int) -> bool:
        seen, stack = {source}, [source]
        while stack:
            for v in children[stack.pop()]:
                if v != skip and v not in seen:
                    seen.add(v)
                    stack.append(v)
        return target in seen

    return [i > 0 and type(layer).__name__ != "InputLayer"
            and not reaches_output_without(ids[id(layer)])
            for i, layer in enumerate(model.layers)]


def test_cut_points_match_the_graph(built, request):
    info, model, table = built
    expected = _graph_cut_points(model)
    wrong = [(row.index, row.name, row.cut_point) for row, e in zip(table, expected)
             if row.cut_point != e]
    assert not wrong, f"{len(wrong)} layers misjudged, e.g. {wrong[:3]}"
