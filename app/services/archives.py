"""Unpacking an uploaded project archive (.zip, .tar.gz), which is untrusted: every member is
checked before anything is written, and everything is written under one fresh folder.

Refused, each with its own message: absolute paths, ``..`` components, links whose target
leaves the project, device files (character/block devices, FIFOs, sockets), more than
``MAX_FILES`` entries and more than ``MAX_BYTES`` unpacked. Links are created last (so no file
is ever written through a link) and each one is checked again with ``realpath`` once it
exists; on any refusal the folder is removed, so nothing half-unpacked stays behind.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from app.services.errors import InvalidInput

MAX_FILES = 20_000
MAX_BYTES = 200 * 1024 * 1024
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
_CHUNK = 1 << 16


class ArchiveRefused(InvalidInput):
    """The archive is unsafe or too large; nothing of it was kept."""

    field = "project"


@dataclass(frozen=True)
class _Member:
    name: str  # normalised relative posix path
    kind: str  # "file", "dir", "symlink", "hardlink"
    size: int = 0
    link: str = ""  # symlink target as written / hardlink's member name
    mode: int = 0o644
    ref: object = field(default=None, compare=False, repr=False)  # the ZipInfo / TarInfo


def is_archive(name: str | os.PathLike[str]) -> bool:
    return str(name).lower().endswith(ARCHIVE_SUFFIXES)


def _clean_name(raw: str, archive: str) -> str:
    name = raw.replace("\\", "/") if raw.startswith("\\") else raw
    if name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        raise ArchiveRefused(f"{archive}: refused, the entry {raw!r} has an absolute path")
    if "\x00" in name:
        raise ArchiveRefused(f"{archive}: refused, the entry {raw!r} has a NUL byte in its name")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts or ".." in raw.split("\\"):
        raise ArchiveRefused(f"{archive}: refused, the entry {raw!r} contains '..'")
    return "/".join(parts)


def _check_link(member: str, target: str, archive: str) -> None:
    if target.startswith("/") or not target:
        raise ArchiveRefused(
            f"{archive}: refused, the link {member!r} points outside the project ({target!r})"
        )
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(member), target))
    if joined == ".." or joined.startswith("../"):
        raise ArchiveRefused(
            f"{archive}: refused, the link {member!r} points outside the project ({target!r})"
        )


def _zip_members(zf: zipfile.ZipFile, archive: str) -> list[_Member]:
    out: list[_Member] = []
    for info in zf.infolist():
        name = _clean_name(info.filename, archive)
        mode = info.external_attr >> 16
        kind = "dir" if info.is_dir() else "file"
        link = ""
        if mode and stat.S_ISLNK(mode):
            kind = "symlink"
            link = zf.read(info).decode("utf-8", "replace")
        elif mode and (
            stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        ):
            raise ArchiveRefused(
                f"{archive}: refused, the entry {info.filename!r} is a device file"
            )
        out.append(_Member(name, kind, info.file_size, link, (mode & 0o777) or 0o644, info))
        _count(out, archive)
    return out


def _tar_members(tf: tarfile.TarFile, archive: str) -> list[_Member]:
    out: list[_Member] = []
    for info in tf:  # iterate (not getmembers) so a huge listing stops at the limit
        name = _clean_name(info.name, archive)
        if info.isdev():
            raise ArchiveRefused(f"{archive}: refused, the entry {info.name!r} is a device file")
        if info.issym():
            out.append(_Member(name, "symlink", 0, info.linkname))
        elif info.islnk():
            out.append(_Member(name, "hardlink", 0, _clean_name(info.linkname, archive)))
        elif info.isdir():
            out.append(_Member(name, "dir"))
        elif info.isfile():
            out.append(_Member(name, "file", info.size, "", info.mode & 0o777, info))
        else:
            raise ArchiveRefused(f"{archive}: refused, the entry {info.name!r} is not a file")
        _count(out, archive)
    return out


def _count(members: list[_Member], archive: str) -> None:
    if len(members) > MAX_FILES:
        raise ArchiveRefused(
            f"{archive}: refused, it has more than {MAX_FILES:,} files (the limit)"
        )


def _check_all(members: list[_Member], archive: str) -> None:
    total = sum(m.size for m in members if m.kind == "file")
    if total > MAX_BYTES:
        raise ArchiveRefused(
            f"{archive}: refused, it unpacks to {total / 2**20:,.0f} MB, more than the "
            f"{MAX_BYTES // 2**20} MB limit"
        )
    files = {m.name for m in members if m.kind == "file"}
    for m in members:
        if m.kind == "symlink":
            _check_link(m.name, m.link, archive)
        elif m.kind == "hardlink" and m.link not in files:
            raise ArchiveRefused(
                f"{archive}: refused, the hard link {m.name!r} points to {m.link!r}, which is "
                "not a file of the archive"
            )


def _open(data: bytes, archive: str) -> zipfile.ZipFile | tarfile.TarFile:
    try:
        if archive.lower().endswith(".zip"):
            return zipfile.ZipFile(io.BytesIO(data))
        return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveRefused(f"{archive}: not a readable .zip or .tar.gz archive ({exc})") from exc


def _copy(src: io.BufferedIOBase, dest: Path, written: list[int], archive: str) -> None:
    with open(dest, "xb") as out:
        while chunk := src.read(_CHUNK):
            written[0] += len(chunk)
            if written[0] > MAX_BYTES:  # a lying size header
                raise ArchiveRefused(
                    f"{archive}: refused, it unpacks to more than the {MAX_BYTES // 2**20} MB limit"
                )
            out.write(chunk)


def unpack_archive(data: bytes, filename: str, dest: Path) -> Path:
    """Unpack ``data`` (the bytes of ``filename``, a .zip or .tar.gz) into ``dest``, which must
    not exist yet; returns the project root: ``dest`` itself, or its single top-level folder
    when the archive wraps everything in one (``project-1.0/...``). Raises ``ArchiveRefused``
    (a clear message; ``dest`` removed) for an unsafe or oversized archive."""
    archive = Path(filename).name
    if not is_archive(archive):
        raise ArchiveRefused(f"{archive}: only .zip and .tar.gz archives can be unpacked")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=False)
    try:
        with _open(data, archive) as arc:
            if isinstance(arc, zipfile.ZipFile):
                members = _zip_members(arc, archive)
            else:
                members = _tar_members(arc, archive)
            _check_all(members, archive)
            _write(arc, members, dest, archive)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return project_root_of(dest)


def _write(
    arc: zipfile.ZipFile | tarfile.TarFile, members: list[_Member], dest: Path, archive: str
) -> None:
    root = os.path.realpath(dest)
    written = [0]
    by_name: dict[str, Path] = {}
    for m in members:
        path = dest / m.name if m.name else dest
        if m.kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
            continue
        if m.kind != "file":
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            raise ArchiveRefused(f"{archive}: refused, the entry {m.name!r} occurs twice")
        if isinstance(arc, zipfile.ZipFile):
            with arc.open(m.ref) as src:  # type: ignore[arg-type]
                _copy(src, path, written, archive)
        else:
            src = arc.extractfile(m.ref)  # type: ignore[arg-type]
            if src is None:
                raise ArchiveRefused(f"{archive}: the entry {m.name!r} cannot be read")
            with src:
                _copy(src, path, written, archive)
        os.chmod(path, (m.mode & 0o755) | 0o600)
        by_name[m.name] = path
    for m in members:
        path = dest / m.name
        if m.kind == "hardlink":
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(by_name[m.link], path)  # a copy: no shared inode with the archive
        elif m.kind == "symlink":
            path.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(path):
                raise ArchiveRefused(f"{archive}: refused, the entry {m.name!r} occurs twice")
            os.symlink(m.link, path)
            real = os.path.realpath(path)
            if real != root and not real.startswith(root + os.sep):
                raise ArchiveRefused(
                    f"{archive}: refused, the link {m.name!r} points outside the project "
                    f"({m.link!r})"
                )


def project_root_of(folder: Path) -> Path:
    """The folder itself, or its only child folder when the archive wrapped everything in one."""
    entries = [p for p in folder.iterdir() if p.name not in ("__MACOSX",)]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        if not (entries[0] / "__init__.py").exists():
            return entries[0]
    return folder
