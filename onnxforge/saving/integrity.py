"""A SHA-256 digest over everything a checkpoint holds, so a damaged file fails loudly instead of loading.

``save`` / ``save_weights`` store the digest under ``metadata_props["onnxforge.digest"]`` as
``"sha256:<64 hex digits>"``; ``load_model``, ``load_weights`` and ``onnxforge check`` recompute and
compare it. It covers the whole model: every metadata entry (architecture, compile config, saved state)
but the digest itself, the graph, and every tensor's name, type, dims and bytes. It is computed on the
tensors' values, not on how they are stored, so a checkpoint written with ``external_data=True`` has the
same digest as the one-file form of the same model.

What it is for: a bit flipped on disk or in transfer, a truncated copy, a data file from another save.
What it is not: a signature. Anyone who can edit the file can recompute the digest (:func:`seal`); the
loaders therefore still validate every value they read, digest or not.

Example:
    >>> import onnx
    >>> m = onnx.ModelProto(ir_version=10)
    >>> seal(m)
    >>> verify(m, "demo.onnx", required=True)
    True
    >>> m.metadata_props[0].value = "sha256:" + "0" * 64
    >>> try:
    ...     verify(m, "demo.onnx", required=True)
    ... except OnnxLoadError as e:
    ...     print(e.key)
    onnxforge.digest
"""
from __future__ import annotations

__all__ = ["compute_digest", "seal", "verify", "digest_status"]

import hashlib
import os
import re
from typing import Any

import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ..graph import contract
from ..graph.untrusted import OnnxLoadError

_PREFIX = "sha256:"
_VALUE = re.compile(r"sha256:[0-9a-f]{64}\Z")
_DOMAIN = contract.DIGEST_DOMAIN


def _repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)   # protobuf >= 5; older releases only have `label`
    return bool(flag) if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED


def _copy_without(message: Message, skip: str) -> Message:
    """A copy of ``message`` without field ``skip`` (the big one), without copying that field first."""
    out = type(message)()
    for field, value in message.ListFields():
        if field.name == skip:
            continue
        target: Any = getattr(out, field.name)
        if _repeated(field):
            target.extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(value)
        else:
            setattr(out, field.name, value)
    return out


def compute_digest(model: onnx.ModelProto) -> str:
    """``"sha256:<hex>"`` of ``model`` as a checkpoint: everything but its ``onnxforge.digest`` entry.

    Tensors are hashed one at a time (the model is never serialized whole: checkpoints over protobuf's
    2 GB limit have a digest too), each by its description and its ``raw_data``.
    """
    h = hashlib.sha256(_DOMAIN)

    def put(data: bytes) -> None:
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)

    top = _copy_without(model, "graph")
    kept = [(e.key, e.value) for e in top.metadata_props if e.key != contract.DIGEST_KEY]
    del top.metadata_props[:]
    for key, value in kept:
        top.metadata_props.add(key=key, value=value)
    put(top.SerializeToString(deterministic=True))
    put(_copy_without(model.graph, "initializer").SerializeToString(deterministic=True))
    for t in model.graph.initializer:
        put(_copy_without(t, "raw_data").SerializeToString(deterministic=True))
        if t.HasField("raw_data"):
            h.update(b"\x01")
            put(t.raw_data)
        else:
            h.update(b"\x00")
    return _PREFIX + h.hexdigest()


def seal(model: onnx.ModelProto) -> None:
    """Store ``model``'s digest in it (replacing any earlier one), as the last ``metadata_props`` entry."""
    value = compute_digest(model)
    kept = [(e.key, e.value) for e in model.metadata_props if e.key != contract.DIGEST_KEY]
    del model.metadata_props[:]
    for key, v in kept:
        model.metadata_props.add(key=key, value=v)
    model.metadata_props.add(key=contract.DIGEST_KEY, value=value)


def _stored(model: onnx.ModelProto, source: str | os.PathLike[str]) -> str | None:
    values = [e.value for e in model.metadata_props if e.key == contract.DIGEST_KEY]
    if len(values) > 1:
        raise OnnxLoadError(source, f"metadata_props[{contract.DIGEST_KEY!r}] appears {len(values)} times",
                            key=contract.DIGEST_KEY)
    if not values:
        return None
    if not _VALUE.match(values[0]):
        raise OnnxLoadError(source, f"metadata_props[{contract.DIGEST_KEY!r}] is {values[0][:80]!r}, not "
                            "'sha256:' and 64 lowercase hex digits: the file is damaged", key=contract.DIGEST_KEY)
    return values[0]


def verify(model: onnx.ModelProto, source: str | os.PathLike[str], *, required: bool) -> bool:
    """Check ``model`` against its stored digest.

    Args:
        model: the loaded model (external data loaded: the digest covers the tensors' bytes).
        source: the file, for messages.
        required: whether a missing digest is an error (files of a format that always carries one).

    Returns:
        True if a digest was present and matches; False if there is none and none is required.

    Raises:
        OnnxLoadError: (key ``onnxforge.digest``) on a mismatch, a malformed or duplicated entry, or a
            missing one when ``required``.
    """
    stored = _stored(model, source)
    if stored is None:
        if required:
            raise OnnxLoadError(source, f"metadata_props[{contract.DIGEST_KEY!r}] is missing, but this file's format "
                                "always carries one: the file is damaged or was edited", key=contract.DIGEST_KEY)
        return False
    actual = compute_digest(model)
    if actual != stored:
        raise OnnxLoadError(source, f"the file does not match its SHA-256 digest "
                            f"(metadata_props[{contract.DIGEST_KEY!r}]): "
                            f"stored {stored[len(_PREFIX):len(_PREFIX) + 16]}..., computed "
                            f"{actual[len(_PREFIX):len(_PREFIX) + 16]}...; the file is damaged (a flipped bit, a "
                            "truncated copy, an external data file from another save) or was edited",
                            key=contract.DIGEST_KEY)
    return True


def digest_status(model: onnx.ModelProto, source: str | os.PathLike[str], *, required: bool) -> str:
    """``"ok"``, ``"absent"`` or the error message: what ``onnxforge check`` reports."""
    try:
        return "ok" if verify(model, source, required=required) else "absent"
    except OnnxLoadError as e:
        return e.reason
