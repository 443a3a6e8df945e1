"""Is this UDP flow RTP? The shape test for RTP that no SDP announced.

Wireshark's ``rtp_udp`` heuristic takes any datagram with version 2 on an even port; on its
own that makes RTP of DNS answers and game traffic. Here a flow is RTP when its first packets
(at least 3, :data:`DECIDE_AFTER` when there are that many) look like one RTP source: version
2 and no RTCP packet type in every one, at most two payload types, one SSRC carrying most of
them, sequence numbers moving by small steps (most of them forward: a late or repeated packet
steps back or stays) and timestamps that move by less than 2^24 ticks.
Well-known non-media ports (DNS, NTP, DHCP, SNMP, syslog, mDNS, SSDP, IKE...) never are.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DECIDE_AFTER", "MIN_PACKETS", "NOT_MEDIA_PORTS", "looks_like_rtp_flow"]

#: Packets looked at before deciding (fewer when the flow ends before).
DECIDE_AFTER = 8
#: A flow with fewer packets is never a call.
MIN_PACKETS = 3
#: Ports of protocols that are never RTP, whatever their bytes look like.
NOT_MEDIA_PORTS = frozenset({53, 67, 68, 69, 123, 137, 138, 161, 162, 443, 500, 514, 1900, 4500, 5353, 5355,
                             5060, 5061})


def looks_like_rtp_flow(heads: np.ndarray, lengths: np.ndarray, sport: int = 0, dport: int = 0) -> bool:
    """Whether a flow's first datagrams have the shape of one RTP stream.

    Parameters
    ----------
    heads : np.ndarray of uint8, shape (m, 12)
        The first 12 bytes of each datagram, in arrival order (rows of shorter ones are
        anything: ``lengths`` says they are too short).
    lengths : np.ndarray of int, shape (m,)
    sport, dport : int
        The flow's ports.

    Examples
    --------
    >>> import numpy as np
    >>> rows = [bytes([0x80, 0, 0, s]) + (160 * s).to_bytes(4, "big") + b"\\0\\0\\0\\x07" for s in range(8)]
    >>> heads = np.frombuffer(b"".join(rows), np.uint8).reshape(8, 12)
    >>> looks_like_rtp_flow(heads, np.full(8, 172), 4000, 5000)
    True
    >>> looks_like_rtp_flow(heads, np.full(8, 172), 4000, 53)
    False
    """
    m = heads.shape[0]
    if m < MIN_PACKETS or sport in NOT_MEDIA_PORTS or dport in NOT_MEDIA_PORTS:
        return False
    if (lengths < 12).any():
        return False
    h = heads.astype(np.int64)
    if (h[:, 0] >> 6 != 2).any():
        return False
    pt = h[:, 1] & 0x7F
    if ((pt >= 72) & (pt <= 79)).any() or np.unique(pt).size > 2:
        return False
    cc = h[:, 0] & 0x0F
    if (12 + 4 * cc > lengths).any():
        return False
    ssrc = h[:, 8] << 24 | h[:, 9] << 16 | h[:, 10] << 8 | h[:, 11]
    values, counts = np.unique(ssrc, return_counts=True)
    main = values[np.argmax(counts)]
    one = ssrc == main
    if one.sum() < max(MIN_PACKETS, int(np.ceil(0.75 * m))):
        return False
    seq = (h[one, 2] << 8 | h[one, 3])
    ts = h[one, 4] << 24 | h[one, 5] << 16 | h[one, 6] << 8 | h[one, 7]
    step = (np.diff(seq) + 0x8000) % 0x10000 - 0x8000  # signed: late and repeated packets step back or stay
    near = np.abs(step) <= 100
    if near.sum() < 0.8 * step.size or (step > 0).sum() < 0.5 * step.size:
        return False
    tstep = (np.diff(ts) + (1 << 31)) % (1 << 32) - (1 << 31)
    return bool((np.abs(tstep) < (1 << 24)).sum() >= 0.8 * tstep.size)
