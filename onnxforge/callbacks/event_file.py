"""TensorBoard event files without TensorFlow: CRC32C, TFRecord framing and hand-encoded ``Event`` protos.

An event file is a sequence of TFRecords (``uint64 length``, masked CRC32C of the length, the payload,
masked CRC32C of the payload; little-endian) whose payloads are ``tensorflow.Event`` protobufs. Only the
few fields TensorBoard reads for scalars, histograms and the Keras model summary are encoded, by hand, so
that neither tensorflow nor protobuf is needed. Field numbers are those of ``event.proto`` and
``summary.proto`` (tensorflow/core/util, tensorflow/core/framework).
"""
from __future__ import annotations

__all__ = ["crc32c", "masked_crc32c", "tfrecord", "read_tfrecords", "scalar_event", "histogram_event",
           "text_tensor_event", "image_event", "png", "file_version_event", "EventFileWriter"]

import itertools
import os
import socket
import struct
import time
import zlib
from collections.abc import Iterator

import numpy as np


def _crc32c_table() -> list[int]:
    # Castagnoli's polynomial, reflected: CRC32C, which TFRecord uses (not zlib's CRC32).
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """The CRC32C (Castagnoli) of ``data``, one table look-up per byte.

    Example:
        >>> hex(crc32c(b"123456789"))
        '0xe3069283'
    """
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotated and offset, so that a CRC of data that holds CRCs stays strong.

    Example:
        >>> hex(masked_crc32c(b"123456789"))
        '0xc78ab0e5'
    """
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(payload: bytes) -> bytes:
    """One TFRecord: the length, its masked CRC, the payload, its masked CRC.

    Example:
        >>> list(read_tfrecords(tfrecord(b"abc") + tfrecord(b"")))
        [b'abc', b'']
    """
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", masked_crc32c(length)) + payload + struct.pack("<I", masked_crc32c(payload))


def read_tfrecords(data: bytes) -> Iterator[bytes]:
    """The payloads of ``data``'s TFRecords, checking both CRCs of each (``ValueError`` on a mismatch).

    Example:
        >>> list(read_tfrecords(tfrecord(b"x")))
        [b'x']
    """
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"truncated TFRecord header at byte {pos}")
        header = data[pos:pos + 8]
        (length,), (header_crc,) = struct.unpack("<Q", header), struct.unpack("<I", data[pos + 8:pos + 12])
        if header_crc != masked_crc32c(header):
            raise ValueError(f"TFRecord length CRC mismatch at byte {pos}")
        payload = data[pos + 12:pos + 12 + length]
        end = pos + 12 + length
        if len(payload) != length or end + 4 > len(data):
            raise ValueError(f"truncated TFRecord at byte {pos}")
        if struct.unpack("<I", data[end:end + 4])[0] != masked_crc32c(payload):
            raise ValueError(f"TFRecord payload CRC mismatch at byte {pos}")
        yield payload
        pos = end + 4


# ------------------------------------------------------------------------------------- protobuf
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1   # int64 fields: negatives as two's complement, ten bytes, as protobuf does
    out = bytearray()
    while True:
        bits = n & 0x7F
        n >>= 7
        if n:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes_field(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _double_field(field: int, value: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", value)


def _event(step: int, summary_value: bytes | None = None, file_version: str | None = None,
           wall_time: float | None = None) -> bytes:
    """``Event``: wall_time (1, double), step (2, int64), file_version (3) or summary (5) of one value."""
    out = _double_field(1, time.time() if wall_time is None else wall_time) + _key(2, 0) + _varint(int(step))
    if file_version is not None:
        out += _bytes_field(3, file_version.encode())
    if summary_value is not None:
        out += _bytes_field(5, _bytes_field(1, summary_value))   # Summary.value (1), repeated
    return out


def file_version_event(wall_time: float | None = None) -> bytes:
    """The first record of every event file: ``file_version: "brain.Event:2"``."""
    return _event(0, file_version="brain.Event:2", wall_time=wall_time)


def scalar_event(tag: str, value: float, step: int, wall_time: float | None = None) -> bytes:
    """An ``Event`` holding ``Summary.Value{tag (1), simple_value (2, float)}``."""
    value_proto = _bytes_field(1, tag.encode()) + _key(2, 5) + struct.pack("<f", float(value))
    return _event(step, value_proto, wall_time=wall_time)


def histogram_event(tag: str, values: np.ndarray, step: int, buckets: int = 30,
                    wall_time: float | None = None) -> bytes:
    """An ``Event`` holding ``Summary.Value{tag (1), histo (5)}``: a ``HistogramProto`` of ``buckets``
    equal-width buckets between the minimum and the maximum (tf.summary.histogram's default count)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        lo = hi = 0.0
        limits, counts = np.array([0.0]), np.array([0.0])
    else:
        lo, hi = float(v.min()), float(v.max())
        if lo == hi:   # one bucket around the single value, as TensorFlow does
            limits, counts = np.array([hi]), np.array([float(v.size)])
        else:
            counts, edges = np.histogram(v, bins=buckets, range=(lo, hi))
            limits, counts = edges[1:], counts.astype(np.float64)
    histo = (_double_field(1, lo) + _double_field(2, hi) + _double_field(3, float(v.size))
             + _double_field(4, float(v.sum())) + _double_field(5, float(np.dot(v, v)))
             + _bytes_field(6, limits.astype("<f8").tobytes())       # bucket_limit, packed doubles
             + _bytes_field(7, counts.astype("<f8").tobytes()))      # bucket, packed doubles
    return _event(step, _bytes_field(1, tag.encode()) + _bytes_field(5, histo), wall_time=wall_time)


def text_tensor_event(tag: str, text: str, plugin_name: str, content: bytes, step: int,
                      wall_time: float | None = None) -> bytes:
    """An ``Event`` holding a scalar string ``TensorProto`` (8) with ``SummaryMetadata`` (9) naming its
    plugin: how Keras writes the model's JSON for TensorBoard's conceptual graph (``graph_keras_model``)."""
    tensor = _key(1, 0) + _varint(7) + _bytes_field(2, b"") + _bytes_field(8, text.encode())   # DT_STRING, shape []
    plugin = _bytes_field(1, plugin_name.encode()) + _bytes_field(2, content)
    value_proto = _bytes_field(1, tag.encode()) + _bytes_field(8, tensor) + _bytes_field(9, _bytes_field(1, plugin))
    return _event(step, value_proto, wall_time=wall_time)


def png(image: np.ndarray) -> bytes:
    """``image`` (``(height, width, channels)`` uint8, 1-4 channels) as PNG bytes: filter 0 rows, zlib."""
    height, width, channels = image.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]   # gray, gray+alpha, RGB, RGBA

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + image[r].tobytes() for r in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def image_event(tag: str, image: np.ndarray, step: int, wall_time: float | None = None) -> bytes:
    """An ``Event`` holding ``Summary.Value{tag (1), image (4)}``: ``Summary.Image{height (1), width (2),
    colorspace (3), encoded_image_string (4)}`` of one ``(height, width, channels)`` uint8 image as PNG."""
    height, width, channels = image.shape
    encoded = (_key(1, 0) + _varint(height) + _key(2, 0) + _varint(width) + _key(3, 0) + _varint(channels)
               + _bytes_field(4, png(np.ascontiguousarray(image, dtype=np.uint8))))
    return _event(step, _bytes_field(1, tag.encode()) + _bytes_field(4, encoded), wall_time=wall_time)


# ---------------------------------------------------------------------------------------- writer
_FILE_IDS = itertools.count(1)


class EventFileWriter:
    """Appends events to a new ``events.out.tfevents.<time>.<host>.<pid>.<n>.v2`` file in ``log_dir``.

    The name is TensorFlow 2's summary writer's. Each record goes out in one ``write`` and the file is
    flushed after every call, so a killed run leaves whole records plus at most one torn last record, which
    TensorBoard's reader skips (an event file is an append-only log, not a file that can be swapped in whole).

    Example:
        >>> import tempfile
        >>> w = EventFileWriter(tempfile.mkdtemp())
        >>> w.write(scalar_event("epoch_loss", 0.5, step=0)); w.close()
        >>> len(list(read_tfrecords(open(w.path, "rb").read())))
        2
    """

    def __init__(self, log_dir: str | os.PathLike):
        os.makedirs(log_dir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILE_IDS)}.v2"
        self.path = os.path.join(os.fspath(log_dir), name)
        self._file = open(self.path, "ab")
        self.write(file_version_event())

    def write(self, *events: bytes) -> None:
        for event in events:
            self._file.write(tfrecord(event))
        self._file.flush()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
