"""Stateful codecs in stream order: frame lengths from the bytes, then one decoder per track.

:func:`frame_samples` reads every frame's length in samples off its bytes (G.722: two
samples per byte; OPUS: the TOC byte, RFC 6716 section 3.1; AMR-WB: the RFC 4867 table of
contents), so :func:`telnyx_audio.recording.plan` can place frames by ``chunk`` as for
G.711. :func:`render` then runs each track's frames, in plan order (``chunk`` order after
dedupe, never arrival order), through one decoder: runs of back-to-back frames are decoded
together, and each gap is *concealed* by the decoder before the frame after it, so the
decoder's state and the timeline stay true.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from telnyx_audio.codecs import amrwb
from telnyx_audio.codecs.registry import REGISTRY

__all__ = ["frame_samples", "render", "Concealment", "gather", "amrwb_single"]

_PIECE = 1 << 12  # frames decoded per call at most (82 s of 20 ms frames)
# RFC 6716 section 3.1, Table 2: frame duration of each TOC config, in units of 1/400 s (2.5 ms).
OPUS_QUARTERS = np.array([4, 8, 16, 24] * 3 + [4, 8] * 2 + [1, 2, 4, 8] * 4, np.int64)
# Octet-aligned bytes of each AMR-WB frame type's speech bits (-1: not a frame type).
_AMR_BITS = np.full(16, -1, np.int64)
for _ft, _bits in amrwb.FRAME_BITS.items():
    _AMR_BITS[_ft] = _bits
_AMR_OA_BYTES = np.where(_AMR_BITS >= 0, (_AMR_BITS + 7) // 8, -1)
_AMR_BE_BYTES = np.where(_AMR_BITS >= 0, (_AMR_BITS + 10 + 7) // 8, -1)


@dataclass(frozen=True)
class Concealment:
    """What a track's stateful decode had to make up.

    Attributes
    ----------
    concealed_frames : int
        Frames (of the track's usual length) the decoder concealed: lost (gaps) or corrupt.
    corrupt_frames : int
        Frames the decoder rejected, concealed in place.
    fec_frames : int
        Lost frames recovered from the next packet's in-band FEC (Opus).
    method : str
        How gaps were filled: ``"opus plc/fec"``, ``"amr-wb concealment"`` or ``"silence"``
        (G.722: FFmpeg has no G.722 concealment).
    """

    concealed_frames: int = 0
    corrupt_frames: int = 0
    fec_frames: int = 0
    method: str = ""

    def as_dict(self) -> dict:
        """A JSON-able dict."""
        return {"concealed_frames": self.concealed_frames, "corrupt_frames": self.corrupt_frames,
                "fec_frames": self.fec_frames, "concealment": self.method}


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
        return _opus_samples(raw, starts, nbytes, REGISTRY["OPUS"].rate(sample_rate))
    if encoding == "AMR-WB":
        return _amrwb_samples(raw, starts, nbytes)
    raise ValueError(f"{encoding!r} is not a stateful codec (expected G722, OPUS or AMR-WB)")


def render(encoding: str, sample_rate: int, n_samples: int, track: np.ndarray, dest: np.ndarray,
           samples: np.ndarray, raw: np.ndarray | None = None, starts: np.ndarray | None = None,
           nbytes: np.ndarray | None = None, frame_len: dict[int, int] | None = None, *,
           fetch: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
           ) -> tuple[np.ndarray, dict[int, Concealment]]:
    """Decode each track's frames in timeline order through one decoder, concealing gaps.

    Parameters
    ----------
    encoding : {"G722", "OPUS", "AMR-WB"}
    sample_rate : int
        The rate Telnyx reported.
    n_samples : int
        Length of the timeline (output rate).
    track : np.ndarray of int8, shape (m,)
        0 inbound, 1 outbound.
    dest : np.ndarray of int64, shape (m,)
        Each frame's first sample on its track's row; -1 for a frame not used (duplicate).
    samples : np.ndarray of int64, shape (m,)
        Each frame's length in samples (:func:`frame_samples`).
    raw, starts, nbytes
        The payload bytes, and each frame's first byte and length in ``raw``.
    frame_len : dict of int to int, optional
        A track's usual frame length in samples, to count concealed frames.
    fetch : callable, optional
        Instead of ``raw, starts, nbytes``: ``fetch(rows)`` returns ``(raw, starts, nbytes)``
        for the frames ``rows`` (in that order), so payloads can be read a piece of at most
        ``_PIECE`` frames at a time (from the capture file) rather than all held in memory.

    Returns
    -------
    audio : np.ndarray of int16, shape (2, n_samples)
        ``[inbound, outbound]``.
    concealment : dict of int to Concealment
        Per track index that had frames.
    """
    if fetch is None:
        if raw is None or starts is None or nbytes is None:
            raise ValueError("render needs the payloads: raw, starts and nbytes, or fetch")

        def fetch(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return raw, starts[rows], nbytes[rows]  # type: ignore[index]

    info = REGISTRY[encoding]
    out = np.zeros((2, n_samples), np.int16)
    report: dict[int, Concealment] = {}
    for index in (0, 1):
        sel = np.flatnonzero((track == index) & (dest >= 0))
        if sel.size == 0:
            continue
        if (dest[sel[1:]] < dest[sel[:-1]]).any():  # frames arrived out of order
            sel = sel[np.argsort(dest[sel], kind="stable")]
        decoder = info.decoder_factory(sample_rate)  # type: ignore[misc]
        row = out[index]
        fl = (frame_len or {}).get(index) or int(np.median(samples[sel]))
        concealed = corrupt = 0
        end = None  # where the frame before ends
        # The track goes in pieces of _PIECE frames (same decoder, in order), each piece's
        # payloads fetched at once: temporaries stay small, and a file's payloads are never all
        # in memory. In a piece, runs of back-to-back frames decode in one call; a run that
        # starts after a gap has the gap concealed first.
        for p in range(0, sel.size, _PIECE):
            rows = sel[p : p + _PIECE]
            d, n = dest[rows], samples[rows]
            buf, st, nb = fetch(rows)
            cuts = [0, *(np.flatnonzero(d[1:] != d[:-1] + n[:-1]) + 1).tolist(), rows.size]
            for a, b in zip(cuts[:-1], cuts[1:]):
                lo = int(d[a])
                if end is not None and lo > end:
                    s = int(st[a])
                    row[end:lo] = decoder.conceal(lo - end, buf[s : s + int(nb[a])].tobytes())
                    concealed += -(-(lo - end) // max(fl, 1))
                end = int(d[b - 1] + n[b - 1])
                corrupt += decoder.decode_run(row[lo:end], buf, st[a:b], nb[a:b], n[a:b])
        report[index] = Concealment(
            concealed_frames=concealed + corrupt,
            corrupt_frames=corrupt,
            fec_frames=decoder.fec_frames,
            method=decoder.concealment,
        )
    return out, report
