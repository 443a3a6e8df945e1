"""The exceptions telnyx_audio raises.

One root, and leaves that say whose fault it is::

    TelnyxAudioError                      root of everything raised here
    +-- UnsupportedEncodingError          (also ValueError) an encoding we cannot decode (yet)
    +-- CaptureError                      (also ValueError) a capture file that cannot be read at all

Caller mistakes (a wrong type, an impossible argument) raise plain ``TypeError`` or
``ValueError``. Peer data never raises: a malformed Telnyx message becomes a
:class:`telnyx_audio.protocol.Malformed` event, and a bad line in a capture file is counted
in the report.
"""

from __future__ import annotations

__all__ = ["TelnyxAudioError", "UnsupportedEncodingError", "CaptureError"]


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


class CaptureError(TelnyxAudioError, ValueError):
    """A capture file that cannot be read at all (missing, a directory, not text)."""
