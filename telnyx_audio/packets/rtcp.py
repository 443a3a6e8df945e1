"""RTCP sender and receiver reports (RFC 3550 section 6.4): sans-I/O parsing, and round-trip times.

:func:`parse_rtcp` reads a compound RTCP packet into its :class:`RtcpReport` s (SR and RR;
SDES, BYE, APP and feedback packets are skipped); :class:`RoundTrips` matches each report
block's LSR with the sender report it names, seen earlier in the capture, and gives the
round-trip time as the capture point sees it: the RR's arrival minus the SR's arrival minus
the receiver's DLSR (as Wireshark's RTCP analysis computes it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReportBlock", "RtcpReport", "parse_rtcp", "RoundTrips", "looks_like_rtcp"]


@dataclass(frozen=True)
class ReportBlock:
    """One reception report (RFC 3550 section 6.4.1) about source ``ssrc``.

    ``fraction_lost`` is a fraction (0-1) since the previous report; ``cumulative_lost``
    packets since the start (signed: duplicates make it negative); ``jitter`` is in the
    RTP clock's ticks; ``lsr`` the middle 32 bits of the last SR's NTP time and ``dlsr``
    the delay since, in 1/65536 s; ``rtt_ms`` the round trip when an SR matched.
    """

    ssrc: int
    fraction_lost: float
    cumulative_lost: int
    highest_seq: int
    jitter: int
    lsr: int
    dlsr: int
    rtt_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        d["ssrc"] = f"{self.ssrc:08x}"
        return d


@dataclass(frozen=True)
class RtcpReport:
    """A sender (``SR``) or receiver (``RR``) report, with where and when it was captured."""

    kind: str
    ssrc: int
    blocks: tuple[ReportBlock, ...]
    time_ns: int = 0
    frame: int = 0
    src: str = ""
    dst: str = ""
    ntp: int | None = None  # SR: the 64-bit NTP timestamp
    rtp_timestamp: int | None = None
    packet_count: int | None = None
    octet_count: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ssrc": f"{self.ssrc:08x}", "time_ns": self.time_ns, "frame": self.frame,
                "src": self.src, "dst": self.dst, "packet_count": self.packet_count,
                "octet_count": self.octet_count, "blocks": [b.as_dict() for b in self.blocks]}


def looks_like_rtcp(data: bytes) -> bool:
    """Version 2 and a packet type of 200-207 (SR, RR, SDES, BYE, APP, RTPFB, PSFB, XR).

    Examples
    --------
    >>> looks_like_rtcp(bytes.fromhex("81c90007 00000001")), looks_like_rtcp(bytes.fromhex("80000001 00000002"))
    (True, False)
    """
    return len(data) >= 8 and data[0] >> 6 == 2 and 200 <= data[1] <= 207


def _blocks(data: bytes, at: int, count: int, end: int) -> list[ReportBlock]:
    out = []
    for _ in range(count):
        if at + 24 > end:
            break
        ssrc, lost_word, highest, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", data, at)
        cum = lost_word & 0xFFFFFF
        if cum & 0x800000:
            cum -= 1 << 24
        out.append(ReportBlock(ssrc, (lost_word >> 24) / 256.0, cum, highest, jitter, lsr, dlsr))
        at += 24
    return out


def parse_rtcp(data: bytes, *, time_ns: int = 0, frame: int = 0, src: str = "", dst: str = "") -> list[RtcpReport]:
    """The SR and RR reports of a compound RTCP packet (malformed parts are dropped).

    Examples
    --------
    >>> rr = bytes.fromhex("81c90007 00000001 00000002 0a000003 00010005 00000010 00000000 00000000")
    >>> r = parse_rtcp(rr)[0]
    >>> r.kind, r.ssrc, r.blocks[0].ssrc, r.blocks[0].cumulative_lost, r.blocks[0].jitter
    ('RR', 1, 2, 3, 16)
    """
    out: list[RtcpReport] = []
    at = 0
    n = len(data)
    while at + 8 <= n:
        b0, pt, words = struct.unpack_from("!BBH", data, at)
        end = at + 4 * (words + 1)
        if b0 >> 6 != 2 or end > n:
            break
        count = b0 & 0x1F
        if pt == 200 and at + 28 <= end:
            ssrc, ntp_hi, ntp_lo, rtp_ts, pkts, octets = struct.unpack_from("!IIIIII", data, at + 4)
            out.append(RtcpReport("SR", ssrc, tuple(_blocks(data, at + 28, count, end)), time_ns, frame, src, dst,
                                  ntp_hi << 32 | ntp_lo, rtp_ts, pkts, octets))
        elif pt == 201 and at + 8 <= end:
            ssrc = struct.unpack_from("!I", data, at + 4)[0]
            out.append(RtcpReport("RR", ssrc, tuple(_blocks(data, at + 8, count, end)), time_ns, frame, src, dst))
        at = end
    return out


@dataclass
class RoundTrips:
    """Round-trip times from LSR/DLSR (RFC 3550 section 6.4.1), as seen at the capture point.

    Feed the reports in capture order (:meth:`add`); each report block whose LSR names a
    sender report seen before gets ``rtt_ms``.

    Examples
    --------
    >>> rt = RoundTrips()
    >>> sr = RtcpReport("SR", 7, (), time_ns=1_000_000_000, ntp=0x0000_1234_5678_0000)
    >>> rt.add(sr) is sr
    True
    >>> block = ReportBlock(7, 0.0, 0, 0, 0, lsr=0x1234_5678, dlsr=65536 // 10)
    >>> rr = RtcpReport("RR", 9, (block,), time_ns=1_150_000_000)
    >>> round(rt.add(rr).blocks[0].rtt_ms, 1)
    50.0
    """

    sent: dict[int, int] = field(default_factory=dict)  # LSR (middle 32 bits of NTP) -> arrival ns

    def add(self, report: RtcpReport) -> RtcpReport:
        """Remember an SR; give a report's blocks their round trip when their LSR is known."""
        if report.kind == "SR" and report.ntp is not None:
            self.sent[(report.ntp >> 16) & 0xFFFFFFFF] = report.time_ns
            if len(self.sent) > 4096:
                self.sent.pop(next(iter(self.sent)))
        if not any(b.lsr for b in report.blocks):
            return report
        blocks = []
        for b in report.blocks:
            t = self.sent.get(b.lsr) if b.lsr else None
            if t is not None:
                rtt = (report.time_ns - t) / 1e6 - b.dlsr / 65.536
                b = ReportBlock(b.ssrc, b.fraction_lost, b.cumulative_lost, b.highest_seq, b.jitter, b.lsr, b.dlsr,
                                round(rtt, 3))
            blocks.append(b)
        return RtcpReport(report.kind, report.ssrc, tuple(blocks), report.time_ns, report.frame, report.src,
                          report.dst, report.ntp, report.rtp_timestamp, report.packet_count, report.octet_count)
