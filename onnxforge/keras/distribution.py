"""``keras.distribution``: Keras 3's distribution API (device meshes, layouts, data / model parallelism).

onnxforge runs one process per device. On one device (the CPU, or one CUDA device) ``DataParallel`` is exact:
the model trains as it would without it. Across several processes it is onnxforge's MPI data parallelism
(``onnxforge.distribute.MPIStrategy``): launch one process per device with ``mpirun -n N python train.py``,
build ``DataParallel()`` over ``list_devices()`` (one device per process) and every model compiled while
it is set trains on its share of each global batch, gradients all-reduced. A mesh larger than one device
with fewer processes than devices is refused, naming the mesh; so is ``ModelParallel`` with a ``LayoutMap``
that shards weights (onnxforge keeps every weight whole in each process): the error names the layout.

Example:
    >>> from onnxforge import keras
    >>> keras.distribution.list_devices("cpu")
    ['cpu:0']
    >>> dp = keras.distribution.DataParallel(devices=["cpu:0"])
    >>> with dp.scope():
    ...     keras.distribution.distribution() is dp
    True
"""
from __future__ import annotations

__all__ = ["list_devices", "get_device_count", "initialize", "DeviceMesh", "TensorLayout", "Distribution",
           "DataParallel", "ModelParallel", "LayoutMap", "distribute_tensor", "distribution", "set_distribution"]

import collections.abc
import contextlib
import math
import os
import re
import warnings
from typing import Any, Iterator

import numpy as np

from ..trainer import distribution as _trainer_distribution

DEFAULT_BATCH_DIM_NAME = "batch"
# The launchers' variables that give the size of an MPI job (Open MPI, MPICH / Intel MPI, PMIx, MVAPICH).
_MPI_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")
_MPI_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")
_state: dict[str, Any] = {"distribution": None, "strategy": None}


