"""Keras 3's ``keras.distribution`` on one process: a program that sets ``DataParallel`` over one device trains
exactly as without it, in Keras (torch backend) and onnxforge alike; meshes, layouts and layout maps behave as
Keras's; what onnxforge cannot run (several devices without one MPI process each, weights sharded by a
``ModelParallel`` layout) is refused with errors that name the mesh or the layout. The multi-process case is
``tests/distribute/test_keras_distribution.py``.

Tolerance: Keras's initial weights copied, no randomness: one SGD step and the predictions agree to float32
summation order (1e-5).
"""
from __future__ import annotations

import numpy as np
import pytest

from .harness import fkeras, keras as real_keras, run_both, to_numpy


def data_parallel_program(keras, data, init):
    x, y = data
    distribution = keras.distribution.DataParallel(devices=["cpu:0"])
    keras.distribution.set_distribution(distribution)
    try:
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(7, activation="relu"), keras.layers.Dense(2)])
        init(model)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        loss = float(to_numpy(model.train_on_batch(x, y)))
        out = {"loss": loss, "predict": np.asarray(to_numpy(model.predict(x, verbose=0))),
               "replicas": distribution.num_model_replicas, "batch_dim": distribution.batch_dim_name,
               "layout": distribution.get_data_layout((8, 5)).axes,
               "current": keras.distribution.distribution() is distribution}
    finally:
        keras.distribution.set_distribution(None)
    return out


def test_one_device_data_parallel_trains_unchanged():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(8, 5)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    want, got = run_both(data_parallel_program, data, copy_weights=True)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    np.testing.assert_allclose(got["predict"], want["predict"], rtol=1e-5, atol=1e-6)
    for key in ("replicas", "batch_dim", "layout", "current"):
        assert got[key] == want[key], key
    assert fkeras.distribution.distribution() is None


def test_meshes_layouts_and_layout_maps_behave_as_in_keras():
    for keras in (real_keras, fkeras):
        d = keras.distribution
        mesh = d.DeviceMesh((2, 2), ["batch", "model"], devices=["cpu:0", "cpu:1", "cpu:2", "cpu:3"])
        assert repr(mesh) == "<DeviceMesh shape=(2, 2), axis_names=['batch', 'model']>"
        assert mesh.devices.shape == (2, 2)
        layout_map = d.LayoutMap(mesh)
        layout_map[".*dense.*kernel"] = (None, "model")
        layout_map[".*dense.*bias"] = ("model",)
        assert layout_map["sequential/dense_1/kernel"].axes == (None, "model")
        assert layout_map["sequential/dense_1/kernel"].device_mesh is mesh
        assert layout_map["conv/kernel"] is None
        layout_map["seq.*"] = (None,)
        with pytest.raises(ValueError, match="matches multiple layout"):
            layout_map["sequential/dense_1/bias"]
        with pytest.raises(ValueError, match="Invalid axis names"):
            d.TensorLayout(("batch", "nope"), mesh)
        with pytest.raises(ValueError, match="Shape does not match the number of devices"):
            d.DeviceMesh((3,), ["batch"], devices=["cpu:0", "cpu:1"])
        parallel = d.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
        assert parallel.num_model_replicas == 2
        assert parallel.get_data_layout((4, 3)).axes == ("batch", None)


def test_list_devices_reports_what_onnxruntime_runs_on():
    import onnxruntime

    cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    devices = fkeras.distribution.list_devices()
    assert devices[0] == ("cuda:0" if cuda else "cpu:0")
    assert fkeras.distribution.list_devices("cpu") == ["cpu:0"]
    assert bool(fkeras.distribution.list_devices("gpu")) == cuda
    assert fkeras.distribution.get_device_count("cpu") == 1
    with pytest.raises(ValueError, match="device_type='tpu'"):
        fkeras.distribution.list_devices("tpu")


def test_what_one_process_cannot_run_is_refused_clearly():
    d = fkeras.distribution
    two = d.DataParallel(devices=["cpu:0", "cpu:1"])
    with pytest.raises(ValueError, match=r"spans 2 devices .*1 process.*mpirun -n 2"):
        d.set_distribution(two)
    assert d.distribution() is None
    mesh = d.DeviceMesh((1, 2), ["batch", "model"], devices=["cpu:0", "cpu:1"])
    layout_map = d.LayoutMap(mesh)
    layout_map[".*kernel"] = (None, "model")
    with pytest.raises(NotImplementedError, match=r"'\.\*kernel'.*splits tensors over the mesh's \['model'\] axis"):
        with d.ModelParallel(layout_map=layout_map).scope():
            pass
    # A model axis of size 1 shards nothing: it runs (as data parallelism over one device).
    flat = d.LayoutMap(d.DeviceMesh((1, 1), ["batch", "model"], devices=["cpu:0"]))
    flat[".*kernel"] = (None, "model")
    with d.ModelParallel(layout_map=flat).scope():
        assert isinstance(d.distribution(), d.ModelParallel)
    # distribute_tensor: whole tensors stay whole; a layout that would split one across devices is refused.
    value = np.arange(6.0).reshape(2, 3)
    one = d.DeviceMesh((1,), ["batch"], devices=["cpu:0"])
    assert d.distribute_tensor(value, d.TensorLayout(("batch", None), one)) is value
    with pytest.raises(NotImplementedError, match="splits the tensor across devices"):
        d.distribute_tensor(value, d.TensorLayout((None, "model"), mesh))
    with pytest.raises(ValueError, match="mpirun -n 2"):
        d.initialize(num_processes=2)
    d.initialize(num_processes=1, process_id=0)
