"""``redact()``: a redacted copy of any capture, its WAVs and summaries, and a manifest.

See :mod:`telnyx_audio.redaction` for what is removed and how it is checked.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from telnyx_audio._util.paths import capture_stem, safe_name, stream_folders
from telnyx_audio.errors import CaptureError, RedactionError
from telnyx_audio.model.manifest import MANIFEST_NAME, capture_ids, stream_entry, write_manifest, write_redacted_call
from telnyx_audio.model.redact import (
    DEFAULT_PAD_S,
    Muting,
    Span,
    as_span,
    check_spans,
    find_tones,
    mute_audio,
)

__all__ = ["redact", "RedactionResult", "MANIFEST_NAME", "capture_kind"]


@dataclass(frozen=True)
class RedactionResult:
    """What :func:`redact` wrote for one capture.

    Attributes
    ----------
    source : str
        The capture redacted.
    kind : str
        ``"websocket"`` (JSONL), ``"fork"`` (``.rtpcap``), ``"pcap"`` or ``"wav"``.
    folder : Path
        Where everything was written.
    capture : Path
        The redacted copy of the capture itself (same name as the source).
    manifest : Path
        ``redaction.json``.
    streams : list of dict
        Per stream or call: ids, spans muted (with reasons and evidence), ranges applied,
        frames replaced, keys masked (the manifest's ``streams``).
    files : dict of str to str
        Every file written (path relative to ``folder``) and its SHA-256.
    """

    source: str
    kind: str
    folder: Path
    capture: Path
    manifest: Path
    streams: list[dict[str, Any]]
    files: dict[str, str] = field(default_factory=dict)

    @property
    def muted_s(self) -> float:
        """Seconds muted on the busier track, over every stream."""
        return sum(max(s.get("muted_s", {}).values(), default=0.0) for s in self.streams)

    def __repr__(self) -> str:
        spans = sum(len(s.get("spans", [])) for s in self.streams)
        return (f"<RedactionResult {self.kind} {self.source!r} -> {str(self.folder)!r}: {spans} spans,"
                f" {self.muted_s:.2f} s muted>")


def capture_kind(path: str | os.PathLike[str]) -> str:
    """What a file is, from its first bytes: ``fork``, ``wav``, ``pcap`` or ``websocket``.

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    str
        ``"fork"``, ``"wav"``, ``"pcap"`` or ``"websocket"``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"RIFF\\x00\\x00\\x00\\x00WAVEfmt ")
    >>> capture_kind(p)
    'wav'
    """
    from telnyx_audio.forks.rtpcap import MAGIC
    from telnyx_audio.packets.pcapfile import sniff_format

    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:2] == b"\x1f\x8b":
                f.seek(0)
                with gzip.GzipFile(fileobj=f) as z:
                    try:
                        head = z.read(64)
                    except (OSError, EOFError):
                        return "websocket"  # the reader says what is wrong with it
    except IsADirectoryError as exc:
        raise CaptureError(f"{os.fspath(path)!r} is a directory, expected a capture file") from exc
    except OSError as exc:
        raise CaptureError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    if head.startswith(MAGIC):
        return "fork"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if sniff_format(head) in ("pcap", "pcapng"):
        return "pcap"
    return "websocket"


def redact(
    source: str | os.PathLike[str],
    *,
    dtmf: bool = True,
    spans: Iterable[Any] = (),
    pad_s: float = DEFAULT_PAD_S,
    out: str | os.PathLike[str] | None = None,
    media_format: Mapping[str, Any] | None = None,
    settings: Mapping[str, float] | None = None,
    now: _dt.datetime | None = None,
) -> RedactionResult:
    """Write a redacted copy of a capture: DTMF and chosen spans muted, digits masked.

    For every capture kind (the kind is read off the file's first bytes): a WebSocket
    capture (JSONL), a fork capture (``.rtpcap``), a packet capture (pcap, pcapng), or a
    WAV. Into ``out`` go the redacted copy of the capture itself (same name), the redacted
    WAVs and ``summary.json`` of each call (``<stream id>/`` for files of several streams;
    not for a WAV source), and ``redaction.json``, the manifest: each muted span (tracks,
    start, end, reason: ``dtmf`` with the detector's evidence, or ``span`` given by the
    user), the ranges muted as applied, the detector and its settings, and the SHA-256 of the
    input and of every output.

    Muted spans cover both tracks (a tone leaks into the other leg as echo) with the guard
    band ``pad_s`` on each side of every tone. Duration and alignment never change; audio
    outside the muted spans stays bit-identical (the WAVs' samples, and the capture's bytes).
    Redacting an already redacted capture changes nothing.

    Parameters
    ----------
    source : str or PathLike
        The capture file.
    dtmf : bool
        Find DTMF tones in the audio and mute them, and mask every key event (``dtmf``
        messages, RFC 4733 packets): the digit becomes ``"*"``, its time kept.
    spans : iterable
        More stretches to mute, in seconds of the call's timeline: ``"START-END[:TRACK]"``
        strings, ``(start, end[, track])`` tuples or :class:`~telnyx_audio.model.redact.Span`.
        Without a track both are muted; they are muted as given (no guard band).
    pad_s : float
        Guard band around each tone found, seconds (raise it if tones are clipped by a slow
        attack; lower it to keep more of the speech around keys).
    out : str or PathLike, optional
        The folder to write into (created; what is in it already is replaced); by default
        ``<source's folder>/<capture name>.redacted``.
    media_format : dict, optional
        ``{"encoding": ..., "sample_rate": ...}`` for captures that do not say (see
        :func:`~telnyx_audio.read_captures`).
    settings : dict, optional
        Detector keywords (:data:`~telnyx_audio.model.redact.DETECTOR_SETTINGS` by default).
    now : datetime, optional
        The manifest's ``created_at`` (the clock by default).

    Returns
    -------
    RedactionResult

    Raises
    ------
    ValueError
        A span outside the call, negative or reversed, an unknown track, a negative pad.
    RedactionError
        When the capture cannot be redacted safely (an undecodable stretch, a codec whose
        silence cannot be written, a tone still heard after muting). Fail closed: nothing is
        left in ``out``.
    CaptureError
        When the source cannot be read.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "clean"
    >>> r = redact("data/example_call.jsonl", out=out)
    >>> sorted(p.name for p in out.iterdir())
    ['example_call.jsonl', 'inbound.wav', 'outbound.wav', 'redaction.json', 'stereo.wav', 'summary.json']
    >>> r.streams[0]["keys"], r.streams[0]["dtmf"], len(r.streams[0]["spans"])
    (2, '**', 2)
    """
    if not isinstance(pad_s, (int, float)) or isinstance(pad_s, bool) or not 0 <= pad_s < 60:
        raise ValueError(f"pad_s must be a number of seconds from 0 to 60, got {pad_s!r}")
    user = [as_span(s) for s in spans]  # checked now: a bad span fails before anything is read
    kind = capture_kind(source)
    src = Path(source)
    folder = Path(out) if out is not None else src.parent / f"{safe_name(capture_stem(src), 'capture')}.redacted"
    staging = folder.with_name(f".{folder.name}.part")
    shutil.rmtree(staging, ignore_errors=True)
    made = [p for p in (folder.parent, *folder.parent.parents) if not p.exists()]
    staging.mkdir(parents=True)
    try:
        streams = _KINDS[kind](src, staging, user, dtmf=dtmf, pad_s=float(pad_s), settings=settings,
                               media_format=media_format)
        result = _finish(src, kind, staging, folder, streams, user, dtmf, float(pad_s), settings, now)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for p in made:  # the folders made for the staging copy, left as they were (nothing written)
            try:
                p.rmdir()
            except OSError:
                break
        raise
    return result


def _finish(src: Path, kind: str, staging: Path, folder: Path, streams: list[dict[str, Any]], user: list[Span],
            dtmf: bool, pad_s: float, settings: Mapping[str, float] | None,
            now: _dt.datetime | None) -> RedactionResult:
    manifest = write_manifest(staging, src=src, kind=kind, streams=streams, spans=user, dtmf=dtmf, pad_s=pad_s,
                              settings=settings, now=now)
    if folder.exists():  # replaced whole: what a previous run left is never mixed with this one
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
        os.replace(staging, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, folder)
    files = {o["path"]: o["sha256"] for o in manifest["outputs"]}
    return RedactionResult(os.fspath(src), kind, folder, folder / src.name, folder / MANIFEST_NAME, streams, files)


def _websocket(src: Path, staging: Path, user: list[Span], *, dtmf: bool, pad_s: float,
               settings: Mapping[str, float] | None, media_format: Any) -> list[dict[str, Any]]:
    from telnyx_audio.streams.redact import redact_stream_log

    done = redact_stream_log(src, staging / src.name, dtmf=dtmf, spans=user, pad_s=pad_s, settings=settings,
                             media_format=media_format)
    names = stream_folders([s.capture.stream_id for s in done.streams])
    streams = []
    for s, name in zip(done.streams, names):
        entry = stream_entry(capture_ids(s.capture), s.spans, s.muting, keys=s.keys, masked=s.dtmf_masked,
                             frames_replaced=s.frames_replaced, folder=name,
                             undecodable_payloads_emptied=s.undecodable_emptied)
        write_redacted_call(s.capture, staging / name if name else staging, entry)
        streams.append(entry)
    return streams


def _fork(src: Path, staging: Path, user: list[Span], *, dtmf: bool, pad_s: float,
          settings: Mapping[str, float] | None, media_format: Any) -> list[dict[str, Any]]:
    from telnyx_audio.forks.redact import redact_fork_capture

    s = redact_fork_capture(src, staging / src.name, dtmf=dtmf, spans=user, pad_s=pad_s, settings=settings,
                            media_format=media_format)
    entry = stream_entry(capture_ids(s.capture), s.spans, s.muting, keys=s.keys, masked=s.events_masked,
                         frames_replaced=s.packets_replaced, telephone_event_packets_masked=s.event_packets_masked)
    write_redacted_call(s.capture, staging, entry)
    return [entry]


def _pcap(src: Path, staging: Path, user: list[Span], *, dtmf: bool, pad_s: float,
          settings: Mapping[str, float] | None, media_format: Any) -> list[dict[str, Any]]:
    """A packet capture: the file patched in place of its RTP payloads (every call), a folder of
    WAVs per call (none for a one-call file), SIP INFO keys masked."""
    from telnyx_audio.packets.redact import redact_packet_capture

    done = redact_packet_capture(src, staging / src.name, dtmf=dtmf, spans=user, pad_s=pad_s, settings=settings,
                                 media_format=media_format)
    names = stream_folders([s.capture.stream_id for s in done.calls])
    streams = []
    for s, name in zip(done.calls, names):
        entry = stream_entry(capture_ids(s.capture), s.spans, s.muting, keys=s.keys, masked=s.events_masked,
                             frames_replaced=s.packets_replaced, folder=name,
                             telephone_event_packets_masked=s.event_packets_masked,
                             sip_info_keys_masked=done.sip_info_masked.get(s.capture.stream_id or "", 0),
                             undecodable_payloads_zeroed=s.emptied)
        write_redacted_call(s.capture, staging / name if name else staging, entry)
        streams.append(entry)
    if not streams and not done.sip_info_masked:
        raise RedactionError("the packet capture holds no call with RTP: nothing to redact", os.fspath(src))
    return streams


_WAV_TYPES = {"PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32", "FLOAT": "float32", "DOUBLE": "float64"}


def _wav(src: Path, staging: Path, user: list[Span], *, dtmf: bool, pad_s: float,
         settings: Mapping[str, float] | None, media_format: Any) -> list[dict[str, Any]]:
    """A WAV: each channel a track (stereo: left inbound, right outbound, as the toolkit writes)."""
    import soundfile

    try:
        info = soundfile.info(str(src))
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise CaptureError(f"{os.fspath(src)!r} is not a WAV file soundfile can read: {exc}") from exc
    dtype = _WAV_TYPES.get(info.subtype)
    if dtype is None:
        raise RedactionError(f"a {info.subtype} WAV cannot be rewritten sample for sample (16, 24 or 32-bit PCM and"
                             " float WAVs can)", os.fspath(src))
    data, rate = soundfile.read(str(src), dtype=dtype, always_2d=True)
    channels = data.T  # (channels, n)
    duration = channels.shape[1] / rate
    label = os.fspath(src)
    asked = check_spans(user, duration, label=f"{label} ({duration:g} s)")
    n = channels.shape[1]
    if channels.dtype.kind == "f":
        as_int = np.clip(np.round(channels * 32767.0), -32768, 32767).astype(np.int16)
    else:
        shift = 16 if dtype == "int32" else 0
        as_int = (channels >> shift).astype(np.int16) if shift else channels
    two = np.zeros((2, n), np.int16)
    two[: min(2, as_int.shape[0])] = as_int[:2]
    tracks = ("inbound", "outbound")[: min(2, as_int.shape[0])]
    found = find_tones(two, rate, pad_s=pad_s, settings=settings, tracks=tracks) if dtmf else []
    wanted = [*found, *asked]
    muting = Muting.from_spans(wanted, rate, n)
    muted = np.array(channels, copy=True)
    for c in range(channels.shape[0]):
        # A channel past the second is muted where either track is (it is not a track we know).
        ranges = muting.ranges[min(c, 1)] if c < 2 else np.concatenate(muting.ranges)
        for a, b in ranges.tolist():
            muted[c, a:b] = 0
    tmp = staging / src.name
    soundfile.write(str(tmp), muted.T, rate, subtype=info.subtype, format="WAV")
    again, _ = soundfile.read(str(tmp), dtype=dtype, always_2d=True)
    if not np.array_equal(again.T, muted):  # pragma: no cover - libsndfile wrote other samples
        raise RedactionError("the redacted WAV does not read back sample for sample", label)
    ids = {"stream_id": None, "call_control_id": None, "encoding": None, "sample_rate": None,
           "audio_sample_rate": rate, "duration_s": duration}
    return [stream_entry(ids, wanted, muting, keys=0, masked=0, channels=int(channels.shape[0]),
                         subtype=info.subtype)]


_KINDS = {"websocket": _websocket, "fork": _fork, "pcap": _pcap, "wav": _wav}


def redact_audio(audio: np.ndarray, sample_rate: int, *, dtmf: bool = True, spans: Iterable[Any] = (),
                 pad_s: float = DEFAULT_PAD_S, value: int = 0,
                 settings: Mapping[str, float] | None = None) -> tuple[np.ndarray, list[Span], Muting]:
    """Mute DTMF tones and spans in a ``(2, n)`` array; returns the copy, the spans and the muting.

    Parameters
    ----------
    audio : np.ndarray of int16, shape (2, n)
        ``[inbound, outbound]``.
    sample_rate : int
        Its rate, in Hz.
    dtmf : bool
        Find DTMF tones and mute them.
    spans : iterable
        More stretches to mute, as for :func:`telnyx_audio.redact`.
    pad_s : float
        Guard band around each tone found, seconds.
    value : int
        The sample value muted stretches get (the codec's silence).
    settings : dict, optional
        Detector keywords.

    Returns
    -------
    audio : np.ndarray of int16, shape (2, n)
        The muted copy.
    spans : list of Span
        Every stretch muted: tones found, then the spans asked for.
    muting : Muting
        The muted sample ranges per track.

    Examples
    --------
    >>> a, spans, m = redact_audio(np.ones((2, 100), np.int16), 100, dtmf=False, spans=["0.2-0.3:outbound"])
    >>> int(a[1].sum()), int(a[0].sum()), m.seconds()
    (90, 100, [{'track': 'outbound', 'start_s': 0.2, 'end_s': 0.3}])
    """
    audio = np.asarray(audio)
    asked = check_spans(spans, audio.shape[-1] / sample_rate)
    found = find_tones(audio, sample_rate, pad_s=pad_s, settings=settings) if dtmf else []
    muting = Muting.from_spans([*found, *asked], sample_rate, audio.shape[-1])
    return mute_audio(audio, muting, value), [*found, *asked], muting
