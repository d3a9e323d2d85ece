"""Where Keras 3 keeps each variable in ``model.weights.h5``: its walk over a model, done on onnxforge objects.

Keras 3 (``keras.src.saving.saving_lib``) stores state by object path, not by variable name: starting at
the model it writes each object's *own* variables as datasets ``<path>/vars/0``, ``1``, ... and then visits
its attributes in sorted order (private ones last). A list of objects (``model.layers``) names each item
after its class in snake case, numbered on repeats (``layers/dense``, ``layers/dense_1``). So the first
Dense of a Sequential model is ``layers/dense/vars/0`` (kernel) and ``/1`` (bias), an LSTM's weights live
in ``layers/lstm/cell/vars``, and the optimizer's in ``optimizer/vars`` (``iterations``, the learning
rate, then its slots in Keras's order).

onnxforge's layers mirror Keras's attribute names (``cell``, ``forward_layer``, ``layer``), own-variable
order and model ``layers`` order, so the same walk over an onnxforge model yields the paths Keras would
write for the same Keras model. Both the writer and the readers use :func:`keras_saveables`.

Example:
    >>> import onnxforge as of
    >>> model = of.Sequential([of.layers.Input((3,)), of.layers.Dense(2), of.layers.Dense(1)])
    >>> [(s.path, len(s.refs)) for s in keras_saveables(model)]
    [('', 0), ('layers/dense', 2), ('layers/dense_1', 2)]
"""
from __future__ import annotations

__all__ = ["Saveable", "StateRef", "keras_saveables", "optimizer_refs", "keras_class_name", "to_snake_case"]

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...layers.base import Layer
from ...layers.input_layer import InputLayer
from ...optimizers import MultiOptimizer, Optimizer
from ...optimizers.schedules import LearningRateSchedule
from ...variables import Variable
from ...optimizers.keras_style import is_keras_style

#: Optimizers whose slots Keras creates interleaved per variable (``add_optimizer_variables(vars, [a, b])``):
#: each group is interleaved, groups follow each other. Any other optimizer: one group per slot kind.
_SLOT_GROUPS: dict[str, list[tuple[str, ...]]] = {
    "Adam": [("momentum", "velocity"), ("velocity_hat",)],
    "AdamW": [("momentum", "velocity"), ("velocity_hat",)],
    "Nadam": [("momentum", "velocity")],
    "Lamb": [("momentum", "velocity")],
    "Adamax": [("momentum", "norm")],
    "Adadelta": [("accumulated_grad", "accumulated_delta_var")],
    "Ftrl": [("accumulator", "linear")],
    "Adafactor": [("r", "c", "velocity")],
    "Muon": [("momentum", "velocity")],   # a velocity only for the weights Muon steps the Adam way
    "ScheduleFreeAdamW": [("momentum", "velocity")],
}


def to_snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case`` (container entries are named with it)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# ------------------------------------------------------------------------------------------ references
@dataclass
class StateRef:
    """One stored tensor: a Variable, or an optimizer's host-side learning rate (a variable in Keras)."""

    label: str
    variable: Variable | None = None
    optimizer: Optimizer | None = None   # set for the learning rate

    @property
    def shape(self) -> tuple[int, ...]:
        return () if self.variable is None else tuple(self.variable.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32) if self.variable is None else np.dtype(self.variable.dtype)

    def read(self) -> np.ndarray:
        if self.variable is None and self.optimizer is None:   # a MultiOptimizer's unused learning rate
            return np.zeros((), np.float32)
        if self.variable is None:
            return np.asarray(self.optimizer.learning_rate, np.float32)
        return np.asarray(self.variable.numpy())

    def write(self, value: np.ndarray) -> None:
        if self.variable is None and self.optimizer is None:
            return
        if self.variable is None:
            self.optimizer.learning_rate = float(np.asarray(value).reshape(()))
            return
        self.variable.assign(np.asarray(value).astype(self.variable.dtype, copy=False))
        if self.optimizer is not None:     # the step counter: drop the host mirror
            self.optimizer._step_mirror = None


