"""``save_assets`` / ``load_assets`` and ``save_own_variables`` / ``load_own_variables`` in ``.keras`` files, as
Keras 3 calls them: adapted lookup vocabularies both ways against real Keras (tensorflow backend, in a
subprocess: string inputs need it), and custom layers' hooks."""
from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

pytest.importorskip("h5py")
import onnxforge as of  # noqa: E402
from tests import tf_server  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

_KERAS_SCRIPT = r'''
import os, sys, json, numpy as np
os.environ["KERAS_BACKEND"] = "tensorflow"
import keras
mode, path = sys.argv[1], sys.argv[2]
import tensorflow as tf
feeds = [tf.constant([["paris"], ["zzz"]]), tf.constant([[12], [99]], tf.int64)]
if mode == "write":
    c = keras.Input((1,), dtype="string"); k = keras.Input((1,), dtype="int64")
    sl = keras.layers.StringLookup(output_mode="one_hot", name="sl"); sl.adapt(np.array(["paris", "rome", "paris", "oslo"]))
    il = keras.layers.IntegerLookup(name="il"); il.adapt(np.array([12, 36, 12, 99]))
    keras.Model([c, k], [keras.layers.Dense(2, kernel_initializer="ones")(sl(c)), il(k)]).save(path)
model = keras.models.load_model(path)
print(json.dumps({"vocab": [model.get_layer("sl").get_vocabulary(), [int(v) for v in model.get_layer("il").get_vocabulary()]],
                  "out": [np.asarray(o).tolist() for o in model.predict(feeds, verbose=0)]}))
'''


