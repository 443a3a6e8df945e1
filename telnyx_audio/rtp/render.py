"""Decoding placed RTP packets: audio into a (2, n) array, comfort noise into its spans.

Used by :func:`telnyx_audio.forks.assemble_fork` once every packet has its place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from telnyx_audio.rtp import packet as rtp
from telnyx_audio.rtp.datagrams import Records
from telnyx_audio.model.events import TRACKS

__all__ = ["render_audio", "comfort_noise"]

_BATCH = 1 << 13  # packets gathered per step: temporaries stay in cache


def render_audio(records: Records, cols: rtp.PacketColumns, placed: dict[int, dict[str, np.ndarray]],
                 main: rtp.PayloadType, encodings: dict[int, str],
                 warnings: list[str]) -> tuple[np.ndarray, dict[int, np.ndarray], dict[int, Any]]:
    """Decode every audio packet into a (2, n) int16 array at its place.

    Stateless codecs (G.711, L16): packets of one size are gathered as rows of a sliding
    window over the file and written as rows of a sliding window over the output: no
    per-sample index arrays. Stateful ones (G.722, OPUS, AMR-WB) go through
    :func:`telnyx_audio.codecs.stream.render`, as WebSocket frames do: one decoder per track
    in timeline order, gaps concealed by the decoder.

    Returns the audio, each track's samples per audio packet, and the stateful decoders'
    :class:`~telnyx_audio.codecs.stream.Concealment` per track.
    """
    from telnyx_audio.codecs import REGISTRY
    from telnyx_audio.codecs.g711 import bytes_per_sample, decode_into

    info = REGISTRY[main.encoding]
    bps = 1 if info.stateful else bytes_per_sample(main.encoding)
    samples_of: dict[int, np.ndarray] = {}
    n = 0
    for t, p in placed.items():
        all_audio = bool((p["kind"] == 1).all())
        rows = p["rows"] if all_audio else p["rows"][p["kind"] == 1]  # no copy in the usual case
        nbytes = cols.payload_length[rows]
        if info.stateful:
            from telnyx_audio.codecs.stream import frame_samples

            samples_of[t] = frame_samples(main.encoding, main.clock_rate, records.buf, cols.payload_offset[rows],
                                          nbytes)
            bad = int((samples_of[t] < 0).sum())
            if bad:
                warnings.append(f"{TRACKS[t]}: {bad} {main.encoding} payloads are not {main.encoding} frames: concealed")
        else:
            samples_of[t] = nbytes // bps
        del nbytes
        if rows.size:
            pos = p["pos"] if all_audio else p["pos"][p["kind"] == 1]
            n = max(n, int((pos + np.maximum(samples_of[t], 0)).max()))
            del pos
        other = p["kind"] != 1
        if other.any():
            n = max(n, int(p["pos"][other].max()) + 1)
    if info.stateful:
        from telnyx_audio.codecs.stream import render as render_stateful

        tracks = sorted(placed)
        audio_of = {t: placed[t]["kind"] == 1 for t in tracks}
        rows = np.concatenate([placed[t]["rows"][audio_of[t]] for t in tracks]) if tracks else np.empty(0, np.int64)
        track = np.concatenate([np.full(int(audio_of[t].sum()), t, np.int8) for t in tracks]) if tracks else rows
        samples = np.concatenate([samples_of[t] for t in tracks]) if tracks else rows
        dest = np.concatenate([placed[t]["pos"][audio_of[t]] for t in tracks]) if tracks else rows
        dest = np.where(samples >= 0, dest, -1)
        out, concealment = render_stateful(main.encoding, main.clock_rate, n, track, dest, np.maximum(samples, 0),
                                           records.buf, cols.payload_offset[rows], cols.payload_length[rows])
        for t in tracks:
            samples_of[t] = np.maximum(samples_of[t], 0)
        return out, samples_of, concealment
    out = np.zeros((2, n), np.int16)
    for t, p in placed.items():
        kind = p["kind"]
        if (kind == 1).all():  # the usual case: no copies of the placement
            rows, pos = p["rows"], p["pos"]
        else:
            a = np.flatnonzero(kind == 1)
            rows, pos = p["rows"][a], p["pos"][a]
        if not rows.size:
            continue
        lens = samples_of[t]
        pts = cols.payload_type[rows]
        one_pt = int(pts.min()) == int(pts.max())
        for pt in ([int(pts[0])] if one_pt else np.unique(pts).tolist()):
            decode = REGISTRY[encodings.get(pt, main.encoding)].stateless_decode
            same_pt = None if one_pt else pts == pt
            one_size = one_pt and int(lens.min()) == int(lens.max())
            for size in ([int(lens[0])] if one_size else np.unique(lens if one_pt else lens[same_pt]).tolist()):
                if size == 0:
                    continue
                # The packets of this type and size: all of them (a range, no index array) or a selection.
                sel = None
                if not one_size:
                    sel = np.flatnonzero((lens == size) if same_pt is None else (same_pt & (lens == size)))
                count = rows.size if sel is None else sel.size
                width = size * bps
                src = sliding_window_view(records.buf, width)
                row = out[t]
                dst = as_strided(row, shape=(row.size - size + 1, size), strides=(row.strides[0],) * 2)
                for lo in range(0, count, _BATCH):
                    part = slice(lo, min(lo + _BATCH, count)) if sel is None else sel[lo : lo + _BATCH]
                    raw = src[cols.payload_offset[rows[part]]]
                    at = pos[part]
                    if at.size > 1 and (np.diff(at) == size).all() and at[-1] + size <= row.size:
                        # Back to back (the usual case): decode straight into the output row.
                        decode_into(raw, encodings.get(pt, main.encoding), row[at[0] : at[-1] + size])
                    else:
                        dst[at] = decode(raw.reshape(-1)).reshape(at.size, size)
    return out, samples_of, {}


def comfort_noise(audio: np.ndarray, records: Records, cols: rtp.PacketColumns,
                   placed: dict[int, dict[str, np.ndarray]], samples_of: dict[int, np.ndarray]) -> dict[int, tuple]:
    """Fill each CN packet's span (to the track's next packet) with noise at its level.

    RFC 3389 section 3: the level byte is -dBov; 0 dBov is a full-scale square wave, so the
    noise's RMS is ``32767 * 10 ** (-level / 20)``. Deterministic (seeded by place).
    """
    spans: dict[int, tuple] = {}
    for t, p in placed.items():
        cn = np.flatnonzero(p["kind"] == 2)
        if not cn.size:
            continue
        audio_pos = p["pos"][p["kind"] == 1]
        audio_end = audio_pos + samples_of[t]
        others = np.sort(np.concatenate((audio_pos, p["pos"][p["kind"] != 1])))
        starts = p["pos"][cn]
        # The span ends where the next packet of the track (audio, CN or event) begins.
        nxt = np.searchsorted(others, starts, side="right")
        ends = np.where(nxt < others.size, others[np.minimum(nxt, others.size - 1)], starts)
        # Never over audio that covers the CN packet's own place.
        covered = np.zeros(starts.size, bool)
        if audio_pos.size:
            order = np.argsort(audio_pos)
            sp, se = audio_pos[order], audio_end[order]
            k = np.searchsorted(sp, starts, side="right") - 1
            covered = (k >= 0) & (se[np.maximum(k, 0)] > starts)
        ends = np.where(covered, starts, np.minimum(ends, audio.shape[1]))
        spans[t] = (starts, ends)
        off = cols.payload_offset[p["rows"][cn]]
        has = cols.payload_length[p["rows"][cn]] > 0
        level = np.where(has, records.buf[np.where(has, off, 0)] & 0x7F, 127)
        for s, e, lv in zip(starts.tolist(), ends.tolist(), level.tolist()):
            if e > s and lv < 127:
                rng = np.random.default_rng(s)
                noise = rng.standard_normal(e - s) * (32767 * 10 ** (-lv / 20))
                audio[t, s:e] = np.clip(np.rint(noise), -32768, 32767).astype(np.int16)
    return spans
