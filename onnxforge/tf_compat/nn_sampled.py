"""``tf.nn.nce_loss`` and ``tf.nn.sampled_softmax_loss``: losses over the true classes and a sample of others.

Both score the true classes and ``num_sampled`` classes drawn by ``tf.random.log_uniform_candidate_sampler``
(``unique=True``, or the ``(sampled, true_expected_count, sampled_expected_count)`` given as
``sampled_values``) as TensorFlow does: logits ``inputs . weights[c] + biases[c]`` less ``log`` of each
class's expected count (the sampler's bias), a sampled class that is one of the row's true classes pushed to
``-FLT_MAX`` when ``remove_accidental_hits``, then per-row sigmoid cross-entropy summed over the columns (NCE,
true classes weighted ``1 / num_true``) or softmax cross-entropy against ``1 / num_true`` on the true columns
(sampled softmax). The sample is data: no gradient flows into it. They are graph ops, so they run eagerly and
in a traced ``train_step`` with gradients to ``weights``, ``biases`` and ``inputs``.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> w, b, x = np.ones((5, 2), "float32"), np.zeros(5, "float32"), np.ones((1, 2), "float32")
    >>> sampled = (np.array([3, 4]), np.ones((1, 1), "float32"), np.ones(2, "float32"))
    >>> loss = tf.nn.sampled_softmax_loss(w, b, [[1]], x, 2, 5, sampled_values=sampled)
    >>> tuple(loss.shape), round(float(loss[0]), 4)    # three equal logits: -log(1/3)
    ((1,), 1.0986)
"""
from __future__ import annotations

__all__ = ["nce_loss", "sampled_softmax_loss"]

from typing import Any

import numpy as np

from .. import ops as _ops
from .candidate_sampling import log_uniform_candidate_sampler


def _weights(weights: Any, fn: str) -> Any:
    if isinstance(weights, (list, tuple)):
        if len(weights) != 1:
            raise ValueError(f"tf.nn.{fn}: weights split into {len(weights)} shards is not supported in "
                             f"onnxforge; pass one [num_classes, dim] tensor (tf.concat the shards).")
        weights = weights[0]
    return weights


def _sampled_logits(weights: Any, biases: Any, labels: Any, inputs: Any, num_sampled: int, num_classes: int,
                    num_true: int, sampled_values: Any, remove_accidental_hits: bool, seed: Any,
                    fn: str) -> tuple[Any, Any]:
    """TensorFlow's ``[batch, num_true + num_sampled]`` logits and targets of both losses."""
    weights, biases = _weights(weights, fn), _weights(biases, fn)
    labels = _ops.cast(np.asarray(labels) if isinstance(labels, (list, tuple)) else labels, "int64")
    if len(_ops.shape(labels)) != 2 or _ops.shape(labels)[1] != num_true:
        raise ValueError(f"tf.nn.{fn}: labels must be [batch_size, num_true={num_true}]. Received shape "
                         f"{tuple(_ops.shape(labels))}")
    if sampled_values is None:
        sampled_values = log_uniform_candidate_sampler(labels, num_true, num_sampled, True, num_classes, seed)
    sampled, true_count, sampled_count = (_ops.stop_gradient(_ops.convert_to_tensor(np.asarray(v))
                                                             if isinstance(v, (list, tuple)) else v)
                                          for v in sampled_values)
    sampled = _ops.cast(sampled, "int64")
    inputs = _ops.convert_to_tensor(inputs) if isinstance(inputs, (list, tuple)) else inputs
    true_w = _ops.take(weights, labels, axis=0)                     # [batch, num_true, dim]
    true_logits = _ops.add(_ops.sum(_ops.multiply(_ops.expand_dims(inputs, 1), true_w), axis=-1),
                           _ops.take(biases, labels, axis=0))
    sampled_logits = _ops.add(_ops.matmul(inputs, _ops.transpose(_ops.take(weights, sampled, axis=0))),
                              _ops.take(biases, sampled, axis=0))   # [batch, num_sampled]
    if remove_accidental_hits:
        hits = _ops.any(_ops.equal(_ops.expand_dims(labels, 2), _ops.reshape(sampled, (1, 1, -1))), axis=1)
        # TensorFlow adds -FLT_MAX to such a logit, which rounds to -FLT_MAX in float32.
        sampled_logits = _ops.add(sampled_logits, _ops.multiply(_ops.cast(hits, "float32"),
                                                                float(-np.finfo(np.float32).max)))
    true_logits = _ops.subtract(true_logits, _ops.log(_ops.cast(true_count, "float32")))
    sampled_logits = _ops.subtract(sampled_logits, _ops.log(_ops.cast(sampled_count, "float32")))
    logits = _ops.concatenate([true_logits, sampled_logits], axis=1)
    targets = _ops.concatenate([_ops.divide(_ops.ones_like(true_logits), float(num_true)),
                                _ops.zeros_like(sampled_logits)], axis=1)
    return logits, targets


def nce_loss(weights: Any, biases: Any, labels: Any, inputs: Any, num_sampled: int, num_classes: int,
             num_true: int = 1, sampled_values: Any = None, remove_accidental_hits: bool = False,
             name: str = "nce_loss") -> Any:
    """``tf.nn.nce_loss``: ``[batch_size]`` noise-contrastive estimation losses of ``inputs``
    (``[batch_size, dim]``) for ``labels`` (``[batch_size, num_true]`` class ids) with class ``weights``
    (``[num_classes, dim]``) and ``biases`` (``[num_classes]``)."""
    from .nn_fns import sigmoid_cross_entropy_with_logits

    logits, targets = _sampled_logits(weights, biases, labels, inputs, num_sampled, num_classes, num_true,
                                      sampled_values, remove_accidental_hits, None, "nce_loss")
    return _ops.sum(sigmoid_cross_entropy_with_logits(labels=targets, logits=logits), axis=1)


def sampled_softmax_loss(weights: Any, biases: Any, labels: Any, inputs: Any, num_sampled: int,
                         num_classes: int, num_true: int = 1, sampled_values: Any = None,
                         remove_accidental_hits: bool = True, seed: Any = None,
                         name: str = "sampled_softmax_loss") -> Any:
    """``tf.nn.sampled_softmax_loss``: ``[batch_size]`` softmax cross-entropies over the true and sampled
    classes (arguments as ``nce_loss``; ``remove_accidental_hits`` is on by default, as in TensorFlow)."""
    from .nn_fns import softmax_cross_entropy_with_logits

    logits, targets = _sampled_logits(weights, biases, labels, inputs, num_sampled, num_classes, num_true,
                                      sampled_values, remove_accidental_hits, seed, "sampled_softmax_loss")
    return softmax_cross_entropy_with_logits(labels=_ops.stop_gradient(targets), logits=logits)
