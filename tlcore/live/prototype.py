"""The prototype classifier of teach-by-showing: backbone embeddings and the nearest class mean.

Each class is the mean of its frames' embeddings (the backbone's features, average-pooled:
what a stage-1 head sees); an image goes to the class whose mean is nearest. Scores are minus
the squared distance over a temperature (the mean squared distance of the frames to their own
class mean), which is a linear function of the embedding: so the same classifier is a Dense
layer on the backbone (kernel 2 mu_c / T, bias -|mu_c|^2 / T), and two classes follow the
one-unit sigmoid convention of `outputs` (z = score_1 - score_0). `keras_model` builds that
model; `save_run` stores it as a normal run that predict, evaluate and export read.
"""
from __future__ import annotations

import os
import socket

import numpy as np

from ..core.errors import TLCoreError
from ..data.outputs import output_units, probabilities

MIN_TEMPERATURE = 1e-6


class Prototype:
    """Class means over embeddings from one backbone; updated by `add`, no training."""

    def __init__(self, preprocess: list, backbone, input_size: int, resize: str = "stretch",
                 options: dict | None = None, provenance: dict | None = None):
        self._pre = list(preprocess)
        self.backbone = backbone
        self.input_size = int(input_size)
        self.resize = resize
        self.options = dict(options or {})
        self.provenance = dict(provenance or {})
        self._sums: dict[str, np.ndarray] = {}
        self._sq: dict[str, float] = {}  # sum of squared norms per class (for the spread)
        self._counts: dict[str, int] = {}
        self._fn = None

    # --- where the backbone comes from ------------------------------------------------
    @classmethod
    def from_run(cls, run_dir, runs_dir=None) -> "Prototype":
        """The backbone (and its preprocessing) of a trained run's model: its features already
        tell apart what that run learnt."""
        from ..ship.predict import RunModel

        rm = RunModel(run_dir, runs_dir)
        pre = [layer for layer in rm.model.layers if layer.name.startswith("preprocess_")]
        try:
            backbone = rm.model.get_layer("backbone")
        except ValueError:
            raise TLCoreError(f"Run {rm.run.run_id}'s model was not built by the studio (no backbone part); "
                              "choose another run.") from None
        opts = dict(rm.run.config().get("options") or {})
        resolved = rm.run.config().get("resolved") or {}
        prov = {"kind": "run", "run_id": rm.run.run_id, "preprocessing": resolved.get("preprocessing")}
        return cls(pre, backbone, rm.input_size, rm.resize, opts, prov)

    @classmethod
    def from_options(cls, options: dict) -> "Prototype":
        """The backbone a TrainConfig's options describe (catalog or file, weights, size, cut)."""
        from ..recipe.config import TrainConfig
        from ..recipe.surgery import cut_backbone, preprocessing_layers
        from ..backbones.source import load_source

        config = TrainConfig.from_dict({**options, "data": options.get("data") or "."})
        source = load_source(config)
        backbone, _ = cut_backbone(source.backbone, config.cut, source.paths, source.default_cut)
        prov = {"kind": "options", **source.provenance, "preprocessing": source.preprocessing}
        return cls(preprocessing_layers(source.preprocessing), backbone, source.input_size,
                   config.resize, config.to_dict(), prov)

    # --- embeddings -------------------------------------------------------------------
    def embed(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Pooled backbone features [n, d] of RGB 0-255 images [n, size, size, 3], one trace."""
        import tensorflow as tf

        if self._fn is None:
            pre, backbone = self._pre, self.backbone

            @tf.function(input_signature=[tf.TensorSpec([None, self.input_size, self.input_size, 3], tf.float32)],
                         reduce_retracing=True, autograph=False)
            def fn(x):
                for layer in pre:
                    x = layer(x)
                f = tf.cast(backbone(x, training=False), tf.float32)
                return tf.reduce_mean(f, axis=[1, 2]) if len(f.shape) == 4 else tf.reshape(f, [tf.shape(f)[0], -1])

            self._fn = fn
        out = [np.asarray(self._fn(tf.constant(np.asarray(images[i:i + batch_size], dtype=np.float32))))
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out, axis=0) if out else np.zeros((0, 0), np.float32)

    # --- the classifier ---------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        """Classes with at least one frame, sorted (as a folder dataset orders them)."""
        return sorted(c for c, n in self._counts.items() if n)

    @property
    def counts(self) -> dict[str, int]:
        return {c: self._counts[c] for c in self.labels}

    @property
    def ready(self) -> bool:
        return len(self.labels) >= 2

    def add(self, label: str, images: np.ndarray) -> None:
        """Fold frames of class `label` (RGB 0-255 at the input size) into its mean."""
        if len(images) == 0:
            return
        e = self.embed(np.asarray(images)).astype(np.float64)
        self._sums[label] = self._sums.get(label, 0.0) + e.sum(axis=0)
        self._sq[label] = self._sq.get(label, 0.0) + float((e ** 2).sum())
        self._counts[label] = self._counts.get(label, 0) + len(e)

    def forget(self, label: str) -> None:
        for d in (self._sums, self._sq, self._counts):
            d.pop(label, None)

    def means(self) -> np.ndarray:
        return np.stack([self._sums[c] / self._counts[c] for c in self.labels])

    def temperature(self) -> float:
        """Mean squared distance of the frames to their class mean (at least MIN_TEMPERATURE)."""
        total = sum(self._counts[c] for c in self.labels)
        spread = sum(self._sq[c] - float((self._sums[c] ** 2).sum()) / self._counts[c] for c in self.labels)
        scale = float(np.mean(self.means() ** 2)) * self.means().shape[1]
        return max(spread / max(total, 1), MIN_TEMPERATURE * max(scale, 1.0))

    def dense_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(kernel [d, units], bias [units]) of the Dense layer equal to the nearest-mean rule."""
        if not self.ready:
            raise TLCoreError("Record frames of at least two classes first.")
        mu, t = self.means(), self.temperature()
        kernel, bias = 2.0 * mu.T / t, -(mu ** 2).sum(axis=1) / t
        if output_units(len(mu)) == 1:
            kernel, bias = kernel[:, 1:] - kernel[:, :1], bias[1:] - bias[:1]
        return kernel.astype(np.float32), bias.astype(np.float32)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """[n, classes] for RGB 0-255 images at the input size, as the saved model gives them."""
        kernel, bias = self.dense_weights()
        z = self.embed(images).astype(np.float64) @ kernel + bias
        if z.shape[1] == 1:
            out = np.exp(-np.logaddexp(0.0, -z))  # the sigmoid, without overflow
        else:
            z = z - z.max(axis=1, keepdims=True)
            out = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return probabilities(out, len(self.labels)).astype(np.float64)

    # --- as a normal run --------------------------------------------------------------
    def keras_model(self):
        """image -> preprocessing -> backbone -> head (average pooling, Dense from the means)."""
        import keras

        from ..recipe.surgery import HeadSpec, build_head

        head = build_head(self.backbone.output.shape[1:], len(self.labels), HeadSpec("avg", (), 0.0))
        kernel, bias = self.dense_weights()
        head.get_layer("predictions").set_weights([kernel, bias])
        inputs = keras.Input(shape=(self.input_size, self.input_size, 3), name="image", dtype="float32")
        x = inputs
        for layer in self._pre:
            x = layer(x)
        return keras.Model(inputs, head(self.backbone(x)), name="classifier")

    def save_run(self, data=None, runs_dir=None, name: str = "prototype"):
        """A completed run holding `keras_model()`, its labels and a config naming `data`."""
        from ..core.jsonio import write_json
        from ..core.runs import RunStore, now_iso

        if not self.ready:
            raise TLCoreError("Record frames of at least two classes first.")
        store = RunStore(runs_dir)
        run = store.create(hint=name)
        started = now_iso()
        options = {**self.options, "resize": self.resize, "name": name}
        if data is not None:
            options["data"] = str(data)
        write_json(run.file("labels.json"), self.labels)
        write_json(run.file("config.json"), {
            "options": options, "prototype": {"counts": self.counts, "temperature": self.temperature(),
                                              "backbone_from": self.provenance},
            "resolved": {"input_size": self.input_size, "num_classes": len(self.labels),
                         "preprocessing": self.provenance.get("preprocessing")},
            "created_at": started})
        model = self.keras_model()
        tmp = run.file(f".model.{os.getpid()}.keras")
        model.save(tmp)
        os.replace(tmp, run.file("model.keras"))
        run.write_status(state="completed", pid=None, host=socket.gethostname(), started_at=started,
                         ended_at=now_iso(), stage=None, epoch=0, epochs_total=0, error=None, traceback=None,
                         note="prototype: nearest class mean on the backbone's features, no training")
        return run
