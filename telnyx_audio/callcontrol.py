"""Call Control: start and stop streaming, forking and transcription on a live call.

A thin client over Telnyx's REST actions (``POST /calls/{call_control_id}/actions/{action}``)
built on one ``requests.Session``. Every argument is checked before anything leaves the
machine, with an error that lists the allowed values; a value Telnyx added after this
version can still be sent on purpose by wrapping it: ``Unchecked("new-value")``.

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
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import random
import time
import uuid
import warnings
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit

from telnyx_audio.errors import CallEndedError, TelnyxAPIError, TelnyxConnectionError

__all__ = [
    "DEFAULT_BASE_URL",
    "TelnyxClient",
    "CommandResult",
    "Unchecked",
    "TelnyxAPIError",
    "CallEndedError",
    "TelnyxConnectionError",
    "encode_client_state",
    "StreamHandle",
    "TranscriptionHandle",
    "STREAM_TRACKS",
    "STREAM_CODECS",
    "TRANSCRIPTION_ENGINES",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.telnyx.com/v2"
STREAM_TRACKS = ("inbound_track", "outbound_track", "both_tracks")
STREAM_CODECS = ("PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16", "default")
BIDIRECTIONAL_MODES = ("mp3", "rtp")
BIDIRECTIONAL_CODECS = ("PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16")
BIDIRECTIONAL_SAMPLING_RATES = (8000, 16000, 22050, 24000, 48000)
BIDIRECTIONAL_TARGET_LEGS = ("opposite", "self", "both")
FORK_START_STREAM_TYPES = ("decrypted",)
FORK_STOP_STREAM_TYPES = ("raw", "decrypted")
TRANSCRIPTION_TRACKS = ("inbound", "outbound", "both")
TRANSCRIPTION_ENGINES = ("Google", "Telnyx", "Deepgram", "Azure", "xAI", "AssemblyAI", "Speechmatics", "Soniox", "Parakeet", "A", "B")
DEEPGRAM_MODELS = ("deepgram/nova-2", "deepgram/nova-3")
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class Unchecked:
    """A value sent as-is, past local validation: for values Telnyx added after this version.

    >>> Unchecked("Whisperer").value
    'Whisperer'
    """

    value: Any


@dataclass(frozen=True)
class CommandResult:
    """Telnyx's answer to a command: ``result`` is ``"ok"`` when it was accepted."""

    result: str | None
    action: str
    call_control_id: str
    command_id: str | None
    status: int
    request_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """Whether Telnyx accepted the command (``result == "ok"``)."""
        return self.result == "ok"


def encode_client_state(state: str | bytes | Mapping[str, Any] | list | None) -> str | None:
    """Base64-encode client state for Telnyx (which echoes it in every later webhook).

    ``str`` is encoded as UTF-8, ``bytes`` as given, a dict or list as compact JSON;
    :func:`telnyx_audio.webhooks.decode_client_state` reverses it.

    >>> encode_client_state({"order": 7})
    'eyJvcmRlciI6N30='
    """
    if state is None:
        return None
    if isinstance(state, Unchecked):
        return state.value
    if isinstance(state, str):
        raw = state.encode("utf-8")
    elif isinstance(state, (bytes, bytearray)):
        raw = bytes(state)
    elif isinstance(state, (Mapping, list)):
        try:
            raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
        except TypeError as exc:
            raise TypeError(f"client_state dict must be JSON-able: {exc}") from None
    else:
        raise TypeError(f"client_state must be str, bytes or a JSON-able dict, got {type(state).__name__}")
    return base64.b64encode(raw).decode("ascii")


