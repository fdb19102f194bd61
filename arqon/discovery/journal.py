"""A discovery run's journal: an append-only file of checksummed frames, one per evaluation, promotion and the end.

A frame is ``length (u32 LE) | crc32 of the body (u32 LE) | body`` (msgpack). The first frame binds the journal to
a spec's digest. Reading stops at the first frame that is torn or fails its checksum: after a kill -9 the intact
prefix is what the run had committed, and ``Journal.open(resume=True)`` cuts the file back to it before appending.
Frames are flushed to the OS as they are written (a killed process loses nothing written) and fsync'd at the end of
each batch (a lost machine loses at most the batch in flight).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import msgspec

from arqon.config import ConfigError
from arqon.outputs import private_fd

MAGIC = b"arqon-discovery-journal-1\n"
_FRAME = struct.Struct("<II")
MAX_FRAME = 1 << 26


class JournalRefused(ConfigError):
    """A journal belongs to another spec, is not a journal, or exists where a fresh run was asked for."""


def read_frames(path: Path) -> tuple[list[dict], int]:
    """The intact frames of the journal at ``path`` and the byte length of that intact prefix."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):  # a header torn by a kill: nothing was committed
            return [], 0
        raise JournalRefused(f"{path}: not an arqon discovery journal")
    frames, at = [], len(MAGIC)
    while at + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, at)
        body = data[at + _FRAME.size: at + _FRAME.size + length]
        if length > MAX_FRAME or len(body) < length or zlib.crc32(body) != crc:
            break
        try:
            frames.append(msgspec.msgpack.decode(body))
        except msgspec.DecodeError:
            break
        at += _FRAME.size + length
    return frames, at


class Journal:
    """The journal of one spec. ``frames``: what it held when opened (intact prefix), then what was appended."""

    def __init__(self, path: Path, frames: list[dict], fd: int):
        self.path, self.frames, self._fd = path, frames, fd

    @classmethod
    def open(cls, path, spec_digest: str, resume: bool) -> Journal:
        """Open (or create) the journal at ``path`` for the spec with ``spec_digest``. An existing journal of this
        spec is continued only with ``resume`` or when it is finished (nothing will be appended); one of another
        spec is refused."""
        path = Path(path)
        frames, good = read_frames(path) if path.exists() else ([], 0)
        if frames and frames[0].get("spec") != spec_digest:
            raise JournalRefused(f"{path}: a journal of another spec (its digest {frames[0].get('spec', '?')[:12]}, "
                                 f"this spec {spec_digest[:12]}): use another --out folder")
        finished = bool(frames) and frames[-1].get("t") == "done"
        if frames and not (resume or finished):
            raise JournalRefused(f"{path}: an unfinished run with {len(frames) - 1} frames: pass --resume to "
                                 "continue it, or remove the folder to start over")
        fd = private_fd(path, os.O_RDWR | os.O_CREAT)
        if good == 0:
            os.ftruncate(fd, 0)
            os.write(fd, MAGIC)
            frames = []
        else:
            os.ftruncate(fd, good)  # a torn last frame goes
        os.lseek(fd, 0, os.SEEK_END)
        journal = cls(path, frames, fd)
        if not frames:
            journal.append({"t": "begin", "spec": spec_digest})
        return journal

    def append(self, frame: dict) -> None:
        """Write one frame at the end (one ``write`` call)."""
        body = msgspec.msgpack.encode(frame)
        os.write(self._fd, _FRAME.pack(len(body), zlib.crc32(body)) + body)
        self.frames.append(frame)

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
