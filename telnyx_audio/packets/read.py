"""Packet captures into the common model: one :class:`~telnyx_audio.model.Capture` per call.

:func:`iter_pcap_captures` reads a pcap or pcapng file (plain or gzip) call by call
(:class:`~telnyx_audio.packets.calls.CallReader`) and hands each call's datagrams, with their
arrival times, to :mod:`telnyx_audio.rtp` (:func:`~telnyx_audio.rtp.assemble.assemble_fork`),
exactly as a fork capture is read. The capture's report (:class:`PacketCaptureReport`) adds
what only a packet capture tells: the SIP facts (Call-ID, From/To, the codec negotiated, the
final status, who hung up), the SIP ladder, RTCP reports and the file's problems.

Tracks: ``inbound`` is what the call's originator (the INVITE's sender) sent, ``outbound``
what it received; without SIP, the first stream seen is ``inbound``; ``swap_tracks=True``
swaps them.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Mapping

import numpy as np

from telnyx_audio.errors import CaptureError, NotACaptureError, UnsupportedEncodingError
from telnyx_audio.model.capture import Capture
from telnyx_audio.model.events import MediaFormat
from telnyx_audio.model.recording import Recording
from telnyx_audio.packets._problems import Problems
from telnyx_audio.packets.calls import CallReader, PacketCall
from telnyx_audio.packets.pcapfile import sniff_format
from telnyx_audio.rtp.assemble import ForkCaptureReport, assemble_fork
from telnyx_audio.rtp.datagrams import Records

__all__ = ["PacketCaptureReport", "is_packet_capture", "iter_pcap_captures", "read_pcap_captures",
           "capture_from_call", "rtp_streams"]


@dataclass(frozen=True)
class PacketCaptureReport(ForkCaptureReport):
    """A fork-style report (RTP statistics, DTMF) with what a packet capture adds.

    Attributes
    ----------
    sip : dict
        The SIP facts (:meth:`telnyx_audio.packets.dialogs.Dialog.facts`); empty without SIP.
    ladder : tuple of dict
        Every SIP message of the call: ``time_ns``, ``frame``, ``source``, ``destination``,
        ``label`` (method or status), ``cseq``, ``call_id``, ``transport``, ``sdp``.
    rtcp : tuple of dict
        RTCP sender and receiver reports, with loss, jitter (ms when the clock is known) and
        round-trip time.
    streams : tuple of dict
        The call's flows: ``src``, ``sport``, ``dst``, ``dport`` and ``track``.
    file_problems : dict
        What in the whole file could not be read, ``{reason: {"count": n, "examples": [...]}}``
        (the same for every call of the file; ``telnyx-audio decode`` prints it once).
    """

    source_kind: ClassVar[str] = "pcap"
    sip: dict[str, Any] = field(default_factory=dict)
    ladder: tuple[dict[str, Any], ...] = ()
    rtcp: tuple[dict[str, Any], ...] = ()
    streams: tuple[dict[str, Any], ...] = ()
    file_problems: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (part of ``summary.json``).

        Returns
        -------
        dict
            The report's figures.
        """
        out = super().as_dict()
        out["source_kind"] = "pcap"
        out["sip"] = dict(self.sip)
        out["ladder"] = [dict(r) for r in self.ladder]
        out["rtcp"] = [dict(r) for r in self.rtcp]
        out["streams"] = [dict(s) for s in self.streams]
        out["file_problems"] = dict(self.file_problems)
        return out


def is_packet_capture(path: str | os.PathLike[str]) -> bool:
    """Whether a file is a pcap or pcapng file, plain or gzip-compressed (by its first bytes).

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    bool
        True for a pcap or pcapng file.

    Examples
    --------
    >>> import tempfile, pathlib, struct
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    >>> is_packet_capture(p), is_packet_capture(__file__)
    (True, False)
    """
    try:
        with open(path, "rb") as f:
            head = f.read(16)
        kind = sniff_format(head)
        if kind == "gzip":
            with gzip.open(path, "rb") as g:
                kind = sniff_format(g.read(16))
    except (OSError, EOFError, zlib.error):
        return False
    return kind in ("pcap", "pcapng")


