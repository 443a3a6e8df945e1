"""The exceptions telnyx_audio raises.

One root, and leaves that say whose fault it is::

    TelnyxAudioError                      root of everything raised here
    +-- UnsupportedEncodingError          (also ValueError) an encoding name this version does not know
    |   +-- CodecUnavailableError         a known codec the installed FFmpeg cannot decode or encode
    +-- CorruptPacketError                (also ValueError) payloads a codec's decoder refuses
    +-- CaptureError                      (also ValueError) a capture file that cannot be read at all
    |   +-- NotACaptureError              it holds no Telnyx message (empty, text, another format)
    |   +-- MultipleStreamsError          read_capture on a file of several streams
    |   +-- OutputError                   a call's WAVs or summary could not be written (``path``)
    +-- RedactionError                    a capture that cannot be redacted safely: nothing written (``path``)
    +-- WebhookVerificationError          (also ValueError) a delivery that does not verify
        +-- MissingHeaderError            a signature header is absent
        +-- MalformedTimestampError       telnyx-timestamp is not Unix seconds
        +-- TimestampToleranceError       signed too long ago or in the future (``skew_s``)
        +-- MalformedKeyError             the public key is not an Ed25519 key in a known form
        +-- MalformedSignatureError       the signature header is not 64 bytes of base64
        +-- InvalidSignatureError         the signature does not match the body
        +-- MalformedPayloadError         a correctly signed body that is not a JSON object
    +-- TelnyxAPIError                    Telnyx answered a command with an error (status, code...)
    |   +-- CallEndedError                90018: the call has already ended
    +-- TelnyxConnectionError             Telnyx did not answer, after every retry

    UnknownValueWarning                   (a UserWarning) a value this version does not know, sent as is

Caller mistakes (a wrong type, an impossible argument) raise plain ``TypeError`` or
``ValueError``. Peer data never raises: a malformed Telnyx message becomes a
:class:`telnyx_audio.streams.protocol.Malformed` event, and a bad line in a capture file is counted
in the report.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "TelnyxAudioError",
    "UnsupportedEncodingError",
    "CodecUnavailableError",
    "CorruptPacketError",
    "CaptureError",
    "NotACaptureError",
    "MultipleStreamsError",
    "OutputError",
    "RedactionError",
    "WebhookVerificationError",
    "MissingHeaderError",
    "MalformedTimestampError",
    "TimestampToleranceError",
    "MalformedKeyError",
    "MalformedSignatureError",
    "InvalidSignatureError",
    "MalformedPayloadError",
    "TelnyxAPIError",
    "CallEndedError",
    "TelnyxConnectionError",
    "UnknownValueWarning",
]


class TelnyxAudioError(Exception):
    """Root of every exception this package raises on purpose."""


class UnsupportedEncodingError(TelnyxAudioError, ValueError):
    """An audio encoding this version cannot decode or encode.

    Attributes
    ----------
    encoding : str
        The encoding name as given.
    supported : tuple of str
        The names that are supported.
    """

    def __init__(self, encoding: object, supported: tuple[str, ...]) -> None:
        self.encoding = encoding
        self.supported = supported
        super().__init__(
            f"unsupported encoding {encoding!r}: expected one of {', '.join(supported)}"
        )


class CodecUnavailableError(UnsupportedEncodingError):
    """A codec Telnyx streams that the installed FFmpeg (or libopus) cannot decode or encode
    (PyAV's FFmpeg has no AMR-WB encoder).

    Attributes
    ----------
    encoding : str
        The codec.
    detail : str
        What is missing.
    """

    def __init__(self, encoding: str, detail: str) -> None:
        super().__init__(encoding, (encoding,))
        self.detail = detail
        self.args = (f"cannot use {encoding}: {detail}",)

    def __str__(self) -> str:
        return str(self.args[0])


class CorruptPacketError(TelnyxAudioError, ValueError):
    """Payloads a codec's decoder refuses, or bytes that are not one of the codec's payloads."""


class CaptureError(TelnyxAudioError, ValueError):
    """A capture file that cannot be read at all (missing, a directory, not text)."""


class NotACaptureError(CaptureError):
    """A file that holds no Telnyx message at all: empty, plain text, another format."""


class MultipleStreamsError(CaptureError):
    """:func:`~telnyx_audio.read_capture` on a file holding several streams.

    Attributes
    ----------
    stream_ids : list of str or None
        The streams, in order of appearance.
    """

    def __init__(self, path: str, stream_ids: list) -> None:
        self.stream_ids = stream_ids
        super().__init__(
            f"{path!r} holds {len(stream_ids)} streams ({', '.join(map(str, stream_ids))}):"
            " read them all with read_captures"
        )


class OutputError(CaptureError):
    """A call's outputs (WAVs, ``summary.json``) could not be written; ``path`` names where.

    Attributes
    ----------
    path : str
        The file or folder that could not be written.
    """

    def __init__(self, message: str, path: str) -> None:
        self.path = path
        super().__init__(message)


class RedactionError(TelnyxAudioError):
    """A capture that cannot be redacted safely (an undecodable stretch, a codec whose silence
    cannot be written, a tone still heard after muting): its redacted copy is not written.

    Attributes
    ----------
    path : str or None
        The capture.
    reason : str
        Why.
    """

    def __init__(self, reason: str, path: str | None = None) -> None:
        self.path = path
        self.reason = reason
        where = f"{path}: " if path else ""
        super().__init__(f"{where}cannot redact: {reason}; nothing was written")


class WebhookVerificationError(TelnyxAudioError, ValueError):
    """A webhook delivery that does not verify. The leaves say why."""


class MissingHeaderError(WebhookVerificationError):
    """A required header is absent.

    Attributes
    ----------
    header : str
        The header's name.
    """

    def __init__(self, header: str) -> None:
        self.header = header
        super().__init__(f"missing header {header!r}")


class MalformedTimestampError(WebhookVerificationError):
    """``telnyx-timestamp`` is not an integer of Unix seconds."""


class TimestampToleranceError(WebhookVerificationError):
    """The delivery was signed outside the tolerance.

    Attributes
    ----------
    skew_s : int
        Now minus the delivery's timestamp, in seconds (negative: from the future).
    tolerance_s : float
        The tolerance it is outside of.
    """

    def __init__(self, skew_s: int, tolerance_s: float) -> None:
        self.skew_s = skew_s
        self.tolerance_s = tolerance_s
        when = "ago" if skew_s >= 0 else "in the future"
        super().__init__(
            f"timestamp is {abs(skew_s)} s {when}, outside the tolerance of {tolerance_s} s"
            " (pass tolerance_s=None to verify an archived delivery)"
        )


class MalformedKeyError(WebhookVerificationError):
    """The public key is not a 32-byte Ed25519 key as base64, raw bytes, SPKI DER or PEM."""


class MalformedSignatureError(WebhookVerificationError):
    """``telnyx-signature-ed25519`` is not base64 of a 64-byte signature."""


class InvalidSignatureError(WebhookVerificationError):
    """The signature does not match ``timestamp|body`` under the public key."""


class MalformedPayloadError(WebhookVerificationError):
    """A correctly signed body that is not a JSON object."""


class TelnyxAPIError(TelnyxAudioError):
    """Telnyx answered with an error.

    Attributes
    ----------
    status : int
        HTTP status.
    code, title, detail : str or None
        Of the first entry of Telnyx's ``errors`` list (``code`` is a string, e.g. "90018").
    pointer : str or None
        ``source.pointer``: which field of the request was at fault.
    errors : list of dict
        Every entry Telnyx sent.
    """

    def __init__(self, status: int, errors: list[dict[str, Any]], action: str, text: str = "") -> None:
        self.status = status
        self.errors = errors
        first = errors[0] if errors else {}
        self.code = str(first["code"]) if first.get("code") is not None else None
        self.title = first.get("title")
        self.detail = first.get("detail") or (text[:200] if not errors else None)
        source = first.get("source") if isinstance(first.get("source"), dict) else {}
        self.pointer = source.get("pointer")
        self.action = action
        parts = [f"{action}: HTTP {status}"]
        if self.code:
            parts.append(f"code {self.code}")
        if self.title:
            parts.append(str(self.title))
        message = ", ".join(parts)
        if self.detail:
            message += f": {self.detail}"
        if self.pointer:
            message += f" (at {self.pointer})"
        super().__init__(message)


class CallEndedError(TelnyxAPIError):
    """Telnyx error 90018: the call has already ended, so the command cannot run.

    Attributes
    ----------
    status, code, title, detail, pointer, errors
        As for :class:`TelnyxAPIError`.
    """


class TelnyxConnectionError(TelnyxAudioError):
    """No answer from Telnyx after every retry (connection refused, reset, timed out)."""


class UnknownValueWarning(UserWarning):
    """A well-formed value this version does not know (a newer Telnyx enum value), sent as is.

    Silence one value by wrapping it in :class:`telnyx_audio.callcontrol.Unchecked`, or all
    with ``warnings.filterwarnings("ignore", category=UnknownValueWarning)``.
    """
