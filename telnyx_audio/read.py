"""One reader for every kind of capture: it looks at a file's first bytes and picks the source.

- a fork receiver's ``.rtpcap`` (its magic line) -> :mod:`telnyx_audio.forks`;
- a pcap or pcapng file, plain or gzip (their magic numbers) -> :mod:`telnyx_audio.packets`;
- anything else -> a WebSocket capture (JSONL of Telnyx messages, plain or gzip) through
  :mod:`telnyx_audio.streams`, whose reader says clearly when a file is no capture at all.

Every source gives the same :class:`~telnyx_audio.model.Capture`, so what reads one call
(analysis, plots, batch, the CLI) reads them all. A new source registers here and nowhere else.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from telnyx_audio._util.files import check_regular_file
from telnyx_audio.errors import CaptureError, MultipleStreamsError, NotACaptureError
from telnyx_audio.model.capture import Capture, CaptureReport
from telnyx_audio.model.events import MediaFormat

__all__ = ["read_captures", "read_capture", "Capture", "CaptureReport"]


def read_captures(
    path: str | os.PathLike[str],
    *,
    media_format: MediaFormat | Mapping[str, Any] | None = None,
    block_size: int = 1 << 20,
    pair: tuple[int, int] | None = None,
    swap_tracks: bool = False,
) -> list[Capture]:
    """Read any capture file: one :class:`~telnyx_audio.model.Capture` per stream or call.

    Parameters
    ----------
    path : str or PathLike
        A WebSocket capture (JSONL of Telnyx messages, plain, wrapped with receive times, or
        gzip-compressed), a fork receiver's ``.rtpcap``, or a packet capture (pcap or pcapng,
        plain or gzip: one capture per call). The kind is read off the file's first bytes,
        never its name.
    media_format : MediaFormat or dict, optional
        ``{"encoding": ..., "sample_rate": ...}``: overrides ``start.media_format`` (with a
        warning where they differ); for logs without ``start``, or the codec of a fork's
        dynamic payload types nothing else names.
    block_size : int
        Bytes read per block (WebSocket captures). Memory use is about this plus the decoded
        audio.
    pair : (int, int), optional
        Packet captures: ``(rx_port, tx_port)`` of a Telnyx fork recorded with tcpdump (RTP to
        ``rx_port`` is inbound, to ``tx_port`` outbound, one call). Other sources ignore it.
    swap_tracks : bool
        Packet captures: swap inbound and outbound (inbound is otherwise what the call's
        originator sent, or without SIP the first stream seen). Other sources ignore it.

    Returns
    -------
    list of Capture
        In order of appearance. ``capture.recording.audio`` is int16 of shape (2, n),
        ``[inbound, outbound]``. A stream whose audio cannot be decoded has ``error`` set and
        an empty recording; its ids, events and counts are still there.

    Raises
    ------
    CaptureError
        If the file cannot be read.
    NotACaptureError
        If it holds no call at all (empty, text, another format).

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "two.jsonl"
    >>> lines = [{"event": "media", "stream_id": sid, "media": {"chunk": "1", "payload": "gICA"}}
    ...          for sid in ("a", "b")]
    >>> _ = path.write_text("".join(json.dumps(m) + "\\n" for m in lines))
    >>> fmt = {"encoding": "PCMA", "sample_rate": 8000}
    >>> [(c.stream_id, c.media_format.encoding) for c in read_captures(path, media_format=fmt)]
    [('a', 'PCMA'), ('b', 'PCMA')]
    """
    if not isinstance(block_size, int) or block_size < 1024:
        raise ValueError(f"block_size must be an integer of at least 1024 bytes, got {block_size!r}")
    from telnyx_audio.forks.rtpcap import is_fork_capture

    try:  # a FIFO or a device named by a user (a glob, a typo) would be read for ever
        check_regular_file(path)
    except (FileNotFoundError, IsADirectoryError):
        pass  # said by the readers, as for any file
    except OSError as exc:
        raise CaptureError(f"cannot read capture {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    if is_fork_capture(path):  # RTP from a fork: the same Capture, plus RTP statistics
        from telnyx_audio.forks.read import read_fork_captures

        return read_fork_captures(path, media_format=media_format)
    from telnyx_audio.packets.read import is_packet_capture

    if is_packet_capture(path):  # pcap / pcapng: one capture per call, SIP facts and RTP statistics
        from telnyx_audio.packets.read import read_pcap_captures

        return read_pcap_captures(path, media_format=media_format, pair=pair, swap_tracks=swap_tracks)
    name = os.fspath(path).lower()
    if name.endswith((".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")):  # named so, but no magic number
        with open(path, "rb") as f:
            head = f.read(4)
        raise NotACaptureError(f"{os.fspath(path)!r} is not a packet capture: it does not start with a pcap or"
                               f" pcapng magic number (it starts with {head!r}; pcap: a1b2c3d4 or a1b23c4d in"
                               " either byte order, pcapng: 0a0d0d0a; either may be gzip-compressed)")
    from telnyx_audio.streams.read import read_stream_captures

    return read_stream_captures(path, media_format=media_format, block_size=block_size)


def read_capture(
    path: str | os.PathLike[str],
    *,
    media_format: MediaFormat | Mapping[str, Any] | None = None,
    block_size: int = 1 << 20,
) -> Capture:
    """Read a capture file holding one stream or call (see :func:`read_captures`).

    Parameters
    ----------
    path : str or PathLike
        A capture: JSONL of Telnyx messages (plain, wrapped with receive times, or ``.gz``),
        a fork receiver's ``.rtpcap``, or a packet capture (pcap or pcapng) holding one call.
    media_format : MediaFormat or dict, optional
        Overrides ``start.media_format``; for logs without a ``start`` whose format cannot be
        inferred from the frames.
    block_size : int
        Bytes read per block. Memory use is about this plus the decoded audio.

    Returns
    -------
    Capture
        ``capture.recording.audio`` is int16 of shape (2, n), ``[inbound, outbound]``.

    Raises
    ------
    MultipleStreamsError
        If the file holds several streams: use :func:`read_captures`.
    UnsupportedEncodingError, CaptureError
        If the stream's audio cannot be decoded (``read_captures`` returns it with ``error``).

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "call.jsonl"
    >>> start = {"event": "start", "start": {"media_format": {"encoding": "PCMU", "sample_rate": 8000}}}
    >>> media = {"event": "media", "media": {"track": "inbound", "chunk": "1", "payload": "gICA"}}
    >>> _ = path.write_text(json.dumps(start) + "\\n" + json.dumps(media) + "\\n")
    >>> cap = read_capture(path)
    >>> cap.recording.audio.shape, cap.recording.inbound.tolist()
    ((2, 3), [32124, 32124, 32124])
    """
    captures = read_captures(path, media_format=media_format, block_size=block_size)
    if len(captures) > 1:
        raise MultipleStreamsError(os.fspath(path), [c.stream_id for c in captures])
    capture = captures[0]
    if capture.exception is not None:
        raise capture.exception
    return capture
