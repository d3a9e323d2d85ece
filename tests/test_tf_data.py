"""``tf.data.Dataset`` beyond the core pipeline (``onnxforge/utils/dataset_methods.py``) and ``tf.TensorSpec``.

Each pipeline's expected elements are tf.data's documented semantics, written out; where TensorFlow is
installed (``pip install -e .[bench]``) the same pipelines also run in tf.data and must agree element by
element."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
from onnxforge.keras import layers

D = tf.data.Dataset


def _listed(ds):
    def plain(x):
        if isinstance(x, tuple):
            return tuple(plain(v) for v in x)
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return np.asarray(x).tolist()
    return [plain(e) for e in ds.as_numpy_iterator()]


def _gen_varlen():
    for i in range(1, 4):
        yield [i] * i


def _gen_pairs():
    for i in range(4):
        yield np.full((2,), i, np.float32), i


# name -> (pipeline builder taking the tf module, expected elements)
PIPELINES = {
    "range": (lambda t: t.data.Dataset.range(2, 9, 3), [2, 5, 8]),
    "from_tensors": (lambda t: t.data.Dataset.from_tensors(([1, 2], 3)), [([1, 2], 3)]),
    "window_flat_map": (lambda t: t.data.Dataset.range(7).window(3, shift=2).flat_map(lambda w: w.batch(3)),
                        [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6]]),
    "window_drop_stride": (lambda t: t.data.Dataset.range(10).window(3, shift=1, stride=2, drop_remainder=True)
                           .flat_map(lambda w: w.batch(3)), [[0, 2, 4], [1, 3, 5], [2, 4, 6], [3, 5, 7],
                                                             [4, 6, 8], [5, 7, 9]]),
    "window_tuple": (lambda t: t.data.Dataset.zip((t.data.Dataset.range(4), t.data.Dataset.range(10, 14)))
                     .window(2).flat_map(lambda a, b: t.data.Dataset.zip((a.batch(2), b.batch(2)))),
                     [([0, 1], [10, 11]), ([2, 3], [12, 13])]),
    "zip_dict": (lambda t: t.data.Dataset.zip({"a": t.data.Dataset.range(3), "b": t.data.Dataset.range(5, 7)}),
                 [{"a": 0, "b": 5}, {"a": 1, "b": 6}]),
    "zip_varargs": (lambda t: t.data.Dataset.zip(t.data.Dataset.range(2), t.data.Dataset.range(3)),
                    [(0, 0), (1, 1)]),
    "concatenate": (lambda t: t.data.Dataset.range(2).concatenate(t.data.Dataset.range(5, 7)), [0, 1, 5, 6]),
    "enumerate": (lambda t: t.data.Dataset.range(5, 7).enumerate(start=3), [(3, 5), (4, 6)]),
    "padded_batch": (lambda t: t.data.Dataset.from_generator(_gen_varlen, output_types=t.int32,
                                                             output_shapes=(None,)).padded_batch(2),
                     [[[1, 0], [2, 2]], [[3, 3, 3]]]),
    "padded_batch_shapes": (lambda t: t.data.Dataset.range(1, 3).map(lambda n: t.fill([n], n))
                            .padded_batch(2, padded_shapes=(4,), padding_values=np.int64(-1)),
                            [[[1, -1, -1, -1], [2, 2, -1, -1]]]),
    "from_generator_signature": (lambda t: t.data.Dataset.from_generator(
        _gen_pairs, output_signature=(t.TensorSpec(shape=(2,), dtype=t.float32),
                                      t.TensorSpec(shape=(), dtype=t.int32))).batch(3),
        [([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], [0, 1, 2]), ([[3.0, 3.0]], [3])]),
    "interleave": (lambda t: t.data.Dataset.range(1, 6).interleave(
        lambda x: t.data.Dataset.from_tensors(x).repeat(6), cycle_length=2, block_length=4),
        [1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 3, 3, 4, 4, 5, 5, 5, 5, 5, 5]),
    "scan": (lambda t: t.data.Dataset.range(5).scan(np.int64(0), lambda s, x: (s + x, s + x)), [0, 1, 3, 6, 10]),
    "take_while": (lambda t: t.data.Dataset.range(10).take_while(lambda x: x < 4), [0, 1, 2, 3]),
    "shard": (lambda t: t.data.Dataset.range(10).shard(num_shards=3, index=1), [1, 4, 7]),
    "unique": (lambda t: t.data.Dataset.from_tensor_slices(np.array([1, 37, 2, 37, 2, 1])).unique(), [1, 37, 2]),
    "rebatch": (lambda t: t.data.Dataset.range(6).batch(4).rebatch(3), [[0, 1, 2], [3, 4, 5]]),
    "group_by_window": (lambda t: t.data.Dataset.range(10).group_by_window(
        key_func=lambda x: x % 2, reduce_func=lambda key, ds: ds.batch(10), window_size=5),
        [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]),
    "bucket_by_sequence_length": (lambda t: t.data.Dataset.from_generator(
        lambda: iter([[0], [1, 2, 3, 4], [5, 6, 7], [7, 8, 9, 10, 11], [13, 14, 15, 16, 19, 20], [21, 22]]),
        output_signature=t.TensorSpec(shape=[None], dtype=t.int32)).bucket_by_sequence_length(
        element_length_func=lambda elem: t.shape(elem)[0], bucket_boundaries=[3, 5], bucket_batch_sizes=[2, 2, 2]),
        [[[1, 2, 3, 4], [5, 6, 7, 0]], [[7, 8, 9, 10, 11, 0], [13, 14, 15, 16, 19, 20]], [[0, 0], [21, 22]]]),
    # tf.data reads a Python list as one tensor, never as a structure to slice leaf by leaf.
    "slices_of_lists": (lambda t: t.data.Dataset.from_tensor_slices(([[1, 2], [3, 4], [5, 6]], [0, 1, 2])),
                        [([1, 2], 0), ([3, 4], 1), ([5, 6], 2)]),
    "slices_list_of_arrays": (lambda t: t.data.Dataset.from_tensor_slices([np.zeros(2), np.ones(2)]),
                              [[0.0, 0.0], [1.0, 1.0]]),
    "choose_from_datasets": (lambda t: t.data.Dataset.choose_from_datasets(
        [t.data.Dataset.range(3), t.data.Dataset.range(10, 13)],
        t.data.Dataset.from_tensor_slices(np.array([0, 1, 1, 0, 0], np.int64))), [0, 10, 11, 1, 2]),
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pipeline_elements(name):
    build, expected = PIPELINES[name]
    assert _listed(build(tf)) == expected


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pipeline_agrees_with_tf_data(name):
    real = pytest.importorskip("tensorflow")
    build, _ = PIPELINES[name]
    assert _listed(build(tf)) == _listed(build(real))


def test_reduce_single_element_cardinality_and_spec():
    ds = D.range(5)
    assert int(ds.reduce(np.int64(0), lambda s, x: s + x)) == 10
    assert int(D.from_tensors(np.int64(7)).get_single_element()) == 7
    with pytest.raises(ValueError, match="more than one element"):
        ds.get_single_element()
    with pytest.raises(ValueError, match="empty"):
        ds.take(0).get_single_element()
    assert tf.data.experimental.cardinality(ds.batch(2)) == 3
    assert D.counter().cardinality() == tf.data.INFINITE_CARDINALITY
    assert ds.filter(lambda x: x > 1).cardinality() == tf.data.UNKNOWN_CARDINALITY
    assert ds.shard(2, 1).cardinality() == len(list(ds.shard(2, 1))) == 2
    spec = D.from_tensor_slices((np.zeros((5, 3), np.float32), np.arange(5))).batch(2).element_spec
    assert spec == (tf.TensorSpec((None, 3), tf.float32), tf.TensorSpec((None,), tf.int64))
    assert D.range(4).batch(2, drop_remainder=True).element_spec == tf.TensorSpec((2,), tf.int64)
    assert ds.apply(lambda d: d.skip(3)).cardinality() == 2
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    assert ds.with_options(options) is ds


def test_sample_from_datasets_is_seeded_and_drains_every_source():
    a, b = D.range(0, 5), D.range(100, 105)
    first = _listed(D.sample_from_datasets([a, b], weights=[0.5, 0.5], seed=3))
    assert first == _listed(D.sample_from_datasets([a, b], weights=[0.5, 0.5], seed=3))
    assert sorted(first) == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
    assert [x for x in first if x < 100] == [0, 1, 2, 3, 4]          # each source keeps its order
    stopped = _listed(D.sample_from_datasets([a, D.range(0)], stop_on_empty_dataset=True, seed=0))
    assert len(stopped) < 5
    with pytest.raises(ValueError, match="weights"):
        D.sample_from_datasets([a, b], weights=[1.0])


def test_from_generator_checks_what_the_generator_yields():
    spec = tf.TensorSpec(shape=(3,), dtype=tf.float32)
    bad_shape = D.from_generator(lambda: iter([np.zeros(2)]), output_signature=spec)
    with pytest.raises(ValueError, match=r"shape \(2,\) where an element of shape \(3,\) was expected"):
        list(bad_shape)
    bad_structure = D.from_generator(lambda: iter([np.zeros(3)]), output_signature=(spec, spec))
    with pytest.raises(ValueError, match="did not match the expected structure"):
        list(bad_structure)
    with pytest.raises(TypeError, match="callable"):
        D.from_generator([1, 2], output_types=tf.int32)
    with pytest.raises(TypeError, match="output_signature"):
        D.from_generator(_gen_pairs, output_types=tf.int32, output_signature=spec)
    ds = D.from_generator(lambda n: (np.full(2, i, np.float32) for i in range(int(n))), args=(3,),
                          output_signature=tf.TensorSpec((2,), tf.float32))
    assert [x.dtype for x in ds.as_numpy_iterator()] == [np.float32] * 3
    assert len(list(ds)) == len(list(ds)) == 3            # the generator is called afresh for each pass


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="window: `size`"):
        D.range(3).window(0)
    with pytest.raises(ValueError, match="index"):
        D.range(3).shard(2, 2)
    with pytest.raises(ValueError, match="padded shape"):
        list(D.range(1, 4).map(lambda n: np.ones(int(n))).padded_batch(3, padded_shapes=(2,)))
    with pytest.raises(TypeError, match="must return a Dataset"):
        list(D.range(3).flat_map(lambda x: x))
    with pytest.raises(TypeError, match="datasets"):
        D.zip((np.arange(3),))


def test_tensor_spec():
    spec = tf.TensorSpec([None, 28, 28], tf.float32, name="images")
    assert spec.shape == (None, 28, 28) and spec.dtype == "float32" and spec.name == "images"
    assert repr(spec) == "TensorSpec(shape=(None, 28, 28), dtype=tf.float32, name='images')"
    assert spec.is_compatible_with(np.zeros((4, 28, 28), np.float32))
    assert not spec.is_compatible_with(np.zeros((4, 28, 28), np.float64))
    assert tf.TensorSpec.from_tensor(np.zeros((2, 3), np.int32)) == tf.TensorSpec((2, 3), tf.int32)
    assert tf.TensorSpec(None, tf.string).shape is None
    with pytest.raises(TypeError, match="shape"):
        tf.TensorSpec([2, "x"])


def test_slices_of_a_list_of_texts_pair_with_their_labels():
    # The text tutorials' raw dataset: a list of strings and their labels, sliced into (text, label) pairs.
    ds = D.from_tensor_slices((["good film", "bad plot", "fine"], [1, 0, 1])).batch(2)
    texts, labels = next(iter(ds))
    assert np.asarray(texts).tolist() == ["good film", "bad plot"] and np.asarray(labels).tolist() == [1, 0]
    assert len(ds) == 2


def test_fit_on_generator_and_padded_batches():
    def samples():
        rng = np.random.default_rng(0)
        for _ in range(64):
            x = rng.normal(size=4).astype(np.float32)
            yield x, np.float32(x.sum() > 0)

    signature = (tf.TensorSpec((4,), tf.float32), tf.TensorSpec((), tf.float32))
    train = D.from_generator(samples, output_signature=signature).shuffle(64, seed=1).batch(16)
    model = tf.keras.Sequential([tf.keras.Input((4,)), layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    history = model.fit(train, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_augmentation_layers_take_single_images_in_a_map():
    # tf.data's common order: augment each image in `map`, then batch (Keras accepts rank-3 images).
    images = np.random.default_rng(0).random((6, 8, 8, 3)).astype(np.float32)
    augment = tf.keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.1),
                                   layers.RandomContrast(0.2)])
    ds = D.from_tensor_slices(images).map(lambda x: augment(x, training=True)).batch(3)
    batches = list(ds)
    assert [tuple(b.shape) for b in batches] == [(3, 8, 8, 3), (3, 8, 8, 3)]
    assert not np.allclose(np.concatenate([np.asarray(b) for b in batches]), images)
    one = layers.RandomFlip("vertical")(images[0], training=False)
    np.testing.assert_array_equal(np.asarray(one), images[0])
    with pytest.raises(ValueError, match="rank 3"):
        layers.RandomFlip()(images[0, 0], training=True)
