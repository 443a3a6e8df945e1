"""What reading a capture gives: :class:`Capture` (one stream) and its :class:`CaptureReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from telnyx_audio.model.events import Dtmf, Event, MediaFormat, StreamError
from telnyx_audio.model.recording import MAX_LISTED, Recording, TrackReport

#: Telnyx's default codec; assumed only for a stream that carried no media at all.
DEFAULT_MEDIA_FORMAT = MediaFormat("PCMU", 8000, 1)
# What the format chooser hands the reader when nothing gave the format nor let it be inferred:
# a rate for the empty recording. The Capture made with this very object says None.
NOT_KNOWN = MediaFormat("PCMU", 8000, 1)


@dataclass(frozen=True)
class BadLine:
    """A line that could not be used: its 1-based number, why, and its start.

    Attributes
    ----------
    line : int
        The line's 1-based number in the capture file.
    reason : str
        Why it could not be used (not JSON, no ``event``, a bad payload...).
    text : str
        The start of the line, shortened, to find it in the file.
    """

    line: int
    reason: str
    text: str


@dataclass(frozen=True)
class CaptureReport:
    """What reading a capture found, beyond the per-track reports.

    ``lines`` counts the file's lines; ``bad_lines`` the unusable lines given to this stream
    (a line is given to the stream named by the nearest message before it that names one);
    ``bad_examples`` holds the first of them; ``events`` counts messages by type;
    ``warnings`` says every guess and surprise (also printed by ``telnyx-audio decode``).

    Attributes
    ----------
    lines : int
        How many lines the capture file has.
    bad_lines : int
        How many unusable lines were given to this stream.
    bad_examples : tuple of BadLine
        The first of those lines, with why each was unusable.
    events : dict of str to int
        How many messages of each ``event`` type (``"media"``, ``"start"``, ``"dtmf"``...).
    warnings : tuple of str
        Every guess and surprise met while reading, in the order met.
    tracks : dict of str to TrackReport
        The report of each track (``"inbound"``, ``"outbound"``), by name.
    """

    lines: int
    bad_lines: int
    bad_examples: tuple[BadLine, ...]
    events: dict[str, int]
    warnings: tuple[str, ...]
    tracks: dict[str, TrackReport]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (part of ``summary.json``).

        Returns
        -------
        dict of str to object
            ``lines``, ``bad_lines``, ``bad_examples`` (as dicts), ``events``, ``warnings``
            (the first ones, with ``warnings_not_listed`` counting the rest) and
            ``track_reports`` (each :meth:`TrackReport.as_dict`).
        """
        return {
            "lines": self.lines,
            "bad_lines": self.bad_lines,
            "bad_examples": [vars(b) for b in self.bad_examples],
            "events": dict(self.events),
            "warnings": list(self.warnings[:MAX_LISTED]),
            "warnings_not_listed": max(len(self.warnings) - MAX_LISTED, 0),
            "track_reports": {name: r.as_dict() for name, r in self.tracks.items()},
        }


@dataclass(frozen=True)
class Capture:
    """One stream read from a capture file.

    Attributes
    ----------
    path : str or None
        The file it was read from.
    stream_id, call_control_id, call_session_id : str or None
        From the ``start`` message.
    media_format : MediaFormat or None
        ``start.media_format``, the one given, or the one inferred from the frames (the
        report's warnings say which); ``None`` when none of these gave it (``error`` says why).
    custom_parameters : dict
        ``start.custom_parameters``.
    start : dict
        Every field of ``start`` as received.
    recording : Recording
        The audio, ``(2, n)`` int16 ``[inbound, outbound]`` (empty when ``error`` is set).
    report : CaptureReport
    events : tuple of Event
        Every message of the stream but ``media``, in order (start, dtmf, mark, error, stop...).
    error : str or None
        Why the audio could not be decoded (unknown encoding, format not inferable...);
        everything else was still read.
    """

    path: str | None
    stream_id: str | None
    call_control_id: str | None
    call_session_id: str | None
    media_format: MediaFormat | None
    custom_parameters: dict[str, Any]
    start: dict[str, Any]
    recording: Recording
    report: CaptureReport
    events: tuple[Event, ...] = field(repr=False)
    error: str | None = None
    exception: Exception | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.media_format is NOT_KNOWN:  # never show a format nothing said nor let be inferred
            object.__setattr__(self, "media_format", None)

    def summary(self) -> dict[str, Any]:
        """The JSON-able summary written as ``summary.json``.

        Returns
        -------
        dict of str to object
            The stream's ids, source file, media format, custom parameters, tracks,
            duration, DTMF digits, stream errors and error, followed by the fields of
            :meth:`CaptureReport.as_dict`. ``media_format`` and ``audio_sample_rate`` are
            ``None`` when the format is not known.
        """
        fmt = self.media_format
        dtmf = [e.digit for e in self.events if isinstance(e, Dtmf)]
        errors = [{"code": e.code, "title": e.title, "detail": e.detail} for e in self.events
                  if isinstance(e, StreamError)][:MAX_LISTED]
        return {
            "source": self.path,
            "stream_id": self.stream_id,
            "call_control_id": self.call_control_id,
            "call_session_id": self.call_session_id,
            "media_format": None if fmt is None else {
                "encoding": fmt.encoding,
                "sample_rate": fmt.sample_rate,
                "channels": fmt.channels,
            },
            "custom_parameters": dict(self.custom_parameters),
            "tracks": list(self.recording.tracks),
            "duration_s": self.recording.duration_s,
            # the WAVs' (G722: 16000 when 8000 is reported)
            "audio_sample_rate": None if fmt is None else self.recording.sample_rate,
            "dtmf": "".join(dtmf),
            "stream_errors": errors,
            "error": self.error,
            **self.report.as_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        """One flat, JSON-safe row: ids, format, duration, per-track frame counts and gaps, DTMF.

        Returns
        -------
        dict of str to object
            The capture's columns of :func:`telnyx_audio.batch`'s call table, documented in
            :mod:`telnyx_audio.model.schema`; every value is a number, a string, a bool or
            ``None``.
        """
        from telnyx_audio.model.schema import capture_row

        return capture_row(self)

    def __repr__(self) -> str:
        error = f" error={self.error!r}" if self.error else ""
        return f"<Capture {self.stream_id} {self.recording!r} bad_lines={self.report.bad_lines}{error}>"
