"""The events every source produces: frozen, typed records of what a call carried.

The WebSocket protocol (:mod:`telnyx_audio.streams.protocol`) parses Telnyx's messages into
these; forks and packet captures describe their audio with the same :class:`MediaFormat`
and :class:`Dtmf`; the model (:class:`~telnyx_audio.model.Capture`) holds them. They keep
Telnyx's field names. Nothing here parses, reads or writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Union

__all__ = ["Connected", "Start", "Media", "Dtmf", "Mark", "StreamError", "Stop", "Malformed", "Event",
           "MediaFormat", "TRACKS", "MIN_SAMPLE_RATE", "MAX_SAMPLE_RATE"]

#: ``media_format.sample_rate`` bounds: Telnyx streams at 8000-48000 Hz; a rate outside
#: this range is a corrupt line, not a call (and would size buffers absurdly). The top is the
#: highest rate :mod:`telnyx_audio.model` renders.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 192_000

#: Track names as Telnyx uses them in ``media.track``, in the order of two-track arrays.
TRACKS: tuple[str, str] = ("inbound", "outbound")


@dataclass(frozen=True)
class MediaFormat:
    """``start.media_format``: what the payloads really are (trust it over the request).

    Attributes
    ----------
    encoding : str
        Telnyx's codec name (``"PCMU"``, ``"G722"``...), as normalised by the reader.
    sample_rate : int
        The rate ``start`` reports, in Hz.
    channels : int
        Channels per track (1 in every form Telnyx documents).
    """

    encoding: str
    sample_rate: int
    channels: int = 1


@dataclass(frozen=True)
class Connected:
    """``{"event": "connected"}``, the first message.

    Attributes
    ----------
    version : str or None
        The ``version`` field, when sent.
    raw : Mapping
        The whole message.
    """

    version: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Start:
    """``{"event": "start"}``: the call's ids, ``media_format`` and ``custom_parameters``.

    ``media_format`` is ``None`` when the message has none (integrations' tests send such
    starts; Telnyx's default is PCMU at 8000 Hz), or one that cannot be used (a rate out of
    range, no codec name...: ``media_format_error`` says why): the ids are kept, and whoever
    decodes says which format it assumed or inferred.

    Attributes
    ----------
    sequence_number : int or None
        The message's ``sequence_number``.
    stream_id, call_control_id, call_session_id : str or None
        The stream's and the call's ids.
    media_format : MediaFormat or None
        What the payloads are; ``None`` when missing or unusable.
    custom_parameters : Mapping
        The ``custom_parameters`` given to ``streaming_start``.
    client_state : str or None
        The ``client_state``, as sent (base64).
    start : Mapping
        The whole ``start`` object.
    media_format_error : str or None
        Why a ``media_format`` that was sent cannot be used.
    """

    sequence_number: int | None
    stream_id: str | None
    call_control_id: str | None
    call_session_id: str | None
    media_format: MediaFormat | None
    custom_parameters: Mapping[str, Any]
    client_state: str | None = None
    start: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    media_format_error: str | None = None


@dataclass(frozen=True)
class Media:
    """``{"event": "media"}``: one RTP payload (raw codec bytes, no RTP header).

    ``chunk``, ``timestamp`` and ``sequence_number`` are ``None`` when Telnyx left them out.
    ``timestamp`` units are unconfirmed by Telnyx (see :mod:`telnyx_audio.model`).

    Attributes
    ----------
    track : str
        ``"inbound"`` or ``"outbound"``.
    payload : bytes
        The decoded base64 ``media.payload``.
    chunk, timestamp, sequence_number : int or None
        The message's counters.
    stream_id : str or None
        The stream it belongs to.
    """

    track: str
    payload: bytes
    chunk: int | None = None
    timestamp: int | None = None
    sequence_number: int | None = None
    stream_id: str | None = None


@dataclass(frozen=True)
class Dtmf:
    """``{"event": "dtmf"}``: a digit the caller pressed (RFC 2833 / in-band, as Telnyx saw it).

    Attributes
    ----------
    digit : str
        The key as Telnyx sent it (``"0"``-``"9"``, ``"*"``, ``"#"``...; a number becomes its text).
    sequence_number : int or None
        The message's ``sequence_number``.
    stream_id : str or None
        The stream it belongs to.
    occurred_at : str or None
        Telnyx's time of the key press, as sent.
    """

    digit: str
    sequence_number: int | None = None
    stream_id: str | None = None
    occurred_at: str | None = None


@dataclass(frozen=True)
class Mark:
    """``{"event": "mark"}``: the echo of a mark the server sent, when its audio finished.

    Attributes
    ----------
    name : str
        The mark's name, as the server sent it.
    sequence_number : int or None
        The message's ``sequence_number``.
    stream_id : str or None
        The stream it belongs to.
    """

    name: str
    sequence_number: int | None = None
    stream_id: str | None = None


@dataclass(frozen=True)
class StreamError:
    """``{"event": "error"}``: Telnyx reporting a problem (100002-100005).

    Read from both shapes Telnyx has documented: ``"payload": {"code": 100003, ...}`` (the
    media-streaming guide) and ``"error": {"code": "100005", ...}`` (older spec text). A code
    of digits becomes an ``int``; any other code is kept as the text sent.

    Attributes
    ----------
    code : int, str or None
        Telnyx's error code.
    title, detail : str or None
        Telnyx's words for it.
    stream_id : str or None
        The stream it belongs to.
    """

    code: int | str | None
    title: str | None
    detail: str | None
    stream_id: str | None = None


@dataclass(frozen=True)
class Stop:
    """``{"event": "stop"}``: the last message of a stream.

    Attributes
    ----------
    sequence_number : int or None
        The message's ``sequence_number``.
    stream_id, call_control_id : str or None
        The stream's and the call's ids.
    stop : Mapping
        The whole ``stop`` object.
    """

    sequence_number: int | None = None
    stream_id: str | None = None
    call_control_id: str | None = None
    stop: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Malformed:
    """A message that could not be understood (never an exception: a capture goes on).

    Attributes
    ----------
    reason : str
        Why it could not be read.
    raw : str
        The text as received.
    """

    reason: str
    raw: str


Event = Union[Connected, Start, Media, Dtmf, Mark, StreamError, Stop, Malformed]
