"""Redacting RTP: new datagrams whose muted stretches decode to silence and whose RFC 4733
events are masked. Shared by fork captures and packet captures (both hand over ``Records``).

:func:`redact_records` places every packet as :func:`~telnyx_audio.rtp.assemble.assemble_fork`
does, finds the stretches to mute (tones in the audio, RFC 4733 key events, the caller's
spans; see :mod:`telnyx_audio.model.redact`), and rewrites only payloads:

- audio packets that meet a muted stretch: G.711/L16 samples replaced by the codec's
  silence, G.722/OPUS/AMR-WB packets replaced whole by silence of the same duration; a
  repeated packet (same SSRC and sequence number) with the packet it repeats;
- RFC 4733 telephone-event packets: each event's code becomes 10 (``*``), its end bit,
  volume and duration kept, so the call still shows a key pressed and for how long; and
  the audio around each event is muted too (senders may keep the tone in the audio);
- packets of a payload type that cannot be decoded as the call's audio (another codec,
  an unknown dynamic type): their payload is emptied, since no check can hear what is in it.

RTP headers (sequence numbers, timestamps, SSRC, marker), padding, arrival times and tracks
are kept, so the call's timeline is the same. Datagrams that are not RTP at all are kept
as they are (they carry no audio stream).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

import numpy as np

from telnyx_audio.errors import CodecUnavailableError, CorruptPacketError, RedactionError
from telnyx_audio.model.capture import Capture
from telnyx_audio.model.events import Dtmf
from telnyx_audio.model.recording import Recording
from telnyx_audio.model.redact import (
    DEFAULT_PAD_S,
    MASK,
    Muting,
    Span,
    check_spans,
    find_tones,
    mute_audio,
    mute_frames,
)
from telnyx_audio.rtp.assemble import capture_from_records
from telnyx_audio.rtp.datagrams import Records
from telnyx_audio.rtp.packet import DTMF_EVENTS

__all__ = ["RecordsRedaction", "redact_records", "mask_telephone_event", "check_redacted"]

_STAR = DTMF_EVENTS.index(MASK)  # 10


def mask_telephone_event(payload: bytes) -> bytes:
    """An RFC 4733 payload with every DTMF event code (0-15) written as 10 (``*``).

    Examples
    --------
    >>> mask_telephone_event(bytes([5, 0x8A, 0x03, 0x20])).hex()
    '0a8a0320'
    """
    data = bytearray(payload)
    for i in range(0, len(data) - len(data) % 4, 4):
        if data[i] < 16:
            data[i] = _STAR
    return bytes(data)


@dataclass(frozen=True)
class RecordsRedaction:
    """The redacted datagrams of a call and what was done.

    Attributes
    ----------
    datagrams : list of bytes
        One per record, in order (the unchanged ones as they were).
    capture : Capture
        The redacted call: audio with the muted ranges silent, DTMF events masked.
    spans : tuple of Span
        Tones found, RFC 4733 events, the caller's spans.
    muting : Muting
        The ranges muted, as applied.
    packets_replaced : dict of str to int
        Audio packets whose payload changed, per track.
    event_packets_masked : int
        Telephone-event packets whose codes were masked.
    events_masked : int
        Key events (one per RFC 4733 event, not per packet) masked.
    keys : int
        Key events in the call.
    emptied : int
        Packets of a type that is not the call's audio, emptied.
    original : np.ndarray of int16, shape (2, n)
        The call's audio before redaction (for the check; not for keeping).
    """

    datagrams: list[bytes]
    capture: Capture
    spans: tuple[Span, ...]
    muting: Muting
    packets_replaced: dict[str, int]
    event_packets_masked: int
    events_masked: int
    keys: int
    emptied: int
    original: np.ndarray | None = None


def _datagram(records: Records, i: int) -> bytes:
    o, n = int(records.offset[i]), int(records.length[i])
    return records.buf[o : o + n].tobytes()


def _with_payload(records: Records, cols: Any, i: int, payload: bytes) -> bytes:
    """Record ``i``'s datagram with its payload (between header and padding) replaced."""
    whole = _datagram(records, i)
    head = int(cols.payload_offset[i] - records.offset[i])
    tail = head + int(cols.payload_length[i])
    return whole[:head] + payload + whole[tail:]


