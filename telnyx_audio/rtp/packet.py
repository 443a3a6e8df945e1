"""RTP packets (RFC 3550) as ``fork_start`` and SIP endpoints send them: sans-I/O, bytes in, typed records out.

Nothing here touches a socket or a clock. :func:`parse_packet` turns one datagram into an
:class:`RtpPacket` or a :class:`MalformedPacket` (a reason, never an exception);
:func:`parse_packets` does the same for many datagrams lying in one buffer, as numpy columns
(the fork-capture reader's fast path). Around them: the payload-type map (static types of
RFC 3551 and the user's ``96=OPUS/48000``), RFC 4733 telephone events, RFC 3389 comfort
noise, sequence/timestamp extension past their wrap, and the interarrival jitter of
RFC 3550 section 6.4.1.

The header, for reference (RFC 3550 section 5.1)::

     0                   1                   2                   3
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    |                           timestamp                           |
    |           synchronization source (SSRC) identifier            |
    |            contributing source (CSRC) identifiers (CC)        |
    | extension: profile (16) | length in 32-bit words (16) | data  |   if X
    | payload ...                                 | padding | count |   if P
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Mapping

import numpy as np

__all__ = [
    "RtpPacket",
    "MalformedPacket",
    "PayloadType",
    "TelephoneEvent",
    "STATIC_PAYLOAD_TYPES",
    "DTMF_EVENTS",
    "parse_packet",
    "parse_packets",
    "PacketColumns",
    "build_packet",
    "parse_payload_type",
    "payload_type_map",
    "parse_telephone_event",
    "looks_like_telephone_event",
    "comfort_noise_level",
    "extend_sequence",
    "validate_sequence",
    "extend_timestamp",
    "interarrival_jitter",
]

_HEADER = struct.Struct("!BBHII")

#: Reason codes of :func:`parse_packets` (0 = a good packet), and their text.
REASONS: tuple[str, ...] = (
    "",
    "shorter than the 12-byte RTP header",
    "RTP version is not 2",
    "CSRC list runs past the end of the datagram",
    "header extension runs past the end of the datagram",
    "padding count is zero or longer than the payload",
    "RTCP packet (payload type 72-79 with marker, RFC 5761), not RTP media",
)


@dataclass(frozen=True)
class PayloadType:
    """What a payload type number means: an encoding (Telnyx's name, or ``"CN"`` /
    ``"telephone-event"``) and its RTP clock in Hz.

    Attributes
    ----------
    encoding : str
        Telnyx's codec name, ``"CN"`` or ``"telephone-event"``.
    clock_rate : int
        The RTP clock in Hz.
    channels : int
        1 (mono): what telephony sends.
    """

    encoding: str
    clock_rate: int
    channels: int = 1

    def __str__(self) -> str:
        return f"{self.encoding}/{self.clock_rate}" + (f"/{self.channels}" if self.channels != 1 else "")


#: RFC 3551 table 4 types a Telnyx call can carry. G.722's RTP clock is 8000 although its
#: audio is 16 kHz (RFC 3551 section 4.5.2).
STATIC_PAYLOAD_TYPES: dict[int, PayloadType] = {
    0: PayloadType("PCMU", 8000),
    8: PayloadType("PCMA", 8000),
    9: PayloadType("G722", 8000),
    11: PayloadType("L16", 44100),
    13: PayloadType("CN", 8000),
}

#: RFC 4733 section 3.2 event codes 0-16 as DTMF characters (16 is a hook flash).
DTMF_EVENTS = "0123456789*#ABCDF"


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet (RFC 3550 section 5.1), padding stripped, header extension skipped.

    Attributes
    ----------
    payload_type, sequence_number, timestamp, ssrc : int
        As on the wire (16-bit sequence, 32-bit timestamp; see :func:`extend_sequence`).
    marker : bool
    csrcs : tuple of int
    extension_profile : int or None
        ``0xBEDE`` for the RFC 8285 one-byte form, ``0x100x`` for the two-byte form, None
        without an extension.
    padding : int
        Bytes of padding that were stripped.
    payload : bytes
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension_profile: int | None = None
    padding: int = 0
    payload: bytes = b""
    version: int = 2


@dataclass(frozen=True)
class MalformedPacket:
    """A datagram that is not a usable RTP packet: why, and its bytes.

    Attributes
    ----------
    reason : str
        Why it is not usable.
    data : bytes
        The datagram as received.
    """

    reason: str
    data: bytes


@dataclass(frozen=True)
class PacketColumns:
    """Many parsed datagrams as columns (from :func:`parse_packets`), one row each.

    ``reason`` is 0 for a good packet, else an index into :data:`REASONS`; the other
    columns of a bad row are meaningless. ``payload_offset``/``payload_length`` locate the
    payload (padding stripped) in the buffer that was parsed.

    Attributes
    ----------
    reason : np.ndarray of uint8
        0 for a good packet, else an index into :data:`REASONS`.
    payload_type, marker : np.ndarray of int16, bool
        The header fields.
    sequence_number, timestamp : np.ndarray of uint16, uint32
        As on the wire (narrow: extend them, :func:`extend_sequence` and
        :func:`extend_timestamp`, before any arithmetic).
    ssrc : np.ndarray of int64
        The 32-bit SSRC.
    payload_offset : np.ndarray of int64
        Where each payload is in the parsed buffer.
    payload_length : np.ndarray of int32
        Its length in bytes (padding stripped).
    """

    reason: np.ndarray  # uint8
    payload_type: np.ndarray  # int16
    marker: np.ndarray  # bool
    sequence_number: np.ndarray  # uint16
    timestamp: np.ndarray  # uint32 (extend with extend_timestamp before any arithmetic)
    ssrc: np.ndarray  # int64 (32-bit values)
    payload_offset: np.ndarray  # int64
    payload_length: np.ndarray  # int32

    def __len__(self) -> int:
        return int(self.reason.size)


def parse_packet(data: bytes | bytearray | memoryview) -> RtpPacket | MalformedPacket:
    """Parse one datagram as an RTP packet.

    Parameters
    ----------
    data : bytes
        One UDP datagram.

    Returns
    -------
    RtpPacket or MalformedPacket
        Never raises for bad data: the reason is in the record.

    Examples
    --------
    >>> p = parse_packet(bytes.fromhex("80 00 0001 000000a0 12345678") + b"\\xff" * 4)
    >>> p.payload_type, p.sequence_number, p.timestamp, hex(p.ssrc), p.payload
    (0, 1, 160, '0x12345678', b'\\xff\\xff\\xff\\xff')
    >>> parse_packet(b"\\x80\\x00").reason
    'shorter than the 12-byte RTP header'
    """
    data = bytes(data)
    cols = parse_packets(np.frombuffer(data, np.uint8), np.zeros(1, np.int64), np.array([len(data)], np.int64))
    code = int(cols.reason[0])
    if code:
        return MalformedPacket(REASONS[code], data)
    b0 = data[0]
    cc = b0 & 0x0F
    csrcs = struct.unpack_from(f"!{cc}I", data, 12) if cc else ()
    profile = struct.unpack_from("!H", data, 12 + 4 * cc)[0] if b0 & 0x10 else None
    start, length = int(cols.payload_offset[0]), int(cols.payload_length[0])
    return RtpPacket(
        payload_type=int(cols.payload_type[0]),
        sequence_number=int(cols.sequence_number[0]),
        timestamp=int(cols.timestamp[0]),
        ssrc=int(cols.ssrc[0]),
        marker=bool(cols.marker[0]),
        csrcs=tuple(csrcs),
        extension_profile=profile,
        padding=data[-1] if b0 & 0x20 else 0,
        payload=data[start : start + length],
    )


def _be(buf: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    """Big-endian unsigned integers of ``n`` (2 or 4) bytes at each offset (offsets valid):
    one gather of rows from a sliding window, then a byte-order view."""
    rows = np.lib.stride_tricks.sliding_window_view(buf, n)[at]
    return rows.view(f">u{n}").reshape(-1).astype(np.int64)


def parse_packets(buf: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> PacketColumns:
    """Parse many datagrams lying in one buffer at once (whole-column numpy, no per-packet loop).

    Parameters
    ----------
    buf : np.ndarray of uint8
        The bytes holding every datagram.
    offsets, lengths : np.ndarray of int64, shape (m,)
        Where each datagram starts in ``buf`` and its size.

    Returns
    -------
    PacketColumns
        One row per datagram; ``reason`` says which are malformed.

    Examples
    --------
    >>> raw = np.frombuffer(bytes.fromhex("80 08 ffff 00000001 00000002 d5d5") + b"\\x90", np.uint8)
    >>> cols = parse_packets(raw, np.array([0, 14]), np.array([14, 1]))
    >>> cols.reason.tolist(), cols.payload_type[:1].tolist(), cols.sequence_number[:1].tolist()
    ([0, 1], [8], [65535])
    """
    offsets = np.asarray(offsets, np.int64)
    lengths = np.asarray(lengths, np.int64)
    m = offsets.size
    reason = np.zeros(m, np.uint8)
    reason[lengths < 12] = 1
    ok = reason == 0
    # Read every header from a clamped offset so bad rows cannot index out of range.
    base = np.where(ok, offsets, 0)
    if buf.size < 12:
        base = np.zeros(m, np.int64)
        buf = np.concatenate((buf, np.zeros(12, np.uint8)))
    # The 12 fixed header bytes of every packet in one gather, read as fields of one record.
    head = _headers(buf, base).view(_FIXED).reshape(-1)
    b0 = head["b0"]
    b1 = head["b1"]
    reason[ok & (b0 >> 6 != 2)] = 2
    pt = (b1 & 0x7F).astype(np.int16)
    marker = (b1 & 0x80) != 0
    reason[(reason == 0) & marker & (pt >= 72) & (pt <= 79)] = 6
    header = 12 + 4 * (b0 & 0x0F).astype(np.int64)
    reason[(reason == 0) & (header > lengths)] = 3
    ext = (reason == 0) & ((b0 & 0x10) != 0)
    bad_ext = ext & (header + 4 > lengths)
    reason[bad_ext] = 4
    ext &= ~bad_ext
    if ext.any():
        at = base[ext] + header[ext]
        words = _be(buf, at + 2, 2)
        header[ext] += 4 + 4 * words
        reason[ext & (header > lengths)] = 4
    ok = reason == 0
    padded = ok & ((b0 & 0x20) != 0)
    length = lengths - header
    if padded.any():
        pad = np.zeros(m, np.int64)
        pad[padded] = buf[base[padded] + lengths[padded] - 1]
        reason[padded & ((pad == 0) | (header + pad > lengths))] = 5
        ok = reason == 0
        pad[~ok] = 0
        length -= pad
        del pad
    if not ok.all():
        header[~ok] = 0
        length[~ok] = 0
    return PacketColumns(
        reason=reason,
        payload_type=pt,
        marker=marker,
        sequence_number=head["seq"].astype(np.uint16),
        timestamp=head["ts"].astype(np.uint32),
        ssrc=head["ssrc"].astype(np.int64),
        payload_offset=np.where(ok, base + header, 0),
        payload_length=length.astype(np.int32),
    )


#: The fixed RTP header as one record: first two bytes, sequence number, timestamp, SSRC.
_FIXED = np.dtype([("b0", "u1"), ("b1", "u1"), ("seq", ">u2"), ("ts", ">u4"), ("ssrc", ">u4")])


def _headers(buf: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The 12 bytes at each offset of ``base`` (offsets valid) as a contiguous (m, 12) array: a
    strided view when the offsets are equally spaced (packets of one size back to back),
    else one gather."""
    m = base.size
    if m > 1:
        step = int(base[1] - base[0])
        if step >= 12 and int(base[-1] - base[0]) == step * (m - 1) and (np.diff(base) == step).all():
            return np.lib.stride_tricks.as_strided(buf[int(base[0]):], shape=(m, 12), strides=(step, 1),
                                                   writeable=False).copy()
    return np.lib.stride_tricks.sliding_window_view(buf, 12)[base]


