"""telnyx_audio: capture, decode and analyse Telnyx voice-call audio from Python and Jupyter.

The public API is what ``__all__`` lists; names load on first use, so ``import
telnyx_audio`` stays fast (numpy, soundfile and the rest are imported where used).

>>> import telnyx_audio as ta
>>> ta.parse_message('{"event": "connected", "version": "1.0.0"}').version
'1.0.0'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    # protocol (sans-I/O)
    "parse_message": "protocol",
    "media_message": "protocol",
    "mark_message": "protocol",
    "clear_message": "protocol",
    "Connected": "protocol",
    "Start": "protocol",
    "Media": "protocol",
    "Dtmf": "protocol",
    "Mark": "protocol",
    "StreamError": "protocol",
    "Stop": "protocol",
    "Malformed": "protocol",
    "MediaFormat": "protocol",
    "TRACKS": "protocol",
    # codecs
    "decode": "codecs",
    "encode": "codecs",
    "decode_payloads": "codecs",
    "normalize_encoding": "codecs",
    "encode_payloads": "codecs",
    "encode_mp3": "codecs",
    # recording
    "FrameTable": "recording",
    "Recording": "recording",
    "TrackReport": "recording",
    "assemble": "recording",
    "assemble_events": "recording",
    # capture files and WAV
    "Capture": "capture",
    "read_capture": "capture",
    "read_captures": "capture",
    "write_wav": "wav",
    "write_wavs": "wav",
    "write_call": "wav",
    # webhooks
    "verify_webhook": "webhooks",
    "sign_webhook": "webhooks",
    "load_webhooks": "webhooks",
    "transcripts": "webhooks",
    "call_timeline": "webhooks",
    "WebhookReceiver": "receiver",
    "decode_client_state": "webhooks",
    # analysis and plots
    "spectrogram": "analysis",
    "detect_speech": "analysis",
    "analyze_call": "analysis",
    "levels": "analysis",
    "detect_dtmf": "analysis",
    "cross_check_dtmf": "analysis",
    "check_codec": "analysis",
    "plot_spectrogram": "plots",
    "plot_waveform": "plots",
    "plot_call": "plots",
    "plot_spectrograms": "plots",
    "speech_score": "analysis",
    "CallAnalysis": "analysis",
    "Track": "track",
    # capture server and simulator
    "CaptureServer": "server",
    "serve": "server",
    "simulate": "simulator",
    "simulate_async": "simulator",
    # forks: RTP from fork_start
    "ForkReceiver": "fork",
    "read_fork_captures": "fork",
    "simulate_fork": "fork",
    # batch at scale
    "batch": "fleet",
    "BatchResult": "fleet",
    # call control
    "TelnyxClient": "callcontrol",
    "CommandResult": "callcontrol",
    "Unchecked": "callcontrol",
    "UnknownValueWarning": "errors",
    "TelnyxAPIError": "errors",
    "CallEndedError": "errors",
    "TelnyxConnectionError": "errors",
    "encode_client_state": "callcontrol",
    # errors
    "TelnyxAudioError": "errors",
    "UnsupportedEncodingError": "errors",
    "CodecUnavailableError": "errors",
    "CorruptPacketError": "errors",
    "CaptureError": "errors",
    "WebhookVerificationError": "errors",
    "MissingHeaderError": "errors",
    "MalformedTimestampError": "errors",
    "TimestampToleranceError": "errors",
    "MalformedKeyError": "errors",
    "MalformedSignatureError": "errors",
    "InvalidSignatureError": "errors",
    "MalformedPayloadError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'telnyx_audio' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"telnyx_audio.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from telnyx_audio.analysis import (
        CallAnalysis,
        analyze_call,
        check_codec,
        cross_check_dtmf,
        detect_dtmf,
        detect_speech,
        levels,
        spectrogram,
        speech_score,
    )
    from telnyx_audio.callcontrol import (
        CallEndedError,
        CommandResult,
        TelnyxAPIError,
        TelnyxClient,
        TelnyxConnectionError,
        Unchecked,
        encode_client_state,
    )
    from telnyx_audio.capture import Capture, read_capture, read_captures
    from telnyx_audio.codecs import decode, decode_payloads, encode, encode_mp3, encode_payloads, normalize_encoding
    from telnyx_audio.errors import (
        CaptureError,
        CodecUnavailableError,
        CorruptPacketError,
        InvalidSignatureError,
        MalformedKeyError,
        MalformedPayloadError,
        MalformedSignatureError,
        MalformedTimestampError,
        MissingHeaderError,
        TelnyxAudioError,
        TimestampToleranceError,
        UnknownValueWarning,
        UnsupportedEncodingError,
        WebhookVerificationError,
    )
    from telnyx_audio.protocol import (
        TRACKS,
        Connected,
        Dtmf,
        Malformed,
        Mark,
        Media,
        MediaFormat,
        Start,
        Stop,
        StreamError,
        clear_message,
        mark_message,
        media_message,
        parse_message,
    )
    from telnyx_audio.recording import FrameTable, Recording, TrackReport, assemble, assemble_events
    from telnyx_audio.plots import plot_call, plot_spectrogram, plot_spectrograms, plot_waveform
    from telnyx_audio.track import Track
    from telnyx_audio.receiver import WebhookReceiver
    from telnyx_audio.server import CaptureServer, serve
    from telnyx_audio.simulator import simulate, simulate_async
    from telnyx_audio.fork import ForkReceiver, read_fork_captures, simulate_fork
    from telnyx_audio.fleet import BatchResult, batch
    from telnyx_audio.wav import write_call, write_wav, write_wavs
    from telnyx_audio.webhooks import (
        call_timeline,
        decode_client_state,
        load_webhooks,
        sign_webhook,
        transcripts,
        verify_webhook,
    )
