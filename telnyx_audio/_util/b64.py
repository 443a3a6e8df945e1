"""Vectorized base64 (RFC 4648 section 4) for many payloads at once.

Rows of equal length are decoded together: each pair of characters becomes 12 bits through
a 65,536-entry table, two pairs make three bytes. A row with a character outside the
alphabet, misplaced padding or a length that is not a multiple of 4 is reported invalid
(its index returned) and the other rows still decode.
"""

from __future__ import annotations

import binascii
from typing import Iterable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

try:  # SIMD base64 when installed; the table decoder below does the same, slower
    import pybase64 as _pybase64
except ImportError:  # pragma: no cover - exercised where pybase64 is absent
    _pybase64 = None

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BAD = np.uint32(1 << 31)
_EQ = ord("=")


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tables from a pair of characters (read as a little-endian uint16) to output bits.

    A quad ``c0 c1 c2 c3`` carries 24 bits: ``q0`` (12 bits of c0 c1) and ``q1`` (of c2 c3).
    The three bytes b0 b1 b2 are laid out as a little-endian uint32 ``b0 | b1<<8 | b2<<16``,
    so ``EVEN[c0c1] | ODD[c2c3]`` is the quad's output and bit 31 flags a bad character.
    ``LAST`` replaces ``ODD`` for the final pair, where "x=" and "==" are allowed.
    """
    six = np.full(256, -1, dtype=np.int64)
    six[np.frombuffer(_ALPHABET, np.uint8)] = np.arange(64)
    idx = np.arange(65536)
    a, b = six[idx & 0xFF], six[idx >> 8]
    ok = (a >= 0) & (b >= 0)
    q = ((a & 63) << 6) | (b & 63)
    bad = np.uint32(_BAD)
    even = np.where(ok, (q >> 4) | ((q & 0xF) << 12), bad).astype(np.uint32)
    odd = np.where(ok, ((q >> 8) << 8) | ((q & 0xFF) << 16), bad).astype(np.uint32)
    # Final pair: "xy" as odd; "x=" keeps x's bits (its low 2 bits must be spare); "==" is 0.
    first, second = idx & 0xFF, idx >> 8
    q_pad = (np.maximum(a, 0) & 63) << 6
    last = np.where((a >= 0) & (second == _EQ), ((q_pad >> 8) << 8) | ((q_pad & 0xFF) << 16), odd)
    last = np.where((first == _EQ) & (second == _EQ), 0, last).astype(np.uint32)
    return even, odd, last


_EVEN, _ODD, _LAST = _tables()


def decode_rows(chars: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode a (n, P) uint8 matrix of base64 text, one payload per row.

    With pybase64 installed (SIMD), the rows' full quads are decoded as one text and the
    padded last quads with the tables here; any bad character sends the whole batch to the
    table decoder, which finds the rows at fault.

    Returns
    -------
    raw : np.ndarray of uint8, shape (total,)
        The decoded bytes of the valid rows, row after row.
    lengths : np.ndarray of int64, shape (n,)
        Decoded length of each row (0 for invalid rows).
    valid : np.ndarray of bool, shape (n,)
    """
    n, width = chars.shape
    if width % 4 or width == 0 or n == 0:
        valid = np.full(n, width == 0)  # an empty payload is valid (and empty)
        return np.empty(0, np.uint8), np.zeros(n, np.int64), valid
    if _pybase64 is not None and width > 4:
        fast = _decode_rows_simd(chars)
        if fast is not None:
            return fast
    return _decode_rows_tables(chars)


