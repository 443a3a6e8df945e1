"""Pass 1 over a capture file: events, bad lines, and every media frame's counters, stream and
where its payload text lies in the file (payloads are decoded later, in place).

Media lines go through the vectorized layouts of :mod:`telnyx_audio.streams.scan` only when every
byte of them is accounted for; any line it cannot prove it reads exactly as ``json.loads``
would (one holding a backslash, i.e. any JSON escape; one whose counters are out of range;
one of a layout not learned) is read by :func:`~telnyx_audio.streams.lines.parse_line_full`
and placed like any other frame.
"""

from __future__ import annotations

from array import array
from dataclasses import replace
from typing import BinaryIO

import numpy as np

from telnyx_audio.streams import scan as _scan
from telnyx_audio.streams.lines import BOM, JSON_SPACE, MAX_COUNTER, parse_line_full
from telnyx_audio.streams.protocol import Connected, Dtmf, Event, Malformed, Mark, Media, Start, Stop, StreamError
from telnyx_audio.model.recording import FrameTable

_MAX_EXAMPLES = 200  # bad lines kept with their text, per file
_MAX_TEMPLATES = 16
_LEARN_PER_BLOCK = 4
_MAX_VARIANTS = 16
_VARIANT_TRIES = 4  # per block; lines no variant takes go to the templates
_PROBE = 64  # lines a newly learned layout is tried on before its variants take over
_BACKSLASH = ord("\\")

EVENT_NAMES: dict[type, str] = {
    Connected: "connected",
    Start: "start",
    Media: "media",
    Dtmf: "dtmf",
    Mark: "mark",
    StreamError: "error",
    Stop: "stop",
}


