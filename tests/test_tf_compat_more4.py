"""``import onnxforge as tf``, continued from ``test_tf_compat_more3.py``: the word2vec tutorial's
``tf.random.log_uniform_candidate_sampler`` (TensorFlow's distribution and expected counts, eagerly and
traced), ``tf.nn.nce_loss`` / ``sampled_softmax_loss`` (values and gradients against TensorFlow with the same
sampled classes), and the tutorial's Word2Vec model trained end to end."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import onnxforge as tf

rtf = pytest.importorskip("tensorflow")


def _log_uniform(range_max):
    k = np.arange(range_max, dtype=np.float64)
    return np.log((k + 2.0) / (k + 1.0)) / np.log(range_max + 1.0)


@pytest.mark.parametrize("traced", [False, True])
def test_log_uniform_sampler_draws_tensorflows_distribution(traced):
    range_max, n = 12, 6000
    classes = np.array([[0], [5]], np.int64)
    sampler = (tf.function(lambda t: tf.random.log_uniform_candidate_sampler(t, 1, n, False, range_max))
               if traced else lambda t: tf.random.log_uniform_candidate_sampler(t, 1, n, False, range_max, seed=4))
    ours = sampler(classes)
    theirs = rtf.random.log_uniform_candidate_sampler(classes, 1, n, False, range_max, seed=4)
    p = _log_uniform(range_max)
    for got, want in zip(ours, theirs):
        assert np.asarray(got).dtype == want.numpy().dtype and np.asarray(got).shape == want.numpy().shape
    sigma = np.sqrt(p * (1 - p) / n)
    for sample in (np.asarray(ours[0]), theirs[0].numpy()):
        freq = np.bincount(sample, minlength=range_max) / n
        assert np.all(np.abs(freq - p) < 5 * sigma), freq
    # Without rejection the expected counts are exact: ours for TensorFlow's sample equal TensorFlow's.
    again = tf.random.log_uniform_candidate_sampler(theirs[0].numpy()[:, None], 1, n, False, range_max)
    np.testing.assert_allclose(np.asarray(again[1])[:, 0], theirs[2].numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ours[1]), theirs[1].numpy(), rtol=1e-6)


def _successive_sampling_law(p, k):
    """Exact inclusion probabilities and expected number of tries of drawing from ``p`` until ``k`` distinct
    classes came up (TensorFlow's ``unique=True``), by enumerating every ordered outcome."""
    inclusion, tries = np.zeros(len(p)), 0.0
    for seq in itertools.permutations(range(len(p)), k):
        taken = np.concatenate([[0.0], np.cumsum(p[list(seq)])[:-1]])
        prob = np.prod(p[list(seq)] / (1.0 - taken))
        inclusion[list(seq)] += prob
        tries += prob * (k + np.sum(taken / (1.0 - taken)))   # geometric rejected tries before each new class
    return inclusion, tries


def _tries(count, p, k):
    """The number of tries behind a unique sample's expected count (TensorFlow's formula inverted)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.log1p(-np.float64(count)) / np.log1p(-p)
    return int(round(t)) if np.isfinite(t) and abs(t - round(t)) < 0.02 and round(t) > k else k


@pytest.mark.parametrize("traced", [False, True])
def test_unique_log_uniform_sampler_has_tensorflows_inclusion_and_tries_law(traced):
    range_max, k, calls = 8, 4, 300
    p = _log_uniform(range_max)
    inclusion, mean_tries = _successive_sampling_law(p, k)
    classes = np.array([[2]], np.int64)
    ours = (tf.function(lambda t: tf.random.log_uniform_candidate_sampler(t, 1, k, True, range_max))
            if traced else lambda t: tf.random.log_uniform_candidate_sampler(t, 1, k, True, range_max, seed=7))
    for draw in (ours, lambda t: rtf.random.log_uniform_candidate_sampler(t, 1, k, True, range_max, seed=7)):
        hits, tries = np.zeros(range_max), []
        for _ in range(calls):
            ids, true_count, count = (np.asarray(v) for v in draw(classes))
            assert ids.dtype == np.int64 and len(set(ids.tolist())) == k and count.dtype == np.float32
            hits[ids] += 1
            tries.append(_tries(count[0], p[ids[0]], k))
            # One number of tries behind every class's expected count, the true class's included.
            np.testing.assert_allclose(np.concatenate([count, true_count[0]]),
                                       (p[[*ids, 2]] * k if tries[-1] == k else
                                        -np.expm1(tries[-1] * np.log1p(-p[[*ids, 2]]))), rtol=1e-4)
        assert np.all(np.abs(hits / calls - inclusion) < 0.11), (hits / calls, inclusion)   # ~4 sigma
        assert abs(np.mean(tries) - mean_tries) < 0.25 * mean_tries, (np.mean(tries), mean_tries)


def test_seeded_sampler_streams_continue_and_restart_with_set_seed():
    def draws():
        return [tuple(np.asarray(tf.random.log_uniform_candidate_sampler([[1]], 1, 3, True, 50, seed=5)[0]))
                for _ in range(4)]
    tf.random.set_seed(1)
    first = draws()
    assert len(set(first)) > 1                 # successive calls differ, as TensorFlow's seeded op
    tf.random.set_seed(1)
    assert draws() == first                    # a rerun repeats them


@pytest.mark.parametrize("kwargs", [dict(true_classes="int32 tensor", num_true=1, num_sampled=2, unique=True,
                                         range_max=5),
                                    dict(true_classes=[[1]], num_true=1, num_sampled=6, unique=True, range_max=5),
                                    dict(true_classes=[[1, 2]], num_true=1, num_sampled=2, unique=True, range_max=5),
                                    dict(true_classes=[[1]], num_true=1, num_sampled=0, unique=False, range_max=5)])
def test_sampler_arguments_tensorflow_refuses_are_refused(kwargs):
    for t in (rtf, tf):
        if isinstance(kwargs["true_classes"], str):      # a tensor (not an array or list) keeps its int32
            kwargs = {**kwargs, "true_classes": t.constant([[1]], dtype="int32")}
        with pytest.raises(t.errors.InvalidArgumentError):
            t.random.log_uniform_candidate_sampler(**kwargs)


def test_compute_accidental_hits_matches_tensorflow():
    true, sampled = np.array([[1, 4], [3, 3], [0, 2]], np.int64), np.array([3, 1, 5, 0, 4], np.int64)
    got = [np.asarray(v) for v in tf.nn.compute_accidental_hits(true, sampled, num_true=2)]
    want = [v.numpy() for v in rtf.nn.compute_accidental_hits(true, sampled, num_true=2)]
    assert [g.dtype for g in got] == [w.dtype for w in want]
    assert sorted(zip(*[g.tolist() for g in got])) == sorted(zip(*[w.tolist() for w in want]))


SAMPLED_CASES = [(fn, hits) for fn in ("nce_loss", "sampled_softmax_loss") for hits in (False, True)]


@pytest.mark.parametrize("fn,remove_accidental_hits", SAMPLED_CASES)
def test_sampled_losses_and_gradients_match_tensorflow_in_a_tf_function(fn, remove_accidental_hits):
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(12, 3)).astype("float32"), rng.normal(size=12).astype("float32")
    x = rng.normal(size=(4, 3)).astype("float32")
    labels = np.array([[1, 2], [3, 3], [0, 5], [7, 1]], np.int64)
    _, true_count, sampled_count = (v.numpy() for v in
                                    rtf.random.log_uniform_candidate_sampler(labels, 2, 5, True, 12, seed=3))
    sampled = (np.array([1, 3, 9, 4, 0], np.int64), true_count, sampled_count)   # 1, 3 and 0 are accidental hits

    def program(t, w, b, x):
        with t.GradientTape() as tape:
            tape.watch([w, b, x])
            loss = getattr(t.nn, fn)(w, b, labels, x, 5, 12, num_true=2, sampled_values=sampled,
                                     remove_accidental_hits=remove_accidental_hits)
            total = t.reduce_sum(loss)
        return (loss, *tape.gradient(total, [w, b, x]))

    want = rtf.function(lambda *a: program(rtf, *a))(*(rtf.constant(v) for v in (w, b, x)))
    got = tf.function(lambda *a: program(tf, *a))(w, b, x)
    for g, t in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), rtf.convert_to_tensor(t).numpy(), rtol=1e-4, atol=1e-5)


def test_sampled_losses_draw_their_own_sample_when_traced():
    w, b = np.full((30, 2), 0.1, "float32"), np.zeros(30, "float32")
    x, labels = np.ones((3, 2), "float32"), np.array([[1], [2], [29]], np.int64)
    def step(w, x, fn):
        with tf.GradientTape() as tape:
            tape.watch(w)
            loss = fn(w, b, labels, x, num_sampled=6, num_classes=30)
            total = tf.reduce_sum(loss)
        return loss, tape.gradient(total, w)

    for fn in (tf.nn.nce_loss, tf.nn.sampled_softmax_loss):
        loss, grad = (np.asarray(v) for v in tf.function(lambda w, x, fn=fn: step(w, x, fn))(w, x))
        assert loss.shape == (3,) and np.all(np.isfinite(loss)) and np.all(loss > 0)
        # Only the true classes and the (at most 6) sampled ones get a gradient, the true ones all of them.
        touched = np.flatnonzero(np.abs(grad).sum(axis=1))
        assert set(labels.ravel()) <= set(touched) and len(touched) <= 3 + 6 and np.all(np.isfinite(grad))


# The word2vec tutorial (tensorflow.org/tutorials/text/word2vec), on a tiny corpus.
class Word2Vec(tf.keras.Model):
    def __init__(self, vocab_size, embedding_dim):
        super().__init__()
        self.target_embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim, name="w2v_embedding")
        self.context_embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim)

    def call(self, pair):
        target, context = pair
        if len(target.shape) == 2:
            target = tf.squeeze(target, axis=1)
        word_emb = self.target_embedding(target)
        context_emb = self.context_embedding(context)
        return tf.einsum("be,bce->bc", word_emb, context_emb)


def _generate_training_data(sequences, window_size, num_ns, vocab_size, seed):
    targets, contexts, labels = [], [], []
    sampling_table = tf.keras.preprocessing.sequence.make_sampling_table(vocab_size, sampling_factor=0.5)
    for sequence in sequences:
        positive_skip_grams, _ = tf.keras.preprocessing.sequence.skipgrams(
            sequence, vocabulary_size=vocab_size, sampling_table=sampling_table, window_size=window_size,
            negative_samples=0)
        for target_word, context_word in positive_skip_grams:
            context_class = tf.expand_dims(tf.constant([context_word], dtype="int64"), 1)
            negative_sampling_candidates, _, _ = tf.random.log_uniform_candidate_sampler(
                true_classes=context_class, num_true=1, num_sampled=num_ns, unique=True, range_max=vocab_size,
                seed=seed, name="negative_sampling")
            negative_sampling_candidates = tf.expand_dims(negative_sampling_candidates, 1)
            context = tf.concat([context_class, negative_sampling_candidates], 0)
            label = tf.constant([1] + [0] * num_ns, dtype="int64")
            targets.append(target_word)
            contexts.append(context)
            labels.append(label)
    return targets, contexts, labels


def test_word2vec_tutorial_trains_end_to_end():
    import random
    random.seed(0)
    rng = np.random.default_rng(0)
    # Two "topics": words 1-5 appear together, words 6-10 together.
    sequences = [rng.choice(np.arange(1, 6) if i % 2 else np.arange(6, 11), 6).tolist() for i in range(40)]
    targets, contexts, labels = _generate_training_data(sequences, window_size=2, num_ns=4, vocab_size=11,
                                                        seed=42)
    targets, contexts, labels = np.array(targets), np.array(contexts)[:, :, 0], np.array(labels)
    assert contexts.shape == (len(targets), 5) and labels.shape == (len(targets), 5)
    dataset = tf.data.Dataset.from_tensor_slices(((targets, contexts), labels))
    dataset = dataset.shuffle(1000).batch(16, drop_remainder=True).cache().prefetch(tf.data.AUTOTUNE)
    word2vec = Word2Vec(11, 8)
    word2vec.compile(optimizer="adam", loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True),
                     metrics=["accuracy"])
    history = word2vec.fit(dataset, epochs=20, verbose=0)
    losses, accuracy = history.history["loss"], history.history["accuracy"]
    assert losses[-1] < 0.7 * losses[0] and accuracy[-1] > 0.5, (losses, accuracy)
    # The embeddings learned the two topics: a word scores its own topic's words above the other topic's.
    target = word2vec.get_layer("w2v_embedding").get_weights()[0]
    context = word2vec.context_embedding.get_weights()[0]
    scores = target @ context.T
    same = [scores[i, 1:6].mean() - scores[i, 6:11].mean() for i in range(1, 6)]
    other = [scores[i, 6:11].mean() - scores[i, 1:6].mean() for i in range(6, 11)]
    assert target.shape == (11, 8) and min(same + other) > 0, (same, other)


GENERATOR_DRAWS = [("normal", ([500],), {}), ("normal", ([2, 250],), {"mean": 2.0, "stddev": 0.5, "dtype": "float64"}),
                   ("uniform", ([500],), {}), ("uniform", ([500],), {"minval": -2.0, "maxval": 3.0}),
                   ("uniform", ([500],), {"minval": 3, "maxval": 9, "dtype": "int32"}),
                   ("uniform", ([500],), {"minval": None, "maxval": None, "dtype": "int64"}),
                   ("truncated_normal", ([500],), {"stddev": 2.0}), ("uniform_full_int", ([500],), {"dtype": "int32"})]


@pytest.mark.parametrize("method,args,kwargs", GENERATOR_DRAWS, ids=[f"{d[0]}-{i}" for i, d in enumerate(GENERATOR_DRAWS)])
def test_generator_draws_have_tensorflows_dtypes_shapes_and_ranges(method, args, kwargs):
    theirs = {k: (getattr(rtf, v) if k == "dtype" else v) for k, v in kwargs.items()}
    want = getattr(rtf.random.Generator.from_seed(1), method)(*args, **theirs).numpy()
    got = np.asarray(getattr(tf.random.Generator.from_seed(1), method)(*args, **kwargs))
    assert got.dtype == want.dtype and got.shape == want.shape
    if method == "truncated_normal":
        assert np.all(np.abs(got) <= 2 * kwargs["stddev"])
    elif method == "uniform" and kwargs.get("maxval", 1) is not None:
        assert kwargs.get("minval", 0) <= got.min() and got.max() < kwargs.get("maxval", 1)
    spread = max(float(np.std(want.astype(np.float64))), 1.0)
    assert abs(np.mean(got.astype(np.float64)) - np.mean(want.astype(np.float64))) < 0.35 * spread
    assert abs(np.std(got.astype(np.float64)) - np.std(want.astype(np.float64))) < 0.2 * spread
    if method == "uniform" and kwargs.get("dtype") == "int32":
        assert set(got.tolist()) == set(range(3, 9))
    if method == "uniform_full_int" or kwargs.get("maxval", 1) is None:   # every bit random, low ones too
        assert (got % 256 == 0).mean() < 0.05 and 0.4 < (got < 0).mean() < 0.6


def test_generator_is_reproducible_advances_and_splits_into_independent_streams():
    g = tf.random.Generator.from_seed(5)
    first, second = np.asarray(g.normal([200])), np.asarray(g.normal([200]))
    assert np.array_equal(first, np.asarray(tf.random.Generator.from_seed(5).normal([200])))
    assert not np.array_equal(first, second)
    assert np.array_equal(np.asarray(tf.random.Generator.from_state(g.state).normal([3])),
                          np.asarray(g.normal([3])))
    children = tf.random.Generator.from_seed(5).split(2)
    draws = np.stack([np.asarray(c.normal([400])) for c in children] + [np.asarray(g.normal([400]))])
    corr = np.corrcoef(draws)
    assert np.all(np.abs(corr[~np.eye(3, dtype=bool)]) < 0.2)
    again = tf.random.Generator.from_seed(5).split(2)[1]
    assert np.array_equal(np.asarray(again.normal([400])), draws[1])
    seeds = tf.random.Generator.from_seed(5).make_seeds(4)
    assert seeds.shape == rtf.random.Generator.from_seed(5).make_seeds(4).shape and seeds.dtype == np.int64
    assert len({tuple(c) for c in np.asarray(seeds).T.tolist()}) == 4
    a, b = (tf.random.Generator.from_non_deterministic_state().state.numpy() for _ in range(2))
    assert not np.array_equal(a, b)      # differently seeded in every call (and run)
    assert isinstance(tf.random.get_global_generator(), tf.random.Generator)


def test_generator_draws_anew_in_each_traced_step_and_refuses_what_tensorflow_refuses():
    g = tf.random.Generator.from_seed(2)
    noisy = tf.function(lambda x: x + g.normal([3]))
    a, b = np.asarray(noisy(np.zeros(3, "float32"))), np.asarray(noisy(np.zeros(3, "float32")))
    assert not np.array_equal(a, b)
    h = tf.random.Generator.from_seed(2)
    assert np.array_equal(np.asarray(tf.function(lambda x: x + h.normal([3]))(np.zeros(3, "float32"))), a)
    for t in (rtf, tf):
        gen = t.random.Generator.from_seed(1)
        with pytest.raises(ValueError, match="both `None` or both non-`None`"):
            gen.uniform([2], dtype="int32")
        with pytest.raises(t.errors.InvalidArgumentError):
            gen.uniform([2], minval=7, maxval=5, dtype="int32")
        with pytest.raises(TypeError):
            gen.normal([2], dtype="int32")


STATELESS_DRAWS = [("stateless_categorical", lambda s: dict(logits=[[0.0, 1.0, 2.0], [2.0, -np.inf, 0.0]],
                                                               num_samples=2000, seed=s)),
                   ("stateless_categorical", lambda s: dict(logits=[[0.0, 1.0]], num_samples=500, seed=s,
                                                            dtype="int32")),
                   ("stateless_gamma", lambda s: dict(shape=[2000, 2], seed=s, alpha=[0.5, 3.0], beta=2.0)),
                   ("stateless_gamma", lambda s: dict(shape=[1000], seed=s, alpha=2.0, dtype="float64")),
                   ("stateless_poisson", lambda s: dict(shape=[2000, 2], seed=s, lam=[1.0, 10.0])),
                   ("stateless_poisson", lambda s: dict(shape=[1000], seed=s, lam=4.0, dtype="float32"))]


@pytest.mark.parametrize("fn,make", STATELESS_DRAWS, ids=[f"{d[0]}-{i}" for i, d in enumerate(STATELESS_DRAWS)])
def test_stateless_draws_are_fixed_by_the_seed_with_tensorflows_distribution(fn, make):
    def ours(seed):
        return np.asarray(getattr(tf.random, fn)(**make(seed)))
    kwargs = make([1, 2])
    if "dtype" in kwargs:
        kwargs["dtype"] = getattr(rtf, kwargs["dtype"])
    want = getattr(rtf.random, fn)(**kwargs).numpy()
    got = ours([1, 2])
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, ours([1, 2])) and not np.array_equal(got, ours([1, 3]))
    if fn == "stateless_categorical":      # per-row class frequencies
        for row in range(got.shape[0]):
            g, w = (np.bincount(x[row], minlength=3) / x.shape[1] for x in (got, want))
            assert np.all(np.abs(g - w) < 0.07), (g, w)
    else:                                  # per-column moments
        g, w = got.astype(np.float64).reshape(got.shape[0], -1), want.astype(np.float64).reshape(got.shape[0], -1)
        np.testing.assert_allclose(g.mean(0), w.mean(0), rtol=0.12, atol=0.03)
        np.testing.assert_allclose(g.std(0), w.std(0), rtol=0.15, atol=0.03)
