"""Reading a capture file into one :class:`Capture` per stream: pass 1 (every line), the
split by ``stream_id``, the media format (given, from ``start``, or inferred and said so),
pass 2 (payloads decoded from the file into place), and the checks that say what looks wrong.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import replace
import os
import zlib
from typing import Any, BinaryIO, Mapping

import numpy as np

from telnyx_audio import codecs

from telnyx_audio._util import b64 as _base64
from telnyx_audio.model.format import as_media_format, check_law, choose_format, fmt_name, law_scores
from telnyx_audio.streams.lines import parse_line_full
from telnyx_audio.model.capture import BadLine, Capture, CaptureReport
from telnyx_audio._util.files import Gunzip as _Gunzip
from telnyx_audio._util.files import open_capture
from telnyx_audio.streams.reader import EVENT_NAMES, Reader, fill, read_blocks
from telnyx_audio.errors import CaptureError, NotACaptureError, TelnyxAudioError
from telnyx_audio.streams.protocol import TRACKS, Connected, Event, Media, MediaFormat, Start
from telnyx_audio.model import Plan, Recording, plan, recording_from, render_batch

_MAX_EXAMPLES = 20  # bad lines listed per stream


class _Frames:
    """One stream's frames: the table and where each payload is (see Reader.frames)."""

    def __init__(self, table, line_no, where, length) -> None:
        self.table, self.line_no, self.where, self.length = table, line_no, where, length

    def take(self, rows: np.ndarray) -> "_Frames":
        return _Frames(self.table.take(rows), self.line_no[rows], self.where[rows], self.length[rows])


def read_stream_captures(
    path: str | os.PathLike[str],
    *,
    media_format: MediaFormat | Mapping[str, Any] | None = None,
    block_size: int = 1 << 20,
) -> list[Capture]:
    """Read a WebSocket capture file (JSONL): one :class:`Capture` per ``stream_id``, in order.

    :func:`telnyx_audio.read_captures` calls this for JSONL files; call it directly to skip
    the content sniffing.

    Parameters
    ----------
    path : str or PathLike
        A JSONL file of Telnyx messages (plain or wrapped with receive times), or the same
        gzip-compressed.
    media_format : MediaFormat or dict, optional
        ``{"encoding": ..., "sample_rate": ...}``: overrides ``start.media_format`` (with a
        warning where they differ); for logs without ``start``. Without it, a stream with no
        ``start`` has its format inferred from payload sizes per counter step (with a
        warning), or its ``error`` says it cannot be.
    block_size : int
        Bytes read per block. Memory use is about this plus the decoded audio.

    Returns
    -------
    list of Capture
        ``capture.recording.audio`` is int16 of shape (2, n), ``[inbound, outbound]``. A
        stream whose audio cannot be decoded has ``error`` set and an empty recording; its
        ids, events and counts are still there.

    Raises
    ------
    CaptureError
        If the file cannot be read.
    NotACaptureError
        If it holds no Telnyx message at all (empty, text, another format).

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "two.jsonl"
    >>> lines = [{"event": "media", "stream_id": sid, "media": {"chunk": "1", "payload": "gICA"}}
    ...          for sid in ("a", "b")]
    >>> _ = path.write_text("".join(json.dumps(m) + "\\n" for m in lines))
    >>> [(c.stream_id, c.media_format.encoding) for c in read_stream_captures(path, media_format={"encoding": "PCMA", "sample_rate": 8000})]
    [('a', 'PCMA'), ('b', 'PCMA')]
    """
    if not isinstance(block_size, int) or block_size < 1024:
        raise ValueError(f"block_size must be an integer of at least 1024 bytes, got {block_size!r}")
    given = as_media_format(media_format)
    name = os.fspath(path)
    reader = Reader()
    try:
        with open_capture(path) as f:
            read_blocks(f, reader, block_size)
            if not reader.events and not reader.n_media:
                raise NotACaptureError(_not_a_capture(name, reader))
            table, line_no, stream, where, length = reader.frames()
            media = _Frames(table, line_no, where, length)
            if len(reader.streams) > 1:
                media, stream = _validate(f, reader, media, stream, block_size)
            return [_stream(f, name, reader, part, given, block_size) for part in _split(reader, media, stream)]
    except IsADirectoryError as exc:
        raise CaptureError(f"{name!r} is a directory, expected a capture file") from exc
    except (OSError, zlib.error) as exc:  # zlib: a .gz file that is not gzip data inside
        raise CaptureError(f"cannot read capture {name!r}: {getattr(exc, 'strerror', None) or exc}") from exc


