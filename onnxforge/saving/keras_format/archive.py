"""``.keras`` archives, as Keras 3 writes and reads them, and ``.weights.h5`` files.

A ``.keras`` file is a zip holding ``metadata.json`` (versions, date), ``config.json`` (the model's
serialized config, with its ``compile_config``) and ``model.weights.h5`` (every variable at the path Keras
gives it, see :mod:`.layout`). ``save_keras`` writes exactly that; Keras's ``keras.saving.load_model``
reads it, optimizer state included. ``load_keras`` reads archives Keras wrote: the architecture through
onnxforge's layers, the weights, the compile config and the optimizer's step counter, learning rate and
slots, so training continues where Keras stopped.

An archive is untrusted input. Only the three members above and the ``assets/`` files (:mod:`.assets`; bounded, written to a temporary folder for ``load_assets``) are read, each
with a size limit checked before reading (zip bombs), member names that would escape a folder are refused,
the config is rebuilt with classes onnxforge has (``custom_objects`` / ``register_keras_serializable`` for
others, never code from the file), every weight a layer creates must match a tensor the weights file
really stores before it is allocated, and every tensor is read only after its shape matched the model.

Example:
    >>> import os, tempfile, numpy as np
    >>> import onnxforge as of
    >>> model = of.Sequential([of.layers.Input((3,)), of.layers.Dense(2)])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.keras")
    >>> _ = save_keras(model, path)
    >>> again = load_keras(path)
    >>> bool(np.array_equal(again.get_weights()[0], model.get_weights()[0]))
    True
"""
from __future__ import annotations

__all__ = ["save_keras", "load_keras", "keras_model_config", "compile_from_keras_config", "save_keras_weights",
           "load_keras_weights", "KERAS_FORMAT_VERSION", "DEFAULT_MAX_BYTES", "MAX_CONFIG_BYTES", "MAX_CONFIG_VALUES",
           "MAX_DIRECTORY_BYTES", "check_json_values"]

import datetime
import json
import os
import posixpath
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..._version import __version__
from ...layers.serialization import deserialize, serialize
from ...graph.size_limits import size_limits
from ...layers.allocation import weight_budget
from ..atomic import atomic_write
from ...layers.safe_mode import safe_mode_override
from .compile_config import from_keras_compile_config, to_keras_compile_config
from .config import check_no_lambda_bytecode, keras_config_to_onnxforge, onnxforge_config_to_keras
from ..zip_directory import directory_size
from .assets import MAX_ASSET_FILES, load_assets, read_assets, save_assets
from .errors import KerasFileError, KerasFileNotFoundError, Stage
from .h5io import H5Reader, LoadProblem, require_h5py, write_h5
from .layout import keras_saveables

#: The Keras release whose ``.keras`` layout onnxforge writes (and checks against in its tests).
KERAS_FORMAT_VERSION = "3.15.1"
#: Default cap on the bytes a ``.keras`` archive's members may expand to.
DEFAULT_MAX_BYTES = 16 * 2**30
#: ``config.json`` / ``metadata.json`` larger than this are refused (real ones are kilobytes).
MAX_CONFIG_BYTES = 64 * 2**20
#: JSON values (arrays, objects and the items they hold) a config may hold: EfficientNetB7's 760 KB config holds
#: 48,000; Python takes 25 times the bytes of ``[[],[],...]`` to hold it (1.6 GB for 64 MB), so it is counted first.
MAX_CONFIG_VALUES = 4_000_000
#: The most bytes a .keras zip directory may take: Keras's own few members and ``MAX_ASSET_FILES`` assets
#: with names of 200 characters (checked before zipfile parses it: ``saving/zip_directory.py``).
MAX_DIRECTORY_BYTES = (MAX_ASSET_FILES + 64) * 256
#: A stored member expanding more than this many times is a zip bomb (Keras stores members uncompressed).
_MAX_RATIO = 200

#: ``serialize_keras_object``, registered by ``saving/object_serialization.py`` (which imports this package).
SERIALIZE_OBJECT: list[Any] = []

