"""Stateful codecs in stream order: frame lengths from the bytes, then one decoder per track.

:func:`frame_samples` reads every frame's length in samples off its bytes (G.722: two
samples per byte; OPUS: the TOC byte, RFC 6716 section 3.1; AMR-WB: the RFC 4867 table of
contents), so :func:`telnyx_audio.model.plan` can place frames by ``chunk`` as for
G.711. :func:`render` then runs each track's frames, in plan order (``chunk`` order after
dedupe, never arrival order), through one decoder: runs of back-to-back frames are decoded
together, and each gap is *concealed* by the decoder before the frame after it, so the
decoder's state and the timeline stay true.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from telnyx_audio.codecs.frames import OPUS_QUARTERS, amrwb_single, frame_samples, gather
from telnyx_audio.errors import CorruptPacketError

__all__ = ["frame_samples", "render", "Concealment", "gather", "amrwb_single", "OPUS_QUARTERS"]

_PIECE = 1 << 12  # frames decoded per call at most (82 s of 20 ms frames)
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

    from telnyx_audio.codecs.wideband import make_decoder  # PyAV loads on first use

    out = np.zeros((2, n_samples), np.int16)
    report: dict[int, Concealment] = {}
    for index in (0, 1):
        sel = np.flatnonzero((track == index) & (dest >= 0))
        if sel.size == 0:
            continue
        if (dest[sel[1:]] < dest[sel[:-1]]).any():  # frames arrived out of order
            sel = sel[np.argsort(dest[sel], kind="stable")]
        decoder = make_decoder(encoding, sample_rate)
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
                try:
                    corrupt += decoder.decode_run(row[lo:end], buf, st[a:b], nb[a:b], n[a:b])
                except CorruptPacketError:  # one bad frame must not end the stream: frame by frame
                    bad, decoder = _one_by_one(decoder, encoding, sample_rate, row, d[a:b], n[a:b],
                                               buf, st[a:b], nb[a:b])
                    corrupt += bad
        report[index] = Concealment(
            concealed_frames=concealed + corrupt,
            corrupt_frames=corrupt,
            fec_frames=decoder.fec_frames,
            method=decoder.concealment,
        )
    return out, report


def _one_by_one(decoder, encoding: str, sample_rate: int, row: np.ndarray, d: np.ndarray, n: np.ndarray,  # noqa: ANN001
                buf: np.ndarray, st: np.ndarray, nb: np.ndarray):  # noqa: ANN202 - (int, decoder)
    """Decode a run the decoder refused one frame at a time: a frame it refuses is concealed
    in its place (as a lost one), and the decoder, whose state may be spoilt, is replaced.
    Returns how many frames were concealed and the decoder to go on with."""
    from telnyx_audio.codecs.wideband import make_decoder

    bad = 0
    for i in range(d.size):
        lo, hi = int(d[i]), int(d[i] + n[i])
        try:
            bad += decoder.decode_run(row[lo:hi], buf, st[i : i + 1], nb[i : i + 1], n[i : i + 1])
            continue
        except CorruptPacketError:
            bad += 1
        decoder = make_decoder(encoding, sample_rate)
        try:
            row[lo:hi] = decoder.conceal(hi - lo)
        except CorruptPacketError:
            row[lo:hi] = 0
            decoder = make_decoder(encoding, sample_rate)
    return bad, decoder