def build_packet(
    payload: bytes,
    *,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: tuple[int, bytes] | None = None,
    padding: int = 0,
) -> bytes:
    """The bytes of one RTP packet (for the simulator and tests).

    Parameters
    ----------
    payload : bytes
        The codec bytes.
    payload_type, sequence_number, timestamp, ssrc : int
        The header fields.
    marker : bool
        The marker bit.
    csrcs : tuple of int
        Contributing sources, listed after the header.
    extension : (profile, data), optional
        A header extension; ``data`` is padded to a multiple of 4 bytes.
    padding : int
        Padding bytes to append (0-255; the last one holds the count).

    Returns
    -------
    bytes
        The packet.

    Examples
    --------
    >>> build_packet(b"\\xff", payload_type=0, sequence_number=7, timestamp=160, ssrc=1).hex()
    '80000007000000a000000001ff'
    """
    if not 0 <= padding <= 255:
        raise ValueError(f"padding must be 0-255 bytes, got {padding}")
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if extension else 0) | len(csrcs)
    head = _HEADER.pack(b0, (0x80 if marker else 0) | payload_type, sequence_number & 0xFFFF,
                        timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)
    head += b"".join(struct.pack("!I", c) for c in csrcs)
    if extension:
        profile, data = extension
        data = data + b"\0" * (-len(data) % 4)
        head += struct.pack("!HH", profile, len(data) // 4) + data
    tail = (b"\0" * (padding - 1) + bytes([padding])) if padding else b""
    return head + payload + tail


def parse_payload_type(spec: str) -> tuple[int, PayloadType]:
    """Read a user's payload-type mapping, ``PT=ENCODING/CLOCK[/CHANNELS]``.

    ``ENCODING`` is any name :func:`telnyx_audio.codecs.normalize_encoding` accepts, or
    ``telephone-event`` / ``CN``. The clock may be left out for codecs that fix it; a codec
    that fixes it (PCMU, PCMA, G.722, OPUS, AMR-WB) takes no other, any other clock is
    within :data:`CLOCK_RANGE`, and a static type number (0 PCMU...) keeps its meaning.

    Parameters
    ----------
    spec : str
        ``PT=ENCODING/CLOCK[/CHANNELS]``, as the command line's ``--payload-type`` takes it
        (``96=OPUS/48000``; ``audio/`` before the name is allowed); only mono.

    Returns
    -------
    (int, PayloadType)
        The payload type number (0-127) and what it carries.

    Raises
    ------
    ValueError
        Naming the bad spec and the expected form.

    Examples
    --------
    >>> parse_payload_type("96=OPUS/48000")
    (96, PayloadType(encoding='OPUS', clock_rate=48000, channels=1))
    >>> parse_payload_type("101=telephone-event/8000")[1].encoding
    'telephone-event'
    """
    from telnyx_audio.codecs import REGISTRY, normalize_encoding

    number, sep, rest = str(spec).partition("=")
    rest = rest.strip()
    if rest.lower().startswith("audio/"):  # a MIME name: audio/AMR-WB/16000
        rest = rest[len("audio/"):]
    parts = rest.split("/")
    try:
        pt = int(number)
    except ValueError:
        pt = -1
    if not sep or not 0 <= pt <= 127 or not parts[0] or len(parts) > 3:
        raise ValueError(f"payload type must look like PT=ENCODING/CLOCK (e.g. 96=OPUS/48000), got {spec!r}")
    name = parts[0].strip()
    if name.lower() in ("telephone-event", "cn"):
        encoding = "telephone-event" if name.lower() != "cn" else "CN"
        default = 8000
    else:
        encoding = normalize_encoding(name)
        info = REGISTRY[encoding]
        default = info.rtp_clock or info.audio_rate or (16000 if encoding == "L16" else 0)
    try:
        clock = int(parts[1]) if len(parts) > 1 else default
        channels = int(parts[2]) if len(parts) > 2 else 1
    except ValueError:
        clock = channels = 0
    if clock <= 0 or channels != 1:
        raise ValueError(f"payload type {spec!r}: expected a positive clock rate and mono audio (e.g. 96=OPUS/48000)")
    fixed = (REGISTRY[encoding].rtp_clock or REGISTRY[encoding].audio_rate) if encoding in REGISTRY else None
    if fixed and clock != fixed:
        raise ValueError(f"payload type {spec!r}: {encoding}'s RTP clock is {fixed} Hz, got {clock}")
    if not CLOCK_RANGE[0] <= clock <= CLOCK_RANGE[1]:
        raise ValueError(f"payload type {spec!r}: expected a clock rate of {CLOCK_RANGE[0]} to {CLOCK_RANGE[1]} Hz,"
                         f" got {clock}")
    static = STATIC_PAYLOAD_TYPES.get(pt)
    if static is not None and static != PayloadType(encoding, clock):
        raise ValueError(f"payload type {spec!r}: {pt} is a static type ({static.encoding}/{static.clock_rate}),"
                         " it keeps its meaning")
    return pt, PayloadType(encoding, clock)


#: The RTP clocks a mapped payload type may have (Hz): what telephony codecs use.
CLOCK_RANGE = (8000, 48000)


def payload_type_map(specs: Mapping[int, PayloadType] | list[str] | tuple[str, ...] | None = None) -> dict[int, PayloadType]:
    """The static types with the user's dynamic ones over them.

    Parameters
    ----------
    specs : mapping of int to PayloadType or str, or list of str, optional
        The user's types: ``{96: PayloadType("OPUS", 48000)}``, ``{96: "OPUS/48000"}``, or
        specs as :func:`parse_payload_type` reads them; None for the static types alone.

    Returns
    -------
    dict of int to PayloadType
        Every static type (RFC 3551's, 0 PCMU, 8 PCMA, 9 G722...) and the user's, which win.

    Raises
    ------
    ValueError
        If a spec is malformed (see :func:`parse_payload_type`).

    Examples
    --------
    >>> m = payload_type_map(["96=OPUS/48000"])
    >>> m[0].encoding, m[96].clock_rate
    ('PCMU', 48000)
    """
    out = dict(STATIC_PAYLOAD_TYPES)
    if specs is None:
        return out
    if isinstance(specs, Mapping):
        out.update({int(k): v if isinstance(v, PayloadType) else parse_payload_type(f"{k}={v}")[1]
                    for k, v in specs.items()})
    else:
        out.update(parse_payload_type(s) for s in specs)
    return out


@dataclass(frozen=True)
class TelephoneEvent:
    """One RFC 4733 named-event payload (section 2.3): event code, end bit, volume, duration.

    ``duration`` is in RTP clock units from the packet's timestamp (the event's start).

    Attributes
    ----------
    event : int
        The event code (0-9, 10 ``*``, 11 ``#``, 12-15 ``A``-``D``, 16 flash).
    end : bool
        The end bit: the last packets of an event set it.
    volume : int
        The power level in -dBm0 (0-63).
    duration : int
        How long the event has lasted so far, in RTP clock units.
    """

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str:
        """The DTMF character (``"0"``-``"9"``, ``"*"``, ``"#"``, ``"A"``-``"D"``, ``"F"``
        for flash), or ``"?"`` for a non-DTMF event.
        """
        return DTMF_EVENTS[self.event] if self.event < len(DTMF_EVENTS) else "?"


def parse_telephone_event(payload: bytes) -> TelephoneEvent | None:
    """Read an RFC 4733 event payload; None when it is not one (not 4 bytes, reserved bit set).

    Parameters
    ----------
    payload : bytes
        The payload of a telephone-event packet.

    Returns
    -------
    TelephoneEvent or None
        The event, or ``None`` when the payload does not have its shape.

    Examples
    --------
    >>> e = parse_telephone_event(bytes([5, 0x80 | 10, 0x03, 0x20]))
    >>> e.digit, e.end, e.volume, e.duration
    ('5', True, 10, 800)
    """
    if len(payload) < 4 or len(payload) % 4 or payload[1] & 0x40:
        return None
    return TelephoneEvent(payload[0], bool(payload[1] & 0x80), payload[1] & 0x3F, (payload[2] << 8) | payload[3])


def looks_like_telephone_event(payloads: np.ndarray, lengths: np.ndarray) -> bool:
    """Whether a dynamic payload type's packets have the shape of RFC 4733 DTMF events.

    Used when no map names the type: every payload is 4 bytes, every event code is a DTMF
    code (0-16), the reserved bit is clear and the volume is 0-63 (its 6 bits). Audio codecs
    do not keep that up over more than a couple of packets.

    Parameters
    ----------
    payloads : np.ndarray of uint8, shape (m, 4) or more columns
        The first 4 payload bytes of each packet.
    lengths : np.ndarray of int64, shape (m,)
        Each payload's length in bytes.

    Returns
    -------
    bool
        True when every packet has that shape (and there is at least one).

    Examples
    --------
    >>> looks_like_telephone_event(np.array([[1, 10, 0, 160], [1, 138, 3, 32]], np.uint8), np.array([4, 4]))
    True
    >>> looks_like_telephone_event(np.array([[255, 127, 0, 1]], np.uint8), np.array([4]))
    False
    """
    if lengths.size == 0 or (lengths != 4).any():
        return False
    return bool((payloads[:, 0] <= 16).all() and not (payloads[:, 1] & 0x40).any())


def comfort_noise_level(payload: bytes) -> int | None:
    """The noise level of an RFC 3389 comfort-noise payload in -dBov (0-127), None if empty.

    Parameters
    ----------
    payload : bytes
        The payload of a comfort-noise packet.

    Returns
    -------
    int or None
        Its first byte, the level; ``None`` for an empty payload.

    Examples
    --------
    >>> comfort_noise_level(bytes([60, 1, 2]))
    60
    """
    return (payload[0] & 0x7F) if payload else None


def _unwrap(values: np.ndarray, bits: int) -> np.ndarray:
    values = np.asarray(values)
    wire, signed = (np.uint16, np.int16) if bits == 16 else (np.uint32, np.int32)
    if values.dtype == wire and values.size:  # as parsed: the wrapped difference, read signed, is the step
        step = np.diff(values).view(signed)
    else:
        values = np.asarray(values, np.int64)
        if values.size == 0:
            return values.copy()
        half, full = 1 << (bits - 1), 1 << bits
        step = (np.diff(values) + half) % full - half
    out = np.empty(values.size, np.int64)
    out[0] = values[0]
    np.cumsum(step, out=out[1:], dtype=np.int64)
    out[1:] += int(values[0])
    return out


def extend_sequence(seq: np.ndarray) -> np.ndarray:
    """Extend 16-bit sequence numbers past 65535 (in arrival order, RFC 3550 appendix A.1).

    Each number is taken as the nearest value to the previous one modulo 2^16, so a packet
    reordered across the wrap still lands on the right side of it.

    Parameters
    ----------
    seq : np.ndarray of int
        Sequence numbers (0-65535) in arrival order.

    Returns
    -------
    np.ndarray of int64
        The extended numbers, the first one unchanged.

    Examples
    --------
    >>> extend_sequence(np.array([65534, 65535, 1, 0, 2])).tolist()
    [65534, 65535, 65537, 65536, 65538]
    """
    return _unwrap(seq, 16)


MAX_DROPOUT = 3000  # RFC 3550 appendix A.1: the largest forward step taken as loss
MAX_MISORDER = 100  # and the largest backward step taken as a late packet


def validate_sequence(seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Extend one SSRC's sequence numbers (arrival order) and mark the ones to refuse.

    RFC 3550 appendix A.1: a step forward of less than ``MAX_DROPOUT`` is loss, a step back
    of less than ``MAX_MISORDER`` (from the highest number so far) a late or repeated
    packet; any other number is a stray packet, unless the next number after it follows
    (two consecutive packets: the sender restarted its numbering there). Unlike A.1 that
    first packet of a restart is kept, and numbering continues right after the highest
    number before the restart, so a restart is no loss. A numbering that only one packet
    ever had (A.1's probation, the call's first packet included) is refused too, unless it
    is the only one. Vectorised when no step is out of bounds (the usual case); otherwise
    the A.1 state machine runs as a loop, as its per-packet state cannot be vectorised.

    Parameters
    ----------
    seq : np.ndarray of int, shape (m,)
        16-bit sequence numbers in arrival order.

    Returns
    -------
    extended : np.ndarray of int64, shape (m,)
        Extended numbers (meaningful where ``valid``), ordered across wraps and restarts.
    valid : np.ndarray of bool, shape (m,)
        False for the stray packets, to be dropped.

    Examples
    --------
    >>> ext, ok = validate_sequence(np.array([10, 11, 30011, 12, 13]))
    >>> ext[ok].tolist(), (~ok).sum().item()
    ([10, 11, 12, 13], 1)
    >>> ext, ok = validate_sequence(np.array([10, 11, 30000, 30001, 30002]))  # a restart
    >>> ext[ok].tolist(), (~ok).sum().item()
    ([10, 11, 12, 13, 14], 0)
    """
    ext = _unwrap(seq, 16)
    valid = np.ones(ext.size, bool)
    if ext.size < 2:
        return ext, valid
    step = ext[1:] - np.maximum.accumulate(ext)[:-1]
    if ((step < MAX_DROPOUT) & (step > -MAX_MISORDER)).all():
        return ext, valid
    s = np.asarray(seq, np.int64).tolist()
    epoch = np.zeros(ext.size, np.int64)
    max_seq, base, bad_seq, bad_at, n_epochs = s[0], s[0] - int(ext[0]), -1, -1, 1  # ext = x + cycles - base
    cycles = 0
    for i in range(1, len(s)):
        x = s[i]
        udelta = (x - max_seq) & 0xFFFF
        if udelta < MAX_DROPOUT:  # in order, with a permissible gap
            if x < max_seq:
                cycles += 1 << 16
            max_seq = x
            ext[i] = x + cycles - base
        elif udelta <= (1 << 16) - MAX_MISORDER:  # a very large jump
            if x == bad_seq:  # the packet after the jump followed it: a restart
                top = max_seq + cycles - base
                ext[bad_at], valid[bad_at], epoch[bad_at] = top + 1, True, n_epochs
                max_seq, cycles, base = x, 0, x - (top + 2)
                ext[i] = top + 2
                n_epochs += 1
            else:
                bad_seq, bad_at = (x + 1) & 0xFFFF, i
                valid[i] = False
                continue
        else:  # a repeated or late packet
            ext[i] = max_seq + cycles - base + udelta - (1 << 16)
        epoch[i] = n_epochs - 1
    if n_epochs > 1:
        once = np.bincount(epoch[valid], minlength=n_epochs) < 2
        valid &= ~once[epoch]
    return ext, valid


def extend_timestamp(ts: np.ndarray) -> np.ndarray:
    """Extend 32-bit RTP timestamps past 2^32, as :func:`extend_sequence` does sequence numbers.

    Parameters
    ----------
    ts : np.ndarray of int
        Timestamps (0 to 2^32 - 1) in arrival order.

    Returns
    -------
    np.ndarray of int64
        The extended timestamps, the first one unchanged.

    Examples
    --------
    >>> extend_timestamp(np.array([4294967136, 0, 160])).tolist()
    [4294967136, 4294967296, 4294967456]
    """
    return _unwrap(ts, 32)


def interarrival_jitter(arrival: np.ndarray, timestamp: np.ndarray) -> np.ndarray:
    """RFC 3550 section 6.4.1 interarrival jitter after each packet, in timestamp units.

    ``D(i-1, i) = (R_i - R_{i-1}) - (S_i - S_{i-1})`` and ``J += (|D| - J) / 16``: a
    first-order filter, run as one :func:`scipy.signal.lfilter` call.

    Parameters
    ----------
    arrival : np.ndarray of float, shape (m,)
        Receive times of one SSRC's packets in arrival order, in RTP clock units.
    timestamp : np.ndarray of int, shape (m,)
        Their (extended) RTP timestamps.

    Returns
    -------
    np.ndarray of float64, shape (m,)
        The jitter after each packet (0 after the first), in RTP clock units.

    Examples
    --------
    >>> interarrival_jitter(np.array([0., 160, 336]), np.array([0, 160, 320])).round(3).tolist()
    [0.0, 0.0, 1.0]
    """
    from scipy.signal import lfilter

    arrival = np.asarray(arrival, np.float64)
    if arrival.size < 2:
        return np.zeros(arrival.size)
    d = np.abs(np.diff(arrival) - np.diff(np.asarray(timestamp, np.float64)))
    return np.concatenate(([0.0], lfilter([1 / 16], [1, -15 / 16], d)))
