"""Payloads that decode to silence, as long as a payload they replace: what redaction writes.

Muting a stretch of a call inside the capture itself (not only in its WAVs) means writing,
in place of each payload there, one that decodes to silence for the same time:

- stateless codecs (PCMU, PCMA, L16): the codec's silence byte(s), sample for sample
  (:data:`~telnyx_audio.codecs.registry.CodecInfo.silence`), so only the muted samples of a
  frame change;
- stateful codecs replace whole frames, so the decoder meets whole, valid frames and stays
  in step: G.722 gets FFmpeg's encoding of digital silence (two samples a byte, the same
  length); OPUS a packet of encoded silence of the same duration (libopus through PyAV);
  AMR-WB, which no encoder here writes (PyAV's FFmpeg has no AMR-WB encoder), NO_DATA frames
  (3GPP TS 26.201: the frame type DTX sends when there is nothing to send), as many as the
  payload held, in its packing. A decoder conceals the first NO_DATA frame from the frame
  before it (20 ms fading out) and is silent after.

Nothing here keeps state between calls but a cache of encoded silence per duration.
"""

from __future__ import annotations

import functools

import numpy as np

from telnyx_audio.codecs.registry import REGISTRY, normalize_encoding
from telnyx_audio.errors import CodecUnavailableError, CorruptPacketError

__all__ = ["silent_payload", "silence_sample", "opus_has_fec"]


def silence_sample(encoding: str) -> int:
    """The value a muted sample decodes to: 0, except PCMA's silence byte (0xD5), which is +8.

    Examples
    --------
    >>> silence_sample("PCMU"), silence_sample("PCMA"), silence_sample("G722")
    (0, 8, 0)
    """
    info = REGISTRY[normalize_encoding(encoding)]
    if info.silence is None:
        return 0
    from telnyx_audio.codecs.g711 import decode

    return int(decode(info.silence, info.name)[0])