_CONFIG = "config.json"
_METADATA = "metadata.json"
_WEIGHTS = "model.weights.h5"


# ------------------------------------------------------------------------------------------ save
def _user_defines(model: Any, method: str) -> bool:
    """Whether a class of the user's own, above onnxforge's, defines ``method`` (Keras's saving hooks)."""
    return any(method in cls.__dict__ for cls in type(model).__mro__ if not cls.__module__.startswith("onnxforge."))


def _custom_compile(model: Any) -> bool:
    """Whether the model's class overrides ``compile()`` (a ``Distiller``, keras.io's distillation example): Keras
    then skips compiling on load, with a warning, since the saved config's arguments are not its ``compile``'s."""
    for cls in type(model).__mro__:
        if "compile" in cls.__dict__:
            return not cls.__module__.startswith(("onnxforge.trainer", "onnxforge.models"))
    return False


def _skip_custom_compile(model: Any) -> bool:
    if _user_defines(model, "compile_from_config") or not _custom_compile(model):
        return False
    warnings.warn("`compile()` was not called as part of model loading because the model's `compile()` method is "
                  "custom. All subclassed Models that have `compile()` overridden should also override "
                  "`get_compile_config()` and `compile_from_config(config)`. Alternatively, you can call "
                  "`compile()` manually after loading.", stacklevel=3)
    return True


def keras_model_config(model: Any) -> dict:
    """``model`` as Keras 3's serialized entry: its config and, once compiled, its ``compile_config`` (what
    ``config.json`` holds and ``model.to_json()`` writes)."""
    config = onnxforge_config_to_keras(serialize(model))
    compile_config = model.get_compile_config() if getattr(model, "compiled", False) else None
    if compile_config is not None and _user_defines(model, "get_compile_config"):
        # The user's own config (optimizers, losses as objects), serialized as Keras does, for their
        # compile_from_config to read back.
        config["compile_config"] = SERIALIZE_OBJECT[0](compile_config)
    elif compile_config is not None:
        config["compile_config"] = to_keras_compile_config(compile_config)
    return config


