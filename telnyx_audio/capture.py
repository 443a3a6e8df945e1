"""Capture files: one Telnyx media-stream message per line (JSONL), read into a recording.

The capture file is the interchange format of this project. Each line is one message as
Telnyx sent it, exactly as received::

    {"event": "start", "sequence_number": "1", "stream_id": "...", "start": {...}}
    {"event": "media", "sequence_number": "2", "stream_id": "...", "media": {...}}

The capture server may instead wrap a message with its receive time (microseconds since the
Unix epoch), keeping the message bytes as they came::

    {"received_us": 1732419600123456, "message": {"event": "media", ...}}
    {"received_us": 1732419600123999, "raw": "<a message that was not one line of JSON>"}

Both forms, mixed freely, are read by :func:`read_capture`. A line that is not a valid
Telnyx message is counted and reported (line number and reason), never fatal.
"""

from __future__ import annotations

import binascii
import json
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterator

import numpy as np

from telnyx_audio import _base64, _scan, codecs
from telnyx_audio.errors import CaptureError, UnsupportedEncodingError
from telnyx_audio.protocol import (
    Connected,
    Dtmf,
    Event,
    Malformed,
    Mark,
    Media,
    MediaFormat,
    Start,
    Stop,
    StreamError,
    parse_message,
    parse_object,
)
from telnyx_audio.recording import FrameTable, Plan, Recording, TrackReport, plan, recording_from, render_batch

__all__ = ["BadLine", "CaptureReport", "Capture", "read_capture", "parse_line", "DEFAULT_MEDIA_FORMAT"]

#: Assumed when a capture has no ``start`` message and none is given: Telnyx's default codec.
DEFAULT_MEDIA_FORMAT = MediaFormat("PCMU", 8000, 1)
_MAX_EXAMPLES = 20
_MAX_TEMPLATES = 16
_LEARN_PER_BLOCK = 4
_MAX_VARIANTS = 16
_VARIANT_TRIES = 4  # per block; lines no variant takes go to the templates
_PROBE = 64  # lines a newly learned layout is tried on before its variants take over
_EQ = ord("=")
_JSON_SPACE = b" \t\r\n"


@dataclass(frozen=True)
class BadLine:
    """A line that could not be used: its 1-based number, why, and its start."""

    line: int
    reason: str
    text: str