def _env_int(names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return default


def num_processes() -> int:
    """The processes of this job: the MPI job's size when launched by ``mpirun``, else 1."""
    return _env_int(_MPI_SIZE_VARS, 1)


def process_id() -> int:
    """This process's rank in the MPI job (0 outside one)."""
    return _env_int(_MPI_RANK_VARS, 0)


def _cuda_available() -> bool:
    from ..runtime.device import available_providers

    return "CUDAExecutionProvider" in available_providers()


def _cuda_count() -> int:
    from ..distribute.strategy import _gpu_count

    return _gpu_count()


def list_devices(device_type: str | None = None) -> list[str]:
    """The devices onnxruntime can run on here: ``"cuda:N"`` when its CUDA provider is available, else ``"cpu:0"``.

    Args:
        device_type: ``"cpu"``, ``"gpu"`` / ``"cuda"``, or ``None`` for CUDA when available, else the CPU.
            (``"tpu"`` is refused: onnxruntime has no TPU provider.)

    Returns:
        ``"type:id"`` strings. Under ``mpirun -n N`` the job's devices: one per process (``cpu:0`` ...
        ``cpu:N-1``, or one CUDA device per process), as Keras lists a cluster's global devices.
    """
    kind = None if device_type is None else str(device_type).lower()
    if kind not in (None, "cpu", "gpu", "cuda"):
        raise ValueError(f"Argument `device_type` must be 'cpu', 'gpu' or 'cuda' (onnxruntime has no TPU provider). "
                         f"Received: device_type={device_type!r}")
    if kind is None:
        kind = "cuda" if _cuda_available() else "cpu"
    if kind in ("gpu", "cuda"):
        if not _cuda_available():
            return []
        kind = "cuda"
    processes = num_processes()
    if processes > 1:
        return [f"{kind}:{i}" for i in range(processes)]
    return [f"{kind}:{i}" for i in range(_cuda_count() if kind == "cuda" else 1)]


def get_device_count(device_type: str | None = None) -> int:
    """``len(list_devices(device_type))``."""
    return len(list_devices(device_type))


def initialize(job_addresses: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """Check the multi-process setup. onnxforge forms its cluster with MPI (``mpirun -n N``), which already knows
    every process's address and rank; the arguments (or ``KERAS_DISTRIBUTION_*`` variables) must agree with it.

    Raises:
        ValueError: ``num_processes`` / ``process_id`` differ from the MPI job's (or there is no MPI job).
    """
    env = os.environ
    if num_processes is None and "KERAS_DISTRIBUTION_NUM_PROCESSES" in env:
        num_processes = int(env["KERAS_DISTRIBUTION_NUM_PROCESSES"])
    if process_id is None and "KERAS_DISTRIBUTION_PROCESS_ID" in env:
        process_id = int(env["KERAS_DISTRIBUTION_PROCESS_ID"])
    size, rank = globals()["num_processes"](), globals()["process_id"]()
    if num_processes is not None and int(num_processes) != size:
        how = f"an MPI job of {size} processes" if size > 1 else "a single process (no MPI job)"
        raise ValueError(f"initialize(num_processes={num_processes}): this is {how}. onnxforge forms its cluster "
                         f"with MPI: launch `mpirun -n {num_processes} python your_script.py` (job_addresses are "
                         "then not needed).")
    if process_id is not None and int(process_id) != rank:
        raise ValueError(f"initialize(process_id={process_id}): MPI gave this process rank {rank}.")


class DeviceMesh:
    """Devices arranged in named axes (``jax.sharding.Mesh``'s role).

    Args:
        shape: the mesh's shape, e.g. ``(8,)`` for data parallelism or ``(2, 4)`` for data x model.
        axis_names: one name per axis.
        devices: the devices, ``list_devices()`` by default.
    """

    def __init__(self, shape: Any, axis_names: Any, devices: Any = None):
        if not shape or not axis_names:
            raise ValueError(f"Shape and axis_names cannot be empty. Received: shape={shape}, axis_names={axis_names}")
        if len(shape) != len(axis_names):
            raise ValueError(f"Shape and axis_names should have same size. Received: shape={shape}, "
                             f"axis_names={axis_names}")
        devices = np.array(list_devices() if devices is None else devices)
        if math.prod(shape) != math.prod(devices.shape):
            raise ValueError(f"Shape does not match the number of devices. Received: shape={shape}; "
                             f"devices.shape={devices.shape}")
        self._shape = shape
        self._axis_names = axis_names
        self._devices = np.reshape(devices, shape)

    @property
    def shape(self) -> Any:
        return self._shape

    @property
    def axis_names(self) -> Any:
        return self._axis_names

    @property
    def devices(self) -> np.ndarray:
        return self._devices

    def __repr__(self) -> str:
        return f"<{type(self).__name__} shape={self.shape}, axis_names={self.axis_names}>"

    __str__ = __repr__


class TensorLayout:
    """How a tensor's axes map onto a mesh's axes (``None``: not split).

    Args:
        axes: one mesh axis name (or ``None``) per tensor axis.
        device_mesh: the ``DeviceMesh``; may be given later (a ``LayoutMap`` fills it in).
    """

    def __init__(self, axes: Any, device_mesh: DeviceMesh | None = None):
        self._axes = tuple(axes)
        self._device_mesh = device_mesh
        self._validate_axes()

    @property
    def axes(self) -> tuple:
        return self._axes

    @property
    def device_mesh(self) -> DeviceMesh | None:
        return self._device_mesh

    @device_mesh.setter
    def device_mesh(self, device_mesh: DeviceMesh) -> None:
        if self._device_mesh is not None:
            raise ValueError(f"Cannot override device mesh value. Existing value is {self._device_mesh}")
        self._device_mesh = device_mesh
        self._validate_axes()

    def _validate_axes(self) -> None:
        if self._device_mesh:
            valid = set(self._device_mesh.axis_names)
            names = set(self._axes) - {None}
            if names - valid:
                raise ValueError(f"Invalid axis names for Layout. Valid axis names: {valid}, Got {names}")

    def splits(self) -> bool:
        """Whether this layout cuts the tensor across more than one device."""
        mesh = self._device_mesh
        if mesh is None:
            return any(a is not None for a in self._axes)
        sizes = dict(zip(mesh.axis_names, mesh.shape))
        return any(a is not None and sizes.get(a, 1) > 1 for a in self._axes)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} axes={self.axes}, device_mesh={self.device_mesh}>"

    __str__ = __repr__


class Distribution:
    """Base class of ``DataParallel`` and ``ModelParallel``: a mesh, the batch axis's name, and activation.

    Activating one (``set_distribution(d)`` or ``with d.scope():``) checks that onnxforge can run it and, for a
    mesh of several devices in an MPI job of as many processes, makes models compiled meanwhile train with
    ``onnxforge.distribute.MPIStrategy``.
    """

    def __init__(self, device_mesh: DeviceMesh, batch_dim_name: str | None = None, auto_shard_dataset: bool = True):
        self._device_mesh = device_mesh
        self._batch_dim_name = batch_dim_name
        self._auto_shard_dataset = auto_shard_dataset
        self._num_processes = num_processes()
        self._process_id = process_id()
        self._is_multi_process = self._num_processes > 1
        self._strategy: Any = None

    @property
    def num_processes(self) -> int:
        return self._num_processes

    @property
    def num_model_replicas(self) -> int:
        raise NotImplementedError()

    @property
    def data_shard_id(self) -> int:
        replicas = self.num_model_replicas
        if replicas >= self.num_processes:
            return self._process_id
        return self._process_id // (self.num_processes // replicas)

    @property
    def device_mesh(self) -> DeviceMesh:
        return self._device_mesh

    @property
    def batch_dim_name(self) -> str | None:
        return self._batch_dim_name

    @property
    def auto_shard_dataset(self) -> bool:
        return self._auto_shard_dataset

    @auto_shard_dataset.setter
    def auto_shard_dataset(self, value: bool) -> None:
        self._auto_shard_dataset = value

    def get_data_layout(self, data_shape: Any) -> TensorLayout:
        raise NotImplementedError()

    def _batch_split_layout(self, data_shape: Any) -> TensorLayout:
        """Data split along its first axis over the mesh's batch axis, whole along the others."""
        spec: list[str | None] = [None] * len(data_shape)
        spec[0] = self.batch_dim_name
        return TensorLayout(spec, self.device_mesh)

    def get_variable_layout(self, variable: Any) -> TensorLayout:
        raise NotImplementedError()

    def get_tensor_layout(self, path: str) -> TensorLayout | None:
        raise NotImplementedError()

    def distribute_dataset(self, dataset: Any) -> Any:
        """The dataset unchanged: ``MPIStrategy`` gives each process its share of every global batch itself."""
        return dataset

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Make this the current distribution inside the ``with`` block."""
        original = distribution()
        set_distribution(self)
        try:
            yield
        finally:
            set_distribution(original)

    def _data_parallel_strategy(self) -> Any:
        """``None`` for one device; ``MPIStrategy`` for one process per replica; otherwise an error."""
        replicas = self.num_model_replicas
        if replicas == 1:
            return None
        if self._num_processes != replicas:
            raise ValueError(
                f"{type(self).__name__} over {self.device_mesh} spans {replicas} devices "
                f"({list(np.ravel(self.device_mesh.devices))}), but this job has {self._num_processes} process(es). "
                "onnxforge runs one process per device: launch one per replica with MPI (`mpirun -n "
                f"{replicas} python your_script.py`, then DataParallel() over list_devices()), or use a mesh of a "
                "single device (DataParallel(devices=list_devices()[:1])).")
        if self._strategy is None:
            from ..distribute import MPIStrategy

            self._strategy = MPIStrategy()
        return self._strategy

    def _activate(self) -> Any:
        return self._data_parallel_strategy()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} device_mesh={self.device_mesh}>"

    __str__ = __repr__


class DataParallel(Distribution):
    """Data parallelism: every device holds the whole model and a slice of each batch.

    Give ``device_mesh`` (its first axis is the batch axis) or ``devices``, or neither for ``list_devices()``.
    One device: exact, nothing changes. ``N`` devices: needs ``N`` MPI processes (see the module's text).
    """

    def __init__(self, device_mesh: DeviceMesh | None = None, devices: Any = None, auto_shard_dataset: bool = True):
        if device_mesh:
            if not isinstance(device_mesh, DeviceMesh):
                raise ValueError("Expect `mesh` to be an instance of `DeviceMesh`. Received: "
                                 f"mesh={device_mesh} (of type {type(device_mesh)})")
            super().__init__(device_mesh, device_mesh.axis_names[0], auto_shard_dataset)
            if self.device_mesh.devices.ndim != 1:
                warnings.warn("Expect the input mesh to be 1D, but received mesh.devices.ndim="
                              f"{device_mesh.devices.ndim}. The first axis will be used for data-parallel sharding.",
                              stacklevel=2)
            return
        devices = np.array(devices if devices else list_devices())
        mesh = DeviceMesh(shape=devices.shape, axis_names=[DEFAULT_BATCH_DIM_NAME], devices=devices)
        super().__init__(mesh, DEFAULT_BATCH_DIM_NAME, auto_shard_dataset)

    @property
    def num_model_replicas(self) -> int:
        return int(self.device_mesh.devices.size)

    def get_data_layout(self, data_shape: Any) -> TensorLayout:
        return self._batch_split_layout(data_shape)

    def get_variable_layout(self, variable: Any) -> TensorLayout:
        if getattr(variable, "_layout", None) is not None:
            return variable._layout
        return TensorLayout([None] * len(variable.shape), self.device_mesh)

    def get_tensor_layout(self, path: str) -> None:
        return None


class ModelParallel(Distribution):
    """Keras's model parallelism: weights sharded across a mesh by a ``LayoutMap``.

    onnxforge keeps every weight whole in each process, so a layout that splits a weight over more than one
    device is refused when the distribution is activated (the error names it). A ``LayoutMap`` whose model axis
    has size 1 shards nothing: it runs as ``DataParallel`` over the batch axis.

    Args:
        layout_map: the ``LayoutMap`` (variable path regex -> ``TensorLayout``).
        batch_dim_name: the mesh axis that splits the data (the mesh's first by default).
    """

    def __init__(self, *, layout_map: LayoutMap | None = None, batch_dim_name: str | None = None,
                 auto_shard_dataset: bool = True, **kwargs: Any):
        kwargs.pop("device_mesh", None)
        if layout_map is None:
            raise ValueError("You must specify a layout_map argument.")
        if not isinstance(layout_map, LayoutMap):
            raise ValueError(f"Argument `layout_map` must be a `LayoutMap` instance. Received: layout_map={layout_map}")
        mesh = layout_map.device_mesh
        super().__init__(mesh, batch_dim_name or mesh.axis_names[0], auto_shard_dataset)
        self._layout_map = layout_map

    @property
    def num_model_replicas(self) -> int:
        return int(self.device_mesh.shape[list(self.device_mesh.axis_names).index(self.batch_dim_name)])

    def get_data_layout(self, data_shape: Any) -> TensorLayout:
        return self._batch_split_layout(data_shape)

    def get_variable_layout(self, variable: Any) -> TensorLayout:
        if getattr(variable, "_layout", None) is not None:
            return variable._layout
        layout = self._layout_map[variable.path]
        return layout if layout is not None else TensorLayout([None] * len(variable.shape), self.device_mesh)

    def get_tensor_layout(self, path: str) -> TensorLayout | None:
        return self._layout_map[path]

    def _activate(self) -> Any:
        for key, layout in self._layout_map.items():
            if layout.splits():
                raise NotImplementedError(
                    f"ModelParallel: the LayoutMap entry {key!r} -> {layout} splits tensors over the mesh's "
                    f"{[a for a in layout.axes if a is not None]} axis. onnxforge keeps every weight whole in each "
                    "process (one process per device, data parallelism over MPI); it cannot shard weights. Use "
                    "DataParallel, or a mesh whose model axis has size 1.")
        return self._data_parallel_strategy()


class LayoutMap(collections.abc.MutableMapping):
    """A dict from regular expressions over variable paths to ``TensorLayout``\\s (Keras's ``LayoutMap``).

    A lookup returns the exact key's layout, else the one layout whose key ``re.fullmatch``es the path (an
    error if several do), else ``None``. A tuple of axis names stands for a ``TensorLayout``.
    """

    def __init__(self, device_mesh: DeviceMesh | None):
        self._layout_map: collections.OrderedDict = collections.OrderedDict()
        self._device_mesh = device_mesh

    def __getitem__(self, key: str) -> TensorLayout | None:
        if key in self._layout_map:
            return self._layout_map[key]
        matches = [p for p in self._layout_map if re.fullmatch(p, key)]
        if len(matches) > 1:
            raise ValueError(f"Path '{key}' matches multiple layout specification keys: {matches}. Please make sure "
                             "each tensor/variable path only matches at most one layout specification key in the "
                             "LayoutMap.")
        return self._layout_map[matches[0]] if matches else None

    def __setitem__(self, key: str, layout: Any) -> None:
        if key in self._layout_map:
            raise ValueError(f"{key} already exist in the LayoutMap with value {self._layout_map[key]}. Please make "
                             "sure to not use duplicated keys.")
        if isinstance(layout, tuple):
            layout = TensorLayout(axes=layout, device_mesh=None)
        if not isinstance(layout, TensorLayout):
            raise ValueError(f"{layout} should be a TensorLayout type, got {type(layout)}")
        if layout.device_mesh is None and self._device_mesh is not None:
            layout.device_mesh = self._device_mesh
        self._layout_map[key] = layout

    def __delitem__(self, key: str) -> TensorLayout:
        return self._layout_map.pop(key)

    def __len__(self) -> int:
        return len(self._layout_map)

    def __iter__(self) -> Iterator[str]:
        return iter(self._layout_map)

    @property
    def device_mesh(self) -> DeviceMesh | None:
        return self._device_mesh


def distribute_tensor(tensor: Any, layout: TensorLayout) -> Any:
    """``tensor`` laid out by ``layout``: unchanged, since each process holds whole tensors; a layout that would
    split it across devices is refused."""
    if isinstance(layout, TensorLayout) and layout.splits():
        distribution_now = distribution()
        if not (isinstance(distribution_now, DataParallel) and set(a for a in layout.axes if a) <=
                {distribution_now.batch_dim_name}):
            raise NotImplementedError(f"distribute_tensor(): the layout {layout} splits the tensor across devices; "
                                      "onnxforge keeps whole tensors in each process (batches are split by "
                                      "DataParallel's MPI strategy).")
    return tensor


def distribution() -> Distribution | None:
    """The current distribution (``None`` when none is set)."""
    return _state["distribution"]


def set_distribution(value: Distribution | None) -> None:
    """Make ``value`` the current distribution (``None`` clears it); models compiled while a multi-process
    ``DataParallel`` is set train with ``onnxforge.distribute.MPIStrategy``.

    Raises:
        ValueError: a mesh of several devices without one MPI process per device.
        NotImplementedError: a ``ModelParallel`` layout that shards weights.
    """
    if value is not None and not isinstance(value, Distribution):
        raise ValueError(f"set_distribution() takes a keras.distribution.Distribution or None. Received: "
                         f"{value!r} of type {type(value).__name__}")
    strategy = value._activate() if value is not None else None
    _state["distribution"] = value
    _trainer_distribution.set_default_strategy(strategy)
