"""Opening capture files for reading, plain or gzip-compressed (known by their magic bytes).

Every source reads through :func:`open_capture`, so a ``.gz`` of anything we read (JSONL,
pcap, pcapng) works, and a gzip file cut off while it was written gives every byte it holds.
"""

from __future__ import annotations

import os
import stat
import zlib
from typing import BinaryIO

__all__ = ["open_capture", "check_regular_file", "Gunzip", "GZIP_MAGIC"]

GZIP_MAGIC = b"\x1f\x8b"


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def check_regular_file(path: str | os.PathLike[str], *, allow_fifo: bool = False) -> None:
    """Raise unless ``path`` (links followed) is a regular file (or, with ``allow_fifo``, a FIFO).

    A capture is read twice and to its end: a FIFO would block the reader forever (opening
    it waits for a writer), a device such as ``/dev/zero`` never ends. What users name
    (``decode``, ``batch``: :func:`telnyx_audio.read_captures`) must be a regular file; the
    lower readers refuse only devices and sockets.

    Raises
    ------
    IsADirectoryError
        For a directory.
    OSError
        If it cannot be examined (missing, a link loop...), or (``errno.EINVAL``) it is a
        FIFO, a device or a socket: the message says which.
    """
    import errno

    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode) or (allow_fifo and stat.S_ISFIFO(mode)):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, f"{os.fspath(path)!r} is a directory, expected a capture file")
    raise OSError(errno.EINVAL, f"{os.fspath(path)!r} is {kind}, expected a regular capture file")


def open_capture(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a capture for binary reading; a gzip file (known by its magic bytes, whatever
    its name) is decompressed as it is read. Never a device or a socket (:func:`check_regular_file`)."""
    check_regular_file(path, allow_fifo=True)
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
