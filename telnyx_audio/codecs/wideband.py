"""Stateful wideband decoders: G.722, OPUS and AMR-WB, fed frames in stream order.

Each decoder carries state from frame to frame (ADPCM predictors, CELP/SILK history), so one
decoder object takes a track's frames in ``chunk`` order, and a missing frame is
*concealed* (:meth:`conceal`) rather than skipped, keeping later audio at its true time.

- G.722 and AMR-WB go through FFmpeg's decoders via PyAV (``g722``; ``libopencore_amrwb``,
  falling back to FFmpeg's own ``amrwb``).
- OPUS goes to libopus itself (the copy PyAV ships, else the system's), through ``ctypes``:
  FFmpeg's decode API has no way to ask libopus for packet-loss concealment or in-band FEC
  (an empty packet means end of stream there), and both are required for lost packets.

Nothing here is imported by ``import telnyx_audio.codecs``; PyAV loads on first use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os
from typing import Sequence

import numpy as np

from telnyx_audio.codecs import amrwb as _amrwb
from telnyx_audio.codecs._rates import OPUS_RATES, stateful_rate
from telnyx_audio.codecs.frames import OPUS_QUARTERS, amrwb_single, frame_samples, gather
from telnyx_audio.errors import CodecUnavailableError, CorruptPacketError, UnsupportedEncodingError

__all__ = [
    "CodecUnavailableError",
    "CorruptPacketError",
    "G722Decoder",
    "OpusDecoder",
    "AmrWbDecoder",
    "make_decoder",
    "OPUS_RATES",
]



class _StreamDecoder:
    """What every stateful decoder does: ``decode_run`` (back-to-back payloads into their
    place, returning how many were corrupt and concealed) and ``conceal`` (a lost stretch)."""

    encoding = ""
    rate = 16000
    #: How a lost stretch is filled (reported per track).
    concealment = ""
    #: Lost frames recovered from in-band FEC so far (Opus).
    fec_frames = 0

    def decode(self, payload: bytes) -> np.ndarray:
        """Decode one payload, the next of the stream, to int16 at :attr:`rate`.

        Raises :class:`CorruptPacketError` if its bytes do not say how long it is.
        """
        raw = np.frombuffer(bytes(payload), np.uint8)
        at, size = np.zeros(1, np.int64), np.array([raw.size], np.int64)
        n = frame_samples(self.encoding, self.rate, raw, at, size)
        if n[0] < 0:
            raise CorruptPacketError(f"{raw.size} bytes are not a {self.encoding} payload")
        out = np.empty(int(n[0]), np.int16)
        self.decode_run(out, raw, at, size, n)
        return out

    def decode_run(self, out: np.ndarray, raw: np.ndarray, starts: np.ndarray, nbytes: np.ndarray,
                   samples: np.ndarray) -> int:  # pragma: no cover - every decoder defines it
        raise NotImplementedError

    def conceal(self, n: int, next_payload: bytes | None = None) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


#: FFmpeg decoders tried for each codec, best first (opencore-amrwb has comfort noise for SID
#: frames and concealment for lost ones; FFmpeg's own amrwb decoder has neither).
FFMPEG_DECODERS: dict[str, tuple[str, ...]] = {"G722": ("g722",), "AMR-WB": ("libopencore_amrwb", "amrwb")}


def _av_context(encoding: str, rate: int):  # noqa: ANN202 - PyAV's type
    """An opened FFmpeg decoder for ``encoding``, or :class:`CodecUnavailableError` saying why not."""
    import av

    names = FFMPEG_DECODERS[encoding]
    for name in names:
        try:
            ctx = av.CodecContext.create(name, "r")
        except (av.codec.codec.UnknownCodecError, av.error.FFmpegError, ValueError):
            continue
        ctx.sample_rate = rate
        ctx.layout = "mono"
        return ctx
    raise CodecUnavailableError(
        encoding, f"the installed FFmpeg (PyAV {av.__version__}) has no {encoding} decoder ({', '.join(names)})")


def _av_decode(ctx, data, encoding: str) -> list:  # noqa: ANN001 - PyAV's types
    """FFmpeg's frames for one packet; an FFmpeg error becomes a :class:`CorruptPacketError`
    (a ``ValueError``: the stream's audio fails with the reason, nothing else is lost)."""
    import av

    try:
        return ctx.decode(av.Packet(data))
    except av.error.FFmpegError as exc:
        raise CorruptPacketError(f"FFmpeg's {encoding} decoder refused the payloads: {exc}") from exc


def _frames_into(out: np.ndarray, frames: Sequence) -> None:  # noqa: ANN001
    """Decoded frames straight into their planned place (a short decode leaves zeros at the
    end): s16 planes read in place, one copy; fltp ones (FFmpeg's own amrwb) scaled to int16."""
    at = 0
    for f in frames:
        n = min(f.samples, out.size - at)
        if f.format.name == "s16":
            out[at : at + n] = np.frombuffer(f.planes[0], np.int16, n)
        else:
            out[at : at + n] = np.clip(np.round(f.to_ndarray().reshape(-1)[:n] * 32768.0), -32768, 32767)
        at += n
    out[at:] = 0


class G722Decoder(_StreamDecoder):
    """G.722 (ITU-T G.722 64 kbit/s sub-band ADPCM) to 16 kHz int16, in stream order.

    G.722 has no framing inside the codec: every byte gives two samples, so joined runs of
    in-order payloads decode in one call (:meth:`decode_run`). FFmpeg has no G.722 concealment
    (G.722 Appendix III is not in it): a lost frame becomes silence and the ADPCM state
    carries on, as a reference decoder without PLC does.

    Examples
    --------
    >>> dec = G722Decoder()
    >>> dec.decode(bytes(160)).shape
    (320,)
    """

    encoding, concealment = "G722", "silence"

    def __init__(self, sample_rate: int = 16000) -> None:
        self.rate = 16000  # whatever Telnyx reports (8000 is the RTP clock): the audio is 16 kHz
        self._ctx = _av_context("G722", 16000)


    def decode_run(self, out: np.ndarray, raw: np.ndarray, starts: np.ndarray, nbytes: np.ndarray,
                   samples: np.ndarray) -> int:
        """Decode back-to-back payloads (``raw[starts[i]:][:nbytes[i]]``) into ``out``, in one call.

        Returns the number of corrupt frames (always 0: every G.722 byte is valid). Empty
        payloads hold no audio: a run of only those never reaches FFmpeg (an empty packet
        there means the end of the stream, and every later decode would fail).
        """
        data = np.ascontiguousarray(gather(raw, starts, nbytes))
        if data.size == 0:
            out[:] = 0
            return 0
        _frames_into(out, _av_decode(self._ctx, data, "G722"))
        return 0

    def conceal(self, n: int, next_payload: bytes | None = None) -> np.ndarray:
        """``n`` samples standing in for a lost frame: silence (FFmpeg has no G.722 PLC)."""
        return np.zeros(n, np.int16)


@functools.lru_cache(maxsize=1)
def _libopus() -> ctypes.CDLL:
    import av

    # The copy PyAV's wheel ships (auditwheel: site-packages/av.libs; delocate: av/.dylibs).
    package = os.path.dirname(av.__file__)
    candidates = sorted(glob.glob(os.path.join(os.path.dirname(package), "av.libs", "libopus*.so*"))
                        + glob.glob(os.path.join(package, ".dylibs", "libopus*.dylib")))
    system = ctypes.util.find_library("opus")
    if system:
        candidates.append(system)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p,
                                    ctypes.c_int, ctypes.c_int]
        lib.opus_packet_has_lbrr.restype = ctypes.c_int
        lib.opus_packet_has_lbrr.argtypes = [ctypes.c_char_p, ctypes.c_int32]
        lib.opus_strerror.restype = ctypes.c_char_p
        return lib
    raise CodecUnavailableError("OPUS", "no libopus found (neither in PyAV's wheel nor on the system)")


