"""Uploaded project archives are untrusted: every hostile case is refused with its own message,
nothing is written outside the session's folder, and a refused archive leaves nothing behind."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from app.services import archives
from app.services.archives import ArchiveRefused, unpack_archive


def _zip(entries: list[tuple[str, bytes, int | None]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _tar(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for e in entries:
            if isinstance(e, tarfile.TarInfo):
                tf.addfile(e)
            else:
                info = tarfile.TarInfo(e[0])
                info.size = len(e[1])
                tf.addfile(info, io.BytesIO(e[1]))
    return buf.getvalue()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _everything_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """The session's folder lives in box/session; box/outside must stay empty."""
    (tmp_path / "outside").mkdir()
    return tmp_path


def test_a_good_tar_gz_unpacks_with_its_single_top_folder_as_root(box):
    data = _tar(
        [
            ("proj-1.0/pkg/__init__.py", b"from .core import f\n"),
            ("proj-1.0/pkg/core.py", b"def f():\n    return 1\n"),
            ("proj-1.0/tests/test_core.py", b"def test_f(): pass\n"),
            _link("proj-1.0/pkg/alias.py", "core.py"),
        ]
    )
    root = unpack_archive(data, "proj.tar.gz", box / "session" / "project")
    assert root == box / "session" / "project" / "proj-1.0"
    assert (root / "pkg" / "core.py").read_text() == "def f():\n    return 1\n"
    assert os.readlink(root / "pkg" / "alias.py") == "core.py"  # an inside link is kept


def test_a_good_zip_unpacks(box):
    data = _zip([("pkg/__init__.py", b"", None), ("pkg/m.py", b"X = 1\n", 0o100644)])
    root = unpack_archive(data, "p.zip", box / "session")
    assert root == box / "session"
    assert (root / "pkg" / "m.py").read_text() == "X = 1\n"


HOSTILE_TAR = {
    "absolute path": ([("/etc/evil.py", b"x")], "absolute path"),
    "dot-dot": ([("pkg/../../outside/evil.py", b"x")], "contains '..'"),
    "symlink outside (absolute)": ([_link("pkg/l", "/etc/passwd")], "points outside"),
    "symlink outside (relative)": ([_link("pkg/l", "../../outside")], "points outside"),
    "hard link outside": ([_link("pkg/h", "/etc/passwd", tarfile.LNKTYPE)], "absolute path"),
    "hard link to nothing": ([_link("pkg/h", "pkg/nope", tarfile.LNKTYPE)], "not a file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TAR))
def test_hostile_tar_is_refused_and_nothing_stays(box, case):
    entries, message = HOSTILE_TAR[case]
    dest = box / "session" / "project"
    with pytest.raises(ArchiveRefused, match=message):
        unpack_archive(_tar([("ok.py", b"1\n"), *entries]), "evil.tar.gz", dest)
    assert not dest.exists()
    assert _everything_under(box / "outside") == set()
    assert not Path("/etc/evil.py").exists()


def test_a_link_chain_that_escapes_through_another_link_is_refused(box):
    # "x" -> "." is inside, and "x/../q" looks inside lexically but resolves outside.
    dest = box / "session" / "project"
    data = _tar([_link("x", "."), _link("sub/esc", "../x/../../outside")])
    with pytest.raises(ArchiveRefused, match="points outside"):
        unpack_archive(data, "chain.tar.gz", dest)
    assert not dest.exists()


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_files_in_a_tar_are_refused(box, kind):
    info = tarfile.TarInfo("dev/null")
    info.type = kind
    dest = box / "session"
    with pytest.raises(ArchiveRefused, match="device file"):
        unpack_archive(_tar([info]), "dev.tar.gz", dest)
    assert not dest.exists()


@pytest.mark.parametrize(
    ("name", "mode", "message"),
    [
        ("/abs.py", None, "absolute path"),
        ("C:/win.py", None, "absolute path"),
        ("a/../../outside/x.py", None, "contains '..'"),
        ("dev", stat.S_IFCHR | 0o644, "device file"),
        ("fifo", stat.S_IFIFO | 0o644, "device file"),
    ],
)
def test_hostile_zip_entries_are_refused(box, name, mode, message):
    dest = box / "session"
    with pytest.raises(ArchiveRefused, match=message):
        unpack_archive(_zip([("ok.py", b"1", None), (name, b"x", mode)]), "e.zip", dest)
    assert not dest.exists()
    assert _everything_under(box / "outside") == set()


def test_a_zip_symlink_pointing_outside_is_refused(box):
    data = _zip([("pkg/l", b"../../outside/secret", stat.S_IFLNK | 0o777)])
    with pytest.raises(ArchiveRefused, match="points outside"):
        unpack_archive(data, "l.zip", box / "session")
    assert not (box / "session").exists()


def test_more_than_the_file_limit_is_refused(box, monkeypatch):
    monkeypatch.setattr(archives, "MAX_FILES", 50)
    data = _zip([(f"f{i}.py", b"", None) for i in range(51)])
    with pytest.raises(ArchiveRefused, match="more than 50 files"):
        unpack_archive(data, "many.zip", box / "session")
    ok = _zip([(f"f{i}.py", b"", None) for i in range(50)])
    assert len(list(unpack_archive(ok, "ok.zip", box / "ok").iterdir())) == 50


def test_the_real_file_limit_is_20000(box):
    assert archives.MAX_FILES == 20_000 and archives.MAX_BYTES == 200 * 1024 * 1024
    data = _zip([(f"d/f{i}", b"", None) for i in range(20_001)])
    with pytest.raises(ArchiveRefused, match="more than 20,000 files"):
        unpack_archive(data, "many.zip", box / "session")
    assert not (box / "session").exists()


def test_more_than_the_size_limit_unpacked_is_refused_before_writing(box):
    # 201 MB of zeros compress to a small upload: a zip bomb in miniature.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bin", b"\0" * (201 * 1024 * 1024))
    assert len(buf.getvalue()) < 1024 * 1024
    with pytest.raises(ArchiveRefused, match="200 MB limit"):
        unpack_archive(buf.getvalue(), "bomb.zip", box / "session")
    assert not (box / "session").exists()


def test_a_size_header_that_lies_is_caught_while_writing(box, monkeypatch):
    monkeypatch.setattr(archives, "MAX_BYTES", 1000)
    info = tarfile.TarInfo("a.bin")
    info.size = 2000
    data = _tar([(info.name, b"x" * 2000)])
    with pytest.raises(ArchiveRefused, match="limit"):
        unpack_archive(data, "big.tar.gz", box / "session")
    assert not (box / "session").exists()


def test_not_an_archive_gets_a_clear_message(box):
    with pytest.raises(ArchiveRefused, match="only .zip and .tar.gz"):
        unpack_archive(b"hello", "notes.txt", box / "session")
    with pytest.raises(ArchiveRefused, match="not a readable"):
        unpack_archive(b"hello", "broken.zip", box / "s2")
    assert not (box / "s2").exists()


def test_duplicate_entries_are_refused(box):
    data = _tar([("a.py", b"1"), ("a.py", b"2")])
    with pytest.raises(ArchiveRefused, match="occurs twice"):
        unpack_archive(data, "dup.tar.gz", box / "session")
