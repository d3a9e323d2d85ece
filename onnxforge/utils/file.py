"""``get_file``: a file by name from Keras's download cache, or from a local ``file://`` origin.

onnxforge does not download: ``get_file`` finds a file already cached under
``~/.keras/<cache_subdir>/`` (or ``cache_dir``), or copies a ``file://`` origin (or a local path) there,
checks its hash, and extracts an archive when asked. A remote origin that is not cached raises an error
naming where to put the file.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> src = os.path.join(folder, "data.txt")
    >>> _ = open(src, "w").write("hello")
    >>> path = get_file("copy.txt", origin="file://" + src, cache_dir=folder)
    >>> open(path).read()
    'hello'
"""
from __future__ import annotations

__all__ = ["get_file"]

import hashlib
import os
import shutil
import urllib.parse
import urllib.request
from typing import Any

from .archives import extract_archive


def _hash(path: str, algorithm: str) -> str:
    digest = hashlib.sha256() if algorithm == "sha256" else hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_hash(path: str, file_hash: str | None, algorithm: str) -> None:
    if file_hash is None:
        return
    if algorithm == "auto":
        algorithm = "sha256" if len(file_hash) == 64 else "md5"
    if algorithm not in ("sha256", "md5"):
        raise ValueError(f"hash_algorithm must be 'md5', 'sha256' or 'auto'. Received: {algorithm!r}")
    got = _hash(path, algorithm)
    if got != file_hash:
        raise ValueError(f"The file {path} does not match the expected {algorithm} hash: expected {file_hash}, "
                         f"found {got}. It may be corrupted or a different version: delete it and fetch it again.")


def _local_source(origin: str) -> str | None:
    parsed = urllib.parse.urlparse(origin)
    if parsed.scheme == "file":
        return urllib.request.url2pathname(parsed.path)
    if parsed.scheme == "" and os.path.exists(origin):
        return origin
    return None


def _formats(archive_format: Any) -> list[str]:
    if archive_format in ("auto", True):
        return ["tar", "zip"]
    return [archive_format] if isinstance(archive_format, str) else list(archive_format or [])


def get_file(fname: str | None = None, origin: str | None = None, untar: bool = False, md5_hash: str | None = None,
             file_hash: str | None = None, cache_subdir: str = "datasets", hash_algorithm: str = "auto",
             extract: bool = False, archive_format: Any = "auto", cache_dir: str | None = None,
             force_download: bool = False) -> str:
    """The local path of ``fname``: from the cache, or copied there from a local ``origin``.

    Args:
        fname: the file's name in the cache (default: the last part of ``origin``).
        origin: a ``file://`` URL or a local path to copy from; a remote URL only names the file (onnxforge
            does not download), so it must already be cached.
        untar, extract: extract a tar / zip archive next to it and return the extracted folder (checked
            first and written whole or not at all: see ``onnxforge.utils.archives``).
        md5_hash, file_hash, hash_algorithm: the expected hash (``"md5"``, ``"sha256"`` or ``"auto"``).
        cache_subdir: the sub-folder of the cache (an absolute path is used as is).
        archive_format: ``"auto"``, ``"tar"``, ``"zip"`` or a list of them.
        cache_dir: the cache folder (default ``$KERAS_HOME`` or ``~/.keras``).
        force_download: copy again from a local ``origin`` even when cached.
    """
    if origin is None and fname is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    if fname is None:
        fname = os.path.basename(urllib.parse.urlparse(origin).path)
        if fname in ("", ".", ".."):   # "https://host/a/.." would name the cache folder's parent
            raise ValueError(f"Can't parse the file name from the origin provided: '{origin}'. Please specify the "
                             "`fname` argument.")
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    base = cache_dir or os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    folder = cache_subdir if os.path.isabs(cache_subdir) else os.path.join(base, cache_subdir)
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, fname)
    if untar:
        extract = True
        target = target if target.endswith((".tar.gz", ".tgz", ".tar")) else target + ".tar.gz"
    source = _local_source(origin) if origin else None
    if force_download or not os.path.exists(target):
        if source is None:
            raise FileNotFoundError(
                f"get_file: {fname!r} is not in the cache ({folder}) and onnxforge does not download files. "
                f"Put a copy of {origin} at {target} (or pass origin='file:///path/to/{fname}').")
        if not os.path.isfile(source):
            raise FileNotFoundError(f"get_file: the origin {origin!r} is not a file.")
        if os.path.abspath(source) != os.path.abspath(target):
            tmp = target + ".part"
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
    _check_hash(target, file_hash, hash_algorithm)
    if extract:
        into = target
        for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".tar", ".zip"):
            if into.endswith(suffix):
                into = into[: -len(suffix)]
                break
        if into == target:
            into = target + "_extracted"
        if not os.path.isdir(into) or force_download:
            if extract_archive(target, into, _formats(archive_format)) is None:
                raise ValueError(f"get_file: {target} is not a {archive_format} archive; it cannot be extracted.")
        return into
    return target