def silent_payload(encoding: str, sample_rate: int, like: bytes) -> bytes:
    """A payload of ``encoding`` that decodes to silence for as long as ``like`` does.

    Parameters
    ----------
    encoding : str
        Any spelling :func:`~telnyx_audio.codecs.normalize_encoding` takes.
    sample_rate : int
        The rate Telnyx reported (OPUS packets are encoded at the rate they decode at).
    like : bytes
        The payload to stand in for: its length (G.711, L16, G.722), its TOC (OPUS: the
        duration of its frames) or its table of contents and packing (AMR-WB).

    Returns
    -------
    bytes

    Raises
    ------
    CorruptPacketError
        When ``like`` does not say how long it is (an OPUS packet without a valid TOC, a
        payload that is no RFC 4867 payload).
    CodecUnavailableError
        When that duration cannot be encoded. Either way redaction fails closed rather than
        write a frame the decoder would misread.

    Examples
    --------
    >>> silent_payload("PCMU", 8000, b"\\x12\\x34\\x56")
    b'\\xff\\xff\\xff'
    >>> len(silent_payload("G722", 8000, bytes(160)))
    160
    >>> from telnyx_audio.codecs.frames import OPUS_QUARTERS
    >>> p = silent_payload("OPUS", 16000, bytes([0x78, 1, 2]))   # a 20 ms SILK packet
    >>> int(OPUS_QUARTERS[p[0] >> 3]) * 2.5
    20.0
    >>> silent_payload("AMR-WB", 16000, bytes([0xF0, 0x44]) + bytes(60)).hex()   # mode 8 -> NO_DATA
    'f07c'
    """
    info = REGISTRY[normalize_encoding(encoding)]
    like = bytes(like)
    if info.silence is not None:  # stateless: sample for sample
        width = len(info.silence)
        return info.silence * (len(like) // width) + b"\x00" * (len(like) % width)
    if info.name == "G722":
        return _g722_silence(len(like))
    if info.name == "OPUS":
        return _opus_silence(like, sample_rate)
    return _amrwb_silence(like)


def _g722_silence(nbytes: int) -> bytes:
    block = _g722_block()
    reps = -(-nbytes // len(block))
    return (block * reps)[:nbytes]


@functools.lru_cache(maxsize=1)
def _g722_block() -> bytes:
    """FFmpeg's G.722 bytes for digital silence, past the encoder's start: one 20 ms frame."""
    from telnyx_audio.codecs.outbound import encode_payloads

    out = encode_payloads(np.zeros(16000 // 5, np.int16), 16000, "G722", payload_s=0.02)
    return out[-2]  # the encoder has settled by the end of 200 ms: a steady frame


def _opus_silence(like: bytes, sample_rate: int) -> bytes:
    from telnyx_audio.codecs._rates import opus_rate
    from telnyx_audio.codecs.frames import frame_samples

    raw = np.frombuffer(like, np.uint8)
    rate = opus_rate(sample_rate)
    n = int(frame_samples("OPUS", rate, raw, np.zeros(1, np.int64), np.array([raw.size], np.int64))[0])
    if n <= 0:
        raise CorruptPacketError(f"{len(like)} bytes are not an OPUS packet whose TOC gives its duration")
    quarters = n * 400 // rate  # 2.5 ms units
    return _opus_packet(quarters, rate)


@functools.lru_cache(maxsize=32)
def _opus_packet(quarters: int, rate: int) -> bytes:
    """One Opus packet of silence lasting ``quarters`` x 2.5 ms (libopus's frame sizes)."""
    import av

    ms = quarters * 2.5
    allowed = {2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0}
    if ms not in allowed:
        raise CodecUnavailableError("OPUS", f"no {ms:g} ms packet of silence can be encoded (libopus frames are"
                                    " 2.5, 5, 10, 20, 40, 60, 80, 100 or 120 ms)")
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = rate, "mono", "s16"
    ctx.bit_rate = max(rate * 2, 16000)
    ctx.options = {"frame_duration": f"{ms:g}", "application": "voip"}
    ctx.open()
    step = ctx.frame_size or int(rate * ms / 1000)
    packets: list[bytes] = []
    for _ in range(3):  # past the encoder's lookahead: a packet of settled silence
        frame = av.AudioFrame.from_ndarray(np.zeros((1, step), np.int16), format="s16", layout="mono")
        frame.sample_rate = rate
        packets.extend(bytes(p) for p in ctx.encode(frame))
    packet = packets[-1]
    from telnyx_audio.codecs.frames import frame_samples

    got = frame_samples("OPUS", rate, np.frombuffer(packet, np.uint8), np.zeros(1, np.int64),
                        np.array([len(packet)], np.int64))[0]
    if got * 400 // rate != quarters:  # libopus chose another framing: never write a wrong length
        raise CodecUnavailableError("OPUS", f"libopus framed {ms:g} ms of silence as {got} samples at {rate} Hz")
    return packet


def _amrwb_silence(like: bytes) -> bytes:
    from telnyx_audio.codecs import amrwb

    try:
        frames, packing = amrwb.unpack(like)
    except ValueError as exc:
        raise CorruptPacketError(f"{len(like)} bytes are not an RFC 4867 AMR-WB payload") from exc
    none = bytes([amrwb.NO_DATA << 3 | 0x04])
    return amrwb.pack([none] * len(frames), packing or "octet-aligned", cmr=like[0] >> 4)


def opus_has_fec(packet: bytes) -> bool:
    """Whether an OPUS packet carries in-band FEC (LBRR data: a low-rate copy of the frame
    before it), as libopus reads it.

    Examples
    --------
    >>> opus_has_fec(silent_payload("OPUS", 48000, bytes([0xF8, 0xFF, 0xFE])))
    False
    """
    from telnyx_audio.codecs.wideband import _libopus

    data = bytes(packet)
    return bool(data) and _libopus().opus_packet_has_lbrr(data, len(data)) == 1