class OpusDecoder(_StreamDecoder):
    """Raw Opus packets (one per message, no Ogg) to int16 at a chosen rate, in stream order.

    A lost packet is concealed by libopus: in-band FEC from the next packet where it carries
    one (LBRR data), otherwise packet-loss concealment, never zeros.

    Parameters
    ----------
    sample_rate : int
        One of 8000, 12000, 16000, 24000, 48000 (Telnyx's reported rate).

    Examples
    --------
    >>> dec = OpusDecoder(16000)
    >>> dec.conceal(320).shape
    (320,)
    """

    encoding, concealment = "OPUS", "opus plc/fec"

    def __init__(self, sample_rate: int = 48000) -> None:
        if sample_rate not in OPUS_RATES:
            raise ValueError(f"Opus decodes at {', '.join(map(str, OPUS_RATES))} Hz, got {sample_rate!r}")
        self.rate = int(sample_rate)
        lib = _libopus()
        err = ctypes.c_int(0)
        state = lib.opus_decoder_create(self.rate, 1, ctypes.byref(err))
        if err.value != 0 or not state:
            raise CodecUnavailableError("OPUS", f"opus_decoder_create failed: {lib.opus_strerror(err.value).decode()}")
        self._lib, self._state = lib, state
        self._max = self.rate * 120 // 1000  # the longest packet: 120 ms
        self.fec_frames = 0

    def __del__(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state:
            self._lib.opus_decoder_destroy(state)

    def decode_run(self, out: np.ndarray, raw: np.ndarray, starts: np.ndarray, nbytes: np.ndarray,
                   samples: np.ndarray) -> int:
        """Decode back-to-back packets straight into ``out`` (C-contiguous int16).

        A packet libopus rejects is concealed in its place (PLC). Returns how many were.
        """
        raw = np.ascontiguousarray(raw)
        src, dst = raw.ctypes.data, out.ctypes.data
        decode, state = self._lib.opus_decode, self._state
        corrupt = 0
        for s, nb, ns in zip(starts.tolist(), nbytes.tolist(), samples.tolist()):
            got = decode(state, src + s, nb, dst, ns, 0)
            if got != ns:
                corrupt += 1
                if got < 0 or decode(state, None, 0, dst, ns, 0) != ns:
                    ctypes.memset(dst, 0, 2 * ns)
            dst += 2 * ns
        return corrupt

    def conceal(self, n: int, next_payload: bytes | None = None) -> np.ndarray:
        """``n`` samples for a lost stretch: in-band FEC from ``next_payload`` where it carries
        some (for the last lost frame), packet-loss concealment before that; never zeros.

        Lengths are rounded to libopus's 2.5 ms steps; a remainder under 2.5 ms is silent.
        """
        out = np.zeros(n, np.int16)
        step = self.rate // 400
        usable = n - n % step
        fec = 0
        if next_payload and usable and self._lib.opus_packet_has_lbrr(next_payload, len(next_payload)) == 1:
            # The LBRR data recovers the one frame (of the next packet's frame length) just lost.
            fec = min(usable, int(OPUS_QUARTERS[next_payload[0] >> 3]) * step)
        done, dst = 0, out.ctypes.data
        while done < usable - fec:
            want = min(self._max, usable - fec - done)
            got = self._lib.opus_decode(self._state, None, 0, dst + 2 * done, want, 0)
            if got <= 0:
                break
            done += got
        if fec:
            got = self._lib.opus_decode(self._state, bytes(next_payload), len(next_payload), dst + 2 * done, fec, 1)
            if got > 0:
                self.fec_frames += 1
        return out


#: One lost AMR-WB frame in storage format (the decoder conceals it).
_LOST_FRAME = bytes([_amrwb.SPEECH_LOST << 3 | 0x04])


class AmrWbDecoder(_StreamDecoder):
    """AMR-WB RFC 4867 payloads to 16 kHz int16, in stream order (PyAV, opencore-amrwb).

    Each payload is unpacked (octet-aligned or bandwidth-efficient, detected from its bytes;
    see :mod:`telnyx_audio.codecs.amrwb`) into storage-format frames, which FFmpeg decodes.
    SID frames give comfort noise, NO_DATA frames and lost payloads are concealed by the
    decoder (as SPEECH_LOST frames).

    Examples
    --------
    >>> dec = AmrWbDecoder()
    >>> dec.conceal(320).shape
    (320,)
    """

    encoding, concealment = "AMR-WB", "amr-wb concealment"

    def __init__(self, sample_rate: int = 16000, *, packing: str | None = None) -> None:
        self.rate = 16000
        self.packing = packing
        self._ctx = _av_context("AMR-WB", 16000)

    def _storage(self, raw: np.ndarray, starts: np.ndarray, nbytes: np.ndarray,
                 samples: np.ndarray | None = None) -> tuple[bytes, int]:
        """The payloads' frames as joined storage-format frames (one-frame payloads without a
        loop), and how many payloads fit no packing: each of those becomes lost frames
        (SPEECH_LOST, concealed by the decoder) for the samples planned for it."""
        oa, be, ft_oa, ft_be = amrwb_single(raw, starts, nbytes)
        if self.packing is None:
            lone = np.flatnonzero(oa ^ be)
            if lone.size:
                self.packing = "octet-aligned" if oa[lone[0]] else "bandwidth-efficient"
        if self.packing == "octet-aligned":
            fast, be = oa, np.zeros_like(be)
        elif self.packing == "bandwidth-efficient":
            fast, oa = be, np.zeros_like(oa)
        else:
            fast = np.zeros_like(oa)
        if fast.all() and oa.all():  # octet-aligned: a frame is its payload after the CMR byte
            return gather(raw, starts + 1, nbytes - 1).tobytes(), 0
        pieces: list[bytes] = [b""] * starts.size
        if oa.any():
            for i in np.flatnonzero(oa).tolist():
                s = int(starts[i])
                pieces[i] = raw[s + 1 : s + int(nbytes[i])].tobytes()
        if be.any():
            self._be_pieces(raw, starts, nbytes, ft_be, np.flatnonzero(be), pieces)
        corrupt = 0
        for i in np.flatnonzero(~fast).tolist():
            data = raw[int(starts[i]) : int(starts[i] + nbytes[i])].tobytes()
            try:
                try:
                    frames, packing = _amrwb.unpack(data, self.packing)
                except ValueError:  # fits only the other packing: read it so rather than lose it
                    frames, packing = _amrwb.unpack(data)
            except ValueError:  # fits neither (the quick check took it for a frame): concealed
                corrupt += 1
                lost = int(samples[i]) // 320 if samples is not None else 1
                pieces[i] = _LOST_FRAME * max(lost, 0)
                continue
            self.packing = self.packing or packing
            pieces[i] = b"".join(frames)
        return b"".join(pieces), corrupt

    @staticmethod
    def _be_pieces(raw: np.ndarray, starts: np.ndarray, nbytes: np.ndarray, ft: np.ndarray, idx: np.ndarray,
                   pieces: list[bytes]) -> None:
        # Bandwidth-efficient, one frame: the speech bits start at bit 10 (after the CMR and
        # the TOC entry); shift them left by 10 bits behind a storage header byte, per size.
        for length in np.unique(nbytes[idx]).tolist():
            grp = idx[nbytes[idx] == length]
            rows = raw[starts[grp][:, None] + np.arange(length)].astype(np.uint16)
            rows = np.concatenate([rows, np.zeros((grp.size, 1), np.uint16)], axis=1)
            ftype = int(ft[grp[0]])  # equal length, one frame: one frame type (sizes differ by type)
            nbody = (_amrwb.FRAME_BITS[ftype] + 7) // 8
            body = ((rows[:, 1 : 1 + nbody] << 2) | (rows[:, 2 : 2 + nbody] >> 6)) & 0xFF
            tail = 8 * nbody - _amrwb.FRAME_BITS[ftype]
            if nbody:
                body[:, -1] &= (0xFF << tail) & 0xFF
            q = rows[:, 1] >> 6 & 1
            frames = np.concatenate([(ftype << 3 | q << 2)[:, None], body], axis=1).astype(np.uint8)
            for i, f in zip(grp.tolist(), frames):
                pieces[i] = f.tobytes()

    def decode_run(self, out: np.ndarray, raw: np.ndarray, starts: np.ndarray, nbytes: np.ndarray,
                   samples: np.ndarray) -> int:
        """Decode back-to-back payloads into ``out``, their frames joined into one packet."""
        storage, corrupt = self._storage(raw, starts, nbytes, samples)
        _frames_into(out, _av_decode(self._ctx, storage, "AMR-WB") if storage else [])
        return corrupt

    def conceal(self, n: int, next_payload: bytes | None = None) -> np.ndarray:
        """``n`` samples for a lost stretch: the decoder's own concealment (SPEECH_LOST frames,
        one packet for the whole stretch)."""
        out = np.empty(n, np.int16)
        lost = _LOST_FRAME * -(-n // 320)
        _frames_into(out, _av_decode(self._ctx, lost, "AMR-WB"))
        return out


_DECODERS = {"G722": G722Decoder, "OPUS": OpusDecoder, "AMR-WB": AmrWbDecoder}


def make_decoder(encoding: str, sample_rate: int):  # noqa: ANN201 - one of the decoder classes
    """A fresh stateful decoder for ``encoding`` (canonical name) at Telnyx's reported rate.

    Examples
    --------
    >>> make_decoder("G722", 8000).rate
    16000
    """
    cls = _DECODERS.get(encoding)
    if cls is None:
        raise UnsupportedEncodingError(encoding, tuple(_DECODERS))
    return cls(stateful_rate(encoding, sample_rate))
