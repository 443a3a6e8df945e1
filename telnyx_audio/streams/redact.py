"""Redacting a WebSocket capture (JSONL): a copy whose muted stretches decode to silence and
whose ``dtmf`` messages are masked, checked by reading it back before it is kept.

:func:`redact_stream_log` is what :func:`telnyx_audio.redact` does to a JSONL capture and
what the capture server does to a stream's log when it is finalised with ``redact_dtmf``.
How, for each stream of the file:

1. The reader reads the call (:func:`~telnyx_audio.streams.read.read_stream_captures`); a
   stream whose audio cannot be decoded fails the whole file (nothing is written: a stretch
   we cannot hear may hold a tone).
2. Every line is read again the sure, slow way (:func:`~telnyx_audio.streams.lines.parse_line_full`)
   and each media frame placed with the same plan; the audio that placement gives must be the
   reader's, sample for sample, or nothing is written.
3. The stretches to mute (tones found by :func:`~telnyx_audio.model.redact.find_tones`, and
   the caller's spans) become new payloads (:func:`~telnyx_audio.model.redact.mute_frames`):
   only the ``payload`` text of those media lines changes, every other byte of the file stays.
   Every ``dtmf`` message is masked (``"digit": "*"``, ``"redacted": true``).
4. The copy is written under a temporary name in the destination folder, flushed to disk,
   read back (its audio must be the original's with the muted ranges silent, and, when DTMF
   was redacted, no tone may be left in it), and only then renamed into place. Writing over
   the source itself (``dest`` = ``src``) is a rename too: no reader ever sees half of it.

A payload whose length cannot be read off its bytes (an OPUS packet without a valid TOC, a
payload that is no AMR-WB payload) is undecodable to every reader; it is emptied (``""``),
which every reader treats the same (a bad frame, its time kept as silence), so nothing
unexamined is kept.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from telnyx_audio import codecs
from telnyx_audio._util.files import open_capture
from telnyx_audio.errors import CodecUnavailableError, CorruptPacketError, RedactionError, TelnyxAudioError
from telnyx_audio.model import FrameTable, Recording, plan, render, render_stateful
from telnyx_audio.model.capture import Capture
from telnyx_audio.model.events import TRACKS, Dtmf, Media, MediaFormat
from telnyx_audio.model.redact import (
    DEFAULT_PAD_S,
    Muting,
    Span,
    check_spans,
    find_tones,
    mask_dtmf_message,
    mute_audio,
    mute_frames,
)
from telnyx_audio.model.render import plan_stateful
from telnyx_audio.streams.lines import WRAP_KEY, parse_line_full

__all__ = ["StreamRedaction", "LogRedaction", "redact_stream_log", "mask_dtmf_line"]

_PAYLOAD = re.compile(rb'"payload"\s*:\s*"([A-Za-z0-9+/=\\]*)"')
_PARTIAL = ".part"


@dataclass(frozen=True)
class StreamRedaction:
    """One stream's redaction.

    Attributes
    ----------
    capture : Capture
        The redacted call: its audio with the muted ranges silent (every other sample as
        decoded from the original), its ``dtmf`` events masked, ``path`` the redacted copy.
    spans : tuple of Span
        What was asked to be muted: tones found (with their evidence) and the caller's spans.
    muting : Muting
        The sample ranges muted on each track, as applied (grown to whole frames for
        stateful codecs).
    frames_replaced : dict of str to int
        Media lines whose payload changed, per track.
    dtmf_masked : int
        ``dtmf`` messages masked (those already masked are not counted).
    keys : int
        ``dtmf`` messages in the stream (keys pressed, as Telnyx reported them).
    undecodable_emptied : int
        Payloads no decoder can read, emptied.
    """

    capture: Capture
    spans: tuple[Span, ...]
    muting: Muting
    frames_replaced: dict[str, int]
    dtmf_masked: int
    keys: int
    undecodable_emptied: int = 0


@dataclass(frozen=True)
class LogRedaction:
    """What :func:`redact_stream_log` wrote: the file and each stream's redaction."""

    source: str
    output: str
    streams: tuple[StreamRedaction, ...]
    lines_changed: int


