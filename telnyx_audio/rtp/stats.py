"""RTP stream statistics exactly as Wireshark's RTP Stream Analysis computes them, in numpy.

Wireshark (``ui/tap-rtp-analysis.c``, ``rtppacket_analyse``; ``rtpstream_info_calculate``)
walks a stream's packets in capture order with a running state; what tshark 4.0 computes
(the version the tests compare with, ``tshark -q -z rtp,streams``) is done here on whole
columns:

- ``delta`` is each packet's arrival time since the packet before; the difference ``D`` is
  ``|delta - nominal step|``, the nominal step being the timestamp's advance since the last
  packet with a known clock, divided by the clock in kHz (an integer division, as
  Wireshark's ``clock_rate / 1000``); jitter is the RFC 3550 filter ``J += (D - J) / 16``
  (a first-order IIR filter, :func:`scipy.signal.lfilter`) over packets with a known clock
  (telephone-event and unnamed dynamic types have none);
- min/max/mean delta and jitter are over *regular* packets: not the first, no marker bit,
  not comfort noise nor just after it. Wireshark's "mean" divides its running sum by the
  packet's index, not by the count of regular packets; this is kept (the same when every
  packet is regular);
- skew is nominal time (timestamps) minus arrival time, both from the first packet; the
  maximum is the one largest in magnitude, sign kept; clock drift is the least-squares
  slope of nominal on arrival time, less one, times the duration (Wireshark's dialog);
- ``sequence_errors`` counts packets whose sequence number was not the one expected (lost
  before it, late, duplicated), and ``expected``/``lost`` come from the first and last
  sequence numbers and the wraps between (so duplicates offset losses).

The one part that is a true sequential state machine (which sequence number is expected
next) runs in Python only over the packets that break the simple rule "one more than the
packet before": a clean stream of 180,000 packets costs one vectorised pass.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["WIRESHARK_CLOCKS", "wireshark_clock", "stream_stats", "combine_stats", "track_stats", "STAT_KEYS"]

#: Wireshark's clock rates of static payload types (``clock_map`` in tap-rtp-analysis.c).
WIRESHARK_CLOCKS = {0: 8000, 1: 8000, 2: 8000, 3: 8000, 4: 8000, 5: 8000, 6: 16000, 7: 8000, 8: 8000, 9: 8000,
                    10: 44100, 11: 44100, 12: 8000, 13: 8000, 14: 90000, 15: 8000, 16: 11025, 17: 22050,
                    18: 8000, 19: 8000, 25: 90000, 26: 90000, 28: 90000, 31: 90000, 32: 90000, 33: 90000,
                    34: 90000}
#: The statistics one stream or track gets (besides ``ssrcs`` and ``payload_types``).
STAT_KEYS = ("packets", "expected", "lost", "sequence_errors", "min_delta_ms", "mean_delta_ms", "max_delta_ms",
             "min_jitter_ms", "mean_jitter_ms", "max_jitter_ms", "max_skew_ms", "clock_drift_ms", "duration_s")
_CN = (13, 19)
_IS_CN = np.isin(np.arange(128), _CN)  # by payload type (0-127)


def wireshark_clock(pt: int, names: Mapping[int, str] | None = None) -> int:
    """The RTP clock Wireshark uses for payload type ``pt`` (0: none, so no jitter).

    Static types use Wireshark's table; a dynamic type uses the rate of its ``a=rtpmap``
    (``names``: ``{96: "AMR-WB/16000"}``), and telephone-event or an unnamed type has none.

    Examples
    --------
    >>> wireshark_clock(8), wireshark_clock(101), wireshark_clock(96, {96: "opus/48000/2"})
    (8000, 0, 48000)
    >>> wireshark_clock(101, {101: "telephone-event/8000"})
    0
    """
    if pt < 96:
        return WIRESHARK_CLOCKS.get(pt, 0)
    name = (names or {}).get(pt)
    if not name:
        return 0
    parts = name.split("/")
    if parts[0].strip().lower().startswith("telephone-event"):
        return 0
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        return 0


def _running_mean(index: np.ndarray, x: np.ndarray) -> float:
    """Wireshark's ``m = (m * (i - 1) + x) / i`` over (index ``i``, value ``x``) pairs, m from 0.

    With ``S = i * m`` the step is ``S = S_prev * (i - 1) / i_prev + x``: the factor is 1
    between consecutive indices, so ``S`` is a plain sum within each run of consecutive
    indices, and the runs' sums are scaled by the factors where runs meet.
    """
    if index.size == 0:
        return 0.0
    i = index.astype(np.float64)
    x = np.asarray(x, np.float64)
    factor = (i[1:] - 1.0) / i[:-1]
    breaks = np.flatnonzero(factor != 1.0) + 1
    if breaks.size == 0:
        return float(x.sum() / i[-1])
    starts = np.concatenate(([0], breaks))
    sums = np.add.reduceat(x, starts)
    f = factor[breaks - 1]
    weight = np.ones(sums.size)
    weight[:-1] = np.cumprod(f[::-1])[::-1]  # segment s is scaled by every factor after it
    return float(np.dot(sums, weight) / i[-1])


def _sequence(seq: np.ndarray) -> int:
    """Wireshark's count of sequence errors (lost before, late, duplicated)."""
    n = seq.size
    if n < 2:
        return 0
    simple = np.zeros(n, bool)
    if seq.dtype == np.uint16:  # as on the wire: + 1 wraps by itself
        simple[1:] = seq[1:] == seq[:-1] + np.uint16(1)
    else:
        s = seq.astype(np.int64)
        simple[1:] = s[1:] == (s[:-1] + 1) % 65536
    hard = np.flatnonzero(~simple)
    hard = hard[hard > 0]
    if not hard.size:
        return 0
    s = seq.astype(np.int64)
    errors = 0
    k = 0
    i = int(hard[0]) if hard.size else n
    seq_num = int(s[i - 1]) if i < n else 0  # every packet before the first hard one was in step
    while i < n:
        cur = int(s[i])
        if cur > seq_num or seq_num - cur > 0xFF00:
            if not (cur == seq_num + 1 or (seq_num == 65535 and cur == 0)):
                errors += 1
            seq_num = cur
        elif seq_num + 1 > cur:
            errors += 1
        if seq_num == cur:  # in step again: the next packets follow the simple rule
            while k < hard.size and hard[k] <= i:
                k += 1
            i = int(hard[k]) if k < hard.size else n
        else:
            i += 1
    return errors


