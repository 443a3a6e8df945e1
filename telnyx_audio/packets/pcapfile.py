"""Packet-capture files: classic pcap and pcapng, plain or gzip-compressed, read in chunks.

:class:`PacketFile` yields the capture's frames in batches of numpy columns over one buffer
(:class:`Frames`): where each frame's bytes lie, its captured and original length, its
arrival time in nanoseconds since the Unix epoch, its link type and its frame number (from
1, as Wireshark numbers them). The file is read a chunk at a time, so memory holds one chunk,
not the file.

Record headers are found with whole-array steps: records are variable-length, so each one's
place depends on the one before, but a capture's records repeat their lengths (the packets of
a two-party call are all the same size, or alternate between two sizes). The walk guesses that
the last few lengths repeat, checks every guess of a long run in one numpy step, takes what
holds, and steps record by record in Python only where the pattern breaks (a SIP message
among the RTP).

Formats (the references are the tcpdump/IETF drafts ``draft-ietf-opsawg-pcap`` and
``draft-ietf-opsawg-pcapng``):

- pcap: magic ``a1b2c3d4`` (microseconds) or ``a1b23c4d`` (nanoseconds), either byte order;
  16-byte record headers (seconds, fraction, captured length, original length).
- pcapng: sections (SHB, either byte order, several per file), interfaces (IDB: link type,
  snap length, ``if_tsresol``, ``if_tsoffset``), enhanced (EPB), simple (SPB) and obsolete
  (OPB) packet blocks; other blocks are skipped.

A record cut short at the end of the file, a corrupt record header, a block whose length
is wrong: each is counted in :attr:`PacketFile.problems` and ends the reading of the file
(the frames before it are kept), never an exception.
"""

from __future__ import annotations

import gzip
import mmap
import os
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import numpy as np

from telnyx_audio.packets._problems import Problems

__all__ = ["Frames", "PacketFile", "sniff_format", "LINKTYPE_NAMES", "SLACK"]

