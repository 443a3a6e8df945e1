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
from telnyx_audio.packets.pcapfile import LINKTYPE_NAMES, SLACK, Frames

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
    hold the sequence number and flag bits. ``lead`` holds the payload's first four bytes as
    a big-endian number (-1 when shorter): what tells SIP, RTP and RTCP apart.
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
    lead: np.ndarray | None = None
    seq: np.ndarray | None = None
    flags: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.start.size)

    def take(self, rows: np.ndarray) -> "Transport":
        """The rows ``rows`` (an index or mask), over the same buffer."""
        pick = {k: (getattr(self, k)[rows] if getattr(self, k) is not None else None)
                for k in ("number", "ts_ns", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport",
                          "start", "length", "truncated", "lead", "seq", "flags")}
        return Transport(self.buf, **pick)  # type: ignore[arg-type]

    def payload(self, i: int) -> bytes:
        """Row ``i``'s payload as bytes."""
        s = int(self.start[i])
        return self.buf[s : s + int(self.length[i])].tobytes()


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


def _win(buf: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """``width`` bytes at each offset, one row each (offsets leave ``width`` bytes in ``buf``:
    chunks end with :data:`~telnyx_audio.packets.pcapfile.SLACK` zero bytes)."""
    return np.lib.stride_tricks.sliding_window_view(buf, width)[at]


def _be16(w: np.ndarray, col: int) -> np.ndarray:
    return (w[:, col].astype(np.int64) << 8) | w[:, col + 1]


def _be32(w: np.ndarray, col: int) -> np.ndarray:
    return np.ascontiguousarray(w[:, col : col + 4]).view(">u4").reshape(-1).astype(np.int64)


def _be64(w: np.ndarray, col: int) -> np.ndarray:
    return np.ascontiguousarray(w[:, col : col + 8]).view(">u8").reshape(-1).astype(np.uint64)


def _link(fr: Frames, problems: Problems) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: where its IP header starts and its IP version (0: not IP, or not read)."""
    buf = fr.buf
    m = len(fr)
    off = fr.offset
    end = off + fr.caplen
    l3 = np.full(m, -1, np.int64)
    ver = np.zeros(m, np.int64)
    codes = fr.linktype[:1] if m and (fr.linktype == fr.linktype[0]).all() else np.unique(fr.linktype)
    for code in codes.tolist():
        sel = np.flatnonzero(fr.linktype == code) if codes.size > 1 else np.arange(m)
        o, e = off[sel], end[sel]
        if code not in LINKTYPE_NAMES:
            problems.add("frames of a link type this reader does not know: skipped", n=sel.size,
                         frame=int(fr.number[sel[0]]), detail=f"link type {code}")
            continue
        if code == 1:
            lh = _win(buf, o, 22)
            et = _be16(lh, 12)
            at = o + 14
            tagged = (et == 0x8100) | (et == 0x88A8) | (et == 0x9100)
            if tagged.any():
                et = np.where(tagged, _be16(lh, 16), et)
                again = tagged & ((et == 0x8100) | (et == 0x88A8) | (et == 0x9100))
                et = np.where(again, _be16(lh, 20), et)
                at = at + 4 * tagged + 4 * again
            v = np.where(et == 0x0800, 4, np.where(et == 0x86DD, 6, 0))
        elif code in (113, 276):
            lh = _win(buf, o, 20)
            et = _be16(lh, 14 if code == 113 else 0)
            at = o + (16 if code == 113 else 20)
            v = np.where(et == 0x0800, 4, np.where(et == 0x86DD, 6, 0))
        elif code in (0, 108):
            lh = _win(buf, o, 4)
            le = np.ascontiguousarray(lh).view("<u4").reshape(-1).astype(np.int64)
            be = np.ascontiguousarray(lh).view(">u4").reshape(-1).astype(np.int64)
            af = be if code == 108 else np.where(le > 0xFFFF, be, le)
            at = o + 4
            v = np.where(af == 2, 4, np.where(np.isin(af, (10, 23, 24, 26, 28, 30)), 6, 0))
        else:  # raw IP
            at = o
            v = buf[o].astype(np.int64) >> 4
            v = np.where((v == 4) | (v == 6), v, 0)
        v = np.where(at < e, v, 0)
        l3[sel] = at
        ver[sel] = v
    not_ip = (ver == 0) & (l3 >= 0)
    if not_ip.any():
        problems.add("frames that are not IP (ARP, LLDP, ...): skipped", n=int(not_ip.sum()),
                     frame=int(fr.number[np.argmax(not_ip)]))
    return l3, ver


def split_frames(fr: Frames, problems: Problems, reassembler: Reassembler) -> tuple[Transport, Transport]:
    """The UDP datagrams and TCP segments of a batch of frames (in frame order each).

    Each frame's link header, then its IP header (64 bytes at once: IPv4 or IPv6 and the
    start of what follows), then its transport header are read as fixed-size windows, one
    gather per batch, and every field is a column of those windows.

    Examples
    --------
    >>> import numpy as np
    >>> from telnyx_audio.packets.pcapfile import Frames, SLACK
    >>> ip = bytes.fromhex("45000020 00000000 4011 0000 7f000001 7f000002")
    >>> udp = bytes.fromhex("1388 1770 000c 0000") + b"abcd"
    >>> raw = np.frombuffer(ip + udp + bytes(SLACK), np.uint8)
    >>> one = np.zeros(1, np.int64)
    >>> n = np.array([len(ip + udp)])
    >>> fr = Frames(raw, one, n, n, one, np.array([101], np.int32), one + 1)
    >>> udp_rows, tcp_rows = split_frames(fr, Problems(), Reassembler(Problems()))
    >>> udp_rows.sport.tolist(), udp_rows.dport.tolist(), udp_rows.payload(0), len(tcp_rows)
    ([5000], [6000], b'abcd', 0)
    """
    buf = fr.buf
    m = len(fr)
    end = fr.offset + fr.caplen
    snapped = fr.caplen < fr.origlen
    l3, ver = _link(fr, problems)
    rows: list[dict[str, np.ndarray]] = []  # pieces of transport rows
    extra: list[bytes] = []  # reassembled payloads, placed after buf
    extra_at = [buf.size]
    ip_rows = np.flatnonzero(ver > 0)
    w_all = _win(buf, l3[ip_rows], 64) if ip_rows.size else np.zeros((0, 64), np.uint8)
    # The version nibble must agree with what the link layer said.
    agree = (w_all[:, 0] >> 4) == ver[ip_rows]
    if not agree.all():
        problems.add("frames that are not IP (ARP, LLDP, ...): skipped", n=int((~agree).sum()),
                     frame=int(fr.number[ip_rows[np.argmin(agree)]]), detail="IP version disagrees with the link layer")
        ip_rows, w_all = ip_rows[agree], w_all[agree]
    is4 = ver[ip_rows] == 4

    # -- IPv4 --------------------------------------------------------------------------
    if is4.any():
        s4 = ip_rows[is4] if not is4.all() else ip_rows
        w = w_all[is4] if not is4.all() else w_all
        a, e = l3[s4], end[s4]
        short = a + 20 > e
        if short.any():
            _snap_or_lie(problems, snapped[s4][short], fr.number[s4][short], "IPv4 header")
        ihl = (w[:, 0] & 0x0F).astype(np.int64) * 4
        tot = _be16(w, 2)
        lies = ~short & ((ihl < 20) | (tot < ihl))
        over = ~short & ~lies & (a + tot > e)
        snap = over & snapped[s4]
        lies |= over & ~snap
        if lies.any():
            problems.add("IP header lies about its length: skipped", n=int(lies.sum()),
                         frame=int(fr.number[s4][np.argmax(lies)]))
        ip_end = np.where(snap, e, a + tot)
        ff = _be16(w, 6)
        proto = w[:, 9].astype(np.int64)
        src = _be32(w, 12).astype(np.uint64) | _V4_MAPPED
        dst = _be32(w, 16).astype(np.uint64) | _V4_MAPPED
        frag = (ff & 0x3FFF) != 0
        plain = ~short & ~lies & ~frag
        zero = np.zeros(int(plain.sum()), np.uint64)
        rows.append(dict(idx=s4[plain], proto=proto[plain], src_hi=zero, src_lo=src[plain], dst_hi=zero,
                         dst_lo=dst[plain], l4=(a + ihl)[plain], ip_end=ip_end[plain], snap=snap[plain]))
        for i in np.flatnonzero(~short & ~lies & frag).tolist():
            k = int(s4[i])
            if snap[i]:
                problems.add("IP fragments cut short by the snap length: dropped", frame=int(fr.number[k]))
                continue
            data = buf[int(a[i] + ihl[i]) : int(ip_end[i])].tobytes()
            key = (4, int(src[i]), int(dst[i]), int(_be16(w[i : i + 1], 4)[0]), int(proto[i]))
            whole = reassembler.add(key, int(ff[i] & 0x1FFF) * 8, bool(ff[i] & 0x2000), data, int(proto[i]),
                                    int(fr.ts_ns[k]), int(fr.number[k]))
            if whole is not None:
                rows.append(_one(k, int(proto[i]), 0, int(src[i]), 0, int(dst[i]), extra_at[-1], len(whole)))
                extra.append(whole)
                extra_at.append(extra_at[-1] + len(whole))

    # -- IPv6 --------------------------------------------------------------------------
    if (~is4).any():
        s6 = ip_rows[~is4]
        w = w_all[~is4]
        a, e = l3[s6], end[s6]
        short = a + 40 > e
        if short.any():
            _snap_or_lie(problems, snapped[s6][short], fr.number[s6][short], "IPv6 header")
        plen = _be16(w, 4)
        nh = w[:, 6].astype(np.int64)
        over = ~short & (a + 40 + plen > e)
        snap = over & snapped[s6]
        lies = ~short & ((over & ~snap) | (plen == 0))
        if lies.any():
            problems.add("IP header lies about its length: skipped", n=int(lies.sum()),
                         frame=int(fr.number[s6][np.argmax(lies)]))
        ip_end = np.where(snap, e, a + 40 + plen)
        shi, slo, dhi, dlo = _be64(w, 8), _be64(w, 16), _be64(w, 24), _be64(w, 32)
        ok = ~short & ~lies
        direct = ok & ((nh == _UDP) | (nh == _TCP))
        rows.append(dict(idx=s6[direct], proto=nh[direct], src_hi=shi[direct], src_lo=slo[direct], dst_hi=dhi[direct],
                         dst_lo=dlo[direct], l4=(a + 40)[direct], ip_end=ip_end[direct], snap=snap[direct]))
        for i in np.flatnonzero(ok & ~direct & np.isin(nh, list(_V6_EXT))).tolist():
            k = int(s6[i])
            got = _v6_extensions(buf, int(a[i]), int(nh[i]), int(ip_end[i]))
            if got is None:
                problems.add("IPv6 extension headers run past the packet: skipped", frame=int(fr.number[k]))
                continue
            proto6, l4, fragment = got
            if fragment is None:
                if proto6 in (_UDP, _TCP):
                    rows.append(dict(idx=np.array([k]), proto=np.array([proto6]), src_hi=shi[i : i + 1],
                                     src_lo=slo[i : i + 1], dst_hi=dhi[i : i + 1], dst_lo=dlo[i : i + 1],
                                     l4=np.array([l4]), ip_end=ip_end[i : i + 1], snap=snap[i : i + 1]))
                continue
            if snap[i]:
                problems.add("IP fragments cut short by the snap length: dropped", frame=int(fr.number[k]))
                continue
            f_off, more, ident = fragment
            key = (6, int(shi[i]), int(slo[i]), int(dhi[i]), int(dlo[i]), ident)
            whole = reassembler.add(key, f_off, more, buf[l4 : int(ip_end[i])].tobytes(), proto6,
                                    int(fr.ts_ns[k]), int(fr.number[k]))
            if whole is not None:
                rows.append(_one(k, proto6, int(shi[i]), int(slo[i]), int(dhi[i]), int(dlo[i]), extra_at[-1],
                                 len(whole)))
                extra.append(whole)
                extra_at.append(extra_at[-1] + len(whole))

    if extra:
        buf = np.concatenate((buf, np.frombuffer(b"".join(extra), np.uint8), np.zeros(SLACK, np.uint8)))
    if len(rows) == 1:
        cols = rows[0]
    elif rows:
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
    sel = np.flatnonzero(c["proto"] == _UDP) if (c["proto"] != _UDP).any() else slice(None)
    l4, ip_end, snap = c["l4"][sel], c["ip_end"][sel], c["snap"][sel].astype(bool)
    idx = c["idx"][sel]
    tw = _win(buf, l4, 12)
    ulen = _be16(tw, 4)
    short = l4 + 8 > ip_end
    over = ~short & (l4 + ulen > ip_end)
    lies = ~short & ((ulen < 8) | (over & ~snap))
    if short.any():
        problems.add("UDP datagrams shorter than their header: skipped", n=int(short.sum()),
                     frame=int(fr.number[idx[np.argmax(short)]]))
    if lies.any():
        problems.add("UDP length field lies about the datagram: skipped", n=int(lies.sum()),
                     frame=int(fr.number[idx[np.argmax(lies)]]))
    cut = over & snap
    if cut.any():
        problems.add("packets cut short by the snap length: header kept, payload incomplete", n=int(cut.sum()),
                     frame=int(fr.number[idx[np.argmax(cut)]]))
    bad = short | lies
    if bad.any():
        ok = ~bad
        tw, l4, ip_end, ulen, cut, idx = tw[ok], l4[ok], ip_end[ok], ulen[ok], cut[ok], idx[ok]
        sel = np.flatnonzero(c["proto"] == _UDP)[ok]
    length = np.where(cut, ip_end - l4 - 8, ulen - 8)
    lead = np.where(length >= 4, _be32(tw, 8), -1)
    return Transport(
        buf=buf, number=fr.number[idx], ts_ns=fr.ts_ns[idx],
        src_hi=c["src_hi"][sel].astype(np.uint64), src_lo=c["src_lo"][sel].astype(np.uint64),
        dst_hi=c["dst_hi"][sel].astype(np.uint64), dst_lo=c["dst_lo"][sel].astype(np.uint64),
        sport=_be16(tw, 0), dport=_be16(tw, 2), start=l4 + 8, length=length, truncated=cut, lead=lead,
    )


def _tcp(buf: np.ndarray, fr: Frames, c: dict[str, np.ndarray], problems: Problems) -> Transport:
    sel = np.flatnonzero(c["proto"] == _TCP)
    l4, ip_end, snap = c["l4"][sel], c["ip_end"][sel], c["snap"][sel].astype(bool)
    tw = _win(buf, l4, 20)
    doff = (tw[:, 12].astype(np.int64) >> 4) * 4
    bad = (l4 + 20 > ip_end) | (doff < 20) | (l4 + doff > ip_end)
    if bad.any():
        problems.add("TCP segments shorter than their header: skipped", n=int(bad.sum()),
                     frame=int(fr.number[c["idx"][sel][np.argmax(bad)]]))
    ok = ~bad
    sel, l4, ip_end, doff, snap, tw = sel[ok], l4[ok], ip_end[ok], doff[ok], snap[ok], tw[ok]
    idx = c["idx"][sel]
    length = ip_end - l4 - doff
    lead = np.where(length >= 4, _be32(_win(buf, l4 + doff, 4), 0), -1) if sel.size else np.empty(0, np.int64)
    return Transport(
        buf=buf, number=fr.number[idx], ts_ns=fr.ts_ns[idx],
        src_hi=c["src_hi"][sel].astype(np.uint64), src_lo=c["src_lo"][sel].astype(np.uint64),
        dst_hi=c["dst_hi"][sel].astype(np.uint64), dst_lo=c["dst_lo"][sel].astype(np.uint64),
        sport=_be16(tw, 0), dport=_be16(tw, 2), start=l4 + doff, length=length, truncated=snap,
        lead=lead, seq=_be32(tw, 4), flags=tw[:, 13].astype(np.int64),
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
    if len(t) == 0:
        return np.zeros((0, 5), np.uint64), np.empty(0, np.int64), np.zeros(1, np.int64)
    cols = (t.src_hi, t.src_lo, t.dst_hi, t.dst_lo, ports)
    # One 64-bit hash per row (multiply-xor mixing), grouped with a sort of plain integers;
    # a collision (two flows, one hash) is checked for and falls back to exact grouping.
    h = np.zeros(len(t), np.uint64)
    with np.errstate(over="ignore"):
        for c in cols:
            h = (h ^ c.astype(np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(29)
    # One stable sort: each group's rows stay in arrival order, its first row first.
    order = np.argsort(h, kind="stable")
    hs = h[order]
    starts = np.flatnonzero(np.concatenate(([True], hs[1:] != hs[:-1])))
    first = order[starts]
    bounds = np.concatenate((starts, [len(t)]))
    if all((c.astype(np.uint64)[order] == np.repeat(c.astype(np.uint64)[first], np.diff(bounds))).all()
           for c in cols):
        keys = np.stack([c.astype(np.uint64)[first] for c in cols], axis=1)
        return keys, order, bounds
    keys = np.ascontiguousarray(np.stack(cols, axis=1).astype(np.uint64))
    void = keys.view(np.dtype((np.void, 40))).reshape(-1)
    _, first, inverse, counts = np.unique(void, return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(inverse.reshape(-1), kind="stable")
    bounds = np.concatenate(([0], np.cumsum(counts)))
    return keys[first], order, bounds
