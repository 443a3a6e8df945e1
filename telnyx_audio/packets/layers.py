"""From frames to UDP datagrams and TCP segments: link layers, IPv4/IPv6, fragments, UDP, TCP.

:func:`split_frames` takes a batch of :class:`~telnyx_audio.packets.pcapfile.Frames` and
returns its UDP datagrams and TCP segments as numpy columns (:class:`Transport`), working
on whole columns per link type and IP version; only the odd packets go through Python one
by one: IPv4 fragments (reassembled by :class:`Reassembler`, which holds them across
batches) and IPv6 packets with extension headers.

Link types: Ethernet (with 802.1Q / 802.1ad / QinQ tags), Linux cooked capture v1 and v2,
raw IP (101, 12, 14, 228, 229), BSD loopback (0, either byte order) and OpenBSD loopback
(108). A frame that is not IP, an IP header that lies about its length, a packet cut short
by the snap length: each is counted in the :class:`~telnyx_audio.packets._problems.Problems`
given, never an exception.

Addresses are two unsigned 64-bit columns (``hi``, ``lo``) holding the 16 bytes of an IPv6
address; an IPv4 address is stored IPv4-mapped (``::ffff:a.b.c.d``), so one key serves both.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

import numpy as np

from telnyx_audio.packets._problems import Problems
from telnyx_audio.packets.pcapfile import LINKTYPE_NAMES, Frames

__all__ = ["Transport", "Reassembler", "split_frames", "address_text", "address_key"]

_V4_MAPPED = np.uint64(0xFFFF00000000)
_VLAN = (0x8100, 0x88A8, 0x9100)
_UDP, _TCP = 17, 6
_V6_EXT = {0, 43, 60, 51, 44}
_FRAG_TIMEOUT_NS = 30 * 1_000_000_000
_FRAG_MAX_PENDING = 4096


def address_text(hi: int, lo: int) -> str:
    """The text of an address held as (hi, lo).

    Examples
    --------
    >>> address_text(0, 0xFFFF_7F000001)
    '127.0.0.1'
    >>> address_text(0x20010DB8 << 32, 1)
    '2001:db8::1'
    """
    hi, lo = int(hi), int(lo)
    if hi == 0 and lo >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(hi << 64 | lo))


def address_key(text: str) -> tuple[int, int]:
    """(hi, lo) of an address's text (IPv4 or IPv6); ValueError if it is neither.

    Examples
    --------
    >>> address_key("127.0.0.1") == (0, 0xFFFF_7F000001)
    True
    """
    ip = ipaddress.ip_address(text.strip().strip("[]").split("%", 1)[0])
    if ip.version == 4:
        return 0, 0xFFFF00000000 | int(ip)
    v = int(ip)
    if ip.ipv4_mapped is not None:
        return 0, v & 0xFFFFFFFFFFFF
    return v >> 64, v & 0xFFFFFFFFFFFFFFFF


@dataclass
class Transport:
    """UDP datagrams or TCP segments of a batch, as columns over one buffer.

    ``start``/``length`` locate each payload in ``buf`` (the UDP payload, or the TCP
    segment's data); ``truncated`` marks payloads cut short by the snap length (the bytes
    present are kept: RTP statistics need only the header). For TCP, ``seq`` and ``flags``
    hold the sequence number and flag bits.
    """

    buf: np.ndarray
    number: np.ndarray
    ts_ns: np.ndarray
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    start: np.ndarray
    length: np.ndarray
    truncated: np.ndarray
    seq: np.ndarray | None = None
    flags: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.start.size)

    def take(self, rows: np.ndarray) -> "Transport":
        """The rows ``rows`` (an index or mask), over the same buffer."""
        pick = {k: (getattr(self, k)[rows] if getattr(self, k) is not None else None)
                for k in ("number", "ts_ns", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport",
                          "start", "length", "truncated", "seq", "flags")}
        return Transport(self.buf, **pick)  # type: ignore[arg-type]

    def payload(self, i: int) -> bytes:
        """Row ``i``'s payload as bytes."""
        s = int(self.start[i])
        return self.buf[s : s + int(self.length[i])].tobytes()