def redact_records(
    records: Records,
    *,
    path: str | os.PathLike[str],
    dtmf: bool = True,
    spans: Iterable[Any] = (),
    pad_s: float = DEFAULT_PAD_S,
    settings: Mapping[str, float] | None = None,
    media_format: Any = None,
    payload_types: Any = None,
) -> RecordsRedaction:
    """Redact a call's datagrams: see the module's docstring.

    Parameters
    ----------
    records : Records
        The datagrams with their tracks and arrival times.
    path : str or PathLike
        Where they came from (errors name it).
    dtmf : bool
        Mute tones found in the audio and around RFC 4733 events (``pad_s`` either side,
        both tracks), and mask the events.
    spans : iterable
        More stretches to mute (see :func:`telnyx_audio.model.redact.as_span`).
    pad_s : float
    settings : dict, optional
        Detector keywords.
    media_format, payload_types
        As for :func:`~telnyx_audio.rtp.assemble.capture_from_records`.

    Returns
    -------
    RecordsRedaction

    Raises
    ------
    ValueError
        A span outside the call, reversed, negative, or on an unknown track.
    RedactionError
        The call's audio cannot be decoded, or a packet's silence cannot be written.
    """
    where = os.fspath(path)
    layout: dict[str, Any] = {}
    capture = capture_from_records(records, path=path, media_format=media_format, payload_types=payload_types,
                                   layout=layout)
    if capture.error is not None:
        raise RedactionError(f"the call's audio cannot be decoded: {capture.error}", where)
    rec = capture.recording
    asked = check_spans(spans, rec.duration_s)
    wanted: list[Span] = []
    if dtmf:
        wanted += find_tones(rec.audio, rec.sample_rate, pad_s=pad_s, settings=settings, tracks=rec.tracks)
        for d in layout["digits"]:  # the sender may keep the tone in its audio while the event runs
            wanted.append(Span(max(d.start_s - pad_s, 0.0), min(d.start_s + d.duration_s + pad_s, rec.duration_s),
                               None, "dtmf", {"found_on": d.track, "rfc4733": True, "event_start_s": round(d.start_s, 4),
                                              "event_end_s": round(d.start_s + d.duration_s, 4), "digit": MASK}))
        wanted.sort(key=lambda s: (s.start_s, s.end_s))
    wanted += asked
    cols, kind, placed = layout["cols"], layout["kind"], layout["placed"]
    main, rate = layout["main"], layout["rate"]
    muting = Muting.from_spans(wanted, rate, rec.audio.shape[1])
    # Every audio packet (placed or a repeat) with its track, place and length.
    rows_l, track_l, pos_l, samples_l = [], [], [], []
    for t, p in placed.items():
        a = p["kind"] == 1
        rows_l.append(p["rows"][a])
        track_l.append(np.full(int(a.sum()), t, np.int8))
        pos_l.append(p["pos"][a])
        samples_l.append(np.maximum(layout["samples_of"][t], 0))
    placed_rows = np.concatenate(rows_l) if rows_l else np.empty(0, np.int64)
    audio_rows = np.flatnonzero(kind == 1)
    repeats = np.setdiff1d(audio_rows, placed_rows)  # same SSRC and sequence number as a placed one
    all_rows = np.concatenate([placed_rows, repeats])
    track = np.concatenate([*track_l, records.track[repeats].astype(np.int8)])
    dest = np.concatenate([*pos_l, np.full(repeats.size, -1, np.int64)])
    samples = np.concatenate([*samples_l, np.zeros(repeats.size, np.int64)])
    key = cols.ssrc[all_rows] * 65536 + cols.sequence_number[all_rows]
    payloads = [records.buf[o : o + n].tobytes() for o, n in zip(cols.payload_offset[all_rows].tolist(),
                                                                  cols.payload_length[all_rows].tolist())]
    if repeats.size:  # a repeat takes its original's place and length
        lookup = {(int(t), int(k)): (int(d), int(s)) for t, k, d, s in
                  zip(track[: placed_rows.size], key[: placed_rows.size], dest[: placed_rows.size],
                      samples[: placed_rows.size])}
        for j in range(placed_rows.size, all_rows.size):
            dest[j], samples[j] = lookup.get((int(track[j]), int(key[j])), (-1, 0))
    try:
        edit = mute_frames(main.encoding, rate, payloads, track, dest, samples, muting)
    except (CorruptPacketError, CodecUnavailableError) as exc:
        raise RedactionError(f"cannot write silence in {main.encoding}: {exc}", where) from exc
    out = [_datagram(records, i) for i in range(len(records))]
    for j, payload in edit.payloads.items():
        i = int(all_rows[j])
        out[i] = _with_payload(records, cols, i, payload)
    masked_packets = 0
    if dtmf:
        for i in np.flatnonzero(kind == 3).tolist():
            body = records.buf[int(cols.payload_offset[i]) : int(cols.payload_offset[i] + cols.payload_length[i])]
            new = mask_telephone_event(body.tobytes())
            if new != body.tobytes():
                out[i] = _with_payload(records, cols, i, new)
                masked_packets += 1
    emptied = 0
    for i in np.flatnonzero((cols.reason == 0) & (kind == 0) & (cols.payload_length > 0)).tolist():
        out[i] = _with_payload(records, cols, i, b"")
        emptied += 1
    from telnyx_audio.codecs.silence import silence_sample

    audio = mute_audio(rec.audio, edit.muting, silence_sample(main.encoding))
    keys = sum(1 for e in capture.events if isinstance(e, Dtmf))
    changed_keys = sum(1 for e in capture.events if isinstance(e, Dtmf) and e.digit != MASK)
    events = tuple(replace(e, digit=MASK) if isinstance(e, Dtmf) and dtmf else e for e in capture.events)
    report = capture.report
    if dtmf and hasattr(report, "dtmf_events"):
        report = replace(report, dtmf_events=tuple(replace(d, digit=MASK) for d in report.dtmf_events))
    redacted = replace(capture, recording=Recording(audio, rec.sample_rate, rec.encoding, rec.tracks, rec.reports),
                       events=events, report=report)
    return RecordsRedaction(out, redacted, tuple(wanted), edit.muting, edit.frames_replaced, masked_packets,
                            changed_keys if dtmf else 0, keys, emptied, rec.audio)


