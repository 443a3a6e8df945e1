"""One registry of the encodings Telnyx streams, and the one place their names are normalised.

Importing this module loads nothing heavy (no numpy, no PyAV): the protocol parser uses
:func:`normalize_encoding` on every ``start`` message. Decoders are reached through the
:class:`CodecInfo` entries and import what they need when first called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from telnyx_audio.codecs._rates import opus_rate
from telnyx_audio.errors import UnsupportedEncodingError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CodecInfo", "REGISTRY", "KNOWN_ENCODINGS", "normalize_encoding", "codec_info"]


@dataclass(frozen=True)
class CodecInfo:
    """What the toolkit knows about one encoding Telnyx may report.

    Attributes
    ----------
    name : str
        Telnyx's canonical name (``media_format.encoding``, ``stream_codec``).
    aliases : tuple of str
        Other spellings that mean this codec, lower case (MIME types, common names).
    audio_rate : int or None
        Sample rate of the decoded audio in Hz; None when it is the rate Telnyx reports in
        ``media_format.sample_rate`` (L16 and OPUS).
    rtp_clock : int or None
        The RTP timestamp clock in Hz (8000 for G.722, RFC 3551 section 4.5.2; 48000 for
        Opus, RFC 7587); None when it equals the audio rate.
    bytes_per_20ms : int or None
        Payload bytes of 20 ms at ``audio_rate``; None when it varies (L16 by rate, OPUS and
        AMR-WB by packet).
    silence : bytes or None
        The codec bytes of one silent sample, for codecs whose gaps are filled byte-wise
        (G.711, L16); None for stateful codecs, whose decoders conceal gaps themselves.
    stateless_decode : callable or None
        ``f(raw: np.ndarray of uint8) -> np.ndarray of int16`` for codecs whose every byte
        decodes on its own (whole buffers at once, in any order).
    decoder_factory : callable or None
        ``f(sample_rate: int) -> decoder`` for stateful codecs (G.722 ADPCM, Opus, AMR-WB
        CELP), whose frames must go through one decoder in stream order; see
        :mod:`telnyx_audio.codecs.wideband`.

    Examples
    --------
    >>> REGISTRY["G722"].audio_rate, REGISTRY["G722"].rtp_clock, REGISTRY["G722"].stateful
    (16000, 8000, True)
    >>> REGISTRY["PCMU"].silence
    b'\\xff'
    """

    name: str
    aliases: tuple[str, ...]
    audio_rate: int | None
    rtp_clock: int | None
    bytes_per_20ms: int | None
    silence: bytes | None
    stateless_decode: Callable[[Any], Any] | None = None
    decoder_factory: Callable[[int], Any] | None = None

    @property
    def stateful(self) -> bool:
        """True when frames must be decoded in order through one decoder."""
        return self.decoder_factory is not None

    def rate(self, reported: int | None) -> int:
        """The decoded audio's sample rate, given the rate Telnyx reported (Hz).

        Parameters
        ----------
        reported : int or None
            ``start.media_format.sample_rate``; ``None`` when not reported.

        Returns
        -------
        int
            The rate of the decoded audio, in Hz.

        G.722 is 16 kHz audio whatever Telnyx reports (8000, its RTP clock, or 16000);
        PCMU/PCMA are 8 kHz; AMR-WB is 16 kHz; L16 and OPUS decode at the reported rate
        (OPUS at the next rate libopus has, should Telnyx report another).

        Examples
        --------
        >>> REGISTRY["G722"].rate(8000), REGISTRY["OPUS"].rate(22050), REGISTRY["PCMU"].rate(None)
        (16000, 24000, 8000)
        """
        if self.audio_rate is not None:
            return self.audio_rate
        if reported is None:
            return 16000 if self.name == "L16" else 48000
        if self.name == "OPUS":  # libopus decodes at 8, 12, 16, 24 or 48 kHz: the next one up
            return opus_rate(reported)
        return int(reported)




def _g711(name: str) -> Callable[[Any], Any]:
    def decode(raw: "np.ndarray") -> "np.ndarray":
        from telnyx_audio.codecs.g711 import decode as g711_decode

        return g711_decode(raw, name)

    decode.__name__ = f"decode_{name.lower()}"
    return decode


def _wideband(name: str) -> Callable[[int], Any]:
    def factory(sample_rate: int) -> Any:
        from telnyx_audio.codecs import wideband

        return wideband.make_decoder(name, sample_rate)

    factory.__name__ = f"{name.lower().replace('-', '_')}_decoder"
    return factory


REGISTRY: dict[str, CodecInfo] = {
    c.name: c
    for c in (
        CodecInfo("PCMU", ("pcmu", "mulaw", "ulaw", "mu-law", "u-law", "g711u", "g711-ulaw", "g711_ulaw",
                           "g.711u", "g.711-ulaw", "basic"), 8000, None, 160, b"\xff", _g711("PCMU")),
        CodecInfo("PCMA", ("pcma", "alaw", "a-law", "g711a", "g711-alaw", "g711_alaw", "g.711a", "g.711-alaw"),
                  8000, None, 160, b"\xd5", _g711("PCMA")),
        CodecInfo("L16", ("l16", "linear16", "pcm16", "s16be"), None, None, None, b"\x00\x00", _g711("L16")),
        CodecInfo("G722", ("g722", "g.722"), 16000, 8000, 160, None, None, _wideband("G722")),
        CodecInfo("OPUS", ("opus",), None, 48000, None, None, None, _wideband("OPUS")),
        CodecInfo("AMR-WB", ("amr-wb", "amrwb", "amr_wb", "amr wb"), 16000, None, None, None, None,
                  _wideband("AMR-WB")),
    )
}

#: Every encoding Telnyx may report in ``start.media_format.encoding``, canonical names.
KNOWN_ENCODINGS: tuple[str, ...] = tuple(REGISTRY)

_ALIASES: dict[str, str] = {alias: c.name for c in REGISTRY.values() for alias in (c.name.lower(), *c.aliases)}


def normalize_encoding(name: object) -> str:
    """Telnyx's canonical name for an encoding given in any case or MIME-style spelling.

    Accepts the canonical names in any case, MIME types (``audio/x-mulaw``, ``audio/PCMU``,
    ``audio/x-alaw``, ``audio/L16;rate=16000``, ``audio/G722``, ``audio/opus``,
    ``audio/AMR-WB``) and common names (``mulaw``, ``ulaw``, ``alaw``, ``g.722``...).
    Surrounding spaces and MIME parameters after ``;`` are ignored.

    Parameters
    ----------
    name : str
        The encoding as written (``media_format.encoding``, a CLI option...).

    Returns
    -------
    str
        One of ``PCMU PCMA L16 G722 OPUS AMR-WB``.

    Raises
    ------
    UnsupportedEncodingError
        For any other value (also a ``ValueError``), naming it and the known names.

    Examples
    --------
    >>> normalize_encoding("audio/x-mulaw"), normalize_encoding("g.722"), normalize_encoding("amr-wb")
    ('PCMU', 'G722', 'AMR-WB')
    >>> normalize_encoding("audio/L16; rate=16000")
    'L16'
    >>> normalize_encoding("speex")
    Traceback (most recent call last):
    ...
    telnyx_audio.errors.UnsupportedEncodingError: unsupported encoding 'speex': expected one of PCMU, PCMA, L16, G722, OPUS, AMR-WB
    """
    if isinstance(name, str):
        key = name.split(";", 1)[0].strip().lower()
        if key.startswith("audio/"):
            key = key[len("audio/"):].strip()
            if key.startswith("x-"):
                key = key[2:]
        found = _ALIASES.get(key)
        if found is not None:
            return found
    raise UnsupportedEncodingError(name, KNOWN_ENCODINGS)


def codec_info(encoding: object) -> CodecInfo:
    """The :class:`CodecInfo` of an encoding, by any name :func:`normalize_encoding` accepts.

    Parameters
    ----------
    encoding : str
        A codec name (``"PCMU"``, ``"audio/opus"``, ``"g.722"``...).

    Returns
    -------
    CodecInfo
        What the toolkit knows of it.

    Examples
    --------
    >>> codec_info("audio/opus").rtp_clock
    48000
    """
    return REGISTRY[normalize_encoding(encoding)]
