"""A packet capture's calls: SIP dialogs and their RTP datagrams, one :class:`PacketCall` each.

:class:`CallReader` reads a capture chunk by chunk (:class:`~telnyx_audio.packets.pcapfile.PacketFile`),
splits each chunk into UDP datagrams and TCP segments in whole-array steps
(:func:`~telnyx_audio.packets.layers.split_frames`), hands the few SIP messages to the
dialog tracker (:class:`~telnyx_audio.packets.dialogs.Dialogs`) and sorts the many RTP
datagrams into calls by flow: per chunk, one grouping of the rows by 5-tuple, then one
lookup per flow, not per packet.

Which call an RTP datagram belongs to:

1. the call whose SDP named its destination (or, failing that, its source) at the time it
   was captured; the track follows from which party that endpoint belongs to;
2. otherwise, a flow that has the shape of RTP (:mod:`telnyx_audio.packets.heuristic`) is
   a call of its own, or joins the call of the reverse flow (the two directions of one
   5-tuple), or, with ``pair=(rx_port, tx_port)``, the fork call of its destination
   address (rx inbound, tx outbound). In a capture with SIP, such RTP is also a counted
   problem: RTP on ports no SDP named.

RTCP is never a call: sender and receiver reports join the call of their flow (by the SDP's
RTCP endpoint, RFC 3605 ``a=rtcp``, rtcp-mux, or port + 1 of a heuristic RTP flow).

Memory holds the calls in progress, not the file: a call is handed out (and forgotten) a
couple of seconds of capture time after its BYE, CANCEL or failure, a call without SIP
after a minute without packets, and every call still open at the end of the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from telnyx_audio.packets import heuristic
from telnyx_audio.packets._problems import Problems
from telnyx_audio.packets._tcp import SIP_PREFIX_CODES, TcpSip, prefix_codes
from telnyx_audio.packets.dialogs import ANSWERER, ORIGINATOR, Dialog, Dialogs, Endpoint
from telnyx_audio.packets.layers import Reassembler, Transport, address_text, flow_groups, split_frames
from telnyx_audio.packets.pcapfile import PacketFile
from telnyx_audio.packets.rtcp import RoundTrips, RtcpReport, parse_rtcp
from telnyx_audio.packets.sip import BadSip, SipMessage, parse_sip

__all__ = ["PacketCall", "CallReader", "read_calls", "TRACK_NAMES"]

TRACK_NAMES = ("inbound", "outbound")
_NS = 1_000_000_000
_FlowKey = tuple[int, int, int, int, int, int]  # src_hi, src_lo, dst_hi, dst_lo, sport, dport


@dataclass(frozen=True)
class StreamInfo:
    """One flow of a call: a 5-tuple and the track its packets went to."""

    src: str
    sport: int
    dst: str
    dport: int
    track: str

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class PacketCall:
    """One call of a packet capture: its RTP datagrams as columns over one buffer, and its SIP.

    Attributes
    ----------
    key : str
        The SIP Call-ID, or ``rtp-N`` / ``pair-ADDRESS`` for a call found without SIP.
    dialog : Dialog or None
        The SIP facts (ladder, offers and answers, status, who hung up); None without SIP.
    buf : np.ndarray of uint8
        Every datagram of the call.
    offset, length : np.ndarray of int64, shape (m,)
        Where each datagram (the whole UDP payload: RTP header and payload) lies in ``buf``.
    arrival_ns : np.ndarray of int64
        Capture time of each datagram, nanoseconds since the Unix epoch.
    track : np.ndarray of int8
        0 inbound (what the originator sent), 1 outbound (what it received).
    stream : np.ndarray of int16
        Index into ``streams`` (the datagram's 5-tuple).
    frame : np.ndarray of int64
        Frame numbers in the file.
    truncated : np.ndarray of bool
        Datagrams cut short by the snap length (header present, payload incomplete).
    streams : tuple of StreamInfo
    rtcp : tuple of RtcpReport
        Sender and receiver reports of the call, in capture order (round trips filled in).
    warnings : list of str
        What is odd about this call (an SDP without audio, ports that never carried RTP...).
    """

    key: str
    dialog: Dialog | None
    buf: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    arrival_ns: np.ndarray
    track: np.ndarray
    stream: np.ndarray
    frame: np.ndarray
    truncated: np.ndarray
    streams: tuple[StreamInfo, ...]
    rtcp: tuple[RtcpReport, ...] = ()
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.offset.size)

    @property
    def received_us(self) -> np.ndarray:
        """Arrival times in microseconds since the Unix epoch (the fork receiver's unit)."""
        return self.arrival_ns // 1000

    def payload_types(self, track: str) -> dict[int, str]:
        """``{pt: "ENC/CLOCK"}`` the SDP gave for the packets of ``track`` (empty without SIP)."""
        if self.dialog is None:
            return {}
        return self.dialog.payload_types(ANSWERER if track == "inbound" else ORIGINATOR)

    def __repr__(self) -> str:
        n = np.bincount(self.track, minlength=2) if self.track.size else np.zeros(2, np.int64)
        return (f"<PacketCall {self.key} inbound={int(n[0])} outbound={int(n[1])} datagrams"
                f" rtcp={len(self.rtcp)}{' sip' if self.dialog else ''}>")


class _Growing:
    """A byte buffer grown in place (``ndarray.resize`` reallocates: on Linux a large block
    is remapped, not copied), written through views of its free end."""

    def __init__(self) -> None:
        self.a = np.empty(0, np.uint8)
        self.n = 0

    def reserve(self, k: int) -> np.ndarray:
        """The next ``k`` bytes, to be filled by the caller."""
        need = self.n + k
        if need > self.a.size:
            self.a.resize(max(need, self.a.size + self.a.size // 2, 1 << 16), refcheck=False)
        view = self.a[self.n : need]
        self.n = need
        return view

    def take(self) -> np.ndarray:
        """The bytes written (the buffer cut to them)."""
        self.a.resize(self.n, refcheck=False)
        return self.a


def _copy_rows(buf: np.ndarray, starts: np.ndarray, n: int, out: np.ndarray) -> None:
    """``out[i] = buf[starts[i] : starts[i] + n]``: a strided view when the starts are
    equally spaced (one pass, no index array), else one gather."""
    m = starts.size
    if m > 1:
        step = int(starts[1] - starts[0])
        if step > 0 and int(starts[-1] - starts[0]) == step * (m - 1) and (np.diff(starts) == step).all():
            out[...] = np.lib.stride_tricks.as_strided(buf[int(starts[0]):], shape=(m, n), strides=(step, 1),
                                                       writeable=False)
            return
    out[...] = np.lib.stride_tricks.sliding_window_view(buf, n)[starts]


class _Store:
    """A call's datagrams while the capture is read: one growing buffer and column pieces."""

    def __init__(self, key: str, dialog: Dialog | None = None, header_bytes: int | None = None) -> None:
        self.key = key
        self.header_bytes = header_bytes
        self.dialog = dialog
        self.buf = _Growing()
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in ("offset", "length", "arrival_ns", "track",
                                                                   "stream", "frame", "truncated")}
        self.streams: dict[tuple[_FlowKey, int], int] = {}
        self.stream_info: list[StreamInfo] = []
        self.rtcp: list[RtcpReport] = []
        self.rtt = RoundTrips()
        self.flows: set[_FlowKey] = set()
        self.last_ns = 0
        self.n = 0
        self.heuristic = dialog is None
        self.tracks = [False, False]

    def stream_index(self, key: _FlowKey, track: int) -> int:
        idx = self.streams.get((key, track))
        if idx is None:
            idx = self.streams[(key, track)] = len(self.stream_info)
            self.stream_info.append(StreamInfo(address_text(key[0], key[1]), key[4], address_text(key[2], key[3]),
                                               key[5], TRACK_NAMES[track]))
            self.flows.add(key)
        self.tracks[track] = True
        return idx

    def add(self, t: Transport, rows: np.ndarray, key: _FlowKey, track: int) -> None:
        """Copy datagrams ``rows`` of ``t`` (one flow) in: grouped by length, each group one
        copy of equal-sized rows (a strided view when they lie at equal spacing, as the
        packets of a call usually do; else one gather)."""
        if rows.size == 0:
            return
        s = self.stream_index(key, track)
        lengths = t.length[rows]
        if self.header_bytes is not None:
            lengths = np.minimum(lengths, self.header_bytes)
        starts = t.start[rows]
        offset = np.empty(rows.size, np.int64)
        if lengths[0] == lengths.min() == lengths.max():
            values, inverse = lengths[:1], None
        else:
            values, inverse = np.unique(lengths, return_inverse=True)
        if values.size <= 32:
            for j, n in enumerate(values.tolist()):
                sel = np.flatnonzero(inverse == j) if inverse is not None else np.arange(rows.size)
                base = self.buf.n
                if n:
                    _copy_rows(t.buf, starts[sel], n, self.buf.reserve(n * sel.size).reshape(sel.size, n))
                offset[sel] = base + n * np.arange(sel.size, dtype=np.int64)
        else:  # many sizes (Opus, AMR-WB...): one ragged gather, in pieces of bounded size
            ends = np.cumsum(lengths)
            offset[:] = self.buf.n + ends - lengths
            for lo in range(0, rows.size, 4096):
                hi = min(rows.size, lo + 4096)
                ln = lengths[lo:hi]
                idx = np.repeat(starts[lo:hi] - (ends[lo:hi] - ln - (ends[lo - 1] if lo else 0)), ln)
                idx += np.arange(idx.size, dtype=np.int64)
                self.buf.reserve(idx.size)[:] = t.buf[idx]
        m = rows.size
        self.cols["offset"].append(offset)
        self.cols["length"].append(lengths.astype(np.int64))
        self.cols["arrival_ns"].append(t.ts_ns[rows])
        self.cols["track"].append(np.full(m, track, np.int8))
        self.cols["stream"].append(np.full(m, s, np.int16))
        self.cols["frame"].append(t.number[rows])
        self.cols["truncated"].append(t.truncated[rows])
        self.n += m
        self.last_ns = max(self.last_ns, int(t.ts_ns[rows[-1]]))

    def add_held(self, held: list[tuple[bytes, int, int, bool]], key: _FlowKey, track: int) -> None:
        """Copy datagrams held while their flow was being judged."""
        if not held:
            return
        s = self.stream_index(key, track)
        if self.header_bytes is not None:
            held = [(h[0][: self.header_bytes], *h[1:]) for h in held]
        lengths = np.array([len(h[0]) for h in held], np.int64)
        offset = self.buf.n + np.cumsum(lengths) - lengths
        self.buf.reserve(int(lengths.sum()))[:] = np.frombuffer(b"".join(h[0] for h in held), np.uint8)
        m = len(held)
        self.cols["offset"].append(offset)
        self.cols["length"].append(lengths)
        self.cols["arrival_ns"].append(np.array([h[1] for h in held], np.int64))
        self.cols["track"].append(np.full(m, track, np.int8))
        self.cols["stream"].append(np.full(m, s, np.int16))
        self.cols["frame"].append(np.array([h[2] for h in held], np.int64))
        self.cols["truncated"].append(np.array([h[3] for h in held], bool))
        self.n += m
        self.last_ns = max(self.last_ns, max(h[1] for h in held))

    def finish(self, warnings: list[str]) -> PacketCall:
        cols = {k: (np.concatenate(v) if v else np.empty(0, {"track": np.int8, "stream": np.int16,
                                                              "truncated": bool}.get(k, np.int64)))
                for k, v in self.cols.items()}
        if len(self.cols["frame"]) > 1 and (np.diff(cols["frame"]) < 0).any():  # back in capture order
            order = np.argsort(cols["frame"], kind="stable")
            cols = {k: v[order] for k, v in cols.items()}
        buf = self.buf.take()
        self.cols = {}
        return PacketCall(self.key, self.dialog, buf, streams=tuple(self.stream_info), rtcp=tuple(self.rtcp),
                          warnings=warnings, **cols)


@dataclass
class _Flow:
    """What the reader knows of one UDP flow (5-tuple)."""

    state: str = "new"  # new -> judging -> rtp (heuristic call) | not_rtp; or sip (bound by SDP)
    held: list[tuple[bytes, int, int, bool]] = field(default_factory=list)
    store: str | None = None
    track: int = 0
    last_ns: int = 0


class CallReader:
    """Read a packet capture's calls, one :class:`PacketCall` at a time (see the module docstring).

    Parameters
    ----------
    path : str or PathLike
        A pcap or pcapng file, plain or gzip-compressed.
    pair : (int, int), optional
        ``(rx_port, tx_port)`` of a Telnyx fork captured with tcpdump: RTP to ``rx_port`` is
        the inbound track, to ``tx_port`` the outbound track of one call.
    chunk_bytes : int
        How much of the file is held at once.
    grace_s : float
        How long after a call's end (BYE, CANCEL, failure) its RTP is still taken.
    idle_s : float
        How long a call without SIP may go without packets before it is over.
    header_bytes : int, optional
        Keep only this many bytes of each datagram (12: the RTP header, enough for the
        statistics): memory and time for RTP statistics without the audio.

    Attributes
    ----------
    problems : Problems
        What in the file could not be read, by reason (counted, never fatal).
    counts : dict
        Frames, UDP datagrams, TCP segments, SIP messages, RTP and RTCP packets seen.

    Raises
    ------
    ValueError
        If the file is not a pcap or pcapng file (also when compressed).

    Examples
    --------
    >>> import glob
    >>> paths = sorted(glob.glob("/usr/share/sip-tester/g711a.pcap"))
    >>> for call in (CallReader(paths[0]) if paths else []):
    ...     print(call.key, len(call), call.streams[0].dport)
    rtp-1 236 2006
    """

    def __init__(self, path: str | os.PathLike[str], *, pair: tuple[int, int] | None = None,
                 chunk_bytes: int = 1 << 24, grace_s: float = 2.0, idle_s: float = 60.0,
                 header_bytes: int | None = None) -> None:
        self.path = os.fspath(path)
        if pair is not None:
            if len(pair) != 2 or not all(0 < int(p) < 65536 for p in pair) or int(pair[0]) == int(pair[1]):
                raise ValueError(f"pair must be two different UDP ports (rx_port, tx_port), got {pair!r}")
            pair = (int(pair[0]), int(pair[1]))
        self.pair = pair
        self.file = PacketFile(self.path, chunk_bytes=chunk_bytes)
        self.problems = self.file.problems
        self.header_bytes = header_bytes
        self.grace_ns = int(grace_s * _NS)
        self.idle_ns = int(idle_s * _NS)
        self.counts = {"frames": 0, "udp": 0, "tcp": 0, "sip_messages": 0, "rtp": 0, "rtcp": 0, "calls": 0,
                       "not_rtp_flows": 0}
        self._reasm = Reassembler(self.problems)
        self._tcp = TcpSip(self.problems)
        self._dialogs = Dialogs()
        self._stores: dict[str, _Store] = {}
        self._flows: dict[_FlowKey, _Flow] = {}
        self._n_heuristic = 0
        self._sip_seen = False
        self._unbound_sip_rtp = 0
        self._frame = 0

    def __iter__(self) -> Iterator[PacketCall]:
        now = 0
        for frames in self.file:
            self.counts["frames"] += len(frames)
            udp, tcp = split_frames(frames, self.problems, self._reasm)
            self.counts["udp"] += len(udp)
            self.counts["tcp"] += len(tcp)
            self._sip(udp, tcp)
            self._media(udp)
            if len(frames):
                now = int(frames.ts_ns[-1])
                self._frame = int(frames.number[-1])
            del frames, udp, tcp  # the chunk is not held while a call is handed out
            yield from self._done(now)
            self._tcp.expire(now)
        self._tcp.close()
        self._reasm.expire(0, force=True)
        yield from self._done(now, final=True)
        if self._unbound_sip_rtp:
            self.problems.add("RTP packets to or from a call's SDP endpoints outside the call's time: dropped",
                              n=self._unbound_sip_rtp)

    # -- SIP ---------------------------------------------------------------------------
    def _sip(self, udp: Transport, tcp: Transport) -> None:
        events: list[tuple[int, int, SipMessage | BadSip, Transport, int, str]] = []
        if len(udp):
            self._udp_codes = prefix_codes(udp)
            for i in np.flatnonzero(np.isin(self._udp_codes, SIP_PREFIX_CODES)).tolist():
                events.append((int(udp.number[i]), int(udp.ts_ns[i]), parse_sip(udp.payload(i)), udp, i, "UDP"))
        else:
            self._udp_codes = np.empty(0, np.int64)
        if len(tcp):
            for frame, ts, msg, row in self._tcp.feed(tcp):
                events.append((frame, ts, msg, tcp, row, "TCP"))
        events.sort(key=lambda e: e[0])
        for frame, ts, msg, t, i, transport in events:
            if isinstance(msg, BadSip):
                self.problems.add(f"SIP message not understood ({msg.reason}): skipped", frame=frame)
                continue
            self.counts["sip_messages"] += 1
            src: Endpoint = (int(t.src_hi[i]), int(t.src_lo[i]), int(t.sport[i]))
            dst: Endpoint = (int(t.dst_hi[i]), int(t.dst_lo[i]), int(t.dport[i]))
            known = msg.call_id in self._dialogs.calls
            d = self._dialogs.message(msg, time_ns=ts, frame=frame, src=src, dst=dst,
                                      src_text=_ep_text(src), dst_text=_ep_text(dst), transport=transport)
            if d is not None and not known:
                self._sip_seen = True
                self._stores[d.call_id] = _Store(d.call_id, d, self.header_bytes)
            if msg.truncated:
                self.problems.add("SIP body shorter than its Content-Length (cut short)", frame=frame)
        for frame, why in self._dialogs.problems:
            self.problems.add(why, frame=frame)
        self._dialogs.problems.clear()

    # -- RTP and RTCP ------------------------------------------------------------------
    def _media(self, udp: Transport) -> None:
        if not len(udp):
            return
        lead = self._udp_codes
        b0 = lead >> 24
        b1 = (lead >> 16) & 0xFF
        v2 = (udp.length >= 8) & (b0 >> 6 == 2)
        is_rtcp = v2 & (b1 >= 200) & (b1 <= 207)
        is_rtp = v2 & ~is_rtcp & (udp.length >= 12)
        if is_rtp.all():
            self._rtp(udp)
        elif is_rtp.any():
            self._rtp(udp.take(np.flatnonzero(is_rtp)))
        if is_rtcp.any():
            self._rtcp(udp.take(np.flatnonzero(is_rtcp)))

    def _bound(self, ep: Endpoint, frames: np.ndarray) -> list[tuple[np.ndarray, str, str]]:
        """Where ``ep`` was bound by an SDP at each of ``frames``: (mask, call_id, party) pieces."""
        hist = self._dialogs.bindings.get(ep)
        if not hist:
            return []
        starts = np.array([h.frame for h in hist], np.int64)
        pos = np.searchsorted(starts, frames, side="right") - 1
        out = []
        for j in np.unique(pos).tolist():
            if j < 0 or hist[j].call_id is None or hist[j].call_id not in self._stores:
                continue
            out.append((pos == j, str(hist[j].call_id), hist[j].party))
        return out

    def _rtp(self, t: Transport) -> None:
        self.counts["rtp"] += len(t)
        keys, order, bounds = flow_groups(t)
        for j in range(keys.shape[0]):
            rows = order[bounds[j] : bounds[j + 1]]
            k = keys[j]
            ports = int(k[4])
            key: _FlowKey = (int(k[0]), int(k[1]), int(k[2]), int(k[3]), ports >> 16, ports & 0xFFFF)
            flow = self._flows.get(key)
            if flow is None:
                flow = self._flows[key] = _Flow()
            flow.last_ns = int(t.ts_ns[rows[-1]])
            free = np.ones(rows.size, bool)
            if self._dialogs.bindings:
                frames = t.number[rows]
                # The receiving party first (its SDP named where it receives), then the sender.
                for ep, by_dst in (((key[2], key[3], key[5]), True), ((key[0], key[1], key[4]), False)):
                    for mask, call_id, party in self._bound(ep, frames):
                        sel = mask & free
                        if not sel.any():
                            continue
                        track = 0 if (party == ANSWERER) == by_dst else 1
                        self._stores[call_id].add(t, rows[sel], key, track)
                        free &= ~sel
                        if flow.state != "sip":
                            self._bind_held(flow, key, call_id, track)
                            flow.state = "sip"
            if free.any():
                self._unbound(t, rows[free], key, flow)

    def _bind_held(self, flow: _Flow, key: _FlowKey, call_id: str, track: int) -> None:
        """Datagrams held while judging a flow that an SDP then named: they are the call's."""
        if flow.held:
            self._stores[call_id].add_held(flow.held, key, track)
            flow.held = []

    def _unbound(self, t: Transport, rows: np.ndarray, key: _FlowKey, flow: _Flow) -> None:
        if flow.state == "sip":  # RTP of a call's endpoint before its SDP or after its end
            self._unbound_sip_rtp += rows.size
            return
        if flow.state == "not_rtp":
            return
        if flow.state == "rtp" and flow.store in self._stores:
            self._stores[flow.store].add(t, rows, key, flow.track)
            return
        need = heuristic.DECIDE_AFTER - len(flow.held)
        take, rest = rows[:need], rows[need:]
        for i in take.tolist():
            flow.held.append((t.payload(i), int(t.ts_ns[i]), int(t.number[i]), bool(t.truncated[i])))
        flow.state = "judging"
        if len(flow.held) >= heuristic.DECIDE_AFTER:
            self._judge(key, flow)
            if rest.size:
                self._unbound(t, rest, key, flow)

    def _judge(self, key: _FlowKey, flow: _Flow) -> None:
        """Decide whether a flow no SDP named is RTP; make it a call (or join one) if so."""
        held = flow.held
        heads = np.frombuffer(b"".join(h[0][:12].ljust(12, b"\0") for h in held), np.uint8).reshape(-1, 12)
        lengths = np.array([len(h[0]) for h in held])
        named = self.pair is not None and key[5] in self.pair  # the user said this port carries RTP
        if named:
            ok = bool(((heads[:, 0] >> 6 == 2) & (lengths >= 12)).mean() >= 0.5)
        else:
            ok = heuristic.looks_like_rtp_flow(heads, lengths, key[4], key[5])
        if not ok:
            flow.state, flow.held = "not_rtp", []
            self.counts["not_rtp_flows"] += 1
            return
        store_key, track = self._heuristic_call(key)
        store = self._stores.get(store_key)
        if store is None:
            store = self._stores[store_key] = _Store(store_key, header_bytes=self.header_bytes)
        store.add_held(held, key, track)
        flow.state, flow.held, flow.store, flow.track = "rtp", [], store_key, track

    def _heuristic_call(self, key: _FlowKey) -> tuple[str, int]:
        """Which call a flow found by its shape belongs to, and on which track."""
        if self.pair is not None and key[5] in self.pair:
            return f"pair-{address_text(key[2], key[3])}", self.pair.index(key[5])
        reverse = self._flows.get((key[2], key[3], key[0], key[1], key[5], key[4]))
        if reverse is not None and reverse.state == "rtp" and reverse.store in self._stores:
            store = self._stores[reverse.store]
            other = 1 - reverse.track
            if not store.tracks[other] and not (self.pair is not None and store.key.startswith("pair-")):
                return store.key, other
        self._n_heuristic += 1
        return f"rtp-{self._n_heuristic}", 0

    def _rtcp(self, t: Transport) -> None:
        for i in range(len(t)):
            key: _FlowKey = (int(t.src_hi[i]), int(t.src_lo[i]), int(t.dst_hi[i]), int(t.dst_lo[i]),
                             int(t.sport[i]), int(t.dport[i]))
            store = self._rtcp_owner(key, int(t.number[i]))
            if store is None:
                continue
            src = _ep_text((key[0], key[1], key[4]))
            dst = _ep_text((key[2], key[3], key[5]))
            reports = parse_rtcp(t.payload(i), time_ns=int(t.ts_ns[i]), frame=int(t.number[i]), src=src, dst=dst)
            self.counts["rtcp"] += bool(reports)
            for report in reports:
                store.rtcp.append(store.rtt.add(report))
            store.last_ns = max(store.last_ns, int(t.ts_ns[i]))

    def _rtcp_owner(self, key: _FlowKey, frame: int) -> _Store | None:
        frames = np.array([frame], np.int64)
        for ep in ((key[2], key[3], key[5]), (key[0], key[1], key[4])):
            for _mask, call_id, _party in self._bound(ep, frames):
                return self._stores[call_id]
        for cand in (key, (key[0], key[1], key[2], key[3], key[4] - 1, key[5] - 1),
                     (key[2], key[3], key[0], key[1], key[5] - 1, key[4] - 1)):
            flow = self._flows.get(cand)
            if flow is not None and flow.state == "rtp" and flow.store in self._stores:
                return self._stores[flow.store]
        return None

    # -- calls handed out --------------------------------------------------------------
    def _done(self, now: int, *, final: bool = False) -> Iterator[PacketCall]:
        if final:  # flows still being judged when the file ends: judged on what they have
            for fkey, flow in list(self._flows.items()):
                if flow.state == "judging":
                    if len(flow.held) >= heuristic.MIN_PACKETS:
                        self._judge(fkey, flow)
                    else:
                        flow.state, flow.held = "not_rtp", []
                        self.counts["not_rtp_flows"] += 1
        for key in list(self._stores):
            store = self._stores[key]
            d = store.dialog
            if not final:
                if d is not None:
                    if d.ended:
                        if now - max(int(d.ended_ns or 0), store.last_ns, d.last_ns) <= self.grace_ns:
                            continue
                    elif now - max(store.last_ns, d.last_ns) <= 10 * self.idle_ns:
                        continue
                elif now - store.last_ns <= self.idle_ns:
                    continue
            yield self._finish(self._stores.pop(key), now, final)
        if final:
            self._flows.clear()
        else:
            self._forget_flows(now)

    def _finish(self, store: _Store, now: int, final: bool) -> PacketCall:
        warnings: list[str] = []
        d = store.dialog
        if d is not None:
            self._dialogs.release(d.call_id, self._frame + 1)
            warnings.extend(d.sdp_problems)
            for p in d.sdp_problems:
                self.problems.add("SDP problems", detail=p)
            named = {(ep[0], ep[1], ep[2]) for ep in d.bound}
            got = {(k[2], k[3], k[5]) for k in store.flows}  # endpoints that received RTP
            quiet = sorted(_ep_text(ep) for ep in named - got if not _is_rtcp_port(ep, d))
            if quiet and d.final_status is not None and d.final_status < 300:
                warnings.append(f"the SDP named {', '.join(quiet)} but no RTP came there")
                self.problems.add("an SDP named ports that never carried RTP", n=len(quiet), detail=quiet[0])
            if not d.ended and final:
                warnings.append("the capture ends before the call does (no BYE or CANCEL seen)")
            elif not d.ended:
                warnings.append("no SIP or RTP for a long time: the call is taken as over")
        elif self._sip_seen:
            warnings.append("RTP on ports no SDP named: read as a call of its own")
            self.problems.add("RTP on ports no SDP named: read as calls of their own", detail=store.key)
        for fkey in store.flows:
            flow = self._flows.get(fkey)
            if flow is not None and flow.store == store.key:
                del self._flows[fkey]
        self.counts["calls"] += 1
        return store.finish(warnings)

    def _forget_flows(self, now: int) -> None:
        """Flows idle for ``idle_s`` (not RTP, or judged and done) are forgotten: memory stays
        bounded by the flows in progress."""
        if len(self._flows) < 256:
            return
        for fkey in [k for k, f in self._flows.items()
                     if now - f.last_ns > self.idle_ns and f.state in ("not_rtp", "sip", "judging")]:
            del self._flows[fkey]


def _is_rtcp_port(ep: Endpoint, d: Dialog) -> bool:
    """Whether ``ep`` was bound as an RTCP port (port + 1 or a=rtcp), not RTP."""
    for o in d.offers:
        a = o.audio
        if a is not None and a.port and ep[2] != a.port and ep[2] in (a.port + 1, a.rtcp_port):
            return True
    return False


def _ep_text(ep: Endpoint) -> str:
    host = address_text(ep[0], ep[1])
    return f"[{host}]:{ep[2]}" if ":" in host else f"{host}:{ep[2]}"


def read_calls(path: str | os.PathLike[str], **kwargs: Any) -> Iterator[PacketCall]:
    """The calls of a packet capture, one at a time; see :class:`CallReader` for the options.

    A generator: calls are handed out as they end, so memory holds the calls in progress.
    The file's problems are on the :class:`CallReader`; use it directly to read them.
    """
    return iter(CallReader(path, **kwargs))
