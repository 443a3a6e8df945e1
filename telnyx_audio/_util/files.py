"""Opening capture files for reading, plain or gzip-compressed (known by their magic bytes).

Every source reads through :func:`open_capture`, so a ``.gz`` of anything we read (JSONL,
pcap, pcapng) works, and a gzip file cut off while it was written gives every byte it holds.
"""

from __future__ import annotations

import os
import zlib
from typing import BinaryIO

__all__ = ["open_capture", "Gunzip", "GZIP_MAGIC"]

GZIP_MAGIC = b"\x1f\x8b"


def open_capture(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a capture for binary reading; a gzip file (known by its magic bytes, whatever
    its name) is decompressed as it is read."""
    f = open(path, "rb")
    if f.read(2) == GZIP_MAGIC:
        return Gunzip(f)  # type: ignore[return-value]
    f.seek(0)
    return f


class Gunzip:
    """A gzip file read as a stream, that keeps what a cut-off file holds.

    :class:`gzip.GzipFile` raises ``EOFError`` at a stream cut off while it was written and
    loses the bytes decompressed in that read; captures are written by processes that get
    killed, so this reader (zlib, one member after another) returns every byte there is and
    sets ``truncated``. ``seek`` goes forward by decompressing, back by starting over.
    """

    _CHUNK = 1 << 16

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.truncated = False
        self._rewind()

    def _rewind(self) -> None:
        self.raw.seek(0)
        self._z = zlib.decompressobj(wbits=31)
        self._pending = b""  # compressed bytes not yet given to the decompressor
        self._pos = 0
        self._done = False

    def readinto(self, b) -> int:
        view = memoryview(b).cast("B")
        while not self._done:
            data = self._z.decompress(self._pending, len(view))
            self._pending = self._z.unconsumed_tail
            if self._z.eof:  # a member ended: another may follow
                rest = self._z.unused_data + self._pending
                self._z, self._pending = zlib.decompressobj(wbits=31), rest
                if not rest:
                    more = self.raw.read(self._CHUNK)
                    if not more:
                        self._done = True
                    self._pending = more
            elif not data and not self._pending:
                more = self.raw.read(self._CHUNK)
                if not more:
                    self._done = self.truncated = True  # no end-of-stream marker
                self._pending = more
            if data:
                view[: len(data)] = data
                self._pos += len(data)
                return len(data)
        return 0

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        buf = bytearray(self._CHUNK)
        while n < 0 or len(out) < n:
            got = self.readinto(memoryview(buf)[: self._CHUNK if n < 0 else min(self._CHUNK, n - len(out))])
            if not got:
                break
            out += buf[:got]
        return bytes(out)

    def __iter__(self):
        tail = b""
        while True:
            chunk = self.read(self._CHUNK)
            if not chunk:
                break
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            yield from (line + b"\n" for line in lines)
        if tail:
            yield tail

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0:
            raise ValueError("only absolute seeks")
        if offset < self._pos:
            self._rewind()
        skip = bytearray(self._CHUNK)
        while self._pos < offset and self.readinto(memoryview(skip)[: min(self._CHUNK, offset - self._pos)]):
            pass
        return self._pos

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> "Gunzip":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
