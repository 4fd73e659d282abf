"""Builds the Docker sandbox image offline: debootstrap rootfs + wheels, ``FROM scratch``.

Everything slow is cached under ``cache_dir`` (default ``/var/cache/perfloop-sandbox``): the
debootstrap root filesystem as a tarball and the wheels. A rebuild with a warm cache takes
seconds; an image whose inputs did not change is not rebuilt at all (its label holds a hash of
the Dockerfile, the rootfs and the wheel names).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import BackendUnavailable

IMAGE = "perfloop-sandbox:py311"
CACHE_DIR = Path("/var/cache/perfloop-sandbox")
SUITE = "bookworm"  # python3 is 3.11 there, the version the wheels are for
MIRROR = "http://deb.debian.org/debian"
HERE = Path(__file__).resolve().parent
#: Packages the image needs, pinned to what this host runs so both backends behave alike.
PACKAGES = ("numpy", "line_profiler", "pytest", "coverage")
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)


def rootfs_tarball(cache_dir: Path, log: Callable[[str], None]) -> Path:
    tarball = cache_dir / f"rootfs-{SUITE}.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise BackendUnavailable(
            "docker",
            "debootstrap is needed to build the sandbox image "
            "(Debian: apt-get install debootstrap)",
        )
    root = cache_dir / f"rootfs-{SUITE}.tmp"
    if not (root / "usr/bin/python3").exists():
        shutil.rmtree(root, ignore_errors=True)
        log(f"debootstrap {SUITE} into {root} (a few minutes, once)")
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3", SUITE, str(root), MIRROR],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    partial = tarball.with_suffix(".partial")
    subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
    partial.rename(tarball)
    shutil.rmtree(root, ignore_errors=True)
    return tarball


def wheels(cache_dir: Path, log: Callable[[str], None]) -> Path:
    target = cache_dir / "wheels"
    pins = []
    for name in PACKAGES:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(name)
    stamp = target / ".pins"
    if stamp.exists() and stamp.read_text() == "\n".join(pins):
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    log(f"downloading wheels for the image: {', '.join(pins)}")
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            *platforms,
            "-d",
            str(target),
            *pins,
        ],
        check=True,
    )
    stamp.write_text("\n".join(pins))
    return target


def build_image(
    *,
    cache_dir: Path = CACHE_DIR,
    force: bool = False,
    client=None,  # noqa: ANN001
    log: Callable[[str], None] = lambda message: None,
) -> str:
    """Build (or find) the sandbox image; returns its tag."""
    import docker

    if client is None:
        # A client of our own is closed here: a dropped one leaks its socket.
        own = docker.DockerClient(base_url="unix:///var/run/docker.sock")
        try:
            return build_image(cache_dir=cache_dir, force=force, client=own, log=log)
        finally:
            own.close()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tarball = rootfs_tarball(cache_dir, log)
    wheel_dir = wheels(cache_dir, log)
    digest = hashlib.sha256()
    for path in (HERE / "Dockerfile", HERE / "install_wheels.py"):
        digest.update(path.read_bytes())
    digest.update(f"{tarball.stat().st_size}:{tarball.stat().st_mtime_ns}".encode())
    digest.update("\n".join(sorted(os.listdir(wheel_dir))).encode())
    inputs = digest.hexdigest()[:16]
    if not force:
        try:
            if client.images.get(IMAGE).labels.get("perfloop.inputs") == inputs:
                return IMAGE
        except docker.errors.ImageNotFound:
            pass
    with tempfile.TemporaryDirectory(prefix="perfloop-image-", dir=cache_dir) as ctx:
        context = Path(ctx)
        os.link(tarball, context / "rootfs.tar")
        shutil.copytree(wheel_dir, context / "wheels")
        for name in ("Dockerfile", "install_wheels.py"):
            shutil.copy(HERE / name, context / name)
        log(f"building {IMAGE} (no network)")
        client.images.build(
            path=str(context),
            tag=IMAGE,
            network_mode="none",
            rm=True,
            forcerm=True,
            labels={"perfloop.inputs": inputs},
        )
    return IMAGE
