"""tlcore.backbones.layers: clean cut points, blocks, resolving layers by name or index."""
from __future__ import annotations

import keras
import pytest

from tlcore.backbones.build import build_backbone
from tlcore.core.errors import TLCoreError
from tlcore.backbones.layers import (LayerInfo, block_summary, cut_options, cut_points, filter_layers, index_of, layer_table,
                           resolve_layer)
from tlcore.recipe.surgery import cut_backbone


@pytest.fixture(scope="module")
def inception():
    model = build_backbone("InceptionV3", 150, weights=None)
    return model, {row.name: row for row in layer_table(model)}


@pytest.fixture(scope="module")
def resnet():
    model = build_backbone("ResNet50", 32, weights=None)
    return model, {row.name: row for row in layer_table(model)}


def _branch_layers(model):
    """Layers whose output feeds a Concatenate or Add along with other inputs."""
    out = set()
    for layer in model.layers:
        if type(layer).__name__ in ("Concatenate", "Add"):
            parents = [p.operation for node in layer._inbound_nodes for p in node.parent_nodes]
            if len(parents) > 1:
                out.update(p.name for p in parents)
    return out


def test_inception_mixed7_is_a_cut_point_and_branch_layers_are_not(inception):
    model, rows = inception
    assert len(model.layers) == 311
    assert rows["mixed7"].cut_point
    assert rows["mixed7"].type == "Concatenate"
    assert rows["mixed7"].output_shape == [None, 7, 7, 768]
    assert rows["mixed7"].block == "mixed7"
    assert rows["mixed10"].cut_point  # the output
    assert not rows["conv2d_70"].cut_point  # first conv of a branch of mixed8
    branch = _branch_layers(model)
    assert "activation_69" in branch  # one of mixed7's four inputs
    assert branch and not any(rows[name].cut_point for name in branch)
    # The concatenations themselves are the ends of blocks.
    for i in range(11):
        assert rows[f"mixed{i}"].cut_point, f"mixed{i}"


def test_resnet_block_outputs_are_cut_points_and_insides_are_not(resnet):
    model, rows = resnet
    assert rows["conv2_block1_out"].cut_point
    assert rows["conv5_block3_out"].cut_point
    for name in ("conv2_block1_1_conv", "conv2_block1_1_bn", "conv2_block1_0_conv",
                 "conv2_block1_3_bn"):
        assert not rows[name].cut_point, name
    assert rows["conv2_block1_1_conv"].block == "conv2_block1"
    assert rows["conv2_block1_out"].block == "conv2_block1"
    # Before the first residual block, a plain chain: every layer but the input cuts.
    assert rows["conv1_conv"].cut_point and rows["pool1_pool"].cut_point
    assert not rows[model.layers[0].name].cut_point


def test_cut_points_of_a_plain_chain_are_every_layer_but_the_input():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="c1")(inputs)
    x = keras.layers.ReLU(name="r1")(x)
    x = keras.layers.Conv2D(4, 3, name="c2")(x)
    model = keras.Model(inputs, x)
    assert cut_points(model) == [False, True, True, True]


def test_cut_points_of_a_hand_made_residual_graph():
    inputs = keras.Input((8, 8, 4))
    a = keras.layers.Conv2D(4, 1, name="a")(inputs)           # 1: cut
    b = keras.layers.Conv2D(4, 1, name="b")(a)                # 2: inside the branch
    c = keras.layers.Conv2D(4, 1, name="c")(b)                # 3: inside the branch
    d = keras.layers.Add(name="d")([a, c])                    # 4: cut
    e = keras.layers.ReLU(name="e")(d)                        # 5: cut
    model = keras.Model(inputs, e)
    assert [layer.name for layer in model.layers][1:] == ["a", "b", "c", "d", "e"]
    assert cut_points(model) == [False, True, False, False, True, True]


def test_cut_backbone_at_a_clean_cut_point(inception):
    model, rows = inception
    cut, index = cut_backbone(model, "mixed7")
    assert index == rows["mixed7"].index
    assert cut.name == "backbone"
    assert tuple(cut.output_shape) == (None, 7, 7, 768)
    assert len(cut.layers) == index + 1
    cut_all, index_all = cut_backbone(model, None)
    assert index_all == len(model.layers) - 1
    assert tuple(cut_all.output_shape) == tuple(model.output_shape)


def test_cut_backbone_refuses_a_layer_inside_a_branch(inception, resnet):
    model, _ = inception
    with pytest.raises(TLCoreError, match="conv2d_70.*not a clean cut point"):
        cut_backbone(model, "conv2d_70")
    r_model, rows = resnet
    with pytest.raises(TLCoreError, match="not a clean cut point"):
        cut_backbone(r_model, "conv2_block1_1_conv")
    with pytest.raises(TLCoreError, match="not a clean cut point"):
        cut_backbone(r_model, rows["conv2_block1_1_conv"].index)


def test_cut_backbone_refuses_the_input_and_unknown_layers(resnet):
    model, _ = resnet
    with pytest.raises(TLCoreError):
        cut_backbone(model, 0)
    with pytest.raises(TLCoreError, match="no layer named"):
        cut_backbone(model, "conv9_block1_out")


