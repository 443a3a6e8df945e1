"""A Telnyx stream simulator: our fake Telnyx, for tests, the demo and notebooks.

It connects to a stream URL as Telnyx does and sends exactly Telnyx's message shapes:
``connected``; ``start`` with ``media_format`` and ``custom_parameters``; ``media`` per track,
20 ms each, with ``chunk``, ``timestamp`` and ``sequence_number`` as strings; ``dtmf``;
``stop``. The audio comes from a WAV file (mono: the inbound track; stereo: left inbound,
right outbound) or is replayed from a capture file. It can misbehave as networks do: reorder
(``shuffle``), lose (``drop``) and repeat (``duplicate``) frames, or vanish without ``stop``
(``disconnect_after``). Audio sent back on a bidirectional stream is collected and marks are
echoed, as Telnyx does.

For example ``simulate("data/example_call.jsonl", server.url, realtime=True)``, or from the
shell ``telnyx-audio simulate data/example_call.jsonl ws://127.0.0.1:8765/``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from telnyx_audio import codecs
from telnyx_audio._util.dsp import resample
from telnyx_audio.streams.protocol import TRACKS

__all__ = ["SimulationReport", "call_messages", "simulate", "simulate_async"]

FRAME_S = 0.02


@dataclass
class SimulationReport:
    """What a simulated stream did.

    Attributes
    ----------
    stream_id : str
        The ``stream_id`` the simulated messages carried.
    messages_sent : int
        Messages sent, ``connected``, ``start`` and ``stop`` included.
    media_sent : int
        ``media`` messages sent (duplicates included, dropped frames not).
    dropped, duplicated : int
        Media frames left out, and sent twice, by the ``drop`` and ``duplicate`` faults.
    disconnected_early : bool
        The simulator vanished without ``stop`` (``disconnect_after``).
    close_code : int or None
        The WebSocket close code the connection ended with.
    seconds : float
        Audio sent, in seconds (the due time of the last message sent).
    audio_received : bytes
        Every media payload the server sent back, joined.
    media_received : list of (float, bytes)
        Each payload sent back, with when it came (seconds since the stream opened).
    marks_echoed : list of str
        The names of the marks the server sent (each echoed back, as Telnyx does).
    clears : int
        ``clear`` messages the server sent.
    """

    stream_id: str
    messages_sent: int = 0
    media_sent: int = 0
    dropped: int = 0
    duplicated: int = 0
    disconnected_early: bool = False
    close_code: int | None = None
    seconds: float = 0.0
    audio_received: bytes = b""
    #: Each media payload sent back, with when it came (seconds since the stream opened): the
    #: packets of OPUS and the files of the ``mp3`` mode, which cannot be joined.
    media_received: list[tuple[float, bytes]] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    clears: int = 0


def _load_audio(source: Path, rate: int) -> tuple[np.ndarray, list[tuple[float, str]], dict[str, Any]]:
    """(2, n) int16 at ``rate``, DTMF (time, digit), and the capture's start fields if any."""
    if source.suffix.lower() in (".jsonl", ".json"):
        from telnyx_audio.model.capture import DEFAULT_MEDIA_FORMAT
        from telnyx_audio.streams.lines import iter_lines
        from telnyx_audio.streams.protocol import Dtmf, Media, Start
        from telnyx_audio.model import assemble_events

        # One pass: the media (placed as the core places it), the DTMF where it came (after
        # the inbound frames before it), and the start message.
        media: list[Media] = []
        dtmf: list[tuple[float, str]] = []
        start: Start | None = None
        inbound = 0
        for _, event, _ in iter_lines(source):
            if isinstance(event, Media):
                media.append(event)
                inbound += event.track == "inbound"
            elif isinstance(event, Dtmf):
                dtmf.append((inbound * FRAME_S, event.digit))
            elif isinstance(event, Start) and start is None:
                start = event
        fmt = (start.media_format if start else None) or DEFAULT_MEDIA_FORMAT
        recording = assemble_events(media, fmt.encoding, fmt.sample_rate)
        audio, sr = recording.audio, recording.sample_rate
        meta = {"custom_parameters": dict(start.custom_parameters), "call_control_id": start.call_control_id,
                "call_session_id": start.call_session_id} if start else {}
    else:
        import soundfile

        data, sr = soundfile.read(source, dtype="int16", always_2d=True)
        audio = np.zeros((2, data.shape[0]), np.int16)
        audio[0] = data[:, 0]
        if data.shape[1] > 1:
            audio[1] = data[:, 1]
        dtmf, meta = [], {}
    return resample(audio, sr, rate), dtmf, meta


