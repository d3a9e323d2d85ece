"""keras.io's "Transfer learning & fine-tuning": ``trainable`` and the weight lists, freezing that never
updates frozen weights, recursive ``trainable`` on nested models, a frozen base called with
``training=False`` then unfrozen for fine-tuning after a recompile, and a frozen BatchNormalization in
inference mode.
"""
from __future__ import annotations

import numpy as np

from tests.keras_examples.harness import assert_close, run_both

RNG = np.random.default_rng(0)


def trainable_attributes(keras_api, data, init):
    layers = keras_api.layers
    out = {}
    dense = layers.Dense(3)
    dense.build((None, 4))
    bn = layers.BatchNormalization()
    bn.build((None, 4))
    frozen = layers.Dense(3)
    frozen.build((None, 4))
    frozen.trainable = False
    for tag, layer in (("dense", dense), ("bn", bn), ("frozen", frozen)):
        out.update({f"{tag}_all": float(len(layer.weights)), f"{tag}_trainable": float(len(layer.trainable_weights)),
                    f"{tag}_non": float(len(layer.non_trainable_weights))})
    inner = keras_api.Sequential([keras_api.Input(shape=(3,)), layers.Dense(3, activation="relu"), layers.Dense(3)])
    model = keras_api.Sequential([keras_api.Input(shape=(3,)), inner, layers.Dense(3, activation="sigmoid")])
    model.trainable = False
    out.update(inner_off=float(inner.trainable), inner_layer_off=float(inner.layers[0].trainable),
               trainable_off=float(len(model.trainable_weights)))
    model.trainable = True
    out.update(inner_on=float(inner.layers[0].trainable), trainable_on=float(len(model.trainable_weights)))
    return out


def test_trainable_attributes_match_keras():
    want, got = run_both(trainable_attributes, None, copy_weights=False)
    assert_close(want, got, rtol=0)


def fine_tune(keras_api, data, init):
    layers = keras_api.layers
    base_in = keras_api.Input((6, 6, 3))
    x = layers.Conv2D(4, 3)(base_in)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    base_model = keras_api.Model(base_in, layers.GlobalAveragePooling2D()(x), name="base")
    init(base_model)
    base_model.trainable = False
    inputs = keras_api.Input(shape=(6, 6, 3))
    x = layers.Rescaling(scale=1 / 127.5, offset=-1)(inputs)
    x = base_model(x, training=False)
    model = keras_api.Model(inputs, layers.Dense(1)(x))
    init(model)
    start = [np.array(w) for w in base_model.get_weights()]
    model.compile(optimizer=keras_api.optimizers.Adam(1e-2), loss=keras_api.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras_api.metrics.BinaryAccuracy()])
    out = {"top_trainable": float(len(model.trainable_weights))}
    history = model.fit(data[0], data[1], epochs=2, batch_size=8, shuffle=False, verbose=0)
    out.update({f"top_{k}_{i}": float(v) for k, vs in history.history.items() for i, v in enumerate(vs)})
    out["base_unchanged"] = float(all(np.array_equal(a, b) for a, b in zip(start, base_model.get_weights())))

    base_model.trainable = True
    model.compile(optimizer=keras_api.optimizers.Adam(1e-3), loss=keras_api.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras_api.metrics.BinaryAccuracy()])
    out["tune_trainable"] = float(len(model.trainable_weights))
    bn = base_model.layers[2]
    stats = [np.array(w) for w in bn.get_weights()[2:]]
    history = model.fit(data[0], data[1], epochs=1, batch_size=8, shuffle=False, verbose=0)
    out.update({f"tune_{k}": float(vs[0]) for k, vs in history.history.items()})
    # Whether the moving statistics move: Keras 3 (both backends) updates them here, whatever the guide's
    # prose says of training=False, and onnxforge must do what Keras does.
    out["bn_stats_unchanged"] = float(all(np.array_equal(a, b) for a, b in zip(stats, bn.get_weights()[2:])))
    out["kernel_changed"] = float(not np.array_equal(start[0], base_model.get_weights()[0]))
    return out


def test_frozen_base_then_fine_tuning_matches_keras():
    data = (RNG.integers(0, 255, (16, 6, 6, 3)).astype("float32"), RNG.integers(0, 2, (16, 1)).astype("float32"))
    want, got = run_both(fine_tune, data, copy_weights=True)
    assert got["base_unchanged"] == 1.0 and got["kernel_changed"] == 1.0
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def frozen_batchnorm(keras_api, data, init):
    """A BatchNormalization layer set ``trainable = False`` runs in inference mode in ``fit`` (Keras 3), in a
    functional model and inside a frozen nested model."""
    layers = keras_api.layers
    inputs = keras_api.Input((5,))
    x = layers.BatchNormalization()(inputs)
    model = keras_api.Model(inputs, layers.Dense(1)(x))
    init(model)
    model.layers[1].trainable = False
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(data[0], data[1], batch_size=4, shuffle=False, verbose=0)
    inner = keras_api.Sequential([keras_api.Input((5,)), layers.BatchNormalization()])
    outer = keras_api.Sequential([keras_api.Input((5,)), inner, layers.Dense(1)])
    init(outer)
    inner.trainable = False
    outer.compile(optimizer="sgd", loss="mse")
    nested = outer.fit(data[0], data[1], batch_size=4, shuffle=False, verbose=0)
    return {"loss": history.history["loss"][0], "nested_loss": nested.history["loss"][0],
            "moving_mean": float(model.layers[1].get_weights()[2].sum()),
            "nested_moving_mean": float(inner.layers[0].get_weights()[2].sum())}


def test_frozen_batchnorm_runs_in_inference_mode_like_keras():
    data = (RNG.random((8, 5)).astype("float32") * 5, RNG.random((8, 1)).astype("float32"))
    want, got = run_both(frozen_batchnorm, data, copy_weights=True)
    assert_close(want, got, rtol=1e-5, atol=1e-7)
