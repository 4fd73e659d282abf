"""Framing of the messages between the supervisor and its workers (length-prefixed JSON)."""

from __future__ import annotations

import json
import os
import struct

HEADER = struct.Struct("!Q")


class FrameTooLarge(Exception):
    pass


def dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=True).encode()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def send(fd: int, obj: object) -> None:
    data = dumps(obj)
    write_all(fd, HEADER.pack(len(data)) + data)


def recv_blocking(fd: int, max_bytes: int = 1 << 30) -> object | None:
    """Read one frame from a blocking fd; ``None`` on EOF."""
    header = _read_exact(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > max_bytes:
        raise FrameTooLarge(size)
    body = _read_exact(fd, size)
    if body is None:
        return None
    return json.loads(body)


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class FrameBuffer:
    """Incremental decoder for non-blocking reads."""

    def __init__(self, max_bytes: int) -> None:
        self.buffer = bytearray()
        self.max_bytes = max_bytes

    def feed(self, data: bytes) -> list[object]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buffer)
            if size > self.max_bytes:
                raise FrameTooLarge(size)
            if len(self.buffer) < HEADER.size + size:
                break
            body = bytes(self.buffer[HEADER.size : HEADER.size + size])
            del self.buffer[: HEADER.size + size]
            frames.append(json.loads(body))
        return frames
