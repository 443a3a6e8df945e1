"""telnyx_audio: capture, decode and analyse Telnyx voice-call audio from Python and Jupyter.

The public API is what ``__all__`` lists; names load on first use, so ``import
telnyx_audio`` stays fast (numpy, soundfile and the rest are imported where used).

>>> import telnyx_audio as ta
>>> ta.parse_message('{"event": "connected", "version": "1.0.0"}').version
'1.0.0'
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    # protocol (sans-I/O)
    "parse_message": "streams.protocol",
    "media_message": "streams.protocol",
    "mark_message": "streams.protocol",
    "clear_message": "streams.protocol",
    "Connected": "streams.protocol",
    "Start": "streams.protocol",
    "Media": "streams.protocol",
    "Dtmf": "streams.protocol",
    "Mark": "streams.protocol",
    "StreamError": "streams.protocol",
    "Stop": "streams.protocol",
    "Malformed": "streams.protocol",
    "MediaFormat": "streams.protocol",
    "TRACKS": "streams.protocol",
    # codecs
    "decode": "codecs",
    "encode": "codecs",
    "decode_payloads": "codecs",
    "normalize_encoding": "codecs",
    "encode_payloads": "codecs",
    "encode_mp3": "codecs",
    # recording
    "FrameTable": "model",
    "Recording": "model",
    "TrackReport": "model",
    "assemble": "model",
    "assemble_events": "model",
    # capture files and WAV
    "Capture": "model",
    "read_capture": "read",
    "read_captures": "read",
    "write_wav": "model.wav",
    "write_wavs": "model.wav",
    "write_call": "model.wav",
    # webhooks
    "verify_webhook": "webhooks",
    "sign_webhook": "webhooks",
    "load_webhooks": "webhooks",
    "transcripts": "webhooks",
    "call_timeline": "webhooks",
    "WebhookReceiver": "webhooks.receiver",
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
    "Track": "model.track",
    # call quality and diagnosis
    "emodel": "analysis.emodel",
    "EModel": "analysis.emodel",
    "detect_echo": "analysis.echo",
    "diagnose": "diagnosis",
    "Diagnosis": "diagnosis",
    # capture server and simulator
    "CaptureServer": "streams.server",
    "serve": "streams.server",
    "simulate": "simulators.stream",
    "simulate_async": "simulators.stream",
    # forks: RTP from fork_start
    "ForkReceiver": "forks.receiver",
    "read_fork_captures": "forks.read",
    "simulate_fork": "simulators.fork",
    # packets: pcap / pcapng files
    "read_pcap_captures": "packets.read",
    "iter_pcap_captures": "packets.read",
    "rtp_streams": "packets.read",
    "sip_ladder": "packets.ladder",
    "plot_ladder": "packets.ladder",
    # batch at scale
    "batch": "fleet",
    "BatchResult": "fleet",
    # redaction
    "redact": "redaction",
    "RedactionResult": "redaction",
    "RedactionError": "errors",
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
    "NotACaptureError": "errors",
    "MultipleStreamsError": "errors",
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

# Public module paths of 0.1, before the layered layout: still importable, with a
# DeprecationWarning that names the new path. (Importing the new path directly is silent.)
_MOVED = {
    "telnyx_audio.server": "telnyx_audio.streams.server",
    "telnyx_audio.protocol": "telnyx_audio.streams.protocol",
    "telnyx_audio.simulator": "telnyx_audio.simulators.stream",
    "telnyx_audio.receiver": "telnyx_audio.webhooks.receiver",
    "telnyx_audio.capture": "telnyx_audio.read",
    "telnyx_audio.recording": "telnyx_audio.model",
    "telnyx_audio.wav": "telnyx_audio.model.wav",
    "telnyx_audio.track": "telnyx_audio.model.track",
    "telnyx_audio.fork": "telnyx_audio.forks",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import an old module path as the module that now holds its names."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        return importlib.util.spec_from_loader(name, self) if name in _MOVED else None

    def create_module(self, spec: Any) -> Any:
        new = _MOVED[spec.name]
        warnings.warn(f"{spec.name} is now {new}: import it from there", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: Any) -> None:
        """Nothing to run: the module was imported under its new name."""


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())




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
    from telnyx_audio.analysis.echo import detect_echo
    from telnyx_audio.analysis.emodel import EModel, emodel
    from telnyx_audio.diagnosis import Diagnosis, diagnose
    from telnyx_audio.model import Capture
    from telnyx_audio.read import read_capture, read_captures
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
        MultipleStreamsError,
        NotACaptureError,
        TelnyxAudioError,
        TimestampToleranceError,
        UnknownValueWarning,
        UnsupportedEncodingError,
        WebhookVerificationError,
    )
    from telnyx_audio.streams.protocol import (
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
    from telnyx_audio.model import FrameTable, Recording, TrackReport, assemble, assemble_events
    from telnyx_audio.plots import plot_call, plot_spectrogram, plot_spectrograms, plot_waveform
    from telnyx_audio.model.track import Track
    from telnyx_audio.webhooks.receiver import WebhookReceiver
    from telnyx_audio.streams.server import CaptureServer, serve
    from telnyx_audio.simulators.stream import simulate, simulate_async
    from telnyx_audio.forks.read import read_fork_captures
    from telnyx_audio.packets.ladder import plot_ladder, sip_ladder
    from telnyx_audio.packets.read import iter_pcap_captures, read_pcap_captures, rtp_streams
    from telnyx_audio.forks.receiver import ForkReceiver
    from telnyx_audio.simulators.fork import simulate_fork
    from telnyx_audio.fleet import BatchResult, batch
    from telnyx_audio.redaction import RedactionResult, redact
    from telnyx_audio.errors import RedactionError
    from telnyx_audio.model.wav import write_call, write_wav, write_wavs
    from telnyx_audio.webhooks import (
        call_timeline,
        decode_client_state,
        load_webhooks,
        sign_webhook,
        transcripts,
        verify_webhook,
    )
