"""SIP over TCP: the segments of each direction put back in order, then framed into messages.

Only flows that carry SIP are followed: a flow becomes a SIP flow at its first segment that
starts like a SIP message (the capture may begin in the middle of a connection), and its
byte stream is rebuilt from there by sequence number: retransmitted bytes are dropped,
segments that arrive early wait for the gap to fill, and a gap the capture never fills
(a segment the capture missed) is counted and skipped once 256 KiB wait behind it, the
framer resynchronising on the next SIP start line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from telnyx_audio.packets._problems import Problems
from telnyx_audio.packets.layers import Transport, flow_groups
from telnyx_audio.packets.sip import SIP_PREFIXES, BadSip, SipMessage, SipStream

__all__ = ["TcpSip", "prefix_codes", "SIP_PREFIX_CODES"]

_MAX_WAITING = 256 * 1024
_IDLE_NS = 300 * 1_000_000_000
_FIN, _SYN, _RST = 0x01, 0x02, 0x04

#: The first four bytes of a SIP message as big-endian 32-bit codes.
SIP_PREFIX_CODES = np.array(sorted(int.from_bytes(p, "big") for p in SIP_PREFIXES), np.int64)


def prefix_codes(t: Transport) -> np.ndarray:
    """The first four payload bytes of each row as a big-endian code (-1 when shorter)."""
    if t.lead is not None:
        return t.lead
    if len(t) == 0 or t.buf.size < 4:
        return np.full(len(t), -1, np.int64)
    at = np.clip(t.start, 0, t.buf.size - 4)
    codes = np.lib.stride_tricks.sliding_window_view(t.buf, 4)[at].view(">u4").reshape(-1).astype(np.int64)
    return np.where(t.length >= 4, codes, -1)


@dataclass
class _Direction:
    next_seq: int
    framer: SipStream = field(default_factory=SipStream)
    waiting: dict[int, bytes] = field(default_factory=dict)
    last_ns: int = 0

    def waiting_bytes(self) -> int:
        return sum(len(v) for v in self.waiting.values())


def _ahead(a: int, b: int) -> int:
    """``a - b`` in 32-bit sequence space (signed)."""
    d = (a - b) & 0xFFFFFFFF
    return d - (1 << 32) if d & 0x80000000 else d


class TcpSip:
    """Follow the SIP flows among TCP segments, batch by batch (see the module docstring)."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.flows: dict[tuple, _Direction] = {}

    def feed(self, t: Transport) -> list[tuple[int, int, SipMessage, int]]:
        """The SIP messages completed by a batch's TCP segments: (frame, time_ns, message, row)."""
        if len(t) == 0:
            return []
        sip_start = np.isin(prefix_codes(t), SIP_PREFIX_CODES)
        if not sip_start.any() and not self.flows:
            return []
        keys, order, bounds = flow_groups(t)
        picked = []
        for j in range(keys.shape[0]):
            rows_j = order[bounds[j] : bounds[j + 1]]
            key = tuple(int(x) for x in keys[j])
            if key in self.flows or sip_start[rows_j].any():
                picked.append((rows_j, key))
        todo = sorted((int(i), key) for rows_j, key in picked for i in rows_j.tolist())
        out: list[tuple[int, int, SipMessage, int]] = []
        for i, key in todo:
            d = self.flows.get(key)
            seq = int(t.seq[i])  # type: ignore[index]
            flags = int(t.flags[i])  # type: ignore[index]
            n = int(t.length[i])
            if d is None:
                if not sip_start[i]:
                    continue
                d = self.flows[key] = _Direction(seq)
            d.last_ns = int(t.ts_ns[i])
            if n:
                if t.truncated[i]:
                    self.problems.add("TCP segments cut short by the snap length: SIP bytes lost",
                                      frame=int(t.number[i]))
                data = t.payload(i)
                self._segment(d, seq, data, int(t.number[i]), int(t.ts_ns[i]), i, out)
            if flags & (_FIN | _RST):
                for bad in d.framer.close():
                    self.problems.add(bad.reason, frame=int(t.number[i]))
                del self.flows[key]
        return out

    def _segment(self, d: _Direction, seq: int, data: bytes, frame: int, ts: int, row: int,
                 out: list[tuple[int, int, SipMessage, int]]) -> None:
        ahead = _ahead(seq, d.next_seq)
        if ahead < 0:  # a retransmission, whole or in part
            if -ahead >= len(data):
                return
            data, seq, ahead = data[-ahead:], d.next_seq, 0
        if ahead > 0:
            d.waiting.setdefault(seq, data)
            if d.waiting_bytes() <= _MAX_WAITING:
                return
            first = min(d.waiting, key=lambda s: _ahead(s, d.next_seq))
            self.problems.add("TCP bytes missing from the capture: SIP stream resynchronised", frame=frame,
                              detail=f"{_ahead(first, d.next_seq)} bytes")
            d.framer.buffer = b""
            d.next_seq = first
            data = d.waiting.pop(first)
        self._take(d, data, frame, ts, row, out)
        while d.waiting:
            nxt = [s for s in d.waiting if _ahead(s, d.next_seq) <= 0]
            if not nxt:
                break
            for s in nxt:
                chunk = d.waiting.pop(s)
                cut = -_ahead(s, d.next_seq)
                if cut < len(chunk):
                    self._take(d, chunk[cut:], frame, ts, row, out)

    def _take(self, d: _Direction, data: bytes, frame: int, ts: int, row: int,
              out: list[tuple[int, int, SipMessage, int]]) -> None:
        d.next_seq = (d.next_seq + len(data)) & 0xFFFFFFFF
        for m in d.framer.feed(data):
            if isinstance(m, BadSip):
                self.problems.add(m.reason, frame=frame)
            else:
                out.append((frame, ts, m, row))

    def expire(self, now_ns: int) -> None:
        """Forget flows idle for 5 minutes of capture time (their torn messages counted)."""
        for key in [k for k, d in self.flows.items() if now_ns - d.last_ns > _IDLE_NS]:
            for bad in self.flows.pop(key).framer.close():
                self.problems.add(bad.reason)

    def close(self) -> None:
        """At the end of the capture: count the messages left unfinished."""
        for d in self.flows.values():
            for bad in d.framer.close():
                self.problems.add(bad.reason)
        self.flows.clear()
