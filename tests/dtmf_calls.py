"""Test calls for redaction: real human speech with DTMF key presses at known times.

The speech is real (data/speech/, sources and licences in data/speech/SOURCES.md):

- ``heldout`` (what the tests score on): the agent (outbound) is Allison Smith's telephone
  prompts, the caller (inbound) CMU ARCTIC speaker awb;
- ``tune`` (what the redaction detector's settings were chosen on, never scored): LibriVox and
  CMU recordings from pocketsphinx's test data.

The caller presses keys (:data:`PRESSES`): tones at several levels (-7 to -34 dBFS a tone),
with twist (the high tone up to 4 dB over or 4.5 dB under the low one: multimon-ng hears
no more), short presses (45 ms,
just over Q.24's 40 ms) and long ones (1.2 s), in silence, over the caller's own speech and
while the agent talks. Each tone also leaks into the agent's leg as an echo 24 dB down,
30 ms late, as a hybrid's would. Everything is deterministic.

:func:`make_call` gives the two tracks at 16 kHz; :func:`jsonl_capture` and
:func:`fork_capture` write them as a WebSocket capture or a fork capture in any codec;
:func:`multimon` runs multimon-ng (Debian's package, a DTMF decoder written by others) on
audio. Run as a script to write the calls for listening::

    .venv/bin/python tests/dtmf_calls.py OUT_DIR [--set tune]
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "data" / "speech"
RATE = 16000
SECONDS = 14.0
KEYS = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
        "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
        "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
        "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633)}


@dataclass(frozen=True)
class Press:
    """One key press on the caller's track: when, which key, how long, how loud (the low
    tone, dBFS of its peak: a full-scale sine is 0 dBFS), twist (high tone minus low, dB)."""

    start_s: float
    digit: str
    duration_s: float
    level_dbfs: float
    twist_db: float
    over: str  # "silence", "caller speech" or "agent speech"

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


#: The key presses of every test call.
PRESSES = (
    Press(3.00, "4", 0.10, -10.0, 0.0, "silence"),
    Press(3.20, "1", 0.05, -16.0, +4.0, "silence"),        # short, reverse twist
    Press(3.35, "1", 0.045, -20.0, -4.5, "silence"),       # shortest, normal twist, the same key again
    Press(3.50, "7", 0.07, -30.0, 0.0, "silence"),         # quiet
    Press(3.70, "#", 1.20, -14.0, -2.0, "silence"),        # long press
    Press(6.10, "0", 0.15, -12.0, 0.0, "caller speech"),
    Press(6.45, "9", 0.10, -14.0, -4.0, "caller speech"),
    Press(9.00, "*", 0.12, -16.0, 0.0, "agent speech"),
    Press(9.30, "2", 0.30, -7.0, +2.0, "agent speech"),     # loud
    Press(12.40, "5", 0.08, -34.0, 0.0, "silence"),        # quietest
)

# What each party says: (track, start in the call (s), file, (from, to) s in it or None, level dBFS).
_SCRIPTS = {
    "heldout": [
        ("outbound", 0.3, "heldout/allison/agent-pass.flac", None, -20.0),
        ("inbound", 5.4, "heldout/awb/arctic_a0007.flac", None, -22.0),
        ("outbound", 8.6, "heldout/allison/vm-enter-num-to-call.flac", None, -20.0),
        ("outbound", 10.9, "heldout/allison/auth-thankyou.flac", None, -20.0),
        ("inbound", 11.6, "heldout/allison/digits-5.flac", None, -26.0),  # the caller's far-end leak
    ],
    "tune": [
        ("outbound", 0.3, "tune/cmu/goforward.flac", None, -20.0),
        ("inbound", 5.4, "tune/librivox/sense_and_sensibility-0880.flac", None, -22.0),
        ("outbound", 8.6, "tune/cmu/something.flac", None, -20.0),
        ("outbound", 11.0, "tune/librivox/sense_and_sensibility-0930.flac", (0.0, 1.5), -20.0),
        ("inbound", 11.6, "tune/cmu/cards-005.flac", (0.0, 0.8), -26.0),
    ],
}
ECHO_DB, ECHO_S = -24.0, 0.030
NOISE_DBFS = -62.0


@dataclass(frozen=True)
class Call:
    """A test call: ``audio`` (2, n) int16 at ``rate``, ``[inbound, outbound]``, and its presses."""

    audio: np.ndarray
    rate: int
    presses: tuple[Press, ...]
    speech: str

    @property
    def digits(self) -> str:
        return "".join(p.digit for p in self.presses)


def _utterance(name: str, span: tuple[float, float] | None, level_dbfs: float) -> np.ndarray:
    import soundfile
    from scipy.signal import resample_poly

    x, sr = soundfile.read(SPEECH / name, dtype="float64")
    if span is not None:
        x = x[int(span[0] * sr) : int(span[1] * sr)]
    if sr != RATE:
        x = resample_poly(x, RATE, sr)
    frame = RATE // 100
    power = np.mean(x[: x.size // frame * frame].reshape(-1, frame) ** 2, axis=1)
    active = power[power > power.max() * 1e-3]
    return x * 10 ** (level_dbfs / 20) / np.sqrt(active.mean())


def tone(press: Press, rate: int = RATE) -> np.ndarray:
    """The press's two sines (float, full scale 1.0), 2 ms ramps at each end."""
    t = np.arange(int(round(press.duration_s * rate))) / rate
    low, high = KEYS[press.digit]
    a_low = 10 ** (press.level_dbfs / 20)
    a_high = 10 ** ((press.level_dbfs + press.twist_db) / 20)
    x = a_low * np.sin(2 * np.pi * low * t) + a_high * np.sin(2 * np.pi * high * t)
    ramp = np.minimum(1.0, np.minimum(np.arange(t.size), np.arange(t.size)[::-1]) / (0.002 * rate))
    return x * ramp