class _Frame:
    __slots__ = ("line", "media", "bad")

    def __init__(self, line: int, media: Media, bad: bool) -> None:
        self.line, self.media, self.bad = line, media, bad


def mask_dtmf_line(line: bytes) -> bytes | None:
    """The capture line with its ``dtmf`` message masked, or None if it needs no change.

    Works on every form a capture line takes: the message itself, wrapped with its receive
    time (``{"received_us": ..., "message": {...}}``) or kept as text (``"raw"``). A line
    that mentions ``dtmf`` but cannot be read as JSON is replaced by a placeholder bad line
    (what it held cannot be checked, so it is not kept).

    Examples
    --------
    >>> mask_dtmf_line(b'{"received_us":1,"message":{"event":"dtmf","dtmf":{"digit":"5"}}}')
    b'{"received_us":1,"message":{"event":"dtmf","dtmf":{"digit":"*","redacted":true}}}'
    >>> mask_dtmf_line(b'{"event":"media"}') is None
    True
    """
    body = line.rstrip(b"\r\n")
    if b"dtmf" not in body:
        return None
    end = line[len(body):]
    text = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return b'{"raw":"[redacted: a line that mentions dtmf but is not JSON]"}' + end
    inner, where = obj, None
    if isinstance(obj, dict) and "received_us" in obj and "event" not in obj:
        if isinstance(obj.get(WRAP_KEY), dict):
            inner, where = obj[WRAP_KEY], WRAP_KEY
        elif isinstance(obj.get("raw"), str):
            try:
                inner, where = json.loads(obj["raw"]), "raw"
            except (ValueError, RecursionError):
                if "dtmf" not in obj["raw"]:
                    return None
                obj["raw"] = "[redacted: a line that mentions dtmf but is not JSON]"
                return json.dumps(obj, separators=(",", ":")).encode() + end
    if not mask_dtmf_message(inner):
        return None
    if where == "raw":
        obj["raw"] = json.dumps(inner, separators=(",", ":"))
    return json.dumps(obj, separators=(",", ":")).encode() + end


def _swap_payload(line: bytes, old: bytes, new: bytes) -> bytes:
    """The line with its media payload ``old`` written as ``new`` (every other byte kept)."""
    body = line.rstrip(b"\r\n")
    end = line[len(body):]
    fresh = base64.b64encode(new)
    found = [m for m in _PAYLOAD.finditer(body) if _b64(m.group(1)) == old]
    if len(found) == 1:
        m = found[0]
        return body[: m.start(1)] + fresh + body[m.end(1):] + end
    # Another spelling (escaped slashes, a message kept as text): write the line again.
    prefix = b"\xef\xbb\xbf" if body.startswith(b"\xef\xbb\xbf") else b""
    obj = json.loads(body[len(prefix):])
    target, where = obj, None
    if isinstance(obj, dict) and "received_us" in obj and "event" not in obj:
        if isinstance(obj.get(WRAP_KEY), dict):
            target = obj[WRAP_KEY]
        else:
            target, where = json.loads(obj["raw"]), "raw"
    target["media"]["payload"] = fresh.decode()
    if where == "raw":
        obj["raw"] = json.dumps(target, separators=(",", ":"))
    return prefix + json.dumps(obj, separators=(",", ":")).encode() + end


def _b64(text: bytes) -> bytes | None:
    try:
        return base64.b64decode(text.replace(b"\\/", b"/"), validate=True)
    except ValueError:
        return None


