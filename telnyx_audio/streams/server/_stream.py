"""One connection of the capture server: its message log, counters and live handle."""

from __future__ import annotations

import asyncio
import errno
import functools
import json
import time
from dataclasses import dataclass, field
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable

import numpy as np

from telnyx_audio import codecs
from telnyx_audio.codecs.outbound import encoding_rate
from telnyx_audio._util.paths import unique_child
from telnyx_audio.streams.protocol import (
    TRACKS,
    Malformed,
    Mark,
    Start,
    clear_message,
    mark_message,
    media_message,
    normalize_track,
    parse_object,
)

from telnyx_audio.streams.redact import mask_dtmf_line
from telnyx_audio.streams.server._host import LOG_NAME, StreamHost
from telnyx_audio.streams.server._redact import mark_pending


#: The longest mark name :meth:`MediaStream.mark` sends (characters). Echoes are kept only for
#: marks this server sent, so a peer's names never accumulate; this bounds our own.
MAX_MARK_NAME = 1024

_RECENT_CHUNKS = 64  # duplicates arrive within a few frames of the first copy


class PrestartOverflow(Exception):
    """More than the pre-``start`` allowance arrived (raised by :meth:`_Stream.receive`)."""


@dataclass(frozen=True)
class StreamInfo:
    """A snapshot of one stream, for the live view and for reports.

    A finished stream keeps only this (without ``custom_parameters``, which are in its
    ``summary.json``), so memory does not grow with the calls served.

    Attributes
    ----------
    folder : Path or None
        The stream's folder under the server's output root (None before ``start`` names it).
    stream_id, call_control_id, call_session_id : str or None
        The ids from the ``start`` message.
    encoding : str or None
        The ``media_format`` encoding (``"PCMU"``, ``"L16"``...).
    sample_rate : int or None
        The ``media_format`` sample rate.
    custom_parameters : dict of str to object
        The ``start`` message's ``custom_parameters`` (empty once the stream is finished).
    connected_at : float
        When the connection was accepted, Unix time in seconds.
    frames : dict of str to int
        Media messages received per track, duplicates included.
    bad_messages : int
        Messages that could not be used.
    seconds_captured : float
        Audio received so far, in seconds (the longer track; duplicates counted once).
    last_frame_at : float or None
        When the last media message arrived, Unix time in seconds.
    state : str
        ``"open"``, ``"finalizing"``, ``"done"`` or ``"error"``.
    ended_by : str or None
        What ended the stream (``"stop"``, a closed connection...); None while it is open.
    error : str or None
        What went wrong, if anything did.
    files : dict of str to str
        The files finalising wrote (WAVs, ``summary.json``), by kind.
    peer : str or None
        The client's address (the proxy's client where a trusted proxy said so).
    """

    folder: Path | None
    stream_id: str | None
    call_control_id: str | None
    call_session_id: str | None
    encoding: str | None
    sample_rate: int | None
    custom_parameters: dict[str, Any]
    connected_at: float
    frames: dict[str, int]
    bad_messages: int
    seconds_captured: float
    last_frame_at: float | None
    state: str  # "open", "finalizing", "done", "error"
    ended_by: str | None = None
    error: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    peer: str | None = None


