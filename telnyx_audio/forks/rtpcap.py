"""The fork-capture file: every datagram a fork receiver took, as received, one record each.

A text header line names the format and carries the session's metadata as JSON; binary
records follow, one per datagram, each written with a single ``write`` as the datagram
arrives (so a crash or SIGKILL loses at most a torn last record, which the reader reports
and ignores)::

    #telnyx-audio-fork/1 {"session_id": "...", "rx_port": 40000, "tx_port": 40001, ...}\\n
    record: magic 0xA7 (1) | track (1: 0 rx/inbound, 1 tx/outbound) | length (2, LE)
            | received_us (8, LE, microseconds since the Unix epoch) | datagram (length)

Binary because a fork carries raw bytes (no base64 to undo) and because fixed-size record
headers let the reader find every record with a few whole-array steps (:func:`read_records`).
"""

from __future__ import annotations

import errno
import json
import os
import struct
from typing import Any

import numpy as np

from telnyx_audio.rtp.datagrams import Records

__all__ = ["MAGIC", "RECORD", "ForkCaptureWriter", "Records", "is_fork_capture", "read_records"]

#: The first bytes of every fork capture (what :func:`is_fork_capture` sniffs).
MAGIC = b"#telnyx-audio-fork/1 "
RECORD = struct.Struct("<BBHq")
_RECORD_MAGIC = 0xA7
_MAX_HEADER = 1 << 16


def is_fork_capture(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts like a fork capture (False for anything unreadable).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
    >>> _ = p.write_text('{"event": "connected"}\\n')
    >>> is_fork_capture(p)
    False
    """
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


class ForkCaptureWriter:
    """Append datagrams to a fork capture, one ``os.write`` per datagram (nothing buffered).

    Parameters
    ----------
    path : str or PathLike
        Created (an existing file is an error: captures are never overwritten).
    meta : dict
        JSON-able metadata for the header line (ports, payload-type map, ids).
    """

    def __init__(self, path: str | os.PathLike[str], meta: dict[str, Any]) -> None:
        self.path = os.fspath(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        head = MAGIC + json.dumps(meta, separators=(",", ":")).encode() + b"\n"
        os.write(self._fd, head)
        self.size = len(head)
        self.records = 0

    def write(self, track: int, data: bytes, received_us: int) -> None:
        """Write one datagram received on ``track`` (0 rx, 1 tx) at ``received_us``.

        Raises
        ------
        OSError
            If the record cannot be written whole (disk full...); the file is cut back to
            the records before it, so it stays readable and later writes may succeed.
        """
        record = RECORD.pack(_RECORD_MAGIC, track, len(data), received_us) + data
        try:
            written = os.write(self._fd, record)
        except OSError:
            self._rollback()
            raise
        if written != len(record):
            self._rollback()
            raise OSError(errno.ENOSPC, f"short write to {self.path} ({written} of {len(record)} bytes)")
        self.size += written
        self.records += 1

    def _rollback(self) -> None:
        try:
            os.ftruncate(self._fd, self.size)
        except OSError:  # the reader reports a torn record instead
            pass

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "ForkCaptureWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _walk(buf: np.ndarray, start: int) -> tuple[np.ndarray, int, str | None]:
    """Offsets of every complete record from ``start``; the first byte not read; a problem.

    Records are variable-length, so each one's place depends on the one before; but within
    a run of equal lengths (a stream's packets) the places form an arithmetic series. Guess
    the run, check every guess in one vectorized step, take what holds, repeat.
    """
    n = buf.size
    h = RECORD.size
    found: list[np.ndarray] = []
    at = start
    span = 64
    problem = None
    while at + h <= n:
        if buf[at] != _RECORD_MAGIC or buf[at + 1] > 1:
            problem = f"corrupt record at byte {at}: reading stopped there"
            break
        length = int(buf[at + 2]) | int(buf[at + 3]) << 8
        step = h + length
        k = min(span, (n - at) // step)
        if k == 0:
            break  # torn last record
        cand = at + step * np.arange(k, dtype=np.int64)
        ok = (buf[cand] == _RECORD_MAGIC) & ((buf[cand + 2].astype(np.int64) | buf[cand + 3].astype(np.int64) << 8) == length)
        good = k if ok.all() else int(np.argmin(ok))
        found.append(cand[:good])
        at += step * good
        span = min(span * 4, 1 << 20) if good == k else 64
    return (np.concatenate(found) if found else np.empty(0, np.int64)), at, problem


def read_records(path: str | os.PathLike[str]) -> Records:
    """Read a fork capture's records (a torn last record is reported and ignored).

    Raises
    ------
    ValueError
        If the file does not start with a fork-capture header.
    OSError
        If it cannot be read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "f.rtpcap"
    >>> with ForkCaptureWriter(p, {"rx_port": 4}) as w:
    ...     w.write(0, b"abc", 10)
    ...     w.write(1, b"de", 11)
    >>> r = read_records(p)
    >>> r.length.tolist(), r.track.tolist(), r.received_us.tolist(), r.meta
    ([3, 2], [0, 1], [10, 11], {'rx_port': 4})
    """
    buf = np.fromfile(path, np.uint8)
    if buf[: len(MAGIC)].tobytes() != MAGIC:
        raise ValueError(f"{os.fspath(path)!r} is not a fork capture (expected it to start with {MAGIC!r})")
    newline = np.flatnonzero(buf[:_MAX_HEADER] == 10)
    problems: list[str] = []
    meta: dict[str, Any] = {}
    if newline.size == 0:
        return Records(buf, *(np.empty(0, np.int64),) * 2, np.empty(0, np.int8), np.empty(0, np.int64), meta,
                       buf.size, ["the header line is incomplete"])
    end = int(newline[0])
    try:
        meta = json.loads(buf[len(MAGIC) : end].tobytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"header metadata is not JSON: {exc}")
    if not isinstance(meta, dict):
        meta = {}
    starts, stop, problem = _walk(buf, end + 1)
    if problem:
        problems.append(problem)
    h = RECORD.size
    heads = np.lib.stride_tricks.sliding_window_view(buf, h)[starts] if starts.size else np.zeros((0, h), np.uint8)
    length = heads[:, 2:4].copy().view("<u2").reshape(-1).astype(np.int64)
    received = heads[:, 4:12].copy().view("<i8").reshape(-1)
    return Records(
        buf=buf,
        offset=starts + h,
        length=length,
        track=heads[:, 1].astype(np.int8),
        received_us=received,
        meta=meta,
        truncated_bytes=0 if problem else int(buf.size - stop),
        problems=problems,
    )
