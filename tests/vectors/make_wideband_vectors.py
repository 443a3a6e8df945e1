"""Write tests/vectors/wideband/*.json: G.722, OPUS and AMR-WB known answers.

Encoders independent of the decoders under test make the bitstreams; the ``ffmpeg`` command
decodes them for the expected audio:

- G.722: the ``ffmpeg`` command's ``g722`` encoder (raw .g722, cut into 160-byte payloads:
  20 ms each); expected = ``ffmpeg -f g722 -i x.g722`` (16 kHz).
- OPUS: the ``ffmpeg`` command's ``libopus`` encoder (Ogg, demuxed into raw packets by
  PyAV's Ogg demuxer, no decoding) at several packet durations (2.5, 20 with in-band FEC,
  60, 120 ms); expected = ``ffmpeg -c:a libopus -i x.ogg`` at 48 kHz.
- AMR-WB: the VisualOn encoder (Debian's ``libvo-amrwbenc0``: ``apt-get install -y
  libvo-amrwbenc0``) through ctypes (``E_IF_init``/``E_IF_encode``/``E_IF_exit`` of
  enc_if.h give MIME storage-format frames), with DTX on so the pause gives SID and NO_DATA
  frames; packed here (bit arrays, apart from the package's code) into RFC 4867 payloads both
  octet-aligned and bandwidth-efficient, one and two frames per payload, with a CMR. Expected = ``ffmpeg -i x.amr`` (FFmpeg's own
  ``amrwb`` decoder: another implementation than the opencore decoder under test).

Source: espeak-ng speech (16 kHz), a pause, a tone sweep. Run from the repository root:

    .venv/bin/python tests/vectors/make_wideband_vectors.py
"""

from __future__ import annotations

import base64
import ctypes
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

FRAME_BITS = {0: 132, 1: 177, 2: 253, 3: 285, 4: 317, 5: 365, 6: 397, 7: 461, 8: 477, 9: 40, 14: 0, 15: 0}  # TS 26.201

OUT = Path(__file__).with_name("wideband")
TMP = Path(tempfile.mkdtemp())
RATE = 16000


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def pcm_of(path: Path, *args: str) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", *args, "-i", str(path),
                          "-f", "s16le", "-ac", "1", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(out, np.int16)