class MediaStream:
    """One live stream, handed to ``on_stream``: talk back into the call.

    The methods work from the server's event loop (they return awaitables) and from any other
    thread, a notebook's included (they wait until the message is sent).

    Parameters
    ----------
    server : CaptureServer
        The server holding the connection (its event loop and ``bidirectional_codec``).
    connection : websockets connection
        The stream's WebSocket connection, which messages are sent on.
    start : Start
        The stream's ``start`` event: its ids and media format.
    """

    def __init__(self, server: StreamHost, connection: Any, start: Start) -> None:
        self._server = server
        self._connection = connection
        self.start = start
        self.marks: dict[str, float | None] = {}
        self._mark_events: dict[str, asyncio.Event] = {}
        #: Mark echoes for names this server never sent (counted, never kept).
        self.unsolicited_marks = 0

    @property
    def stream_id(self) -> str | None:
        """The stream's ``stream_id`` (from its ``start`` message)."""
        return self.start.stream_id

    def _target(self, codec: str | None, sample_rate: int | None) -> tuple[str, int]:
        fmt = self.start.media_format  # None when start had no media_format: PCMU 8 kHz, Telnyx's default
        if codec is not None:
            enc = codecs.normalize_encoding(codec)
        else:
            enc = self._server.bidirectional_codec or (fmt.encoding if fmt else "PCMU")
            if enc not in codecs.KNOWN_ENCODINGS:
                enc = "PCMU"
        rate = sample_rate or (fmt.sample_rate if fmt and enc == "L16" else 8000)
        return enc, rate

    def _in_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._server._loop
        except RuntimeError:
            return False

    def _run(self, coro: Awaitable[Any], timeout: float = 60.0) -> Any:
        if self._in_loop():
            return asyncio.ensure_future(coro)
        return asyncio.run_coroutine_threadsafe(coro, self._server._loop).result(timeout=timeout)

    def send_audio(self, pcm: np.ndarray, sample_rate: int, *, codec: str | None = None,
                   target_rate: int | None = None, chunk_s: float = 1.0, mode: str = "rtp") -> Any:
        """Play audio into the call.

        Parameters
        ----------
        pcm : np.ndarray, shape (n,)
            int16, or float in [-1, 1].
        sample_rate : int
            Its rate; resampled (soxr) to the rate the codec is encoded at.
        codec, target_rate : optional
            The stream's ``stream_bidirectional_codec`` (PCMU, PCMA, G722, OPUS, L16; AMR-WB
            raises: PyAV's FFmpeg has no AMR-WB encoder) and ``_sampling_rate`` (8000, 16000,
            22050, 24000, 48000; see :func:`telnyx_audio.codecs.outbound.encoding_rate`); by
            default the server's ``bidirectional_codec``, else the stream's own encoding, at
            8 kHz (L16: the stream's rate). ``rtp`` mode only.
        chunk_s : float
            Audio per message, clamped to Telnyx's 20 ms to 30 s (OPUS: 20 ms packets; mp3: at
            least 1 s per file).
        mode : {"rtp", "mp3"}
            The stream's ``stream_bidirectional_mode``: raw codec payloads, or (Telnyx's
            default) whole MP3 files, sent at most one a second.

        Returns
        -------
        asyncio.Future or int
            In the server's loop, a future of the number of messages sent; from another
            thread, that number, once every message is sent.

        Raises
        ------
        ValueError
            If ``mode`` is neither ``"rtp"`` nor ``"mp3"``, or the codec does not take
            ``target_rate``.
        """
        if mode == "mp3":
            encode = functools.partial(codecs.encode_mp3, pcm, sample_rate, file_s=max(chunk_s, 1.0))
            interval_s = 1.0
        elif mode == "rtp":
            enc, rate = self._target(codec, target_rate)
            encoding_rate(enc, rate)  # a rate Telnyx does not take fails here, at the call
            encode = functools.partial(codecs.encode_payloads, pcm, sample_rate, enc, target_rate=rate,
                                       payload_s=min(max(chunk_s, 0.02), 30.0))
            interval_s = 0.0
        else:
            raise ValueError(f"mode must be 'rtp' or 'mp3', got {mode!r}")

        def messages() -> list[str]:
            return [media_message(item) for item in encode()]

        if self._in_loop():
            # Encoding (minutes of audio take seconds) runs in an executor thread: the event
            # loop, and every other stream on it, keeps going meanwhile.
            return asyncio.ensure_future(self._encode_and_send(messages, interval_s))
        sent = messages()  # another thread: encode here, the loop only sends
        return self._run(self._send_all(sent, interval_s=interval_s), timeout=60.0 + len(sent) * interval_s)

    async def _encode_and_send(self, messages: Any, interval_s: float) -> int:
        ready = await asyncio.get_running_loop().run_in_executor(None, messages)
        return await self._send_all(ready, interval_s=interval_s)

    async def _send_all(self, messages: list[str], interval_s: float = 0.0) -> int:
        for i, message in enumerate(messages):
            if i and interval_s:
                await asyncio.sleep(interval_s)
            await self._connection.send(message)
        return len(messages)

    def mark(self, name: str) -> Any:
        """Queue a mark; Telnyx echoes it when the audio before it has played (see ``marks``).

        Parameters
        ----------
        name : str
            The mark's name, echoed back by Telnyx; wait for it with :meth:`wait_mark`.

        Returns
        -------
        asyncio.Future or None
            In the server's loop, a future done when the mark is sent; from another thread,
            None, once it is sent.

        Raises
        ------
        ValueError
            If ``name`` is longer than :data:`MAX_MARK_NAME` characters.
        """
        if isinstance(name, str) and len(name) > MAX_MARK_NAME:
            raise ValueError(f"a mark name is at most {MAX_MARK_NAME} characters, got {len(name)}")
        self.marks[name] = None
        self._mark_events[name] = asyncio.Event()
        return self._run(self._connection.send(mark_message(name)))

    def clear(self) -> Any:
        """Stop playback and drop queued audio.

        Returns
        -------
        asyncio.Future or None
            In the server's loop, a future done when the ``clear`` message is sent; from
            another thread, None, once it is sent.
        """
        return self._run(self._connection.send(clear_message()))

    async def wait_mark(self, name: str, timeout: float | None = None) -> float:
        """Wait (in the server's loop) until Telnyx echoes the mark.

        Parameters
        ----------
        name : str
            A name given to :meth:`mark` before.
        timeout : float, optional
            Seconds to wait at most; by default, until the echo comes.

        Returns
        -------
        float
            When the echo arrived, Unix time in seconds.

        Raises
        ------
        KeyError
            If no mark of that name was sent.
        TimeoutError
            If the echo did not come within ``timeout`` seconds.
        """
        await asyncio.wait_for(self._mark_events[name].wait(), timeout)
        return self.marks[name]  # type: ignore[return-value]

    def _echo(self, name: str, when: float) -> None:
        """An echo from the peer: recorded for a mark this server sent, else only counted."""
        event = self._mark_events.get(name)
        if event is None:
            self.unsolicited_marks += 1
            return
        self.marks[name] = when
        event.set()


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def _write_all(file: Any, data: bytes) -> None:
    """Write all of ``data`` to an unbuffered file, or raise the error that stops it."""
    while data:
        written = file.write(data)
        if not written:
            raise OSError(errno.EIO, "the log file took no more bytes")
        data = data[written:]


