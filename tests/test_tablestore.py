"""tlcore.backbones.tablestore and the table-only plan: shipped layer tables, their Keras version, and a
plan computed from stored facts equal to one computed from the built backbone."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tlcore.backbones import tablestore
from tlcore.backbones.catalog import CATALOG
from tlcore.recipe.config import TrainConfig
from tlcore.backbones.layers import BackboneFacts, facts_of
from tlcore.recipe.plan import make_plan
from tlcore.backbones.source import load_source

ROOT = Path(__file__).resolve().parents[1]


def _roundtrip(facts: BackboneFacts) -> BackboneFacts:
    """The facts as a stored table gives them back."""
    doc = json.loads(json.dumps(facts.to_json()))
    return BackboneFacts.from_json(doc, preprocessing=facts.preprocessing, input_size=facts.input_size,
                                   default_cut=facts.default_cut)


def test_every_catalog_backbone_ships_a_table_for_the_installed_keras():
    for name, info in CATALOG.items():
        path = tablestore.shipped_path(name, info.default_input_size)
        doc = json.loads(gzip.decompress(path.read_bytes()))
        assert (doc["keras"], doc["backbone"], doc["size"]) == \
            (tablestore.keras_version(), name, info.default_input_size), path.name
        assert tablestore.known_facts(name, info.default_input_size) is not None, name


def test_the_shipped_table_equals_a_freshly_built_one():
    """A stale shipped table (another Keras, a changed table format) fails here: rerun
    scripts/layer_tables.py."""
    from tlcore.backbones.build import build_backbone

    info = CATALOG["MobileNet"]
    fresh = facts_of(build_backbone(info.name, info.default_input_size, weights=None), None,
                     info.preprocessing, info.default_input_size)
    shipped = tablestore.known_facts(info.name, info.default_input_size)
    assert shipped.to_json() == json.loads(json.dumps(fresh.to_json()))
    assert (shipped.preprocessing, shipped.input_size) == (fresh.preprocessing, fresh.input_size)


def test_a_table_of_another_keras_version_is_ignored(tlhome, tmp_path, monkeypatch):
    import keras

    real = tablestore.known_facts("MobileNetV2", 224)
    doc = {"format": tablestore.FORMAT, "keras": "0.0.1", "backbone": "MobileNetV2", "size": 224,
           **real.to_json()}
    monkeypatch.setattr(tablestore, "SHIPPED", tmp_path)
    tablestore.shipped_path("MobileNetV2", 224).write_bytes(gzip.compress(json.dumps(doc).encode()))
    built = []

    def build():
        built.append(1)
        inputs = keras.Input((8, 8, 3), name="image")
        return keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv")(inputs))

    facts = tablestore.catalog_facts("MobileNetV2", 224, build)
    assert built == [1] and [row.name for row in facts.table] == ["image", "conv"]
    # the same file with this Keras is used as it is
    doc["keras"] = tablestore.keras_version()
    tablestore.shipped_path("MobileNetV2", 224).write_bytes(gzip.compress(json.dumps(doc).encode()))
    again = tablestore.catalog_facts("MobileNetV2", 224, lambda: pytest.fail("built"))
    assert again.to_json() == real.to_json()


@pytest.fixture(scope="module")
def mobilenet():
    return load_source(TrainConfig(backbone="MobileNetV2", input_size=32, weights="none"))


@pytest.mark.parametrize("options", [
    {},
    {"cut": "block_13_expand_relu", "unfreeze_from": "block_11_add"},
    {"unfreeze_from": "block_15_add", "train_bn": True, "pooling": "flatten", "dense": [16, 8]},
    {"unfreeze": ["block_3*", "re:block_16_project_BN/gamma"], "freeze": ["Conv_1*"], "dropout": 0.0},
    {"fine_tune_epochs": 0, "head_epochs": 3},
    {"unfreeze_from": "out_relu", "cut": "block_16_project_BN"},
])
def test_a_plan_from_the_stored_facts_equals_the_plan_from_the_built_backbone(mobilenet, options):
    config = TrainConfig.from_dict({"backbone": "MobileNetV2", "input_size": 32, "weights": "none",
                                    "fine_tune_epochs": 2, **options})
    from_model = make_plan(config, 3, mobilenet)
    from_table = make_plan(config, 3, _roundtrip(facts_of(mobilenet.backbone, None, "tf", 32)))
    assert from_table.to_dict() == from_model.to_dict()
    assert from_table.trainable_keys == from_model.trainable_keys


def test_plan_errors_from_the_stored_facts_name_the_layer(mobilenet):
    facts = _roundtrip(facts_of(mobilenet.backbone, None, "tf", 32))
    for options, words in (({"cut": "block_2_expand"}, "not a clean cut point"),
                           ({"unfreeze_from": "blok_4_add"}, "block_4_add"),
                           ({"unfreeze": ["nothing_like_it*"]}, "matches no layer name")):
        config = TrainConfig.from_dict({"backbone": "MobileNetV2", "input_size": 32, "fine_tune_epochs": 1,
                                        **options})
        with pytest.raises(Exception, match=words):
            make_plan(config, 3, facts)


@pytest.mark.parametrize("shape,spec", [((7, 7, 32), ("avg", (), 0.2)), ((7, 7, 32), ("max", (16,), 0.0)),
                                        ((3, 3, 8), ("flatten", (12, 5), 0.5)), ((40,), ("avg", (4,), 0.2))])
@pytest.mark.parametrize("classes", [2, 5])
def test_head_count_without_keras_equals_the_built_head(shape, spec, classes):
    from tlcore.recipe.surgery import HeadSpec, build_head, head_param_count

    spec = HeadSpec(*spec)
    assert head_param_count(shape, classes, spec) == build_head(shape, classes, spec).count_params()


def test_preprocessing_count_without_keras_equals_the_built_layers():
    from tlcore.recipe.surgery import preprocessing_layers, preprocessing_param_count

    for mode in ("caffe", "tf", "torch", "none"):
        total = 0
        for layer in preprocessing_layers(mode):
            layer.build((None, 32, 32, 3))
            total += sum(int(w.numpy().size) for w in layer.weights)
        assert preprocessing_param_count(mode) == total, mode


def test_a_catalog_plan_reads_the_shipped_table_without_tensorflow(tlhome):
    """`tlcore plan`'s engine call and the Layers page's plan for a large backbone: no build, no
    TensorFlow, no Keras import."""
    code = (
        "import sys\n"
        "from tlcore.recipe.config import TrainConfig\n"
        "from tlcore.recipe.plan import make_plan\n"
        "p = make_plan(TrainConfig(backbone='NASNetLarge', unfreeze_from='normal_concat_12'), 4)\n"
        "print(p.feature_shape, p.stages[2]['trainable'], p.unfreeze_index)\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**__import__("os").environ, "TLCORE_HOME": str(tlhome)}, timeout=120)
    assert out.returncode == 0, out.stderr
    shape, modules = out.stdout.strip().splitlines()
    assert shape.startswith("(11, 11, 4032)") and modules == "[]"
    assert not (tlhome / "cache" / "layer-tables").exists()  # nothing built nor cached
