"""The losses a ``Distiller`` applies between teacher and student outputs (Keras 3.15's ``keras.distillation``).

Each loss is a plain object with ``compute_loss(teacher_outputs, student_outputs)`` returning a scalar, and a
``get_config`` / ``from_config`` pair so a saved ``Distiller`` records it. ``loss`` may be a nested structure
(one loss per output of a multi-output model, ``None`` to skip one), as in Keras.

Example:
    >>> import numpy as np
    >>> from onnxforge.distillation import LogitsDistillation
    >>> logits = np.array([[1.0, 2.0, 3.0]], "float32")
    >>> float(LogitsDistillation(temperature=2.0).compute_loss(logits, logits))
    0.0
"""
from __future__ import annotations

__all__ = ["DistillationLoss", "FeatureDistillation", "LogitsDistillation"]

from typing import Any

from .. import losses as losses_module
from .. import ops
from ..keras_objects import register_builtin_classes
from ..utils import tree


def _loss_function(item: Any) -> Any:
    """The loss function a string identifier names (``"kl_divergence"`` -> ``losses.kl_divergence``, as Keras's
    ``losses.get`` returns functions, not ``Loss`` objects); loss objects, callables and ``None`` pass unchanged."""
    if isinstance(item, str):
        try:
            fn = losses_module.get(item)
        except ValueError:
            fn = None
        if fn is None:
            raise ValueError(f"Unknown loss function: '{item}'.")
        return getattr(fn, "fn", fn)
    return item


def _serialize_losses(loss: Any) -> Any:
    from ..saving import serialize_keras_object   # saving imports the models: read it when a config is written

    return serialize_keras_object(loss)


def _deserialize_losses(config: Any) -> Any:
    from ..saving import deserialize_keras_object

    return deserialize_keras_object(config)


def _sum(values: list) -> Any:
    return ops.sum(ops.stack([ops.convert_to_tensor(v, "float32") for v in values]))


class DistillationLoss:
    """Base class of the distillation losses: subclass it and write ``compute_loss``.

    Saved configs name the built-in losses under ``keras.distillation`` (as Keras writes them).

    Example:
        >>> import numpy as np
        >>> from onnxforge import keras
        >>> class L1(keras.distillation.DistillationLoss):
        ...     def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        ...         return keras.ops.mean(keras.ops.abs(teacher_outputs - student_outputs))
        >>> float(L1().compute_loss(np.ones(3, "float32"), np.zeros(3, "float32")))
        1.0
    """

    _keras_module = "keras.distillation"

    def compute_loss(self, teacher_outputs: Any, student_outputs: Any, **kwargs: Any) -> Any:
        """The scalar loss between the teacher's and the student's outputs (one tensor or a structure)."""
        raise NotImplementedError("Subclasses must implement compute_loss")

    def validate_outputs(self, teacher_outputs: Any, student_outputs: Any) -> None:
        """Raises ``ValueError`` when the two outputs' structures differ."""
        tree.assert_same_structure(teacher_outputs, student_outputs)

    def validate_model_compatibility(self, teacher: Any, student: Any) -> None:
        """Raises ``ValueError`` when this loss cannot apply to these models (the base class accepts any)."""


