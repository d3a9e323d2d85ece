"""keras.io's "The Sequential model" guide: ``add`` / ``pop``, a model that builds on its first call (no
weights before), ``Input`` as the first entry (not in ``model.layers``), shapes while stacking with ``add``,
feature extraction from a built Sequential model, and freezing every layer but the last.
"""
from __future__ import annotations

import numpy as np

from tests.keras_examples.harness import assert_close, run_both, to_numpy

RNG = np.random.default_rng(0)


def build_and_inspect(keras_api, data, init):
    layers = keras_api.layers
    model = keras_api.Sequential()
    model.add(layers.Dense(2, activation="relu"))
    model.add(layers.Dense(3, activation="relu"))
    model.add(layers.Dense(4))
    model.pop()
    out = {"after_pop": float(len(model.layers)), "built_after_pop": float(model.built)}

    lazy = keras_api.Sequential([layers.Dense(2, activation="relu"), layers.Dense(3), layers.Dense(4)])
    out["weights_before_call"] = float(len(lazy.weights))
    lazy(np.ones((1, 4), "float32"))
    out["weights_after_call"] = float(len(lazy.weights))

    with_input = keras_api.Sequential()
    with_input.add(keras_api.Input(shape=(4,)))
    with_input.add(layers.Dense(2, activation="relu"))
    out["layers_without_input"] = float(len(with_input.layers))
    out["weights_with_input"] = float(len(with_input.weights))

    conv = keras_api.Sequential()
    conv.add(keras_api.Input(shape=(50, 50, 3)))
    conv.add(layers.Conv2D(8, 5, strides=2, activation="relu"))
    conv.add(layers.Conv2D(8, 3, activation="relu"))
    conv.add(layers.MaxPooling2D(3))
    out.update({f"shape_a{i}": float(d) for i, d in enumerate(conv.output_shape[1:])})
    conv.add(layers.Conv2D(8, 3, activation="relu"))
    conv.add(layers.MaxPooling2D(2))
    out.update({f"shape_b{i}": float(d) for i, d in enumerate(conv.output_shape[1:])})
    conv.add(layers.GlobalMaxPooling2D())
    conv.add(layers.Dense(10))
    out["params"] = float(conv.count_params())
    return out


def test_building_a_sequential_model_step_by_step_matches_keras():
    want, got = run_both(build_and_inspect, None, copy_weights=False)
    assert_close(want, got, rtol=0)


def feature_extraction(keras_api, data, init):
    layers = keras_api.layers
    initial = keras_api.Sequential([keras_api.Input(shape=(20, 20, 3)),
                                    layers.Conv2D(4, 5, strides=2, activation="relu"),
                                    layers.Conv2D(4, 3, activation="relu", name="my_intermediate_layer"),
                                    layers.Conv2D(4, 3, activation="relu")])
    init(initial)
    every = keras_api.Model(inputs=initial.inputs, outputs=[layer.output for layer in initial.layers])
    one = keras_api.Model(inputs=initial.inputs, outputs=initial.get_layer(name="my_intermediate_layer").output)
    out = {f"every{i}": float(to_numpy(f).sum()) for i, f in enumerate(every(data))}
    out["one"] = float(to_numpy(one(data)).sum())
    return out


def test_feature_extraction_from_a_sequential_model_matches_keras():
    want, got = run_both(feature_extraction, RNG.random((1, 20, 20, 3)).astype("float32"), copy_weights=True)
    assert_close(want, got, rtol=1e-5)


def freeze_all_but_last(keras_api, data, init):
    layers = keras_api.layers
    model = keras_api.Sequential([keras_api.Input(shape=(8,)), layers.Dense(6, activation="relu"),
                                  layers.Dense(6, activation="relu"), layers.Dense(3)])
    init(model)
    before = [np.array(w) for w in model.get_weights()]
    for layer in model.layers[:-1]:
        layer.trainable = False
    model.compile(optimizer=keras_api.optimizers.SGD(0.1), loss="mse")
    history = model.fit(data[0], data[1], epochs=2, batch_size=8, shuffle=False, verbose=0)
    after = model.get_weights()
    out = {f"loss_{i}": float(v) for i, v in enumerate(history.history["loss"])}
    out["frozen_unchanged"] = float(all(np.array_equal(a, b) for a, b in zip(before[:4], after[:4])))
    out["last_changed"] = float(not np.array_equal(before[4], after[4]))
    out["trainable"] = float(len(model.trainable_weights))
    return out


def test_freezing_all_layers_but_the_last_trains_like_keras():
    data = (RNG.random((24, 8)).astype("float32"), RNG.random((24, 3)).astype("float32"))
    want, got = run_both(freeze_all_but_last, data, copy_weights=True)
    assert got["frozen_unchanged"] == 1.0 and got["last_changed"] == 1.0
    assert_close(want, got, rtol=1e-5)
