"""Encoding audio for Telnyx: media payloads in every codec, and whole MP3 files.

- :func:`encode_payloads` (``rtp`` bidirectional mode, and the simulator): int16 audio to
  one payload per message in PCMU, PCMA, L16, G722 or OPUS, at the rate the codec takes.
- :func:`encode_mp3` (``mp3`` mode, Telnyx's default): whole MP3 files of at least a second
  each (Telnyx plays at most one MP3 message per second).

Which rate the audio is encoded at: G.711 is 8 kHz audio and G.722 16 kHz audio whatever
``stream_bidirectional_sampling_rate`` says (Telnyx writes 8000 for G722: its RTP clock);
L16 takes the requested rate as is; OPUS encodes at the requested rate where libopus can
(8/12/16/24/48 kHz) and else at the next one up (22050 -> 24000: an Opus packet plays at
any rate). Resampling is libsoxr's (:func:`telnyx_audio._util.dsp.resample`); encoders are
FFmpeg's (PyAV): ``g722``, ``libopus``, ``libmp3lame``.
"""

from __future__ import annotations

import numpy as np

from telnyx_audio.codecs.registry import REGISTRY, normalize_encoding

__all__ = ["BIDIRECTIONAL_RATES", "INPUT_RATES", "encode_payloads", "encode_mp3", "encoding_rate", "check_encoder"]

#: ``stream_bidirectional_sampling_rate`` values Telnyx accepts: the only ``target_rate``
#: values taken (anything else would be encoded for a rate Telnyx never plays).
BIDIRECTIONAL_RATES: tuple[int, ...] = (8000, 16000, 22050, 24000, 48000)
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
#: The rates audio to send may come at (``sample_rate``): telephone 8 kHz to studio 192 kHz.
#: Below, a typo (``1``, ``True``: resampled 8000x up); above, a typo again (``1e9``: gigabytes
#: of resampled audio, or nothing at all).
INPUT_RATES: tuple[int, int] = (8000, 192000)


def _check_input_rate(sample_rate: object) -> int:
    """``sample_rate`` as an int within :data:`INPUT_RATES`, or the error naming it."""
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(sample_rate, (int, np.integer, float, np.floating)):
        raise TypeError(f"sample_rate must be a number of Hz (int), got {type(sample_rate).__name__} {sample_rate!r}")
    lo, hi = INPUT_RATES
    if not (float(sample_rate).is_integer() and lo <= sample_rate <= hi):
        raise ValueError(f"sample_rate must be a whole number of Hz from {lo} to {hi}, got {sample_rate!r}")
    return int(sample_rate)


def _check_not_empty(audio: np.ndarray) -> np.ndarray:
    if audio.size == 0:
        raise ValueError("pcm is empty: there is no audio to encode")
    return audio


def encoding_rate(encoding: str, target_rate: int) -> int:
    """The audio rate ``encoding`` is encoded at when Telnyx is told ``target_rate``.

    Examples
    --------
    >>> encoding_rate("PCMU", 16000), encoding_rate("G722", 8000), encoding_rate("OPUS", 22050)
    (8000, 16000, 24000)
    >>> encoding_rate("L16", 22050)
    22050

    Raises
    ------
    ValueError
        If ``target_rate`` is not one of :data:`BIDIRECTIONAL_RATES` (the rates Telnyx takes).
    """
    enc = normalize_encoding(encoding)
    if (isinstance(target_rate, (bool, np.bool_)) or not isinstance(target_rate, (int, np.integer))
            or int(target_rate) not in BIDIRECTIONAL_RATES):
        raise ValueError(f"target_rate must be one of the rates Telnyx takes"
                         f" ({', '.join(map(str, BIDIRECTIONAL_RATES))} Hz), got {target_rate!r}")
    return REGISTRY[enc].rate(int(target_rate))


def _as_mono_int16(pcm: np.ndarray) -> np.ndarray:
    from telnyx_audio._util.dsp import to_int16

    audio = np.asarray(pcm)
    if audio.ndim != 1:
        raise ValueError(f"pcm must be mono, shape (n,), got shape {audio.shape}")
    return np.ascontiguousarray(to_int16(audio))


