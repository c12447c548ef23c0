"""Byte streams of snapshot data: hashed and zstd-compressed while they flow, in bounded memory."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

import zstandard

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

HASH_ALGORITHM = "sha256"
COMPRESSION = "zstd"
CHUNK = 1 << 20
# zstd compresses on worker threads, overlapping the COPY read. Its default job is 4x the window
# (8 MiB at level 3, 32 MiB at 19) and every worker holds jobs in and out, so with one worker per
# CPU peak memory grew with the machine (measured at level 3: +56 MiB with 2 workers, +134 MiB
# with 8). Two workers with 1 MiB jobs: +10 MiB, output as small, no slower (bench/snapshot.py).
ZSTD_THREADS = 2
ZSTD_JOB_SIZE = 1 << 20


class _RawSink(io.RawIOBase):
    """Receives large chunks (behind a BufferedWriter): hashes the raw bytes, compresses them
    into ``target`` and calls ``on_progress(raw_bytes, stored_bytes)``."""

    def __init__(
        self,
        target: BinaryIO,
        level: int,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        super().__init__()
        self._hash = hashlib.new(HASH_ALGORITHM)
        self._target = target
        self._start = target.tell()
        params = zstandard.ZstdCompressionParameters.from_level(
            level, threads=ZSTD_THREADS, job_size=ZSTD_JOB_SIZE, write_checksum=1
        )
        cctx = zstandard.ZstdCompressor(compression_params=params)
        self._zw = cctx.stream_writer(target, closefd=False)
        self._on_progress = on_progress
        self.raw_bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, b: ReadableBuffer) -> int:
        view = memoryview(b)
        n = view.nbytes
        self._hash.update(view)
        self._zw.write(view)
        self.raw_bytes += n
        if self._on_progress is not None:
            self._on_progress(self.raw_bytes, self.stored_bytes)
        return n

    @property
    def stored_bytes(self) -> int:
        return self._target.tell() - self._start

    def finish(self) -> tuple[str, int, int]:
        self._zw.flush(zstandard.FLUSH_FRAME)
        seal = getattr(self._target, "seal", None)  # an encrypting target writes its last chunk
        if seal is not None:
            seal()
        self._target.flush()
        return f"{HASH_ALGORITHM}:{self._hash.hexdigest()}", self.raw_bytes, self.stored_bytes


class SnapshotSink:
    """A write-only binary stream for one table's data; :meth:`finish` returns
    ``(checksum, raw_bytes, stored_bytes)``."""

    def __init__(
        self,
        target: BinaryIO,
        *,
        level: int = 3,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self._raw = _RawSink(target, level, on_progress)
        self.stream = io.BufferedWriter(self._raw, buffer_size=CHUNK)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self.stream.write(data)

    def finish(self) -> tuple[str, int, int]:
        self.stream.flush()
        return self._raw.finish()


class VerifyingReader(io.RawIOBase):
    """Decompresses a snapshot file and hashes what it yields; :meth:`checksum` after EOF."""

    def __init__(self, source: BinaryIO) -> None:
        super().__init__()
        self._reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)
        self._hash = hashlib.new(HASH_ALGORITHM)
        self.raw_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._reader.read(len(b))
        n = len(data)
        b[:n] = data
        self._hash.update(data)
        self.raw_bytes += n
        return n

    def checksum(self) -> str:
        return f"{HASH_ALGORITHM}:{self._hash.hexdigest()}"

    def close(self) -> None:
        self._reader.close()
        super().close()


def chunks(reader: io.RawIOBase, size: int = CHUNK) -> Iterator[bytes]:
    buf = bytearray(size)
    view = memoryview(buf)
    while True:
        n = reader.readinto(view)
        if not n:
            return
        yield bytes(view[:n])


def verify_stream(source: BinaryIO) -> tuple[str, int]:
    """Read a whole snapshot file: ``(checksum of the raw bytes, raw byte count)``."""
    reader = VerifyingReader(source)
    try:
        for _ in chunks(reader):
            pass
        return reader.checksum(), reader.raw_bytes
    finally:
        reader.close()
