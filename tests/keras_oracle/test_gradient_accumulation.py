"""``gradient_accumulation_steps`` against Keras 3 on torch: the same model and data trained by ``fit`` in both, with
the update every k-th step of the mean gradient, clipping, weight decay, loss scaling and the moving average
(``use_ema``) placed as Keras places them. The weights, the losses and every optimizer Variable (the raw step
counter, averages, accumulators, slots) must agree to float32 rounding (observed: 4e-7)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.keras_oracle.common import LIBS, fkeras, max_diff

OPTIMIZERS = {
    "adam": ("Adam", dict(learning_rate=0.05, gradient_accumulation_steps=3)),
    "sgd_decay_ema": ("SGD", dict(learning_rate=0.1, momentum=0.9, weight_decay=0.01, use_ema=True,
                                  ema_momentum=0.5, gradient_accumulation_steps=2)),
    "adamw_scaled_clipped": ("AdamW", dict(learning_rate=0.05, clipvalue=0.1, loss_scale_factor=8.0,
                                           gradient_accumulation_steps=4)),
}


def _train(lib, name: str):
    k = LIBS[lib]
    cls, kwargs = OPTIMIZERS[name]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(28, 5)).astype("float32"), rng.normal(size=(28, 2)).astype("float32")
    model = k.Sequential([k.Input((5,)), k.layers.Dense(3, activation="tanh"), k.layers.Dense(2)])
    model.set_weights([np.linspace(-1, 1, w.size, dtype="float32").reshape(w.shape) for w in model.get_weights()])
    optimizer = getattr(k.optimizers, cls)(**kwargs)
    model.compile(optimizer=optimizer, loss="mse")
    history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)   # 14 steps
    state = [np.asarray(v) for v in optimizer.variables if not v.path.endswith("learning_rate")]
    return model.get_weights(), history.history["loss"], state, optimizer


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fit_with_gradient_accumulation_matches_keras(name):
    weights, losses, state, optimizer = _train("onnxforge", name)
    k_weights, k_losses, k_state, k_optimizer = _train("keras", name)
    assert max_diff(weights, k_weights) < 2e-6
    np.testing.assert_allclose(losses, k_losses, rtol=1e-5, atol=1e-6)
    assert [s.shape for s in state] == [s.shape for s in k_state]
    assert max_diff(state, k_state) < 2e-6   # the raw step counter (14) first, then averages, sums and slots
    assert optimizer.get_config()["gradient_accumulation_steps"] == \
        k_optimizer.get_config()["gradient_accumulation_steps"]


def test_the_training_graph_selects_and_stays_standard(tmp_path):
    model = fkeras.Sequential([fkeras.Input((3,)), fkeras.layers.Dense(2)])
    model.compile(optimizer=fkeras.optimizers.SGD(0.1, gradient_accumulation_steps=2), loss="mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    before = model.get_weights()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)   # step 1 of 2: the gradient is only summed
    assert max_diff(model.get_weights(), before) == 0.0
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)   # step 2: the update
    assert max_diff(model.get_weights(), before) > 0.0
    model.export_training(str(tmp_path / "step.onnx"))   # the accumulators are state inputs like the slots
    proto = onnx.load(str(tmp_path / "step.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    assert {op.domain for op in proto.opset_import} <= {"", "ai.onnx"}
    assert any(i.name.endswith("_gradient_accumulator") for i in proto.graph.input)


@pytest.mark.parametrize("steps", [1, 0.5, True, -2])
def test_bad_accumulation_steps_are_refused_as_keras(steps):
    for lib in ("keras", "onnxforge"):
        with pytest.raises(ValueError, match="gradient_accumulation_steps"):
            LIBS[lib].optimizers.Adam(gradient_accumulation_steps=steps)
