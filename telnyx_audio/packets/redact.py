"""Redacting a packet capture (pcap, pcapng): the same file, frame for frame, with its calls'
RTP redacted and SIP INFO digits masked, checked by reading it back before it is kept.

Every call of the file (:class:`~telnyx_audio.packets.calls.CallReader`) is redacted by
:func:`telnyx_audio.rtp.redact.redact_records`, as a fork capture is: tones found in the
decoded audio and RFC 4733 events muted on both tracks with the guard band, the caller's
spans muted, G.711/L16 samples replaced by the codec's silence and stateful codecs' packets
replaced whole, RFC 4733 event codes masked as ``*``. The file is then patched in place of
those bytes only:

- every frame, record header, timestamp and length stays as it was (the copy has the same
  size); only the bytes of the rewritten RTP payloads, masked SIP INFO digits and the UDP
  checksums of those datagrams change;
- a silence packet shorter than the packet it replaces (Opus, AMR-WB) is padded to the same
  size with RTP padding (RFC 3550 section 5.1, the P bit); a packet of a type that is not
  the call's audio gets its payload zeroed (not emptied: its size is kept);
- the UDP checksum of a rewritten datagram is updated incrementally (RFC 1624) from the
  bytes that changed, so a checksum that was right stays right (IPv4 and IPv6: the pseudo
  header does not change) and one that was absent (0, IPv4) stays absent; one that was
  already wrong (checksum offload on the capturing host) stays wrong by the same amount;
- ``Signal=`` lines of SIP INFO bodies (``application/dtmf-relay``) carried over UDP get
  their key masked as ``*`` (padded with spaces to keep the length), when ``dtmf`` is asked.

Fail closed: a call none of whose RTP packets decodes as audio (a codec nothing here decodes),
a datagram that must change but does not lie whole in one frame (IP fragments
reassembled, a payload cut short by the snap length), a silence packet that cannot be made
the same size, SIP INFO digits over TCP, a call that cannot be decoded: a
:class:`~telnyx_audio.errors.RedactionError`, and nothing is written.

A gzip-compressed capture is decompressed into a temporary file beside ``dest`` and the copy
is written gzip-compressed again (same name; the compressed bytes differ, the capture inside
is patched as above). Memory: the whole (uncompressed) file is held while it is patched.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from telnyx_audio.errors import CaptureError, RedactionError
from telnyx_audio.model.redact import DEFAULT_PAD_S, MASK
from telnyx_audio.packets.calls import CallReader, PacketCall
from telnyx_audio.packets.pcapfile import PacketFile
from telnyx_audio.packets.read import _payload_map, capture_from_call
from telnyx_audio.rtp.datagrams import Records
from telnyx_audio.rtp.packet import parse_packets
from telnyx_audio.rtp.redact import RecordsRedaction, check_redacted, redact_records

__all__ = ["PacketCaptureRedaction", "redact_packet_capture", "udp_checksum_update"]

_SIGNAL = re.compile(rb"\r\nSignal[ \t]*=[ \t]*([^\r\n]*)", re.IGNORECASE)
_CALL_ID = re.compile(rb"\r\n(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]+)", re.IGNORECASE)


@dataclass(frozen=True)
class PacketCaptureRedaction:
    """What :func:`redact_packet_capture` did to each call of a packet capture.

    Attributes
    ----------
    calls : list of RecordsRedaction
        One per call with RTP, in the file's order; each ``capture`` is the redacted copy's
        call read back (``path`` is the copy), with the muted audio.
    sip_info_masked : dict of str to int
        SIP INFO ``Signal=`` keys masked, per Call-ID.
    datagrams_rewritten : int
        UDP datagrams whose bytes changed.
    without_rtp : list of str
        Calls (Call-IDs) that carried no RTP: nothing to mute.
    """

    calls: list[RecordsRedaction]
    sip_info_masked: dict[str, int] = field(default_factory=dict)
    datagrams_rewritten: int = 0
    without_rtp: list[str] = field(default_factory=list)


def udp_checksum_update(checksum: int, old: bytes, new: bytes) -> int:
    """A UDP checksum after ``old`` bytes of its datagram became ``new`` (RFC 1624, eqn. 3).

    ``old`` and ``new`` are the same length and start at an even offset from the UDP header.
    A checksum of 0 (none, IPv4) stays 0; a result of 0 is written as 0xFFFF (RFC 768).

    Parameters
    ----------
    checksum : int
        The checksum field as it was.
    old, new : bytes
        The changed stretch before and after.

    Returns
    -------
    int
        The new checksum field.

    Examples
    --------
    >>> hex(udp_checksum_update(0x1234, b"\\x00\\x01", b"\\x00\\x02"))
    '0x1233'
    >>> udp_checksum_update(0, b"ab", b"cd")
    0
    """
    if len(old) != len(new):
        raise ValueError(f"old and new must be the same length, got {len(old)} and {len(new)} bytes")
    if checksum == 0:
        return 0
    total = (~checksum & 0xFFFF) + (~_sum16(old) & 0xFFFF) + _sum16(new)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    out = ~total & 0xFFFF
    return out or 0xFFFF


def _sum16(data: bytes) -> int:
    """One's-complement sum of big-endian 16-bit words (a last odd byte padded with zero)."""
    if len(data) % 2:
        data += b"\0"
    total = int(np.frombuffer(data, ">u2").sum(dtype=np.uint64))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _records(call: PacketCall, warnings: list[str]) -> tuple[Records, dict[int, Any]]:
    """The call's datagrams as the RTP layer takes them, and its payload types (as
    :func:`~telnyx_audio.packets.read.capture_from_call` builds them)."""
    given = _payload_map(call, warnings)
    labels = [{k: getattr(s, k) for k in ("src", "sport", "dst", "dport")} for s in call.streams]
    records = Records(buf=call.buf, offset=call.offset, length=call.length, track=call.track,
                      received_us=call.arrival_ns // 1000, meta={"session_id": call.key, "source": "pcap"},
                      problems=warnings, received_ns=call.arrival_ns, stream=call.stream, stream_labels=labels)
    return records, given


