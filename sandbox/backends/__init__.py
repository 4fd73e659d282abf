"""The isolation backends and how to pick one."""

from __future__ import annotations

from ..errors import BackendUnavailable, UnknownBackend
from .base import Backend
from .bwrap import BwrapBackend
from .process import ProcessBackend

NAMES = ("bwrap", "docker", "process")


def make_backend(
    name: str, *, allow_process: bool = False, docker_url: str | None = None
) -> Backend:
    """A backend instance by name (not yet checked for availability)."""
    if name == "bwrap":
        return BwrapBackend()
    if name == "docker":
        from .docker import DockerBackend  # imports the docker SDK: only when asked for

        return DockerBackend(docker_url) if docker_url else DockerBackend()
    if name == "process":
        return ProcessBackend(allowed=allow_process)
    raise UnknownBackend(name, list(NAMES))


def get_backend(
    name: str, *, allow_process: bool = False, docker_url: str | None = None
) -> Backend:
    """A backend that can run here, or :class:`BackendUnavailable` saying why not."""
    backend = make_backend(name, allow_process=allow_process, docker_url=docker_url)
    reason = backend.unavailable_reason()
    if reason:
        raise BackendUnavailable(name, reason)
    return backend


__all__ = ["NAMES", "Backend", "BwrapBackend", "ProcessBackend", "get_backend", "make_backend"]
