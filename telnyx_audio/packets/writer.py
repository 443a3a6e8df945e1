"""Writing packet captures: classic pcap files of UDP (and TCP) packets over IPv4 or IPv6.

What ``telnyx-audio export-pcap`` uses to turn a fork capture into a file Wireshark opens,
and what tests and benchmarks use to make captures with known contents. Packets are built
whole (IP header with a correct checksum, UDP with its length; the UDP checksum is left 0,
"not computed", as RFC 768 allows over IPv4), framed for the link type, and written with
their arrival times.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from typing import BinaryIO

__all__ = ["PcapWriter", "ip_packet", "udp_packet", "tcp_packet", "ipv4_fragments", "ethernet", "LINKTYPE_ETHERNET",
           "LINKTYPE_RAW"]

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
_MAC_A = bytes.fromhex("020000000001")
_MAC_B = bytes.fromhex("020000000002")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip_packet(src: str, dst: str, proto: int, payload: bytes, *, ident: int = 0, ttl: int = 64,
              flags_fragment: int = 0) -> bytes:
    """An IPv4 or IPv6 packet (by the addresses' version) carrying ``payload``.

    Examples
    --------
    >>> p = ip_packet("10.0.0.1", "10.0.0.2", 17, b"x" * 8)
    >>> len(p), p[0] >> 4, p[9]
    (28, 4, 17)
    """
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version != b.version:
        raise ValueError(f"source {src!r} and destination {dst!r} must both be IPv4 or both IPv6")
    if a.version == 4:
        head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, flags_fragment, ttl, proto, 0,
                           a.packed, b.packed)
        head = head[:10] + struct.pack("!H", _checksum(head)) + head[12:]
        return head + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), proto, ttl, a.packed, b.packed) + payload


def udp_packet(src: str, sport: int, dst: str, dport: int, payload: bytes, **ip: int) -> bytes:
    """An IP packet holding one UDP datagram.

    Examples
    --------
    >>> udp_packet("::1", 5000, "::1", 6000, b"hi")[40:48].hex()
    '13881770000a0000'
    """
    return ip_packet(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload, **ip)


def tcp_packet(src: str, sport: int, dst: str, dport: int, payload: bytes, *, seq: int, ack: int = 0,
               flags: int = 0x18, **ip: int) -> bytes:
    """An IP packet holding one TCP segment (PSH+ACK by default; no options).

    Examples
    --------
    >>> p = tcp_packet("10.0.0.1", 5060, "10.0.0.2", 5060, b"abc", seq=7)
    >>> len(p), p[20 + 13]
    (43, 24)
    """
    head = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    return ip_packet(src, dst, 6, head + payload, **ip)


def ipv4_fragments(packet: bytes, mtu: int) -> list[bytes]:
    """Split an IPv4 packet into fragments of at most ``mtu`` bytes (RFC 791).

    Examples
    --------
    >>> frags = ipv4_fragments(udp_packet("10.0.0.1", 1, "10.0.0.2", 2, b"z" * 100, ident=9), 60)
    >>> [len(f) for f in frags], [struct.unpack("!H", f[6:8])[0] for f in frags]
    ([60, 60, 48], [8192, 8197, 10])
    """
    ihl = (packet[0] & 0x0F) * 4
    head, body = packet[:ihl], packet[ihl:]
    step = (mtu - ihl) // 8 * 8
    if step <= 0:
        raise ValueError(f"mtu {mtu} leaves no room for data after a {ihl}-byte header")
    out = []
    for at in range(0, len(body), step):
        part = body[at : at + step]
        more = at + step < len(body)
        h = bytearray(head)
        struct.pack_into("!HHH", h, 2, ihl + len(part), struct.unpack_from("!H", head, 4)[0],
                         (0x2000 if more else 0) | at // 8)
        struct.pack_into("!H", h, 10, 0)
        struct.pack_into("!H", h, 10, _checksum(bytes(h)))
        out.append(bytes(h) + part)
    return out


def ethernet(packet: bytes, *, vlans: tuple[int, ...] = ()) -> bytes:
    """An Ethernet II frame around an IP packet, with 802.1Q tags (the first 802.1ad when two).

    Examples
    --------
    >>> ethernet(b"\\x45", vlans=(100,))[12:18].hex()
    '810000640800'
    """
    et = 0x0800 if packet[:1] and packet[0] >> 4 == 4 else 0x86DD
    tags = b""
    for i, v in enumerate(vlans):
        tpid = 0x88A8 if len(vlans) > 1 and i == 0 else 0x8100
        tags += struct.pack("!HH", tpid, v & 0x0FFF)
    return _MAC_B + _MAC_A + tags + struct.pack("!H", et) + packet


class PcapWriter:
    """Write a classic pcap file (RFC-draft ``draft-ietf-opsawg-pcap``), one record per frame.

    Parameters
    ----------
    path : str or PathLike, or a binary file object
    linktype : int
        1 Ethernet (frames built with :func:`ethernet` for IP packets given to :meth:`packet`),
        101 raw IP, or any other (then :meth:`frame` takes the frame bytes as they are).
    nanosecond : bool
        Nanosecond timestamps (magic ``a1b23c4d``) rather than microseconds.
    byteorder : {"<", ">"}
    snaplen : int
        Frames longer than this are cut (their original length kept).

    Examples
    --------
    >>> import io
    >>> out = io.BytesIO()
    >>> with PcapWriter(out, linktype=LINKTYPE_RAW) as w:
    ...     w.packet(1_000_000_000, udp_packet("10.0.0.1", 1, "10.0.0.2", 2, b"x"))
    >>> len(out.getvalue()), out.getvalue()[:4].hex()
    (69, 'd4c3b2a1')
    """

    def __init__(self, path: str | os.PathLike[str] | BinaryIO, *, linktype: int = LINKTYPE_ETHERNET,
                 nanosecond: bool = False, byteorder: str = "<", snaplen: int = 262144) -> None:
        if byteorder not in ("<", ">"):
            raise ValueError(f"byteorder must be '<' or '>', got {byteorder!r}")
        self._own = not hasattr(path, "write")
        self._f: BinaryIO = open(path, "wb") if self._own else path  # type: ignore[assignment,arg-type]
        self.linktype = linktype
        self.nanosecond = nanosecond
        self.snaplen = snaplen
        self._rec = struct.Struct(byteorder + "IIII")
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        self._f.write(struct.pack(byteorder + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self.frames = 0

    def frame(self, ts_ns: int, data: bytes, *, origlen: int | None = None) -> None:
        """Write one frame (bytes of the link type) captured at ``ts_ns``."""
        sec, ns = divmod(int(ts_ns), 1_000_000_000)
        frac = ns if self.nanosecond else ns // 1000
        cap = data[: self.snaplen]
        self._f.write(self._rec.pack(sec, frac, len(cap), origlen if origlen is not None else len(data)) + cap)
        self.frames += 1

    def packet(self, ts_ns: int, ip: bytes, *, vlans: tuple[int, ...] = ()) -> None:
        """Write one IP packet, framed for the file's link type (Ethernet or raw IP)."""
        if self.linktype == LINKTYPE_ETHERNET:
            self.frame(ts_ns, ethernet(ip, vlans=vlans))
        elif self.linktype == LINKTYPE_RAW:
            self.frame(ts_ns, ip)
        else:
            raise ValueError(f"packet() frames IP for link types 1 and 101 only, not {self.linktype}; use frame()")

    def close(self) -> None:
        """Flush and close (the file is closed only if this writer opened it)."""
        if self._own:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self) -> "PcapWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