def _payload_map(call: PacketCall, warnings: list[str]) -> dict[int, str]:
    """One payload-type map for the call from both parties' SDPs (``PT=ENC/CLOCK`` strings
    the RTP layer reads), types it cannot decode left out with a warning."""
    from telnyx_audio.rtp.packet import parse_payload_type

    out: dict[int, str] = {}
    for track in ("inbound", "outbound"):
        for pt, name in call.payload_types(track).items():
            parts = name.split("/")
            spec = "/".join(parts[:2])  # mono: "opus/48000/2" names Opus's RTP clock, not 2 channels
            try:
                parse_payload_type(f"{pt}={spec}")
            except ValueError:
                if pt >= 96:
                    warnings.append(f"payload type {pt} ({name}) in the SDP: no decoder for it")
                continue
            if pt in out and out[pt].lower() != spec.lower():
                warnings.append(f"payload type {pt} means {out[pt]} to one party and {spec} to the other:"
                                f" {out[pt]} is used")
                continue
            out[pt] = spec
    return out


def _rtcp_dicts(call: PacketCall, clocks: dict[str, int]) -> tuple[dict[str, Any], ...]:
    out = []
    for r in call.rtcp:
        d = r.as_dict()
        for b in d["blocks"]:
            clock = clocks.get(b["ssrc"])
            b["jitter_ms"] = round(b["jitter"] * 1000.0 / clock, 3) if clock else None
        out.append(d)
    return tuple(out)


def capture_from_call(call: PacketCall, *, path: str | os.PathLike[str], swap_tracks: bool = False,
                      media_format: MediaFormat | Mapping[str, Any] | None = None,
                      payload_types: Mapping[int, Any] | list[str] | None = None,
                      file_problems: Problems | None = None) -> Capture:
    """One call of a packet capture as a :class:`~telnyx_audio.model.Capture`.

    Parameters
    ----------
    call : PacketCall
        From :class:`~telnyx_audio.packets.calls.CallReader`.
    path : str or PathLike
        The file it came from.
    swap_tracks : bool
        Swap inbound and outbound (when the capture's point of view is the other party's).
    media_format : MediaFormat or dict, optional
        How to decode dynamic payload types nothing else names.
    payload_types : dict or list of str, optional
        ``{96: "OPUS/48000"}`` or ``["96=OPUS/48000"]``, over the SDP's map.
    file_problems : Problems, optional
        The file's problems, shown in the report.

    Returns
    -------
    Capture
        ``recording.audio`` is int16 of shape (2, n), ``[inbound, outbound]``.
    """
    if isinstance(media_format, Mapping):
        media_format = MediaFormat(str(media_format.get("encoding")), int(media_format.get("sample_rate") or 8000))
    warnings: list[str] = list(call.warnings)
    sdp_map = _payload_map(call, warnings)
    given: dict[int, Any] = dict(sdp_map)
    if payload_types:  # the caller's over the SDP's
        if isinstance(payload_types, Mapping):
            given.update({int(k): v for k, v in payload_types.items()})
        else:
            given.update({int(s.split("=", 1)[0]): s.split("=", 1)[1] for s in payload_types})
    track = (1 - call.track).astype(np.int8) if swap_tracks else call.track
    streams = [dict(s.as_dict(), track=("outbound" if s.track == "inbound" else "inbound") if swap_tracks else s.track)
               for s in call.streams]
    labels = [{k: s[k] for k in ("src", "sport", "dst", "dport")} for s in streams]
    meta: dict[str, Any] = {"session_id": call.key, "source": "pcap"}
    records = Records(buf=call.buf, offset=call.offset, length=call.length, track=track,
                      received_us=call.arrival_ns // 1000, meta=meta, problems=warnings,
                      received_ns=call.arrival_ns, stream=call.stream, stream_labels=labels)
    error = exception = None
    try:
        recording, report, events = assemble_fork(records, payload_types=given or None, media_format=media_format)
    except UnsupportedEncodingError as exc:  # a codec this FFmpeg cannot decode: the capture, with its error
        error, exception = str(exc), exc
        recording = Recording(np.zeros((2, 0), np.int16), 8000, str(exc.encoding), (), {})
        report = ForkCaptureReport(lines=len(records), bad_lines=0, bad_examples=(), events={},
                                   warnings=tuple(warnings), tracks={})
        events = ()
    clocks: dict[str, int] = {}
    for name, st in report.rtp.items():
        for s in st.streams:
            clocks.setdefault(s["ssrc"], recording.sample_rate if recording.encoding != "G722" else 8000)
    d = call.dialog
    sip = d.facts() if d is not None else {}
    if sip and swap_tracks:
        for k in ("payload_types", "fmtp", "ptime_ms"):
            sip[k] = {"inbound": sip[k]["outbound"], "outbound": sip[k]["inbound"]}
    fields = {k: getattr(report, k) for k in ("lines", "bad_lines", "bad_examples", "events", "warnings", "tracks",
                                              "rtp", "dtmf_events", "truncated_bytes")}
    packet_report = PacketCaptureReport(
        **fields, sip=sip, ladder=tuple(r.as_dict() for r in (d.ladder if d is not None else ())),
        rtcp=_rtcp_dicts(call, clocks), streams=tuple(streams),
        file_problems=file_problems.as_dict() if file_problems is not None else {},
    )
    start = {"source": "pcap", "call_id": sip.get("call_id"), "from": sip.get("from"), "to": sip.get("to")}
    return Capture(
        path=os.fspath(path),
        stream_id=call.key,
        call_control_id=None,
        call_session_id=None,
        media_format=MediaFormat(recording.encoding, recording.sample_rate, 1),
        custom_parameters={},
        start={k: v for k, v in start.items() if v is not None},
        recording=recording,
        report=packet_report,
        events=events,
        error=error,
        exception=exception,
    )


