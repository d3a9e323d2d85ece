"""``keras.distillation.Distiller``: a ``Model`` that trains its student against a frozen teacher.

``fit`` runs one compiled program per step: the teacher's forward pass (inference mode, weights frozen), the
student's, the student's supervised loss from ``compile(loss=...)`` and the distillation losses, mixed as
``student_loss_weight * student_loss + (1 - student_loss_weight) * distillation_loss`` (Keras 3.15's
formula). ``student_loss``, ``distillation_loss`` and ``total_loss`` are reported next to ``loss``.
``predict`` / ``call`` give the student's outputs; ``distiller.student`` is the trained model to keep.

Example:
    >>> from onnxforge import keras
    >>> def mlp(width, name):
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(width, activation="relu"),
    ...                              keras.layers.Dense(3)], name=name)
    >>> d = keras.distillation.Distiller(mlp(16, "teacher"), mlp(4, "student"),
    ...                                  keras.distillation.LogitsDistillation(temperature=2.0))
    >>> d.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    >>> d.teacher.trainable
    False
"""
from __future__ import annotations

__all__ = ["Distiller"]

from typing import Any

from .. import ops
from ..keras_objects import register_builtin_classes
from ..metrics import Mean
from ..models import Model, Sequential
from ..utils import tree
from .distillation_loss import _loss_function


def _check_shapes(a: Any, b: Any, context: str) -> None:
    a, b = tuple(a), tuple(b)
    if len(a) != len(b):
        raise ValueError(f"Teacher and student {context} shapes have different dimensions. Teacher: {a}, "
                         f"Student: {b}.")
    if any(x is not None and y is not None and x != y for x, y in zip(a, b)):
        raise ValueError(f"Teacher and student {context} shapes are incompatible. Teacher: {a}, Student: {b}. "
                         "All dimensions must match.")


def _symbolic(model: Any, what: str) -> Any:
    try:
        return getattr(model, what, None)
    except (AttributeError, ValueError):   # a subclassed model not yet called has no symbolic inputs
        return None