class FeatureDistillation(DistillationLoss):
    """Matches the outputs of a teacher layer and a student layer (or the final outputs).

    Args:
        loss: a loss identifier (``"mse"``, ``"cosine_similarity"``, ...), a loss object, or a structure of them
            (``None`` entries skip an output); at least one must be set. Defaults to ``"mse"``.
        teacher_layer_name: the teacher layer whose output is the target; ``None`` for the final output.
        student_layer_name: the student layer whose output is matched; ``None`` for the final output.

    Example:
        >>> from onnxforge import keras
        >>> f = keras.distillation.FeatureDistillation(teacher_layer_name="hidden", student_layer_name="hidden")
        >>> f.get_config()["teacher_layer_name"]
        'hidden'
    """

    def __init__(self, loss: Any = "mse", teacher_layer_name: str | None = None,
                 student_layer_name: str | None = None):
        self.teacher_layer_name = teacher_layer_name
        self.student_layer_name = student_layer_name
        self.loss = tree.map_structure(_loss_function, loss)
        if all(l is None for l in tree.flatten(self.loss)):
            raise ValueError("The `loss` argument in `FeatureDistillation` must contain at least one non-`None` "
                             f"value. Received: loss={loss!r}")

    def validate_model_compatibility(self, teacher: Any, student: Any) -> None:
        if self.teacher_layer_name is not None or self.student_layer_name is not None:
            subclassed = [role for role, m in (("teacher", teacher), ("student", student))
                          if getattr(m, "inputs", None) is None]
            if subclassed:
                raise ValueError(
                    "FeatureDistillation with specific layer names requires Functional or Sequential models. The "
                    f"{' and '.join(subclassed)} model(s) appear to be subclassed (no symbolic inputs/outputs). "
                    "Either use Functional/Sequential models, or use FeatureDistillation without layer names (to "
                    "distill final outputs only), or use LogitsDistillation instead.")
        for role, model, name in (("teacher", teacher, self.teacher_layer_name),
                                  ("student", student, self.student_layer_name)):
            if name is not None:
                try:
                    model.get_layer(name=name)
                except ValueError as e:
                    raise ValueError(f"In {role} model: {e}") from None

    def validate_outputs(self, teacher_outputs: Any, student_outputs: Any) -> None:
        super().validate_outputs(teacher_outputs, student_outputs)
        try:
            tree.assert_same_structure(self.loss, teacher_outputs)
        except (ValueError, TypeError) as e:
            raise ValueError(f"Loss structure mismatch. Loss structure: {tree.structure(self.loss)}, Output "
                             f"structure: {tree.structure(teacher_outputs)}. Error: {e}") from None

    def compute_loss(self, teacher_outputs: Any, student_outputs: Any, **kwargs: Any) -> Any:
        def apply(fn: Any, teacher: Any, student: Any) -> Any:
            return 0.0 if fn is None else ops.mean(fn(teacher, student))

        return _sum(tree.flatten(tree.map_structure(apply, self.loss, teacher_outputs, student_outputs)))

    def get_config(self) -> dict:
        return {"loss": _serialize_losses(self.loss), "teacher_layer_name": self.teacher_layer_name,
                "student_layer_name": self.student_layer_name}

    @classmethod
    def from_config(cls, config: dict) -> FeatureDistillation:
        config = dict(config)
        config["loss"] = _deserialize_losses(config["loss"])
        return cls(**config)


class LogitsDistillation(DistillationLoss):
    """Matches the teacher's and the student's final outputs after dividing both by ``temperature``.

    With a ``keras.losses.KLDivergence()`` object both scaled logits go through a softmax and the loss is
    multiplied by ``temperature ** 2`` (Hinton et al.); any other loss sees the scaled logits. As in Keras 3.15,
    the default string ``"kl_divergence"`` names the *function* ``keras.losses.kl_divergence``, which is not a
    ``KLDivergence`` object: it is applied to the scaled logits themselves (clipped to ``[1e-7, 1]``), without
    softmax or ``temperature ** 2``. Pass ``loss=keras.losses.KLDivergence()`` for the textbook loss.

    Args:
        temperature: a positive number; higher gives softer teacher targets. Defaults to 3.0.
        loss: a loss identifier, a loss object, or a structure of them per output (``None`` skips an output).

    Example:
        >>> import numpy as np
        >>> from onnxforge import keras
        >>> t = np.array([[2.0, 0.0]], "float32"); s = np.array([[0.0, 2.0]], "float32")
        >>> kl = keras.losses.KLDivergence()
        >>> round(float(keras.distillation.LogitsDistillation(temperature=1.0, loss=kl).compute_loss(t, s)), 4)
        1.5232
    """

    def __init__(self, temperature: float = 3.0, loss: Any = "kl_divergence"):
        self.temperature = temperature
        self.loss = tree.map_structure(_loss_function, loss)
        if all(l is None for l in tree.flatten(self.loss)):
            raise ValueError(f"At least one loss must be non-`None`. Received: loss={loss!r}")
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool):
            raise ValueError(f"temperature must be a number, got {type(temperature)}")
        if temperature <= 0.0:
            raise ValueError(f"temperature must be positive. Received: temperature={temperature}")

    def compute_loss(self, teacher_outputs: Any, student_outputs: Any, **kwargs: Any) -> Any:
        t = self.temperature
        teacher = tree.map_structure(lambda x: ops.divide(x, t), teacher_outputs)
        student = tree.map_structure(lambda x: ops.divide(x, t), student_outputs)

        def apply(fn: Any, teacher_logits: Any, student_logits: Any) -> Any:
            if fn is None:
                return 0.0
            if isinstance(fn, losses_module.KLDivergence):
                loss = ops.mean(fn(ops.softmax(teacher_logits, axis=-1), ops.softmax(student_logits, axis=-1)))
                return loss * (t ** 2)
            return ops.mean(fn(teacher_logits, student_logits))

        return _sum(tree.flatten(tree.map_structure(apply, self.loss, teacher, student)))

    def get_config(self) -> dict:
        return {"temperature": self.temperature, "loss": _serialize_losses(self.loss)}

    @classmethod
    def from_config(cls, config: dict) -> LogitsDistillation:
        config = dict(config)
        config["loss"] = _deserialize_losses(config["loss"])
        return cls(**config)


# Found by name when a saved Distiller's config is read (module "keras.distillation", as Keras writes it).
register_builtin_classes({"FeatureDistillation": FeatureDistillation, "LogitsDistillation": LogitsDistillation})