@dataclass
class Saveable:
    """One object Keras gives a ``<path>/vars`` group: its path, ``name`` attribute and own tensors."""

    path: str
    name: str
    obj: Any
    refs: list[StateRef] = field(default_factory=list)

    @property
    def group(self) -> str:
        """The HDF5 group holding the datasets ``0``, ``1``, ... (``vars`` for the root)."""
        return f"{self.path}/vars" if self.path else "vars"

    @property
    def is_optimizer(self) -> bool:
        return isinstance(self.obj, Optimizer)


# ------------------------------------------------------------------------------------------ the walk
def _is_functional(obj: Any) -> bool:
    return getattr(obj, "_graph", None) is not None and type(obj).__name__ == "Model"


def _is_sequential(obj: Any) -> bool:
    from ...models.sequential import Sequential

    return isinstance(obj, Sequential)


def keras_class_name(obj: Any) -> str:
    """The class name Keras would give the same object (functional models are ``Functional``)."""
    return "Functional" if _is_functional(obj) else type(obj).__name__


def _silent(obj: Any) -> bool:
    """Objects Keras visits but that write nothing (metrics, losses): they still take a name in a list."""
    from ... import losses, metrics

    return isinstance(obj, (metrics.Metric, losses.Loss))


def _saveable(obj: Any) -> bool:
    return isinstance(obj, (Layer, Optimizer)) or _silent(obj)


_FRAMEWORK_MODULES = ("onnxforge.models.", "onnxforge.trainer.", "onnxforge.saving.", "onnxforge.layers.base")
_SKIP: set[str] | None = None


def _skipset() -> set[str]:
    """Attributes every layer has (Keras skips those of a bare ``Layer``); computed once."""
    global _SKIP
    if _SKIP is None:
        probe = Layer(name="keras_format_probe")
        _SKIP = set(dir(probe)) | {"_inbound_nodes", "_build_shapes", "input_spec"}
    return _SKIP


def _property_names(obj: Any) -> set[str]:
    """Properties defined by layer classes (Keras's walk reads them too: ``MultiHeadAttention.query_dense``)."""
    names: set[str] = set()
    for cls in type(obj).__mro__:
        module = getattr(cls, "__module__", "") or ""
        if cls is object or module.startswith(_FRAMEWORK_MODULES) or module == "onnxforge.layers.base":
            continue
        names.update(n for n, v in vars(cls).items() if isinstance(v, property))
    return names


def _name_key(name: str) -> str:
    return f"~{name}" if name.startswith("_") else name


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, MultiOptimizer):   # Keras also writes each sub-optimizer under `optimizers/<class>`
        yield "optimizers", obj.optimizers
        return
    if isinstance(obj, Optimizer) or _silent(obj):
        return
    if _is_sequential(obj) or _is_functional(obj):
        # Keras visits the tracked layers first, then other attributes; of those only the optimizer holds state.
        layers = [l for l in obj.layers if not isinstance(l, InputLayer)] if _is_sequential(obj) else obj.layers
        yield "layers", layers
        optimizer = getattr(obj, "optimizer", None)
        if isinstance(optimizer, Optimizer):
            yield "optimizer", optimizer
        return
    names = set(vars(obj)) | _property_names(obj)
    if hasattr(obj, "_graph"):   # a subclassed Model: Keras also reads `layers` and `optimizer`
        names |= {"layers", "optimizer"}
    for name in sorted(names - (_skipset() - {"layers", "optimizer"}), key=_name_key):
        if name.startswith("__"):
            continue
        try:
            value = getattr(obj, name)
        except Exception:       # Keras skips attributes that raise when read
            continue
        if _saveable(value) or isinstance(value, (list, tuple, dict)):
            yield name, value


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def _unique(name: str, used: dict[str, int]) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