def _same_size(old: bytes, new: bytes, head: int, pad: int, where: str) -> bytes:
    """``new`` (a redacted RTP datagram, maybe shorter) made as long as ``old``."""
    if len(new) == len(old):
        return new
    payload = new[head : len(new) - pad]
    if not payload:  # emptied (a type that is not the call's audio): zeros, the size kept
        return old[:head] + bytes(len(old) - head - pad) + old[len(old) - pad :]
    fill = len(old) - head - len(payload)
    if len(new) > len(old) or not 1 <= fill <= 255:
        raise RedactionError(f"{where}: the silence packet is {len(new)} bytes where the packet was {len(old)}, and"
                             " cannot be padded to its size (RTP padding holds 1 to 255 bytes)")
    return bytes([old[0] | 0x20]) + old[1:head] + payload + bytes(fill - 1) + bytes([fill])


class _File:
    """The (uncompressed) capture's bytes and where each frame lies in them."""

    def __init__(self, plain: Path) -> None:
        self.data = bytearray(plain.read_bytes())
        numbers, starts, lengths = [], [], []
        for fr in PacketFile(plain):
            if fr.base < 0:  # pragma: no cover - a plain file always gives its places
                raise RedactionError("the reader gives no frame places in this file", os.fspath(plain))
            numbers.append(fr.number)
            starts.append(fr.base + fr.offset)
            lengths.append(fr.caplen)
        self.number = np.concatenate(numbers) if numbers else np.empty(0, np.int64)
        self.start = np.concatenate(starts) if starts else np.empty(0, np.int64)
        self.caplen = np.concatenate(lengths) if lengths else np.empty(0, np.int64)
        self.order = np.argsort(self.start, kind="stable")
        self.sorted_start = self.start[self.order]
        self.changed = 0

    def frame(self, number: int) -> tuple[int, int]:
        """Where frame ``number`` lies: (start, captured length)."""
        i = int(np.searchsorted(self.number, number))
        if i >= self.number.size or self.number[i] != number:
            raise RedactionError(f"frame {number} is not in the file's frame index")
        return int(self.start[i]), int(self.caplen[i])

    def frame_at(self, offset: int) -> tuple[int, int] | None:
        """The frame holding byte ``offset``: (start, captured length), or None."""
        j = int(np.searchsorted(self.sorted_start, offset, side="right")) - 1
        if j < 0:
            return None
        k = int(self.order[j])
        s, n = int(self.start[k]), int(self.caplen[k])
        return (s, n) if offset < s + n else None

    def udp_at(self, start: int, caplen: int, datagram: bytes) -> int | None:
        """Where ``datagram`` (a whole UDP payload) lies in the frame at ``start``, or None."""
        frame = bytes(self.data[start : start + caplen])
        pos = frame.find(datagram, 8)
        while pos >= 0:
            if int.from_bytes(frame[pos - 4 : pos - 2], "big") == len(datagram) + 8:
                return start + pos
            pos = frame.find(datagram, pos + 1)
        return None

    def patch(self, at: int, old: bytes, new: bytes) -> None:
        """Write ``new`` over the UDP payload ``old`` at ``at``, updating the checksum."""
        checksum = int.from_bytes(self.data[at - 2 : at], "big")
        self.data[at - 2 : at] = udp_checksum_update(checksum, old, new).to_bytes(2, "big")
        self.data[at : at + len(new)] = new
        self.changed += 1


