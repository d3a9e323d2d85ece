"""``get_file(extract=True)`` on hostile archives: bombs, members escaping the folder, links, corrupt
members. Each is a ``ValueError`` naming the archive and the member, raised before anything is written,
and a failed extraction leaves no folder that a later call would take as extracted."""
from __future__ import annotations

import io
import os
import tarfile
import zipfile

import pytest

import onnxforge as of
from onnxforge.utils import archives


def _get(archive, cache, **kw):
    return of.keras.utils.get_file(os.path.basename(archive), origin=archive.as_uri(), cache_dir=str(cache),
                                   extract=True, **kw)


def _zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _tar(path, members, mode="w"):
    with tarfile.open(path, mode) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_real_archives_still_extract(tmp_path):
    archive = _tar(tmp_path / "data.tar.gz", [_file("data/a.txt", b"hello")], "w:gz")
    folder = _get(archive, tmp_path / "cache")
    assert open(os.path.join(folder, "data", "a.txt")).read() == "hello"
    archive = _zip(tmp_path / "z.zip", {"b/c.txt": "zip"})
    assert open(os.path.join(_get(archive, tmp_path / "cache"), "b", "c.txt")).read() == "zip"


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_bombs_are_refused_before_they_are_inflated(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(archives, "EXPANSION_ALLOWANCE", 0)    # the bound at a test's scale: 100x the archive
    zeros = b"\0" * (2 << 20)                                  # 2 MiB of zeros deflate to about 2 KB
    archive = (_zip(tmp_path / "bomb.zip", {"zeros.bin": zeros}, zipfile.ZIP_DEFLATED) if kind == "zip" else
               _tar(tmp_path / "bomb.tar.gz", [_file("zeros.bin", zeros)], "w:gz"))
    with pytest.raises(ValueError, match=r"bomb\.(zip|tar\.gz)'.*decompression bomb.*'zeros\.bin'"):
        _get(archive, tmp_path / "cache")
    assert not os.path.exists(tmp_path / "cache" / "datasets" / "bomb")
    assert os.listdir(tmp_path / "cache" / "datasets") == [archive.name]    # no scratch folder left


def test_a_tar_header_declaring_a_terabyte_is_refused_at_the_header(tmp_path):
    info = tarfile.TarInfo("huge.bin")
    info.size = 2**40
    raw = tmp_path / "huge.tar"
    raw.write_bytes(info.tobuf() + b"\0" * 1024)    # the terabyte is declared, never stored
    with pytest.raises(ValueError, match=r"declare over .*'huge\.bin'"):
        _get(raw, tmp_path / "cache")


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "a/../../escape.txt"])
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_members_escaping_the_folder_are_refused(tmp_path, name, kind):
    archive = (_zip(tmp_path / "e.zip", {"ok.txt": "x", name: "y"}) if kind == "zip" else
               _tar(tmp_path / "e.tar", [_file("ok.txt"), _file(name)]))
    with pytest.raises(ValueError, match="leads outside the destination folder"):
        _get(archive, tmp_path / "cache")
    assert not os.path.exists(tmp_path / "cache" / "datasets" / "e")
    assert not os.path.exists(tmp_path / "cache" / "escape.txt") and not os.path.exists(tmp_path / "escape.txt")


@pytest.mark.parametrize("type_", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE])
def test_tar_links_and_devices_are_refused(tmp_path, type_):
    info = tarfile.TarInfo("link")
    info.type, info.linkname = type_, "/etc/passwd"
    archive = _tar(tmp_path / "l.tar", [_file("ok.txt"), (info, None)])
    with pytest.raises(ValueError, match="link, device or FIFO.*'link'"):
        _get(archive, tmp_path / "cache")


def test_a_failed_extraction_leaves_no_folder_a_later_call_would_return(tmp_path):
    archive = _zip(tmp_path / "bad.zip", {"a.txt": "hello", "b.txt": "world"})
    data = bytearray(archive.read_bytes())
    data[data.index(b"world")] = ord("W")           # b.txt's CRC no longer matches: found while writing it
    archive.write_bytes(bytes(data))
    for _ in range(2):                              # the second call once returned the half-written folder
        with pytest.raises(ValueError, match=r"bad\.zip'.*corrupt.*b\.txt"):
            _get(archive, tmp_path / "cache")
    assert os.listdir(tmp_path / "cache" / "datasets") == ["bad.zip"]


def test_an_origin_naming_a_parent_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Can't parse the file name"):
        of.keras.utils.get_file(origin="https://example.invalid/data/..", cache_dir=str(tmp_path))
