"""The write-ahead journal: append-only segment files of CRC-framed JSON lines.

A record is in the journal once one ``write(2)`` has handed it to the kernel: from then on
it survives the process being killed (``kill -9`` cannot take back what the kernel holds).
:meth:`Journal.sync` (``fsync``) makes it survive power loss too; the store's writer thread
calls it before each database commit, so the call path never waits for the disk.

One process owns a journal directory at a time (an ``flock``); its ``id`` file names it in
the database's ``store_journal`` checkpoint table.
"""
from __future__ import annotations

import datetime
import fcntl
import json
import logging
import os
import uuid
import zlib
from decimal import Decimal
from typing import Iterator

from control.store.engine import StoreError

log = logging.getLogger("vosmedia.store")

_PREFIX, _SUFFIX = "journal-", ".log"


def encode(obj) -> bytes:
    """One frame: CRC-32 of the body in hex, a space, the JSON body, a newline (JSON text
    never holds a raw newline, so frames are lines)."""
    body = json.dumps(obj, separators=(",", ":"), default=_json_default).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    raise TypeError(f"cannot journal a {type(value).__name__}: {value!r}")


class Journal:
    def __init__(self, directory: str):
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self._lock = os.open(os.path.join(self.directory, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise StoreError(f"journal {self.directory} is in use by another process") from None
        self.name = self._identity()
        self.fd: int | None = None
        self.segment = 0
        self.size = 0

    def _identity(self) -> str:
        path = os.path.join(self.directory, "id")
        try:
            with open(path) as handle:
                return handle.read().strip()
        except FileNotFoundError:
            name = uuid.uuid4().hex
            temporary = path + ".new"
            with open(temporary, "w") as handle:
                handle.write(name + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            self._sync_directory()
            return name

    def segments(self) -> list[int]:
        found = []
        for entry in os.listdir(self.directory):
            if entry.startswith(_PREFIX) and entry.endswith(_SUFFIX):
                number = entry[len(_PREFIX):-len(_SUFFIX)]
                if number.isdigit():
                    found.append(int(number))
        return sorted(found)

    def path(self, segment: int) -> str:
        return os.path.join(self.directory, f"{_PREFIX}{segment:08d}{_SUFFIX}")

    def start(self, segment: int) -> None:
        """Append from now on to a new, empty segment file."""
        fd = os.open(self.path(segment), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._sync_directory()
        old, self.fd, self.segment, self.size = self.fd, fd, segment, 0
        if old is not None:
            os.fsync(old)
            os.close(old)

    def append(self, frame: bytes) -> int:
        """Write one frame; returns the segment's size after it (the frame's end offset)."""
        view = memoryview(frame)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(frame)
        return self.size

    def sync(self) -> None:
        if self.fd is not None:
            os.fsync(self.fd)

    def read(self, segment: int, offset: int = 0) -> Iterator[tuple[int, dict]]:
        """The records of a segment after ``offset``, each with its end offset. A torn last
        frame (a crash inside a write) ends the segment; a damaged one is skipped."""
        position = offset
        with open(self.path(segment), "rb") as handle:
            handle.seek(offset)
            for line in handle:
                position += len(line)
                if not line.endswith(b"\n"):
                    log.warning("journal %s: torn record at the end of segment %d ignored", self.name, segment)
                    return
                body = line[9:-1]
                try:
                    if int(line[:8], 16) != zlib.crc32(body):
                        raise ValueError("checksum mismatch")
                    record = json.loads(body)
                except ValueError as error:
                    log.error("journal %s: damaged record in segment %d before offset %d skipped (%s)",
                              self.name, segment, position, error)
                    continue
                yield position, record

    def remove(self, segment: int) -> None:
        try:
            os.unlink(self.path(segment))
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if self.fd is not None:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = None
        if self._lock is not None:
            os.close(self._lock)          # releases the flock
            self._lock = None

    def _sync_directory(self) -> None:
        """Make a created or renamed file's name itself durable."""
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