def _av_encode(codec: str, audio: np.ndarray, rate: int, fmt: str = "s16", bit_rate: int | None = None,
               options: dict[str, str] | None = None) -> list[bytes]:
    """Encode mono int16 audio with an FFmpeg encoder; the packets, flushed, in order."""
    import av

    ctx = av.CodecContext.create(codec, "w")
    ctx.sample_rate, ctx.layout, ctx.format = rate, "mono", fmt
    if bit_rate:
        ctx.bit_rate = bit_rate
    if options:
        ctx.options = options
    ctx.open()
    step = ctx.frame_size or audio.size or 1
    packets: list[bytes] = []
    for i in range(0, audio.size, step):
        block = audio[i : i + step]
        if block.size < step and ctx.frame_size:
            block = np.concatenate([block, np.zeros(step - block.size, np.int16)])  # the last frame, padded
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format=fmt, layout="mono")
        frame.sample_rate = rate
        packets.extend(bytes(p) for p in ctx.encode(frame))
    packets.extend(bytes(p) for p in ctx.encode(None))
    return packets


def encode_payloads(pcm: np.ndarray, sample_rate: int, encoding: str, *, target_rate: int | None = None,
                    payload_s: float = 0.02) -> list[bytes]:
    """Encode mono audio into Telnyx media payloads (raw codec bytes, one per message).

    Parameters
    ----------
    pcm : np.ndarray, shape (n,)
        int16, or float in [-1, 1).
    sample_rate : int
        The rate of ``pcm`` (Hz, within :data:`INPUT_RATES`); resampled (soxr) to the rate
        the codec is encoded at.
    encoding : str
        ``PCMU PCMA L16 G722 OPUS AMR-WB`` in any case or MIME spelling.
    target_rate : int, optional
        ``stream_bidirectional_sampling_rate``, one of :data:`BIDIRECTIONAL_RATES` (8000 by
        default, as Telnyx's): see :func:`encoding_rate` for what each codec makes of it.
    payload_s : float
        Audio per payload: 20 ms for live-like frames (the simulator), up to 30 s for
        talking back. OPUS is always 20 ms packets (one Opus packet per message, and a
        packet holds at most 120 ms); the last payload is padded with silence to 20 ms (and
        to whole codec frames).

    Returns
    -------
    list of bytes

    Raises
    ------
    UnsupportedEncodingError
        For an unknown encoding; :class:`~telnyx_audio.codecs.wideband.CodecUnavailableError`
        (a subclass) for AMR-WB when the installed FFmpeg has no AMR-WB encoder.
    ValueError, TypeError
        For empty ``pcm``, or a rate outside :data:`INPUT_RATES` / :data:`BIDIRECTIONAL_RATES`.

    Examples
    --------
    >>> tone = (8000 * np.sin(np.arange(16000) / 5)).astype(np.int16)
    >>> [len(p) for p in encode_payloads(tone, 16000, "G722", payload_s=0.5)]
    [4000, 4000]
    >>> len(encode_payloads(tone, 16000, "opus", target_rate=16000))   # 1 s + the encoder's lookahead
    51
    >>> encode_payloads(np.zeros(4, np.int16), 8000, "audio/x-mulaw") == [b"\\xff" * 160]   # 20 ms at least
    True
    """
    enc = normalize_encoding(encoding)
    rate = encoding_rate(enc, 8000 if target_rate is None else target_rate)
    in_rate = _check_input_rate(sample_rate)
    if not 0.0025 <= payload_s <= 30.0:
        raise ValueError(f"payload_s must be within 2.5 ms and 30 s, got {payload_s!r}")
    from telnyx_audio._util.dsp import resample

    audio = resample(_check_not_empty(_as_mono_int16(pcm)), in_rate, rate)
    if enc == "OPUS":
        return _av_encode("libopus", audio, rate, bit_rate=max(rate * 2, 16000),
                          options={"frame_duration": "20", "application": "voip"})
    if enc == "AMR-WB":
        return _amrwb_payloads(audio, payload_s)
    step = max(int(round(rate * payload_s)), 1)
    short = audio.size % step
    if short and short < rate // 50:  # no payload under 20 ms (Telnyx's least): pad the last with silence
        audio = np.concatenate([audio, np.zeros(rate // 50 - short, np.int16)])
    if enc == "G722":
        step += step % 2  # two samples per byte
        data = b"".join(_av_encode("g722", np.concatenate([audio, np.zeros(audio.size % 2, np.int16)]), rate))
        return [data[i : i + step // 2] for i in range(0, len(data), step // 2)]
    from telnyx_audio.codecs.g711 import bytes_per_sample, encode

    data, bps = encode(audio, enc), bytes_per_sample(enc)
    return [data[i : i + step * bps] for i in range(0, len(data), step * bps)]


def check_encoder(encoding: str) -> str:
    """The canonical name of ``encoding`` if this installation can encode it; else raise.

    Raises
    ------
    UnsupportedEncodingError
        For an unknown name; its subclass
        :class:`~telnyx_audio.codecs.wideband.CodecUnavailableError` when FFmpeg lacks the
        encoder (AMR-WB: PyAV's FFmpeg has no libvo-amrwbenc).

    Examples
    --------
    >>> check_encoder("g722")
    'G722'
    """
    enc = normalize_encoding(encoding)
    codec = {"G722": "g722", "OPUS": "libopus", "AMR-WB": "libvo_amrwbenc"}.get(enc)
    if codec is None:
        return enc
    import av

    from telnyx_audio.codecs.wideband import CodecUnavailableError

    try:
        av.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError:
        hint = " (choose G722 or OPUS for wideband)" if enc == "AMR-WB" else ""
        raise CodecUnavailableError(
            enc, f"the installed FFmpeg (PyAV {av.__version__}) has no {enc} encoder ({codec}){hint}") from None
    return enc


def _amrwb_payloads(audio: np.ndarray, payload_s: float) -> list[bytes]:
    from telnyx_audio.codecs import amrwb

    check_encoder("AMR-WB")
    frames = _av_encode("libvo_amrwbenc", audio, 16000, bit_rate=23850)  # pragma: no cover - not in PyAV's build
    per = max(int(payload_s / 0.02), 1)  # pragma: no cover
    return [amrwb.pack(frames[i : i + per], "octet-aligned") for i in range(0, len(frames), per)]  # pragma: no cover


def encode_mp3(pcm: np.ndarray, sample_rate: int, *, file_s: float = 1.0, bit_rate: int = 48000) -> list[bytes]:
    """Encode mono audio as whole MP3 files for Telnyx's ``mp3`` mode (libmp3lame).

    Parameters
    ----------
    pcm : np.ndarray, shape (n,)
        int16, or float in [-1, 1).
    sample_rate : int
        Its rate (within :data:`INPUT_RATES`); kept where MP3 has it (8 to 48 kHz), else
        resampled to 24 kHz.
    file_s : float
        Audio per file, at least 1 s: Telnyx plays at most one MP3 message per second, so
        shorter files would play late. The last file holds the rest (at least 1 s with the
        one before it when the rest is short).
    bit_rate : int
        bits/s.

    Returns
    -------
    list of bytes
        Each a complete MP3 file (MPEG audio frames, playable on its own).

    Raises
    ------
    ValueError, TypeError
        For empty ``pcm`` or a rate outside :data:`INPUT_RATES`.

    Examples
    --------
    >>> files = encode_mp3(np.zeros(24000 * 3, np.int16), 24000, file_s=1.5)
    >>> len(files), files[0][:2] == b"\\xff\\xf3"   # MPEG-2 layer III frame sync
    (2, True)
    """
    if file_s < 1.0:
        raise ValueError(f"file_s must be at least 1 s (Telnyx plays one MP3 message per second), got {file_s!r}")
    rate = _check_input_rate(sample_rate)
    audio = _check_not_empty(_as_mono_int16(pcm))
    if rate not in _MP3_RATES:
        from telnyx_audio._util.dsp import resample

        audio, rate = resample(audio, rate, 24000), 24000
    step = int(rate * file_s)
    cuts = list(range(0, audio.size, step)) or [0]
    if len(cuts) > 1 and audio.size - cuts[-1] < rate:  # no last file under a second: join it on
        cuts.pop()
    bounds = cuts[1:] + [audio.size]
    return [b"".join(_av_encode("libmp3lame", audio[a:b], rate, fmt="s16p", bit_rate=bit_rate))
            for a, b in zip(cuts, bounds)]