def _metadata() -> dict[str, str]:
    return {"keras_version": KERAS_FORMAT_VERSION, "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "producer": f"onnxforge {__version__}"}


def save_keras(model: Any, filepath: str | os.PathLike[str], include_optimizer: bool = True) -> Path:
    """Write ``model`` as a Keras 3 ``.keras`` archive (atomically).

    Args:
        model: a Sequential, functional or registered subclassed onnxforge model.
        filepath: the archive to write; must end in ``.keras``.
        include_optimizer: store the optimizer's variables (Keras always does).

    Returns:
        The written path.
    """
    path = Path(os.fspath(filepath))
    require_h5py("Saving a .keras file")
    if not getattr(model, "built", False):
        warnings.warn("You are saving a model that has not yet been built. It might not contain any weights yet. "
                      "Consider building the model first by calling it on some data.", stacklevel=3)
    config = json.dumps(keras_model_config(model))
    saveables = keras_saveables(model, include_optimizer)
    weights = write_h5(saveables)
    assets = save_assets(saveables)     # save_assets() hooks: lookup vocabularies, custom layers' files

    def write(f: Any) -> None:
        with zipfile.ZipFile(f, "w") as zf:      # stored, uncompressed: as Keras writes it
            zf.writestr(_METADATA, json.dumps(_metadata()))
            zf.writestr(_CONFIG, config)
            zf.writestr(_WEIGHTS, weights)
            for name, data in assets.items():
                zf.writestr(name, data)

    return atomic_write(path, write)


def save_keras_weights(model: Any, filepath: str | os.PathLike[str]) -> Path:
    """Write ``model``'s weights (and its optimizer's state, as Keras does) to a ``.weights.h5`` file."""
    if not getattr(model, "built", False):
        raise ValueError("You are saving a model that has not yet been built. Try building the model first by "
                         "calling it on some data or by using `build()`.")
    return atomic_write(Path(os.fspath(filepath)), write_h5(keras_saveables(model)))


# ------------------------------------------------------------------------------------------ read the zip
def _unsafe_name(name: str) -> bool:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\x00" in name:
        return True
    return ".." in posixpath.normpath(name).split("/") or ".." in name.split("/")


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise KerasFileNotFoundError(f"File not found: filepath={path}. Please ensure the file is an accessible "
                                "`.keras` zip file.")
    if path.is_dir():
        raise KerasFileError(path, "it is a folder; onnxforge reads zipped .keras archives")
    try:
        listed = directory_size(path)   # before zipfile builds an object per entry
    except OSError:
        listed = None                   # zipfile reports the unreadable file itself
    if listed is not None and listed > MAX_DIRECTORY_BYTES:
        raise KerasFileError(path, f"its zip directory takes {listed} bytes, over the limit of {MAX_DIRECTORY_BYTES} "
                             f"(room for {MAX_ASSET_FILES} assets); a .keras archive lists a few members, so it "
                             "was not parsed")
    try:
        zf = zipfile.ZipFile(path, "r")
    except zipfile.BadZipFile as e:
        raise KerasFileError(path, f"it is not a zip archive ({e}); a .keras file is the zip Keras 3's "
                             "model.save() writes") from None
    except OSError as e:
        raise KerasFileError(path, f"it cannot be read ({e})") from None
    names = [info.filename for info in zf.infolist()]
    for name in names:
        if _unsafe_name(name):
            zf.close()
            raise KerasFileError(path, "the archive has a member whose name leaves the archive's folder "
                                 "(absolute path, drive letter, backslash or '..'); refusing it", key=name)
    for wanted in (_CONFIG, _WEIGHTS, _METADATA):
        if names.count(wanted) > 1:
            zf.close()
            raise KerasFileError(path, "the archive holds this member more than once (which one is meant is "
                                 "ambiguous)", key=wanted)
    return zf


def _read_member(zf: zipfile.ZipFile, path: Path, name: str, limit: int) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise KerasFileError(path, f"the archive has no {name!r}; it holds {sorted(zf.namelist())[:10]}",
                             key=name) from None
    if info.flag_bits & 0x1:
        raise KerasFileError(path, "the member is encrypted", key=name)
    if info.file_size > limit:
        raise KerasFileError(path, f"the member expands to {info.file_size} bytes, over the limit of {limit} "
                             "(max_bytes)", key=name)
    if info.file_size > 2**20 and info.file_size > _MAX_RATIO * max(info.compress_size, 1):
        raise KerasFileError(path, f"the member declares {info.file_size} bytes but stores only "
                             f"{info.compress_size}: a potential decompression bomb; refusing it", key=name)
    try:
        with zf.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        raise KerasFileError(path, f"the member cannot be read ({e})", key=name) from None
    if len(data) > limit:
        raise KerasFileError(path, f"the member expands past the limit of {limit} bytes", key=name)
    return data


def check_json_values(data: bytes | str, path: Path, key: str) -> None:
    """Refuse JSON holding more than ``MAX_CONFIG_VALUES`` values (counted by their brackets and commas)."""
    marks = (b"[", b"{", b",") if isinstance(data, bytes) else ("[", "{", ",")
    values = sum(data.count(mark) for mark in marks)
    if values > MAX_CONFIG_VALUES:
        raise KerasFileError(path, f"the JSON holds about {values} values, over the limit of {MAX_CONFIG_VALUES} "
                             "(a config of thousands of layers holds a few hundred thousand); it was not parsed",
                             key=key)


def _json(data: bytes, path: Path, key: str) -> Any:
    check_json_values(data, path, key)   # before json builds an object per value
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise KerasFileError(path, f"the member is not valid JSON ({type(e).__name__}: {e})", key=key) from None


# ------------------------------------------------------------------------------------------ rebuild
def _rebuild(entry: Any, path: Path, custom_objects: Mapping[str, Any] | None, safe_mode: bool,
             stored: list[tuple[int, ...]]) -> Any:
    if not isinstance(entry, dict) or "class_name" not in entry or not isinstance(entry.get("config"), dict):
        raise KerasFileError(path, "config.json is not a serialized Keras model (expected an object with "
                             "'class_name' and 'config')", key=_CONFIG)
    refuse_lambdas(entry, safe_mode, path, _CONFIG)
    custom = dict(custom_objects or {})
    # Each stage's failure, whatever the code underneath raised, ends as one KerasFileError naming the member.
    # Converting constructs each layer once (to drop arguments it rejects): under the same bounds as the build.
    with Stage(path, _CONFIG, "config.json cannot be read as a Keras model config"), size_limits(f"'{path}'"):
        converted = keras_config_to_onnxforge({k: v for k, v in entry.items() if k != "compile_config"}, custom)
    with Stage(path, _CONFIG, "config.json does not describe a model onnxforge can build"), \
            weight_budget(stored, f"'{path}'"), size_limits(f"'{path}'") as limits:
        model = deserialize(converted, custom)
    model._size_limits = limits     # its later traces (the first predict) keep the bounds
    return model


def refuse_lambdas(entry: Any, safe_mode: bool, path: Path, key: str) -> None:
    """Keras's refusal of serialized bytecode (unless ``safe_mode=False``), as a KerasFileError naming ``key``."""
    with Stage(path, key, f"{key} cannot be searched for Python bytecode"):
        try:
            check_no_lambda_bytecode(entry, safe_mode, "safe_mode=True")
        except ValueError as e:
            raise KerasFileError(path, str(e), key=key) from None


def _raise_problems(problems: Sequence[LoadProblem], path: Path, skip_mismatch: bool) -> None:
    """Optimizer mismatches warn (Keras starts such an optimizer fresh); layer mismatches raise together."""
    for p in problems:
        if p.optimizer:
            warnings.warn(f"{p.message} (file {str(path)!r})", stacklevel=4)
    layer = [p for p in problems if not p.optimizer]
    if not layer:
        return
    message = (f"A total of {len(layer)} objects could not be loaded. Example error message for the first: "
               f"{layer[0].message}. List of objects that could not be loaded: {[p.path for p in layer]}")
    if skip_mismatch:
        warnings.warn(f"{path}: {message}", stacklevel=4)
        return
    raise KerasFileError(path, message, key=layer[0].path)


def compile_from_keras_config(model: Any, compile_config: Mapping[str, Any],
                              custom_objects: Mapping[str, Any] | None) -> None:
    """Compile ``model`` as a Keras ``compile_config`` says (the model's own ``compile_from_config`` if it has one).

    Raises:
        ValueError: an entry onnxforge cannot rebuild (named).
    """
    if _user_defines(model, "compile_from_config"):
        model.compile_from_config(compile_config)   # the model's own hook reads its own config (Keras)
        return
    if _skip_custom_compile(model):
        return
    model.compile(**from_keras_compile_config(compile_config, custom_objects))


def _compile(model: Any, compile_config: Any, path: Path, custom_objects: Mapping[str, Any] | None) -> None:
    if not isinstance(compile_config, Mapping):
        raise KerasFileError(path, "compile_config is not an object", key="compile_config")
    with Stage(path, "compile_config", "its compile config cannot be applied (load with compile=False and "
               "compile the model yourself)"):
        if _user_defines(model, "compile_from_config"):
            model.compile_from_config(compile_config)   # the model's own hook reads its own config (Keras)
            return
        if _skip_custom_compile(model):
            return
        try:
            kwargs = from_keras_compile_config(compile_config, custom_objects)
        except ValueError as e:
            raise KerasFileError(path, f"its compile config cannot be rebuilt: {e}. Load with compile=False and "
                                 "compile the model yourself", key="compile_config") from None
        model.compile(**kwargs)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and getattr(model, "built", False):
            optimizer.build(model.trainable_weights)   # as Keras's compile_from_config: slots to load into


def load_keras(filepath: str | os.PathLike[str], custom_objects: Mapping[str, Any] | None = None,
               compile: bool = True, safe_mode: bool = True, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Rebuild a model from a Keras 3 ``.keras`` archive (written by Keras or by onnxforge).

    Args:
        filepath: the archive.
        custom_objects: ``{name: class or function}`` for custom layers, losses, metrics, optimizers.
        compile: compile with the archive's ``compile_config`` and restore the optimizer's state.
        safe_mode: ``False`` allows Python bytecode in the config (``Lambda`` functions), as Keras's flag.
        max_bytes: the most bytes the archive's weights may expand to.

    Returns:
        The model, with Keras's weights (its predictions equal Keras's), compiled if it was.

    Raises:
        FileNotFoundError: no such file.
        KerasFileError: the archive is not a zip, lacks a member, is hostile or does not fit its config;
            any failure while rebuilding, compiling or filling the model ends as one, naming the member.
        UnsupportedKerasLayerError: (a KerasFileError) the model uses layers or arguments onnxforge lacks.
    """
    if not isinstance(safe_mode, bool):
        raise TypeError(f"load_model(): safe_mode must be a bool. Received: safe_mode={safe_mode!r}")
    forced = safe_mode_override()   # enable_unsafe_deserialization() / SafeModeScope win, as in Keras
    safe_mode = safe_mode if forced is None else forced
    path = Path(os.fspath(filepath))
    require_h5py("Loading a .keras file")
    with _open_zip(path) as zf:
        entry = _json(_read_member(zf, path, _CONFIG, MAX_CONFIG_BYTES), path, _CONFIG)
        if "model.weights.npz" in zf.namelist() and _WEIGHTS not in zf.namelist():
            raise KerasFileError(path, "its weights are in Keras's npz layout (weights_format='npz'); onnxforge "
                                 "reads the default model.weights.h5", key="model.weights.npz")
        weights = _read_member(zf, path, _WEIGHTS, max_bytes)
        assets = read_assets(zf.namelist(), lambda name, limit: _read_member(zf, path, name, limit), path, max_bytes)
    with H5Reader(weights, path) as reader:
        with Stage(path, _WEIGHTS, "the weights file cannot be read"):
            stored = reader.stored_shapes(skip=("optimizer",))
        model = _rebuild(entry, path, custom_objects, safe_mode, stored)
        compile_config = entry.get("compile_config") if compile else None
        if compile_config == {}:   # Keras writes {} for a model never compiled, and skips it on load
            compile_config = None
        if compile_config is not None:
            _compile(model, compile_config, path, custom_objects)
        saveables = keras_saveables(model, include_optimizer=compile_config is not None)
        with Stage(path, _WEIGHTS, "the weights cannot be loaded into the model"):
            problems = reader.load(saveables)
    _raise_problems(problems, path, skip_mismatch=False)
    load_assets(saveables, assets, path)
    return model


def load_keras_weights(model: Any, filepath: str | os.PathLike[str], skip_mismatch: bool = False,
                       max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Load Keras-layout weights into a built ``model`` from a ``.weights.h5`` file or a ``.keras`` archive.

    The optimizer's state is loaded too when the file has it and ``model`` is compiled, as in Keras.
    """
    path = Path(os.fspath(filepath))
    if not getattr(model, "built", False):
        raise ValueError("You are loading weights into a model that has not yet been built. Try building the "
                         "model first by calling it on some data or by using `build()`.")
    require_h5py("Loading Keras weights")
    if path.name.endswith(".keras"):
        with _open_zip(path) as zf:
            source: bytes | Path = _read_member(zf, path, _WEIGHTS, max_bytes)
    else:
        if not path.exists():
            raise FileNotFoundError(f"load_weights(): no such file: {str(path)!r}")
        source = path
    with H5Reader(source, path) as reader, Stage(path, _WEIGHTS if path.name.endswith(".keras") else None,
                                                 "the weights cannot be loaded into the model"):
        saveables = keras_saveables(model)
        if reader.group("optimizer/vars") is None:
            saveables = [s for s in saveables if not s.is_optimizer]
        problems = reader.load(saveables, skip_mismatch)
    _raise_problems(problems, path, skip_mismatch)
