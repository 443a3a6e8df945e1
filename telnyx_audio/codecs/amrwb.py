"""AMR-WB RTP payloads (RFC 4867) to storage-format frames, both packings detected from bytes.

Telnyx does not say whether its AMR-WB payloads are octet-aligned or bandwidth-efficient
(RFC 4867 section 4.3/4.4), so each payload is parsed both ways and the packing that
accounts for every byte wins; the first unambiguous payload of a stream settles it.

A payload is: a 4-bit CMR (codec mode request, read and ignored: it asks *our* encoder for
a mode), then one table-of-contents entry per frame (F: more follow, FT: frame type, Q:
quality), then the frames' speech bits. Each frame becomes an AMR-WB storage-format frame
(RFC 4867 section 5.3: one header byte ``0 FT Q 0 0`` then the speech bits, octet-padded),
what FFmpeg's decoders take. Interleaving and CRCs (only with ``interleaving``/``crc`` SDP
parameters, never negotiated for telephony) are not supported.

This is bit-unpacking only, no codec DSP: no library offers RFC 4867 depacketizing.
"""

from __future__ import annotations

__all__ = ["FRAME_BITS", "MAX_FRAMES", "SID", "SPEECH_LOST", "NO_DATA", "unpack", "frame_count", "detect_packing", "pack"]

#: Speech bits per frame type (3GPP TS 26.201 Table 2): modes 0-8, then SID.
FRAME_BITS: dict[int, int] = {0: 132, 1: 177, 2: 253, 3: 285, 4: 317, 5: 365, 6: 397, 7: 461, 8: 477, 9: 40,
                              14: 0, 15: 0}
SID, SPEECH_LOST, NO_DATA = 9, 14, 15
#: The most frames one payload may list (1 s of 20 ms frames). RFC 4867 allows more in
#: principle, but telephony sends one to a few; a payload listing thousands (of NO_DATA
#: frames, a few bytes each) would ask for minutes of audio per datagram. More is no payload.
MAX_FRAMES = 50


def _bits(b: bytes, pos: int, n: int) -> int:
    """The ``n`` bits of ``b`` from bit ``pos`` (big-endian), reading only the bytes they span."""
    if n <= 0:
        return 0
    start, end = pos >> 3, (pos + n + 7) >> 3
    return int.from_bytes(b[start:end], "big") >> (8 * end - pos - n) & ((1 << n) - 1)


def _storage(ft: int, q: int, bits: int, nbits: int) -> bytes:
    nbytes = (nbits + 7) // 8
    body = (bits << (nbytes * 8 - nbits)).to_bytes(nbytes, "big") if nbytes else b""
    return bytes([ft << 3 | q << 2]) + body


def _parse_octet_aligned(b: bytes) -> list[bytes] | None:
    if len(b) < 2 or b[0] & 0x0F:  # CMR + 4 reserved zero bits
        return None
    tocs, i = [], 1
    while True:
        if i >= len(b):
            return None
        toc = b[i]
        i += 1
        ft = toc >> 3 & 0x0F
        if ft not in FRAME_BITS or toc & 0x03 or len(tocs) == MAX_FRAMES:  # unknown type, padding bits set, too many
            return None
        tocs.append((ft, toc >> 2 & 1))
        if not toc & 0x80:
            break
    frames = []
    for ft, q in tocs:
        n = (FRAME_BITS[ft] + 7) // 8
        if i + n > len(b):
            return None
        frames.append(bytes([ft << 3 | q << 2]) + b[i : i + n])
        i += n
    return frames if i == len(b) else None


def _parse_bandwidth_efficient(b: bytes) -> list[bytes] | None:
    # Bits are read where they lie (never the payload as one big integer: shifting that for
    # every field made a long payload quadratic).
    total = 8 * len(b)
    if total < 10:
        return None
    pos = 4  # CMR
    tocs = []
    while True:
        if pos + 6 > total or len(tocs) == MAX_FRAMES:
            return None
        toc = _bits(b, pos, 6)
        pos += 6
        ft = toc >> 1 & 0x0F
        if ft not in FRAME_BITS:
            return None
        tocs.append((ft, toc & 1))
        if not toc & 0x20:
            break
    frames = []
    for ft, q in tocs:
        n = FRAME_BITS[ft]
        if pos + n > total:
            return None
        frames.append(_storage(ft, q, _bits(b, pos, n), n))
        pos += n
    pad = total - pos
    if pad >= 8 or _bits(b, pos, pad):
        return None
    return frames