def _read_lines(path: str | os.PathLike[str]) -> list[bytes]:
    with open_capture(path) as f:
        data = f.read()
    lines = data.split(b"\n")
    out = [ln + b"\n" for ln in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _frames_of(lines: list[bytes], ids: list[str | None]) -> tuple[list[list[_Frame]], list[int]]:
    """Every media frame, given to its stream (the one it names, else the nearest named
    before it, as the reader does); and the lines holding a ``dtmf`` message."""
    index = {sid: n for n, sid in enumerate(ids)}
    per: list[list[_Frame]] = [[] for _ in ids]
    dtmf_lines: list[int] = []
    current = 0
    for number, line in enumerate(lines):
        body = line.rstrip(b"\r\n")
        if not body.strip(b" \t\r\n"):
            continue
        event, _, frame = parse_line_full(body)
        sid = getattr(event, "stream_id", None) or getattr(frame, "stream_id", None)
        if len(ids) > 1 and sid in index:
            current = index[sid]
        if isinstance(event, Media):
            per[current].append(_Frame(number, event, False))
        elif frame is not None:
            per[current].append(_Frame(number, frame, True))
        elif b"dtmf" in body:
            dtmf_lines.append(number)
    return per, dtmf_lines


def _table(frames: list[_Frame]) -> tuple[FrameTable, np.ndarray]:
    m = len(frames)

    def col(name: str) -> np.ndarray:
        return np.fromiter((-1 if getattr(f.media, name) is None else getattr(f.media, name) for f in frames),
                           np.int64, m)

    table = FrameTable(
        track=np.fromiter((TRACKS.index(f.media.track) for f in frames), np.int8, m),
        chunk=col("chunk"), timestamp=col("timestamp"), sequence_number=col("sequence_number"),
        nbytes=np.fromiter((-1 if f.bad else len(f.media.payload) for f in frames), np.int64, m),
    )
    raw = np.frombuffer(b"".join(f.media.payload for f in frames if not f.bad), np.uint8)
    return table, raw


def _placement(capture: Capture, frames: list[_Frame], where: str):  # noqa: ANN202 - (plan, raw)
    """The plan of the stream's frames, checked against the reader's audio."""
    fmt = capture.media_format
    assert fmt is not None
    info = codecs.codec_info(fmt.encoding)
    table, raw = _table(frames)
    if info.stateful:
        plan_ = plan_stateful(table, raw, info.name, fmt.sample_rate)
        again = render_stateful(plan_, table, raw).audio
    else:
        plan_ = plan(table, info.name, info.rate(fmt.sample_rate))
        again = render(plan_, table, raw).audio
    if again.shape != capture.recording.audio.shape or not np.array_equal(again, capture.recording.audio):
        raise RedactionError(f"stream {capture.stream_id}: its frames, read line by line, do not place as the"
                             " reader placed them (a format change inside the stream?)", where)
    return plan_, table


def redact_stream_log(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    dtmf: bool = True,
    spans: Iterable[Any] = (),
    pad_s: float = DEFAULT_PAD_S,
    settings: Mapping[str, float] | None = None,
    media_format: MediaFormat | Mapping[str, Any] | None = None,
) -> LogRedaction:
    """Write a redacted copy of a WebSocket capture: muted stretches silent, ``dtmf`` masked.

    Parameters
    ----------
    src : str or PathLike
        A JSONL capture (plain or gzip).
    dest : str or PathLike
        Where the copy goes (gzip when ``src`` is); may be ``src`` itself, replaced by a rename.
    dtmf : bool
        Find DTMF tones in the audio and mute them (both tracks, ``pad_s`` either side), and
        mask every ``dtmf`` message.
    spans : iterable
        More stretches to mute: ``"START-END[:TRACK]"`` or ``(start, end[, track])`` in
        seconds on each stream's timeline, or :class:`~telnyx_audio.model.redact.Span`.
    pad_s : float
        Guard band around each tone found, seconds.
    settings : dict, optional
        Detector keywords (:data:`~telnyx_audio.model.redact.DETECTOR_SETTINGS` by default).
    media_format : MediaFormat or dict, optional
        As for :func:`~telnyx_audio.streams.read.read_stream_captures`.

    Returns
    -------
    LogRedaction

    Raises
    ------
    ValueError
        For a span outside a stream, negative, reversed, or on an unknown track.
    RedactionError
        When a stream cannot be redacted safely; nothing is written.
    CaptureError, NotACaptureError
        When ``src`` cannot be read as a capture.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> start = {"event": "start", "start": {"media_format": {"encoding": "PCMU", "sample_rate": 8000}}}
    >>> media = [{"event": "media", "media": {"track": "inbound", "chunk": str(i), "payload": "gICA" * 40}}
    ...          for i in range(1, 51)]
    >>> key = {"event": "dtmf", "dtmf": {"digit": "4"}}
    >>> _ = (folder / "c.jsonl").write_text("".join(json.dumps(m) + "\\n" for m in [start, *media, key]))
    >>> done = redact_stream_log(folder / "c.jsonl", folder / "r.jsonl", spans=["0.5-0.6"])
    >>> done.lines_changed, done.streams[0].capture.summary()["dtmf"], done.streams[0].frames_replaced
    (8, '*', {'inbound': 7, 'outbound': 0})
    """
    where = os.fspath(src)
    captures = _read(src, media_format)
    lines = _read_lines(src)
    per, dtmf_lines = _frames_of(lines, [c.stream_id for c in captures])
    user = list(spans)
    changed: dict[int, bytes] = {}
    results = []
    for capture, frames in zip(captures, per):
        results.append(_redact_stream(capture, frames, lines, changed, user, dtmf, pad_s, settings, where))
    masked = 0
    for number in dtmf_lines:
        new = mask_dtmf_line(lines[number])
        if new is not None:
            changed[number] = new
            masked += 1
    if len(captures) == 1:
        results[0] = replace(results[0], dtmf_masked=masked)
    out = [changed.get(i, line) for i, line in enumerate(lines)]
    final = _write_checked(Path(src), Path(dest), out, captures, results, dtmf, settings, media_format, where)
    return LogRedaction(where, os.fspath(dest), tuple(final), len(changed))


def _read(src: str | os.PathLike[str], media_format: Any) -> list[Capture]:
    from telnyx_audio.streams.read import read_stream_captures

    captures = read_stream_captures(src, media_format=media_format)
    for c in captures:
        if c.error is not None and c.report.events.get("media", 0):
            raise RedactionError(f"stream {c.stream_id}: {c.error}", os.fspath(src))
    return captures


def _redact_stream(capture: Capture, frames: list[_Frame], lines: list[bytes], changed: dict[int, bytes],
                   user: list[Any], dtmf: bool, pad_s: float, settings: Mapping[str, float] | None,
                   where: str) -> StreamRedaction:
    rec = capture.recording
    label = f"stream {capture.stream_id}" if capture.stream_id else "the call"
    asked = check_spans(user, rec.duration_s, label=label)
    keys = sum(1 for e in capture.events if isinstance(e, Dtmf))
    events = tuple(replace(e, digit="*") if isinstance(e, Dtmf) else e for e in capture.events)
    muting = Muting.from_spans((), rec.sample_rate, rec.audio.shape[1])
    if not frames or capture.media_format is None:
        empty = {name: 0 for name in TRACKS}
        return StreamRedaction(replace(capture, events=events), tuple(asked), muting, empty, 0, keys)
    plan_, table = _placement(capture, frames, where)
    found = find_tones(rec.audio, rec.sample_rate, pad_s=pad_s, settings=settings, tracks=rec.tracks) if dtmf else []
    wanted = [*found, *asked]
    muting = Muting.from_spans(wanted, rec.sample_rate, rec.audio.shape[1])
    info = codecs.codec_info(capture.media_format.encoding)
    payloads: list[bytes | None] = [None if f.bad else f.media.payload for f in frames]
    emptied = 0
    if info.stateful:  # payloads no decoder reads: emptied (every reader treats both as a bad frame)
        for i in np.flatnonzero((plan_.samples < 0) & (table.nbytes > 0)).tolist():
            changed[frames[i].line] = _swap_payload(lines[frames[i].line], frames[i].media.payload, b"")
            payloads[i] = None
            emptied += 1
    try:
        edit = mute_frames(info.name, capture.media_format.sample_rate, payloads, table.track, plan_.dest,
                           plan_.samples, muting, counters=(table.chunk, table.timestamp, table.sequence_number))
    except (CorruptPacketError, CodecUnavailableError) as exc:
        raise RedactionError(f"{label}: cannot write silence in {info.name}: {exc}", where) from exc
    for i, payload in edit.payloads.items():
        changed[frames[i].line] = _swap_payload(lines[frames[i].line], frames[i].media.payload, payload)
    from telnyx_audio.codecs.silence import silence_sample

    audio = mute_audio(rec.audio, edit.muting, silence_sample(info.name))
    recording = Recording(audio, rec.sample_rate, rec.encoding, rec.tracks, rec.reports)
    return StreamRedaction(replace(capture, recording=recording, events=events), tuple(wanted), edit.muting,
                           edit.frames_replaced, 0, keys, emptied)


def _write_checked(src: Path, dest: Path, lines: list[bytes], originals: list[Capture],
                   results: list[StreamRedaction], dtmf: bool, settings: Mapping[str, float] | None,
                   media_format: Any, where: str) -> list[StreamRedaction]:
    """Write the copy under a temporary name, read it back and check it; then rename it."""
    from telnyx_audio.streams.read import read_stream_captures

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}{_PARTIAL}")
    zipped = _is_gzip(src)
    try:
        with open(tmp, "wb") as f:
            if zipped:
                with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as z:
                    z.writelines(lines)
            else:
                f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        try:
            again = read_stream_captures(tmp, media_format=media_format)
        except TelnyxAudioError as exc:
            raise RedactionError(f"the redacted copy does not read back: {exc}", where) from exc
        if len(again) != len(originals):
            raise RedactionError(f"the redacted copy reads as {len(again)} streams, not {len(originals)}", where)
        out = []
        for orig, back, done in zip(originals, again, results):
            _check(orig, back, done, dtmf, settings, where)
            capture = replace(done.capture, path=os.fspath(dest))
            if back.recording.audio.size and not codecs.codec_info(back.recording.encoding).stateful:
                # G.711/L16: the WAVs are the copy's own decode (a gap inside a muted stretch
                # stays as the reader fills it), the original's outside the muted stretches.
                capture = replace(capture, recording=back.recording)
            out.append(replace(done, capture=capture))
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def _check(orig: Capture, back: Capture, done: StreamRedaction, dtmf: bool, settings: Mapping[str, float] | None,
           where: str) -> None:
    label = f"stream {orig.stream_id}" if orig.stream_id else "the call"
    a, b = orig.recording.audio, back.recording.audio
    if a.shape != b.shape:
        raise RedactionError(f"{label}: the redacted copy is {b.shape[1]} samples long, the original"
                             f" {a.shape[1]}", where)
    info = codecs.codec_info(orig.media_format.encoding) if orig.media_format and a.size else None
    first = done.muting.first_difference(a, b) if info is not None and not info.stateful else None
    if first is not None:
        raise RedactionError(f"{label}: the redacted copy differs from the original outside the muted"
                             f" stretches (first at {first / orig.recording.sample_rate:.3f} s)", where)
    if dtmf and b.size:
        left = find_tones(b, back.recording.sample_rate, pad_s=0.0, settings=settings, tracks=back.recording.tracks)
        if left:
            raise RedactionError(f"{label}: a DTMF tone is still heard at {left[0].start_s:.2f} s after muting", where)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"