def call_messages(
    source: str | os.PathLike[str] | np.ndarray,
    *,
    codec: str = "PCMU",
    tracks: str = "both",
    sample_rate: int | None = None,
    stream_id: str | None = None,
    call_control_id: str | None = None,
    custom_parameters: Mapping[str, str] | None = None,
    dtmf: Sequence[tuple[float, str]] = (),
    shuffle: bool = False,
    drop: float = 0.0,
    duplicate: float = 0.0,
    seed: int = 0,
) -> tuple[list[tuple[float, str]], dict[str, int]]:
    """The messages of a simulated stream with the time (s) each is due.

    ``source`` is a WAV path, a capture path, or a (2, n) int16 array at the codec's audio
    rate. ``codec`` is any encoding Telnyx streams (``PCMU PCMA L16 G722 OPUS AMR-WB``, any
    case or MIME name) and ``sample_rate`` the rate ``media_format`` reports (by default 8000
    for G.711, 16000 otherwise; any of 8000, 16000, 22050, 24000, 48000 and more). Each
    ``media`` message carries 20 ms (one Opus packet for OPUS), encoded by one encoder per
    track. G.722 is 16 kHz audio whatever rate is reported (``sample_rate=8000`` sends what
    Telnyx may report: the G.722 RTP clock). AMR-WB needs an encoder the installed FFmpeg
    lacks: a clear :class:`~telnyx_audio.codecs.wideband.CodecUnavailableError`.

    Parameters
    ----------
    source : str, Path or np.ndarray of int16, shape (2, n)
        A WAV path, a capture path (its DTMF and ``start`` fields are replayed too), or
        ``[inbound, outbound]`` at the codec's audio rate.
    codec : str
        The ``media_format`` encoding the audio is sent in.
    tracks : {"both", "inbound", "outbound"}
        Which tracks are streamed, as the ``stream_track`` option of Telnyx's ``streaming_start``.
    sample_rate : int, optional
        The rate ``media_format`` reports.
    stream_id, call_control_id : str, optional
        The ids the messages carry; by default a random ``stream_id`` and the capture's
        ``call_control_id`` (else one made from the ``stream_id``).
    custom_parameters : mapping of str to str, optional
        The ``start`` message's ``custom_parameters`` (by default the capture's, else none).
    dtmf : sequence of (float, str)
        ``(time_s, digit)`` of each ``dtmf`` message to send (by default the capture's).
    shuffle : bool
        Swap neighbouring frames a few frames apart, as a network reorders.
    drop, duplicate : float
        Probability that a frame is left out, and that one is sent twice.
    seed : int
        Seeds the faults, so a test sees the same ones each run.

    Returns
    -------
    messages : list of (float, str)
        Each message's JSON text with the time (s) it is due, without the final ``stop``.
    counts : dict of str to int
        ``dropped`` and ``duplicated``: the faults made.

    Raises
    ------
    ValueError
        If ``tracks`` is not one of the three, or ``drop`` or ``duplicate`` is outside [0, 1].

    Examples
    --------
    >>> timed, counts = call_messages(np.zeros((2, 800), np.int16), stream_id="s1", drop=0.5, seed=1)
    >>> [json.loads(m)["event"] for _, m in timed[:3]], timed[2][0], counts
    (['connected', 'start', 'media'], 0.02, {'dropped': 6, 'duplicated': 0})
    """
    from telnyx_audio.codecs.outbound import check_encoder, encode_payloads, encoding_rate

    codec = codecs.normalize_encoding(codec)
    check_encoder(codec)
    if tracks not in ("inbound", "outbound", "both"):
        raise ValueError(f"tracks must be 'inbound', 'outbound' or 'both', got {tracks!r}")
    for name, p in (("drop", drop), ("duplicate", duplicate)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    rate = sample_rate or (8000 if codec in ("PCMU", "PCMA") else 16000)
    audio_rate = encoding_rate(codec, rate)  # G.711 8 kHz, G.722/AMR-WB 16 kHz, L16/OPUS as reported
    meta: dict[str, Any] = {}
    if isinstance(source, np.ndarray):
        audio = np.asarray(source, np.int16).reshape(2, -1)
        file_dtmf: list[tuple[float, str]] = []
    else:
        audio, file_dtmf, meta = _load_audio(Path(source), audio_rate)
    stream_id = stream_id or str(uuid.uuid4())
    call_control_id = call_control_id or meta.get("call_control_id") or f"v3:sim-{stream_id[:8]}"
    params = dict(custom_parameters if custom_parameters is not None else meta.get("custom_parameters", {}))
    per = int(audio_rate * FRAME_S)
    n_frames = -(-audio.shape[1] // per)
    audio = np.pad(audio, ((0, 0), (0, n_frames * per - audio.shape[1])))
    wanted = [t for t in TRACKS if tracks in (t, "both")]
    rng = random.Random(seed)
    counts = {"dropped": 0, "duplicated": 0}

    seq = [0]

    def stamp(msg: dict) -> str:
        seq[0] += 1
        out = {"event": msg.pop("event"), "sequence_number": str(seq[0]), "stream_id": stream_id}
        out.update(msg)
        return json.dumps(out)

    timed: list[tuple[float, str]] = [(0.0, json.dumps({"event": "connected", "version": "1.0.0"}))]
    timed.append((0.0, stamp({"event": "start", "start": {
        "user_id": "00000000-0000-4000-8000-000000000000", "call_control_id": call_control_id,
        "call_session_id": meta.get("call_session_id") or str(uuid.uuid5(uuid.NAMESPACE_URL, stream_id)),
        "from": "+13122010094", "to": "+13122123456", "tags": ["simulated"], "client_state": None,
        "custom_parameters": params,
        "media_format": {"encoding": codec, "sample_rate": rate, "channels": 1}}})))
    media: list[tuple[float, dict]] = []
    # One encoder per track, in order: G.722 and Opus carry state from frame to frame.
    encoded = {t: encode_payloads(audio[TRACKS.index(t)], audio_rate, codec, target_rate=rate, payload_s=FRAME_S)
               for t in wanted}
    n_frames = max(len(p) for p in encoded.values())
    for i in range(n_frames):
        for t in wanted:
            if i >= len(encoded[t]):
                continue
            payload = base64.b64encode(encoded[t][i]).decode()
            media.append(((i + 1) * FRAME_S, {"event": "media", "media": {
                "track": t, "chunk": str(i + 1), "timestamp": str(i * int(FRAME_S * 1000)), "payload": payload}}))
    faulty: list[tuple[float, dict]] = []
    for when, msg in media:
        if rng.random() < drop:
            counts["dropped"] += 1
            continue
        faulty.append((when, msg))
        if rng.random() < duplicate:
            counts["duplicated"] += 1
            faulty.append((when, json.loads(json.dumps(msg))))
    if shuffle:  # networks reorder locally: swap neighbours a few frames apart
        for i in range(len(faulty) - 1):
            if rng.random() < 0.2:
                j = min(len(faulty) - 1, i + rng.randint(1, 4))
                (ti, mi), (tj, mj) = faulty[i], faulty[j]
                faulty[i], faulty[j] = (ti, mj), (tj, mi)  # same time slots, messages swapped
    events = sorted([(t, {"event": "dtmf", "occurred_at": None, "dtmf": {"digit": d}}) for t, d in (list(dtmf) or file_dtmf)],
                    key=lambda x: x[0])
    merged = sorted(faulty + events, key=lambda x: x[0])  # stable: media order kept within a time
    for when, msg in merged:
        if msg["event"] == "dtmf":
            msg["occurred_at"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        timed.append((when, stamp(msg)))
    return timed, counts


async def simulate_async(
    source: str | os.PathLike[str] | np.ndarray,
    url: str,
    *,
    realtime: bool = False,
    disconnect_after: float | None = None,
    auth_token: str | None = None,
    token_in: str = "header",
    open_timeout: float = 10.0,
    cafile: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> SimulationReport:
    """Stream ``source`` to ``url`` as Telnyx would; see :func:`call_messages` for the options.

    Parameters
    ----------
    source : str, Path or np.ndarray of int16, shape (2, n)
        A WAV path, a capture path, or ``[inbound, outbound]`` (see :func:`call_messages`).
    url : str
        The capture server's ``ws://`` or ``wss://`` URL.
    realtime : bool
        Pace frames at 20 ms, as a live call; otherwise send as fast as the server takes them.
    disconnect_after : float, optional
        Vanish after this many seconds of audio, without ``stop`` (a dropped call).
    auth_token : str, optional
        Sent as ``token_in`` says: ``"header"`` (x-telnyx-streaming-auth-token), ``"bearer"``,
        ``"connected"`` (in the connected message) or ``"path"`` (appended to the URL).
    token_in : {"header", "bearer", "connected", "path"}
        Where ``auth_token`` goes.
    open_timeout : float
        Seconds to wait for the WebSocket connection to open.
    cafile : str or PathLike, optional
        For a ``wss://`` URL: trust these certificate authorities (PEM) instead of the
        system's, as a private deployment needs. The server's certificate is always verified.
    **kwargs
        The options of :func:`call_messages` (``codec``, ``tracks``, ``drop``...).

    Returns
    -------
    SimulationReport
        What was sent, and what the server sent back (audio, marks, clears).

    Raises
    ------
    ValueError
        If ``token_in`` is not one of the four, or ``cafile`` is given for a ``ws://`` URL.
    """
    from websockets.asyncio.client import connect

    timed, counts = call_messages(source, **kwargs)
    stream_id = json.loads(timed[1][1])["stream_id"]
    report = SimulationReport(stream_id=stream_id, dropped=counts["dropped"], duplicated=counts["duplicated"])
    headers: dict[str, str] = {}
    if auth_token is not None:
        if token_in == "header":
            headers["x-telnyx-streaming-auth-token"] = auth_token
        elif token_in == "bearer":
            headers["Authorization"] = f"Bearer {auth_token}"
        elif token_in == "path":
            url = url.rstrip("/") + "/" + auth_token
        elif token_in == "connected":
            timed[0] = (0.0, json.dumps({"event": "connected", "version": "1.0.0", "x-telnyx-streaming-auth-token": auth_token}))
        else:
            raise ValueError(f"token_in must be header, bearer, connected or path, got {token_in!r}")
    played = bytearray()
    opened = time.monotonic()
    tls = {}
    if url.lower().startswith("wss://"):
        from telnyx_audio.service.tls import client_context

        tls = {"ssl": client_context(cafile)}
    elif cafile is not None:
        raise ValueError(f"cafile is for wss:// URLs, got {url!r}")
    async with connect(url, additional_headers=headers, open_timeout=open_timeout, compression=None,
                       max_size=None, **tls) as ws:
        async def listen() -> None:
            async for message in ws:
                try:
                    msg = json.loads(message)
                except (json.JSONDecodeError, TypeError):
                    continue
                if msg.get("event") == "media":
                    payload = base64.b64decode(msg["media"]["payload"])
                    played.extend(payload)
                    report.media_received.append((time.monotonic() - opened, payload))
                elif msg.get("event") == "mark":
                    name = msg["mark"]["name"]
                    report.marks_echoed.append(name)
                    await ws.send(json.dumps({"event": "mark", "sequence_number": "0", "stream_id": stream_id,
                                              "mark": {"name": name}}))
                elif msg.get("event") == "clear":
                    report.clears += 1

        listener = asyncio.ensure_future(listen())
        started = time.monotonic()
        try:
            for when, message in timed:
                if disconnect_after is not None and when > disconnect_after:
                    report.disconnected_early = True
                    break
                if realtime:
                    delay = started + when - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await ws.send(message)
                report.messages_sent += 1
                report.media_sent += '"event": "media"' in message
                report.seconds = max(report.seconds, when)
            if report.disconnected_early:
                ws.transport.abort()  # gone without a word, as a dropped call
            else:
                await ws.send(json.dumps({"event": "stop", "sequence_number": str(len(timed)), "stream_id": stream_id,
                                          "stop": {"user_id": "00000000-0000-4000-8000-000000000000"}}))
                report.messages_sent += 1
                await asyncio.sleep(0)
                await ws.close()
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        report.close_code = ws.close_code
    report.audio_received = bytes(played)
    return report


def simulate(source: str | os.PathLike[str] | np.ndarray, url: str, **kwargs: Any) -> SimulationReport:
    """Blocking :func:`simulate_async` (from a notebook inside a running loop, await that one).

    Parameters
    ----------
    source : str, Path or np.ndarray of int16, shape (2, n)
        A WAV path, a capture path, or ``[inbound, outbound]`` (see :func:`call_messages`).
    url : str
        The capture server's ``ws://`` or ``wss://`` URL.
    **kwargs
        The options of :func:`simulate_async` and :func:`call_messages`.

    Returns
    -------
    SimulationReport
        What was sent, and what the server sent back.
    """
    return asyncio.run(simulate_async(source, url, **kwargs))