def _keras(mode, path):
    pytest.importorskip("tensorflow")
    done = tf_server.run(["-c", _KERAS_SCRIPT, mode, str(path)], timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    import json
    return json.loads(done.stdout.strip().splitlines()[-1])


def _feeds():
    return [np.array([["paris"], ["zzz"]]), np.array([[12], [99]])]


@pytest.mark.slow
def test_lookup_vocabularies_both_ways_with_keras(tmp_path):
    path = tmp_path / "k.keras"
    keras_side = _keras("write", path)
    assert any(n.startswith("assets/") for n in zipfile.ZipFile(path).namelist())
    model = of.keras.models.load_model(path)
    assert [model.get_layer("sl").get_vocabulary(), model.get_layer("il").get_vocabulary()] == keras_side["vocab"]
    for ours, theirs in zip(model.predict(_feeds(), verbose=0), keras_side["out"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    ours_path = tmp_path / "of.keras"
    model.save(ours_path)
    assert "assets/layers/string_lookup/vocabulary.txt" in zipfile.ZipFile(ours_path).namelist()
    assert _keras("read", ours_path) == keras_side


def test_adapted_lookup_round_trip_writes_keras_assets(tmp_path):
    inputs = of.keras.Input((1,), dtype="string")
    layer = of.keras.layers.StringLookup(output_mode="multi_hot")
    layer.adapt(np.array(["b", "a", "b"]))
    text = of.keras.layers.TextVectorization(max_tokens=10, output_sequence_length=3)
    text.adapt(np.array(["x y", "y"]))
    model = of.keras.Model(inputs, [layer(inputs), text(inputs)])
    path = tmp_path / "m.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        assert zf.read("assets/layers/string_lookup/vocabulary.txt") == b"[UNK]\nb\na"
        assert "assets/layers/text_vectorization/_lookup_layer/vocabulary.txt" in zf.namelist()
    again = of.keras.models.load_model(path)
    assert again.layers[1].get_vocabulary() == ["[UNK]", "b", "a"]
    x = np.array([["a"], ["zz"]])
    for ours, theirs in zip(again.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_array_equal(ours, theirs)


def test_compiled_model_reads_its_vocabulary_before_predicting(tmp_path):
    # Keras 3 writes an adapted TextVectorization's vocabulary as null in config.json and the tokens in the
    # assets; load_model compiles (tracing the programs) before it reads the assets. keras.io's end-to-end text
    # model predicted with every token out of vocabulary until the traced vocabulary was compared at predict.
    inputs = of.keras.Input((1,), dtype="string")
    text = of.keras.layers.TextVectorization(max_tokens=10, output_sequence_length=3)
    text.adapt(np.array(["x y", "y"]))
    model = of.keras.Model(inputs, text(inputs))
    model.compile(loss="mse")
    path, keras_like = tmp_path / "m.keras", tmp_path / "keras_like.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(keras_like, "w") as out:
        for name in zf.namelist():
            data = zf.read(name)
            if name == "config.json":
                import json
                config = json.loads(data)
                config["config"]["layers"][1]["config"]["vocabulary"] = None
                data = json.dumps(config).encode()
            out.writestr(name, data)
    x = np.array([["y x z"]])
    for file in (path, keras_like):
        again = of.keras.models.load_model(file)
        np.testing.assert_array_equal(again.predict(x, verbose=0), [[2, 3, 1]])
        np.testing.assert_array_equal(again.predict_on_batch(x), [[2, 3, 1]])


def test_lookup_reads_vocabulary_from_assets_only_when_config_has_none(tmp_path):
    layer = of.layers.StringLookup()
    (tmp_path / "vocabulary.txt").write_text("[UNK]\nq\nr\n\n")
    layer.load_assets(str(tmp_path))
    assert layer.get_vocabulary() == ["[UNK]", "q", "r"]
    given = of.layers.StringLookup(vocabulary=["s"])
    given.load_assets(str(tmp_path))
    assert given.get_vocabulary() == ["[UNK]", "s"]
    layer.load_assets(None)          # Keras hands None where the archive has no folder for the layer
    bad = of.layers.IntegerLookup()
    with pytest.raises(ValueError, match="not an integer"):
        bad.load_assets(str(tmp_path))


# ------------------------------------------------------------------------------------------ custom hooks
@of.saving.register_keras_serializable(package="t_assets")
class WithAssets(of.keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.vocab = ["a", "b"]

    def call(self, x):
        return x

    def save_assets(self, inner_path):
        with open(os.path.join(inner_path, "vocabulary.txt"), "w") as f:
            f.write("\n".join(self.vocab))

    def load_assets(self, inner_path):
        with open(os.path.join(inner_path, "vocabulary.txt")) as f:
            self.vocab = f.read().split("\n")


@of.saving.register_keras_serializable(package="t_assets")
class OwnVariables(of.keras.layers.Dense):
    """Keras's guide example: an extra array stored under its own key next to the layer's variables."""

    extra = np.zeros(1, np.float32)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["extra"] = self.extra

    def load_own_variables(self, store):
        super().load_own_variables({k: store[k] for k in store.keys() if k != "extra"})
        self.extra = store["extra"]


def test_custom_save_assets_and_own_variables_hooks(tmp_path):
    layer = WithAssets()
    layer.vocab = ["x", "y", "z"]
    own = OwnVariables(2)
    model = of.keras.Sequential([of.keras.Input((3,)), layer, own])
    own.extra = np.array([7.0], np.float32)
    path = tmp_path / "hooks.keras"
    model.save(path)
    assert "assets/layers/with_assets/vocabulary.txt" in zipfile.ZipFile(path).namelist()
    again = of.keras.models.load_model(path)
    assert again.layers[0].vocab == ["x", "y", "z"]
    np.testing.assert_array_equal(again.layers[1].extra, [7.0])
    np.testing.assert_array_equal(again.layers[1].get_weights()[0], own.get_weights()[0])


def test_failing_load_own_variables_is_reported(tmp_path):
    model = of.keras.Sequential([of.keras.Input((3,)), OwnVariables(2)])
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    other = of.keras.Sequential([of.keras.Input((3,)), of.keras.layers.Dense(2)])
    other.save_weights(path)        # no "extra": the hook's KeyError becomes the load error
    with pytest.raises(Exception, match="load_own_variables"):
        model.load_weights(path)


@of.saving.register_keras_serializable(package="t_assets")
class VariableBeforeBuild(of.keras.layers.Dense):
    """Keras's saving guide: a Variable made in ``__init__`` (so tracked before the kernel), kept under its own
    key, while Dense's own entries stay ``"0"`` = kernel and ``"1"`` = bias."""

    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)
        self.my_variable = of.keras.Variable(np.arange(1, units + 1, dtype="float32"), name="my_variable")

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["variables"] = self.my_variable.numpy()

    def load_own_variables(self, store):
        self.my_variable.assign(store["variables"])
        self.kernel.assign(store["0"])
        self.bias.assign(store["1"])

    def call(self, inputs, training=False):
        return super().call(inputs) * self.my_variable


def test_dense_subclass_extra_variable_keeps_keras_slots(tmp_path):
    from .keras_oracle import keras

    model = of.keras.Sequential([of.keras.Input((5,)), VariableBeforeBuild(3)])
    model.layers[0].my_variable.assign(np.array([2.0, -1.0, 0.5], np.float32))
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    path = tmp_path / "v.keras"
    model.save(path)
    again = of.keras.models.load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)

    class KerasTwin(keras.layers.Dense):        # the same layer in real Keras: where does it put each array?
        def __init__(self, units, **kwargs):
            super().__init__(units, **kwargs)
            self.my_variable = keras.Variable(np.ones(units, "float32"), name="my_variable")

        def save_own_variables(self, store):
            super().save_own_variables(store)
            store["variables"] = self.my_variable.numpy()

    twin = keras.Sequential([keras.Input((5,)), KerasTwin(3)])
    twin.save_weights(tmp_path / "k.weights.h5")
    model.save_weights(tmp_path / "o.weights.h5")
    import h5py
    with h5py.File(tmp_path / "k.weights.h5") as k, h5py.File(tmp_path / "o.weights.h5") as o:
        for f in (k, o):
            group = f["layers/keras_twin/vars" if f is k else "layers/variable_before_build/vars"]
            assert sorted(group) == ["0", "1", "variables"]
            assert [group[n].shape for n in ("0", "1", "variables")] == [(5, 3), (3,), (3,)]