def _open_reader(path: str | os.PathLike[str], *, pair: tuple[int, int] | None, chunk_bytes: int) -> CallReader:
    """A :class:`CallReader` on ``path``; what stops it from opening, as a ``CaptureError``."""
    try:
        return CallReader(path, pair=pair, chunk_bytes=chunk_bytes)
    except IsADirectoryError as exc:
        raise CaptureError(f"{os.fspath(path)!r} is a directory, expected a capture file") from exc
    except OSError as exc:
        raise CaptureError(f"cannot read capture {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise CaptureError(str(exc)) from exc


def iter_pcap_captures(path: str | os.PathLike[str], *, pair: tuple[int, int] | None = None,
                       swap_tracks: bool = False, media_format: MediaFormat | Mapping[str, Any] | None = None,
                       payload_types: Mapping[int, Any] | list[str] | None = None,
                       chunk_bytes: int = 1 << 24) -> Iterator[Capture]:
    """The calls of a packet capture, one :class:`~telnyx_audio.model.Capture` at a time.

    A generator: each call is decoded as it ends in the file, so memory holds the calls in
    progress, not the file (a capture of 500 calls needs the memory of one or two).

    Parameters
    ----------
    path : str or PathLike
        A pcap or pcapng file, plain or gzip-compressed.
    pair : (int, int), optional
        ``(rx_port, tx_port)`` of a Telnyx fork captured with tcpdump: RTP to ``rx_port`` is
        the inbound track, to ``tx_port`` the outbound one, of one call.
    swap_tracks : bool
        Swap inbound and outbound.
    media_format, payload_types
        As for :func:`capture_from_call`.
    chunk_bytes : int
        How much of the file is read at once.

    Yields
    ------
    Capture
        One per call, as it ends in the file.

    Raises
    ------
    CaptureError
        If the file cannot be read or is not a packet capture.
    """
    reader = _open_reader(path, pair=pair, chunk_bytes=chunk_bytes)
    for call in reader:
        yield capture_from_call(call, path=path, swap_tracks=swap_tracks, media_format=media_format,
                                payload_types=payload_types, file_problems=reader.problems)


def read_pcap_captures(path: str | os.PathLike[str], **kwargs: Any) -> list[Capture]:
    """Every call of a packet capture, one :class:`~telnyx_audio.model.Capture` each (in the
    order they end in the file); see :func:`iter_pcap_captures` for the options.

    Every capture's ``report.file_problems`` says what in the file could not be read (a torn
    last record, a lying IP header...): counted, never fatal.

    Parameters
    ----------
    path : str or PathLike
        A pcap or pcapng file, plain or gzip-compressed.
    **kwargs
        The options of :func:`iter_pcap_captures`.

    Returns
    -------
    list of Capture
        One per call.

    Raises
    ------
    CaptureError
        If the file cannot be read or is not a packet capture.
    NotACaptureError
        If it holds no call: no SIP dialog and no RTP stream.

    Examples
    --------
    >>> import glob
    >>> for path in glob.glob("/usr/share/sip-tester/g711a.pcap"):
    ...     (cap,) = read_pcap_captures(path)
    ...     print(cap.media_format.encoding, cap.recording.tracks, cap.report.rtp["inbound"].packets)
    PCMA ('inbound',) 236
    """
    reader = _open_reader(path, pair=kwargs.pop("pair", None), chunk_bytes=kwargs.pop("chunk_bytes", 1 << 24))
    captures = [capture_from_call(call, path=path, file_problems=reader.problems, **kwargs) for call in reader]
    if not captures:
        c = reader.counts
        raise NotACaptureError(
            f"{os.fspath(path)!r} holds no call: no SIP dialog and no RTP stream among its {c['frames']} frames"
            f" ({c['udp']} UDP, {c['tcp']} TCP, {c['sip_messages']} SIP messages)"
            + (f"; problems: {'; '.join(reader.problems.lines())}" if reader.problems else ""))
    if reader.problems:  # known only at the end: every call of the file carries them
        captures = [_with_file_problems(c, reader.problems) for c in captures]
    return captures


def _with_file_problems(capture: Capture, problems: Problems) -> Capture:
    import dataclasses

    report = dataclasses.replace(capture.report, file_problems=problems.as_dict())
    return dataclasses.replace(capture, report=report)


def rtp_streams(path: str | os.PathLike[str], *, pair: tuple[int, int] | None = None,
                chunk_bytes: int = 1 << 24):
    """Wireshark's RTP Streams table of a packet capture, without decoding any audio.

    One row per stream (5-tuple and SSRC) with the call it belongs to, its track and
    Wireshark's RTP Stream Analysis figures (``tshark -q -z rtp,streams``, and more:
    sequence errors, skew, clock drift). Only the RTP headers of the datagrams are kept.

    Parameters
    ----------
    path : str or PathLike
        A pcap or pcapng file, plain or gzip-compressed.
    pair : (int, int), optional
        As for :func:`iter_pcap_captures`.
    chunk_bytes : int
        How much of the file is read at once.

    Returns
    -------
    pandas.DataFrame
        Columns ``call``, ``track``, ``src``, ``sport``, ``dst``, ``dport``, ``ssrc``,
        ``payload_types``, then :data:`telnyx_audio.rtp.stats.STAT_KEYS`.

    Examples
    --------
    >>> import glob
    >>> for path in glob.glob("/usr/share/sip-tester/g711a.pcap"):
    ...     print(rtp_streams(path)[["ssrc", "packets", "lost", "max_delta_ms"]].round(3).to_dict("records"))
    [{'ssrc': 'dee0ee8f', 'packets': 236, 'lost': 0, 'max_delta_ms': 34.829}]
    """
    import pandas as pd

    from telnyx_audio.rtp.packet import parse_packets
    from telnyx_audio.rtp.stats import STAT_KEYS, WIRESHARK_CLOCKS, track_stats, wireshark_clock

    reader = CallReader(path, pair=pair, chunk_bytes=chunk_bytes, header_bytes=12)
    rows: list[dict[str, Any]] = []
    for call in reader:
        cols = parse_packets(call.buf, call.offset, call.length)
        # Only the 12 fixed bytes were kept: a CSRC list, a header extension or padding runs
        # "past the end" of what is here, not of the datagram (reasons 3-5). They are RTP.
        ok = (cols.reason == 0) | ((cols.reason >= 3) & (cols.reason <= 5))
        labels = [{k: getattr(s, k) for k in ("src", "sport", "dst", "dport")} for s in call.streams]
        for t, track in enumerate(("inbound", "outbound")):
            names = call.payload_types(track)
            clock_of = np.array([WIRESHARK_CLOCKS.get(pt, 0) if pt < 96 else wireshark_clock(pt, names)
                                 for pt in range(128)], np.int64)
            sel = np.flatnonzero(ok & (call.track == t))
            if not sel.size:
                continue
            _, per = track_stats(sel, arrival_ns=call.arrival_ns, seq=cols.sequence_number, timestamp=cols.timestamp,
                                 payload_type=cols.payload_type, marker=cols.marker, ssrc=cols.ssrc,
                                 clock_of=clock_of, stream=call.stream, labels=labels)
            rows += [{"call": call.key, "track": track, **p} for p in per]
    columns = ["call", "track", "src", "sport", "dst", "dport", "ssrc", "payload_types", *STAT_KEYS]
    return pd.DataFrame(rows, columns=columns)
