"""keras.io "Text classification with Switch Transformer" (``nlp_programs.switch_transformer``), Keras 3
form, under onnxforge and under Keras 3 on TensorFlow (the page's program cannot be built by Keras on torch;
see ``nlp_programs``): a Mixture-of-Experts feed-forward (``Switch``) inside a Transformer block. The
``Router`` layer scores each token with a Dense layer, adds ``keras.random.uniform`` noise in training, takes
the top expert with ``ops.top_k(k=1)``, one-hot masks it (``ops.one_hot``), adds the load-balancing loss with
``self.add_loss``, numbers tokens within each expert with ``ops.cumsum`` and drops those past the expert
capacity (``ops.less``); ``Switch`` reshapes the batch to tokens, dispatches them with
``ops.einsum("ab,acd->cdb")``, runs each expert's Sequential on its ``ops.unstack`` slice, ``ops.stack``s
the results and combines them with ``ops.einsum("abc,xba->xc")``. The layers set their attributes before
``super().__init__()``, as on the page.

Tolerance: the same seeded weights in both and Dropout at rate 0. Inference draws nothing, so predictions
and ``evaluate`` (cross-entropy plus the router's load-balancing loss, which ``add_loss`` adds in inference
too) agree to float32 order. Training adds uniform noise in [0.9, 1.1) to the router logits, drawn
differently by each framework; it is almost a constant shift (softmax ignores that) and its 0.2 spread moves
few tokens to another expert: after one Adam step the training losses and predictions were within 1e-3 of
TensorFlow's (bounds 0.01 and 0.03). The page's ``run_experiment`` (two epochs, dropout 0.25, shuffled
batches: all drawn differently) ends with losses and accuracies in a band. ``TransformerBlock`` takes the
``Switch`` layer as an argument, so neither framework saves the model as ``.keras`` (Keras raises
NotImplementedError asking for a ``get_config``); ``save_weights`` / ``load_weights`` round-trip it.
"""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
import onnxforge.keras as keras

from . import nlp_programs, tf_oracle


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tf_oracle.skip_without_tensorflow()
    return tf_oracle.start("nlp_programs", ["switch_transformer", "switch_transformer_fit"],
                           tmp_path_factory.mktemp("switch") / "tf.npz")


def test_switch_transformer(oracle):
    ours = nlp_programs.switch_transformer(tf, keras)
    theirs = oracle.results("switch_transformer")
    assert sorted(ours) == sorted(theirs)
    np.testing.assert_allclose(ours["predict"], theirs["predict"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours["evaluate"], theirs["evaluate"], rtol=1e-4, atol=1e-5)
    assert int(ours["aux_losses"]) == int(theirs["aux_losses"]) == 1
    assert abs(float(ours["train_loss"]) - float(theirs["train_loss"])) < 0.01
    np.testing.assert_allclose(ours["after_fit"], theirs["after_fit"], atol=0.03)
    assert int(ours["saved_as_keras"]) == int(theirs["saved_as_keras"]) == 0
    np.testing.assert_allclose(ours["reloaded"], ours["after_fit"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(theirs["reloaded"], theirs["after_fit"], rtol=1e-6, atol=1e-6)


def test_switch_transformer_fit(oracle):
    ours = nlp_programs.switch_transformer_fit(tf, keras)
    theirs = oracle.results("switch_transformer_fit")
    assert sorted(ours) == sorted(theirs)
    print({k: (ours[k].round(4).tolist(), theirs[k].round(4).tolist()) for k in ours})
    for key in ("loss", "val_loss"):
        assert abs(ours[key][-1] - theirs[key][-1]) < 0.05, key
    for key in ("accuracy", "val_accuracy"):
        assert abs(ours[key][-1] - theirs[key][-1]) < 0.15, key
