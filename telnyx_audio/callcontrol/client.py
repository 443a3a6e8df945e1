"""The Call Control client: one ``requests.Session``, typed errors, bounded retries."""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit

from telnyx_audio.callcontrol.values import (
    BIDIRECTIONAL_CODECS,
    BIDIRECTIONAL_MODES,
    BIDIRECTIONAL_SAMPLING_RATES,
    BIDIRECTIONAL_TARGET_LEGS,
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
    custom_parameters as _custom_parameters,
    encode_client_state,
    udp_target as _udp_target,
)
from telnyx_audio.errors import CallEndedError, TelnyxAPIError, TelnyxConnectionError

__all__ = ["DEFAULT_BASE_URL", "RETRY_STATUSES", "TelnyxClient", "CommandResult", "StreamHandle", "TranscriptionHandle"]

log = logging.getLogger("telnyx_audio.callcontrol")

DEFAULT_BASE_URL = "https://api.telnyx.com/v2"
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


def _codec_name(value: Any) -> Any:
    """A codec name in any case or MIME spelling as Telnyx's enum value (``"audio/x-mulaw"`` -> ``"PCMU"``).

    Names go through :func:`telnyx_audio.codecs.normalize_encoding`, the one place that knows
    them, so the client sends what ``decode`` and the simulator accept; anything it does not
    know (``"default"``, ``Unchecked``, a typo) is left for :func:`check_choice` to judge.
    """
    if not isinstance(value, str):
        return value
    from telnyx_audio.codecs import normalize_encoding

    try:
        return normalize_encoding(value)
    except ValueError:
        return value


