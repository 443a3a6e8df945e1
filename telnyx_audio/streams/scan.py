"""Vectorized reading of JSONL capture files: many media lines per numpy call.

A capture holds hundreds of thousands of media lines that differ only in their counters,
track and payload. :class:`Template` learns the exact byte layout of one media line that
``json.loads`` accepted (keys, order, spacing, ``stream_id``: all literal bytes) with the
variable parts marked: digit counters, the track name and the base64 payload. It then checks
a whole block of lines against that layout at once, through unaligned 8-byte reads, and
pulls the fields out without creating a Python object per line.

A line is taken by a template only if every byte is accounted for: the literal bytes match
exactly, each counter is a run of digits, the track is one of Telnyx's names and the payload
is base64 (checked when it is decoded). Such a line is valid JSON of the same shape as the
line the template was learned from, so it parses to the same event ``json.loads`` would
give. Any other line goes through :func:`telnyx_audio.streams.protocol.parse_message`, and may teach
a new template.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from numpy.lib.stride_tricks import sliding_window_view

import numpy as np

from telnyx_audio.streams.protocol import Media, TRACKS

PAD = 512  # readable bytes kept before and after every block (row reads overrun lines)
_MAX_HEAD = 480  # longest fixed head a Variant may have (its rows are read in one go)
_MAX_TAIL = 256

_TOKEN = re.compile(
    rb'\s+|"(?:[^"\\]|\\.)*"|[{}\[\],:]|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null'
)
# JSON paths of the variable parts of a media line, relative to the message object.
_INT_PATHS = {
    ("sequence_number",): "sequence_number",
    ("media", "chunk"): "chunk",
    ("media", "timestamp"): "timestamp",
}
_TRACK_PATH = ("media", "track")
_PAYLOAD_PATH = ("media", "payload")
#: Key under which a capture-log line wraps the message as received (see telnyx_audio.streams).
WRAP_KEY = "message"
WRAP_TIME_KEY = "received_us"

_TRACK_NAMES = ("inbound", "outbound", "inbound_track", "outbound_track")
_ZERO = ord("0")
_POW10 = 10 ** np.arange(19, dtype=np.uint64)
_ASCII0 = np.uint64(0x3030303030303030)


def _rows(buf: np.ndarray, pos: np.ndarray, width: int) -> np.ndarray:
    """``buf[pos[i] : pos[i] + width]`` for every i, as a contiguous (n, width) uint8 array.

    Indexing the first axis of a sliding-window view copies each row as one block, many
    times faster than gathering single bytes or unaligned words.
    """
    return sliding_window_view(buf, width)[pos]


def _pack(lit: bytes) -> tuple[int, np.ndarray, np.ndarray]:
    """Width (a multiple of 8), masks and values to compare ``lit`` 8 bytes at a time."""
    n = -(-len(lit) // 8)
    padded = lit + b"\0" * (8 * n - len(lit))
    vals = np.frombuffer(padded, "<u8").copy()
    masks = np.full(n, np.uint64(0xFFFFFFFFFFFFFFFF))
    rem = len(lit) % 8
    if rem:
        masks[-1] = np.uint64((1 << (8 * rem)) - 1)
        vals &= masks
    return 8 * n, masks, vals


def _differs(words: np.ndarray, masks: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Per row, whether the (n, k) words differ from ``vals`` under ``masks``.

    OR-ing columns is several times faster than ``.any(axis=1)`` on such narrow rows.
    """
    if vals.size > 6:  # wide: two whole-matrix operations and one reduction
        return np.bitwise_or.reduce((words ^ vals) & masks, axis=1) != 0
    acc = (words[:, 0] ^ vals[0]) & masks[0]
    for j in range(1, vals.size):
        acc |= (words[:, j] ^ vals[j]) & masks[j]
    return acc != 0


def _match_literal(buf: np.ndarray, pos: np.ndarray, packed: tuple) -> np.ndarray:
    width, masks, vals = packed
    return ~_differs(_rows(buf, pos, width).view("<u8"), masks, vals)


