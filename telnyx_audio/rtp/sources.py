"""One RTP source (SSRC) of a track: order, count, bound and anchor; then both tracks aligned.

Pure numpy on the columns of :func:`telnyx_audio.rtp.parse_packets`; used by
:func:`telnyx_audio.forks.assemble_fork`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from telnyx_audio.rtp import packet as rtp

__all__ = ["Source", "place_source", "bound_jumps", "align", "cap_timeline", "keep_first_source", "water_level"]

_ANCHOR_PACKETS = 250  # first packets of a source whose least delay anchors it (5 s at 20 ms)
_EVENT = 3  # the kind code of telephone-event packets
_AUDIO = 1
_LATE_S = 0.3  # a run this much later than its timestamps put it is no late packet but a return


@dataclass(frozen=True)
class Source:
    """One SSRC's packets, ordered and placed relative to its first packet.

    ``rows`` are the kept packets (first arrivals) in sequence order; ``pos_rel`` their
    places in output samples from the source's first packet; ``offset`` (samples from the
    capture's first datagram) is where the receive clock puts that first packet.
    """

    rows: np.ndarray
    pos_rel: np.ndarray
    kind: np.ndarray
    offset: float
    expected: int
    lost: int
    duplicated: int
    reordered: int
    jitter_ms: float | None
    max_jitter_ms: float
    jumps_cut: int
    cut_s: float
    outliers: int = 0
    arrival: np.ndarray | None = None  # receive time of each kept packet, output samples


def place_source(rows: np.ndarray, cols: rtp.PacketColumns, kind: np.ndarray, received_us: np.ndarray, t0: int,
                 clock: int, ratio: float, max_gap_s: float, ticks: np.ndarray | None = None) -> Source:
    """Order one source's packets (``rows``, in arrival order) and place them by timestamp.

    Sequence numbers and timestamps are extended in arrival order; a stray sequence number
    (:func:`telnyx_audio.rtp.validate_sequence`) is an outlier, counted and dropped; packets
    are ordered by extended sequence number and a repeated number keeps its first arrival. Places come from
    the timestamps (``ratio`` output samples per clock tick) with the silence of jumps
    bounded (:func:`bound_jumps`), the usual step and the audio measured from the payloads
    (``ticks``: each row's audio in clock ticks, 0 for no audio) when given, never from the
    sender's own timestamps alone; the source is anchored on its least-delayed early packet.
    Jitter is RFC 3550 6.4.1 over first arrivals, events excluded (an event's timestamp is
    its start, not when the packet was sampled).
    """
    seq, valid = rtp.validate_sequence(cols.sequence_number[rows])
    outliers = int(rows.size - np.count_nonzero(valid))
    if outliers:  # stray sequence numbers (RFC 3550 A.1): counted, never placed
        rows, seq = rows[valid], seq[valid]
    ts = rtp.extend_timestamp(cols.timestamp[rows])
    keep: slice | np.ndarray
    if rows.size < 2 or bool((seq[1:] > seq[:-1]).all()):  # the usual case: in order, no repeats (no copies)
        keep, n_keep, n_dup, reordered = slice(None), rows.size, 0, 0
        first_arrival = np.ones(rows.size, bool)
        expected = int(seq[-1] - seq[0] + 1) if rows.size else 0
    else:
        order = np.argsort(seq, kind="stable")
        s_seq = seq[order]
        dup_sorted = np.zeros(rows.size, bool)
        dup_sorted[1:] = s_seq[1:] == s_seq[:-1]
        keep = order[~dup_sorted]  # first arrivals, in sequence order
        n_keep, n_dup = int(keep.size), int(dup_sorted.sum())
        first_arrival = np.ones(rows.size, bool)
        first_arrival[order[dup_sorted]] = False
        arrived = seq[first_arrival]
        reordered = int((arrived[1:] < np.maximum.accumulate(arrived)[:-1]).sum()) if arrived.size > 1 else 0
        expected = int(s_seq[-1] - s_seq[0] + 1)

    jitter_ms, max_jitter_ms = None, 0.0
    kind_rows = kind[rows]
    events = kind_rows == _EVENT
    if n_dup == 0 and not events.any():  # every packet counts: no selection
        if rows.size > 1:
            j = rtp.interarrival_jitter((received_us[rows] - t0) * (clock / 1e6), ts)
            jitter_ms, max_jitter_ms = float(j[-1] * 1000 / clock), float(j.max() * 1000 / clock)
    elif (jit := first_arrival & ~events).sum() > 1:
        j = rtp.interarrival_jitter((received_us[rows][jit] - t0) * (clock / 1e6), ts[jit])
        jitter_ms, max_jitter_ms = float(j[-1] * 1000 / clock), float(j.max() * 1000 / clock)

    step = audio = None
    if ticks is not None:
        mine = ticks[rows[keep]]
        mine = mine[mine > 0]
        step, audio = (int(np.median(mine)) if mine.size else 0), int(mine.sum())
    rel, n_cut, cut_ticks = bound_jumps(ts[keep] - ts[keep][0], max_gap_s * clock, 60 * clock, step=step, audio=audio)
    pos_rel = np.rint(rel * ratio).astype(np.int64)
    by_arrival = np.empty(rows.size, np.int64)
    by_arrival[keep] = pos_rel
    anchor = np.flatnonzero(first_arrival)[:_ANCHOR_PACKETS]
    arrival = (received_us[rows] - t0) * (clock * ratio / 1e6)  # in output samples
    return Source(
        rows=rows[keep], pos_rel=pos_rel, kind=kind_rows[keep], offset=float(np.min(arrival[anchor] - by_arrival[anchor])),
        expected=expected, lost=expected - n_keep, duplicated=n_dup, reordered=reordered,
        jitter_ms=jitter_ms, max_jitter_ms=max_jitter_ms, jumps_cut=n_cut, cut_s=cut_ticks / clock,
        outliers=outliers, arrival=arrival[keep],
    )


def bound_jumps(rel: np.ndarray, max_jump: float, floor: float, *, step: int | None = None,
                audio: int | None = None) -> tuple[np.ndarray, int, int]:
    """Bound the silence timestamp jumps ask for (all in RTP clock ticks, sequence order).

    A forward jump's silence (beyond the usual step between packets) is cut to ``max_jump``.
    A backward jump beyond ``max_jump`` first gives back what earlier cuts took (one packet
    with a corrupt timestamp: the next is where it belongs); otherwise it is a restarted
    timestamp, and the packets after it follow on. Then, if the silence still exceeds
    ``max(floor, 10x the audio)``, the longest silences are cut to one level so that it does
    not (water-filling: short gaps stay exact). Returns the new relative timestamps, how
    many jumps were cut and the ticks of silence left out.

    ``step`` (a usual packet's audio) and ``audio`` (all of it), in ticks, measured from the
    payloads, replace the median timestamp step and what the timestamps span: a sender whose
    every step is huge does not make huge steps usual.

    Examples
    --------
    >>> rel, n, left = bound_jumps(np.array([0, 160, 10**9, 320, 480]), 8000, 16000)
    >>> rel.tolist(), n, left
    ([0, 160, 8320, 320, 480], 2, 0)
    """
    jumps = np.diff(rel).astype(np.int64)
    if jumps.size == 0:
        return rel, 0, 0
    if step is None:
        forward = jumps[jumps > 0]
        step = int(np.median(forward)) if forward.size else 0
    new = jumps.copy()
    big = np.flatnonzero((jumps > step + max_jump) | (jumps < -max_jump))
    owed = 0  # ticks earlier cuts took that a backward jump may give back
    for i in big.tolist():  # a few corrupt or restarted timestamps, not one per packet
        if jumps[i] > 0:
            new[i] = step + int(max_jump)
            owed += int(jumps[i] - new[i])
        else:
            back = int(jumps[i]) + owed
            new[i] = min(back, step + int(max_jump)) if back >= -max_jump else step
            owed = 0
    left = owed
    silence = np.maximum(new - step, 0)
    budget = max(floor, 10 * (step * rel.size if audio is None else audio))
    if silence.sum() > budget:
        trimmed = np.minimum(silence, water_level(silence, budget))
        left += int((silence - trimmed).sum())
        new = new - (silence - trimmed)
    cut = int((new != jumps).sum())
    return np.concatenate(([0], np.cumsum(new))).astype(np.int64), cut, left


def water_level(silence: np.ndarray, budget: float) -> int:
    """The level L with ``sum(min(silence, L)) == budget`` (when ``silence`` sums to more):
    cutting only the longest silences to L leaves short gaps exact.

    Examples
    --------
    >>> water_level(np.array([10, 100, 1000]), 130)
    60
    """
    # With the k longest cut to L: k * L + (the rest) == budget, for the k where L falls
    # between the k-th and k+1-th longest.
    desc = np.sort(silence)[::-1].astype(np.float64)
    k = np.arange(1, desc.size + 1)
    levels = (budget - (desc.sum() - np.cumsum(desc))) / k
    below = np.concatenate((desc[1:], [0.0]))
    return int(levels[np.argmax((levels <= desc) & (levels >= below))])


def cap_timeline(placed: dict[int, dict[str, np.ndarray]], lengths: dict[int, np.ndarray],
                 budget: float) -> int:
    """Bound the silence of the whole call, every track and source together (in place).

    Each source's jumps are bounded on their own (:func:`bound_jumps`), but sources placed
    by their arrival times (a stranger hours later, a damaged receive time) can still ask
    for hours between them. Holes where no track has audio are cut, the longest first to
    one level (:func:`water_level`), until they sum to at most ``budget`` samples; every
    packet after a cut moves back by it, on both tracks, so they stay aligned. Returns the
    samples left out.

    Examples
    --------
    >>> placed = {0: {"pos": np.array([0, 160, 10**9]), "kind": np.ones(3, np.int8)}}
    >>> cap_timeline(placed, {0: np.array([160, 160, 160])}, 8000), placed[0]["pos"].tolist()
    (999991680, [0, 160, 8320])
    """
    tracks = [t for t in placed if placed[t]["pos"].size]
    if not tracks:
        return 0
    pos = np.concatenate([placed[t]["pos"] for t in tracks])
    end = pos + np.concatenate([np.maximum(lengths[t], 0) for t in tracks])
    order = np.argsort(pos, kind="stable")
    s, reach = pos[order], np.maximum.accumulate(end[order])
    holes = np.maximum(s[1:] - reach[:-1], 0)
    if holes.sum() <= budget:
        return 0
    cut = holes - np.minimum(holes, water_level(holes, budget))
    shift = np.empty(pos.size, np.int64)
    shift[order] = np.concatenate(([0], np.cumsum(cut)))
    new = pos - shift
    at = 0
    for t in tracks:
        n = placed[t]["pos"].size
        placed[t]["pos"] = new[at : at + n]
        at += n
    return int(cut.sum())


def align(sources: dict[int, list[Source]], rate: int) -> dict[int, dict[str, np.ndarray]]:
    """Put every track's sources on one timeline starting at sample 0.

    Arrival times carry network and scheduling jitter, so tracks are aligned to the
    millisecond (relative to the earliest), not to a sample the clock cannot vouch for.
    A track's packets are cut into runs, one source's packets between other sources' (by
    arrival): A, then B, then A again after a hold or a transfer back. A source's first run
    starts where the receive clock puts it; a later run of it stays where its timestamps
    put it relative to its earlier runs, unless it arrived over half a packet after that
    place (its clock stood still meanwhile): then where the receive clock puts it. Either
    way a run never starts over audio placed before it. A run that fits before the run that
    followed its source's latest one and arrived within ``_LATE_S`` of its place is late
    packets of that run (reordering around a switch), placed by timestamp.

    Returns
    -------
    dict of int to dict
        Per track index: ``rows``, ``pos`` (first sample of each packet), ``kind``.
    """
    ms = rate / 1000
    firsts = [segs[0].offset + float(segs[0].pos_rel.min()) for segs in sources.values() if segs]
    base = min(firsts) if firsts else 0.0
    placed: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for t, segs in sources.items():
        placed[t] = []
        if not segs:
            continue
        sizes = [s.rows.size for s in segs]
        by_arrival = np.argsort(np.concatenate([s.rows for s in segs]), kind="stable")
        who = np.repeat(np.arange(len(segs)), sizes)[by_arrival]
        index = np.concatenate([np.arange(n) for n in sizes])[by_arrival]  # into its source's arrays
        bounds = np.concatenate(([0], np.flatnonzero(who[1:] != who[:-1]) + 1, [who.size])).tolist()
        steps = []  # a usual packet's length per source: where a run's audio ends after its last
        for src in segs:
            step = np.diff(src.pos_rel[src.kind == _AUDIO])
            steps.append(int(np.median(step)) if step.size else 0)
        pos = [np.empty(n, np.int64) for n in sizes]
        offsets: dict[int, float] = {}
        limit: dict[int, float] = {}  # where the run after a source's latest run began
        end = -np.inf
        for lo, hi in zip(bounds[:-1], bounds[1:]):  # a few runs per call (one per packet only if SSRCs alternate)
            k, members = int(who[lo]), index[lo:hi]
            src, rel = segs[k], segs[k].pos_rel[members]
            new_run, start = True, float(rel.min())
            if k in offsets:
                late = float(np.min(src.arrival[members] - rel)) - offsets[k]  # its least delay
                new_run = offsets[k] + rel.max() + steps[k] > limit[k] + steps[k] / 2 or late > _LATE_S * rate
                if new_run and late > steps[k] / 2:  # its clock stood still: where the receive clock puts it
                    offsets[k] = base + round((offsets[k] + late + start - base) / ms) * ms - start
            else:
                first = float(src.pos_rel.min())
                offsets[k] = base + round((src.offset + first - base) / ms) * ms - first
            if new_run:
                offsets[k] = max(offsets[k], end - start)
                for j in limit:  # the sources this run follows
                    if limit[j] == np.inf:
                        limit[j] = offsets[k] + start
                limit[k] = np.inf
            pos[k][members] = np.rint(offsets[k] + rel).astype(np.int64)
            end = max(end, int(pos[k][members].max()) + steps[k])
        placed[t] = [(src.rows, p, src.kind) for src, p in zip(segs, pos)]
    starts = [p.min() for segs in placed.values() for _, p, _ in segs if p.size]
    origin = int(min(starts)) if starts else 0
    out: dict[int, dict[str, np.ndarray]] = {}
    for t, segs in placed.items():
        if not segs:  # only malformed datagrams on this track
            empty = np.empty(0, np.int64)
            out[t] = {"rows": empty, "pos": empty, "kind": np.empty(0, np.int8), "source": empty}
            continue
        out[t] = {"rows": np.concatenate([s[0] for s in segs]), "pos": np.concatenate([s[1] for s in segs]) - origin,
                  "kind": np.concatenate([s[2] for s in segs]),
                  "source": np.repeat(np.arange(len(segs)), [s[0].size for s in segs])}
    return out


def keep_first_source(placed: dict[int, dict[str, np.ndarray]], lengths: dict[int, np.ndarray]) -> int:
    """Drop (in place) audio packets of a track's later sources that would land on its first
    source's audio: a source that joins a call never overwrites the audio of the one that
    began it. Returns how many were dropped.

    Examples
    --------
    >>> placed = {0: {"rows": np.arange(3), "pos": np.array([0, 160, 100]), "kind": np.ones(3, np.int8),
    ...               "source": np.array([0, 0, 1])}}
    >>> keep_first_source(placed, {0: np.full(3, 160)}), placed[0]["rows"].tolist()
    (1, [0, 1])
    """
    dropped = 0
    for t, p in placed.items():
        src = p.get("source")
        if src is None:
            continue
        audio = p["kind"] == _AUDIO
        first, other = audio & (src == 0), np.flatnonzero(audio & (src > 0))
        if not other.size or not first.any():
            continue
        fs, fe = p["pos"][first], p["pos"][first] + lengths[t][first]
        order = np.argsort(fs, kind="stable")
        fs, reach = fs[order], np.maximum.accumulate(fe[order])
        op, oe = p["pos"][other], p["pos"][other] + lengths[t][other]
        k = np.searchsorted(fs, oe, side="left") - 1  # the first source's audio starting before each ends
        over = other[(k >= 0) & (reach[np.maximum(k, 0)] > op)]
        if over.size:
            keep = np.ones(src.size, bool)
            keep[over] = False
            for key in list(p):
                p[key] = p[key][keep]
            lengths[t] = lengths[t][keep]
            dropped += int(over.size)
    return dropped

