"""Decoding planned frames into place: :func:`render` (and batch by batch,
:func:`render_batch`), the stateful codecs' path, and :func:`assemble` doing it all."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from telnyx_audio import codecs
from telnyx_audio.model.events import TRACKS, Media
from telnyx_audio.model.plan import plan
from telnyx_audio.model.recording import FrameTable, Plan, Recording

_BATCH = 1 << 14  # frames decoded per step: temporaries stay small and in cache


def render_batch(
    out: np.ndarray, plan_: Plan, rows: np.ndarray, track: np.ndarray, payload: np.ndarray, nbytes: np.ndarray
) -> None:
    """Decode a batch of frames into ``out`` at their planned places.

    Parameters
    ----------
    out : np.ndarray of int16, shape (2, n_samples)
        The audio to decode into, in place.
    plan_ : Plan
        Where every frame goes.
    rows : np.ndarray of int64
        The frames' indices in the plan.
    track : np.ndarray of int8
        Their tracks.
    payload : np.ndarray of uint8
        Their codec bytes, joined in the order of ``rows``.
    nbytes : np.ndarray of int64
        Bytes of each frame in ``payload``.
    """
    dest = plan_.dest[rows]
    use = dest >= 0
    if not use.any():
        return
    nbytes = np.maximum(nbytes, 0)  # -1: a frame without a usable payload (and no bytes here)
    enc, bps = plan_.encoding, codecs.bytes_per_sample(plan_.encoding)
    width = int(nbytes[use][0])
    L = width // bps
    starts = np.concatenate(([0], np.cumsum(nbytes)[:-1]))
    if L and width == L * bps and (nbytes[use] == width).all() and (dest[use] % L == 0).all():
        # Equal frames on a frame grid: whole rows; straight into place where a track's
        # frames in this batch cover consecutive slots.
        for index in range(2):
            sel = np.flatnonzero(use & (track == index))
            if sel.size == 0:
                continue
            grid = out[index, : out.shape[1] // L * L].reshape(-1, L)
            src = payload[starts[sel][:, None] + np.arange(width)] if (starts[sel] % width).any() else (
                payload[: payload.size // width * width].reshape(-1, width)[starts[sel] // width]
            )
            slots = dest[sel] // L
            if slots[-1] - slots[0] + 1 == slots.size and (np.diff(slots) > 0).all():
                codecs.decode_into(src, enc, grid[slots[0] : slots[-1] + 1])
            else:
                grid[slots] = codecs.decode(src.reshape(-1), enc).reshape(-1, L)
        return
    # Mixed lengths: one decode, one scatter by sample index.
    sel = np.flatnonzero(use)
    lens = nbytes[sel] // bps
    whole = lens * bps  # an odd-length L16 frame keeps its whole samples
    span = np.repeat(starts[sel] - np.concatenate(([0], np.cumsum(whole)[:-1])), whole)
    pcm = codecs.decode(payload[span + np.arange(span.size)], enc)
    flat_dest = np.repeat(dest[sel] - np.concatenate(([0], np.cumsum(lens)[:-1])), lens) + np.arange(pcm.size)
    rows_of = np.repeat(track[sel].astype(np.int64), lens)
    out[rows_of, flat_dest] = pcm


def render(plan_: Plan, frames: FrameTable, raw: np.ndarray) -> Recording:
    """Decode in-memory payloads into a :class:`Recording` following ``plan_``.

    Parameters
    ----------
    plan_ : Plan
    frames : FrameTable
        The frames the plan was made from.
    raw : np.ndarray of uint8
        Their payloads joined in order.

    Returns
    -------
    Recording
        The decoded audio at the planned places, with the plan's reports.
    """
    out = np.zeros((2, plan_.n_samples), np.int16)
    offsets = np.concatenate(([0], np.cumsum(np.maximum(frames.nbytes, 0))))
    for lo in range(0, len(frames), _BATCH):
        hi = min(lo + _BATCH, len(frames))
        rows = np.arange(lo, hi)
        render_batch(out, plan_, rows, frames.track[lo:hi], raw[offsets[lo] : offsets[hi]], frames.nbytes[lo:hi])
    return recording_from(plan_, out)


def _payload_spans(frames: FrameTable) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, start in the joined payloads) of each frame; frames without a usable payload have 0 bytes."""
    nbytes = np.maximum(frames.nbytes, 0)
    return nbytes, np.concatenate(([0], np.cumsum(nbytes)[:-1])).astype(np.int64)


def plan_stateful(frames: FrameTable, raw: np.ndarray, encoding: str, sample_rate: int, **options) -> Plan:
    """:func:`plan` for a stateful codec (G722, OPUS, AMR-WB): frame lengths from the bytes.

    ``sample_rate`` is the rate Telnyx reported; the plan's is the decoded audio's
    (:meth:`telnyx_audio.codecs.CodecInfo.rate`: G.722 is 16 kHz even when 8000 is
    reported). ``raw`` holds the payloads joined in frame order (none for ``nbytes`` -1).

    Parameters
    ----------
    frames : FrameTable
        The stream's media frames in arrival order.
    raw : np.ndarray of uint8
        Their payloads joined in order.
    encoding : {"G722", "OPUS", "AMR-WB"}
    sample_rate : int
        The rate Telnyx reported.
    **options
        Passed on to :func:`plan` (``bad_frames``, ``max_gap_s``, ``max_silence_s``).

    Returns
    -------
    Plan
        At the decoded audio's rate, with each frame's length in samples.
    """
    from telnyx_audio.codecs import stream

    info = codecs.codec_info(encoding)
    rate = info.rate(sample_rate)
    nbytes, starts = _payload_spans(frames)
    samples = stream.frame_samples(info.name, rate, raw, starts, nbytes)
    return plan(frames, info.name, rate, samples=samples, **options)