def _gather(buf: np.ndarray, at: np.ndarray, n: int, dt: str) -> np.ndarray:
    """Big-endian ``n``-byte unsigned integers at each offset (clamped in range), as int64 or uint64."""
    if buf.size < n:
        return np.zeros(at.size, np.int64)
    at = np.clip(at, 0, buf.size - n)
    out = np.lib.stride_tricks.sliding_window_view(buf, n)[at].view(dt).reshape(-1)
    return out if n == 8 else out.astype(np.int64)


def _b(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    return buf[np.clip(at, 0, max(buf.size - 1, 0))].astype(np.int64)


@dataclass
class _Pending:
    first_ns: int
    last_ns: int
    proto: int = -1
    parts: dict[int, bytes] = field(default_factory=dict)  # offset -> data
    total: int = -1  # known once the last fragment came
    bad: bool = False


class Reassembler:
    """IP fragments held across batches until their datagram is whole (RFC 791, RFC 8200 4.5).

    A fragment overlapping another of its datagram spoils the datagram (RFC 5722: dropped
    and counted); fragments that never complete a datagram within 30 s of capture time are
    dropped and counted.
    """

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.pending: dict[tuple, _Pending] = {}

    def add(self, key: tuple, offset: int, more: bool, data: bytes, proto: int, ts_ns: int,
            number: int) -> bytes | None:
        """Add one fragment; the datagram's transport bytes once it is whole, else None."""
        p = self.pending.get(key)
        if p is None:
            if len(self.pending) >= _FRAG_MAX_PENDING:
                self.expire(ts_ns, force=True)
            p = self.pending[key] = _Pending(ts_ns, ts_ns)
        p.last_ns = ts_ns
        if offset == 0 and proto >= 0:
            p.proto = proto
        if p.bad:
            return None
        end = offset + len(data)
        for o, d in p.parts.items():
            if offset < o + len(d) and o < end and not (o == offset and d == data):
                p.bad = True
                p.parts.clear()
                self.problems.add("overlapping IP fragments: the datagram is dropped", frame=number)
                return None
        p.parts[offset] = data
        if not more:
            p.total = end
        if p.total < 0:
            return None
        got = sorted(p.parts.items())
        at = 0
        for o, d in got:
            if o != at:
                return None
            at += len(d)
        if at != p.total:
            return None
        del self.pending[key]
        return b"".join(d for _, d in got)

    def expire(self, now_ns: int, *, force: bool = False) -> None:
        """Drop datagrams whose fragments stopped coming 30 s before ``now_ns`` (all with ``force``)."""
        old = [k for k, p in self.pending.items() if force or now_ns - p.last_ns > _FRAG_TIMEOUT_NS]
        for k in old:
            p = self.pending.pop(k)
            if not p.bad:
                self.problems.add("IP fragments that never made a whole datagram: dropped")


def split_frames(fr: Frames, problems: Problems, reassembler: Reassembler) -> tuple[Transport, Transport]:
    """The UDP datagrams and TCP segments of a batch of frames (in frame order each).

    Examples
    --------
    >>> import numpy as np
    >>> from telnyx_audio.packets.pcapfile import Frames
    >>> ip = bytes.fromhex("45000020 00000000 4011 0000 7f000001 7f000002")
    >>> udp = bytes.fromhex("1388 1770 000c 0000") + b"abcd"
    >>> raw = np.frombuffer(ip + udp, np.uint8)
    >>> one = np.zeros(1, np.int64)
    >>> fr = Frames(raw, one, one + raw.size, one + raw.size, one, np.array([101], np.int32), one + 1)
    >>> udp_rows, tcp_rows = split_frames(fr, Problems(), Reassembler(Problems()))
    >>> udp_rows.sport.tolist(), udp_rows.dport.tolist(), udp_rows.payload(0), len(tcp_rows)
    ([5000], [6000], b'abcd', 0)
    """
    buf = fr.buf
    m = len(fr)
    off = fr.offset
    end = off + fr.caplen
    snapped = fr.caplen < fr.origlen
    l3 = np.full(m, -1, np.int64)
    lt = fr.linktype
    ver = np.zeros(m, np.int64)  # 4, 6 or 0 (not IP)
    for code in np.unique(lt).tolist():
        sel = np.flatnonzero(lt == code)
        o = off[sel]
        e = end[sel]
        if code == 1:
            et = _gather(buf, o + 12, 2, ">u2")
            at = o + 14
            for _ in range(3):
                tagged = np.isin(et, _VLAN) & (at + 4 <= e)
                if not tagged.any():
                    break
                et = np.where(tagged, _gather(buf, at + 2, 2, ">u2"), et)
                at = np.where(tagged, at + 4, at)
            v = np.where(et == 0x0800, 4, np.where(et == 0x86DD, 6, 0))
            v[o + 14 > e] = 0
        elif code in (113, 276):
            hl = 16 if code == 113 else 20
            et = _gather(buf, o + (14 if code == 113 else 0), 2, ">u2")
            at = o + hl
            v = np.where(et == 0x0800, 4, np.where(et == 0x86DD, 6, 0))
            v[o + hl > e] = 0
        elif code in (101, 12, 14, 228, 229):
            at = o
            v = _b(buf, o) >> 4
        elif code in (0, 108):
            le = _gather(buf, o, 4, "<u4")
            be = _gather(buf, o, 4, ">u4")
            af = be if code == 108 else np.where(le > 0xFFFF, be, le)
            at = o + 4
            v = np.where(af == 2, 4, np.where(np.isin(af, (10, 23, 24, 26, 28, 30)), 6, 0))
            v[o + 4 > e] = 0
        else:
            problems.add("frames of a link type this reader does not know: skipped", n=sel.size,
                         frame=int(fr.number[sel[0]]), detail=f"link type {code}")
            continue
        # The version nibble must agree with what the link layer said.
        nib = _b(buf, at) >> 4
        v = np.where((nib == v) & (at < e), v, 0)
        if code not in LINKTYPE_NAMES:  # pragma: no cover - every branch above is named
            continue
        l3[sel] = at
        ver[sel] = v
    not_ip = (ver == 0) & (l3 >= 0)
    if not_ip.any():
        problems.add("frames that are not IP (ARP, LLDP, ...): skipped", n=int(not_ip.sum()),
                     frame=int(fr.number[np.argmax(not_ip)]))

    rows: list[dict[str, np.ndarray]] = []  # pieces of transport rows (each with "proto")
    extra: list[bytes] = []  # reassembled payloads, placed after buf
    extra_at = [buf.size]

    # -- IPv4 --------------------------------------------------------------------------
    s4 = np.flatnonzero(ver == 4)
    if s4.size:
        a = l3[s4]
        e = end[s4]
        short = a + 20 > e
        if short.any():
            _snap_or_lie(problems, snapped[s4][short], fr.number[s4][short], "IPv4 header")
        s4, a, e = s4[~short], a[~short], e[~short]
        ihl = (_b(buf, a) & 0x0F) * 4
        tot = _gather(buf, a + 2, 2, ">u2")
        lies = (ihl < 20) | (tot < ihl)
        over = ~lies & (a + tot > e)
        snap = over & snapped[s4]
        lies |= over & ~snap
        if lies.any():
            problems.add("IP header lies about its length: skipped", n=int(lies.sum()),
                         frame=int(fr.number[s4][np.argmax(lies)]))
        ip_end = np.where(snap, e, a + tot)
        ff = _gather(buf, a + 6, 2, ">u2")
        proto = _b(buf, a + 9)
        src = _gather(buf, a + 12, 4, ">u4").astype(np.uint64) | _V4_MAPPED
        dst = _gather(buf, a + 16, 4, ">u4").astype(np.uint64) | _V4_MAPPED
        frag = ((ff & 0x2000) != 0) | ((ff & 0x1FFF) != 0)
        plain = ~lies & ~frag
        zero = np.zeros(s4.size, np.uint64)
        rows.append(dict(idx=s4[plain], proto=proto[plain], src_hi=zero[plain], src_lo=src[plain], dst_hi=zero[plain],
                         dst_lo=dst[plain], l4=(a + ihl)[plain], ip_end=ip_end[plain], snap=snap[plain]))
        for i in np.flatnonzero(~lies & frag).tolist():
            k = int(s4[i])
            if snap[i]:
                problems.add("IP fragments cut short by the snap length: dropped", frame=int(fr.number[k]))
                continue
            data = buf[int(a[i] + ihl[i]) : int(ip_end[i])].tobytes()
            key = (4, int(src[i]), int(dst[i]), int(_gather(buf, a[i : i + 1] + 4, 2, ">u2")[0]), int(proto[i]))
            whole = reassembler.add(key, int(ff[i] & 0x1FFF) * 8, bool(ff[i] & 0x2000), data, int(proto[i]),
                                    int(fr.ts_ns[k]), int(fr.number[k]))
            if whole is not None:
                rows.append(_one(k, int(proto[i]), 0, int(src[i]), 0, int(dst[i]), extra_at[-1], len(whole)))
                extra.append(whole)
                extra_at.append(extra_at[-1] + len(whole))

    # -- IPv6 --------------------------------------------------------------------------
    s6 = np.flatnonzero(ver == 6)
    if s6.size:
        a = l3[s6]
        e = end[s6]
        short = a + 40 > e
        if short.any():
            _snap_or_lie(problems, snapped[s6][short], fr.number[s6][short], "IPv6 header")
        s6, a, e = s6[~short], a[~short], e[~short]
        plen = _gather(buf, a + 4, 2, ">u2")
        nh = _b(buf, a + 6)
        over = a + 40 + plen > e
        snap = over & snapped[s6]
        lies = (over & ~snap) | (plen == 0)
        if lies.any():
            problems.add("IP header lies about its length: skipped", n=int(lies.sum()),
                         frame=int(fr.number[s6][np.argmax(lies)]))
        ip_end = np.where(snap, e, a + 40 + plen)
        shi = _gather(buf, a + 8, 8, ">u8")
        slo = _gather(buf, a + 16, 8, ">u8")
        dhi = _gather(buf, a + 24, 8, ">u8")
        dlo = _gather(buf, a + 32, 8, ">u8")
        direct = ~lies & ((nh == _UDP) | (nh == _TCP))
        rows.append(dict(idx=s6[direct], proto=nh[direct], src_hi=shi[direct], src_lo=slo[direct], dst_hi=dhi[direct],
                         dst_lo=dlo[direct], l4=(a + 40)[direct], ip_end=ip_end[direct], snap=snap[direct]))
        for i in np.flatnonzero(~lies & ~direct & np.isin(nh, list(_V6_EXT))).tolist():
            k = int(s6[i])
            got = _v6_extensions(buf, int(a[i]), int(nh[i]), int(ip_end[i]))
            if got is None:
                problems.add("IPv6 extension headers run past the packet: skipped", frame=int(fr.number[k]))
                continue
            proto, l4, fragment = got
            if fragment is None:
                if proto in (_UDP, _TCP):
                    rows.append(dict(idx=np.array([k]), proto=np.array([proto]), src_hi=shi[i : i + 1],
                                     src_lo=slo[i : i + 1], dst_hi=dhi[i : i + 1], dst_lo=dlo[i : i + 1],
                                     l4=np.array([l4]), ip_end=ip_end[i : i + 1], snap=snap[i : i + 1]))
                continue
            if snap[i]:
                problems.add("IP fragments cut short by the snap length: dropped", frame=int(fr.number[k]))
                continue
            f_off, more, ident = fragment
            key = (6, int(shi[i]), int(slo[i]), int(dhi[i]), int(dlo[i]), ident)
            whole = reassembler.add(key, f_off, more, buf[l4 : int(ip_end[i])].tobytes(), proto if f_off == 0 else -1,
                                    int(fr.ts_ns[k]), int(fr.number[k]))
            if whole is not None:
                rows.append(_one(k, proto, int(shi[i]), int(slo[i]), int(dhi[i]), int(dlo[i]), extra_at[-1], len(whole)))
                extra.append(whole)
                extra_at.append(extra_at[-1] + len(whole))

    if extra:
        buf = np.concatenate((buf, np.frombuffer(b"".join(extra), np.uint8)))
    if rows:
        cols = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
        order = np.argsort(cols["idx"], kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
    else:
        cols = {k: np.empty(0, np.int64) for k in ("idx", "proto", "src_hi", "src_lo", "dst_hi", "dst_lo", "l4",
                                                   "ip_end", "snap")}
    reassembler.expire(int(fr.ts_ns[-1]) if m else 0)
    return _udp(buf, fr, cols, problems), _tcp(buf, fr, cols, problems)


def _one(k: int, proto: int, shi: int, slo: int, dhi: int, dlo: int, at: int, n: int) -> dict[str, np.ndarray]:
    """One row for a reassembled datagram lying at ``at`` (after the batch's buffer)."""
    u = np.uint64
    return dict(idx=np.array([k]), proto=np.array([proto]), src_hi=np.array([shi], u), src_lo=np.array([slo], u),
                dst_hi=np.array([dhi], u), dst_lo=np.array([dlo], u), l4=np.array([at]), ip_end=np.array([at + n]),
                snap=np.array([False]))


def _v6_extensions(buf: np.ndarray, a: int, nh: int, end: int) -> tuple[int, int, tuple[int, bool, int] | None] | None:
    """Walk IPv6 extension headers: (final next header, its offset, fragment info or None)."""
    at = a + 40
    fragment = None
    for _ in range(16):
        if nh not in _V6_EXT:
            return nh, at, fragment
        if at + 8 > end:
            return None
        if nh == 44:
            word = int(buf[at + 2]) << 8 | int(buf[at + 3])
            ident = struct.unpack(">I", buf[at + 4 : at + 8].tobytes())[0]
            fragment = ((word >> 3) * 8, bool(word & 1), ident)
            nh, at = int(buf[at]), at + 8
            if fragment[0] != 0:
                return nh, at, fragment  # later fragments carry no further headers
        elif nh == 51:
            nh, at = int(buf[at]), at + (int(buf[at + 1]) + 2) * 4
        else:
            nh, at = int(buf[at]), at + (int(buf[at + 1]) + 1) * 8
    return None


def _snap_or_lie(problems: Problems, snapped: np.ndarray, numbers: np.ndarray, what: str) -> None:
    if snapped.any():
        problems.add("packets cut short by the snap length: skipped", n=int(snapped.sum()),
                     frame=int(numbers[np.argmax(snapped)]), detail=f"no whole {what}")
    if (~snapped).any():
        problems.add("frames too short for their IP header: skipped", n=int((~snapped).sum()),
                     frame=int(numbers[np.argmax(~snapped)]))


def _udp(buf: np.ndarray, fr: Frames, c: dict[str, np.ndarray], problems: Problems) -> Transport:
    sel = np.flatnonzero(c["proto"] == _UDP)
    l4, ip_end, snap = c["l4"][sel], c["ip_end"][sel], c["snap"][sel].astype(bool)
    short = l4 + 8 > ip_end
    if short.any():
        problems.add("UDP datagrams shorter than their header: skipped", n=int(short.sum()),
                     frame=int(fr.number[c["idx"][sel][np.argmax(short)]]))
    sel, l4, ip_end, snap = sel[~short], l4[~short], ip_end[~short], snap[~short]
    ulen = _gather(buf, l4 + 4, 2, ">u2")
    over = l4 + ulen > ip_end
    lies = (ulen < 8) | (over & ~snap)
    if lies.any():
        problems.add("UDP length field lies about the datagram: skipped", n=int(lies.sum()),
                     frame=int(fr.number[c["idx"][sel][np.argmax(lies)]]))
    cut = over & snap
    if cut.any():
        problems.add("packets cut short by the snap length: header kept, payload incomplete", n=int(cut.sum()),
                     frame=int(fr.number[c["idx"][sel][np.argmax(cut)]]))
    ok = ~lies
    sel, l4, ip_end, ulen, cut = sel[ok], l4[ok], ip_end[ok], ulen[ok], cut[ok]
    idx = c["idx"][sel]
    return Transport(
        buf=buf, number=fr.number[idx], ts_ns=fr.ts_ns[idx],
        src_hi=c["src_hi"][sel].astype(np.uint64), src_lo=c["src_lo"][sel].astype(np.uint64),
        dst_hi=c["dst_hi"][sel].astype(np.uint64), dst_lo=c["dst_lo"][sel].astype(np.uint64),
        sport=_gather(buf, l4, 2, ">u2"), dport=_gather(buf, l4 + 2, 2, ">u2"),
        start=l4 + 8, length=np.where(cut, ip_end - l4 - 8, ulen - 8), truncated=cut,
    )


def _tcp(buf: np.ndarray, fr: Frames, c: dict[str, np.ndarray], problems: Problems) -> Transport:
    sel = np.flatnonzero(c["proto"] == _TCP)
    l4, ip_end, snap = c["l4"][sel], c["ip_end"][sel], c["snap"][sel].astype(bool)
    doff = (_b(buf, l4 + 12) >> 4) * 4
    bad = (l4 + 20 > ip_end) | (doff < 20) | (l4 + doff > ip_end)
    if bad.any():
        problems.add("TCP segments shorter than their header: skipped", n=int(bad.sum()),
                     frame=int(fr.number[c["idx"][sel][np.argmax(bad)]]))
    ok = ~bad
    sel, l4, ip_end, doff, snap = sel[ok], l4[ok], ip_end[ok], doff[ok], snap[ok]
    idx = c["idx"][sel]
    return Transport(
        buf=buf, number=fr.number[idx], ts_ns=fr.ts_ns[idx],
        src_hi=c["src_hi"][sel].astype(np.uint64), src_lo=c["src_lo"][sel].astype(np.uint64),
        dst_hi=c["dst_hi"][sel].astype(np.uint64), dst_lo=c["dst_lo"][sel].astype(np.uint64),
        sport=_gather(buf, l4, 2, ">u2"), dport=_gather(buf, l4 + 2, 2, ">u2"),
        start=l4 + doff, length=ip_end - l4 - doff, truncated=snap,
        seq=_gather(buf, l4 + 4, 4, ">u4"), flags=_b(buf, l4 + 13),
    )


def flow_groups(t: Transport) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group rows by flow (source, destination, ports): the flows, and each flow's rows.

    Returns
    -------
    keys : np.ndarray of uint64, shape (f, 5)
        Per flow: ``src_hi, src_lo, dst_hi, dst_lo, sport << 16 | dport``.
    order : np.ndarray of int64
        Row indices grouped by flow, each group in row (arrival) order.
    bounds : np.ndarray of int64, shape (f + 1,)
        Flow ``j``'s rows are ``order[bounds[j]:bounds[j + 1]]``.

    Examples
    --------
    >>> u = np.array([5, 6, 5], np.uint64)
    >>> z = np.zeros(3, np.uint64)
    >>> t = Transport(np.zeros(0, np.uint8), z, z, z, u, z, u, np.array([1, 2, 1]), np.array([9, 9, 9]),
    ...               z, z, np.zeros(3, bool))
    >>> keys, order, bounds = flow_groups(t)
    >>> keys[:, 4].tolist(), order.tolist(), bounds.tolist()
    ([65545, 131081], [0, 2, 1], [0, 2, 3])
    """
    ports = (t.sport.astype(np.uint64) << np.uint64(16)) | t.dport.astype(np.uint64)
    keys = np.ascontiguousarray(np.stack([t.src_hi, t.src_lo, t.dst_hi, t.dst_lo, ports], axis=1).astype(np.uint64))
    if keys.shape[0] == 0:
        return keys.reshape(0, 5), np.empty(0, np.int64), np.zeros(1, np.int64)
    void = keys.view(np.dtype((np.void, 40))).reshape(-1)
    _, first, inverse, counts = np.unique(void, return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(inverse.reshape(-1), kind="stable")
    bounds = np.concatenate(([0], np.cumsum(counts)))
    return keys[first], order, bounds