class _Walk:
    def __init__(self, model: Any, include_optimizer: bool):
        self.include_optimizer = include_optimizer
        self.visited: set[int] = set()
        self.out: list[Saveable] = []

    def visit(self, obj: Any, path: str, owner: Any) -> None:
        if id(obj) in self.visited:
            return
        if isinstance(obj, Optimizer):
            if not self.include_optimizer:
                return
            self.out.append(Saveable(path, obj.name, obj, optimizer_refs(obj, owner)))
        elif isinstance(obj, Layer):
            own = obj._keras_saved_variables()
            self.out.append(Saveable(path, obj.name, obj, [StateRef(v.path, v) for v in own]))
        self.visited.add(id(obj))
        # A MultiOptimizer's sub-optimizers list the slots of the model's weights: the model stays their owner.
        owner = owner if isinstance(obj, Optimizer) else obj
        for name, child in _children(obj):
            if _saveable(child):
                self.visit(child, _join(path, name), owner)
            else:
                self.container(child, _join(path, name), set(), owner)

    def container(self, items: Any, path: str, seen: set[int], owner: Any) -> None:
        if id(items) in seen:
            return
        seen.add(id(items))
        used: dict[str, int] = {}
        for item in (list(items.values()) if isinstance(items, dict) else items):
            if _saveable(item):
                self.visit(item, _join(path, _unique(to_snake_case(keras_class_name(item)), used)), owner)
            elif isinstance(item, (list, tuple, dict)):
                self.container(item, _join(path, _unique("container", used)), seen, owner)


def keras_saveables(model: Any, include_optimizer: bool = True) -> list[Saveable]:
    """Every object Keras 3 would write for ``model``, in its order, with the tensors of each.

    Args:
        model: an onnxforge model (or layer).
        include_optimizer: include ``model.optimizer`` (and optimizers of nested compiled models).
    """
    walk = _Walk(model, include_optimizer)
    walk.visit(model, "", model)
    return walk.out


# ------------------------------------------------------------------------------------------ optimizers
def _slot_groups(opt: Optimizer) -> list[tuple[str, ...]]:
    specs = [name for name, _ in opt.slot_specs()]
    for cls in type(opt).__mro__:
        groups = _SLOT_GROUPS.get(cls.__name__)
        if groups is not None:
            chosen = [tuple(s for s in g if s in specs) for g in groups]
            chosen = [g for g in chosen if g]
            rest = [(s,) for s in specs if all(s not in g for g in chosen)]
            return chosen + rest
    return [(s,) for s in specs]


def trained_variables(opt: Optimizer, model: Any) -> list[Variable]:
    """The variables ``opt`` has slots for, in Keras's order (the model's ``trainable_weights`` order)."""
    slots = getattr(opt, "_slots", {})
    order = [v for v in getattr(model, "trainable_weights", []) if v.uid in slots]
    listed = {v.uid for v in order}
    if len(listed) == len(slots):
        return order
    # Slots for variables the model does not list as trainable (frozen after training): creation order.
    by_uid = {v.uid: v for v in getattr(model, "weights", [])}
    return order + [by_uid[u] for u in slots if u not in listed and u in by_uid]


def optimizer_refs(opt: Optimizer, model: Any) -> list[StateRef]:
    """``opt``'s tensors in Keras 3's ``optimizer.variables`` order: ``iterations``, the learning rate
    (unless it is a schedule or a callable), the moving averages (``use_ema``), then the slots (grouped as Keras
    creates them)."""
    refs = [StateRef(f"{opt.name}/iteration", opt.iterations, optimizer=opt)]
    if isinstance(opt, MultiOptimizer):   # Keras: its own counter and placeholder rate, then each sub-optimizer's
        refs.append(StateRef(f"{opt.name}/learning_rate"))
        return refs + [ref for inner in opt.optimizers for ref in optimizer_refs(inner, model)]
    lr = getattr(opt, "_learning_rate", None)
    if not isinstance(lr, LearningRateSchedule) and not callable(lr):
        refs.append(StateRef(f"{opt.name}/learning_rate", None, optimizer=opt))
    variables = trained_variables(opt, model)
    averages = getattr(opt, "_averages", {})
    # use_ema: Keras's base build creates the averages before any slot.
    refs += [StateRef(averages[v.uid].path, averages[v.uid]) for v in variables if v.uid in averages]
    if is_keras_style(opt):   # a user's build: its add_variable calls, in the order they ran (Keras's order)
        return refs + [StateRef(v.path, v) for v in opt._slot_order]
    for group in _slot_groups(opt):
        for var in variables:
            slots = opt._slots[var.uid]
            refs += [StateRef(slots[slot].path, slots[slot]) for slot in group if slot in slots]
    return refs
