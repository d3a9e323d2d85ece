"""keras.io "Collaborative Filtering for Movie Recommendations": ``RecommenderNet(keras.Model)``, a
subclassed model with user and movie Embeddings (he_normal, L2-regularized) and bias Embeddings, the
dot product of user and movie vectors, a sigmoid rating, binary cross-entropy on normalized ratings;
then top-10 recommendations for a user from ``predict`` over the movies they have not rated.

Tolerance: Keras's initial weights copied (after one eager call builds the model), ``shuffle=False``, no
randomness in training: losses within 1% of Keras's, and the top-10 lists share at least 8 movies.
"""
from __future__ import annotations

import numpy as np

from . import data as synthetic
from .harness import assert_close, run_both

EMBEDDING_SIZE = 8


def recommender(keras, data, init):
    pairs, ratings = data
    layers, ops = keras.layers, keras.ops
    keras.utils.set_random_seed(17)
    num_users, num_movies = int(pairs[:, 0].max()) + 1, int(pairs[:, 1].max()) + 1
    min_rating, max_rating = ratings.min(), ratings.max()
    y = ((ratings - min_rating) / (max_rating - min_rating)).astype("float32")
    train_indices = int(0.9 * len(pairs))
    x_train, x_val, y_train, y_val = pairs[:train_indices], pairs[train_indices:], y[:train_indices], y[train_indices:]

    class RecommenderNet(keras.Model):
        def __init__(self, num_users, num_movies, embedding_size, **kwargs):
            super().__init__(**kwargs)
            self.user_embedding = layers.Embedding(
                num_users, embedding_size, embeddings_initializer="he_normal",
                embeddings_regularizer=keras.regularizers.l2(1e-6))
            self.user_bias = layers.Embedding(num_users, 1)
            self.movie_embedding = layers.Embedding(
                num_movies, embedding_size, embeddings_initializer="he_normal",
                embeddings_regularizer=keras.regularizers.l2(1e-6))
            self.movie_bias = layers.Embedding(num_movies, 1)

        def call(self, inputs):
            user_vector = self.user_embedding(inputs[:, 0])
            user_bias = self.user_bias(inputs[:, 0])
            movie_vector = self.movie_embedding(inputs[:, 1])
            movie_bias = self.movie_bias(inputs[:, 1])
            dot_user_movie = ops.sum(user_vector * movie_vector, axis=1, keepdims=True)
            x = dot_user_movie + user_bias + movie_bias
            return ops.nn.sigmoid(x)

    model = RecommenderNet(num_users, num_movies, EMBEDDING_SIZE)
    model(x_train[:2])   # builds the weights, as a first call does
    init(model)
    model.compile(loss=keras.losses.BinaryCrossentropy(), optimizer=keras.optimizers.Adam(learning_rate=0.01))
    history = model.fit(x=x_train, y=y_train, batch_size=64, epochs=5, validation_data=(x_val, y_val),
                        shuffle=False, verbose=0)

    user_id = int(pairs[0, 0])
    rated = set(pairs[pairs[:, 0] == user_id, 1].tolist())
    not_rated = np.array([m for m in range(num_movies) if m not in rated])
    user_movie_array = np.hstack(([[user_id]] * len(not_rated), not_rated[:, None])).astype("int64")
    predicted = model.predict(user_movie_array, verbose=0).flatten()
    top_ratings_indices = predicted.argsort()[-10:][::-1]
    return {"loss": history.history["loss"][-1], "val_loss": history.history["val_loss"][-1],
            "top10": [int(not_rated[i]) for i in top_ratings_indices]}


def test_recommender():
    data = synthetic.ratings()
    want, got = run_both(recommender, data, copy_weights=True)
    assert_close(want, got, rtol=0.01, keys=["loss", "val_loss"])
    assert len(set(want["top10"]) & set(got["top10"])) >= 8, (want["top10"], got["top10"])
    assert want["val_loss"] < 0.66   # below the loss of predicting the mean rating for everyone
