"""keras.io's RL examples (actor-critic, DQN, DDPG, PPO: ``rl_programs.py``) under onnxforge and TensorFlow.

The programs run the same episodes from the same weights in both; what differs is float32 summation order,
which Adam's steps carry along (DDPG's 24 updates most of all).
"""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
import onnxforge.keras as keras

from . import rl_programs, tf_oracle

PROGRAMS = ["actor_critic", "dqn", "ddpg", "ppo"]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tf_oracle.skip_without_tensorflow()
    return tf_oracle.start("rl_programs", PROGRAMS, tmp_path_factory.mktemp("rl") / "tf.npz")


def _compare(ours: dict, theirs: dict, rtol: float, atol: float, skip: tuple = ()) -> None:
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        if key not in skip:
            np.testing.assert_allclose(np.asarray(ours[key], np.float64), theirs[key], rtol=rtol, atol=atol,
                                       err_msg=key)


def test_actor_critic_tape_over_an_episode_matches_tensorflow(oracle):
    _compare(rl_programs.actor_critic(tf, keras), oracle.results("actor_critic"), 1e-4, 1e-5)


def test_dqn_replay_update_matches_tensorflow(oracle):
    # keras.ops.one_hot(action_sample) of a list mixing np.int64 draws and argmax(...).numpy() results
    _compare(rl_programs.dqn(tf, keras), oracle.results("dqn"), 1e-4, 1e-5)


def test_ddpg_tf_function_updates_and_soft_target_assigns_match_tensorflow(oracle):
    _compare(rl_programs.ddpg(tf, keras), oracle.results("ddpg"), 2e-3, 2e-4)


def test_ppo_clipped_objective_and_categorical_draws_match_tensorflow(oracle):
    ours, theirs = rl_programs.ppo(tf, keras), oracle.results("ppo")
    _compare(ours, theirs, 1e-4, 1e-5, skip=("draw_freq",))
    # 300 draws of tf.random.categorical: the frequency of action 1 within 4 standard errors of its probability
    p = float(ours["draw_p"][0])
    assert abs(float(ours["draw_freq"][0]) - p) < 4 * np.sqrt(p * (1 - p) / 300)


def test_a_list_of_eager_scalars_is_one_tensor():
    # an eager op receives each array of a list as an input of its own; the list is still one tensor
    np.testing.assert_array_equal(keras.ops.one_hot([np.int64(1), 2, np.array(3)], 4), np.eye(4)[1:])
    np.testing.assert_array_equal(tf.convert_to_tensor([np.float32(1.5), 2.0]), [1.5, 2.0])
    assert keras.ops.stack([np.int64(1), 2]).dtype == np.int64

    @tf.function
    def traced(x):
        return keras.ops.convert_to_tensor([x[0], x[1] * 2.0, 3.0])

    np.testing.assert_allclose(traced(np.array([1.0, 2.0], "float32")), [1.0, 4.0, 3.0])


def test_tf_initializer_names_are_keras_initializers():
    layer = keras.layers.Dense(3, kernel_initializer=tf.random_uniform_initializer(minval=-0.003, maxval=0.003))
    layer.build((None, 4))
    assert np.abs(layer.kernel.numpy()).max() <= 0.003
    np.testing.assert_array_equal(tf.constant_initializer(2.0)((2,)), [2.0, 2.0])
    assert tf.random_normal_initializer(stddev=0.01)((500,)).std() < 0.02
    np.testing.assert_array_equal(tf.zeros_initializer()((2,)), 0.0)
    np.testing.assert_array_equal(tf.ones_initializer()((2,)), 1.0)