def source() -> np.ndarray:
    wav = TMP / "speech.wav"
    subprocess.run(["espeak-ng", "-s", "160", "-w", str(wav), "Hello, this is a wideband test call."], check=True)
    ffmpeg("-i", str(wav), "-ar", str(RATE), "-f", "s16le", "-ac", "1", str(TMP / "s.raw"))
    speech = np.fromfile(TMP / "s.raw", np.int16)[RATE // 5 : RATE * 7 // 5]
    t = np.arange(RATE * 2 // 5) / RATE
    sweep = (6000 * np.sin(2 * np.pi * (300 * t + 3000 * t * t))).astype(np.int16)
    pause = np.zeros(RATE * 3 // 5, np.int16)  # DTX: SID and NO_DATA frames
    return np.concatenate([speech, pause, sweep])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write(name: str, **fields: object) -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(fields, indent=1) + "\n")
    print(name, {k: (len(v) if isinstance(v, (list, dict)) else v) for k, v in fields.items() if k != "expected_pcm"})


def g722(pcm: np.ndarray) -> None:
    raw, bits = TMP / "s.raw", TMP / "x.g722"
    pcm.tofile(raw)
    ffmpeg("-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", str(raw), "-c:a", "g722", "-f", "g722", str(bits))
    data = bits.read_bytes()
    expected = pcm_of(bits, "-f", "g722")
    write("g722", encoding="G722", sample_rate=16000, output_rate=16000,
          encoder="ffmpeg -c:a g722", oracle="ffmpeg -f g722 -i x.g722",
          payloads=[b64(data[i : i + 160]) for i in range(0, len(data), 160)],
          expected_pcm=b64(expected.astype("<i2").tobytes()))


def opus(pcm: np.ndarray, name: str, *options: str) -> None:
    import av  # the Ogg demuxer only: packets are not decoded here

    raw, bits = TMP / "s.raw", TMP / f"{name}.ogg"
    pcm.tofile(raw)
    ffmpeg("-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", str(raw), "-c:a", "libopus", *options, str(bits))
    with av.open(str(bits)) as container:
        packets = [bytes(p) for p in container.demux(audio=0) if p.size]
        pre_skip = container.streams.audio[0].codec_context.extradata[10:12]
    expected = pcm_of(bits, "-c:a", "libopus")
    write(name, encoding="OPUS", sample_rate=48000, output_rate=48000,
          encoder="ffmpeg -c:a libopus " + " ".join(options), oracle="ffmpeg -c:a libopus -i x.ogg (48 kHz)",
          pre_skip=int.from_bytes(pre_skip, "little"),
          payloads=[b64(p) for p in packets], expected_pcm=b64(expected.astype("<i2").tobytes()))


def rfc4867(frames: list[bytes], packing: str, cmr: int) -> bytes:
    """Storage-format frames to one RFC 4867 payload, bit by bit (numpy bit arrays; written
    apart from telnyx_audio.codecs.amrwb, whose unpacking the tests check against it)."""
    heads = [(f[0] >> 3 & 15, f[0] >> 2 & 1) for f in frames]
    if packing == "octet-aligned":  # section 4.4: CMR byte, TOC bytes (F FT Q P P), frames
        toc = [(0x80 if i < len(frames) - 1 else 0) | ft << 3 | q << 2 for i, (ft, q) in enumerate(heads)]
        return bytes([cmr << 4, *toc]) + b"".join(f[1:] for f in frames)
    bits = [np.unpackbits(np.array([cmr << 4], np.uint8))[:4]]  # section 4.3: CMR, 6-bit TOCs, speech bits
    for i, (ft, q) in enumerate(heads):
        entry = (1 if i < len(heads) - 1 else 0) << 5 | ft << 1 | q
        bits.append(np.unpackbits(np.array([entry << 2], np.uint8))[:6])
    for f, (ft, _) in zip(frames, heads):
        bits.append(np.unpackbits(np.frombuffer(f[1:], np.uint8))[: FRAME_BITS[ft]])
    return np.packbits(np.concatenate(bits)).tobytes()  # zero-padded to whole bytes


def amr_wb(pcm: np.ndarray) -> None:
    lib = ctypes.CDLL("libvo-amrwbenc.so.0")
    lib.E_IF_init.restype = ctypes.c_void_p
    lib.E_IF_encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.E_IF_exit.argtypes = [ctypes.c_void_p]
    for mode in (8, 2):
        state = lib.E_IF_init()
        out = (ctypes.c_ubyte * 64)()
        frames = []
        for i in range(0, pcm.size - 319, 320):
            block = np.ascontiguousarray(pcm[i : i + 320])
            n = lib.E_IF_encode(state, mode, block.ctypes.data, out, 1)
            frames.append(bytes(out[:n]))
        lib.E_IF_exit(state)
        bits = TMP / f"m{mode}.amr"
        bits.write_bytes(b"#!AMR-WB\n" + b"".join(frames))
        expected = pcm_of(bits)
        types = sorted({f[0] >> 3 & 15 for f in frames})
        payloads = {f"{packing} {per}": [b64(rfc4867(frames[i : i + per], packing, cmr=15 if per == 1 else mode))
                                         for i in range(0, len(frames), per)]
                    for packing in ("octet-aligned", "bandwidth-efficient") for per in (1, 2)}
        write(f"amrwb_mode{mode}", encoding="AMR-WB", sample_rate=16000, output_rate=16000,
              encoder=f"VisualOn libvo-amrwbenc E_IF_encode mode {mode} dtx 1", frame_types=types,
              oracle="ffmpeg -i x.amr (FFmpeg's amrwb decoder)",
              storage_frames=[b64(f) for f in frames],
              payloads=payloads, expected_pcm=b64(expected.astype("<i2").tobytes()))

if __name__ == "__main__":
    audio = source()
    g722(audio)
    opus(audio, "opus_20ms_fec", "-b:a", "24k", "-application", "voip", "-frame_duration", "20",
         "-fec", "1", "-packet_loss", "20")
    opus(audio[: RATE // 2], "opus_2_5ms", "-b:a", "64k", "-application", "lowdelay", "-frame_duration", "2.5")
    opus(audio[: RATE], "opus_60ms", "-b:a", "16k", "-application", "voip", "-frame_duration", "60")
    opus(audio[: RATE], "opus_120ms", "-b:a", "32k", "-frame_duration", "120")
    amr_wb(audio)