_PCAP_MAGIC = {  # first 4 bytes -> (byte order, nanoseconds per fraction unit)
    b"\xd4\xc3\xb2\xa1": ("<", 1000),
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_SHB = 0x0A0D0D0A
_BOM = 0x1A2B3C4D
_IDB, _OPB, _SPB, _EPB = 1, 2, 3, 6
_GZIP = b"\x1f\x8b"
_MAX_RECORD = 1 << 20  # Wireshark's limit is 256 KiB for most link types; more is garbage
_MAX_BLOCK = 1 << 24
#: Zero bytes after each chunk's data, so that fixed-size windows read at any frame fit.
SLACK = 128

#: Link types this package reads (LINKTYPE_* numbers of tcpdump.org).
LINKTYPE_NAMES = {
    0: "BSD loopback",
    1: "Ethernet",
    12: "raw IP",
    14: "raw IP",
    101: "raw IP",
    108: "OpenBSD loopback",
    113: "Linux cooked v1",
    228: "raw IPv4",
    229: "raw IPv6",
    276: "Linux cooked v2",
}


@dataclass
class Frames:
    """A batch of frames as columns over one buffer.

    Attributes
    ----------
    buf : np.ndarray of uint8
        The bytes holding every frame of the batch, followed by :data:`SLACK` zero bytes.
    offset, caplen, origlen : np.ndarray of int64, shape (m,)
        Where each frame's captured bytes start, how many were captured, how long the frame
        was on the wire (``caplen < origlen``: cut short by the snap length).
    ts_ns : np.ndarray of int64
        Arrival time, nanoseconds since the Unix epoch.
    linktype : np.ndarray of int32
    number : np.ndarray of int64
        Frame numbers, from 1 in the file (as Wireshark shows them).
    """

    buf: np.ndarray
    offset: np.ndarray
    caplen: np.ndarray
    origlen: np.ndarray
    ts_ns: np.ndarray
    linktype: np.ndarray
    number: np.ndarray
    #: Where ``buf[0]`` lies in the (uncompressed) file, so that ``base + offset`` is a
    #: frame's place in the file; -1 when the buffer is no copy of the file's bytes (gzip).
    base: int = -1

    def __len__(self) -> int:
        return int(self.offset.size)


def sniff_format(head: bytes) -> str | None:
    """``"pcap"``, ``"pcapng"``, ``"gzip"`` or None, from a file's first bytes.

    Examples
    --------
    >>> sniff_format(bytes.fromhex("d4c3b2a1 0200 0400"))
    'pcap'
    >>> sniff_format(b"\\x0a\\x0d\\x0d\\x0a\\x1c\\x00\\x00\\x00\\x4d\\x3c\\x2b\\x1a")
    'pcapng'
    >>> sniff_format(b'{"event": "connected"}') is None
    True
    """
    if head[:4] in _PCAP_MAGIC:
        return "pcap"
    if head[:4] == b"\x0a\x0d\x0d\x0a" and head[8:12] in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
        return "pcapng"
    if head[:2] == _GZIP:
        return "gzip"
    return None


def _u32s(buf: np.ndarray, at: np.ndarray, dt: str) -> np.ndarray:
    """Unsigned 32-bit integers at each offset (offsets valid), as int64."""
    return np.lib.stride_tricks.sliding_window_view(buf, 4)[at].view(dt + "u4").reshape(-1).astype(np.int64)


def _walk(data: bytes, buf: np.ndarray, at: int, order: str, field: int, add: int, minimum: int,
          maximum: int, align: int, stop_type: int | None) -> tuple[np.ndarray, int, str | None]:
    """Find every complete record from ``at``: their starts, the first byte not read, a problem.

    A record's length is ``add`` plus the 32-bit integer at ``field`` from its start. The
    walk steps in Python until the last lengths repeat with a period of 1 to 4 records, then
    checks a long run of that pattern in one numpy step (see the module docstring). A record
    whose length is out of ``[minimum, maximum]`` or not a multiple of ``align`` stops the
    walk with a problem; a record of type ``stop_type`` (pcapng's section header) stops it
    without one.
    """
    n = len(data)
    unpack = struct.Struct(order + "I").unpack_from
    dt = order
    found: list[np.ndarray] = []
    steps: list[int] = []
    recent: list[int] = []
    cycles = 16
    cooldown = 0
    start = at
    problem = None
    while at + field + 4 <= n:
        if cooldown == 0 and len(recent) >= 2:
            for p in (1, 2, 3, 4):
                if len(recent) >= 2 * p and recent[-p:] == recent[-2 * p : -p]:
                    break
            else:
                p = 0
            if p:
                pattern = np.array(recent[-p:], np.int64)
                period = int(pattern.sum())
                k = max(1, min(cycles, (n - at) // period))
                cand = (at + period * np.arange(k, dtype=np.int64)[:, None]
                        + np.concatenate(([0], np.cumsum(pattern)[:-1]))[None, :]).reshape(-1)
                want = np.tile(pattern, k)
                fits = cand + want <= n
                ok = fits & (cand + field + 4 <= n)
                cand_c = np.where(ok, cand, 0)
                ok &= _u32s(buf, cand_c + field, dt) + add == want
                if stop_type is not None:
                    ok &= _u32s(buf, cand_c, dt) != stop_type
                good = cand.size if ok.all() else int(np.argmin(ok))
                if good:
                    if steps:
                        found.append(np.array(steps, np.int64))
                        steps = []
                    found.append(cand[:good])
                    at = int(cand[good - 1] + want[good - 1])
                    recent = want[max(0, good - 8) : good].tolist()
                if good == cand.size:
                    cycles = min(cycles * 4, 1 << 16)
                    continue
                cycles = 16
                cooldown = 8
                continue
        if cooldown:
            cooldown -= 1
        if stop_type is not None and at > start and unpack(data, at)[0] == stop_type:
            break
        length = unpack(data, at + field)[0] + add
        if length < minimum or length > maximum or length % align:
            problem = f"corrupt record header at byte {at} (length {length}): reading stopped there"
            break
        if at + length > n:
            break
        steps.append(at)
        at += length
        recent.append(length)
        if len(recent) > 8:
            del recent[0]
    if steps:
        found.append(np.array(steps, np.int64))
    starts = np.concatenate(found) if found else np.empty(0, np.int64)
    return starts, at, problem


@dataclass
class _Interface:
    linktype: int
    snaplen: int
    # ticks -> ns: ns = (ticks * mul) // div  (exact for 10^-k, 2^-k resolutions)
    mul: int = 1000
    div: int = 1
    offset_ns: int = 0

    def to_ns(self, ticks: np.ndarray) -> np.ndarray:
        if self.div == 1:
            out = ticks * self.mul
        elif self.mul == 1:
            out = ticks // self.div
        else:  # 2^-k: split to avoid overflow
            shift = int(self.div).bit_length() - 1
            out = (ticks >> shift) * self.mul + (((ticks & (self.div - 1)) * self.mul) >> shift)
        return out + self.offset_ns


def _tsresol(value: int) -> tuple[int, int]:
    """(mul, div) turning ticks of an ``if_tsresol`` into nanoseconds."""
    if value & 0x80:
        return 1_000_000_000, 1 << (value & 0x7F)
    k = value
    return (10 ** (9 - k), 1) if k <= 9 else (1, 10 ** (k - 9))


class PacketFile:
    """Read a pcap or pcapng file (or either gzip-compressed) as batches of :class:`Frames`.

    Parameters
    ----------
    path : str or PathLike
    chunk_bytes : int
        How much of the file is held at once; larger chunks mean fewer, larger numpy steps.

    Attributes
    ----------
    format : str
        ``"pcap"`` or ``"pcapng"`` (``"+gzip"`` appended when compressed).
    problems : Problems
        What could not be read, by reason.
    frames : int
        Frames read so far.

    Raises
    ------
    ValueError
        If the file is neither pcap nor pcapng (checked when the object is made).
    OSError
        If it cannot be opened.

    Examples
    --------
    >>> import tempfile, pathlib, struct
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.pcap"
    >>> rec = struct.pack("<IIII", 1, 500, 4, 60) + b"abcd"
    >>> _ = p.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + rec * 3)
    >>> f = PacketFile(p)
    >>> batch = next(iter(f))
    >>> batch.number.tolist(), batch.ts_ns.tolist()[0], batch.caplen.tolist(), batch.origlen.tolist()[0]
    ([1, 2, 3], 1000500000, [4, 4, 4], 60)
    """

    def __init__(self, path: str | os.PathLike[str], *, chunk_bytes: int = 1 << 24) -> None:
        self.path = os.fspath(path)
        self.chunk_bytes = int(chunk_bytes)
        self.problems = Problems()
        self.frames = 0
        with open(self.path, "rb") as f:
            head = f.read(16)
        kind = sniff_format(head)
        self.compressed = kind == "gzip"
        if self.compressed:
            try:
                with gzip.open(self.path, "rb") as g:
                    head = g.read(16)
            except (OSError, EOFError, zlib.error) as exc:
                raise ValueError(f"{self.path!r} is gzip-compressed but cannot be read: {exc}") from exc
            kind = sniff_format(head)
            if kind not in ("pcap", "pcapng"):
                raise ValueError(f"{self.path!r} is gzip-compressed but holds no pcap or pcapng file")
        if kind is None:
            raise ValueError(f"{self.path!r} is not a packet capture (expected a pcap or pcapng file,"
                             f" or one compressed with gzip; it starts with {head[:8].hex()})")
        self.format = str(kind) + ("+gzip" if self.compressed else "")
        self._kind = kind

    def _open(self) -> BinaryIO:
        if self.compressed:
            return gzip.open(self.path, "rb")  # type: ignore[return-value]
        return open(self.path, "rb")

    def _read(self, f: BinaryIO, n: int) -> bytes:
        into = bytearray(n)
        got = self._readinto(f, memoryview(into))
        return bytes(into[:got])

    def _readinto(self, f: BinaryIO, view: memoryview) -> int:
        """Fill ``view`` as far as the file goes; the bytes read (fewer only at the end)."""
        got = 0
        try:
            while got < len(view):
                k = f.readinto(view[got:])  # type: ignore[attr-defined]
                if not k:
                    break
                got += k
        except EOFError:
            self.problems.add("the gzip stream is cut short: the frames after the cut are missing")
        except (gzip.BadGzipFile, zlib.error, OSError) as exc:
            self.problems.add("the gzip stream is corrupt: reading stopped there", detail=str(exc))
        return got

    def __iter__(self) -> Iterator[Frames]:
        with self._open() as f:
            if self._kind == "pcap":
                yield from self._pcap(f)
            else:
                yield from self._pcapng(f)

    def _chunks(self, f: BinaryIO) -> Iterator[tuple[np.ndarray, memoryview, bool]]:
        """Yield (buffer, data, at_eof): each chunk in a fresh buffer with :data:`SLACK` zero
        bytes after the data (so fixed-size windows never run off its end); the consumer sets
        ``self._keep`` to the offset of the bytes to carry into the next chunk."""
        mapped = self._map_of(f)
        if mapped is not None:
            yield from self._mapped_chunks(f, mapped)
            return
        carry: memoryview | None = None
        want = self.chunk_bytes
        while True:
            have = len(carry) if carry is not None else 0
            self._base = -1 if self.compressed or not f.seekable() else f.tell() - have
            buf = np.empty(have + want + SLACK, np.uint8)
            if have:
                buf[:have] = np.frombuffer(carry, np.uint8)
            carry = None  # a view of the chunk before: let it go
            view = memoryview(buf)
            got = self._readinto(f, view[have : have + want])
            eof = got < want
            size = have + got
            buf[size : size + SLACK] = 0
            data = view[:size]
            self._keep = size
            yield buf, data, eof
            if eof:
                return
            # The bytes after the last whole record, copied out so that the chunk is let go
            # before the next one is made (memory: one chunk at a time).
            carry = memoryview(bytes(data[self._keep :]))
            del buf, view, data
            # A record larger than a chunk: read more at once.
            want = self.chunk_bytes if len(carry) < self.chunk_bytes // 2 else 2 * len(carry)

    def _map_of(self, f: BinaryIO) -> np.ndarray | None:
        """The whole plain file as a read-only array over a map of it (no copy into chunk
        buffers), or None (compressed, not a regular file, no map)."""
        if self.compressed or not os.path.isfile(self.path):
            return None
        try:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return None
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError, AttributeError):
            return None
        if hasattr(mm, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
            mm.madvise(mmap.MADV_SEQUENTIAL)
        return np.frombuffer(mm, np.uint8)

    def _mapped_chunks(self, f: BinaryIO, whole: np.ndarray) -> Iterator[tuple[np.ndarray, memoryview, bool]]:
        """:meth:`_chunks` over a map of the file: each chunk a view of the map (the bytes after
        it stand for the slack), the file's last bytes (from its last record that does not end
        :data:`SLACK` bytes before the end) a small copy with SLACK zero bytes after it."""
        pos = f.tell()
        size = whole.size
        want = self.chunk_bytes
        split = False  # the file's end is read as a view up to its last SLACK bytes, then a small copy
        while True:
            end = min(size, pos + want)
            eof = False
            if end + SLACK <= size:
                buf = whole[pos : end + SLACK]
            elif not split and size - SLACK > pos:
                split = True
                end = size - SLACK
                buf = whole[pos:size]
            else:  # the rest (the last SLACK bytes and any record begun before them), with zero slack
                end, eof = size, True
                buf = np.zeros(end - pos + SLACK, np.uint8)
                buf[: end - pos] = whole[pos:end]
            self._base = pos
            data = memoryview(buf)[: end - pos]
            self._keep = end - pos
            yield buf, data, eof
            if eof:
                return
            left = end - (pos + self._keep)  # bytes after the last whole record
            pos += self._keep
            del buf, data
            want = self.chunk_bytes if left < self.chunk_bytes // 2 else 2 * left

    def _torn(self, leftover: int) -> None:
        if leftover:
            self.problems.add("the last record is cut short (truncated file): ignored",
                              detail=f"{leftover} bytes")

    # -- classic pcap -------------------------------------------------------------------
    def _pcap(self, f: BinaryIO) -> Iterator[Frames]:
        head = self._read(f, 24)
        if len(head) < 24:
            self.problems.add("the pcap file header is cut short: no frames")
            return
        order, frac_ns = _PCAP_MAGIC[head[:4]]
        _major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack(order + "HHiIII", head[4:24])
        linktype = network & 0xFFFF
        if network >> 28 & 1:  # FCS present: its length in bits 29-31
            self.problems.add("frames carry an Ethernet FCS: ignored", detail=f"{(network >> 29) * 2} bytes")
        dt = order
        for buf, data, eof in self._chunks(f):
            starts, stop, problem = _walk(data, buf, 0, order, 8, 16, 16, _MAX_RECORD + 16, 1, None)
            self._keep = stop
            if starts.size:
                heads = np.lib.stride_tricks.sliding_window_view(buf, 16)[starts].view(dt + "u4").reshape(-1, 4)
                heads = heads.astype(np.int64)
                m = starts.size
                yield Frames(
                    buf=buf,
                    offset=starts + 16,
                    caplen=heads[:, 2],
                    origlen=heads[:, 3],
                    ts_ns=heads[:, 0] * 1_000_000_000 + heads[:, 1] * frac_ns,
                    linktype=np.full(m, linktype, np.int32),
                    number=self.frames + 1 + np.arange(m, dtype=np.int64),
                    base=self._base,
                )
                self.frames += m
            if problem:
                self.problems.add("a pcap record header is corrupt: reading stopped there", detail=problem)
                return
            if eof:
                self._torn(len(data) - stop)
                return
            del buf, data, starts  # the chunk goes when the next is read

    # -- pcapng -------------------------------------------------------------------------
    def _pcapng(self, f: BinaryIO) -> Iterator[Frames]:
        order = "<"
        ifaces: list[_Interface] = []
        for buf, data, eof in self._chunks(f):
            at = 0
            frames: list[Frames] = []
            stop_all = False
            while at + 12 <= len(data):
                if struct.unpack_from("<I", data, at)[0] == _SHB:
                    bom = data[at + 8 : at + 12]
                    if bom == b"\x4d\x3c\x2b\x1a":
                        order = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        order = ">"
                    else:
                        self.problems.add("a pcapng section header has no byte-order magic: reading stopped there",
                                          detail=f"byte {at}")
                        stop_all = True
                        break
                    length = struct.unpack_from(order + "I", data, at + 4)[0]
                    if length < 28 or length % 4 or length > _MAX_BLOCK:
                        self._bad_block(at, length)
                        stop_all = True
                        break
                    if at + length > len(data):
                        break
                    if struct.unpack_from(order + "I", data, at + length - 4)[0] != length:
                        self._bad_block(at, length)
                        stop_all = True
                        break
                    ifaces = []
                    at += length
                    continue
                starts, stop, problem = _walk(data, buf, at, order, 4, 0, 12, _MAX_BLOCK, 4, _SHB)
                if starts.size:
                    lengths = _u32s(buf, starts + 4, order)
                    trail = _u32s(buf, starts + lengths - 4, order)
                    bad = np.flatnonzero(trail != lengths)
                    if bad.size:
                        i = int(bad[0])
                        self._bad_block(int(starts[i]), int(trail[i]), trailer=True)
                        starts, lengths = starts[:i], lengths[:i]
                        problem = "wrong"
                    got = self._blocks(buf, data, starts, lengths, order, ifaces)
                    if got is not None:
                        frames.append(got)
                at = stop
                if problem:
                    if problem != "wrong":
                        self._bad_block(at, struct.unpack_from(order + "I", data, at + 4)[0])
                    stop_all = True
                    break
                if at + 12 > len(data) or struct.unpack_from("<I", data, at)[0] != _SHB:
                    break
            self._keep = len(data) if stop_all else at
            if frames:
                out = frames[0] if len(frames) == 1 else Frames(
                    buf, *(np.concatenate([getattr(fr, k) for fr in frames])
                           for k in ("offset", "caplen", "origlen", "ts_ns", "linktype", "number")))
                out.base = self._base
                yield out
                del out
            if stop_all:
                return
            if eof:
                self._torn(len(data) - at)
                return
            del buf, data, frames  # the chunk goes when the next is read

    def _bad_block(self, at: int, length: int, *, trailer: bool = False) -> None:
        what = "its trailing length does not match" if trailer else "its length is impossible"
        self.problems.add("a pcapng block has a wrong length: reading stopped there",
                          detail=f"block at byte {at}: {what} ({length})")

    def _blocks(self, buf: np.ndarray, data: bytes, starts: np.ndarray, lengths: np.ndarray, order: str,
                ifaces: list[_Interface]) -> Frames | None:
        """The packets among pcapng blocks (EPBs in whole-array steps, the rest one by one)."""
        types = _u32s(buf, starts, order)
        epb = types == _EPB
        # Blocks that change state or are rare, in file order (an IDB must precede its packets).
        other = np.flatnonzero(~epb & ((types == _IDB) | (types == _SPB) | (types == _OPB)))
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("pos", "offset", "caplen", "origlen", "ts_ns", "iface")}
        # IDBs before any EPB of theirs: EPBs name interfaces by index, so take all IDBs of
        # this batch first (a later IDB only appends an index no earlier EPB can use).
        spb_rows: list[tuple[int, int, int, int, int, int]] = []
        for i in other.tolist():
            s, ln, t = int(starts[i]), int(lengths[i]), int(types[i])
            if t == _IDB:
                ifaces.append(self._idb(data, s, ln, order))
            elif t == _SPB:
                orig = struct.unpack_from(order + "I", data, s + 8)[0]
                cap = min(orig, ln - 16)
                if ifaces and ifaces[0].snaplen:
                    cap = min(cap, ifaces[0].snaplen)
                spb_rows.append((s, s + 12, cap, orig, -1, 0))
            else:  # obsolete packet block
                iface, _drops, hi, lo, cap, orig = struct.unpack_from(order + "HHIIII", data, s + 8)
                if cap + 32 > ln:
                    self.problems.add("a packet block's captured length runs past the block: skipped",
                                      frame=self.frames + 1, detail=f"byte {s}")
                    continue
                spb_rows.append((s, s + 28, cap, orig, (hi << 32) | lo, iface))
        if epb.any():
            e = starts[epb]
            f = np.lib.stride_tricks.sliding_window_view(buf, 20)[e + 8].view(order + "u4").reshape(-1, 5)
            f = f.astype(np.int64)
            ok = f[:, 3] + 32 <= lengths[epb]
            if not ok.all():
                self.problems.add("a packet block's captured length runs past the block: skipped",
                                  n=int((~ok).sum()), detail=f"byte {int(e[~ok][0])}")
            cols["pos"].append(e[ok])
            cols["offset"].append(e[ok] + 28)
            cols["caplen"].append(f[ok, 3])
            cols["origlen"].append(f[ok, 4])
            cols["ts_ns"].append((f[ok, 1] << 32) | f[ok, 2])
            cols["iface"].append(f[ok, 0])
        if spb_rows:
            a = np.array(spb_rows, np.int64)
            for k, j in (("pos", 0), ("offset", 1), ("caplen", 2), ("origlen", 3), ("ts_ns", 4), ("iface", 5)):
                cols[k].append(a[:, j])
        if not cols["pos"]:
            return None
        c = {k: np.concatenate(v) for k, v in cols.items()}
        if len(cols["pos"]) > 1:
            order_ix = np.argsort(c["pos"], kind="stable")
            c = {k: v[order_ix] for k, v in c.items()}
        m = c["pos"].size
        ticks = c["ts_ns"]
        iface = c["iface"]
        ts_ns = np.zeros(m, np.int64)
        linktype = np.full(m, -1, np.int32)
        known = iface < len(ifaces)
        if not known.all():
            self.problems.add("a packet names an interface no block described: skipped", n=int((~known).sum()),
                              frame=self.frames + 1 + int(np.argmin(known)))
        for k, itf in enumerate(ifaces):
            sel = iface == k
            if sel.any():
                linktype[sel] = itf.linktype
                ts_ns[sel] = itf.to_ns(ticks[sel])
        simple = ticks < 0  # SPBs carry no time: the time of the packet before
        if simple.any():
            self.problems.add("simple packet blocks carry no timestamp: given the time of the packet before",
                              n=int(simple.sum()), frame=self.frames + 1 + int(np.argmax(simple)))
            idx = np.where(~simple, np.arange(m), -1)
            np.maximum.accumulate(idx, out=idx)
            prev = getattr(self, "_last_ts", 0)
            ts_ns = np.where(idx >= 0, ts_ns[np.maximum(idx, 0)], prev)
        keep = known
        if not keep.all():
            c = {k: v[keep] for k, v in c.items()}
            ts_ns, linktype = ts_ns[keep], linktype[keep]
        if ts_ns.size:
            self._last_ts = int(ts_ns[-1])
        n = int(c["pos"].size)
        out = Frames(buf, c["offset"], c["caplen"], c["origlen"], ts_ns, linktype,
                     self.frames + 1 + np.arange(n, dtype=np.int64))
        self.frames += n
        return out

    def _idb(self, data: bytes, s: int, ln: int, order: str) -> _Interface:
        linktype, _res, snaplen = struct.unpack_from(order + "HHI", data, s + 8)
        itf = _Interface(linktype, snaplen)
        at, end = s + 16, s + ln - 4
        while at + 4 <= end:
            code, olen = struct.unpack_from(order + "HH", data, at)
            if code == 0:
                break
            value = data[at + 4 : at + 4 + olen]
            if code == 9 and olen >= 1:
                itf.mul, itf.div = _tsresol(value[0])
            elif code == 14 and olen >= 8:
                itf.offset_ns = struct.unpack(order + "q", value[:8])[0] * 1_000_000_000
            at += 4 + olen + (-olen % 4)
        return itf
