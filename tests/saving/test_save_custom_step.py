"""save / load_model / export_training of a model with its own train_step (a GAN with two optimizers)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnxforge as of
from onnxforge import layers, losses, ops, optimizers
from onnxforge.saving import register_keras_serializable

LATENT = 3


@register_keras_serializable(package="tests_custom_step")
class SmallGAN(of.Model):
    """Keras's GAN pattern: no call(), compile(d_optimizer, g_optimizer, loss_fn), noise drawn in the step from
    the program RNG (ops.random.normal) and from a SeedGenerator (label noise)."""

    def __init__(self, discriminator, generator, latent=LATENT, **kwargs):
        super().__init__(**kwargs)
        self.discriminator, self.generator, self.latent = discriminator, generator, latent
        self.label_noise = ops.random.SeedGenerator(5)

    def get_config(self):
        return {"name": self.name, "latent": self.latent, "discriminator": layers.serialize(self.discriminator),
                "generator": layers.serialize(self.generator)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        d = layers.deserialize(config.pop("discriminator"), custom_objects)
        g = layers.deserialize(config.pop("generator"), custom_objects)
        return cls(d, g, **config)

    def compile(self, d_optimizer, g_optimizer, loss_fn, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    def train_step(self, real):
        batch = ops.shape(real)[0]
        fake = self.generator(ops.random.normal((batch, self.latent)))
        labels = ops.concatenate([ops.ones((batch, 1)), ops.zeros((batch, 1))], axis=0)
        labels = labels + 0.05 * ops.random.uniform(ops.shape(labels), seed=self.label_noise)
        with of.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(ops.concatenate([fake, real], axis=0)))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        with of.GradientTape() as tape:
            fake = self.generator(ops.random.normal((batch, self.latent)))
            g_loss = self.loss_fn(ops.zeros((batch, 1)), self.discriminator(fake))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return {"d_loss": d_loss, "g_loss": g_loss}


DATA = np.random.default_rng(0).normal(size=(12, 2)).astype(np.float32)


def _gan(loss_fn=None) -> SmallGAN:
    g = of.Sequential([of.Input((LATENT,)), layers.Dense(6), layers.LeakyReLU(0.2), layers.Dense(2)], name="gen")
    d = of.Sequential([of.Input((2,)), layers.Dense(5), layers.LeakyReLU(0.2), layers.Dense(1)], name="disc")
    rng = np.random.default_rng(1)
    for w in g.weights + d.weights:
        w.assign(rng.normal(0, 0.5, w.shape))
    gan = SmallGAN(d, g)
    gan.compile(d_optimizer=optimizers.Adam(0.01), g_optimizer=optimizers.RMSprop(0.005),
                loss_fn=loss_fn or losses.BinaryCrossentropy(from_logits=True), seed=11, device="cpu")
    return gan


def _fit(gan: SmallGAN, epochs: int) -> dict[str, list[float]]:
    return gan.fit(DATA, epochs=epochs, batch_size=4, shuffle=True, verbose=0).history


def _state(gan: SmallGAN) -> list[np.ndarray]:
    opts = [gan.d_optimizer, gan.g_optimizer]
    return [v.numpy() for v in gan.weights] + [v.numpy() for o in opts for v in o.variables] + \
        [v.numpy() for v in gan.rng_variables()]


def test_save_load_resumes_a_gan_bit_exactly(tmp_path):
    np.random.seed(0)
    straight = _gan()
    want = _fit(straight, 4)

    np.random.seed(0)
    first = _gan()
    before = _fit(first, 2)
    path = first.save(tmp_path / "gan.onnx")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    np.random.seed(123)   # loading restores fit's shuffling RNG: whatever ran in between does not matter
    loaded = of.load_model(path)
    assert isinstance(loaded, SmallGAN) and loaded is not first
    assert isinstance(loaded.d_optimizer, optimizers.Adam) and isinstance(loaded.g_optimizer, optimizers.RMSprop)
    assert isinstance(loaded.loss_fn, losses.BinaryCrossentropy) and loaded.loss_fn.from_logits
    assert loaded.d_optimizer.learning_rate == pytest.approx(0.01)
    # Both optimizers' step counters and slots, every weight and every RNG state come back.
    saved, again = _state(first), _state(loaded)
    assert len(saved) == len(again) and int(loaded.d_optimizer.iterations.numpy()) == 6
    for a, b in zip(saved, again):
        np.testing.assert_array_equal(a, b)
    after = _fit(loaded, 2)

    for key in ("d_loss", "g_loss"):
        assert before[key] + after[key] == want[key]
    for a, b in zip(_state(straight), _state(loaded)):
        np.testing.assert_array_equal(a, b)


def test_without_the_rng_states_the_continuation_differs(tmp_path):
    # The saved RNG states matter: dropping the SeedGenerator's would change the next steps.
    np.random.seed(0)
    gan = _gan()
    _fit(gan, 1)
    path = gan.save(tmp_path / "gan.onnx")
    state = json.loads(next(e.value for e in onnx.load(str(path)).metadata_props
                            if e.key == "onnxforge.saved_state"))
    assert [name for name, _ in state["seed_generators"]] == ["seed_generator/state"]
    assert {e["attribute"] for e in state["optimizers"]} == {"d_optimizer", "g_optimizer"}
    a, b = of.load_model(path), of.load_model(path)
    b.label_noise.state.assign(np.asarray([5, 0], np.int64))
    assert a.train_on_batch(DATA[:4], return_dict=True) != b.train_on_batch(DATA[:4], return_dict=True)


def test_unstorable_compile_argument_names_the_attribute(tmp_path):
    def bce(y_true, y_pred):
        return losses.BinaryCrossentropy(from_logits=True)(y_true, y_pred)

    gan = _gan(loss_fn=bce)
    _fit(gan, 1)
    with pytest.raises(ValueError, match=r"`loss_fn`.*save_weights"):
        gan.save(tmp_path / "gan.onnx")
    assert not (tmp_path / "gan.onnx").exists()


def test_export_training_before_and_after_tracing(tmp_path):
    np.random.seed(0)
    gan = _gan()
    with pytest.raises(RuntimeError, match="train_step.*not been traced.*train_on_batch"):
        gan.export_training(tmp_path / "early.onnx")
    with pytest.raises(RuntimeError, match="custom train_step and no call.*export_training"):
        gan.export_eval(tmp_path / "eval.onnx")
    gan.train_on_batch(DATA[:4])
    path = gan.export_training(tmp_path / "train.onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert {n.domain for n in proto.graph.node} <= {"", "ai.onnx"}

    # One step in plain onnxruntime, fed the batch, the learning rates and the companion model's outputs (the
    # state now), equals the model's own next step: same losses, same new weights, optimizer and RNG states.
    meta = {e.key: e.value for e in proto.metadata_props}
    pairs = json.loads(meta["onnxforge.state"])
    rates = json.loads(meta["onnxforge.learning_rates"])
    assert sorted(rates) == ["learning_rate/d_optimizer", "learning_rate/g_optimizer"]
    assert not {i.name for i in proto.graph.input} & {t.name for t in proto.graph.initializer}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    init = ort.InferenceSession(str(tmp_path / meta["onnxforge.init_model"]), providers=["CPUExecutionProvider"])
    state = dict(zip([o.name for o in init.get_outputs()], init.run(None, {})))
    assert sorted(state) == sorted(i.name for i in sess.get_inputs() if i.name not in rates and i.name != "x")
    feeds = {"x": DATA[4:8], **{k: np.asarray(v, np.float32) for k, v in rates.items()}, **state}
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    by_input = {i: out[o] for i, o in pairs}

    logs = gan.train_on_batch(DATA[4:8], return_dict=True)
    np.testing.assert_allclose(out["logs/d_loss"], logs["d_loss"], rtol=1e-6)
    np.testing.assert_allclose(out["logs/g_loss"], logs["g_loss"], rtol=1e-6)
    variables = {name: var for var, name, _ in gan._custom_program.state}
    assert {"seed_generator/state"} <= set(variables) and len(variables) == len(pairs)
    for name, var in variables.items():
        np.testing.assert_allclose(by_input[name], var.numpy(), rtol=1e-6, atol=1e-7, err_msg=name)
