"""Extracting a tar or zip archive that may come from anyone (``get_file(extract=True)``).

Every member is checked before anything is written: its name must stay inside the destination (no absolute
path, no ``..``), a tar member must be a regular file or a folder (links, devices and FIFOs are refused),
and all members together may declare at most ``MAX_EXPANSION`` times the archive's bytes plus
``EXPANSION_ALLOWANCE`` (a zip or gzip bomb is refused before it is inflated). A tar's members are listed
one at a time, so a compressed tar that lists billions of bytes is refused at the first header over the
bound, not after decompressing all of it. The archive is extracted into a temporary sibling folder that is
renamed into place only once every member was written whole, so a failure leaves no half-extracted folder
for the next call to take as done.

Example:
    >>> import os, tempfile, zipfile
    >>> folder = tempfile.mkdtemp()
    >>> archive = os.path.join(folder, "a.zip")
    >>> with zipfile.ZipFile(archive, "w") as z:
    ...     z.writestr("data/x.txt", "hello")
    >>> out = extract_archive(archive, os.path.join(folder, "a"), ["zip"])
    >>> open(os.path.join(out, "data", "x.txt")).read()
    'hello'
"""
from __future__ import annotations

__all__ = ["extract_archive", "MAX_EXPANSION", "EXPANSION_ALLOWANCE"]

import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence

#: The most bytes an archive's members may declare together, per byte of the archive (plus the allowance).
MAX_EXPANSION = 100
#: Bytes any archive may declare beyond ``MAX_EXPANSION`` times its size (small archives of text).
EXPANSION_ALLOWANCE = 64 * 2**20
#: A tar header takes 512 bytes: counted per member, so millions of empty members are a size too.
_HEADER_BYTES = 512


def _refuse(archive: str, reason: str, member: str | None = None) -> ValueError:
    where = f" (member {member!r})" if member is not None else ""
    return ValueError(f"get_file: cannot extract {archive!r}: {reason}{where}. Nothing was extracted.")


def _check_name(archive: str, name: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if not name or name.startswith(("/", "\\")) or os.path.isabs(name) or ".." in parts or ":" in parts[0]:
        raise _refuse(archive, "a member's name leads outside the destination folder", name)


class _Budget:
    """The bytes members may still declare; raises once they declare more."""

    def __init__(self, archive: str) -> None:
        self.archive = archive
        self.size = os.path.getsize(archive)
        self.limit = MAX_EXPANSION * self.size + EXPANSION_ALLOWANCE
        self.used = 0

    def take(self, nbytes: int, member: str) -> None:
        if nbytes < 0:
            raise _refuse(self.archive, f"a member declares a negative size ({nbytes})", member)
        self.used += nbytes
        if self.used > self.limit:
            raise _refuse(self.archive, f"its members declare over {self.limit:,} bytes ({MAX_EXPANSION}x the "
                          f"archive's {self.size:,} bytes plus {EXPANSION_ALLOWANCE:,}): a decompression bomb, or "
                          "an archive to extract yourself with tarfile / zipfile if you trust it", member)


def _tar_members(archive: str, tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    budget = _Budget(archive)
    while True:
        info = tar.next()    # one header at a time: the bound is checked before the next member is inflated
        if info is None:
            return
        _check_name(archive, info.name)
        if not (info.isreg() or info.isdir()):
            raise _refuse(archive, "a member is a link, device or FIFO; only files and folders are extracted",
                          info.name)
        budget.take(info.size + _HEADER_BYTES, info.name)
        yield info


def _extract_tar(archive: str, into: str) -> None:
    with tarfile.open(archive) as tar:
        members = list(_tar_members(archive, tar))
        tar.extractall(into, members=members, filter="data")


def _extract_zip(archive: str, into: str) -> None:
    with zipfile.ZipFile(archive) as z:
        budget = _Budget(archive)
        infos = z.infolist()
        for info in infos:
            _check_name(archive, info.filename)
            # zipfile inflates a member only up to its declared size and checks its CRC, so the sizes
            # declared here bound what is written.
            budget.take(info.file_size + _HEADER_BYTES, info.filename)
        z.extractall(into, members=infos)


def extract_archive(archive: str, into: str, formats: Sequence[str]) -> str | None:
    """Extract ``archive`` (the first of ``formats``, ``"tar"`` / ``"zip"``, it is) to the folder ``into``.

    Returns ``into``, or ``None`` when the file is none of ``formats``. Raises ``ValueError`` naming the
    archive and the member for a member escaping ``into``, a link or device member, members declaring more
    than the bound, or a corrupt archive; ``into`` is then left as it was (absent, or the previous contents).
    """
    for kind in formats:
        if kind == "tar" and tarfile.is_tarfile(archive):
            extract = _extract_tar
        elif kind == "zip" and zipfile.is_zipfile(archive):
            extract = _extract_zip
        else:
            continue
        parent = os.path.dirname(os.path.abspath(into))
        os.makedirs(parent, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=f".{os.path.basename(into)}.", suffix=".partial", dir=parent)
        try:
            extract(archive, scratch)
            if os.path.isdir(into):     # force_download: the new extraction replaces the old one
                shutil.rmtree(into)
            os.replace(scratch, into)
        except ValueError:
            raise
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as e:
            # RuntimeError: zipfile's refusal of an encrypted member
            raise _refuse(archive, f"it is corrupt or unreadable ({type(e).__name__}: {e})") from None
        finally:
            if os.path.isdir(scratch):
                shutil.rmtree(scratch, ignore_errors=True)
        return into
    return None