def _choice(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    if value is None:
        return None
    if isinstance(value, Unchecked):
        warnings.warn(f"sending {name}={value.value!r} unchecked (not one of {list(allowed)})", UserWarning, stacklevel=4)
        return value.value
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {shown}; got {value!r} (wrap a newer value in Unchecked(...) to send it anyway)")
    return value


def _udp_target(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, Unchecked):
        return value.value
    if not isinstance(value, str) or not value.startswith("udp:"):
        raise ValueError(f"{name} must look like 'udp:IP:PORT', got {value!r}")
    host, sep, port = value[4:].rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{name} must look like 'udp:IP:PORT' with an IP address, got {value!r}") from None
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{name} must end in a port 1-65535 ('udp:IP:PORT'), got {value!r}")
    return value


def _custom_parameters(value: Any) -> list[dict[str, str]] | None:
    if value is None:
        return None
    items = [{"name": k, "value": v} for k, v in value.items()] if isinstance(value, Mapping) else value
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"custom_parameters must be a dict or a list of {{name, value}}, got {type(value).__name__}")
    out = []
    for item in items:
        if not isinstance(item, Mapping) or set(item) != {"name", "value"}:
            raise ValueError(f"each custom parameter must be {{'name': ..., 'value': ...}}, got {item!r}")
        if not isinstance(item["name"], str) or not item["name"]:
            raise ValueError(f"a custom parameter's name must be a non-empty string, got {item['name']!r}")
        if not isinstance(item["value"], str):
            raise TypeError(f"custom parameter {item['name']!r} must have a string value, got {type(item['value']).__name__}")
        out.append({"name": item["name"], "value": item["value"]})
    return out


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class _Actions:
    """``client.calls.actions``: the same methods, under the SDK's path."""

    def __init__(self, client: "TelnyxClient") -> None:
        for name in ("start_streaming", "stop_streaming", "start_forking", "stop_forking",
                     "start_transcription", "stop_transcription"):
            setattr(self, name, getattr(client, name))


class _Calls:
    def __init__(self, client: "TelnyxClient") -> None:
        self.actions = _Actions(client)