class Reader:
    """Pass 1 state: what every line of the file was."""

    def __init__(self) -> None:
        self.templates: list[_scan.Template] = []
        self.variants: list[_scan.Variant] = []  # most recently used first, at most _MAX_VARIANTS
        self.lines = 0
        self.bad_lines = array("q")  # line numbers of bad lines
        self.examples: dict[int, tuple[str, str]] = {}  # line -> (reason, text), the first few
        self.events: list[tuple[int, Event]] = []  # (line number, event), every message but media
        self.warnings: list[str] = []
        self.streams: dict[str, int] = {}  # stream_id -> index, in order of first appearance
        self.cut_last_line = False  # the file ended without a newline
        # Per block: (FrameTable, line numbers, stream index (-1 none), payload offsets,
        # payload text lengths); offset -1 - k marks a frame read the slow way, whose bytes
        # are ``slow[k]``.
        self.blocks: list[tuple[FrameTable, np.ndarray, ...]] = []
        self.slow: list[bytes] = []
        self.n_media = 0

    def stream_index(self, stream_id: str | None) -> int:
        if stream_id is None:
            return -1
        return self.streams.setdefault(stream_id, len(self.streams))

    def bad(self, line_no: int, reason: str, text: str) -> None:
        if self.cut_last_line and line_no == self.lines:
            reason = f"truncated: the file ends in the middle of this line ({reason})"
            self.warnings.append(f"line {line_no}: truncated (the file ends in the middle of a message)")
        self.bad_lines.append(line_no)
        if len(self.examples) < _MAX_EXAMPLES:
            self.examples[line_no] = (reason, text[:200])

    def event(self, event: Event, line_no: int) -> None:
        if isinstance(event, Malformed):
            self.bad(line_no, event.reason, event.raw)
            return
        self.stream_index(getattr(event, "stream_id", None))
        self.events.append((line_no, event))

    def block(self, buf: np.ndarray, lo: int, hi: int, file_offset: int) -> None:
        """Read the complete lines in buf[lo:hi] (each ends with a newline); buf[lo] is at
        ``file_offset`` in the file."""
        ends = np.flatnonzero(buf[lo:hi] == 10) + lo
        starts = np.empty_like(ends)
        starts[:1] = lo
        starts[1:] = ends[:-1] + 1
        first_no = self.lines + 1
        self.lines += ends.size
        nonempty = ends > starts
        # A JSON escape can hide anywhere (a payload's "\/", a key's "\u0065"): lines with a
        # backslash are left to json.loads.
        slash = np.flatnonzero(buf[lo:hi] == _BACKSLASH)
        if slash.size:
            escaped = np.zeros(ends.size, bool)
            escaped[np.searchsorted(ends, slash + lo)] = True
            todo, forced = np.flatnonzero(nonempty & ~escaped), np.flatnonzero(nonempty & escaped)
        else:
            todo, forced = np.flatnonzero(nonempty), None
        hits: list[tuple] = []
        if self.variants and todo.size:
            todo = self._match_variants(buf, starts, ends, todo, hits)
        for tpl in self.templates:
            if todo.size == 0:
                break
            todo, got = self._match(tpl, buf, starts, ends, todo)
            if got is not None:
                hits.append(got)
        if forced is not None:
            todo = np.sort(np.concatenate((todo, forced)))
        to_file = file_offset - lo  # buffer index + this = file offset
        parts = [self._slow_path(buf, starts, ends, todo, hits, first_no)]
        # (the slow path appends the hits of layouts it learns to ``hits``)
        parts += [self._fast_part(buf, starts, ends, hit, to_file, first_no) for hit in hits]
        parts = [p for p in parts if p is not None and p[0].size]
        if not parts:
            return
        rows = np.concatenate([p[0] for p in parts])
        table = FrameTable.concat([p[1] for p in parts])
        rest = [np.concatenate([p[i] for p in parts]) for i in range(2, 5)]
        self.n_media += rows.size
        self.blocks.append((table, rows + first_no, *rest))  # put in file order by frames()

    def _slow_path(self, buf, starts, ends, todo, hits, first_no, learn=True):
        """Parse the lines no layout took, one by one; learn layouts from media lines among
        them and take the rest of the block through what was learned (into ``hits``).

        Returns the part (see :meth:`block`) of the media lines read here, or None.
        """
        rows: list[int] = []
        media: list[Media] = []
        bad: list[bool] = []
        learned = 0
        i = 0
        while i < todo.size:
            li = int(todo[i])
            text = buf[starts[li] : ends[li]].tobytes()
            i += 1
            if not text.strip(JSON_SPACE) or (first_no + li == 1 and text.strip(JSON_SPACE) == BOM):
                continue  # a blank line is no message
            event, _, frame = parse_line_full(text)
            if frame is not None:  # a media message with an unusable payload: a bad frame
                self.bad(first_no + li, event.reason, event.raw)
                event = frame
            if not isinstance(event, Media):
                self.event(event, first_no + li)
                continue
            rows.append(li)
            media.append(event)
            bad.append(frame is not None)
            if frame is not None or not learn or learned >= _LEARN_PER_BLOCK or i >= todo.size:
                continue
            if _BACKSLASH in text:  # its layout would only fit lines that come here anyway
                continue
            learned += 1
            tpl = _scan.learn(text, event)
            if tpl is None:
                continue
            self.templates.append(tpl)
            if len(self.templates) > _MAX_TEMPLATES:
                self.templates.sort(key=lambda t: -t.hits)
                self.templates.pop()
            # Probe the new layout on a few lines to learn its fixed-length variants, then
            # take the rest of the block through those (much cheaper per line).
            rest, got = self._match(tpl, buf, starts, ends, todo[i : i + _PROBE])
            if got is not None:
                hits.append(got)
            rest = np.concatenate((rest, todo[i + _PROBE :]))
            if self.variants and rest.size:
                rest = self._match_variants(buf, starts, ends, rest, hits)
            if rest.size:
                rest, got = self._match(tpl, buf, starts, ends, rest)
                if got is not None:
                    hits.append(got)
            todo = np.concatenate((todo[:i], rest))
        if not rows:
            return None
        table, _ = FrameTable.from_media(media)
        is_bad = np.array(bad, bool)
        if is_bad.any():  # -1 bytes: a frame that arrived but cannot be used
            table = replace(table, nbytes=np.where(is_bad, -1, table.nbytes))
        first = len(self.slow)
        self.slow.extend(m.payload for m in media)
        r = np.array(rows, np.int64)
        streams = np.fromiter((self.stream_index(m.stream_id) for m in media), np.int32, len(media))
        # Slow frames are found by their index in ``slow``, stored as -(index + 1).
        where = -(np.arange(first, len(self.slow), dtype=np.int64) + 1)
        return r, table, streams, where, np.zeros(r.size, np.int64)

    def _fast_part(self, buf, starts, ends, hit, to_file, first_no):
        """Frames of lines a layout took: counters, and where their payload text is in the file."""
        rows, track, fields, p0, p1, stream = hit
        length = p1 - p0
        # Decoded size from the text: 3 bytes per 4 characters, less the padding.
        pad = (buf[np.maximum(p1 - 1, p0)] == ord("=")).astype(np.int64) + (buf[np.maximum(p1 - 2, p0)] == ord("="))
        nbytes = length // 4 * 3 - np.where(length > 0, pad, 0)
        # Not base64 by its length, or a counter out of range: the slow path says why.
        odd = (length % 4 != 0) | (fields["chunk"] > MAX_COUNTER) | (fields["timestamp"] > MAX_COUNTER)
        odd |= fields["sequence_number"] > MAX_COUNTER
        slow = None
        if odd.any():
            slow = self._slow_path(buf, starts, ends, rows[odd], [], first_no, learn=False)
            keep = ~odd
            rows, track, p0, length, nbytes = rows[keep], track[keep], p0[keep], length[keep], nbytes[keep]
            fields = {k: v[keep] for k, v in fields.items()}
        table = FrameTable(track, fields["chunk"], fields["timestamp"], fields["sequence_number"], nbytes)
        part = (rows, table, np.full(rows.size, stream, np.int32), p0 + to_file, length)
        if slow is None:
            return part
        return tuple(FrameTable.concat([a, b]) if i == 1 else np.concatenate((a, b))
                     for i, (a, b) in enumerate(zip(part, slow)))

    def _match(self, tpl, buf, starts, ends, todo):
        ok, fields, track, p0, p1, lengths = tpl.match(buf, starts[todo], ends[todo])
        if not ok.any():
            return todo, None
        tpl.hits += int(ok.sum())
        # Remember the fixed-length forms of what matched, to check them faster next time:
        # most recent first, a bounded few (counters grow, old forms stop occurring).
        seen = lengths[ok]
        # One int per row (lengths are small) makes finding the distinct rows a 1-D unique.
        _, first = np.unique(seen @ (np.int64(64) ** np.arange(seen.shape[1], dtype=np.int64)), return_index=True)
        for form in seen[np.sort(first)][:_MAX_VARIANTS]:
            key = (id(tpl), form.tobytes())
            variant = next((v for v in self.variants if v.key == key), None) or _scan.Variant.build(tpl, form)
            if variant is not None:
                self.variants = [variant] + [v for v in self.variants if v is not variant]
        del self.variants[_MAX_VARIANTS:]
        got = (todo[ok], track[ok], {k: v[ok] for k, v in fields.items()}, p0[ok], p1[ok], self.stream_index(tpl.stream))
        return todo[~ok], got

    def _match_variants(self, buf, starts, ends, todo, hits) -> np.ndarray:
        """Take the lines that fit a known variant; return the rest."""
        head_w = max(v.head_width for v in self.variants)
        tail_w = max(v.tail_width for v in self.variants)
        head = _scan._rows(buf, starts[todo], head_w)
        tail = _scan._rows(buf, ends[todo] - tail_w, tail_w)
        length = ends[todo] - starts[todo]
        rest = None  # indices into todo still unmatched; None: all of them
        used = []
        for variant in self.variants[:_VARIANT_TRIES]:
            if rest is None:
                ok, fields = variant.match(head, tail, length)
                idx = np.flatnonzero(ok)
                left = np.flatnonzero(~ok)
            else:
                ok, fields = variant.match(head[rest], tail[rest], length[rest])
                idx, left = rest[ok], rest[~ok]
            if idx.size:
                used.append(variant)
                rows = todo[idx]
                track = np.full(idx.size, variant.track, np.int8)
                fields = {k: v[ok] for k, v in fields.items()}
                hits.append((rows, track, fields, starts[rows] + variant.head, ends[rows] - variant.tail,
                             self.stream_index(variant.stream)))
            rest = left
            if rest.size == 0:
                break
        # Most recently used first: counters grow, so the forms in use drift through a file.
        self.variants = used + [v for v in self.variants if v not in used]
        return todo[rest]

    def frames(self) -> tuple[FrameTable, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All frames in file order: table, line numbers, stream index, payload offsets and
        payload text lengths."""
        if not self.blocks:
            z = np.empty(0, np.int64)
            return FrameTable.empty(), z, np.empty(0, np.int32), z, z
        blocks, self.blocks = self.blocks, []  # handed over once: the per-block pieces are freed
        table = FrameTable.concat([b[0] for b in blocks])
        line_no, *rest = (np.concatenate([b[i] for b in blocks]) for i in range(1, 5))
        if line_no.size > 1 and (line_no[1:] < line_no[:-1]).any():
            # Layouts take a block's lines in turns (inbound, outbound...): one sort for the
            # whole file is cheaper than one per block.
            order = np.argsort(line_no, kind="stable")
            table, line_no, rest = table.take(order), line_no[order], [c[order] for c in rest]
        return (table, line_no, *rest)


def fill(f: BinaryIO, view: memoryview) -> int:
    """Read into ``view`` until it is full or the file ends; returns the bytes read."""
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


#: The longest line read (bytes). Telnyx's largest message (30 s of L16 at 48 kHz in base64)
#: is under 4 MB; a longer line is no message, and growing the buffer for it without end
#: (a file of zeros) would ask for gigabytes. Such a line is skipped as a bad line.
MAX_LINE_BYTES = 64 << 20


def _skip_rest_of_line(f: BinaryIO, scratch: np.ndarray) -> tuple[int, np.ndarray | None]:
    """Read past the next newline; returns the bytes read up to and including it and what
    came after it in the last read (None at the end of the file, no newline found)."""
    skipped = 0
    while True:
        got = fill(f, memoryview(scratch))
        if not got:
            return skipped, None
        hit = np.flatnonzero(scratch[:got] == 10)
        if hit.size:
            return skipped + int(hit[0]) + 1, scratch[int(hit[0]) + 1 : got].copy()
        skipped += got


def read_blocks(f: BinaryIO, reader: Reader, block_size: int) -> None:
    """Feed the file to the reader in blocks of whole lines, in one reused padded buffer.

    A line over :data:`MAX_LINE_BYTES` is skipped (a bad line, its first bytes shown)."""
    pad = _scan.PAD
    cap = block_size
    buf = np.zeros(cap + 2 * pad, np.uint8)
    have = 0
    at = 0  # file offset of buf[pad]
    while True:
        got = fill(f, memoryview(buf)[pad + have : pad + cap])
        total = have + got
        if total < cap:  # end of file
            if getattr(f, "truncated", False):
                reader.warnings.append("the gzip stream is cut off (no end-of-stream marker): read what it holds")
            if total and buf[pad + total - 1] != 10:
                buf[pad + total] = 10  # the last line lacks its newline: maybe cut off
                total += 1
                reader.cut_last_line = True
            if total:
                reader.block(buf, pad, pad + total, at)
            return
        last = _last_newline(buf[pad : pad + total])
        if last < 0 and total >= MAX_LINE_BYTES:  # no message is this long: skip the line
            head = buf[pad : pad + 200].tobytes().decode("utf-8", "replace")
            skipped, rest_bytes = _skip_rest_of_line(f, np.empty(1 << 20, np.uint8))
            reader.lines += 1
            reader.bad(reader.lines, f"a line of over {MAX_LINE_BYTES} bytes ({total + skipped} bytes):"
                                     " no Telnyx message is that long, skipped", head)
            if rest_bytes is None:
                return
            at += total + skipped
            cap = max(block_size, rest_bytes.size)
            buf = np.zeros(cap + 2 * pad, np.uint8)
            buf[pad : pad + rest_bytes.size] = rest_bytes
            have = rest_bytes.size
            continue
        if last < 0:  # a line longer than the buffer: grow and keep reading
            cap = min(cap * 2, MAX_LINE_BYTES)
            bigger = np.zeros(cap + 2 * pad, np.uint8)
            bigger[: pad + total] = buf[: pad + total]
            buf, have = bigger, total
            continue
        reader.block(buf, pad, pad + last + 1, at)
        at += last + 1
        rest = total - (last + 1)
        buf[pad : pad + rest] = buf[pad + last + 1 : pad + total].copy()
        have = rest


def _last_newline(region: np.ndarray) -> int:
    step = 1 << 16
    end = region.size
    while end > 0:
        lo = max(0, end - step)
        hit = np.flatnonzero(region[lo:end] == 10)
        if hit.size:
            return lo + int(hit[-1])
        end = lo
    return -1
