"""The example notebooks (examples/*.ipynb): the classic recipes on the public API, executed
headless (nbclient + ipykernel) on tiny generated data, at tiny input sizes, with random weights
or weights files the tests make."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import tlcore

from datagen import write_split
from nbrun import execute, outputs

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(p.name for p in EXAMPLES.glob("*.ipynb"))


def _code(path: Path) -> list[str]:
    import nbformat

    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_five_notebooks_one_per_classic_recipe_each_with_parameters_and_no_outputs():
    import nbformat

    assert len(NOTEBOOKS) == 5
    presets = set()
    for name in NOTEBOOKS:
        nb = nbformat.read(EXAMPLES / name, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), name  # papermill-style
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), name
        source = "\n".join(c.source for c in code)
        for line in source.splitlines():  # the public API only: `import tlcore`, then tlcore.<name>
            assert not re.match(r"\s*(from tlcore\b|import tlcore\.)", line), (name, line)
        for used in re.findall(r"\btlcore\.(\w+)", source):
            assert used in tlcore.__all__, (name, used)
        ast.parse(source)  # every cell is plain Python
        presets |= set(re.findall(r'preset="([\w-]+)"', source))
    assert {"inception-mixed7", "vgg19-frozen", "resnet50-layers165", "two-stage"} <= presets


@pytest.fixture(scope="module")
def vgg19_weights(tmp_path_factory) -> Path:
    """VGG19 without its top, random weights at 32 px, as a weights file (offline stand-in for ImageNet's)."""
    from tlcore.backbones.build import build_backbone

    path = tmp_path_factory.mktemp("weights") / "vgg19_notop.weights.h5"
    build_backbone("VGG19", 32, weights=None).save_weights(path)
    return path


SMALL = {
    "01_inceptionv3_mixed7.ipynb": {"WEIGHTS": "none", "INPUT_SIZE": 75, "EPOCHS": 1},
    "02_vgg19_frozen_with_and_without_pretraining.ipynb": {"WEIGHTS": "<vgg19>", "INPUT_SIZE": 32, "EPOCHS": 1},
    "03_resnet50_layers165.ipynb": {"WEIGHTS": "none", "INPUT_SIZE": 32, "HEAD_EPOCHS": 1, "FINE_TUNE_EPOCHS": 1},
    "04_model_surgery_freezing_by_name.ipynb": {"WEIGHTS": "none", "INPUT_SIZE": 32, "HEAD_EPOCHS": 1,
                                                "FINE_TUNE_EPOCHS": 1},
    "05_two_stages_batchnorm_frozen.ipynb": {"WEIGHTS": "none", "INPUT_SIZE": 32, "HEAD_EPOCHS": 1,
                                             "FINE_TUNE_EPOCHS": 1},
}


def _text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout")


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_notebook_runs_headless_on_tiny_data(name, tmp_path, tlhome, request):
    parameters = dict(SMALL[name])
    if parameters["WEIGHTS"] == "<vgg19>":
        parameters["WEIGHTS"] = str(request.getfixturevalue("vgg19_weights"))
    data = write_split(tmp_path / "data", classes=("red", "green"), counts=(6, 2, 2))
    nb = execute(EXAMPLES / name, {"DATA": str(data), **parameters}, cwd=tmp_path)
    html = "\n".join(outputs(nb))
    assert "<b>Plan</b>" in html and "<b>Evaluation</b>" in html
    runs = tlcore.runs()
    assert runs and all(r.state == "completed" for r in runs)
    assert html.count("<b>Run</b>") == len(runs)
    text = _text(nb)
    if name.startswith("01"):
        assert "backbone weights training in stage 2: 0" in text  # the recipe's quirk, shown
    elif name.startswith("02"):
        assert len(runs) == 2 and {r.config["weights"] for r in runs} == {parameters["WEIGHTS"], "none"}
        assert "from scratch: best validation accuracy" in text
    elif name.startswith("03"):
        assert "(index 165 )" in text and (tmp_path / "resnet50_layers165.keras").is_file()
    elif name.startswith("04"):
        assert "'block_5_depthwise'" in text and "'block_11_expand'" not in text.split("trains in stage 2:")[1]
    elif name.startswith("05"):
        assert "in stage 2: {'inference_bn'}" in text