def make_call(speech: str = "heldout", presses: tuple[Press, ...] = PRESSES) -> Call:
    """The test call made from ``speech`` (``"heldout"`` or ``"tune"``)."""
    n = int(SECONDS * RATE)
    rng = np.random.default_rng(20)
    tracks = {name: rng.normal(0, 10 ** (NOISE_DBFS / 20), n) for name in ("inbound", "outbound")}

    def put(track: str, t0: float, sound: np.ndarray) -> None:
        i = int(round(t0 * RATE))
        tracks[track][i : i + sound.size] += sound[: n - i]

    for track, t0, name, span, level in _SCRIPTS[speech]:
        put(track, t0, _utterance(name, span, level))
    for p in presses:
        x = tone(p)
        put("inbound", p.start_s, x)
        put("outbound", p.start_s + ECHO_S, x * 10 ** (ECHO_DB / 20))
    audio = np.stack([np.clip(np.round(tracks[k] * 32767), -32768, 32767).astype(np.int16)
                      for k in ("inbound", "outbound")])
    return Call(audio, RATE, tuple(presses), speech)


# --- captures --------------------------------------------------------------------------------

_AUDIO_RATE = {"PCMU": 8000, "PCMA": 8000, "L16": 16000, "G722": 16000, "OPUS": 16000}
_REPORTED = {"PCMU": 8000, "PCMA": 8000, "L16": 16000, "G722": 8000, "OPUS": 16000}


def payloads(call: Call, encoding: str) -> list[list[bytes]]:
    """Per track, 20 ms payloads of the call in ``encoding`` (PCMU PCMA L16 G722 OPUS)."""
    from telnyx_audio.codecs.outbound import encode_payloads

    rate = _AUDIO_RATE[encoding]
    return [encode_payloads(call.audio[t], call.rate, encoding, target_rate=rate, payload_s=0.02) for t in (0, 1)]