@dataclass(frozen=True)
class CaptureReport:
    """What reading a capture found, beyond the per-track reports.

    ``events`` counts messages by type; ``bad_examples`` holds the first bad lines.
    """

    lines: int
    bad_lines: int
    bad_examples: tuple[BadLine, ...]
    events: dict[str, int]
    warnings: tuple[str, ...]
    tracks: dict[str, TrackReport]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (part of ``summary.json``)."""
        return {
            "lines": self.lines,
            "bad_lines": self.bad_lines,
            "bad_examples": [vars(b) for b in self.bad_examples],
            "events": dict(self.events),
            "warnings": list(self.warnings),
            "track_reports": {name: r.as_dict() for name, r in self.tracks.items()},
        }


@dataclass(frozen=True)
class Capture:
    """One stream read from a capture file.

    Attributes
    ----------
    stream_id, call_control_id, call_session_id : str or None
        From the ``start`` message.
    media_format : MediaFormat
        ``start.media_format`` (or the assumed one, with a warning in the report).
    custom_parameters : dict
        ``start.custom_parameters``.
    start : dict
        Every field of ``start`` as received.
    recording : Recording
        The audio, ``(2, n)`` int16 ``[inbound, outbound]``.
    report : CaptureReport
    events : tuple of Event
        Every message but ``media``, in order (start, dtmf, mark, error, stop...).
    """

    path: str | None
    stream_id: str | None
    call_control_id: str | None
    call_session_id: str | None
    media_format: MediaFormat
    custom_parameters: dict[str, Any]
    start: dict[str, Any]
    recording: Recording
    report: CaptureReport
    events: tuple[Event, ...] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """The JSON-able summary written as ``summary.json``."""
        fmt = self.media_format
        dtmf = [e.digit for e in self.events if isinstance(e, Dtmf)]
        return {
            "source": self.path,
            "stream_id": self.stream_id,
            "call_control_id": self.call_control_id,
            "call_session_id": self.call_session_id,
            "media_format": {
                "encoding": fmt.encoding,
                "sample_rate": fmt.sample_rate,
                "channels": fmt.channels,
            },
            "custom_parameters": dict(self.custom_parameters),
            "tracks": list(self.recording.tracks),
            "duration_s": self.recording.duration_s,
            "dtmf": "".join(dtmf),
            **self.report.as_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        """One flat, JSON-safe row: ids, format, duration, per-track frame counts and gaps,
        DTMF events (the capture's columns of :func:`telnyx_audio.batch`'s call table,
        documented in :mod:`telnyx_audio.fleet.schema`)."""
        from telnyx_audio.fleet.schema import capture_row

        return capture_row(self)

    def __repr__(self) -> str:
        return f"<Capture {self.stream_id} {self.recording!r} bad_lines={self.report.bad_lines}>"


def parse_line(line: str | bytes) -> tuple[Event, int | None]:
    """Parse one capture line: a Telnyx message, or one wrapped with its receive time.

    Returns
    -------
    (Event, received_us or None)

    Examples
    --------
    >>> ev, t = parse_line('{"received_us": 5, "message": {"event": "connected"}}')
    >>> type(ev).__name__, t
    ('Connected', 5)
    """
    text = line.decode("utf-8", "replace") if isinstance(line, (bytes, bytearray)) else line
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return Malformed(f"invalid JSON: {exc.msg} at char {exc.pos}", text), None
    except RecursionError:
        return Malformed("invalid JSON: nested too deeply", text), None
    if isinstance(obj, dict) and _scan.WRAP_TIME_KEY in obj and "event" not in obj:
        received = obj.get(_scan.WRAP_TIME_KEY)
        received = received if isinstance(received, int) and not isinstance(received, bool) else None
        if _scan.WRAP_KEY in obj:
            return parse_object(obj[_scan.WRAP_KEY], text), received
        if isinstance(obj.get("raw"), str):
            return parse_message(obj["raw"]), received
        return Malformed("capture line has received_us but neither message nor raw", text), received
    return parse_object(obj, text), None


class _Reader:
    """Pass 1 over a capture file: events, bad lines, and each media frame's counters and
    where its payload text lies in the file (payloads are decoded later, in place)."""

    def __init__(self) -> None:
        self.templates: list[_scan.Template] = []
        self.variants: list[_scan.Variant] = []  # most recently used first, at most _MAX_VARIANTS
        self.lines = 0
        self.bad = 0
        self.examples: list[BadLine] = []
        self.counts: dict[str, int] = {}
        self.events: list[Event] = []
        self.start: Start | None = None
        self.warnings: list[str] = []
        # Per block: (FrameTable, line numbers, payload file offsets, payload text lengths);
        # offset -1 marks a frame parsed the slow way, whose bytes are kept in ``slow``.
        self.blocks: list[tuple[FrameTable, np.ndarray, np.ndarray, np.ndarray]] = []
        self.slow: list[bytes] = []

    def _bad(self, line_no: int, reason: str, text: str) -> None:
        self.bad += 1
        if len(self.examples) < _MAX_EXAMPLES:
            self.examples.append(BadLine(line_no, reason, text[:200]))

    def _event(self, event: Event, line_no: int) -> None:
        if isinstance(event, Malformed):
            self._bad(line_no, event.reason, event.raw)
            return
        name = _EVENT_NAMES[type(event)]
        self.counts[name] = self.counts.get(name, 0) + 1
        if isinstance(event, Start):
            if self.start is None:
                self.start = event
            elif event.stream_id != self.start.stream_id:
                self.warnings.append(
                    f"line {line_no}: a second start for stream {event.stream_id!r} ignored"
                )
        self.events.append(event)

    def block(self, buf: np.ndarray, lo: int, hi: int, file_offset: int) -> None:
        """Read the complete lines in buf[lo:hi] (each ends with a newline); buf[lo] is at
        ``file_offset`` in the file."""
        ends = np.flatnonzero(buf[lo:hi] == 10) + lo
        starts = np.empty_like(ends)
        starts[:1] = lo
        starts[1:] = ends[:-1] + 1
        first_no = self.lines + 1
        self.lines += ends.size
        todo = np.flatnonzero(ends > starts)
        hits: list[tuple] = []
        if self.variants and todo.size:
            todo = self._match_variants(buf, starts, ends, todo, hits)
        for tpl in self.templates:
            if todo.size == 0:
                break
            todo, got = self._match(tpl, buf, starts, ends, todo)
            if got is not None:
                hits.append(got)
        slow_rows, slow_media = self._slow_path(buf, starts, ends, todo, hits, first_no)
        parts = [self._fast_part(buf, starts, ends, hit, lo, file_offset, first_no) for hit in hits]
        if slow_media:
            table, _ = FrameTable.from_media(slow_media)
            first_slow = len(self.slow)
            self.slow.extend(m.payload for m in slow_media)
            # Slow frames are found by their index in ``slow``, stored as -(index + 1).
            where = -(np.arange(first_slow, len(self.slow), dtype=np.int64) + 1)
            parts.append((np.array(slow_rows, np.int64), table, where, np.zeros(len(slow_media), np.int64)))
        if not parts:
            return
        rows = np.concatenate([p[0] for p in parts])
        table = FrameTable.concat([p[1] for p in parts])
        where = np.concatenate([p[2] for p in parts])
        length = np.concatenate([p[3] for p in parts])
        if rows.size > 1 and (np.diff(rows) < 0).any():
            order = np.argsort(rows, kind="stable")
            rows, table, where, length = rows[order], table.take(order), where[order], length[order]
        self.counts["media"] = self.counts.get("media", 0) + len(table)
        self.blocks.append((table, rows + first_no, where, length))

    def _slow_path(self, buf, starts, ends, todo, hits, first_no) -> tuple[list[int], list[Media]]:
        """Parse the lines no layout took, one by one; learn layouts from media lines among
        them and take the rest of the block through what was learned."""
        slow_rows: list[int] = []
        slow_media: list[Media] = []
        learned = 0
        i = 0
        while i < todo.size:
            li = int(todo[i])
            text = buf[starts[li] : ends[li]].tobytes()
            i += 1
            if not text.strip(_JSON_SPACE):  # a blank line is no message
                continue
            event, _ = parse_line(text)
            if not isinstance(event, Media):
                self._event(event, first_no + li)
                continue
            slow_rows.append(li)
            slow_media.append(event)
            if learned >= _LEARN_PER_BLOCK or i >= todo.size:
                continue
            learned += 1
            tpl = _scan.learn(text, event)
            if tpl is None:
                continue
            self.templates.append(tpl)
            if len(self.templates) > _MAX_TEMPLATES:
                self.templates.sort(key=lambda t: -t.hits)
                self.templates.pop()
            # Probe the new layout on a few lines to learn its fixed-length variants, then
            # take the rest of the block through those (much cheaper per line).
            rest, got = self._match(tpl, buf, starts, ends, todo[i : i + _PROBE])
            if got is not None:
                hits.append(got)
            rest = np.concatenate((rest, todo[i + _PROBE :]))
            if self.variants and rest.size:
                rest = self._match_variants(buf, starts, ends, rest, hits)
            if rest.size:
                rest, got = self._match(tpl, buf, starts, ends, rest)
                if got is not None:
                    hits.append(got)
            todo = np.concatenate((todo[:i], rest))
        return slow_rows, slow_media

    def _fast_part(self, buf, starts, ends, hit, lo, file_offset, first_no):
        """Frames of lines a layout took: counters, and where their payload text is in the file."""
        rows, track, fields, p0, p1 = hit
        length = p1 - p0
        # Decoded size from the text: 3 bytes per 4 characters, less the padding.
        pad = (buf[np.maximum(p1 - 1, p0)] == _EQ).astype(np.int64) + (buf[np.maximum(p1 - 2, p0)] == _EQ)
        nbytes = length // 4 * 3 - np.where(length > 0, pad, 0)
        odd = length % 4 != 0
        if odd.any():  # cannot be base64: let the slow path say why
            for li in rows[odd].tolist():
                self._event(parse_line(buf[starts[li] : ends[li]].tobytes())[0], first_no + li)
            keep = ~odd
            rows, track, p0, length, nbytes = rows[keep], track[keep], p0[keep], length[keep], nbytes[keep]
            fields = {k: v[keep] for k, v in fields.items()}
        table = FrameTable(track, fields["chunk"], fields["timestamp"], fields["sequence_number"], nbytes)
        return rows, table, p0 - lo + file_offset, length

    def _match(self, tpl, buf, starts, ends, todo):
        ok, fields, track, p0, p1, lengths = tpl.match(buf, starts[todo], ends[todo])
        if not ok.any():
            return todo, None
        tpl.hits += int(ok.sum())
        # Remember the fixed-length forms of what matched, to check them faster next time:
        # most recent first, a bounded few (counters grow, old forms stop occurring).
        seen = lengths[ok]
        # One int per row (lengths are small) makes finding the distinct rows a 1-D unique.
        _, first = np.unique(seen @ (np.int64(64) ** np.arange(seen.shape[1], dtype=np.int64)), return_index=True)
        for form in seen[np.sort(first)][:_MAX_VARIANTS]:
            key = (id(tpl), form.tobytes())
            variant = next((v for v in self.variants if v.key == key), None) or _scan.Variant.build(tpl, form)
            if variant is not None:
                self.variants = [variant] + [v for v in self.variants if v is not variant]
        del self.variants[_MAX_VARIANTS:]
        got = (todo[ok], track[ok], {k: v[ok] for k, v in fields.items()}, p0[ok], p1[ok])
        return todo[~ok], got

    def _match_variants(self, buf, starts, ends, todo, hits) -> np.ndarray:
        """Take the lines that fit a known variant; return the rest."""
        head_w = max(v.head_width for v in self.variants)
        tail_w = max(v.tail_width for v in self.variants)
        head = _scan._rows(buf, starts[todo], head_w)
        tail = _scan._rows(buf, ends[todo] - tail_w, tail_w)
        length = ends[todo] - starts[todo]
        rest = None  # indices into todo still unmatched; None: all of them
        used = []
        for variant in self.variants[:_VARIANT_TRIES]:
            if rest is None:
                ok, fields = variant.match(head, tail, length)
                idx = np.flatnonzero(ok)
                left = np.flatnonzero(~ok)
            else:
                ok, fields = variant.match(head[rest], tail[rest], length[rest])
                idx, left = rest[ok], rest[~ok]
            if idx.size:
                used.append(variant)
                rows = todo[idx]
                track = np.full(idx.size, variant.track, np.int8)
                fields = {k: v[ok] for k, v in fields.items()}
                hits.append((rows, track, fields, starts[rows] + variant.head, ends[rows] - variant.tail))
            rest = left
            if rest.size == 0:
                break
        # Most recently used first: counters grow, so the forms in use drift through a file.
        self.variants = used + [v for v in self.variants if v not in used]
        return todo[rest]

    def frames(self) -> tuple[FrameTable, np.ndarray, np.ndarray, np.ndarray]:
        """All frames in arrival order, with line numbers, payload offsets and text lengths."""
        if not self.blocks:
            z = np.empty(0, np.int64)
            return FrameTable.empty(), z, z, z
        table = FrameTable.concat([b[0] for b in self.blocks])
        return table, *(np.concatenate([b[i] for b in self.blocks]) for i in (1, 2, 3))


_EVENT_NAMES: dict[type, str] = {
    Connected: "connected",
    Start: "start",
    Media: "media",
    Dtmf: "dtmf",
    Mark: "mark",
    StreamError: "error",
    Stop: "stop",
}


def _fill(f: BinaryIO, view: memoryview) -> int:
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _read_blocks(f: BinaryIO, reader: _Reader, block_size: int) -> None:
    """Feed the file to the reader in blocks of whole lines, in one reused padded buffer."""
    pad = _scan.PAD
    cap = block_size
    buf = np.zeros(cap + 2 * pad, np.uint8)
    have = 0
    at = 0  # file offset of buf[pad]
    while True:
        got = _fill(f, memoryview(buf)[pad + have : pad + cap])
        total = have + got
        if total < cap:  # end of file
            if total and buf[pad + total - 1] != 10:
                buf[pad + total] = 10  # the last line may lack its newline
                total += 1
            if total:
                reader.block(buf, pad, pad + total, at)
            return
        last = _last_newline(buf[pad : pad + total])
        if last < 0:  # a line longer than the buffer: grow and keep reading
            cap *= 2
            bigger = np.zeros(cap + 2 * pad, np.uint8)
            bigger[: pad + total] = buf[: pad + total]
            buf, have = bigger, total
            continue
        reader.block(buf, pad, pad + last + 1, at)
        at += last + 1
        rest = total - (last + 1)
        buf[pad : pad + rest] = buf[pad + last + 1 : pad + total].copy()
        have = rest


def _render_from_file(
    f: BinaryIO, plan_: Plan, frames: FrameTable, where: np.ndarray, length: np.ndarray,
    slow: list[bytes], block_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2: decode every payload from the file into its planned place.

    Returns the audio and the indices of frames whose payload turned out not to be base64.
    """
    pad = _scan.PAD
    out = np.zeros((2, plan_.n_samples), np.int16)
    fast = np.flatnonzero(where >= 0)  # in file order
    ends = where[fast] + length[fast]
    buf = np.zeros(block_size + 2 * pad, np.uint8)
    bad: list[np.ndarray] = []
    i = 0
    while i < fast.size:
        first = int(where[fast[i]])
        j = int(np.searchsorted(ends, first + block_size, side="right"))
        j = min(max(j, i + 1), i + (1 << 14))
        need = int(ends[j - 1]) - first
        if need + 2 * pad > buf.size:
            buf = np.zeros(need + 2 * pad, np.uint8)
        f.seek(first)
        got = _fill(f, memoryview(buf)[pad : pad + need])
        buf[pad + got : pad + need] = 0  # a file cut short reads as invalid text
        rows = fast[i:j]
        raw, nbytes, valid = _base64.decode_spans(buf, where[rows] - first + pad, length[rows])
        if not valid.all():  # raw holds the valid rows only
            bad.append(rows[~valid])
            rows, nbytes = rows[valid], nbytes[valid]
        if rows.size:
            render_batch(out, plan_, rows, frames.track[rows], raw, nbytes)
        i = j
    kept = np.flatnonzero(where < 0)
    if kept.size:
        payload = np.frombuffer(b"".join(slow[k] for k in (-where[kept] - 1).tolist()), np.uint8)
        render_batch(out, plan_, kept, frames.track[kept], payload, frames.nbytes[kept])
    return out, (np.concatenate(bad) if bad else np.empty(0, np.int64))