@dataclass(frozen=True)
class CommandResult:
    """Telnyx's answer to a command: ``result`` is ``"ok"`` when it was accepted.

    Attributes
    ----------
    result : str or None
        ``data.result`` of Telnyx's answer.
    action : str
        The action sent (``streaming_start``...).
    call_control_id : str
        The call.
    command_id : str or None
        The idempotency key sent with it.
    status : int
        The HTTP status.
    request_id : str or None
        Telnyx's request id, when its answer gave one.
    data : Mapping
        The whole ``data`` object.
    """

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
    max_backoff_s : float
        The longest wait between two attempts.
    sleep : callable
        How to wait between attempts (``time.sleep``; a test passes its own clock).
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
            The call, as its webhooks name it.
        stream_url : str
            ``wss://`` (or ``ws://``) URL Telnyx connects to.
        stream_track : {"inbound_track", "outbound_track", "both_tracks"}
        stream_codec : {"PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16", "default"}
            Any letter case and MIME spellings (``"audio/x-mulaw"``) are sent as Telnyx's name.
            What to ask for; trust ``start.media_format`` on the stream for what you get.
        stream_auth_token : str
            At most 4,000 characters.
        custom_parameters : dict or list of {"name", "value"}
            Arrive in the stream's ``start.custom_parameters``.
        stream_bidirectional_mode : {"mp3", "rtp"}
        stream_bidirectional_codec : {"PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16"}
            ``rtp`` mode only; names are normalised as for ``stream_codec``.
        stream_bidirectional_sampling_rate : {8000, 16000, 22050, 24000, 48000}
        stream_bidirectional_target_legs : {"opposite", "self", "both"}
        enable_dialogflow : bool
        dialogflow_config : dict of {"analyze_sentiment", "partial_automated_agent_reply"}
        client_state : str, bytes or dict
            Base64-encoded for you.
        command_id : str or bool
            ``True`` (default) generates one, so retries stay idempotent; ``None`` omits it.

        Returns
        -------
        CommandResult
            Telnyx's answer (``ok`` when accepted).
        """
        body: dict[str, Any] = {}
        if stream_url is not None:
            url = stream_url.value if isinstance(stream_url, Unchecked) else stream_url
            if not isinstance(stream_url, Unchecked) and urlsplit(str(url)).scheme not in ("ws", "wss"):
                raise ValueError(f"stream_url must be a ws:// or wss:// URL, got {stream_url!r}")
            body["stream_url"] = url
        body["stream_track"] = check_choice("stream_track", stream_track, STREAM_TRACKS)
        body["stream_codec"] = check_choice("stream_codec", _codec_name(stream_codec), STREAM_CODECS)
        if stream_auth_token is not None:
            if not isinstance(stream_auth_token, str) or not 0 < len(stream_auth_token) <= 4000:
                raise ValueError("stream_auth_token must be a string of 1 to 4000 characters")
            body["stream_auth_token"] = stream_auth_token
        body["custom_parameters"] = _custom_parameters(custom_parameters)
        mode = check_choice("stream_bidirectional_mode", stream_bidirectional_mode, BIDIRECTIONAL_MODES)
        body["stream_bidirectional_mode"] = mode
        codec = check_choice("stream_bidirectional_codec", _codec_name(stream_bidirectional_codec), BIDIRECTIONAL_CODECS)
        if codec is not None and mode != "rtp" and not isinstance(stream_bidirectional_codec, Unchecked):
            raise ValueError("stream_bidirectional_codec applies only with stream_bidirectional_mode='rtp'")
        body["stream_bidirectional_codec"] = codec
        rate = stream_bidirectional_sampling_rate
        if isinstance(rate, str) and rate.isdigit():
            rate = int(rate)
        body["stream_bidirectional_sampling_rate"] = check_choice("stream_bidirectional_sampling_rate", rate, BIDIRECTIONAL_SAMPLING_RATES)
        body["stream_bidirectional_target_legs"] = check_choice(
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
        """Stop streaming (``streaming_stop``); without ``stream_id``, every stream of the call.

        Parameters
        ----------
        call_control_id : str
            The call, as its webhooks name it.
        stream_id : str, optional
            The stream to stop.
        client_state : str, bytes or dict, optional
            Echoed in the webhooks that follow; base64-encoded for you.
        command_id : str or bool
            ``True`` (default) generates one, so retries stay idempotent; ``None`` omits it.

        Returns
        -------
        CommandResult
            Telnyx's answer (``ok`` when accepted).
        """
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

        Parameters
        ----------
        call_control_id : str
            The call, as its webhooks name it.
        rx, tx : str, optional
            ``udp:IP:PORT`` targets of the call's incoming and outgoing RTP.
        stream_type : str
            ``decrypted``, the only type Telnyx defines.
        client_state : str, bytes or dict, optional
            Echoed in the webhooks that follow; base64-encoded for you.
        command_id : str or bool
            ``True`` (default) generates one, so retries stay idempotent; ``None`` omits it.

        Returns
        -------
        CommandResult
            Telnyx's answer (``ok`` when accepted).
        """
        if rx is None and tx is None:
            raise ValueError("start_forking needs rx, tx or both ('udp:IP:PORT')")
        body = {"rx": _udp_target("rx", rx), "tx": _udp_target("tx", tx),
                "stream_type": check_choice("stream_type", stream_type, FORK_START_STREAM_TYPES)}
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

        Parameters
        ----------
        call_control_id : str
            The call, as its webhooks name it.
        stream_type : {"raw", "decrypted"}, optional
            The type to stop.
        client_state : str, bytes or dict, optional
            Echoed in the webhooks that follow; base64-encoded for you.
        command_id : str or bool
            ``True`` (default) generates one, so retries stay idempotent; ``None`` omits it.

        Returns
        -------
        CommandResult
            Telnyx's answer (``ok`` when accepted).
        """
        chosen = stream_type if stream_type is not None else self._fork_types.get(call_control_id, "decrypted")
        body = {"stream_type": check_choice("stream_type", chosen, FORK_STOP_STREAM_TYPES)}
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
        call_control_id : str
            The call, as its webhooks name it.
        transcription_engine : str
            One of ``TRANSCRIPTION_ENGINES`` ("A" and "B" are Telnyx's legacy names for
            Google and Telnyx). A name close to one of them is refused with "did you mean";
            any other is sent with an ``UnknownValueWarning`` (Telnyx adds engines often).
        transcription_tracks : {"inbound", "outbound", "both"}
        transcription_engine_config : dict
            The engine's options. Its ``transcription_engine`` field (the discriminator Telnyx
            uses to pick the schema) is filled in from ``transcription_engine`` when absent
            and must agree with it. ``transcription_model`` is checked against the engine's
            models (``TRANSCRIPTION_MODELS``; Google's ``model`` against ``GOOGLE_MODELS``)
            the same way; Deepgram needs one (``deepgram/nova-2`` or ``deepgram/nova-3``).
        client_state : str, bytes or dict, optional
            Echoed in the webhooks that follow; base64-encoded for you.
        command_id : str or bool
            ``True`` (default) generates one, so retries stay idempotent; ``None`` omits it.

        Returns
        -------
        CommandResult
            Telnyx's answer (``ok`` when accepted).
        """
        engine = check_choice("transcription_engine", transcription_engine, TRANSCRIPTION_ENGINES)
        body: dict[str, Any] = {"transcription_engine": engine,
                                "transcription_tracks": check_choice("transcription_tracks", transcription_tracks, TRANSCRIPTION_TRACKS)}
        if transcription_engine_config is not None:
            if not isinstance(transcription_engine_config, Mapping):
                raise TypeError("transcription_engine_config must be a dict")
            config = dict(transcription_engine_config)
            given = config.get("transcription_engine")
            if given is None or given == engine:  # the request's engine, checked above
                config["transcription_engine"] = engine or "Google"
            elif engine is not None:
                raise ValueError(f"transcription_engine_config says transcription_engine={given!r}"
                                 f" but the request says {engine!r}")
            else:
                config["transcription_engine"] = check_choice("transcription_engine_config.transcription_engine",
                                                              given, TRANSCRIPTION_ENGINES)
            chosen = config["transcription_engine"]
            models = TRANSCRIPTION_MODELS.get(chosen)
            if models and "transcription_model" in config:
                config["transcription_model"] = check_choice(
                    f"transcription_engine_config.transcription_model for {chosen}", config["transcription_model"], models)
            elif chosen == "Deepgram":
                raise ValueError(f"a Deepgram config needs transcription_model, one of {', '.join(models)}")
            if chosen in ("Google", "A") and "model" in config:
                config["model"] = check_choice(f"transcription_engine_config.model for {chosen}", config["model"], GOOGLE_MODELS)
            body["transcription_engine_config"] = config
        return self._command(call_control_id, "transcription_start", body, client_state, command_id)

    def stop_transcription(
        self,
        call_control_id: str,
        *,
        client_state: str | bytes | Mapping[str, Any] | None = None,
        command_id: str | bool | None = True,
    ) -> CommandResult:
        """Stop transcription (``transcription_stop``).

        Parameters
        ----------
        call_control_id : str
            The call, as its webhooks name it.
        client_state : str, bytes or dict, optional
            Echoed in the webhooks that follow; base64-encoded for you.
        command_id : str or bool
            ``True`` (default) generates one, so retries stay idempotent; ``None`` omits it.

        Returns
        -------
        CommandResult
            Telnyx's answer (``ok`` when accepted).
        """
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
        call_control_id : str
            The call, as its webhooks name it.
        server : str or capture server
            A ``wss://`` URL, or an object with ``public_url`` (or ``url``) and, when it
            requires one, ``auth_token``: both are filled into the request.
        codec : str
            ``stream_codec`` (PCMU by default: what the capture decodes without transcoding).
        tracks : {"inbound", "outbound", "both"}
        bidirectional : {"mp3", "rtp"} or dict, optional
            ``"rtp"`` plays raw audio back in ``codec`` at 8 kHz (16 kHz for L16); a dict
            gives ``mode``, ``codec``, ``sampling_rate``, ``target_legs`` explicitly.
        custom_parameters : dict, optional
            Arrive in the stream's ``start.custom_parameters``.
        client_state : str, bytes or dict, optional
            Echoed in the webhooks that follow; base64-encoded for you.
        auth_token : str, optional
            ``stream_auth_token`` when ``server`` is a URL (an object brings its own).

        Returns
        -------
        StreamHandle
            With Telnyx's answer (``started``); its ``stop()`` stops the stream.
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

    def fork_call(
        self,
        call_control_id: str,
        receiver: Any,
        *,
        client_state: str | bytes | Mapping[str, Any] | None = None,
    ) -> Any:
        """Fork a call's RTP to a running fork receiver; returns a handle whose ``stop()`` ends it.

        The handle (:class:`telnyx_audio.forks.ForkHandle`) allocates a port pair on
        ``receiver`` (a started :class:`telnyx_audio.forks.ForkReceiver`), sends
        ``fork_start`` with its ``rx``/``tx`` targets (``udp:public_host:port``), and on
        ``stop()`` sends ``fork_stop`` and writes the call's WAVs and ``summary.json``.

        Parameters
        ----------
        call_control_id : str
            The call, as its webhooks name it.
        receiver : ForkReceiver
            A started fork receiver with a free port pair.
        client_state : str, bytes or dict, optional
            Echoed in the webhooks that follow; base64-encoded for you.

        Returns
        -------
        ForkHandle
            Its ``session`` receives the call; its ``stop()`` ends the fork.
        """
        from telnyx_audio.forks.receiver import ForkHandle

        return ForkHandle.start(self, call_control_id, receiver, client_state=client_state)

    def transcribe_call(
        self,
        call_control_id: str,
        *,
        engine: str = "Google",
        tracks: str = "both",
        config: Mapping[str, Any] | None = None,
        client_state: str | bytes | Mapping[str, Any] | None = None,
    ) -> "TranscriptionHandle":
        """Start transcription; returns a handle whose ``stop()`` ends it.

        Parameters
        ----------
        call_control_id : str
            The call, as its webhooks name it.
        engine : str
            ``transcription_engine`` (see :meth:`start_transcription`).
        tracks : {"inbound", "outbound", "both"}
            ``transcription_tracks``.
        config : dict, optional
            ``transcription_engine_config``.
        client_state : str, bytes or dict, optional
            Echoed in the webhooks that follow; base64-encoded for you.

        Returns
        -------
        TranscriptionHandle
            With Telnyx's answer (``started``); its ``stop()`` stops the transcription.
        """
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
    """A stream started by :meth:`TelnyxClient.stream_call`; ``stop()`` ends it.

    Attributes
    ----------
    client : TelnyxClient
        The client that started it.
    call_control_id : str
        The call.
    started, stopped : CommandResult
        Telnyx's answers to the start and (once stopped) the stop.
    """

    client: TelnyxClient
    call_control_id: str
    started: CommandResult
    stopped: CommandResult | None = None

    def stop(self, *, stream_id: str | None = None) -> CommandResult:
        """Stop the stream (all streams of the call unless ``stream_id`` is given).

        Parameters
        ----------
        stream_id : str, optional
            The stream to stop.

        Returns
        -------
        CommandResult
            Telnyx's answer, also kept as ``stopped``.
        """
        self.stopped = self.client.stop_streaming(self.call_control_id, stream_id=stream_id)
        return self.stopped


@dataclass
class TranscriptionHandle:
    """Transcription started by :meth:`TelnyxClient.transcribe_call`; ``stop()`` ends it.

    Attributes
    ----------
    client : TelnyxClient
        The client that started it.
    call_control_id : str
        The call.
    started, stopped : CommandResult
        Telnyx's answers to the start and (once stopped) the stop.
    """

    client: TelnyxClient
    call_control_id: str
    started: CommandResult
    stopped: CommandResult | None = None

    def stop(self) -> CommandResult:
        """Stop the transcription.

        Returns
        -------
        CommandResult
            Telnyx's answer, also kept as ``stopped``.
        """
        self.stopped = self.client.stop_transcription(self.call_control_id)
        return self.stopped