class _Stream:
    """One connection: its log, counters and end.

    Before ``start`` names the folder, at most ``prestart_bytes`` of messages are held in
    memory; more raises :class:`PrestartOverflow` (the caller refuses the peer, and what came
    is written to a folder so nothing received is lost).
    """

    def __init__(self, server: StreamHost, connection: Any, peer: str, authenticated: bool) -> None:
        self.server = server
        self.connection = connection
        self.peer = peer
        self.authenticated = authenticated
        self.connected_at = time.time()
        self.connected_mono = time.monotonic()
        self.early: list[bytes] = []
        self.early_bytes = 0
        self.folder: Path | None = None
        self.file: Any = None
        self.start: Start | None = None
        self.handle: MediaStream | None = None
        self.frames = {name: 0 for name in TRACKS}
        self.payload_bytes = {name: 0 for name in TRACKS}  # codec bytes received per track, each frame once
        # The last chunks seen per track: a duplicate among them adds no audio to the live figure.
        self.recent_chunks: dict[str, deque[Any]] = {name: deque(maxlen=_RECENT_CHUNKS) for name in TRACKS}
        self.bad = 0
        self.last_frame_at: float | None = None
        self.ts_lo: int | None = None  # media timestamps seen (ms): the finaliser's cost estimate
        self.ts_hi: int | None = None
        self.state = "open"
        self.ended_by: str | None = None
        self.error: str | None = None
        self.files: dict[str, str] = {}

    @property
    def stream_id(self) -> str | None:
        return self.start.stream_id if self.start else None

    @property
    def label(self) -> str:
        """How log lines name this stream: its id, else its folder, else its peer."""
        return self.stream_id or (self.folder.name if self.folder else f"(no start) from {self.peer}")

    def seconds(self) -> float:
        """Audio received so far on the longer track, in seconds (the live view's figure).

        Payload bytes over the codec's byte rate (G.711 and G.722: 8,000 bytes a second
        whatever rate is reported; L16: two bytes a sample at the reported rate); where the
        bytes per second vary (OPUS, AMR-WB) or the codec is unknown, 20 ms per frame, the
        pace Telnyx sends at. The finalised summary has the decoded truth.
        """
        fmt = self.start.media_format if self.start else None
        try:
            info = codecs.codec_info(fmt.encoding if fmt else "PCMU")
        except ValueError:
            info = None
        if info is not None and info.bytes_per_20ms is not None:
            return max(self.payload_bytes.values()) / (info.bytes_per_20ms * 50)
        if info is not None and info.name == "L16":
            return max(self.payload_bytes.values()) / (2 * info.rate(fmt.sample_rate if fmt else None))
        return max(self.frames.values()) * 0.02

    def span_s(self) -> float:
        """How much audio finalising may have to render: the timestamps' span, or the audio."""
        span = (self.ts_hi - self.ts_lo) / 1000 if self.ts_lo is not None and self.ts_hi is not None else 0.0
        return max(span, self.seconds())

    def info(self, *, full: bool = True) -> StreamInfo:
        fmt = self.start.media_format if self.start else None
        return StreamInfo(
            folder=self.folder,
            stream_id=self.stream_id,
            call_control_id=self.start.call_control_id if self.start else None,
            call_session_id=self.start.call_session_id if self.start else None,
            encoding=fmt.encoding if fmt else None,
            sample_rate=fmt.sample_rate if fmt else None,
            custom_parameters=dict(self.start.custom_parameters) if self.start and full else {},
            connected_at=self.connected_at,
            frames=dict(self.frames),
            bad_messages=self.bad,
            seconds_captured=self.seconds(),
            last_frame_at=self.last_frame_at,
            state=self.state,
            ended_by=self.ended_by,
            error=self.error,
            files=dict(self.files),
            peer=self.peer,
        )

    def _open(self, name: str | None) -> None:
        self.folder = unique_child(self.server.out, name or f"stream-{int(self.connected_at * 1000)}")
        # Unbuffered: each line reaches the kernel in one write(2) as it arrives (a buffered
        # file's write + flush copies it once more for the same system call).
        if self.server.redact_dtmf:  # removed once the log is redacted (a crash leaves it: see _redact)
            mark_pending(self.folder)
        self.file = open(self.folder / LOG_NAME, "ab", buffering=0)
        early, self.early, self.early_bytes = self.early, [], 0
        if early:
            _write_all(self.file, b"".join(early))

    def _write(self, line: bytes) -> None:
        if self.file is None:
            self.early.append(line)
            self.early_bytes += len(line)
            if self.early_bytes > self.server.max_prestart_bytes:
                self._open(None)  # keep what came, then the caller refuses the peer
                raise PrestartOverflow(f"over {self.server.max_prestart_bytes} bytes before start")
            return
        written = self.file.write(line)
        if written != len(line):  # a short write (a file-size limit...): the rest, or its error
            _write_all(self.file, line[written or 0 :])

    def receive(self, message: str | bytes, now: float) -> str | None:
        """Log one message and update the counters; returns its event name.

        Counters move only once the line is flushed, so they count what is on disk.

        Raises
        ------
        OSError
            When the disk fails.
        PrestartOverflow
            When too much arrives before ``start``.
        """
        received = int(now * 1_000_000)
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        try:
            msg = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            msg = None
        if isinstance(msg, dict) and "\n" not in text and "\r" not in text:
            line = f'{{"received_us":{received},"message":{text}}}\n'.encode()
        else:
            line = (json.dumps({"received_us": received, "raw": text}) + "\n").encode()
        kind = msg.get("event") if isinstance(msg, dict) else None
        media = msg.get("media") if kind == "media" else None
        if isinstance(media, dict) and isinstance(media.get("payload"), str):
            self._write(line)
            track = normalize_track(media.get("track", "inbound"))
            if track is not None:
                self.frames[track] += 1
                payload = media["payload"]
                n_bytes = len(payload) // 4 * 3 - payload[-2:].count("=")
                self.server._metrics.media(track, n_bytes)  # every frame received, as on disk
                chunk, recent = media.get("chunk"), self.recent_chunks[track]
                if chunk is None or chunk not in recent:  # a frame sent twice is 20 ms of audio, not 40
                    self.payload_bytes[track] += n_bytes
                    if chunk is not None:
                        recent.append(chunk)
                self.last_frame_at = now
                ts = _int(media.get("timestamp"))
                if ts is not None:
                    self.ts_lo = ts if self.ts_lo is None else min(self.ts_lo, ts)
                    self.ts_hi = ts if self.ts_hi is None else max(self.ts_hi, ts)
            else:
                self.bad += 1
            return "media"
        if self.server.redact_dtmf and b"dtmf" in line:  # the digit never reaches the disk
            line = mask_dtmf_line(line) or line
        event = parse_object(msg, text) if isinstance(msg, dict) else None
        if isinstance(event, Start) and self.start is None:
            if self.file is None:
                self._open(event.stream_id or event.call_control_id)
            self._write(line)
            self.start = event
            self.handle = MediaStream(self.server, self.connection, event)
            self.server._stream_started(self)
            return kind
        self._write(line)
        if event is None or isinstance(event, Malformed):
            self.bad += 1
            return None
        if isinstance(event, Mark) and self.handle is not None:
            self.handle._echo(event.name, now)
        return kind

    def close_log(self) -> None:
        if self.file is None and self.early:
            self._open(None)
        if self.file is not None:
            try:
                self.file.close()
            except OSError:  # what is on disk stays
                pass