def _patch_call(file: _File, call: PacketCall, done: RecordsRedaction, where: str) -> None:
    cols = parse_packets(call.buf, call.offset, call.length)
    for i, new in enumerate(done.datagrams):
        o, n = int(call.offset[i]), int(call.length[i])
        old = call.buf[o : o + n].tobytes()
        if new == old:
            continue
        frame = int(call.frame[i])
        what = f"{where}: call {call.key}, frame {frame}"
        if bool(call.truncated[i]):
            raise RedactionError(f"{what}: a datagram to rewrite is cut short by the snap length")
        head = int(cols.payload_offset[i] - o) if cols.reason[i] == 0 else 12
        pad = n - head - int(cols.payload_length[i]) if cols.reason[i] == 0 else 0
        new = _same_size(old, new, head, pad, what)
        start, caplen = file.frame(frame)
        at = file.udp_at(start, caplen, old)
        if at is None:
            raise RedactionError(f"{what}: a datagram to rewrite does not lie whole in one frame (IP fragments?)")
        file.patch(at, old, new)


def _mask_sip_info(file: _File, where: str) -> dict[str, int]:
    """Mask ``Signal=`` keys of SIP INFO requests over UDP; returns the count per Call-ID."""
    masked: dict[str, int] = {}
    data = file.data
    for m in list(_SIGNAL.finditer(data)):
        value = m.group(1)
        place = file.frame_at(m.start())
        if place is None or not value.strip():
            continue
        start, caplen = place
        frame = bytes(data[start : start + caplen])
        if b"INFO " not in frame:
            continue  # no SIP INFO in this frame: not a key
        inside = m.start() - start
        at = frame.find(b"INFO ", 8)
        while at >= 0:
            ulen = int.from_bytes(frame[at - 4 : at - 2], "big")
            if ulen >= 8 and at - 8 + ulen <= len(frame) and at <= inside < at - 8 + ulen:
                break
            at = frame.find(b"INFO ", at + 1)
        if at < 0:
            raise RedactionError(f"{where}: a SIP INFO key (frame at byte {start}) is not in one UDP datagram"
                                 " (SIP over TCP or fragmented): it cannot be masked")
        new_value = MASK.encode().ljust(len(value))
        if new_value == value:
            continue
        old = frame[at : at - 8 + ulen]
        rel = m.start(1) - start - at
        file.patch(start + at, old, old[:rel] + new_value + old[rel + len(value) :])
        cid = _CALL_ID.search(old)
        key = cid.group(1).strip().decode("utf-8", "replace") if cid else ""
        masked[key] = masked.get(key, 0) + 1
    return masked