def _not_a_capture(name: str, reader: Reader) -> str:
    if reader.lines == 0:
        return f"{name!r} is not a capture: it is empty"
    first = min(reader.examples.items(), default=None)
    why = f"; line {first[0]}: {first[1][0]}" if first else ""
    return f"{name!r} is not a capture: no Telnyx message in its {reader.lines} lines{why}"


# -- splitting by stream ------------------------------------------------------------------

class _Part:
    """One stream's share of the file."""

    def __init__(self, stream_id, frames, events, bad_lines, guessed) -> None:
        self.stream_id, self.frames, self.events, self.bad_lines, self.guessed = (
            stream_id, frames, events, bad_lines, guessed)


def _split(reader: Reader, frames: _Frames, stream: np.ndarray) -> list[_Part]:
    """Give every frame, event and bad line to a stream: the one it names, else the one
    named by the nearest message before it (a ``connected``: the next one)."""
    line_no = frames.line_no
    events = sorted(reader.events, key=lambda e: e[0])
    bad = np.sort(np.frombuffer(reader.bad_lines, np.int64)) if reader.bad_lines else np.empty(0, np.int64)
    n = len(reader.streams)
    if n < 2:  # one stream (or none named): everything is its
        return [_Part(next(iter(reader.streams), None), frames, [e for _, e in events], bad, 0)]
    ev_stream = np.array([reader.streams.get(getattr(e, "stream_id", None), -1) for _, e in events], np.int64)
    ev_line = np.array([ln for ln, _ in events], np.int64)
    named_line = np.concatenate((line_no[stream >= 0], ev_line[ev_stream >= 0]))
    named = np.concatenate((stream[stream >= 0].astype(np.int64), ev_stream[ev_stream >= 0]))
    order = np.argsort(named_line, kind="stable")
    named_line, named = named_line[order], named[order]
    # Streams in order of first appearance in the file.
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, named, named_line)
    rank = np.empty(n, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(n)
    ids = [None] * n
    for sid, index in reader.streams.items():
        ids[rank[index]] = sid
    named = rank[named]

    def nearest(lines: np.ndarray, after: np.ndarray | None = None) -> np.ndarray:
        j = np.searchsorted(named_line, lines, side="right") - 1
        got = named[np.maximum(j, 0)]
        got[j < 0] = named[0]
        if after is not None and after.any():  # connected: the stream that follows it
            k = np.minimum(np.searchsorted(named_line, lines[after], side="left"), named.size - 1)
            got[after] = named[k]
        return got

    f_stream = np.where(stream >= 0, rank[np.maximum(stream, 0)], -1)
    guessed = f_stream < 0
    if guessed.any():
        f_stream[guessed] = nearest(line_no[guessed])
    is_connected = np.array([isinstance(e, Connected) for _, e in events], bool)
    e_stream = np.where(ev_stream >= 0, rank[np.maximum(ev_stream, 0)], -1)
    if (e_stream < 0).any():
        loose = e_stream < 0
        e_stream[loose] = nearest(ev_line[loose], is_connected[loose])
    b_stream = nearest(bad) if bad.size else np.empty(0, np.int64)
    # Group by stream with one stable sort each (a hostile file may name thousands of streams).
    f_order = np.argsort(f_stream, kind="stable")
    f_cut = np.searchsorted(f_stream[f_order], np.arange(n + 1))
    b_order = np.argsort(b_stream, kind="stable")
    b_cut = np.searchsorted(b_stream[b_order], np.arange(n + 1))
    by_stream: list[list[Event]] = [[] for _ in range(n)]
    for (_, event), s in zip(events, e_stream.tolist()):
        by_stream[s].append(event)
    parts = []
    for s in range(n):
        rows = f_order[f_cut[s] : f_cut[s + 1]]
        parts.append(_Part(ids[s], frames.take(rows), by_stream[s], bad[b_order[b_cut[s] : b_cut[s + 1]]],
                           int(guessed[rows].sum())))
    return parts


# -- one stream ---------------------------------------------------------------------------

def _stream(f: BinaryIO, name: str, reader: Reader, part: _Part, given: MediaFormat | None,
            block_size: int) -> Capture:
    warnings = list(reader.warnings)
    if part.guessed:
        warnings.append(f"{part.guessed} media messages name no stream_id: given to the stream of the nearest"
                        " message before them")
    counts: dict[str, int] = {}
    start: Start | None = None
    change: Start | None = None  # the first later start that says another format
    for event in part.events:
        kind = EVENT_NAMES[type(event)]
        counts[kind] = counts.get(kind, 0) + 1
        if isinstance(event, Start):
            if start is None:
                start = event
            elif change is None and event.media_format != start.media_format:
                change = event
    media = part.frames
    counts["media"] = len(media.table)
    fmt, error, exception = choose_format(given, start, media.table, warnings)
    if change is not None:
        _after_format_change(reader, media, start, change, given, warnings)
    if error is None and codecs.REGISTRY[fmt.encoding].rate(fmt.sample_rate) != fmt.sample_rate:
        audio_rate = codecs.REGISTRY[fmt.encoding].rate(fmt.sample_rate)
        warnings.append(f"{fmt.encoding} is {audio_rate} Hz audio: decoded at {audio_rate} Hz, not the reported"
                        f" {fmt.sample_rate} Hz")
    recording: Recording | None = None
    if error is None:
        try:
            inferred = given is None and (start is None or start.media_format is None)
            if inferred and fmt.encoding in ("PCMU", "PCMA"):  # 160 B per 20 ms: G.711 or G.722
                fmt = _g711_or_g722(f, fmt, media, reader, block_size, warnings)
            recording, media = _decode(f, fmt, media, reader, part, warnings, block_size, counts)
            if inferred and fmt.encoding in ("PCMU", "PCMA"):
                recording, fmt, media = _settle_law(f, fmt, media, reader, part, recording, warnings, block_size, counts)
            elif fmt.encoding in ("PCMU", "PCMA"):
                check_law(recording, fmt, warnings)
        except (TelnyxAudioError, ValueError) as exc:
            error, exception = f"cannot decode the audio: {exc}", exc
    if recording is None:
        rate = codecs.REGISTRY[fmt.encoding].rate(fmt.sample_rate) if fmt.encoding in codecs.REGISTRY else fmt.sample_rate
        recording = Recording(np.zeros((2, 0), np.int16), rate, fmt.encoding, ())
    examples = tuple(BadLine(ln, *reader.examples[ln]) for ln in part.bad_lines.tolist()
                     if ln in reader.examples)[:_MAX_EXAMPLES]
    if part.bad_lines.size:
        first = examples[0] if examples else None
        warnings.append(f"{part.bad_lines.size} bad lines" + (f" (first: line {first.line}: {first.reason})" if first else ""))
    report = CaptureReport(
        lines=reader.lines,
        bad_lines=int(part.bad_lines.size),
        bad_examples=examples,
        events=counts,
        warnings=tuple(warnings),
        tracks=recording.reports,
    )
    return Capture(
        path=name,
        stream_id=part.stream_id if start is None else (start.stream_id or part.stream_id),
        call_control_id=start.call_control_id if start else None,
        call_session_id=start.call_session_id if start else None,
        media_format=fmt,
        custom_parameters=dict(start.custom_parameters) if start else {},
        start=dict(start.start) if start else {},
        recording=recording,
        report=report,
        events=tuple(part.events),
        error=error,
        exception=exception,
    )


def _after_format_change(reader: Reader, media: _Frames, start: Start, change: Start, given, warnings) -> None:
    """A second start that says another format: the frames after it are not in the first
    format, so they are bad frames (their time kept as silence), never decoded as the first
    (nor counted in its G.711 law check). A format given by the caller holds for every frame."""
    said = (f"a second start message says {fmt_name(change.media_format)}, the first"
            f" {fmt_name(start.media_format)}")
    if given is not None:
        warnings.append(f"{said}: every frame decoded as the format given")
        return
    line = next((ln for ln, e in reader.events if e is change), None)
    after = media.line_no > line if line is not None else np.zeros(len(media.table), bool)
    after &= media.table.nbytes >= 0
    if not after.any():
        warnings.append(f"{said}: no media follows it")
        return
    media.table = replace(media.table, nbytes=np.where(after, -1, media.table.nbytes))
    warnings.append(f"{said} (line {line}): the {int(after.sum())} media messages after it are bad frames, not"
                    " decoded in the first format; to decode them, cut the file there and decode that part with"
                    " --encoding")


def _decode(f, fmt, media: _Frames, reader, part, warnings, block_size, counts):
    """Plan and render one stream from the file; lines whose payload fails are re-read."""
    if codecs.REGISTRY[fmt.encoding].stateful:
        return _decode_stateful(f, fmt, media, reader, part, warnings, block_size, counts)
    rate = codecs.REGISTRY[fmt.encoding].rate(fmt.sample_rate)  # G.711: 8 kHz whatever is reported
    while True:
        plan_ = plan(media.table, fmt.encoding, rate)
        audio, failed = _render_from_file(f, plan_, media, reader.slow, block_size)
        if failed.size == 0:
            break
        media, _ = _reread(f, media, failed, reader, part)
    warnings.extend(plan_.warnings)
    for name, r in plan_.reports.items():
        if r.stray_bytes:
            warnings.append(f"{name}: {r.stray_bytes} stray bytes dropped (L16 payloads of odd length; whole"
                            " samples kept)")
    counts["media"] = len(media.table)
    return recording_from(plan_, audio), media


def _decode_stateful(f, fmt, media: _Frames, reader, part, warnings, block_size, counts):
    """G722, OPUS, AMR-WB: frame lengths are in the bytes, so payloads are decoded from the
    file twice and never all held: a batch at a time for each frame's length (which also
    finds text that is not base64), then, once planned, each track's frames in stream order
    a piece at a time, through one decoder per track, straight into the audio."""
    from telnyx_audio.model import render_stateful

    info = codecs.codec_info(fmt.encoding)
    rate = info.rate(fmt.sample_rate)
    while True:
        samples, failed = _samples_from_file(f, info.name, rate, media, reader.slow, block_size)
        if failed.size == 0:
            break
        media, _ = _reread(f, media, failed, reader, part)
    plan_ = plan(media.table, info.name, rate, samples=samples)
    unreadable = (samples < 0) & (media.table.nbytes >= 0)  # base64, but no frame length in the bytes
    unreadable = {name: int(unreadable[media.table.track == index].sum()) for index, name in enumerate(TRACKS)}
    del samples
    if isinstance(f, _Gunzip):  # going back in gzip decompresses again from the start: hold the payloads
        raw, _ = _gather(f, media.where, media.length, media.table.nbytes, reader.slow, block_size)
        recording = render_stateful(plan_, media.table, raw)
    else:
        _release_freed_memory()
        recording = render_stateful(plan_, media.table, fetch=_fetcher(f, media, reader.slow, block_size))
    warnings.extend(plan_.warnings)
    for name, n in unreadable.items():
        if n:
            warnings.append(f"{name}: {n} payloads hold no {fmt.encoding} frame whose length can be read"
                            " (bad frames: their time kept as silence where the counters place them)")
    if any(unreadable.values()) and not recording.audio.shape[1]:
        raise CaptureError(f"no audio could be decoded: none of the {len(media.table)} payloads is a {fmt.encoding}"
                           " frame whose length can be read; if the format is wrong, decode with --encoding")
    for name, r in recording.reports.items():
        if r.corrupt_frames:
            warnings.append(f"{name}: {r.corrupt_frames} payloads the {fmt.encoding} decoder rejected, concealed"
                            f" ({r.concealment})")
    counts["media"] = len(media.table)
    return recording, media


_LENGTH_BATCH = 1 << 16  # frames whose payloads are in memory at once while their lengths are read


def _samples_from_file(f: BinaryIO, encoding: str, rate: int, media: _Frames, slow: list[bytes],
                       block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's length in samples read off its payload
    (:func:`telnyx_audio.codecs.stream.frame_samples`), a batch of frames at a time; and the
    frames whose text was not base64."""
    from telnyx_audio.codecs import stream

    nbytes = media.table.nbytes
    samples = np.empty(nbytes.size, np.int64)
    bad = []
    for lo in range(0, nbytes.size, _LENGTH_BATCH):
        hi = min(lo + _LENGTH_BATCH, nbytes.size)
        raw, failed = _gather(f, media.where[lo:hi], media.length[lo:hi], nbytes[lo:hi], slow, block_size)
        size = np.maximum(nbytes[lo:hi], 0)
        samples[lo:hi] = stream.frame_samples(encoding, rate, raw, np.concatenate(([0], np.cumsum(size)[:-1])), size)
        bad.append(failed + lo)
    return samples, (np.concatenate(bad) if bad else np.empty(0, np.int64))


def _fetcher(f: BinaryIO, media: _Frames, slow: list[bytes], block_size: int):
    """``fetch(rows)`` for :func:`telnyx_audio.codecs.stream.render`: those frames' payloads
    decoded from the file, joined in the order of ``rows``, with their starts and sizes."""

    def fetch(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nbytes = media.table.nbytes[rows]
        raw, failed = _gather(f, media.where[rows], media.length[rows], nbytes, slow, block_size)
        if failed.size:  # they were base64 with these sizes a moment ago
            raise CaptureError("the capture file changed while it was read: its payloads differ between two reads")
        size = np.maximum(nbytes, 0)
        return raw, np.concatenate(([0], np.cumsum(size)[:-1])), size

    return fetch


@functools.lru_cache(maxsize=1)
def _malloc_trim():  # noqa: ANN202 - a ctypes function, or None
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc
    except (AttributeError, OSError, TypeError):  # another C library (macOS, musl) or Windows
        return None


def _release_freed_memory() -> None:
    """Give the free pages of the C heap back to the system before the audio is allocated.

    Planning's temporaries, once freed, stay in the process's resident memory with glibc
    (its heap is only given back from the top), beside the audio allocated next: the peak
    would count them twice. ``malloc_trim(0)`` returns them, as Dask's workers do; without
    glibc there is nothing to do.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _gather(f: BinaryIO, where: np.ndarray, length: np.ndarray, nbytes: np.ndarray, slow: list[bytes],
            block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames' payloads decoded from the file, joined in the given order (frames with
    ``nbytes`` -1 have none). ``where`` and ``length`` place each payload's text in the file
    (``where`` < 0: text read by the slow path, ``slow[-where - 1]``). Returns the bytes and
    the frames whose text was not base64."""
    nbytes, given = np.maximum(nbytes, 0), nbytes
    starts = np.concatenate(([0], np.cumsum(nbytes)[:-1])).astype(np.int64)
    out = np.zeros(int(nbytes.sum()), np.uint8)
    bad: list[np.ndarray] = []
    fast = np.flatnonzero((where >= 0) & (given >= 0))
    if fast.size > 1 and (np.diff(where[fast]) < 0).any():  # read in file order
        fast = fast[np.argsort(where[fast], kind="stable")]
    for rows, raw, got, valid in _payload_batches(f, fast, where, length, block_size):
        if not valid.all():  # raw holds the valid rows only
            bad.append(rows[~valid])
            rows, got = rows[valid], got[valid]
        wrong = got != nbytes[rows]  # sizes from pass 1 disagree: re-read those lines, never misplace bytes
        if wrong.any():
            bad.append(rows[wrong])
            raw = np.delete(raw, np.repeat(wrong, got).nonzero()[0])
            rows, got = rows[~wrong], got[~wrong]
        if rows.size:
            local = np.concatenate(([0], np.cumsum(got)[:-1]))
            at = starts[rows] - local
            if (at == at[0]).all():  # the usual case: these frames are back to back in frame order
                out[at[0] : at[0] + raw.size] = raw
            else:
                out[np.repeat(at, got) + np.arange(int(got.sum()))] = raw
    kept = np.flatnonzero((where < 0) & (given >= 0))  # read by the slow path: bytes in hand
    for k, text in zip(kept.tolist(), (slow[i] for i in (-where[kept] - 1).tolist())):
        out[starts[k] : starts[k] + nbytes[k]] = np.frombuffer(text, np.uint8)[: nbytes[k]]
    return out, (np.concatenate(bad) if bad else np.empty(0, np.int64))


def _reread(f, media: _Frames, failed: np.ndarray, reader: Reader, part: "_Part | None"):
    """Frames whose payload text turned out not to be base64: read their lines as json.loads
    does. Each becomes a bad frame (counters kept, no audio) or a bad line (of ``part``, or
    of the file when None). Returns the frames that stay (bad frames with -1 bytes), and
    their rows in ``media``."""
    nbytes = media.table.nbytes.copy()
    keep = np.ones(len(media.table), bool)
    new_bad: list[int] = []
    for k in failed.tolist():
        text = _line_around(f, int(media.where[k]), int(media.where[k] + media.length[k]))
        event, _, frame = parse_line_full(text)
        line = int(media.line_no[k])
        if isinstance(event, Media):  # cannot happen (the bytes were not base64); never lose it
            reader.slow.append(event.payload)
            media.where[k] = -len(reader.slow)
            nbytes[k] = len(event.payload)
            continue
        reason = getattr(event, "reason", "not a media message")
        if line not in reader.examples:
            reader.examples[line] = (reason, text.decode("utf-8", "replace")[:200])
        new_bad.append(line)
        if frame is None:
            keep[k] = False
        else:
            nbytes[k] = -1
    if part is None:
        reader.bad_lines.extend(new_bad)
    elif new_bad:
        part.bad_lines = np.sort(np.concatenate((part.bad_lines, np.array(new_bad, np.int64))))
    media.table = replace(media.table, nbytes=nbytes)
    rows = np.flatnonzero(keep)
    return media.take(rows), rows


def _line_around(f: BinaryIO, lo: int, hi: int, step: int = 4096) -> bytes:
    """The whole line of the file that holds bytes [lo, hi) (a payload): found by reading back
    to the newline before and on to the newline after."""
    start = lo
    while start > 0:
        back = max(0, start - step)
        f.seek(back)
        cut = f.read(start - back).rfind(b"\n")
        if cut >= 0:
            start = back + cut + 1
            break
        start = back
    f.seek(start)
    text = f.read(hi - start)
    while True:
        more = f.read(step)
        cut = more.find(b"\n")
        text += more if cut < 0 else more[:cut]
        if cut >= 0 or not more:
            return text


def _payload_batches(f: BinaryIO, rows: np.ndarray, where: np.ndarray, length: np.ndarray, block_size: int):
    """Decode the base64 payload text of ``rows`` (in file order) from the file, a block at a
    time: yields (rows, joined bytes of the valid ones, their sizes, which were valid)."""
    from telnyx_audio.streams import scan as _scan

    pad = _scan.PAD
    ends = where[rows] + length[rows]
    buf = np.zeros(block_size + 2 * pad, np.uint8)
    i = 0
    while i < rows.size:
        first = int(where[rows[i]])
        j = int(np.searchsorted(ends, first + block_size, side="right"))
        j = min(max(j, i + 1), i + (1 << 14))
        need = int(ends[j - 1]) - first
        if need + 2 * pad > buf.size:
            buf = np.zeros(need + 2 * pad, np.uint8)
        f.seek(first)
        got = fill(f, memoryview(buf)[pad : pad + need])
        buf[pad + got : pad + need] = 0  # a file cut short reads as invalid text
        batch = rows[i:j]
        raw, nbytes, valid = _base64.decode_spans(buf, where[batch] - first + pad, length[batch])
        yield batch, raw, nbytes, valid
        i = j


def _render_from_file(f: BinaryIO, plan_: Plan, media: _Frames, slow: list[bytes],
                      block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2: decode every payload from the file into its planned place.

    Returns the audio and the indices of frames whose payload turned out not to be base64.
    """
    where, frames = media.where, media.table
    out = np.zeros((2, plan_.n_samples), np.int16)
    fast = np.flatnonzero((where >= 0) & (plan_.dest >= 0))  # in file order
    bad: list[np.ndarray] = []
    for rows, raw, nbytes, valid in _payload_batches(f, fast, where, media.length, block_size):
        if not valid.all():  # raw holds the valid rows only
            bad.append(rows[~valid])
            rows, nbytes = rows[valid], nbytes[valid]
        if rows.size:
            render_batch(out, plan_, rows, frames.track[rows], raw, nbytes)
    kept = np.flatnonzero((where < 0) & (plan_.dest >= 0))
    if kept.size:
        payload = np.frombuffer(b"".join(slow[k] for k in (-where[kept] - 1).tolist()), np.uint8)
        render_batch(out, plan_, kept, frames.track[kept], payload, frames.nbytes[kept])
    return out, (np.concatenate(bad) if bad else np.empty(0, np.int64))


def _validate(f: BinaryIO, reader: Reader, media: _Frames, stream: np.ndarray, block_size: int):
    """Before a file of several streams is split: find the payloads that are not base64, so a
    line that is not even JSON is given to a stream by position, as every bad line is, not
    by the stream its layout named. (A file of one stream leaves this to pass 2.)"""
    fast = np.flatnonzero(media.where >= 0)
    failed = [rows[~valid] for rows, _, _, valid in _payload_batches(f, fast, media.where, media.length, block_size)
              if not valid.all()]
    if not failed:
        return media, stream
    media, rows = _reread(f, media, np.concatenate(failed), reader, None)
    return media, stream[rows]


_CODEC_CHECK_FRAMES = 250  # frames (5 s of 20 ms) read both ways to tell G.711 from G.722
_CODEC_MARGIN = 1.0  # naturalness one reading must lead by (measured: 1.8 to 4 on tones and speech,
# 0.7 to 0.8 for G.722 over G.711 on random bytes)
_QUIET = 2.0  # naturalness above this on both readings: near silence (under -40 dBFS), harmless either way


def _g711_or_g722(f, fmt: MediaFormat, media: _Frames, reader: Reader, block_size: int,
                  warnings: list[str]) -> MediaFormat:
    """At 8 bytes per ms G.711 and G.722 look alike: read the first frames of the busiest
    track both ways and keep the reading that sounds natural (speech and tones are smooth;
    a wrong codec gives loud static, see :func:`telnyx_audio.codecs.g711law.naturalness`).

    Raises CaptureError, naming ``--encoding``, when neither reading is clearly better.
    """
    from telnyx_audio.codecs.g711law import naturalness
    from telnyx_audio.codecs.wideband import make_decoder

    good = media.table.nbytes > 0
    if not good.any():
        return fmt
    track = int(np.argmax(np.bincount(media.table.track[good], minlength=2)))
    rows = np.flatnonzero(good & (media.table.track == track))[:_CODEC_CHECK_FRAMES]
    raw, failed = _gather(f, media.where[rows], media.length[rows], media.table.nbytes[rows], reader.slow, block_size)
    if failed.size:  # text that is not base64: pass 2 finds and reports it; judge without it
        return fmt
    g711 = max(naturalness(codecs.decode(raw, law)) for law in ("PCMU", "PCMA"))
    g722 = naturalness(make_decoder("G722", 16000).decode(raw.tobytes()))
    if g722 > g711 + _CODEC_MARGIN:
        warnings.append(f"the audio reads as G.722 (16 kHz), not G.711 (naturalness {g722:+.2f} vs {g711:+.2f}):"
                        " decoded as G722; if wrong, decode with --encoding PCMU or PCMA")
        return MediaFormat("G722", 16000, 1)
    if g711 <= g722 + _CODEC_MARGIN and min(g711, g722) <= _QUIET:
        raise CaptureError(f"160 bytes per 20 ms may be G.711 (PCMU, PCMA) or G.722 and the audio does not tell"
                           f" (naturalness {g711:+.2f} vs {g722:+.2f}): decode with --encoding PCMU, PCMA or G722")
    return fmt


def _settle_law(f, fmt, media, reader, part, recording, warnings, block_size, counts):
    """A start-less G.711 stream: decode as PCMU, and as PCMA where that reads better."""
    scores = [s for _, s in law_scores(recording, "PCMU")]
    score = float(np.mean(scores)) if scores else 0.0
    if score > 0.5:
        fmt = MediaFormat("PCMA", fmt.sample_rate, 1)
        recording, media = _decode(f, fmt, media, reader, part, [], block_size, counts)
    if abs(score) <= 0.5:
        warnings.append(f"the G.711 law is ambiguous (score {score:+.2f}): decoded as {fmt.encoding}; if it sounds"
                        " like static, decode with --encoding PCMA, PCMU or G722")
    else:
        warnings.append(f"the G.711 law read from the audio: {fmt.encoding} (score {score:+.2f})")
    return recording, fmt, media
