"""Analysis of call audio: spectrograms, voice activity, call metrics, DTMF, codec checks.

Everything takes the arrays the core produces, int16 or float32, at the stream's real sample
rate, with time on the last axis (two tracks as ``(2, n)``: ``[inbound, outbound]``). A
:class:`~telnyx_audio.Recording`, a :class:`~telnyx_audio.Capture` or one of a recording's
tracks carries its sample rate, so ``sr=`` is needed only for plain arrays. All of it is
whole-array numpy: no Python loop per frame or per sample, so hour-long calls are quick.

Modules, by subject: :mod:`~telnyx_audio.analysis.spectra` (spectrograms),
:mod:`~telnyx_audio.analysis.vad` (voice activity), :mod:`~telnyx_audio.analysis.metrics`
(levels and call metrics), :mod:`~telnyx_audio.analysis.dtmf` (in-band digits) and
:mod:`~telnyx_audio.analysis.codec` (G.711 law check).
"""

from __future__ import annotations

from telnyx_audio.analysis.codec import CodecCheck, check_codec
from telnyx_audio.analysis.dtmf import DTMF_HIGH, DTMF_KEYS, DTMF_LOW, cross_check_dtmf, detect_dtmf
from telnyx_audio.analysis.metrics import CallAnalysis, analyze_call, levels
from telnyx_audio.analysis.spectra import Spectrogram, spectrogram
from telnyx_audio.analysis.vad import Speech, detect_speech, speech_score

__all__ = [
    "Spectrogram",
    "spectrogram",
    "Speech",
    "detect_speech",
    "speech_score",
    "CallAnalysis",
    "analyze_call",
    "levels",
    "detect_dtmf",
    "cross_check_dtmf",
    "CodecCheck",
    "check_codec",
    "DTMF_LOW",
    "DTMF_HIGH",
    "DTMF_KEYS",
]
