"""Reading a fork capture (``.rtpcap``, as the fork receiver writes it) into the common model."""

from __future__ import annotations

import os
from typing import Any, Mapping

from telnyx_audio.errors import CaptureError
from telnyx_audio.forks.rtpcap import read_records
from telnyx_audio.model.capture import Capture
from telnyx_audio.model.events import MediaFormat
from telnyx_audio.rtp.assemble import capture_from_records

__all__ = ["read_fork_captures", "read_fork_capture"]


def read_fork_captures(
    path: str | os.PathLike[str],
    *,
    media_format: MediaFormat | Mapping[str, Any] | None = None,
    payload_types: Mapping[int, Any] | list[str] | None = None,
) -> list[Capture]:
    """Read a fork capture into a one-element list of :class:`~telnyx_audio.model.Capture`.

    The capture has the same shape as a WebSocket one: ``recording`` ``(2, n)`` int16
    ``[inbound, outbound]``, ``summary()`` with the track reports and DTMF digits, plus
    ``report.rtp`` (per-track RTP statistics) and ``report.dtmf_events``.

    Parameters
    ----------
    path : str or PathLike
        A file written by the fork receiver (``fork.rtpcap``).
    media_format : MediaFormat or dict, optional
        How to decode dynamic payload types nothing else names.
    payload_types : dict or list of str, optional
        ``{96: "OPUS/48000"}`` or ``["96=OPUS/48000"]``, over the map in the file's header.

    Returns
    -------
    list of Capture
        One capture: a fork capture holds one call.

    Raises
    ------
    CaptureError
        If the file cannot be read or is not a fork capture.
    """
    try:
        records = read_records(path)
    except IsADirectoryError as exc:
        raise CaptureError(f"{os.fspath(path)!r} is a directory, expected a capture file") from exc
    except OSError as exc:
        raise CaptureError(f"cannot read capture {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise CaptureError(str(exc)) from exc
    return [capture_from_records(records, path=path, media_format=media_format, payload_types=payload_types)]


def read_fork_capture(path: str | os.PathLike[str], **kwargs: Any) -> Capture:
    """The one :class:`~telnyx_audio.model.Capture` of a fork capture; see :func:`read_fork_captures`.

    Parameters
    ----------
    path : str or PathLike
        A file written by the fork receiver (``fork.rtpcap``).
    **kwargs
        As for :func:`read_fork_captures`.

    Returns
    -------
    Capture
    """
    return read_fork_captures(path, **kwargs)[0]