def _cycles(seq: np.ndarray) -> int:
    """Wireshark's count of sequence-number wraps (its ``under`` flip-flop)."""
    s = np.asarray(seq)
    start = s[0]
    low = s < start
    low[1:] |= (s[1:] == 0) & (s[:-1] == 65535)
    high = s > start
    ev = np.zeros(s.size, np.int8)  # 1 set, -1 reset, 0 nothing
    ev[low] = 1
    ev[high & ~low] = -1
    ev[0] = 0
    e = ev[ev != 0]
    if e.size == 0:
        return 0
    sets = e == 1
    before = np.concatenate(([False], sets[:-1]))
    return int((sets & ~before).sum())


def stream_stats(arrival_ns: np.ndarray, seq: np.ndarray, timestamp: np.ndarray, payload_type: np.ndarray,
                 marker: np.ndarray, clock: np.ndarray) -> dict[str, Any]:
    """Wireshark's RTP Stream Analysis of one stream (one 5-tuple and SSRC), in capture order.

    Parameters
    ----------
    arrival_ns : np.ndarray of int64
        Capture times.
    seq : np.ndarray of int
        16-bit sequence numbers as on the wire.
    timestamp : np.ndarray of int
        RTP timestamps, extended past their wrap (:func:`telnyx_audio.rtp.extend_timestamp`).
    payload_type : np.ndarray of int
    marker : np.ndarray of bool
    clock : np.ndarray of int
        Each packet's RTP clock as Wireshark knows it (:func:`wireshark_clock`; 0: none).

    Returns
    -------
    dict
        The keys of :data:`STAT_KEYS` (times in ms; ``min_delta_ms``/``min_jitter_ms`` are
        -1 when no packet qualified, as Wireshark shows them).

    Examples
    --------
    >>> n = 50
    >>> t = np.arange(n) * 20_000_000 + (np.arange(n) % 2) * 1_000_000   # 1 ms of jitter on odd packets
    >>> s = stream_stats(t, np.arange(n) + 65530, np.arange(n) * 160, np.zeros(n, int), np.zeros(n, bool),
    ...                  np.full(n, 8000))
    >>> s["packets"], s["expected"], s["lost"], s["sequence_errors"], s["max_delta_ms"], s["min_delta_ms"]
    (50, 50, 0, 0, 21.0, 19.0)
    """
    n = int(arrival_ns.size)
    out: dict[str, Any] = dict.fromkeys(STAT_KEYS, 0)
    out.update(packets=n, min_delta_ms=-1.0, min_jitter_ms=-1.0)
    if n == 0:
        return out
    t = (arrival_ns - arrival_ns[0]).astype(np.float64) / 1e6
    ts = np.asarray(timestamp, np.int64)
    pt = np.asarray(payload_type)
    clock = np.asarray(clock)
    mark = np.asarray(marker, bool)
    delta = np.zeros(n)
    delta[1:] = np.diff(t)
    # The usual stream: one clock on every packet, no marker, no comfort noise. Then every
    # packet after the first has a clock and is regular: slices, not index arrays (same figures).
    one_clock = int(clock.min()) == int(clock.max()) >= 1000
    plain = one_clock and not mark[1:].any() and not _IS_CN[pt].any()
    if one_clock:
        jit_rows: slice | np.ndarray = slice(1, n)
        n_jit = n - 1
    else:
        has_clock = clock >= 1000
        has_clock[0] = False
        jit_rows = np.flatnonzero(has_clock)
        n_jit = jit_rows.size
    jitter = np.zeros(n)
    if n_jit:
        from scipy.signal import lfilter

        # Nominal time of each packet with a clock (its timestamp from the first packet's, in
        # ms at its own clock), and of the packet with a clock before it (the first packet's
        # is 0): the expected arrival is the previous packet's plus the nominal step.
        per_ms = float(int(clock[0]) // 1000) if one_clock else (clock[jit_rows] // 1000).astype(np.float64)
        nominal = (ts[jit_rows] - ts[0]) / per_ms
        last_nominal = np.concatenate(([0.0], nominal[:-1]))
        diff = np.abs(delta[jit_rows] - (nominal - last_nominal))
        jitter[jit_rows] = lfilter([1 / 16], [1, -15 / 16], diff)
        arrival = t[jit_rows]
        skew = nominal - arrival
        k = int(np.argmax(np.abs(skew)))
        out["max_skew_ms"] = float(skew[k])
        sumt, sumts = float(arrival.sum()), float(nominal.sum())
        sumt2, sumtts = float(np.dot(arrival, arrival)), float(np.dot(arrival, nominal))
        if sumt2 > 0:
            x = (n * sumtts - sumt * sumts) / (n * sumt2 - sumt * sumt)
            out["clock_drift_ms"] = float(t[-1]) * (x - 1.0)
    if plain:  # every packet but the first is regular and has a clock
        if n > 1:
            d, j = delta[1:], jitter[1:]
            out["max_delta_ms"] = max(0.0, float(d.max()))
            out["min_delta_ms"] = float(d.min())
            out["mean_delta_ms"] = float(d.sum() / (n - 1))  # _running_mean over indices 1..n-1
            out["max_jitter_ms"] = max(0.0, float(j.max()))
            out["min_jitter_ms"] = float(j.min())
            out["mean_jitter_ms"] = float(j.sum() / (n - 1))
    else:
        has_clock = clock >= 1000
        has_clock[0] = False
        cn = _IS_CN[pt]
        regular = ~mark & ~cn
        regular[1:] &= ~cn[:-1]
        regular[0] = False
        idx = np.arange(n)
        r = np.flatnonzero(regular)
        if r.size:
            out["max_delta_ms"] = max(0.0, float(delta[r].max()))
            out["min_delta_ms"] = float(delta[r].min())
            out["mean_delta_ms"] = _running_mean(idx[r], delta[r])
        rj = np.flatnonzero(regular & has_clock)
        if rj.size:
            out["max_jitter_ms"] = max(0.0, float(jitter[rj].max()))
            out["min_jitter_ms"] = float(jitter[rj].min())
            out["mean_jitter_ms"] = _running_mean(idx[rj], jitter[rj])
    seq = np.asarray(seq)
    cycles = _cycles(seq)
    expected = int(seq[-1]) + cycles * 65536 - int(seq[0]) + 1
    out["expected"] = expected
    out["lost"] = expected - n
    out["sequence_errors"] = _sequence(seq)
    out["duration_s"] = float(t[-1] / 1000.0)
    return out


def combine_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One track's statistics from its streams' (several SSRCs or 5-tuples): counts summed,
    minima and maxima over all, means weighted by packets, skew the largest in magnitude,
    drift that of the stream with the most packets.

    Examples
    --------
    >>> a = dict(dict.fromkeys(STAT_KEYS, 0), packets=10, mean_delta_ms=20.0, min_delta_ms=19.0, max_delta_ms=21.0)
    >>> b = dict(dict.fromkeys(STAT_KEYS, 0), packets=30, mean_delta_ms=40.0, min_delta_ms=-1.0, max_delta_ms=50.0)
    >>> c = combine_stats([a, b])
    >>> c["packets"], round(c["mean_delta_ms"], 2), c["min_delta_ms"], c["max_delta_ms"]
    (40, 35.26, 19.0, 50.0)
    """
    if len(parts) == 1:
        return dict(parts[0])
    out: dict[str, Any] = {}
    for k in ("packets", "expected", "lost", "sequence_errors"):
        out[k] = int(sum(p[k] for p in parts))
    for k in ("min_delta_ms", "min_jitter_ms"):
        vals = [p[k] for p in parts if p[k] >= 0]
        out[k] = min(vals) if vals else -1.0
    for k in ("max_delta_ms", "max_jitter_ms", "duration_s"):
        out[k] = max(p[k] for p in parts)
    weight = [max(p["packets"] - 1, 0) for p in parts]
    total = sum(weight)
    for k in ("mean_delta_ms", "mean_jitter_ms"):
        out[k] = sum(w * p[k] for w, p in zip(weight, parts)) / total if total else 0.0
    out["max_skew_ms"] = max((p["max_skew_ms"] for p in parts), key=abs)
    out["clock_drift_ms"] = max(parts, key=lambda p: p["packets"])["clock_drift_ms"]
    return out


def track_stats(rows: np.ndarray, *, arrival_ns: np.ndarray, seq: np.ndarray, timestamp: np.ndarray,
                payload_type: np.ndarray, marker: np.ndarray, ssrc: np.ndarray, clock_of: np.ndarray,
                stream: np.ndarray | None = None, labels: list[dict[str, Any]] | None = None
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Wireshark's statistics of one track: per stream (5-tuple and SSRC, as Wireshark keys
    a stream), then combined (:func:`combine_stats`).

    Parameters
    ----------
    rows : np.ndarray of int
        The track's RTP packets (indices into the columns), in capture order.
    arrival_ns, seq, timestamp, payload_type, marker, ssrc : np.ndarray
        Columns over all packets (timestamps as on the wire: extended here per stream).
    clock_of : np.ndarray of int, shape (128,)
        The RTP clock Wireshark would use per payload type (0: none).
    stream : np.ndarray of int, optional
        Each packet's flow (5-tuple) index; None when the source has one flow per track.
    labels : list of dict, optional
        Per flow index, what to put in its streams' entries (addresses and ports).

    Returns
    -------
    (dict, list of dict)
        The track's figures (:data:`STAT_KEYS`), and one dict per stream with its ``ssrc``
        (hex), payload types, figures and its label's keys.

    Examples
    --------
    >>> n = 10
    >>> z = np.zeros(n, np.int64)
    >>> clocks = np.zeros(128, np.int64); clocks[0] = 8000
    >>> total, per = track_stats(np.arange(n), arrival_ns=np.arange(n) * 20_000_000, seq=np.arange(n),
    ...                          timestamp=np.arange(n) * 160, payload_type=z, marker=z.astype(bool), ssrc=z + 7,
    ...                          clock_of=clocks)
    >>> total["packets"], total["lost"], per[0]["ssrc"], round(per[0]["mean_delta_ms"], 6)
    (10, 0, '00000007', 20.0)
    """
    from telnyx_audio.rtp.packet import extend_timestamp

    if rows.size == 0:
        return combine_stats([stream_stats(*(np.empty(0, np.int64),) * 6)]), []
    key_stream = stream[rows] if stream is not None else np.zeros(rows.size, np.int64)
    key = (key_stream.astype(np.int64) << 32) | ssrc[rows].astype(np.int64)
    if (key == key[0]).all():  # one stream (the usual case): no grouping
        values, first, inverse = key[:1], np.zeros(1, np.int64), None
    else:
        values, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
    parts: list[dict[str, Any]] = []
    if inverse is not None:  # each stream's rows in capture order, in one stable sort (not a mask per stream)
        by_stream = rows[np.argsort(inverse, kind="stable")]
        bounds = np.concatenate(([0], np.cumsum(np.bincount(inverse, minlength=values.size))))
    for j in np.argsort(first).tolist():
        r = by_stream[bounds[j] : bounds[j + 1]] if inverse is not None else rows
        pts = payload_type[r]
        s = stream_stats(arrival_ns[r], seq[r], extend_timestamp(timestamp[r]), pts, marker[r], clock_of[pts])
        counts = np.bincount(pts, minlength=128)
        kinds = np.flatnonzero(counts)
        counts = counts[kinds]
        entry = {"ssrc": f"{int(values[j]) & 0xFFFFFFFF:08x}",
                 "payload_types": {str(p): int(c) for p, c in zip(kinds.tolist(), counts.tolist())}}
        if labels is not None and stream is not None:
            entry.update(labels[int(values[j]) >> 32])
        entry.update(s)
        parts.append(entry)
    return combine_stats([{k: p[k] for k in STAT_KEYS} for p in parts]), parts