class Distiller(Model):
    """Knowledge distillation from ``teacher`` (frozen) to ``student`` (trained).

    Args:
        teacher: a trained ``keras.Model``; it is set ``trainable=False``.
        student: the ``keras.Model`` to train; ``distiller.student`` after ``fit``.
        distillation_losses: a ``DistillationLoss`` or a list of them (``LogitsDistillation``,
            ``FeatureDistillation`` or your own subclass).
        distillation_loss_weights: one weight per distillation loss; all 1.0 when ``None``.
        student_loss_weight: the share of the supervised loss, in ``[0, 1]``. Defaults to 0.5.
        name: the model's name. Defaults to ``"distiller"``.
    """

    _keras_module = "keras.distillation"   # where Keras's saved configs say the class lives

    def __init__(self, teacher: Any, student: Any, distillation_losses: Any, distillation_loss_weights: Any = None,
                 student_loss_weight: float = 0.5, name: str = "distiller", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self._validate_models(teacher, student)
        self.teacher = teacher
        self.student = student
        if not isinstance(student_loss_weight, (int, float)) or isinstance(student_loss_weight, bool):
            raise ValueError(f"student_loss_weight must be a number, got {type(student_loss_weight)}")
        if not 0.0 <= student_loss_weight <= 1.0:
            raise ValueError(f"student_loss_weight must be between 0.0 and 1.0, got {student_loss_weight}")
        self.student_loss_weight = student_loss_weight
        if distillation_losses is None:
            raise ValueError("'distillation_losses' cannot be `None`. Provide a distillation loss (e.g., "
                             "LogitsDistillation or FeatureDistillation) or a list of distillation losses.")
        if not isinstance(distillation_losses, (list, tuple)):
            self.distillation_losses = [distillation_losses]
            self.distillation_loss_weights = [1.0]
        else:
            self.distillation_losses = list(distillation_losses)
            if distillation_loss_weights is None:
                self.distillation_loss_weights = [1.0] * len(distillation_losses)
            elif len(distillation_loss_weights) != len(distillation_losses):
                raise ValueError(f"Number of distillation_loss_weights ({len(distillation_loss_weights)}) must "
                                 f"match number of distillation_losses ({len(distillation_losses)})")
            else:
                self.distillation_loss_weights = list(distillation_loss_weights)
        for loss in self.distillation_losses:
            loss.validate_model_compatibility(teacher, student)
        self._teacher_feature_extractor = self._feature_extractor(teacher, self._layer_names("teacher"))
        self._student_feature_extractor = self._feature_extractor(student, self._layer_names("student"))
        self.teacher.trainable = False
        self.student_loss_tracker = Mean(name="student_loss")
        self.distillation_loss_tracker = Mean(name="distillation_loss")
        self.total_loss_tracker = Mean(name="total_loss")

    # -- validation (Keras's checks, same messages) ---------------------------------------------------------
    def _validate_models(self, teacher: Any, student: Any) -> None:
        for role, model in (("Teacher", teacher), ("Student", student)):
            if not isinstance(model, Model):
                raise ValueError(f"{role} must be a keras.Model, got {type(model)}")
        for what in ("inputs", "outputs"):
            t, s = _symbolic(teacher, what), _symbolic(student, what)
            if t is None or s is None:
                continue
            tree.map_structure(lambda a, b: _check_shapes(a.shape, b.shape, what[:-1]), t, s)
            tree.map_structure(lambda a, b: self._same_dtype(a.dtype, b.dtype, what[:-1]), t, s)

    @staticmethod
    def _same_dtype(teacher_dtype: Any, student_dtype: Any, context: str) -> None:
        if teacher_dtype != student_dtype:
            raise ValueError(f"Teacher and student {context} dtypes must match. Teacher: {teacher_dtype}, "
                             f"Student: {student_dtype}.")

    def _layer_names(self, role: str) -> list[str]:
        names: list[str] = []
        for loss in self.distillation_losses:
            name = getattr(loss, f"{role}_layer_name", None)
            if name and name not in names:
                names.append(name)
        return names

    @staticmethod
    def _feature_extractor(model: Any, layer_names: list[str]) -> Any:
        """A functional model giving ``{"final_output": ..., layer_name: ...}`` in one pass, or ``None``."""
        if not layer_names:
            return None
        if _symbolic(model, "inputs") is None:
            raise ValueError(f"Cannot create feature extractor for {model.name}. The model has no symbolic inputs "
                             "attribute.")
        final = model.layers[-1].output if isinstance(model, Sequential) else model.output
        outputs = {"final_output": final}
        for name in layer_names:
            outputs[name] = model.get_layer(name=name).output
        return Model(inputs=model.inputs, outputs=outputs, name=f"{model.name}_multi_feature_extractor")

    # -- training ---------------------------------------------------------------------------------------------
    def compile(self, optimizer: Any = "adam", loss: Any = None, metrics: Any = None, **kwargs: Any) -> None:
        """Compile for training the student.

        Args:
            optimizer: the student's optimizer.
            loss: the student's supervised loss (identifier, loss object, or one per output); required.
            metrics: a list of metrics measured on the student's predictions.
            **kwargs: passed to ``Model.compile``.
        """
        if loss is None:
            raise ValueError("'loss' cannot be `None`.")
        self._student_loss = tree.map_structure(_loss_function, loss)
        self._student_loss_for_serialization = loss
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise ValueError(f"metrics must be a list or tuple, got {type(metrics)}")
        super().compile(optimizer=optimizer, loss=None, metrics=metrics, **kwargs)

    def call(self, inputs: Any, training: Any = None, **kwargs: Any) -> Any:
        """The student's outputs."""
        return self.student(inputs, training=training, **kwargs)

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
                     training: bool = True) -> Any:
        """``student_loss_weight * student_loss + (1 - student_loss_weight) * weighted distillation losses``."""
        if y_pred is None:
            y_pred = self(x, training=training)
        student_loss: Any = 0.0
        if self.student_loss_weight > 0.0 and y is not None:
            flat = tree.flatten(tree.map_structure(lambda l, o, p: l(o, p), self._student_loss, y, y_pred))
            student_loss = ops.sum(ops.stack(flat)) if len(flat) > 1 else flat[0]
            if len(getattr(student_loss, "shape", ())) > 0:
                student_loss = ops.mean(student_loss)
        distillation_loss: Any = 0.0
        if self.student_loss_weight < 1.0:
            teacher_features = (self._teacher_feature_extractor(x, training=False)
                                if self._teacher_feature_extractor is not None
                                else {"final_output": self.teacher(x, training=False)})
            student_features = (self._student_feature_extractor(x, training=True)
                                if self._student_feature_extractor is not None else {"final_output": y_pred})
            for loss_fn, weight in zip(self.distillation_losses, self.distillation_loss_weights):
                if getattr(loss_fn, "teacher_layer_name", None) is not None:
                    teacher_out = teacher_features[loss_fn.teacher_layer_name]
                    student_out = student_features[loss_fn.student_layer_name or "final_output"]
                else:
                    teacher_out, student_out = teacher_features["final_output"], y_pred
                loss_fn.validate_outputs(teacher_out, student_out)
                current = loss_fn.compute_loss(teacher_out, student_out)
                if len(getattr(current, "shape", ())) > 0:
                    raise ValueError(f"Distillation loss {type(loss_fn).__name__} returned a non-scalar loss with "
                                     f"shape {current.shape}. The compute_loss method must return a scalar tensor.")
                distillation_loss = ops.add(distillation_loss, ops.multiply(weight, current))
        total = ops.add(ops.multiply(self.student_loss_weight, student_loss),
                        ops.multiply(1.0 - self.student_loss_weight, distillation_loss))
        self.student_loss_tracker.update_state(student_loss)
        self.distillation_loss_tracker.update_state(distillation_loss)
        self.total_loss_tracker.update_state(total)
        return total

    def reset_metrics(self) -> None:
        super().reset_metrics()
        for tracker in (self.student_loss_tracker, self.distillation_loss_tracker, self.total_loss_tracker):
            tracker.reset_state()

    # -- saving -----------------------------------------------------------------------------------------------
    def get_config(self) -> dict:
        from ..saving import serialize_keras_object

        config = super().get_config()
        config.update({"teacher": serialize_keras_object(self.teacher),
                       "student": serialize_keras_object(self.student),
                       "distillation_losses": [serialize_keras_object(l) for l in self.distillation_losses],
                       "distillation_loss_weights": self.distillation_loss_weights,
                       "student_loss_weight": self.student_loss_weight})
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: Any = None) -> Distiller:
        from ..saving import deserialize_keras_object

        config = dict(config)
        for key in ("teacher", "student"):
            config[key] = deserialize_keras_object(config[key], custom_objects=custom_objects)
        config["distillation_losses"] = [deserialize_keras_object(l, custom_objects=custom_objects)
                                         for l in config["distillation_losses"]]
        return cls(**config)


# Saved as Keras writes it (module "keras.distillation", no registered name) and found by class name on load.
register_builtin_classes({"Distiller": Distiller})