def redact_packet_capture(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    dtmf: bool = True,
    spans: Iterable[Any] = (),
    pad_s: float = DEFAULT_PAD_S,
    settings: Mapping[str, float] | None = None,
    media_format: Any = None,
    payload_types: Any = None,
) -> PacketCaptureRedaction:
    """Write a redacted copy of a packet capture (see the module's docstring).

    Parameters
    ----------
    src, dest : str or PathLike
        The pcap or pcapng file (plain or gzip) and where its copy goes (not ``src``).
    dtmf, spans, pad_s, settings, media_format, payload_types
        As for :func:`telnyx_audio.rtp.redact.redact_records`; spans are in seconds of each
        call's timeline and apply to every call of the file.

    Returns
    -------
    PacketCaptureRedaction

    Raises
    ------
    CaptureError
        ``src`` is not a packet capture or cannot be read.
    ValueError, RedactionError
        As for :func:`~telnyx_audio.rtp.redact.redact_records`, or a datagram that cannot be
        rewritten in place; nothing is written.

    Examples
    --------
    >>> import glob, pathlib, tempfile
    >>> for path in glob.glob("/usr/share/sip-tester/g711a.pcap"):
    ...     out = pathlib.Path(tempfile.mkdtemp()) / "g711a.pcap"
    ...     done = redact_packet_capture(path, out, dtmf=False, spans=["1-2"])
    ...     print(len(done.calls), done.datagrams_rewritten, out.stat().st_size == pathlib.Path(path).stat().st_size)
    1 34 True
    """
    where = os.fspath(src)
    src, dest = Path(src), Path(dest)
    if src.resolve() == dest.resolve():
        raise ValueError(f"dest must differ from the source {where!r} (the copy is checked against it)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    plain_tmp = dest.with_name(f".{dest.name}.plain.part")
    try:
        with open(src, "rb") as f:
            compressed = f.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise CaptureError(f"cannot read capture {where!r}: {exc.strerror or exc}") from exc
    try:
        plain = src
        if compressed:
            try:
                with gzip.open(src, "rb") as g, open(plain_tmp, "wb") as out:
                    shutil.copyfileobj(g, out)
            except (OSError, EOFError) as exc:
                raise CaptureError(f"cannot decompress {where!r}: {exc}") from exc
            plain = plain_tmp
        try:
            file = _File(plain)
            reader = CallReader(plain)
            calls = list(reader)
        except OSError as exc:
            raise CaptureError(f"cannot read capture {where!r}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise CaptureError(str(exc)) from exc
        spans = list(spans)
        results: list[tuple[PacketCall, RecordsRedaction]] = []
        without: list[str] = []
        for call in calls:
            if not len(call):
                without.append(call.key)
                continue
            records, given = _records(call, list(call.warnings))
            done = redact_records(records, path=f"{where} [{call.key}]", dtmf=dtmf, spans=spans, pad_s=pad_s,
                                  settings=settings, media_format=media_format,
                                  payload_types={**given, **(dict(payload_types) if payload_types else {})} or None)
            if done.emptied and not _audio_packets(done):
                raise RedactionError(f"call {call.key}: none of its RTP packets can be decoded as audio (the"
                                     f" warnings: {'; '.join(done.capture.report.warnings) or 'none'}): what it"
                                     " holds cannot be heard, so it cannot be checked", where)
            _patch_call(file, call, done, where)
            results.append((call, done))
        del calls
        sip = _mask_sip_info(file, where) if dtmf else {}
        if compressed:
            with gzip.open(tmp, "wb") as g:
                g.write(file.data)
        else:
            tmp.write_bytes(file.data)
        # Read back: every call the same length, the same audio outside the muted ranges,
        # no tone or readable key left.
        check = plain_tmp if compressed else tmp
        if compressed:
            plain_tmp.write_bytes(file.data)
        back = {c.key: c for c in CallReader(check) if len(c)}
        out: list[RecordsRedaction] = []
        for call, done in results:
            again = back.get(call.key)
            if again is None:
                raise RedactionError(f"call {call.key} is not found in the redacted copy", where)
            cap = capture_from_call(again, path=dest, media_format=media_format, payload_types=payload_types)
            check_redacted(done, cap, dtmf=dtmf, settings=settings, path=f"{where} [{call.key}]")
            if _stateful(cap.recording.encoding):  # the decoder's state across a muted stretch: the muted audio
                cap = replace(cap, recording=done.capture.recording)
            out.append(replace(done, capture=cap, original=None))
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plain_tmp.unlink(missing_ok=True)
    return PacketCaptureRedaction(out, sip, file.changed, without)


def _audio_packets(done: RecordsRedaction) -> int:
    """Audio packets of a redacted call (not comfort noise, events or undecodable ones)."""
    stats = getattr(done.capture.report, "rtp", {}) or {}
    return sum(st.packets - st.comfort_noise_packets - st.dtmf_packets - st.unusable_packets for st in stats.values())


def _stateful(encoding: str) -> bool:
    from telnyx_audio.codecs import codec_info

    return bool(encoding) and codec_info(encoding).stateful

