"""Datagrams with their arrival times: what every RTP source hands to :mod:`telnyx_audio.rtp`.

Forks read them from ``.rtpcap`` files (:mod:`telnyx_audio.forks.rtpcap`), packet captures from
pcap and pcapng; :func:`telnyx_audio.rtp.assemble.assemble_fork` turns them into a recording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Records"]


@dataclass
class Records:
    """The datagrams of a fork capture as columns over one buffer.

    Attributes
    ----------
    buf : np.ndarray of uint8
        The whole file.
    offset, length : np.ndarray of int64, shape (m,)
        Where each datagram lies in ``buf``.
    track : np.ndarray of int8
        0 inbound (rx), 1 outbound (tx).
    received_us : np.ndarray of int64
    meta : dict
        The header's metadata.
    truncated_bytes : int
        Bytes of a torn last record that were ignored.
    problems : list of str
        What else was wrong (damaged stretches skipped, records of no known track, receive
        times out of line, header fields of the wrong type).
    received_ns : np.ndarray of int64, optional
        Arrival times to the nanosecond, when the source has them (packet captures); the
        RTP statistics use them over ``received_us``.
    stream : np.ndarray of int, optional
        Each datagram's flow (5-tuple) index, when the source knows flows: Wireshark's
        statistics are per 5-tuple and SSRC.
    stream_labels : list of dict
        Per flow index, its addresses and ports (``src``, ``sport``, ``dst``, ``dport``).
    """

    buf: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    track: np.ndarray
    received_us: np.ndarray
    meta: dict[str, Any]
    truncated_bytes: int = 0
    problems: list[str] = field(default_factory=list)
    received_ns: np.ndarray | None = None
    stream: np.ndarray | None = None
    stream_labels: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.offset.size)

    @classmethod
    def from_datagrams(cls, track: list[int] | np.ndarray, received_us: list[int] | np.ndarray,
                       datagrams: list[bytes], meta: dict[str, Any] | None = None) -> "Records":
        """Records held in memory (as if read from a file), for tests and the simulator.

        Parameters
        ----------
        track : list of int or np.ndarray, shape (m,)
            Each datagram's track: 0 inbound, 1 outbound.
        received_us : list of int or np.ndarray, shape (m,)
            Each datagram's arrival time in microseconds.
        datagrams : list of bytes
            The datagrams (RTP packets), in arrival order.
        meta : dict of str to object, optional
            What a capture's header would hold (ports, ``call_control_id``...).

        Returns
        -------
        Records
            The datagrams joined into one buffer, with their offsets and lengths.

        Examples
        --------
        >>> r = Records.from_datagrams([0, 1], [0, 20000], [b"ab", b"c"])
        >>> r.offset.tolist(), r.length.tolist()
        ([0, 2], [2, 1])
        """
        length = np.fromiter((len(d) for d in datagrams), np.int64, len(datagrams))
        offset = np.cumsum(length) - length
        buf = np.frombuffer(b"".join(datagrams), np.uint8)
        return cls(buf, offset, length, np.asarray(track, np.int8), np.asarray(received_us, np.int64), dict(meta or {}))