def render_stateful(plan_: Plan, frames: FrameTable, raw: np.ndarray | None = None, *, fetch=None) -> Recording:
    """Decode a stateful codec's frames in plan (``chunk``) order, one decoder per track.

    Gaps are concealed by the decoder (Opus PLC/FEC, AMR-WB concealment; G.722 silence) so
    later audio stays at its true time; each report counts what was concealed. The payloads
    are ``raw`` (joined in frame order), or read a piece at a time by ``fetch`` (see
    :func:`telnyx_audio.codecs.stream.render`).

    Parameters
    ----------
    plan_ : Plan
        From :func:`plan_stateful`.
    frames : FrameTable
        The frames the plan was made from.
    raw : np.ndarray of uint8, optional
        Their payloads joined in order; needed unless ``fetch`` is given.
    fetch : callable, optional
        Reads the payloads of some frames instead (see :func:`telnyx_audio.codecs.stream.render`).

    Returns
    -------
    Recording
        With the concealment counted in each track's report.
    """
    from dataclasses import replace

    from telnyx_audio.codecs import stream

    usual = {TRACKS.index(n): r.samples_per_frame for n, r in plan_.reports.items()}
    if fetch is None:
        nbytes, starts = _payload_spans(frames)
        audio, done = stream.render(plan_.encoding, plan_.sample_rate, plan_.n_samples, frames.track, plan_.dest,
                                    plan_.samples, raw, starts, nbytes, usual)
    else:
        audio, done = stream.render(plan_.encoding, plan_.sample_rate, plan_.n_samples, frames.track, plan_.dest,
                                    plan_.samples, frame_len=usual, fetch=fetch)
    reports = {n: replace(r, **done[TRACKS.index(n)].as_dict()) if TRACKS.index(n) in done else r
               for n, r in plan_.reports.items()}
    return Recording(audio, plan_.sample_rate, plan_.encoding, plan_.tracks, reports)


def recording_from(plan_: Plan, audio: np.ndarray) -> Recording:
    """The :class:`Recording` of a rendered plan.

    Parameters
    ----------
    plan_ : Plan
        The plan ``audio`` was rendered from (rate, encoding, tracks and reports).
    audio : np.ndarray of int16, shape (2, n) with n the plan's ``n_samples``
        Inbound and outbound rows, as :func:`render_batch` fills them.

    Returns
    -------
    Recording
    """
    return Recording(audio, plan_.sample_rate, plan_.encoding, plan_.tracks, plan_.reports)


def assemble(
    frames: FrameTable,
    raw: np.ndarray,
    encoding: str,
    sample_rate: int,
    *,
    bad_frames: dict[str, int] | None = None,
) -> Recording:
    """Order, dedupe, gap-fill and align in-memory media frames.

    Parameters
    ----------
    frames : FrameTable
        The stream's media frames in arrival order.
    raw : np.ndarray of uint8
        Their payload (codec) bytes joined in order.
    encoding : str
        ``start.media_format.encoding``: ``PCMU PCMA L16 G722 OPUS AMR-WB`` (any spelling
        :func:`telnyx_audio.codecs.normalize_encoding` takes).
    sample_rate : int
        ``start.media_format.sample_rate``; the output's rate, except that G.711 is always
        8 kHz audio, G.722 and AMR-WB 16 kHz (and OPUS decodes at the next libopus rate):
        the codec registry's rate.
    bad_frames : dict of str to int, optional
        See :func:`plan`.

    Returns
    -------
    Recording
        ``audio`` is int16 of shape (2, n): ``[inbound, outbound]``.

    Examples
    --------
    >>> f, raw = FrameTable.from_media([Media("inbound", b"\\x80" * 2, chunk=3),
    ...                                 Media("inbound", b"\\x80" * 2, chunk=1)])
    >>> rec = assemble(f, raw, "PCMU", 8000)
    >>> rec.inbound.tolist(), rec.reports["inbound"].gaps
    ([32124, 32124, 0, 0, 32124, 32124], ((0.00025, 0.25),))
    """
    info = codecs.codec_info(encoding)  # any spelling: "audio/x-mulaw" is PCMU
    encoding = info.name
    if info.stateful:  # G722, OPUS, AMR-WB: decoded in stream order
        return render_stateful(plan_stateful(frames, raw, encoding, sample_rate, bad_frames=bad_frames), frames, raw)
    return render(plan(frames, encoding, info.rate(sample_rate), bad_frames=bad_frames), frames, raw)


def assemble_events(events: Iterable[object], encoding: str, sample_rate: int) -> Recording:
    """Assemble the ``Media`` events among ``events`` (others are ignored).

    Parameters
    ----------
    events : iterable
        Parsed events, such as :func:`telnyx_audio.parse_message` gives.
    encoding : str
        What the payloads are (a Telnyx codec name).
    sample_rate : int
        The rate ``start`` reported, in Hz.

    Returns
    -------
    Recording
        The aligned audio, with a report per track.

    Examples
    --------
    >>> rec = assemble_events([Media("outbound", b"\\xff", chunk=1)], "PCMU", 8000)
    >>> rec.tracks, rec.audio.shape
    (('outbound',), (2, 1))
    """
    frames, raw = FrameTable.from_media(e for e in events if isinstance(e, Media))
    return assemble(frames, raw, encoding, sample_rate)
