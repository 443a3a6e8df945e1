"""Whole-buffer stateless codecs for Telnyx media payloads: G.711 (PCMU, PCMA) and L16.

Every function works on a whole buffer at once with numpy lookup tables: join the payloads
first, decode once. Decoded audio is ``int16``.

G.711 follows ITU-T G.711 (11/1988), Tables 1a/1b (A-law) and 2a/2b (mu-law), with the
segment search and bias of the classic Sun reference coder, so results are bit-exact with
``audioop`` (tested for all 256 codes and all 65,536 linear inputs).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from telnyx_audio._util import b64 as _base64
from telnyx_audio.errors import UnsupportedEncodingError

__all__ = [
    "SUPPORTED_ENCODINGS",
    "bytes_per_sample",
    "decode",
    "decode_payloads",
    "decode_into",
    "encode",
    "ulaw_to_linear",
    "linear_to_ulaw",
    "alaw_to_linear",
    "linear_to_alaw",
]

#: Encodings :func:`decode` and :func:`encode` handle, by Telnyx's names.
SUPPORTED_ENCODINGS: tuple[str, ...] = ("PCMU", "PCMA", "L16")


def _ulaw_decode_table() -> np.ndarray:
    # G.711 section 3 / Table 2: invert all bits, then sign, 3-bit segment, 4-bit step;
    # magnitude ((step << 3) + 0x84) << segment, minus the bias 0x84.
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    # G.711 section 2 / Table 1: even bits inverted (xor 0x55), sign bit set means positive.
    code = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (code & 0x70) >> 4
    t = (code & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(code & 0x80, t, -t).astype(np.int16)


_SEG_ULAW_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_SEG_ALAW_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _ulaw_encode_table() -> np.ndarray:
    # Indexed by the int16 sample reinterpreted as uint16. 14-bit magnitude, clipped at 8159.
    pcm = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), 8159) + 33
    seg = np.searchsorted(_SEG_ULAW_END, mag, side="left")
    code = (np.minimum(seg, 7) << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _alaw_encode_table() -> np.ndarray:
    pcm = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 3
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_SEG_ALAW_END, mag, side="left")
    s = np.minimum(seg, 7)
    quant = np.where(s < 2, mag >> 1, mag >> np.maximum(s, 1)) & 0x0F
    code = np.where(seg >= 8, 0x7F, (s << 4) | quant)
    return (code ^ mask).astype(np.uint8)


_ULAW_DEC = _ulaw_decode_table()
_ALAW_DEC = _alaw_decode_table()
_ENC_TABLES: dict[str, np.ndarray] = {}
_PAIR_TABLES: dict[str, np.ndarray] = {}


def _pair_table(encoding: str) -> np.ndarray:
    """Two codec bytes (as a little-endian uint16) to their two samples (as one uint32).

    Halves the number of lookups when decoding long buffers.
    """
    table = _PAIR_TABLES.get(encoding)
    if table is None:
        single = _ULAW_DEC if encoding == "PCMU" else _ALAW_DEC
        idx = np.arange(65536)
        pairs = np.empty((65536, 2), np.int16)
        pairs[:, 0], pairs[:, 1] = single[idx & 0xFF], single[idx >> 8]
        table = _PAIR_TABLES[encoding] = pairs.view(np.uint32).reshape(-1)
    return table


def _enc_table(encoding: str) -> np.ndarray:
    table = _ENC_TABLES.get(encoding)
    if table is None:
        table = _ulaw_encode_table() if encoding == "PCMU" else _alaw_encode_table()
        _ENC_TABLES[encoding] = table
    return table


def _as_u8(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise TypeError(f"codec bytes must be uint8, got an array of {data.dtype}")
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    raise TypeError(f"codec bytes must be bytes-like or a uint8 array, got {type(data).__name__}")


def _as_pcm(pcm: np.ndarray | bytes) -> np.ndarray:
    if isinstance(pcm, (bytes, bytearray, memoryview)):
        return np.frombuffer(pcm, dtype=np.int16)
    arr = np.asarray(pcm)
    if arr.dtype != np.int16:
        raise TypeError(f"pcm must be int16, got {arr.dtype} (scale floats with (x * 32767).astype(np.int16))")
    return arr


def ulaw_to_linear(data: bytes | np.ndarray) -> np.ndarray:
    """Decode G.711 mu-law bytes to linear PCM.

    Parameters
    ----------
    data : bytes or np.ndarray of uint8, shape (n,) or any
        mu-law codes.

    Returns
    -------
    np.ndarray of int16, same shape as ``data``

    Examples
    --------
    >>> ulaw_to_linear(bytes([0xFF, 0x00, 0x80])).tolist()
    [0, -32124, 32124]
    """
    return _ULAW_DEC[_as_u8(data)]


def alaw_to_linear(data: bytes | np.ndarray) -> np.ndarray:
    """Decode G.711 A-law bytes to linear PCM.

    Parameters
    ----------
    data : bytes or np.ndarray of uint8, shape (n,) or any
        A-law codes.

    Returns
    -------
    np.ndarray of int16, same shape as ``data``

    Examples
    --------
    >>> alaw_to_linear(bytes([0xD5, 0x55, 0xAA])).tolist()
    [8, -8, 32256]
    """
    return _ALAW_DEC[_as_u8(data)]


def linear_to_ulaw(pcm: np.ndarray | bytes) -> np.ndarray:
    """Encode linear int16 PCM to G.711 mu-law (ITU-T G.711 Table 2).

    Parameters
    ----------
    pcm : np.ndarray of int16, any shape

    Returns
    -------
    np.ndarray of uint8, same shape

    Examples
    --------
    >>> linear_to_ulaw(np.array([0, 1000, -1000], dtype=np.int16)).tolist()
    [255, 206, 78]
    """
    return _enc_table("PCMU")[_as_pcm(pcm).view(np.uint16)]


def linear_to_alaw(pcm: np.ndarray | bytes) -> np.ndarray:
    """Encode linear int16 PCM to G.711 A-law (ITU-T G.711 Table 1).

    Parameters
    ----------
    pcm : np.ndarray of int16, any shape

    Returns
    -------
    np.ndarray of uint8, same shape

    Examples
    --------
    >>> linear_to_alaw(np.array([0, 1000, -1000], dtype=np.int16)).tolist()
    [213, 250, 122]
    """
    return _enc_table("PCMA")[_as_pcm(pcm).view(np.uint16)]


def _check(encoding: object) -> str:
    if encoding not in SUPPORTED_ENCODINGS:
        raise UnsupportedEncodingError(encoding, SUPPORTED_ENCODINGS)
    return encoding  # type: ignore[return-value]


def bytes_per_sample(encoding: str) -> int:
    """Bytes one sample takes on the wire: 1 for G.711, 2 for L16.

    Parameters
    ----------
    encoding : str
        A sample-based codec's name (``"PCMU"``, ``"PCMA"``, ``"L16"``).

    Returns
    -------
    int
        1 or 2.

    Examples
    --------
    >>> bytes_per_sample("L16")
    2
    """
    return 2 if _check(encoding) == "L16" else 1


def decode(data: bytes | np.ndarray, encoding: str) -> np.ndarray:
    """Decode raw codec bytes (a media payload, or many joined) to int16 PCM.

    Parameters
    ----------
    data : bytes or np.ndarray of uint8, shape (n,)
        Payload bytes without RTP header, as Telnyx sends them.
    encoding : {"PCMU", "PCMA", "L16"}
        Telnyx's name for the codec, from ``start.media_format.encoding``. Trust that field,
        never the codec you requested: a PCMA stream decoded as PCMU is loud static.

    Returns
    -------
    np.ndarray of int16, shape (n,) for G.711 or (n // 2,) for L16

    Raises
    ------
    UnsupportedEncodingError
        For an unknown name, and for ``G722``, ``OPUS``, ``AMR-WB``: their frames carry
        state and go through one decoder in stream order
        (:func:`telnyx_audio.model.assemble`, :func:`telnyx_audio.read_capture`,
        or :func:`telnyx_audio.codecs.wideband.make_decoder` for single payloads).
    ValueError
        For L16 data of odd length.

    Examples
    --------
    >>> decode(b"\\xff\\x80", "PCMU").tolist()
    [0, 32124]
    >>> decode(b"\\x01\\x00\\xff\\xff", "L16").tolist()
    [256, -1]
    """
    enc = _check(encoding)
    raw = _as_u8(data)
    if enc == "PCMU":
        return _ULAW_DEC[raw]
    if enc == "PCMA":
        return _ALAW_DEC[raw]
    if raw.size % 2:
        raise ValueError(f"L16 data must have an even number of bytes, got {raw.size}")
    # L16 is big-endian (RTP network order, RFC 3551 section 4.5.11).
    return raw.view(">i2").astype(np.int16)


def decode_into(data: np.ndarray, encoding: str, out: np.ndarray) -> None:
    """Decode codec bytes straight into an existing int16 array (no temporary).

    Parameters
    ----------
    data : np.ndarray of uint8, shape (n * bytes_per_sample,) or (rows, cols)
    encoding : {"PCMU", "PCMA", "L16"}
    out : np.ndarray of int16, C-contiguous, n samples in all

    Examples
    --------
    >>> out = np.empty(2, np.int16)
    >>> decode_into(np.array([0xFF, 0x80], np.uint8), "PCMU", out)
    >>> out.tolist()
    [0, 32124]
    """
    enc = _check(encoding)
    raw = _as_u8(data).reshape(-1)
    if not isinstance(out, np.ndarray) or out.dtype != np.int16 or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous int16 array")
    flat = out.reshape(-1)
    if flat.size * bytes_per_sample(enc) != raw.size:
        raise ValueError(f"{raw.size} {enc} bytes do not fill {flat.size} samples")
    if enc == "L16":
        flat[...] = raw.view(">i2")
        return
    little = np.little_endian
    if little and raw.size % 2 == 0 and flat.ctypes.data % 4 == 0:
        np.take(_pair_table(enc), raw.view("<u2"), mode="clip", out=flat.view(np.uint32))
    else:
        np.take(_ULAW_DEC if enc == "PCMU" else _ALAW_DEC, raw, mode="clip", out=flat)


def encode(pcm: np.ndarray | bytes, encoding: str) -> bytes:
    """Encode int16 PCM to codec bytes, the inverse of :func:`decode`.

    Parameters
    ----------
    pcm : np.ndarray of int16, shape (n,)
    encoding : {"PCMU", "PCMA", "L16"}

    Returns
    -------
    bytes
        n bytes for G.711, 2n big-endian bytes for L16.

    Examples
    --------
    >>> encode(np.array([0, -1], dtype=np.int16), "L16")
    b'\\x00\\x00\\xff\\xff'
    """
    enc = _check(encoding)
    arr = _as_pcm(pcm)
    if enc == "L16":
        return arr.astype(">i2").tobytes()
    return _enc_table(enc)[arr.view(np.uint16)].tobytes()


def decode_payloads(payloads: Iterable[str | bytes], encoding: str) -> np.ndarray:
    """Decode many base64 media payloads, joined in the given order, in one call.

    Parameters
    ----------
    payloads : iterable of str or bytes
        ``media.payload`` values (base64 text).
    encoding : {"PCMU", "PCMA", "L16"}

    Returns
    -------
    np.ndarray of int16, shape (n,)
        The samples of all payloads, one after another.

    Raises
    ------
    ValueError
        If a payload is not valid base64; the message gives its index.

    Examples
    --------
    >>> decode_payloads(["/w==", "gA=="], "PCMU").tolist()
    [0, 32124]
    """
    raw, offsets, bad = _base64.decode_many(payloads)
    if bad.size:
        raise ValueError(f"payload {int(bad[0])} is not valid base64")
    return decode(raw, encoding)