def check_redacted(done: RecordsRedaction, back: Capture, *, dtmf: bool, settings: Mapping[str, float] | None,
                   path: str) -> None:
    """Check a redacted call read back: same length, the original's audio outside the muted
    ranges (stateless codecs), no tone left, every key masked. Raises :class:`RedactionError`."""
    from telnyx_audio.codecs import codec_info

    if back.error is not None:
        raise RedactionError(f"the redacted copy does not decode: {back.error}", path)
    a, b = done.original, back.recording.audio
    if a.shape != b.shape:
        raise RedactionError(f"the redacted copy is {b.shape[1]} samples long, the original {a.shape[1]}", path)
    info = codec_info(back.recording.encoding)
    first = None if info.stateful else done.muting.first_difference(a, b)
    if first is not None:
        raise RedactionError(f"the redacted copy differs from the original outside the muted stretches (first at"
                             f" {first / back.recording.sample_rate:.3f} s)", path)
    if dtmf:
        left = find_tones(b, back.recording.sample_rate, pad_s=0.0, settings=settings, tracks=back.recording.tracks)
        if left:
            raise RedactionError(f"a DTMF tone is still heard at {left[0].start_s:.2f} s after muting", path)
        clear = [e.digit for e in back.events if isinstance(e, Dtmf) and e.digit != MASK]
        if clear:
            raise RedactionError(f"{len(clear)} key events are still readable after masking", path)

