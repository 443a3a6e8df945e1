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

from telnyx_audio._util.files import check_regular_file
from telnyx_audio.rtp.datagrams import Records

__all__ = ["MAGIC", "RECORD", "ForkCaptureWriter", "Records", "is_fork_capture", "read_records"]

#: The first bytes of every fork capture (what :func:`is_fork_capture` sniffs).
MAGIC = b"#telnyx-audio-fork/1 "
RECORD = struct.Struct("<BBHq")
_RECORD_MAGIC = 0xA7
_MAX_HEADER = 1 << 16


def is_fork_capture(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts like a fork capture (False for anything unreadable).

    Only the first bytes are read (the header's magic string), so this is cheap enough to
    sniff every file of a folder.

    Parameters
    ----------
    path : str or Path
        The file to sniff; a FIFO or device is never opened.

    Returns
    -------
    bool
        True when the file starts with the fork-capture header.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
    >>> _ = p.write_text('{"event": "connected"}\\n')
    >>> is_fork_capture(p)
    False
    """
    try:
        check_regular_file(path)  # never open a FIFO (that waits for a writer) or a device
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
        head = MAGIC + json.dumps(meta, separators=(",", ":")).encode() + b"\n"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            written = os.write(self._fd, head)
            if written != len(head):
                raise OSError(errno.ENOSPC, f"short write to {self.path} ({written} of {len(head)} bytes)")
        except OSError:  # disk full...: no descriptor and no headless file left behind
            os.close(self._fd)
            self._fd = -1
            try:
                os.unlink(self.path)
            except OSError:
                pass
            raise
        self.size = len(head)
        self.records = 0

    def write(self, track: int, data: bytes, received_us: int) -> None:
        """Write one datagram received on ``track`` (0 rx, 1 tx) at ``received_us``.

        Parameters
        ----------
        track : int
            0 for a datagram received on the ``rx`` port (inbound), 1 for ``tx`` (outbound).
        data : bytes
            The datagram as received (an RTP packet), at most 65,535 bytes.
        received_us : int
            When it arrived, Unix time in microseconds.

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


def _header_ok(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Whether a record header (magic, track 0 or 1) starts at each of ``at`` (whole header in the file)."""
    n = buf.size
    inside = at + RECORD.size <= n
    a = np.where(inside, at, 0)
    return inside & (buf[a] == _RECORD_MAGIC) & (buf[np.minimum(a + 1, n - 1)] <= 1)


def _chained(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Whether the record headers at ``at`` are followed by another header or the file's end
    (exactly, or a torn last record): a length field that does not lead to the next record
    is damage, never a record that swallows the ones after it."""
    n = buf.size
    a = np.minimum(at, max(n - 4, 0))
    nxt = at + RECORD.size + (buf[a + 2].astype(np.int64) | buf[a + 3].astype(np.int64) << 8)
    return (nxt >= n) | _header_ok(buf, nxt)


def _resync(buf: np.ndarray, at: int) -> int:
    """The next place after ``at`` where a record starts and leads to the next (or the end):
    where reading goes on after damage. ``buf.size`` if none."""
    n = buf.size
    window = 1 << 18
    lo = at + 1
    while lo < n:
        hi = min(n, lo + window)
        cand = np.flatnonzero(buf[lo:hi] == _RECORD_MAGIC) + lo
        cand = cand[_header_ok(buf, cand)]
        if cand.size:
            ok = _chained(buf, cand)
            if ok.any():
                return int(cand[np.argmax(ok)])
        lo, window = hi, window * 4
    return n


def _walk(buf: np.ndarray, start: int) -> tuple[np.ndarray, int, list[str]]:
    """Offsets of every good record from ``start``; the first byte not read; the problems.

    Records are variable-length, so each one's place depends on the one before; but within
    a run of equal lengths (a stream's packets) the places form an arithmetic series. Guess
    the run, check every guess in one vectorized step, take what holds, repeat. Damage (a
    flipped byte, junk, a hole of zeros, a length that does not lead to the next record) is
    skipped up to the next place where records go on (:func:`_resync`), and said; a record
    with an unknown track byte is skipped and counted.
    """
    n = buf.size
    h = RECORD.size
    found: list[np.ndarray] = []
    at = start
    span = 64
    problems: list[str] = []
    damaged: list[tuple[int, int]] = []  # (where, bytes skipped)
    unknown_track = 0
    while at + h <= n:
        here = np.array([at], np.int64)
        if not (_header_ok(buf, here)[0] and _chained(buf, here)[0]):
            if buf[at] == _RECORD_MAGIC and buf[at + 1] > 1 and _chained(buf, here)[0]:
                unknown_track += 1  # a whole record, of no track we know
                at += h + (int(buf[at + 2]) | int(buf[at + 3]) << 8)
                continue
            nxt = _resync(buf, at)
            damaged.append((at, nxt - at))
            at, span = nxt, 64
            continue
        length = int(buf[at + 2]) | int(buf[at + 3]) << 8
        step = h + length
        k = min(span, (n - at) // step)
        if k == 0:
            break  # torn last record
        cand = at + step * np.arange(k, dtype=np.int64)
        ok = (buf[cand] == _RECORD_MAGIC) & (buf[cand + 1] <= 1) & (
            (buf[cand + 2].astype(np.int64) | buf[cand + 3].astype(np.int64) << 8) == length)
        good = k if ok.all() else max(int(np.argmin(ok)), 1)
        found.append(cand[:good])
        at += step * good
        span = min(span * 4, 1 << 20) if good == k else 64
    if damaged:
        where = ", ".join(f"{b} bytes at byte {a}" for a, b in damaged[:5]) + (", ..." if len(damaged) > 5 else "")
        problems.append(f"{len(damaged)} damaged stretches skipped ({sum(b for _, b in damaged)} bytes: {where});"
                        " reading went on at the next whole record")
    if unknown_track:
        problems.append(f"{unknown_track} records with an unknown track byte (expected 0 or 1) skipped")
    return (np.concatenate(found) if found else np.empty(0, np.int64)), at, problems


#: A receive time this far from both its neighbours' (which agree) is a damaged field.
_SPIKE_US = 60_000_000


def _robust_times(received: np.ndarray, problems: list[str]) -> np.ndarray:
    """Receive times with damaged ones (negative, or a spike away from both neighbours)
    replaced by a neighbour's: one bad field never moves the call's start by a day (or 56
    years, for 0)."""
    r = received.copy()
    bad = r < 0
    if r.size == 0 or bad.all():
        return r
    if r.size >= 3:
        idx = np.arange(r.size)
        # Each record against the nearest plausible records before and after it.
        prev = np.maximum.accumulate(np.where(~bad, idx, -1))
        prev = np.concatenate(([-1], prev[:-1]))
        nxt = np.minimum.accumulate(np.where(~bad, idx, r.size)[::-1])[::-1]
        nxt = np.concatenate((nxt[1:], [r.size]))
        pv, nv = r[np.clip(prev, 0, r.size - 1)], r[np.clip(nxt, 0, r.size - 1)]
        has_p, has_n = prev >= 0, nxt < r.size
        far_p, far_n = np.abs(r - pv) > _SPIKE_US, np.abs(r - nv) > _SPIKE_US
        agree = np.abs(nv - pv) <= _SPIKE_US
        spike = ~bad & ((has_p & has_n & far_p & far_n & agree) | (~has_p & has_n & far_n) | (has_p & ~has_n & far_p))
        # An end record is a spike only if its one neighbour agrees with the next one along.
        bad |= spike
    if bad.any():
        ok = np.flatnonzero(~bad)
        fill = np.searchsorted(ok, np.arange(r.size), side="right") - 1
        fill = np.where(fill < 0, ok[0], ok[np.maximum(fill, 0)])
        problems.append(f"{int(bad.sum())} records with a receive time out of line (negative, or over"
                        f" {_SPIKE_US // 1_000_000} s from both neighbours): taken as a neighbour's")
        r = np.where(bad, r[fill], r)
    return r


def read_records(path: str | os.PathLike[str]) -> Records:
    """Read a fork capture's records (a torn last record is reported and ignored).

    Parameters
    ----------
    path : str or Path
        A fork capture (``fork.rtpcap``), as :class:`ForkCaptureWriter` writes it.

    Returns
    -------
    Records
        The datagrams in file order with their tracks and arrival times, the header's
        metadata as ``meta``, and what was wrong (``problems``, ``truncated_bytes``).

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
    check_regular_file(path)
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
    starts, stop, walked = _walk(buf, end + 1)
    problems.extend(walked)
    h = RECORD.size
    heads = np.lib.stride_tricks.sliding_window_view(buf, h)[starts] if starts.size else np.zeros((0, h), np.uint8)
    length = heads[:, 2:4].copy().view("<u2").reshape(-1).astype(np.int64)
    received = heads[:, 4:12].copy().view("<i8").reshape(-1)
    return Records(
        buf=buf,
        offset=starts + h,
        length=length,
        track=heads[:, 1].astype(np.int8),
        received_us=_robust_times(received, problems),
        meta=_checked_meta(meta, problems),
        truncated_bytes=int(max(buf.size - stop, 0)),
        problems=problems,
    )


#: Header fields and what each must be (anything else is dropped, and said).
_META_TYPES: dict[str, tuple[type, ...]] = {
    "session_id": (str,), "call_control_id": (str,), "call_session_id": (str,), "host": (str,),
    "custom_parameters": (dict,), "payload_types": (dict,), "rx_port": (int,), "tx_port": (int,),
    "started_us": (int,),
}


def _checked_meta(meta: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The header's metadata with every known field of the wrong type dropped (and said)."""
    out = dict(meta)
    for key, types in _META_TYPES.items():
        value = out.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or isinstance(value, bool):
            problems.append(f"header field {key!r} is {type(value).__name__} {str(value)[:60]!r},"
                            f" expected {' or '.join(t.__name__ for t in types)}: ignored")
            del out[key]
    return out
