"""Call Control: start and stop streaming, forking and transcription on a live call.

A thin client over Telnyx's REST actions (``POST /calls/{call_control_id}/actions/{action}``)
built on one ``requests.Session``. Every argument is checked before anything leaves the
machine. An enumerated value (codec, track, engine...) close to one Telnyx defines is refused
with "did you mean"; any other well-formed value is sent with an
:class:`~telnyx_audio.errors.UnknownValueWarning`, because Telnyx adds values (transcription
engines especially) faster than any copy of its spec: the client never refuses a value only
because its list is older. ``Unchecked("new-value")`` sends a value as is, with no check and
no warning. The known values come from :data:`ENUM_SOURCE`.

>>> client = TelnyxClient(api_key="KEY", base_url="http://127.0.0.1:9")  # doctest: +ELLIPSIS
>>> client
TelnyxClient(base_url='http://127.0.0.1:9', api_key='***')

Method names and arguments follow Telnyx's official SDK, so
``client.calls.actions.start_streaming(call_control_id, stream_url=...)`` reads the same here.

Errors: :class:`TelnyxAPIError` carries Telnyx's error body (HTTP status, code, title,
detail, source pointer); :class:`CallEndedError` is its 90018 "call has already ended";
:class:`TelnyxConnectionError` is a network failure that outlasted the retries. Retries, with
exponential backoff and jitter and honouring ``Retry-After``, cover 408, 409, 429, 5xx and
connection errors, bounded in count and in total time. The API key never appears in a repr,
an exception, a log line or a file.

The package holds two modules: :mod:`~telnyx_audio.callcontrol.values` (the enums, their
source, and the check) and :mod:`~telnyx_audio.callcontrol.client` (the client and handles).
"""

from __future__ import annotations

from telnyx_audio.callcontrol.client import (
    DEFAULT_BASE_URL,
    RETRY_STATUSES,
    CommandResult,
    StreamHandle,
    TelnyxClient,
    TranscriptionHandle,
)
from telnyx_audio.callcontrol.values import (
    BIDIRECTIONAL_CODECS,
    BIDIRECTIONAL_MODES,
    BIDIRECTIONAL_SAMPLING_RATES,
    BIDIRECTIONAL_TARGET_LEGS,
    DEEPGRAM_MODELS,
    ENUM_SOURCE,
    FORK_START_STREAM_TYPES,
    FORK_STOP_STREAM_TYPES,
    GOOGLE_MODELS,
    STREAM_CODECS,
    STREAM_TRACKS,
    TRANSCRIPTION_ENGINES,
    TRANSCRIPTION_MODELS,
    TRANSCRIPTION_TRACKS,
    Unchecked,
    check_choice,
    encode_client_state,
)
from telnyx_audio.errors import CallEndedError, TelnyxAPIError, TelnyxConnectionError, UnknownValueWarning

__all__ = [
    "DEFAULT_BASE_URL",
    "TelnyxClient",
    "CommandResult",
    "Unchecked",
    "UnknownValueWarning",
    "TelnyxAPIError",
    "CallEndedError",
    "TelnyxConnectionError",
    "encode_client_state",
    "check_choice",
    "StreamHandle",
    "TranscriptionHandle",
    "ENUM_SOURCE",
    "STREAM_TRACKS",
    "STREAM_CODECS",
    "BIDIRECTIONAL_MODES",
    "BIDIRECTIONAL_CODECS",
    "BIDIRECTIONAL_SAMPLING_RATES",
    "BIDIRECTIONAL_TARGET_LEGS",
    "FORK_START_STREAM_TYPES",
    "FORK_STOP_STREAM_TYPES",
    "TRANSCRIPTION_TRACKS",
    "TRANSCRIPTION_ENGINES",
    "TRANSCRIPTION_MODELS",
    "GOOGLE_MODELS",
    "DEEPGRAM_MODELS",
    "RETRY_STATUSES",
]