def jsonl_capture(call: Call, encoding: str, path: Path, *, dtmf_events: bool = True,
                  stream_id: str = "redact-test-stream") -> Path:
    """Write the call as the capture server logs a Telnyx stream: wrapped lines, ``start``,
    20 ms media per track, a ``dtmf`` message 80 ms into each press (as Telnyx reports keys)."""
    per = payloads(call, encoding)
    n = min(len(p) for p in per)
    t0 = 1_795_514_400_000_000
    lines = [{"event": "connected", "version": "1.0.0"},
             {"event": "start", "sequence_number": "1", "stream_id": stream_id,
              "start": {"call_control_id": "v3:redact-test", "call_session_id": "sess-redact",
                        "media_format": {"encoding": encoding, "sample_rate": _REPORTED[encoding], "channels": 1}}}]
    keys = {int((p.start_s + 0.08) * 50): p.digit for p in call.presses} if dtmf_events else {}
    seq = 2
    for i in range(n):
        for t, name in enumerate(("inbound", "outbound")):
            lines.append({"event": "media", "sequence_number": str(seq), "stream_id": stream_id,
                          "media": {"track": name, "chunk": str(i + 1), "timestamp": str(i * 20),
                                    "payload": base64.b64encode(per[t][i]).decode()}})
            seq += 1
        if i in keys:
            lines.append({"event": "dtmf", "sequence_number": str(seq), "stream_id": stream_id,
                          "dtmf": {"digit": keys[i]}})
            seq += 1
    lines.append({"event": "stop", "sequence_number": str(seq), "stream_id": stream_id, "stop": {}})
    text = "".join(json.dumps({"received_us": t0 + 10_000 * k, "message": m}, separators=(",", ":")) + "\n"
                   for k, m in enumerate(lines))
    path.write_text(text)
    return path


def fork_capture(call: Call, encoding: str, path: Path, *, events: tuple[tuple[float, str], ...] = ()) -> Path:
    """Write the call as the fork receiver records a fork (``.rtpcap``); ``events`` are keys sent
    as RFC 4733 packets (the caller's audio pauses meanwhile, as senders do)."""
    from telnyx_audio.codecs.outbound import encode_payloads  # noqa: F401 - PyAV ready
    from telnyx_audio.forks.rtpcap import ForkCaptureWriter
    from telnyx_audio.simulators.fork import fork_packets
    from telnyx_audio._util.dsp import resample

    rate = {"PCMU": 8000, "PCMA": 8000, "G722": 16000, "L16": 16000, "OPUS": 48000}[encoding]
    audio = np.stack([resample(call.audio[t], call.rate, rate) for t in (0, 1)])
    packets, _ = fork_packets(audio, codec=encoding, dtmf=list(events), seed=3)
    meta = {"session_id": "redact-test-fork", "call_control_id": "v3:redact-test", "rx_port": 40000,
            "tx_port": 40001, "payload_types": {"96": f"L16/{rate}", "111": "OPUS/48000", "101": "telephone-event/8000"}}
    t0 = 1_795_514_400_000_000
    with ForkCaptureWriter(path, meta) as w:
        for p in packets:
            w.write(p.track, p.data, t0 + int(p.due_s * 1e6))
    return path


# --- the independent detector ----------------------------------------------------------------

def have_multimon() -> bool:
    return shutil.which("multimon-ng") is not None


def multimon(pcm: np.ndarray, rate: int) -> str:
    """The DTMF digits multimon-ng hears in mono int16 audio, in order.

    multimon-ng reads raw signed 16-bit audio at 22,050 Hz (other types need sox, which is
    not installed): the audio is resampled to that rate with libsoxr first.
    """
    import soxr

    x = soxr.resample(np.asarray(pcm, np.float32) / 32768.0, rate, 22050)
    raw = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes()
    out = subprocess.run(["multimon-ng", "-q", "-c", "-a", "DTMF", "-t", "raw", "-"], input=raw,
                         capture_output=True, check=True, timeout=120).stdout.decode()
    return "".join(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("DTMF:"))


def main(argv: list[str]) -> int:
    import soundfile

    out = Path(argv[0]) if argv else Path("dtmf-calls")
    speech = argv[argv.index("--set") + 1] if "--set" in argv else "heldout"
    out.mkdir(parents=True, exist_ok=True)
    call = make_call(speech)
    soundfile.write(out / f"call-{speech}.wav", call.audio.T, call.rate)
    with open(out / f"call-{speech}.csv", "w") as f:
        f.write("start_s,end_s,digit,duration_s,level_dbfs,twist_db,over\n")
        for p in call.presses:
            f.write(f"{p.start_s},{p.end_s:.3f},{p.digit},{p.duration_s},{p.level_dbfs},{p.twist_db},{p.over}\n")
    for enc in ("PCMU", "PCMA", "L16", "G722", "OPUS"):
        jsonl_capture(call, enc, out / f"call-{speech}-{enc.lower()}.jsonl")
    print(f"wrote {out}/call-{speech}.* ({call.digits})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