class TelnyxClient:
    """A Telnyx Call Control client for media streaming, forking and transcription.

    Parameters
    ----------
    api_key : str, optional
        Defaults to ``$TELNYX_API_KEY``.
    base_url : str, optional
        Defaults to ``$TELNYX_BASE_URL``, then ``https://api.telnyx.com/v2``.
    connect_timeout_s, read_timeout_s : float
        Per request (5 s and 60 s, as Telnyx's SDK).
    max_retries : int
        Retries after the first attempt (408, 409, 429, 5xx, connection errors).
    max_retry_time_s : float
        No retry starts once this much time has passed since the first attempt.
    backoff_s : float
        First backoff; doubled each retry, with jitter, capped at ``max_backoff_s``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        max_retries: int = 3,
        max_retry_time_s: float = 60.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import requests

        key = api_key if api_key is not None else os.environ.get("TELNYX_API_KEY")
        if not key:
            raise ValueError("no Telnyx API key: pass api_key= or set TELNYX_API_KEY")
        self.__key = key
        self.base_url = (base_url or os.environ.get("TELNYX_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if max_retries < 0 or backoff_s < 0 or max_retry_time_s < 0:
            raise ValueError("max_retries, backoff_s and max_retry_time_s must not be negative")
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.max_retries = max_retries
        self.max_retry_time_s = max_retry_time_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._session = requests.Session()
        self._fork_types: dict[str, str] = {}
        self.calls = _Calls(self)

    def __repr__(self) -> str:
        return f"TelnyxClient(base_url={self.base_url!r}, api_key='***')"

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def __enter__(self) -> "TelnyxClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the six actions --------------------------------------------------------------------

    def start_streaming(
        self,
        call_control_id: str,
        *,
        stream_url: str | None = None,
        stream_track: str | None = None,
        stream_codec: str | None = None,
        stream_auth_token: str | None = None,
        custom_parameters: Mapping[str, str] | Sequence[Mapping[str, str]] | None = None,
        stream_bidirectional_mode: str | None = None,
        stream_bidirectional_codec: str | None = None,
        stream_bidirectional_sampling_rate: int | None = None,
        stream_bidirectional_target_legs: str | None = None,
        enable_dialogflow: bool | None = None,
        dialogflow_config: Mapping[str, bool] | None = None,
        client_state: str | bytes | Mapping[str, Any] | None = None,
        command_id: str | bool | None = True,
    ) -> CommandResult:
        """Stream the call's audio to a WebSocket (``streaming_start``).

        Parameters
        ----------
        call_control_id : str
        stream_url : str
            ``wss://`` (or ``ws://``) URL Telnyx connects to.
        stream_track : {"inbound_track", "outbound_track", "both_tracks"}
        stream_codec : {"PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16", "default"}
            What to ask for; trust ``start.media_format`` on the stream for what you get.
        stream_auth_token : str
            At most 4,000 characters.
        custom_parameters : dict or list of {"name", "value"}
            Arrive in the stream's ``start.custom_parameters``.
        stream_bidirectional_mode : {"mp3", "rtp"}
        stream_bidirectional_codec : {"PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16"}
            ``rtp`` mode only.
        stream_bidirectional_sampling_rate : {8000, 16000, 22050, 24000, 48000}
        stream_bidirectional_target_legs : {"opposite", "self", "both"}
        enable_dialogflow : bool
        dialogflow_config : dict of {"analyze_sentiment", "partial_automated_agent_reply"}
        client_state : str, bytes or dict
            Base64-encoded for you.
        command_id : str or bool
            ``True`` (default) generates one, so retries stay idempotent; ``None`` omits it.
        """
        body: dict[str, Any] = {}
        if stream_url is not None:
            url = stream_url.value if isinstance(stream_url, Unchecked) else stream_url
            if not isinstance(stream_url, Unchecked) and urlsplit(str(url)).scheme not in ("ws", "wss"):
                raise ValueError(f"stream_url must be a ws:// or wss:// URL, got {stream_url!r}")
            body["stream_url"] = url
        body["stream_track"] = _choice("stream_track", stream_track, STREAM_TRACKS)
        body["stream_codec"] = _choice("stream_codec", stream_codec, STREAM_CODECS)
        if stream_auth_token is not None:
            if not isinstance(stream_auth_token, str) or not 0 < len(stream_auth_token) <= 4000:
                raise ValueError("stream_auth_token must be a string of 1 to 4000 characters")
            body["stream_auth_token"] = stream_auth_token
        body["custom_parameters"] = _custom_parameters(custom_parameters)
        mode = _choice("stream_bidirectional_mode", stream_bidirectional_mode, BIDIRECTIONAL_MODES)
        body["stream_bidirectional_mode"] = mode
        codec = _choice("stream_bidirectional_codec", stream_bidirectional_codec, BIDIRECTIONAL_CODECS)
        if codec is not None and mode != "rtp" and not isinstance(stream_bidirectional_codec, Unchecked):
            raise ValueError("stream_bidirectional_codec applies only with stream_bidirectional_mode='rtp'")
        body["stream_bidirectional_codec"] = codec
        rate = stream_bidirectional_sampling_rate
        if isinstance(rate, str) and rate.isdigit():
            rate = int(rate)
        body["stream_bidirectional_sampling_rate"] = _choice("stream_bidirectional_sampling_rate", rate, BIDIRECTIONAL_SAMPLING_RATES)
        body["stream_bidirectional_target_legs"] = _choice(
            "stream_bidirectional_target_legs", stream_bidirectional_target_legs, BIDIRECTIONAL_TARGET_LEGS)
        if enable_dialogflow is not None:
            if not isinstance(enable_dialogflow, bool):
                raise TypeError(f"enable_dialogflow must be a bool, got {type(enable_dialogflow).__name__}")
            body["enable_dialogflow"] = enable_dialogflow
        if dialogflow_config is not None:
            unknown = set(dialogflow_config) - {"analyze_sentiment", "partial_automated_agent_reply"}
            if unknown or not all(isinstance(v, bool) for v in dialogflow_config.values()):
                raise ValueError("dialogflow_config takes analyze_sentiment and partial_automated_agent_reply, as bools;"
                                 f" got {dict(dialogflow_config)!r}")
            body["dialogflow_config"] = dict(dialogflow_config)
        return self._command(call_control_id, "streaming_start", body, client_state, command_id)

    def stop_streaming(
        self,
        call_control_id: str,
        *,
        stream_id: str | None = None,
        client_state: str | bytes | Mapping[str, Any] | None = None,
        command_id: str | bool | None = True,
    ) -> CommandResult:
        """Stop streaming (``streaming_stop``); without ``stream_id``, every stream of the call."""
        body: dict[str, Any] = {}
        if stream_id is not None:
            if not isinstance(stream_id, Unchecked):
                try:
                    uuid.UUID(str(stream_id))
                except ValueError:
                    raise ValueError(f"stream_id must be a UUID, got {stream_id!r}") from None
            body["stream_id"] = stream_id.value if isinstance(stream_id, Unchecked) else stream_id
        return self._command(call_control_id, "streaming_stop", body, client_state, command_id)

    def start_forking(
        self,
        call_control_id: str,
        *,
        rx: str | None = None,
        tx: str | None = None,
        stream_type: str | None = "decrypted",
        client_state: str | bytes | Mapping[str, Any] | None = None,
        command_id: str | bool | None = True,
    ) -> CommandResult:
        """Fork the call's RTP to UDP targets (``fork_start``): ``rx``/``tx`` as ``udp:IP:PORT``.

        Replaces a WebSocket stream on the same call (one stream or fork per call).
        """
        if rx is None and tx is None:
            raise ValueError("start_forking needs rx, tx or both ('udp:IP:PORT')")
        body = {"rx": _udp_target("rx", rx), "tx": _udp_target("tx", tx),
                "stream_type": _choice("stream_type", stream_type, FORK_START_STREAM_TYPES)}
        result = self._command(call_control_id, "fork_start", body, client_state, command_id)
        if body["stream_type"]:
            self._fork_types[call_control_id] = body["stream_type"]
        return result

    def stop_forking(
        self,
        call_control_id: str,
        *,
        stream_type: str | None = None,
        client_state: str | bytes | Mapping[str, Any] | None = None,
        command_id: str | bool | None = True,
    ) -> CommandResult:
        """Stop forking (``fork_stop``), sending the ``stream_type`` the fork started with.

        Telnyx's default here is ``raw`` while forks start ``decrypted``: left out, this sends
        the type this client started the fork with, else ``decrypted``.
        """
        chosen = stream_type if stream_type is not None else self._fork_types.get(call_control_id, "decrypted")
        body = {"stream_type": _choice("stream_type", chosen, FORK_STOP_STREAM_TYPES)}
        result = self._command(call_control_id, "fork_stop", body, client_state, command_id)
        self._fork_types.pop(call_control_id, None)
        return result

    def start_transcription(
        self,
        call_control_id: str,
        *,
        transcription_engine: str | None = None,
        transcription_tracks: str | None = None,
        transcription_engine_config: Mapping[str, Any] | None = None,
        client_state: str | bytes | Mapping[str, Any] | None = None,
        command_id: str | bool | None = True,
    ) -> CommandResult:
        """Transcribe the call (``transcription_start``); results come as webhooks.

        Parameters
        ----------
        transcription_engine : str
            One of ``TRANSCRIPTION_ENGINES`` ("A" and "B" are Telnyx's legacy names for
            Google and Telnyx).
        transcription_tracks : {"inbound", "outbound", "both"}
        transcription_engine_config : dict
            The engine's options. Its ``transcription_engine`` field (the discriminator Telnyx
            uses to pick the schema) is filled in from ``transcription_engine`` when absent
            and must agree with it; Deepgram also needs ``transcription_model``
            (``deepgram/nova-2`` or ``deepgram/nova-3``).
        """
        engine = _choice("transcription_engine", transcription_engine, TRANSCRIPTION_ENGINES)
        body: dict[str, Any] = {"transcription_engine": engine,
                                "transcription_tracks": _choice("transcription_tracks", transcription_tracks, TRANSCRIPTION_TRACKS)}
        if transcription_engine_config is not None:
            if not isinstance(transcription_engine_config, Mapping):
                raise TypeError("transcription_engine_config must be a dict")
            config = dict(transcription_engine_config)
            config_engine = config.get("transcription_engine", engine or "Google")
            if engine is not None and config_engine != engine:
                raise ValueError(f"transcription_engine_config says transcription_engine={config_engine!r}"
                                 f" but the request says {engine!r}")
            config["transcription_engine"] = _choice("transcription_engine_config.transcription_engine",
                                                     config_engine, TRANSCRIPTION_ENGINES)
            if config["transcription_engine"] == "Deepgram":
                _choice("transcription_engine_config.transcription_model", config.get("transcription_model"), DEEPGRAM_MODELS)
                if "transcription_model" not in config:
                    raise ValueError(f"a Deepgram config needs transcription_model, one of {', '.join(DEEPGRAM_MODELS)}")
            body["transcription_engine_config"] = config
        return self._command(call_control_id, "transcription_start", body, client_state, command_id)

    def stop_transcription(
        self,
        call_control_id: str,
        *,
        client_state: str | bytes | Mapping[str, Any] | None = None,
        command_id: str | bool | None = True,
    ) -> CommandResult:
        """Stop transcription (``transcription_stop``)."""
        return self._command(call_control_id, "transcription_stop", {}, client_state, command_id)

    # --- tied to capture -----------------------------------------------------------------

    def stream_call(
        self,
        call_control_id: str,
        server: Any,
        *,
        codec: str = "PCMU",
        tracks: str = "both",
        bidirectional: str | Mapping[str, Any] | None = None,
        custom_parameters: Mapping[str, str] | None = None,
        client_state: str | bytes | Mapping[str, Any] | None = None,
        auth_token: str | None = None,
    ) -> "StreamHandle":
        """Stream a call to a running capture server; returns a handle whose ``stop()`` ends it.

        Parameters
        ----------
        server : str or capture server
            A ``wss://`` URL, or an object with ``public_url`` (or ``url``) and, when it
            requires one, ``auth_token``: both are filled into the request.
        codec : str
            ``stream_codec`` (PCMU by default: what the capture decodes without transcoding).
        tracks : {"inbound", "outbound", "both"}
        bidirectional : {"mp3", "rtp"} or dict, optional
            ``"rtp"`` plays raw audio back in ``codec`` at 8 kHz (16 kHz for L16); a dict
            gives ``mode``, ``codec``, ``sampling_rate``, ``target_legs`` explicitly.
        auth_token : str, optional
            ``stream_auth_token`` when ``server`` is a URL (an object brings its own).
        """
        track = {"inbound": "inbound_track", "outbound": "outbound_track", "both": "both_tracks"}.get(tracks)
        if track is None:
            raise ValueError(f"tracks must be 'inbound', 'outbound' or 'both', got {tracks!r}")
        url = server if isinstance(server, str) else getattr(server, "public_url", None) or getattr(server, "url", None)
        if not url:
            raise ValueError("server must be a ws(s):// URL or have a public_url/url attribute")
        token = auth_token if isinstance(server, str) else getattr(server, "auth_token", None)
        bidi: dict[str, Any] = {}
        if isinstance(bidirectional, str):
            bidi = {"mode": bidirectional}
            if bidirectional == "rtp" and codec in BIDIRECTIONAL_CODECS:
                bidi.update(codec=codec, sampling_rate=16000 if codec == "L16" else 8000)
        elif isinstance(bidirectional, Mapping):
            bidi = dict(bidirectional)
        elif bidirectional is not None:
            raise TypeError("bidirectional must be 'mp3', 'rtp', a dict or None")
        result = self.start_streaming(
            call_control_id, stream_url=url, stream_track=track, stream_codec=codec, stream_auth_token=token,
            custom_parameters=custom_parameters, client_state=client_state,
            stream_bidirectional_mode=bidi.get("mode"), stream_bidirectional_codec=bidi.get("codec"),
            stream_bidirectional_sampling_rate=bidi.get("sampling_rate"),
            stream_bidirectional_target_legs=bidi.get("target_legs"),
        )
        return StreamHandle(self, call_control_id, result)

    def transcribe_call(
        self,
        call_control_id: str,
        *,
        engine: str = "Google",
        tracks: str = "both",
        config: Mapping[str, Any] | None = None,
        client_state: str | bytes | Mapping[str, Any] | None = None,
    ) -> "TranscriptionHandle":
        """Start transcription; returns a handle whose ``stop()`` ends it."""
        result = self.start_transcription(call_control_id, transcription_engine=engine, transcription_tracks=tracks,
                                          transcription_engine_config=config, client_state=client_state)
        return TranscriptionHandle(self, call_control_id, result)

    # --- HTTP ------------------------------------------------------------------------------

    def _command(
        self,
        call_control_id: str,
        action: str,
        body: dict[str, Any],
        client_state: Any,
        command_id: str | bool | None,
    ) -> CommandResult:
        if not isinstance(call_control_id, str) or not call_control_id.strip() or "/" in call_control_id:
            raise ValueError(f"call_control_id must be a non-empty id without '/', got {call_control_id!r}")
        body = {k: v for k, v in body.items() if v is not None}
        state = encode_client_state(client_state)
        if state is not None:
            body["client_state"] = state
        if command_id is True:
            command_id = str(uuid.uuid4())
        elif command_id is False:
            command_id = None
        if command_id is not None:
            if not isinstance(command_id, str) or not command_id:
                raise ValueError(f"command_id must be a non-empty string (or True to generate one), got {command_id!r}")
            body["command_id"] = command_id
        response = self._post(f"/calls/{call_control_id}/actions/{action}", body, action)
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        data = payload.get("data") if isinstance(payload, dict) and isinstance(payload.get("data"), dict) else {}
        return CommandResult(
            result=data.get("result"), action=action, call_control_id=call_control_id, command_id=command_id,
            status=response.status_code, request_id=response.headers.get("x-request-id"), data=data,
        )

    def _post(self, path: str, body: dict[str, Any], action: str):
        import requests

        url = self.base_url + path
        headers = {"Authorization": f"Bearer {self.__key}", "Accept": "application/json",
                   "Content-Type": "application/json"}
        data = json.dumps(body, separators=(",", ":"))
        started = time.monotonic()
        attempt = 0
        while True:
            wait = None
            try:
                response = self._session.post(url, data=data, headers=headers, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure: Exception | None = TelnyxConnectionError(f"{action}: no answer from {self.base_url}: {type(exc).__name__}")
                log.info("%s attempt %d: %s", action, attempt + 1, type(exc).__name__)
            else:
                failure = None
                should = response.headers.get("x-should-retry", "").lower()
                retry = should == "true" or (should != "false" and response.status_code in RETRY_STATUSES)
                log.info("%s attempt %d: HTTP %d", action, attempt + 1, response.status_code)
                if response.status_code < 400:
                    return response
                if not retry:
                    raise self._error(response, action)
                failure = self._error(response, action)
                wait = _retry_after(response.headers.get("Retry-After"))
            elapsed = time.monotonic() - started
            if wait is None:
                wait = min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)
            if attempt >= self.max_retries or elapsed + wait > self.max_retry_time_s:
                raise failure
            attempt += 1
            self._sleep(wait)

    def _error(self, response, action: str) -> TelnyxAPIError:
        text = response.text.replace(self.__key, "***") if self.__key in response.text else response.text
        try:
            payload = json.loads(text)
            errors = [e for e in payload.get("errors", []) if isinstance(e, dict)] if isinstance(payload, dict) else []
        except ValueError:
            errors = []
        cls = CallEndedError if errors and str(errors[0].get("code")) == "90018" else TelnyxAPIError
        return cls(response.status_code, errors, action, text)


@dataclass
class StreamHandle:
    """A stream started by :meth:`TelnyxClient.stream_call`; ``stop()`` ends it."""

    client: TelnyxClient
    call_control_id: str
    started: CommandResult
    stopped: CommandResult | None = None

    def stop(self, *, stream_id: str | None = None) -> CommandResult:
        """Stop the stream (all streams of the call unless ``stream_id`` is given)."""
        self.stopped = self.client.stop_streaming(self.call_control_id, stream_id=stream_id)
        return self.stopped


@dataclass
class TranscriptionHandle:
    """Transcription started by :meth:`TelnyxClient.transcribe_call`; ``stop()`` ends it."""

    client: TelnyxClient
    call_control_id: str
    started: CommandResult
    stopped: CommandResult | None = None

    def stop(self) -> CommandResult:
        """Stop the transcription."""
        self.stopped = self.client.stop_transcription(self.call_control_id)
        return self.stopped
