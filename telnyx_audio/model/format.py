"""A stream's media format: given, from ``start``, or inferred from the frames; and whether
the G.711 law it was decoded with looks right. Every guess is a warning."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from telnyx_audio import codecs
from telnyx_audio.codecs.g711law import law_score
from telnyx_audio.model.placement import mode
from telnyx_audio.model.events import MAX_SAMPLE_RATE as MAX_RATE, MIN_SAMPLE_RATE as MIN_RATE
from telnyx_audio.model.capture import DEFAULT_MEDIA_FORMAT, NOT_KNOWN
from telnyx_audio.errors import CaptureError, UnsupportedEncodingError
from telnyx_audio.model.events import MediaFormat
from telnyx_audio.model.recording import FrameTable, Recording

_CHECK_WINDOW_S = 0.5  # the law check looks at up to _CHECK_WINDOWS windows this long per track
_CHECK_WINDOWS = 20
# Bytes per millisecond of audio -> what the payloads can be (a start-less capture).
_BYTES_PER_MS = {8.0: ("PCMU", 8000), 16.0: ("L16", 8000), 32.0: ("L16", 16000), 44.1: ("L16", 22050),
                 48.0: ("L16", 24000), 96.0: ("L16", 48000)}


def as_media_format(value: MediaFormat | Mapping[str, Any] | None) -> MediaFormat | None:
    """A :class:`MediaFormat` from one or from a dict like ``start.media_format``.

    Parameters
    ----------
    value : MediaFormat, mapping or None
        ``encoding`` (any name :func:`telnyx_audio.codecs.normalize_encoding` knows),
        ``sample_rate`` (an int or a string of digits) and optional ``channels``.

    Returns
    -------
    MediaFormat or None
        None when ``value`` is None.

    Raises
    ------
    TypeError
        If ``value`` is neither a MediaFormat nor a mapping.
    ValueError
        If a field is missing or out of range.

    Examples
    --------
    >>> as_media_format({"encoding": "audio/x-alaw", "sample_rate": "8000"})
    MediaFormat(encoding='PCMA', sample_rate=8000, channels=1)
    """
    if value is None:
        return None
    if isinstance(value, MediaFormat):
        fields = {"encoding": value.encoding, "sample_rate": value.sample_rate, "channels": value.channels}
    elif isinstance(value, Mapping):
        fields = dict(value)
    else:
        raise TypeError(f"media_format must be a MediaFormat or a dict, got {type(value).__name__}")
    encoding = fields.get("encoding")
    if not isinstance(encoding, str):
        raise ValueError(f"media_format needs an encoding name, got {encoding!r}")
    encoding = codecs.normalize_encoding(encoding)
    rate = fields.get("sample_rate")
    if isinstance(rate, str) and rate.isdigit():
        rate = int(rate)
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"media_format sample_rate must be an integer from {MIN_RATE} to {MAX_RATE} Hz, got {rate!r}")
    channels = fields.get("channels", 1)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"media_format channels must be a positive integer, got {channels!r}")
    return MediaFormat(encoding, int(rate), channels)


def fmt_name(fmt: MediaFormat | None) -> str:
    return "no media_format" if fmt is None else f"{fmt.encoding} at {fmt.sample_rate} Hz"


def choose_format(given, start, table, warnings) -> tuple[MediaFormat, str | None, Exception | None]:
    """The stream's format: given, from start, or inferred; or why there is none (then
    ``NOT_KNOWN``: a rate for the empty recording, shown by the capture as ``None``)."""
    if given is not None:
        if start is not None and start.media_format != given:
            warnings.append(f"media_format given ({fmt_name(given)}) overrides the start message's"
                            f" ({fmt_name(start.media_format)})")
        fmt = given
    elif start is not None and start.media_format is not None:  # a start without one: infer, as without start
        fmt = start.media_format
    elif not len(table):
        return DEFAULT_MEDIA_FORMAT, None, None
    else:
        fmt, why = infer(table)
        if start is not None:  # there was a start, without a usable media_format: say so, not "no start"
            had = (f"the start message's media_format is unusable ({start.media_format_error})"
                   if start.media_format_error else "the start message has no media_format")
            why = why.replace("no start message", had, 1)
        if fmt is None:
            exc = CaptureError(why)
            return NOT_KNOWN, why, exc
        warnings.append(why)
    if fmt.encoding not in codecs.KNOWN_ENCODINGS:
        exc = UnsupportedEncodingError(fmt.encoding, codecs.KNOWN_ENCODINGS)
        return fmt, f"cannot decode the audio: {exc}", exc
    return fmt, None, None


def infer(table: FrameTable) -> tuple[MediaFormat | None, str]:
    """Infer the format of a stream without ``start`` from payload bytes per counter step."""
    hint = "pass --encoding and --sample-rate (media_format= in Python)"
    sizes = table.nbytes[table.nbytes > 0]
    if sizes.size == 0:
        return None, f"no start message and no usable payload to infer the media format from: {hint}"
    size = mode(sizes)
    if (sizes == size).mean() < 0.9:
        return None, (f"no start message, and payload sizes vary ({sizes.min()} to {sizes.max()} bytes): the media"
                      f" format cannot be inferred (a variable-rate codec such as OPUS or AMR-WB?): {hint}")
    frame_ms, basis = 20.0, "20 ms per chunk ASSUMED (Telnyx's usual frame; no timestamps to measure it)"
    for index in (0, 1):  # timestamps in ms settle the frame length where they are there
        rows = np.flatnonzero((table.track == index) & (table.chunk >= 0) & (table.timestamp >= 0))
        if rows.size > 1:
            rows = rows[np.argsort(table.chunk[rows], kind="stable")]
            dc, dt = np.diff(table.chunk[rows]), np.diff(table.timestamp[rows])
            ok = dc > 0
            if ok.any():
                step = float(np.median(dt[ok] / dc[ok]))
                if 2.5 <= step <= 120 and size / step in _BYTES_PER_MS:
                    frame_ms, basis = step, f"timestamps {step:g} ms apart per chunk"
                    break
    per_ms = round(size / frame_ms, 1)
    if per_ms not in _BYTES_PER_MS:
        return None, (f"no start message, and {size}-byte payloads per {frame_ms:g} ms ({per_ms:g} bytes per ms)"
                      f" fit no codec this version decodes: {hint}")
    encoding, rate = _BYTES_PER_MS[per_ms]
    what = ("G.711 or G.722 (which, and the law, read from the audio: see below)" if encoding == "PCMU"
            else f"{encoding} at {rate} Hz")
    return MediaFormat(encoding, rate, 1), (
        f"no start message: inferred {what} from {size}-byte payloads and {basis}; if wrong, {hint}")


def _excerpt(track: np.ndarray, rate: int) -> np.ndarray:
    """Up to _CHECK_WINDOWS short windows spread over the track (a bounded cost per call)."""
    win = int(_CHECK_WINDOW_S * rate)
    if track.size <= win * _CHECK_WINDOWS:
        return track
    starts = np.linspace(0, track.size - win, _CHECK_WINDOWS).astype(np.int64)
    return track[starts[:, None] + np.arange(win)].reshape(-1)


def law_scores(recording: Recording, encoding: str) -> list[tuple[str, float]]:
    """Per track with sound, :func:`telnyx_audio.analysis.check_codec`'s score (> 0.5: the
    other law reads the bytes more naturally)."""
    scores = []
    for index, name in enumerate(("inbound", "outbound")):
        if name in recording.tracks:
            pcm = _excerpt(recording.audio[index], recording.sample_rate)
            if pcm.any():
                scores.append((name, law_score(pcm, encoding)))
    return scores


def check_law(recording: Recording, fmt: MediaFormat, warnings: list[str]) -> None:
    """Warn where the audio looks decoded with the wrong G.711 law (loud static)."""
    other = "PCMA" if fmt.encoding == "PCMU" else "PCMU"
    for name, score in law_scores(recording, fmt.encoding):
        if score > 0.5:
            warnings.append(f"{name}: the audio decoded as {fmt.encoding} looks like static and reads naturally as"
                            f" {other} (score {score:+.2f}): if it sounds wrong, decode with --encoding {other}"
                            f" (media_format={{'encoding': '{other}', 'sample_rate': {fmt.sample_rate}}})")