def _last_newline(region: np.ndarray) -> int:
    step = 1 << 16
    end = region.size
    while end > 0:
        lo = max(0, end - step)
        hit = np.flatnonzero(region[lo:end] == 10)
        if hit.size:
            return lo + int(hit[-1])
        end = lo
    return -1


def read_capture(
    path: str | os.PathLike[str],
    *,
    media_format: MediaFormat | None = None,
    block_size: int = 1 << 20,
) -> Capture:
    """Read a capture file into metadata, aligned audio and a report.

    Parameters
    ----------
    path : str or PathLike
        A JSONL file of Telnyx messages (plain or wrapped with receive times).
    media_format : MediaFormat, optional
        Overrides ``start.media_format``; needed for logs that lack the ``start`` message
        (otherwise Telnyx's default, PCMU at 8 kHz, is assumed with a warning).
    block_size : int
        Bytes read per block. Memory use is about this plus the decoded audio.

    Returns
    -------
    Capture
        ``capture.recording.audio`` is int16 of shape (2, n), ``[inbound, outbound]``.

    Raises
    ------
    CaptureError
        If the file cannot be opened.
    UnsupportedEncodingError
        If the stream's encoding is one this version cannot decode (G722, OPUS, AMR-WB).

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "call.jsonl"
    >>> start = {"event": "start", "start": {"media_format": {"encoding": "PCMU", "sample_rate": 8000}}}
    >>> media = {"event": "media", "media": {"track": "inbound", "chunk": "1", "payload": "gICA"}}
    >>> _ = path.write_text(json.dumps(start) + "\\n" + json.dumps(media) + "\\n")
    >>> cap = read_capture(path)
    >>> cap.recording.audio.shape, cap.recording.inbound.tolist()
    ((2, 3), [32124, 32124, 32124])
    """
    if not isinstance(block_size, int) or block_size < 1024:
        raise ValueError(f"block_size must be an integer of at least 1024 bytes, got {block_size!r}")
    reader = _Reader()
    try:
        with open(path, "rb") as f:
            _read_blocks(f, reader, block_size)
            start = reader.start
            fmt = media_format or (start.media_format if start else None)
            if fmt is None:
                fmt = DEFAULT_MEDIA_FORMAT
                reader.warnings.append("no start message: assumed PCMU at 8000 Hz (pass media_format=)")
            if fmt.encoding not in codecs.SUPPORTED_ENCODINGS:
                raise UnsupportedEncodingError(fmt.encoding, codecs.SUPPORTED_ENCODINGS)
            frames, line_no, where, length = reader.frames()
            while True:
                plan_ = plan(frames, fmt.encoding, fmt.sample_rate)
                audio, bad = _render_from_file(f, plan_, frames, where, length, reader.slow, block_size)
                if bad.size == 0:
                    break
                # Payloads that are not base64 after all: those lines are malformed messages,
                # as parse_message would say; plan again without them.
                for k in bad.tolist():
                    f.seek(int(where[k]))
                    text = f.read(int(length[k]))
                    try:
                        binascii.a2b_base64(text, strict_mode=True)
                        reason = "media: media.payload changed while it was read"
                    except (binascii.Error, ValueError) as exc:
                        reason = f"media: media.payload is not valid base64: {exc}"
                    reader._bad(int(line_no[k]), reason, text.decode("ascii", "replace"))
                reader.counts["media"] -= bad.size
                keep = np.ones(len(frames), bool)
                keep[bad] = False
                frames, line_no, where, length = frames.take(keep), line_no[keep], where[keep], length[keep]
    except IsADirectoryError as exc:
        raise CaptureError(f"{os.fspath(path)!r} is a directory, expected a capture file") from exc
    except OSError as exc:
        raise CaptureError(f"cannot read capture {os.fspath(path)!r}: {exc.strerror or exc}") from exc

    recording = recording_from(plan_, audio)
    report = CaptureReport(
        lines=reader.lines,
        bad_lines=reader.bad,
        bad_examples=tuple(sorted(reader.examples, key=lambda b: b.line)),
        events=dict(reader.counts),
        warnings=tuple(reader.warnings),
        tracks=recording.reports,
    )
    return Capture(
        path=os.fspath(path),
        stream_id=start.stream_id if start else None,
        call_control_id=start.call_control_id if start else None,
        call_session_id=start.call_session_id if start else None,
        media_format=fmt,
        custom_parameters=dict(start.custom_parameters) if start else {},
        start=dict(start.start) if start else {},
        recording=recording,
        report=report,
        events=tuple(reader.events),
    )


def iter_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, Event, int | None]]:
    """Yield ``(line_number, event, received_us)`` for every non-blank line, slowly but simply.

    The reference path :func:`read_capture` must agree with; handy for looking at a few
    messages in a notebook.
    """
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if line.strip(_JSON_SPACE):
                event, received = parse_line(line.rstrip(b"\r\n"))
                yield number, event, received