def unpack(payload: bytes, packing: str | None = None) -> tuple[list[bytes], str | None]:
    """Split one RFC 4867 payload into storage-format frames (at most :data:`MAX_FRAMES`).

    Parameters
    ----------
    payload : bytes
    packing : {"octet-aligned", "bandwidth-efficient"} or None
        The stream's packing if known; None to detect it from this payload.

    Returns
    -------
    frames : list of bytes
        One storage-format frame (header byte + speech bytes) per TOC entry.
    packing : str or None
        The packing used; None if the bytes fit both (then they were read octet-aligned).

    Raises
    ------
    ValueError
        If the payload fits neither packing (or not the one given).

    Examples
    --------
    >>> unpack(bytes([0xF0, 0x7C]))            # CMR 15, one NO_DATA frame, octet-aligned
    ([b'|'], 'octet-aligned')
    >>> unpack(bytes([0xF7, 0xC0]))            # the same, bandwidth-efficient
    ([b'|'], 'bandwidth-efficient')
    """
    data = bytes(payload)
    oa = _parse_octet_aligned(data) if packing != "bandwidth-efficient" else None
    be = _parse_bandwidth_efficient(data) if packing != "octet-aligned" else None
    if oa is not None:
        return oa, ("octet-aligned" if be is None or packing else None)
    if be is not None:
        return be, "bandwidth-efficient"
    how = packing or "octet-aligned or bandwidth-efficient"
    raise ValueError(f"AMR-WB payload of {len(data)} bytes is not a valid {how} RFC 4867 payload")


def frame_count(payload: bytes, packing: str | None = None) -> int:
    """Frames (20 ms each, NO_DATA included) in one payload; 0 if it is not a valid payload.

    Examples
    --------
    >>> frame_count(bytes([0xF0, 0xFC, 0x7C]))   # two NO_DATA frames
    2
    """
    try:
        return len(unpack(payload, packing)[0])
    except ValueError:
        return 0


def detect_packing(payloads) -> str | None:  # noqa: ANN001 - any iterable of bytes
    """The packing of a stream: that of its first payload that fits only one, else None.

    Examples
    --------
    >>> detect_packing([bytes([0xF7, 0xC0])])
    'bandwidth-efficient'
    """
    for p in payloads:
        try:
            found = unpack(p)[1]
        except ValueError:
            continue
        if found is not None:
            return found
    return None


def pack(frames: list[bytes], packing: str, cmr: int = 15) -> bytes:
    """Storage-format frames to one RFC 4867 payload (the inverse of :func:`unpack`).

    Examples
    --------
    >>> pack([bytes([0x7C])], "bandwidth-efficient").hex()
    'f7c0'
    """
    heads = [(f[0] >> 3 & 0x0F, f[0] >> 2 & 1) for f in frames]
    if packing == "octet-aligned":
        toc = bytes((0x80 if i < len(frames) - 1 else 0) | ft << 3 | q << 2 for i, (ft, q) in enumerate(heads))
        return bytes([cmr << 4]) + toc + b"".join(f[1:] for f in frames)
    if packing != "bandwidth-efficient":
        raise ValueError(f"packing must be 'octet-aligned' or 'bandwidth-efficient', got {packing!r}")
    v, n = cmr, 4
    for i, (ft, q) in enumerate(heads):
        v = v << 6 | (1 if i < len(heads) - 1 else 0) << 5 | ft << 1 | q
        n += 6
    for f, (ft, _) in zip(frames, heads):
        bits = FRAME_BITS[ft]
        body = f[1:]
        v = v << bits | int.from_bytes(body, "big") >> (8 * len(body) - bits) if bits else v
        n += bits
    pad = -n % 8
    return (v << pad).to_bytes((n + pad) // 8, "big")
