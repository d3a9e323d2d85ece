"""A tiny stand-in model implementing the interface the compiler relies on (until real layers land):
``inputs`` / ``outputs`` KerasTensor-likes, names, weights, ``trace(inputs, training)``."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx

from onnxforge.tracing import current_trace
from onnxforge.trainer import TrainingMixin
from onnxforge.variables import Variable


class KT:
    def __init__(self, shape, dtype="float32", name="t", layer=None):
        self.shape, self.dtype, self.name = tuple(shape), dtype, name
        self._keras_history = (layer, 0, 0) if layer is not None else None


class MLP(TrainingMixin):
    """``x -> Dense(hidden, relu) [-> Dropout] -> Dense(classes, out_activation)``.

    Options exercise the trace contract: ``running_stat`` records a state update (like BatchNorm's moving
    mean), ``l2`` adds a regularization loss, ``dropout`` draws in-graph noise.
    """

    def __init__(self, n_in=4, hidden=8, classes=3, out_activation="linear", dropout=0.0, l2=0.0,
                 running_stat=False, seed=0, name="mlp"):
        rng = np.random.default_rng(seed)
        self.name = name
        self.k1 = Variable(rng.normal(0, 0.5, (n_in, hidden)).astype(np.float32), "dense/kernel")
        self.b1 = Variable(rng.normal(0, 0.1, (hidden,)).astype(np.float32), "dense/bias")
        self.k2 = Variable(rng.normal(0, 0.5, (hidden, classes)).astype(np.float32), "dense_1/kernel")
        self.b2 = Variable(rng.normal(0, 0.1, (classes,)).astype(np.float32), "dense_1/bias")
        self.mm = Variable(np.zeros(hidden, np.float32), "stat/moving_mean", trainable=False)
        self.dropout, self.l2, self.running_stat = dropout, l2, running_stat
        self.out_activation = out_activation
        out_layer = SimpleNamespace(name="dense_1", activation=SimpleNamespace(__name__=out_activation))
        self.inputs = [KT((None, n_in), name="features")]
        self.outputs = [KT((None, classes), name="dense_1", layer=out_layer)]
        self.input_names, self.output_names = ["features"], ["dense_1"]
        self.layers = [out_layer]
        self.built = True

    @property
    def weights(self):
        return [self.k1, self.b1, self.k2, self.b2] + ([self.mm] if self.running_stat else [])

    @property
    def trainable_weights(self):
        return [w for w in self.weights if w.trainable]

    @property
    def non_trainable_weights(self):
        return [w for w in self.weights if not w.trainable]

    def trace(self, inputs, training):
        ctx = current_trace()
        x = inputs[0]
        b = x.builder
        h = b.op("Relu", [x @ self.k1 + self.b1])
        if self.running_stat:
            if training:
                mean = b.op("ReduceMean", [h, b.const(np.array([0], np.int64))], keepdims=0)
                ctx.update(self.mm, self.mm.__onnx_value__() * 0.9 + mean * 0.1)
            else:
                h = h - self.mm
        if self.dropout and training:
            u = ctx.random_uniform(h)
            keep = b.op("Cast", [b.op("GreaterOrEqual", [u, self.dropout])], to=onnx.TensorProto.FLOAT)
            h = h * keep * (1.0 / (1.0 - self.dropout))
        y = h @ self.k2 + self.b2
        if self.out_activation == "softmax":
            y = b.op("Softmax", [y], axis=-1)
        elif self.out_activation == "sigmoid":
            y = b.op("Sigmoid", [y])
        if self.l2 and training is not None:
            k1 = ctx.read(self.k1)
            ctx.add_loss(b.op("ReduceSum", [k1 * k1], keepdims=0) * self.l2)
        return [y]

    def numpy_forward(self, x, k1=None, b1=None, k2=None, b2=None):
        k1 = self.k1.numpy() if k1 is None else k1
        b1 = self.b1.numpy() if b1 is None else b1
        k2 = self.k2.numpy() if k2 is None else k2
        b2 = self.b2.numpy() if b2 is None else b2
        h = np.maximum(x @ k1 + b1, 0)
        return h @ k2 + b2
