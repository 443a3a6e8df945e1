"""Sample-rate facts the codec modules share (the registry and the decoders alike)."""

from __future__ import annotations

#: Sample rates libopus decodes at (RFC 6716 section 2).
OPUS_RATES: tuple[int, ...] = (8000, 12000, 16000, 24000, 48000)


def opus_rate(reported: int | None) -> int:
    """The rate libopus decodes at for a reported rate: the next one up (48 kHz at most).

    Examples
    --------
    >>> opus_rate(22050), opus_rate(16000), opus_rate(None), opus_rate(96000)
    (24000, 16000, 48000, 48000)
    """
    if reported is None:
        return 48000
    return next((r for r in OPUS_RATES if r >= reported), 48000)


def stateful_rate(encoding: str, reported: int | None) -> int:
    """The decoded audio's rate of a stateful codec, given the rate Telnyx reported.

    G.722 and AMR-WB are 16 kHz audio whatever is reported; Opus decodes at
    :func:`opus_rate`.

    Examples
    --------
    >>> stateful_rate("G722", 8000), stateful_rate("OPUS", 22050)
    (16000, 24000)
    """
    return opus_rate(reported) if encoding == "OPUS" else 16000