def _decode_rows_simd(chars: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    n, width = chars.shape
    last, second = chars[:, -1] == _EQ, chars[:, -2] == _EQ
    pad = int(last[0]) + int(second[0])
    if not ((last == (pad >= 1)).all() and (second == (pad == 2)).all()):
        return None  # mixed padding: the table decoder sorts it out
    body = width - 4 if pad else width
    try:
        main = _pybase64.b64decode(np.ascontiguousarray(chars[:, :body]), validate=True)
    except (binascii.Error, ValueError):
        return None
    nbytes = 3 * (width // 4) - pad
    out = np.empty((n, nbytes), np.uint8)
    out[:, : body // 4 * 3] = np.frombuffer(main, np.uint8).reshape(n, -1)
    if pad:
        tail, _, ok = _decode_rows_tables(np.ascontiguousarray(chars[:, -4:]))
        if not ok.all():
            return None
        out[:, body // 4 * 3 :] = tail.reshape(n, -1)
    return out.reshape(-1), np.full(n, nbytes, np.int64), np.ones(n, bool)


def _decode_rows_tables(chars: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, width = chars.shape
    quads_n = width // 4
    pairs = np.ascontiguousarray(chars).view("<u2").reshape(n, quads_n, 2)
    # Contiguous index arrays make np.take about twice as fast as strided ones.
    quads = np.take(_EVEN, np.ascontiguousarray(pairs[:, :, 0]), mode="clip")
    quads |= np.take(_ODD, np.ascontiguousarray(pairs[:, :, 1]), mode="clip")
    # The last pair may hold the padding: decode it again with the table that allows it.
    quads[:, -1] = np.take(_EVEN, pairs[:, -1, 0], mode="clip") | np.take(_LAST, pairs[:, -1, 1], mode="clip")
    valid = (np.bitwise_or.reduce(quads, axis=1) & _BAD) == 0
    pad = (chars[:, -1] == _EQ).astype(np.int64) + (chars[:, -2] == _EQ)
    # Three byte planes into (n, quads, 3): far cheaper than compacting a (n, quads, 4) view.
    full = np.empty((n, quads_n, 3), np.uint8)
    full[:, :, 0] = quads
    full[:, :, 1] = quads >> 8
    full[:, :, 2] = quads >> 16
    full = full.reshape(n, 3 * quads_n)
    lengths = np.where(valid, full.shape[1] - pad, 0)
    if valid.all() and (pad == pad[0]).all():
        raw = full[:, : full.shape[1] - int(pad[0])].reshape(-1)
    else:
        raw = full[np.arange(full.shape[1]) < lengths[:, None]]
    return raw, lengths, valid


def decode_spans(
    buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode the base64 text ``buf[starts[i] : starts[i] + lengths[i]]`` for every i.


    Returns
    -------
    raw, out_lengths, valid
        As :func:`decode_rows`, rows in the order of ``starts``.
    """
    n = starts.size
    out_len = np.zeros(n, np.int64)
    valid = np.zeros(n, bool)
    if n == 0:
        return np.empty(0, np.uint8), out_len, valid
    if (lengths == lengths[0]).all():
        groups = [(None, int(lengths[0]))]
    else:
        groups = [(np.flatnonzero(lengths == p), int(p)) for p in np.unique(lengths)]
    pieces: list[tuple[np.ndarray | None, np.ndarray]] = []
    for rows, width in groups:
        s = starts if rows is None else starts[rows]
        raw, ln, ok = decode_rows(sliding_window_view(buf, max(width, 1))[s][:, :width])
        if rows is None:
            return raw, ln, ok
        out_len[rows] = ln
        valid[rows] = ok
        pieces.append((rows, raw))
    # Put the groups' bytes back in row order.
    total = int(out_len.sum())
    out = np.empty(total, np.uint8)
    offsets = np.concatenate(([0], np.cumsum(out_len)))
    for rows, raw in pieces:
        assert rows is not None
        ln = out_len[rows]
        dest = np.repeat(offsets[rows] - np.concatenate(([0], np.cumsum(ln)))[:-1], ln)
        out[dest + np.arange(raw.size)] = raw
    return out, out_len, valid


def decode_many(payloads: Iterable[str | bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode an iterable of base64 strings in one call.

    Returns
    -------
    raw : np.ndarray of uint8
        All decoded bytes joined in order (invalid payloads contribute nothing).
    offsets : np.ndarray of int64, shape (n + 1,)
        ``raw[offsets[i]:offsets[i + 1]]`` is payload i.
    bad : np.ndarray of int64
        Indices of payloads that are not valid base64.
    """
    items = [p.encode("ascii", "replace") if isinstance(p, str) else bytes(p) for p in payloads]
    lens = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    joined = b"".join(items) + b"\0"
    buf = np.frombuffer(joined, np.uint8)
    starts = np.concatenate(([0], np.cumsum(lens)))[:-1]
    raw, out_len, valid = decode_spans(buf, starts, lens)
    return raw, np.concatenate(([0], np.cumsum(out_len))), np.flatnonzero(~valid)