def _swar_digits(x: np.ndarray) -> np.ndarray:
    """Values of words holding 8 digit values (0..9, most significant byte first)."""
    x = (x * np.uint64(10) + (x >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    x = (x * np.uint64(100) + (x >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    return (x * np.uint64(10000) + (x >> np.uint64(32))) & np.uint64(0xFFFFFFFF)


def _digits8(w: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Value of the first k (0..8) ASCII digits of each little-endian word (SWAR)."""
    # Move the k digits to the top bytes, put '0's below them, then fold pairs of lanes.
    x = np.where(k > 0, w << (8 * (8 - np.maximum(k, 1))).astype(np.uint64), np.uint64(0))
    fill = np.where(k >= 8, np.uint64(0), _ASCII0 >> (8 * np.minimum(k, 7)).astype(np.uint64))
    return _swar_digits((x | fill) - _ASCII0)


def _leading_digits(window: np.ndarray) -> np.ndarray:
    """How many of each row's 32 bytes, from the first, are ASCII digits (0..32)."""
    stop = np.packbits((window - np.uint8(48)) >= 10, axis=1, bitorder="little")
    bits = stop.view("<u4")[:, 0].astype(np.int64)
    lowest = bits & -bits
    return np.where(bits == 0, 32, np.frexp(lowest.astype(np.float64))[1] - 1)


def _digit_run(buf: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length (0..32) and value of the digit run starting at each pos (values up to 18 digits)."""
    window = _rows(buf, pos, 32)
    length = _leading_digits(window)
    w = window.view("<u8")
    value = _digits8(w[:, 0], np.minimum(length, 8))
    if length.max(initial=0) > 8:  # rare: counters past 99,999,999
        for i in (1, 2):
            k = np.clip(length - 8 * i, 0, 8)
            value = value * _POW10[k] + _digits8(w[:, i], k)
    return length, value.astype(np.int64)


def _digit_run_back(buf: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Length of the digit run ending just before each ``end``."""
    return _leading_digits(np.ascontiguousarray(_rows(buf, end - 32, 32)[:, ::-1]))


def _pack16(lit: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Masks and values comparing ``lit`` (at most 16 bytes) against a 16-byte row."""
    width, masks, vals = _pack(lit)
    fill = np.zeros((16 - width) // 8, np.uint64)
    return np.concatenate((masks, fill)), np.concatenate((vals, fill))


# Track names with their closing quote, each compared on 16 bytes: (masks, values, size, index)
_TRACK_ALTS = [(*_pack16(name.encode() + b'"'), len(name), i % 2) for i, name in enumerate(_TRACK_NAMES)]


@dataclass(eq=False)
class Template:
    """The byte layout of one kind of media line: prefix, base64 payload, suffix."""

    prefix: list[tuple]  # items: ("lit", packed, n, bytes) | ("int", field, quoted) | ("track",)
    suffix: list[tuple]
    hits: int = 0
    stream: str | None = None  # the lines' stream_id: it is among the literal bytes

    @property
    def min_length(self) -> int:
        """The shortest line this layout can describe (every variable at its shortest)."""
        sizes = {"lit": None, "int": 1, "track": 7}
        return sum(it[2] if it[0] == "lit" else sizes[it[0]] for it in self.prefix + self.suffix)

    def match(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray):
        """Check lines [starts, ends) against the layout.

        Returns the mask of lines that fit, the fields of those lines (track, chunk,
        timestamp, sequence_number as arrays; -1 where the layout has no such field), the
        payload spans (start, end) in ``buf`` and the length of each variable part, (n, k)
        (None when nothing fitted), from which :class:`Variant` s are built.
        """
        n = starts.size
        ok = ends - starts >= self.min_length
        fields = {name: np.full(n, -1, np.int64) for name in ("chunk", "timestamp", "sequence_number")}
        track = np.zeros(n, np.int8)
        head_lens: list[np.ndarray] = []  # length of each variable part, for Variants
        tail_lens: list[np.ndarray] = []
        pos = starts.copy()
        # Reads stay inside each line (or the padding after the block) even where an earlier
        # part did not match: positions are clamped to the line, mismatches only clear ok.
        for item in self.prefix:
            if item[0] == "lit":
                size = item[2]
                ok &= pos + size <= ends
                ok &= _match_literal(buf, np.maximum(np.minimum(pos, ends - size), 0), item[1])
                pos += size
            elif item[0] == "int":
                length, value = _digit_run(buf, pos)
                ok &= (length >= 1) & (length <= 18)
                if not item[2]:
                    ok &= (length == 1) | (buf[pos] != _ZERO)
                if item[1]:
                    fields[item[1]] = value
                pos += length
                head_lens.append(length)
            else:
                length = self._track(buf, pos, track, ok)
                pos += length
                head_lens.append(length)
            np.minimum(pos, ends, out=pos)
            if not ok.any():  # a block of lines of another kind: stop early
                return ok, fields, track, pos, pos, None
        back = ends.copy()
        for item in reversed(self.suffix):
            if item[0] == "lit":
                back -= item[2]
                ok &= back >= starts
                np.maximum(back, starts, out=back)
                ok &= _match_literal(buf, back, item[1])
            elif item[0] == "int":
                length = _digit_run_back(buf, back)
                ok &= (length >= 1) & (length <= 18)
                back -= length
                np.maximum(back, starts, out=back)
                if not item[2]:
                    ok &= (length == 1) | (buf[back] != _ZERO)
                if item[1]:
                    fields[item[1]] = _digit_run(buf, back)[1]
                tail_lens.insert(0, length)
            else:
                length = self._track_back(buf, back, track, ok)
                back -= length
                np.maximum(back, starts, out=back)
                tail_lens.insert(0, length)
        ok &= back >= pos
        lens = head_lens + tail_lens
        return ok, fields, track, pos, back, np.stack(lens, axis=1) if lens else np.zeros((n, 0), np.int64)

    @staticmethod
    def _track(buf, pos, track, ok) -> np.ndarray:
        """Match a track name starting at pos; returns its length."""
        words = _rows(buf, pos, 16).view("<u8")
        return _which_track(lambda size: words, track, ok)

    @staticmethod
    def _track_back(buf, end, track, ok) -> np.ndarray:
        """Match a track name ending at end (a quote must precede it); returns its length."""
        length = _which_track(lambda size: _rows(buf, end - size, 16).view("<u8"), track, ok)
        ok &= buf[end - length - 1] == ord('"')
        return length


def _which_track(words_for, track: np.ndarray, ok: np.ndarray) -> np.ndarray:
    n = track.size
    length = np.zeros(n, np.int64)
    found = np.zeros(n, bool)
    for masks, vals, size, index in _TRACK_ALTS:
        hit = ~_differs(words_for(size), masks, vals) & ~found
        length[hit] = size
        track[hit] = index
        found |= hit
    ok &= found
    return length


def learn(line: bytes, event: Media) -> Template | None:
    """Learn the layout of ``line``, a media line that parsed to ``event``; None if unusual."""
    try:
        whole = json.loads(line)
    except (ValueError, RecursionError):
        return None
    # Only a capture-log wrapper's "message" holds the message; elsewhere it is a plain key.
    is_wrapper = isinstance(whole, dict) and WRAP_TIME_KEY in whole and "event" not in whole
    items: list[tuple] = []
    stack: list[list] = []  # [is_object, current key, expecting key]
    seen: set[tuple] = set()
    pos = 0
    payload_seen = False
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        if m is None:
            return None
        tok = m.group()
        pos = m.end()
        top = stack[-1] if stack else None
        if tok[:1] in b" \t\r\n" or tok in (b",", b":", b"[", b"]", b"{", b"}"):
            if tok == b"{":
                stack.append([True, None, True])
            elif tok == b"[":
                stack.append([False, None, False])
            elif tok in (b"}", b"]"):
                stack.pop()
            elif tok == b":" and top:
                top[2] = False
            elif tok == b"," and top and top[0]:
                top[2] = True
            items.append(("lit", tok))
            continue
        if top is not None and top[0] and top[2]:
            top[1] = json.loads(tok)  # a key
            items.append(("lit", tok))
            continue
        path = tuple(frame[1] for frame in stack)
        is_time = is_wrapper and path == (WRAP_TIME_KEY,)
        if is_wrapper:  # the message's paths are those under "message"; the rest are literal
            path = path[1:] if path[:1] == (WRAP_KEY,) else ("", *path)
        is_str = tok[:1] == b'"'
        inner = tok[1:-1] if is_str else tok
        is_var = path in _INT_PATHS or path in (_TRACK_PATH, _PAYLOAD_PATH)
        if is_var or is_time:
            if path in seen:  # a repeated key: leave such lines to json.loads
                return None
            seen.add(path)
        if path in _INT_PATHS or is_time:
            if not inner.isdigit() or len(inner) > 18:
                return None
            name = _INT_PATHS.get(path)
            items += [("lit", b'"')] if is_str else []
            items.append(("int", name, is_str))  # a bare JSON number may not start with 0
            items += [("lit", b'"')] if is_str else []
        elif path == _TRACK_PATH and is_str:
            items += [("lit", b'"'), ("track",), ("lit", b'"')]
        elif path == _PAYLOAD_PATH and is_str:
            if payload_seen:
                return None
            payload_seen = True
            items += [("lit", b'"'), ("b64",), ("lit", b'"')]
        else:
            items.append(("lit", tok))
    if not payload_seen or stack:
        return None
    # Join neighbouring literals, split at the payload.
    merged: list[tuple] = []
    for item in items:
        if item[0] == "lit" and merged and merged[-1][0] == "lit":
            merged[-1] = ("lit", merged[-1][1] + item[1])
        else:
            merged.append(item)
    cut = next(i for i, item in enumerate(merged) if item[0] == "b64")

    def compile_items(seq: list[tuple]) -> list[tuple]:
        return [("lit", _pack(it[1]), len(it[1]), it[1]) if it[0] == "lit" else it for it in seq]

    tpl = Template(compile_items(merged[:cut]), compile_items(merged[cut + 1 :]), stream=event.stream_id)
    # Self-check: the template must read back the very line it came from.
    buf = np.zeros(len(line) + 2 * PAD, np.uint8)
    buf[PAD : PAD + len(line)] = np.frombuffer(line, np.uint8)
    ok, fields, track, *_ = tpl.match(buf, np.array([PAD]), np.array([PAD + len(line)]))
    if not ok[0] or TRACKS[track[0]] != event.track:
        return None
    for name in ("chunk", "timestamp", "sequence_number"):
        want = getattr(event, name)
        if (want if want is not None else -1) != fields[name][0]:
            return None
    return tpl


_NAME_BY_LENGTH = {len(name): (name.encode(), i % 2) for i, name in enumerate(_TRACK_NAMES)}


@dataclass(eq=False)
class Variant:
    """A :class:`Template` with every variable's length fixed: fixed byte offsets throughout.

    Lines of one variant differ only in their digits and payload, so a block of them is
    checked with one read of each line's head and tail and one masked comparison (literal
    bytes equal, digit places digits), and the counters are read from fixed columns.
    """

    head: int  # bytes before the payload
    tail: int  # bytes after it
    head_words: tuple[np.ndarray, np.ndarray]  # literal masks and values, 8 bytes a word
    tail_words: tuple[np.ndarray, np.ndarray]  # the same over the line's end, end-aligned
    track: int
    ints: list[tuple[str | None, int, int, int, bool]]  # (field, side 0 head / 1 tail, column, length, quoted)
    key: tuple = ()  # (template, lengths): which form this is
    stream: str | None = None  # the template's stream_id

    @classmethod
    def build(cls, template: Template, lengths: np.ndarray) -> "Variant | None":
        """The variant of ``template`` whose variables have the given lengths."""
        sides = [[bytearray(), bytearray()] for _ in range(2)]  # data, literal mask
        ints: list[tuple[str | None, int, int, int, bool]] = []
        track = 0
        k = 0
        for side, items in enumerate((template.prefix, template.suffix)):
            data, mask = sides[side]
            for item in items:
                if item[0] == "lit":
                    data += item[3]
                    mask += b"\xff" * len(item[3])
                    continue
                size = int(lengths[k])
                k += 1
                if item[0] == "int":
                    if size > 16:
                        return None
                    ints.append((item[1], side, len(data), size, item[2]))
                    data += b"0" * size
                    mask += b"\0" * size
                else:
                    name, track = _NAME_BY_LENGTH[size]
                    data += name
                    mask += b"\xff" * size
        (head, _), (tail, _) = sides
        if len(head) > _MAX_HEAD or len(tail) > _MAX_TAIL:
            return None
        head_pad, tail_pad = -len(head) % 8, -len(tail) % 8
        head_words = _words_of(*(bytes(x) + b"\0" * head_pad for x in sides[0]))
        tail_words = _words_of(*(b"\0" * tail_pad + bytes(x) for x in sides[1]))
        ints = [(f, side, col + (tail_pad if side else 0), size, q) for f, side, col, size, q in ints]
        return cls(len(head), len(tail), head_words, tail_words, track, ints, (id(template), lengths.tobytes()),
                   template.stream)

    @property
    def head_width(self) -> int:
        return self.head_words[0].size * 8

    @property
    def tail_width(self) -> int:
        return self.tail_words[0].size * 8

    def match(self, head: np.ndarray, tail: np.ndarray, length: np.ndarray):
        """Check rows: ``head`` holds each line's first bytes, ``tail`` its last (end-aligned).

        Returns the mask of lines that fit and their counters (-1 where the layout has none).
        """
        ok = length >= self.head + self.tail
        ok &= ~_differs(head[:, : self.head_width].view("<u8"), *self.head_words)
        tail = tail[:, tail.shape[1] - self.tail_width :]
        if self.tail_width:
            ok &= ~_differs(tail.view("<u8"), *self.tail_words)
        fields = {name: np.full(ok.size, -1, np.int64) for name in ("chunk", "timestamp", "sequence_number")}
        if self.ints:
            # Every counter right-aligned in 16 zeroed bytes, as digit values: one pass checks
            # they are all digits, one SWAR pass reads them all.
            d = np.zeros((ok.size, len(self.ints), 16), np.uint8)
            for j, (_, side, col, size, quoted) in enumerate(self.ints):
                np.subtract((head if side == 0 else tail)[:, col : col + size], np.uint8(48), out=d[:, j, 16 - size :])
                if not quoted and size > 1:  # a bare JSON number may not start with 0
                    ok &= d[:, j, 16 - size] != 0
            x = d.view("<u8")  # (n, ints, 2)
            bad = (x & np.uint64(0xF0F0F0F0F0F0F0F0)) | ((x + np.uint64(0x0606060606060606)) & np.uint64(0x1010101010101010))
            ok &= ~bad.reshape(ok.size, -1).any(axis=1)
            value = _swar_digits(x)
            value = (value[..., 0] * np.uint64(100000000) + value[..., 1]).astype(np.int64)
            for j, (name, *_) in enumerate(self.ints):
                if name:
                    fields[name] = value[:, j]
        return ok, fields


def _words_of(data: bytes, mask: bytes) -> tuple[np.ndarray, np.ndarray]:
    masks = np.frombuffer(mask, "<u8").copy()
    return masks, np.frombuffer(data, "<u8") & masks
