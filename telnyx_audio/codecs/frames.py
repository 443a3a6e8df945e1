"""Frame lengths read off the bytes of stateful codecs' payloads, whole buffers at once.

:func:`frame_samples` gives every frame's length in samples (G.722: two samples per byte;
OPUS: the TOC byte, RFC 6716 section 3.1; AMR-WB: the RFC 4867 table of contents), so frames
can be placed before anything is decoded. The decoders (:mod:`.wideband`) and the stream
driver (:mod:`.stream`) both use it.
"""

from __future__ import annotations

import numpy as np

from telnyx_audio.codecs import amrwb
from telnyx_audio.codecs._rates import opus_rate

__all__ = ["frame_samples", "gather", "amrwb_single", "OPUS_QUARTERS"]

# RFC 6716 section 3.1, Table 2: frame duration of each TOC config, in units of 1/400 s (2.5 ms).
OPUS_QUARTERS = np.array([4, 8, 16, 24] * 3 + [4, 8] * 2 + [1, 2, 4, 8] * 4, np.int64)
# Octet-aligned bytes of each AMR-WB frame type's speech bits (-1: not a frame type).
_AMR_BITS = np.full(16, -1, np.int64)
for _ft, _bits in amrwb.FRAME_BITS.items():
    _AMR_BITS[_ft] = _bits
_AMR_OA_BYTES = np.where(_AMR_BITS >= 0, (_AMR_BITS + 7) // 8, -1)
_AMR_BE_BYTES = np.where(_AMR_BITS >= 0, (_AMR_BITS + 10 + 7) // 8, -1)


def gather(raw: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The byte ranges ``raw[starts[i]:starts[i]+lens[i]]`` joined, without a Python loop.

    Examples
    --------
    >>> gather(np.arange(10, dtype=np.uint8), np.array([6, 1]), np.array([2, 3])).tolist()
    [6, 7, 1, 2, 3]
    """
    starts, lens = np.asarray(starts, np.int64), np.asarray(lens, np.int64)
    if starts.size == 1:
        return raw[int(starts[0]) : int(starts[0] + lens[0])]
    if starts.size > 1:
        step = np.diff(starts)
        if (step == lens[:-1]).all():  # back to back
            return raw[int(starts[0]) : int(starts[-1] + lens[-1])]
        width, stride = int(lens[0]), int(step[0])
        if (lens == width).all() and (step == stride).all() and stride > width:
            # Equal frames at a fixed stride (a track's frames between the other track's): a
            # strided view, copied once; no index array.
            view = np.lib.stride_tricks.as_strided(raw[int(starts[0]) :], (starts.size, width), (stride, 1))
            return view.reshape(-1)
    total = int(lens.sum())
    shift = np.repeat(starts - np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
    return raw[shift + np.arange(total)]


def _opus_samples(raw: np.ndarray, starts: np.ndarray, nbytes: np.ndarray, rate: int) -> np.ndarray:
    out = np.full(starts.size, -1, np.int64)
    ok = nbytes >= 1
    toc = raw[starts[ok]].astype(np.int64)
    code = toc & 3
    frames = np.where(code == 0, 1, 2).astype(np.int64)
    three = np.flatnonzero(code == 3)
    if three.size:
        idx = np.flatnonzero(ok)[three]
        has = nbytes[idx] >= 2
        m = np.zeros(three.size, np.int64)
        m[has] = raw[starts[idx[has]] + 1] & 0x3F
        frames[three] = m
    quarters = frames * OPUS_QUARTERS[toc >> 3]
    n = np.where((quarters > 0) & (quarters <= 48), quarters * rate // 400, -1)  # at most 120 ms
    out[ok] = n
    return out


def amrwb_single(raw: np.ndarray, starts: np.ndarray, nbytes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Which AMR-WB payloads hold exactly one frame, octet-aligned or bandwidth-efficient.

    The usual payload (one 20 ms frame) is recognised in either packing without a loop.

    Returns
    -------
    oa, be : np.ndarray of bool, shape (m,)
        One-frame payloads that fit octet-aligned / bandwidth-efficient packing (both may be
        True for the same payload: then the bytes alone cannot tell).
    ft_oa, ft_be : np.ndarray of int64, shape (m,)
        The frame type each packing reads.
    """
    ok = nbytes >= 2
    b0 = np.zeros(starts.size, np.int64)
    b1 = np.zeros(starts.size, np.int64)
    b0[ok], b1[ok] = raw[starts[ok]], raw[starts[ok] + 1]
    ft_oa = b1 >> 3 & 0x0F
    oa = ok & ((b0 & 0x0F) == 0) & ((b1 & 0x83) == 0) & (nbytes == 2 + _AMR_OA_BYTES[ft_oa])
    ft_be = (b0 & 7) << 1 | b1 >> 7
    be = ok & ((b0 & 0x08) == 0) & (nbytes == _AMR_BE_BYTES[ft_be])
    return oa, be, ft_oa, ft_be


def _amrwb_samples(raw: np.ndarray, starts: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
    out = np.full(starts.size, -1, np.int64)
    if starts.size == 0:
        return out
    oa, be, _, _ = amrwb_single(raw, starts, nbytes)
    single = oa ^ be  # one packing fits: one frame
    out[single] = 320
    for i in np.flatnonzero(~single).tolist():  # several frames, or both packings fit
        s = int(starts[i])
        n = amrwb.frame_count(raw[s : s + int(nbytes[i])].tobytes())
        out[i] = 320 * n if n else -1
    return out


def frame_samples(encoding: str, sample_rate: int, raw: np.ndarray, starts: np.ndarray,
                  nbytes: np.ndarray) -> np.ndarray:
    """Samples each frame decodes to, at the codec's output rate, read off its bytes.

    Parameters
    ----------
    encoding : {"G722", "OPUS", "AMR-WB"}
    sample_rate : int
        The rate Telnyx reported (OPUS decodes at it; G.722 and AMR-WB are 16 kHz).
    raw : np.ndarray of uint8
        Payload bytes.
    starts, nbytes : np.ndarray of int64, shape (m,)
        Each frame's first byte in ``raw`` and its length.

    Returns
    -------
    np.ndarray of int64, shape (m,)
        -1 for a frame that cannot be decoded (no valid TOC, not an RFC 4867 payload).

    Examples
    --------
    >>> raw = np.frombuffer(bytes([0x78, 1, 2, 0xF0, 0x7C]), np.uint8)
    >>> frame_samples("OPUS", 16000, raw, np.array([0]), np.array([3])).tolist()
    [320]
    >>> frame_samples("AMR-WB", 16000, raw, np.array([3]), np.array([2])).tolist()
    [320]
    """
    starts, nbytes = np.asarray(starts, np.int64), np.asarray(nbytes, np.int64)
    if encoding == "G722":
        return 2 * nbytes
    if encoding == "OPUS":
        return _opus_samples(raw, starts, nbytes, opus_rate(sample_rate))
    if encoding == "AMR-WB":
        return _amrwb_samples(raw, starts, nbytes)
    raise ValueError(f"{encoding!r} is not a stateful codec (expected G722, OPUS or AMR-WB)")
