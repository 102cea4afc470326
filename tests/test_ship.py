"""Shipping a model: ONNX, full-integer TFLite and the bundle checked in a plain environment
without tlcore, `tlcore serve` under concurrent clients, the run as code, and the command line's
ImageNet mode and from-scratch twin."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from datagen import write_split
from ownlines import foreign_lines
from test_cli import tl

# A child Python in which `import tlcore` fails: what a user without the studio has.
PLAIN = "import sys, runpy; sys.modules['tlcore'] = None; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


def plain_python(script: Path, *args, timeout=900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", PLAIN, str(script), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=script.parent)


# A run of its own, small enough that every export takes seconds: ResNet50 with random weights
# (image-dependent features at 32 px), cut at conv3_block4_out (1.4M parameters), both stages.
SMALL_RUN = ["--backbone", "ResNet50", "--weights", "none", "--input-size", "32", "--cut", "conv3_block4_out",
             "--unfreeze-from", "conv3_block4_1_conv", "--head-epochs", "5", "--fine-tune-epochs", "1",
             "--lr", "0.01", "--pooling", "max", "--batch-size", "8", "--augment", "none",
             "--early-stopping", "0", "--seed", "3"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from types import SimpleNamespace

    base = tmp_path_factory.mktemp("ship")
    data = write_split(base / "data", counts=(12, 6, 4))
    proc, out = tl("train", data, *SMALL_RUN, "--json", home=base / "home", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return SimpleNamespace(base=base, home=base / "home", data=data, out=out, run_dir=out["run_dir"])


PARITY = r'''
import json, sys, zipfile, io
import numpy as np
from PIL import Image
bundle, images = sys.argv[1], sys.argv[2:]
zf = zipfile.ZipFile(bundle)
pre = json.loads(zf.read("preprocessing.json"))
labels = zf.read("labels.txt").decode().split()
size = pre["input_size"]
x = np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)
              for p in images])
out = {}
import keras, onnxruntime as ort
for name in ("model.keras", "model.onnx", "model.tflite"):
    open(name, "wb").write(zf.read(name))
out["keras"] = np.asarray(keras.models.load_model("model.keras", safe_mode=True, compile=False)(x)).tolist()
s = ort.InferenceSession("model.onnx")
out["onnx"] = s.run(None, {s.get_inputs()[0].name: x})[0].tolist()
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path="model.tflite")
inp, outp = it.get_input_details()[0], it.get_output_details()[0]
it.allocate_tensors()
q = pre["tflite_input_quantization"]
res = []
for img in x:
    it.set_tensor(inp["index"], np.clip(np.round(img / q["scale"] + q["zero_point"]), 0, 255).astype(np.uint8)[None])
    it.invoke()
    res.append(it.get_tensor(outp["index"])[0].astype(np.float32).tolist())
out["tflite"] = res
print(json.dumps({"labels": labels, "outputs": out}))
'''


@pytest.mark.slow
def test_bundle_onnx_and_int8_tflite_agree_with_predict_without_tlcore(small_run, tmp_path):
    home = small_run.home
    dest = tmp_path / "model.zip"
    proc, res = tl("export", small_run.run_dir, "--format", "bundle", "--include", "keras,tflite,onnx",
                   "--quantize", "int8", "--io", "uint8", "--out", dest, "--json", home=home, timeout=900,
                   as_user=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not foreign_lines(proc.stderr), proc.stderr[-3000:]  # in a user's shell: tlcore's own lines only
    assert res["files"] == [str(dest)] and res["bytes"] == dest.stat().st_size
    assert res["checked_on"] == {"split": "validation", "data": str(small_run.data), "images": 18}
    assert set(res["checks"]) == {"keras", "tflite", "onnx"} and res["checks"]["keras"]["top1_agreement"] == 1.0
    assert res["checks"]["tflite"]["quantize"] == "int8" and res["checks"]["tflite"]["io"] == "uint8"
    with zipfile.ZipFile(dest) as zf:
        names = set(zf.namelist())
        card = zf.read("MODEL_CARD.md").decode()
        pre = json.loads(zf.read("preprocessing.json"))
    assert names == {"model.keras", "model.tflite", "model.onnx", "labels.txt", "preprocessing.json",
                     "evaluation.json", "MODEL_CARD.md"}
    assert pre["tflite_input_quantization"]["dtype"] == "uint8"
    assert "| red | 12 | 6 | 4 |" in card and "ResNet50" in card and "conv3_block4_out" in card
    # Issue 27: evaluation.json held every scored image's absolute path, MODEL_CARD.md the data folder.
    # Every file of the bundle, binaries included, is searched for the paths of this machine.
    machine = {str(tmp_path), str(small_run.base), str(small_run.data), str(Path.home()), "/tmp/"}
    with zipfile.ZipFile(dest) as zf:
        evaluation = json.loads(zf.read("evaluation.json"))
        assert evaluation["predictions"] and not any(p["file"].startswith("/") for p in evaluation["predictions"])
        for name in zf.namelist():
            data = zf.read(name)
            for path in machine:
                assert path.encode() not in data, (name, path)
    assert small_run.data.name in card
    # a plain environment, fed RGB 0-255, agrees with `tlcore predict` on the test images
    images = sorted(str(p) for p in (small_run.data / "test").rglob("*.png"))
    proc, pred = tl("predict", small_run.run_dir, *images, "--json", home=home)
    expected = [p["top"][0]["label"] for p in pred]
    script = tmp_path / "parity.py"
    script.write_text(PARITY)
    run = plain_python(script, dest, *images)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    for fmt, outputs in got["outputs"].items():
        top = [got["labels"][int(np.argmax(o))] for o in outputs]
        agreement = np.mean([a == b for a, b in zip(top, expected)])
        assert agreement >= 0.95, (fmt, top, expected)
    # the bundle serves as it is
    from fastapi.testclient import TestClient

    from tlcore.ship.serve import Classifier, create_app

    client = TestClient(create_app(Classifier(dest)))
    with open(images[0], "rb") as f:
        answer = client.post("/predict", files=[("file", ("a.png", f, "image/png"))]).json()
    assert answer["predictions"][0]["top"][0]["label"] == expected[0]


@pytest.mark.slow
def test_export_never_checks_on_random_pixels(small_run, tmp_path):
    import shutil

    from tlcore.ship.export import export_run

    copy_run = tmp_path / "runs" / Path(small_run.run_dir).name
    shutil.copytree(small_run.run_dir, copy_run)
    cfg = json.loads((copy_run / "config.json").read_text())
    cfg["options"]["data"] = str(tmp_path / "gone")
    (copy_run / "config.json").write_text(json.dumps(cfg))
    res = export_run(copy_run, "keras", tmp_path / "m.keras")
    assert res["top1_agreement"] is None and res["checked_on"] is None and res["images_checked"] == 0
    assert "could not" in res["warnings"][0] or "not there" in res["warnings"][0]
    assert sorted(Path(f).name for f in res["files"]) == ["m.keras", "m.labels.txt", "m.preprocessing.json"]
    res = export_run(copy_run, "keras", tmp_path / "m2.keras", data=small_run.data / "test")
    assert res["checked_on"] == {"folder": str(small_run.data / "test"), "images": 12}
    assert res["top1_agreement"] == 1.0 and not res["warnings"]


@pytest.mark.slow
def test_serve_four_clients_same_answers_as_predict_and_refusals(small_run, tmp_path):
    import httpx

    from tlcore.ship.predict import predict

    images = sorted((small_run.data / "test").rglob("*.png"))
    expected = {str(p): r["top"] for p, r in zip(images, predict(small_run.run_dir, images, top_k=3))}
    env = dict(os.environ, TLCORE_HOME=str(small_run.home))
    proc = subprocess.Popen([sys.executable, "-m", "tlcore", "serve", small_run.run_dir, "--port", "0",
                             "--token", "s3cret", "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    try:
        info = json.loads(proc.stdout.readline())
        url, auth = info["url"], {"Authorization": "Bearer s3cret"}
        assert info["port"] > 0 and url.endswith(str(info["port"]))
        mismatches, errors = [], []

        def client(k):
            with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
                for i in range(50):
                    path = images[(k * 50 + i) % len(images)]
                    r = c.post("/predict", params={"top_k": 3},
                               files=[("file", (path.name, path.read_bytes(), "image/png"))])
                    if r.status_code != 200:
                        errors.append(r.text)
                        continue
                    top = r.json()["predictions"][0]["top"]
                    want = expected[str(path)]
                    if top[0]["label"] != want[0]["label"] or \
                            abs(top[0]["probability"] - want[0]["probability"]) > 1e-4:
                        mismatches.append((path.name, top, want))

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and not mismatches, (errors[:3], mismatches[:3])
        with httpx.Client(base_url=url, timeout=60) as c:
            assert c.get("/health").status_code == 200
            r = c.get("/labels")
            assert r.status_code == 401 and "error" in r.json()
            r = c.post("/predict", headers=auth, files=[("file", ("big.png", b"\0" * (50 * 1024 * 1024), "image/png"))])
            assert r.status_code == 413 and "limit" in r.json()["error"]
            r = c.post("/predict", headers=auth, files=[("file", ("notes.txt", b"hello", "text/plain"))])
            assert r.status_code == 415 and "not an image" in r.json()["error"]
            r = c.post("/predict", headers=auth, files=[("other", ("a.png", images[0].read_bytes(), "image/png"))])
            assert r.status_code == 422 and set(r.json()) == {"error"} and "file" in r.json()["error"]
            r = c.post("/predict", headers=auth, data={"file": "x"})
            assert r.status_code == 415 and set(r.json()) == {"error"}
            r = c.post("/predict", headers={**auth, "Content-Type": "image/png"}, params={"top_k": 1},
                       content=images[0].read_bytes())
            top = r.json()["predictions"][0]["top"]
            assert len(top) == 1 and top[0]["label"] == expected[str(images[0])][0]["label"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_int8_tflite_input_takes_every_pixel_value_even_when_calibration_images_lack_black_and_white(tmp_path):
    import keras

    from tlcore.ship.tflite import convert, io_quantization, run

    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(keras.layers.Rescaling(1 / 127.5, offset=-1.0)(image))
    model = keras.Model(image, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))
    rng = np.random.default_rng(0)
    grey = rng.uniform(60, 180, (8, 16, 16, 3)).astype("float32")  # no pixel below 60 or above 180
    path = tmp_path / "m.tflite"
    path.write_bytes(convert(model, "int8", "uint8", grey))
    assert io_quantization(path)["input"] == {"dtype": "uint8", "scale": 1.0, "zero_point": 0}
    assert grey.min() >= 60 and grey.max() <= 180  # the caller's images are left as they were
    assert np.abs(run(path, grey) - model.predict(grey, verbose=0)).max() < 0.02


def test_batcher_answers_requests_arriving_together_in_one_call():
    from tlcore.ship.serve import Batcher

    calls = []

    def fn(x):
        calls.append(len(x))
        return x.reshape(len(x), -1).sum(axis=1, keepdims=True)

    batcher = Batcher(fn)

    async def main():
        return await asyncio.gather(*[batcher.submit(np.full((n, 2), float(n))) for n in (1, 2, 3)])

    got = asyncio.run(main())
    assert calls == [6]
    assert [g[:, 0].tolist() for g in got] == [[2.0], [4.0, 4.0], [6.0, 6.0, 6.0]]
    again = asyncio.run(main())  # a new event loop (as a test client makes) gets a new worker
    assert calls == [6, 6] and [g[:, 0].tolist() for g in again] == [[2.0], [4.0, 4.0], [6.0, 6.0, 6.0]]


@pytest.mark.slow
def test_the_run_as_code_trains_the_same_model_without_tlcore(small_run, tmp_path):
    out = tmp_path / "train_run.py"
    proc, res = tl("export", small_run.run_dir, "--format", "code", "--out", out, "--json", home=small_run.home,
                   as_user=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not foreign_lines(proc.stderr), proc.stderr[-3000:]
    assert res["files"] == [str(out)]
    text = out.read_text()
    assert "import tlcore" not in text and "from tlcore" not in text
    assert "CUT_LAYER = 'conv3_block4_out'" in text and "conv3_block4_1_conv" in text
    run = plain_python(out, small_run.data, "--out", tmp_path / "m.keras")
    assert run.returncode == 0, run.stderr[-3000:]
    line = [l for l in run.stdout.splitlines() if l.startswith("test_accuracy: ")][-1]
    assert abs(float(line.split()[1]) - small_run.out["test_accuracy"]) <= 0.05


# A run on a saved model file: a classifier wrapping a whole MobileNetV2 (alpha 0.35, random weights),
# cut inside the nested model; stage 2 trains Conv1 and bn_Conv1 but bn_Conv1's gamma (a re: pattern);
# AdamW on a cosine schedule with label smoothing (one-hot targets), which the script must follow too.
FILE_RUN = ["--cut", "Conv1_relu", "--unfreeze-from", "Conv1", "--train-bn", "--freeze", "re:bn_Conv1/gamma",
            "--head-epochs", "6", "--fine-tune-epochs", "1", "--lr", "0.05", "--dropout", "0", "--batch-size", "8",
            "--optimizer", "adamw", "--schedule", "cosine", "--label-smoothing", "0.1",
            "--augment", "none", "--early-stopping", "0", "--seed", "3"]


@pytest.mark.slow
def test_the_run_as_code_of_a_model_file_run_trains_without_tlcore(tmp_path):
    import keras

    from tlcore.ship.codegen import render, script_values
    from tlcore.core.errors import TLCoreError

    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    image = keras.Input((32, 32, 3))
    x = base(keras.layers.Rescaling(1 / 127.5, offset=-1.0)(image))
    x = keras.layers.Dense(5, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model_file = tmp_path / "classifier.keras"
    keras.Model(image, x).save(model_file)
    data = write_split(tmp_path / "data", counts=(12, 6, 4))
    home = tmp_path / "home"
    proc, res = tl("train", data, "--backbone-file", model_file, *FILE_RUN, "--json", home=home, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "train_run.py"
    proc, exported = tl("export", res["run_dir"], "--format", "code", "--out", out, "--json", home=home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    assert "import tlcore" not in text and "from tlcore" not in text and "--backbone-file" in text
    assert f"BACKBONE_FILE = {str(model_file)!r}" in text and "CUT_LAYER = 'Conv1_relu'" in text
    assert "TRAIN_IN_STAGE_2 = ['Conv1', 'bn_Conv1']" in text and "FROZEN_WEIGHTS = ['bn_Conv1/gamma']" in text
    assert "OPTIMIZER = 'adamw'" in text and "SCHEDULE = 'cosine'" in text and "LABEL_SMOOTHING = 0.1" in text
    # the script's model trains, stage by stage, exactly the parameters the run's plan trained
    namespace = {"__name__": "not_main"}
    exec(compile(text, str(out), "exec"), namespace)
    model = namespace["build_model"](str(model_file))
    recorded = json.loads((Path(res["run_dir"]) / "status.json").read_text())["parameters_by_stage"]
    for stage in (1, 2):
        namespace["set_stage"](model, stage)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert trainable == recorded[str(stage)]["trainable"], stage
        assert trainable + sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) \
            == recorded[str(stage)]["total"]
    with pytest.raises(SystemExit, match="not found: .*nowhere.keras.*--backbone-file PATH"):
        namespace["build_backbone"](str(tmp_path / "nowhere.keras"))
    # in a plain Python, from another folder, with the file at the path the run recorded (the default)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = plain_python(out.rename(elsewhere / out.name), data, "--out", "m.keras")
    assert run.returncode == 0, run.stderr[-3000:]
    line = [l for l in run.stdout.splitlines() if l.startswith("test_accuracy: ")][-1]
    assert res["test_accuracy"] >= 0.9 and abs(float(line.split()[1]) - res["test_accuracy"]) <= 0.05
    assert "warning" not in run.stdout and (elsewhere / "m.keras").exists()
    # no script from a backbone file that changed since the run, or is gone
    keras.Model(image, x, name="other").save(tmp_path / "other.keras")
    (tmp_path / "other.keras").replace(model_file)
    with pytest.raises(TLCoreError, match="changed since the run"):
        script_values(res["run_dir"], home / "runs")
    model_file.unlink()
    with pytest.raises(TLCoreError, match="is gone"):
        script_values(res["run_dir"], home / "runs")


@pytest.mark.slow
def test_predict_imagenet_on_the_command_line(tmp_path):
    import keras

    weights = tmp_path / "mnv2-top.weights.h5"
    keras.applications.MobileNetV2(weights=None).save_weights(str(weights))
    data = write_split(tmp_path / "data", classes=("red", "green"), counts=(0, 0, 3))
    proc, res = tl("predict", "--imagenet", "MobileNetV2", data / "test" / "red", data / "test" / "green" / "green_0.png",
                   "--weights", weights, "--top-k", "3", "--csv", tmp_path / "p.csv", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [Path(r["image"]).name for r in res] == ["red_0.png", "red_1.png", "red_2.png", "green_0.png"]
    assert all(len(r["top"]) == 3 for r in res)
    from tlcore.ship.imagenet import imagenet_classes

    classes = set(imagenet_classes())
    assert all(t["label"] in classes and 0.0 <= t["probability"] <= 1.0 for r in res for t in r["top"])
    assert (tmp_path / "p.csv").read_text().splitlines()[0].startswith("image,label_1,probability_1")
    proc, res = tl("predict", "--imagenet", "MobileNetV2", data, "--weights", "none", "--json", home=tmp_path)
    assert proc.returncode == 1 and "pretrained" in res["error"]


@pytest.mark.slow
def test_train_twin_from_scratch_on_the_command_line(tmp_path):
    import keras

    weights = tmp_path / "mnv2.weights.h5"
    keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3)).save_weights(str(weights))
    data = write_split(tmp_path / "data", classes=("red", "green"), counts=(6, 2, 2))
    proc, res = tl("train", data, "--backbone", "MobileNetV2", "--weights", weights, "--input-size", "32",
                   "--cut", "block_3_expand_relu", "--head-epochs", "1", "--fine-tune-epochs", "1",
                   "--batch-size", "8", "--augment", "none", "--twin-from-scratch", "--json", home=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    twin = res["twin"]
    assert set(twin) == {"run_dir", "state", "val_accuracy", "test_accuracy", "val_accuracy_interval",
                         "test_accuracy_interval", "val_count", "test_count"} and twin["state"] == "completed"
    assert twin["run_dir"] != res["run_dir"] and res["state"] == "completed"
    cfg = json.loads((Path(twin["run_dir"]) / "config.json").read_text())["options"]
    assert cfg["weights"] == "none" and cfg["head_epochs"] == 0 and cfg["fine_tune_epochs"] == 2
    assert cfg["train_bn"] and cfg["name"] == "MobileNetV2 (from scratch)" and cfg["cut"] == "block_3_expand_relu"
    assert f"run_dir: {twin['run_dir']}" in proc.stderr


def test_twin_and_imagenet_usage_errors(tmp_path):
    data = write_split(tmp_path / "data", classes=("red", "green"), counts=(3, 1, 1))
    proc, res = tl("train", data, "--backbone", "ResNet50", "--weights", "none", "--twin-from-scratch", "--json",
                   home=tmp_path)
    assert proc.returncode == 1 and "from scratch" in res["error"]
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
    proc, res = tl("predict", "somerun", "--json", home=tmp_path)
    assert proc.returncode == 2 and "IMAGE" in res["error"]
    proc, res = tl("export", "somerun", "--format", "keras", "--io", "uint8", "--out", tmp_path / "m.keras",
                   "--json", home=tmp_path)
    assert proc.returncode == 1 and "--quantize int8" in res["error"]


def test_the_server_libraries_load_only_for_serve():
    code = ("import sys; import tlcore.cli.commands, tlcore.ship.export, tlcore.ship.usage, tlcore.training.twin, tlcore.ship.bundle, tlcore.ship.codegen; "
            "tlcore.cli.commands.build_parser(); "
            "assert not {'fastapi', 'uvicorn', 'onnxruntime', 'tensorflow'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))