def test_resolve_layer_by_name_index_and_negative_index(resnet):
    model, rows = resnet
    n = len(model.layers)
    assert resolve_layer(model, "conv2_block1_out") == rows["conv2_block1_out"].index
    assert resolve_layer(model, 7) == 7
    assert resolve_layer(model, "7") == 7
    assert resolve_layer(model, -1) == n - 1
    assert resolve_layer(model, "-1") == n - 1
    assert resolve_layer(model, -n) == 0
    assert model.layers[resolve_layer(model, -2)].name == model.layers[n - 2].name


def test_resolve_layer_out_of_range(resnet):
    model, _ = resnet
    n = len(model.layers)
    for bad in (n, -n - 1, str(n + 5)):
        with pytest.raises(TLCoreError, match="out of range") as err:
            resolve_layer(model, bad, "--unfreeze-from")
        assert f"{n} layers" in str(err.value)
        assert "--unfreeze-from" in str(err.value)


def test_resolve_layer_bad_name_suggests_close_names(resnet, inception):
    model, _ = resnet
    with pytest.raises(TLCoreError) as err:
        resolve_layer(model, "conv2_blok1_out", "--cut")
    message = str(err.value)
    assert "'conv2_blok1_out'" in message and "--cut" in message
    assert "Did you mean" in message and "conv2_block1_out" in message
    i_model, _ = inception
    with pytest.raises(TLCoreError, match="mixed7"):
        resolve_layer(i_model, "mixd7")
    with pytest.raises(TLCoreError, match="tlcore layers"):
        resolve_layer(i_model, "zzzzzzzzzzzzzzzzzzzzzz")


def test_layer_table_rows(resnet):
    model, rows = resnet
    row = rows["conv1_conv"]
    assert row.type == "Conv2D"
    assert row.params == model.get_layer("conv1_conv").count_params() == 7 * 7 * 3 * 64 + 64
    assert row.trainable is True
    d = row.to_dict()
    assert set(d) == {"index", "name", "type", "output_shape", "params", "trainable", "cut_point",
                      "block"}
    assert d["output_shape"] == [None, 16, 16, 64]
    model.get_layer("conv1_conv").trainable = False
    try:
        assert {r.name: r for r in layer_table(model)}["conv1_conv"].trainable is False
    finally:
        model.get_layer("conv1_conv").trainable = True


def test_cut_points_see_a_residual_written_with_plus():
    inputs = keras.Input((8, 8, 4))
    a = keras.layers.Conv2D(4, 1, name="a")(inputs)
    b = keras.layers.Conv2D(4, 1, name="b")(a)
    c = keras.layers.Conv2D(4, 1, name="c")(b)
    e = keras.layers.ReLU(name="e")(a + c)
    model = keras.Model(inputs, e)
    assert [layer.name for layer in model.layers][1:] == ["a", "b", "c", "e"]
    assert cut_points(model) == [False, True, False, False, True]


def test_convnext_block_insides_are_not_cut_points():
    model = build_backbone("ConvNeXtTiny", 32, weights=None)
    rows = {row.name: row for row in layer_table(model)}
    assert not rows["convnext_tiny_stage_0_block_0_layernorm"].cut_point
    with pytest.raises(TLCoreError, match="not a clean cut point"):
        cut_backbone(model, "convnext_tiny_stage_0_block_0_pointwise_conv_1")


def _table(n=6, cuts=(1, 3), params=(0, 10, 0, 20, 5, 7)):
    return [LayerInfo(i, f"l{i}", "BatchNormalization" if i == 4 else "Conv2D", [None, 2, 2, 1],
                      params[i], True, i in cuts, "b0" if i < 3 else "b1") for i in range(n)]


def test_cut_options_and_blocks():
    table = _table()
    assert cut_options(table) == [1, 3, 5]  # the last layer is always offered
    assert index_of(table, "l3", 0) == 3 and index_of(table, "nope", 9) == 9
    assert index_of(table, -1, 0) == 5
    blocks = block_summary(table)
    assert [(b["block"], b["first"], b["last"], b["params"]) for b in blocks] == [("b0", 0, 2, 10), ("b1", 3, 5, 32)]
    assert [r.index for r in filter_layers(table, "l", ["BatchNormalization"])] == [4]


def test_layer_tables_are_cached_on_disk_per_backbone_size_and_keras(tlhome):
    import keras

    from tlcore.backbones.layers import cached_layer_table, layer_table

    built = []

    def build():
        inputs = keras.Input((8, 8, 3), name="image")
        x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
        built.append(1)
        return keras.Model(inputs, keras.layers.ReLU(name="relu")(x))

    # sizes no table is shipped for; the stand-in model keeps the test fast
    first = cached_layer_table("MobileNetV2", 41, build)
    again = cached_layer_table("MobileNetV2", 41, lambda: pytest.fail("built again"))
    assert built == [1] and [r.to_dict() for r in again] == [r.to_dict() for r in first]
    assert [r.name for r in again] == [r.name for r in layer_table(build())]
    cached_layer_table("MobileNetV2", 43, build)  # another size is another table
    tables = list((tlhome / "cache" / "layer-tables").glob("MobileNetV2@*-keras*.json"))
    assert len(built) == 3 and len(tables) == 2
