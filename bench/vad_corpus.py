"""Labelled speech for the VAD benchmark: real human recordings that packages ship, and espeak-ng.

Real recordings (fetched once with pip from PyPI into a cache folder, or read from Debian's
alsa-utils where installed):

- TUNE set, the recordings detect_speech's defaults were tuned on: the test recordings in
  the ``pocketsphinx`` 5.1.1 sdist (LibriVox readings, public domain; CMU's "cards",
  "forever", "go forward", numbers and TIDIGITS utterances; BSD-style licence), ~60 s.
- SCORE set, never seen by tuning: ``pyannote.audio`` 4.0.7's sample (30 s of a two-person
  AMI meeting, CC BY 4.0, with its human speaker reference ``sample.rttm``), the CMU ARCTIC
  utterance in the ``pysptk`` 1.0.1 sdist, and the eight spoken words of Debian
  ``alsa-utils`` (/usr/share/sounds/alsa), ~45 s.

- ASTERISK set, also never seen by tuning (added as a second held-out set once the detector
  was final): every sixth 2.5-6 s prompt of Debian's ``asterisk-core-sounds-en-wav`` 1.6.1
  (Allison Smith's telephone prompts, 8 kHz, CC BY-SA 3.0), ~70 s, fetched with
  ``apt-get download`` (no root needed) and unpacked with ``dpkg-deb``.

Labels, per 10 ms frame, come from the clean 16 kHz recording by an energy reference that
shares nothing with the detectors: 80 Hz high-pass; frame energy in dB; a frame is speech
when it stands 15 dB over the recording's own noise floor (its 5th percentile) and within
45 dB of its loud speech (its 99th percentile); gaps under 150 ms inside speech (stop
closures, the breath between words) are bridged and islands under 40 ms dropped. On the
AMI sample this reference agrees with the human RTTM (printed by the benchmark).

Calls are built from the utterances with pauses of 0.3 to 2.5 s between them, filled with
digital silence, low room noise or telephone-band noise; noise conditions add telephone-band
noise over everything at a given SNR (speech power over noise power). For tuning only, a
meeting-like call (DENSE) joins them with 0.1-0.6 s pauses of digital silence at levels up to
14 dB apart.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import butter, resample_poly, sosfilt

FRAME_S = 0.01
RATE = 16000
CACHE = Path(os.environ.get("TELNYX_AUDIO_CORPUS", Path.home() / ".cache" / "telnyx-audio" / "vad-corpus"))
ALSA = Path("/usr/share/sounds/alsa")
ALSA_WORDS = ["Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right", "Side_Left", "Side_Right"]
POCKETSPHINX = "pocketsphinx==5.1.1"
PYANNOTE = "pyannote-audio==4.0.7"
PYSPTK = "pysptk==1.0.1"


def _pip_download(spec: str, dest: Path, sdist: bool) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    found = [p for p in dest.iterdir() if p.suffix in (".whl", ".gz")]
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), spec]
        if sdist:
            cmd[5:6] = ["--no-binary", ":all:", "-vv"]  # verbose: the log names the file's address
        run = subprocess.run(cmd, capture_output=True, text=True)
        found = [p for p in dest.iterdir() if p.suffix in (".whl", ".gz")]
        if not found and sdist:
            # pip builds an sdist's metadata before saving it, and some (pysptk, pocketsphinx) do not
            # build here; only their data is wanted, so fetch the file pip found on PyPI as it is.
            import requests

            name, version = spec.split("==")
            links = re.findall(rf"https://files\.pythonhosted\.org/\S+?/{re.escape(name.replace('-', '_'))}-{re.escape(version)}\.tar\.gz"
                               rf"|https://files\.pythonhosted\.org/\S+?/{re.escape(name)}-{re.escape(version)}\.tar\.gz",
                               run.stdout + run.stderr)
            if not links:
                raise RuntimeError(f"pip found no sdist for {spec}:\n{run.stderr[-2000:]}")
            reply = requests.get(links[0], timeout=120)
            reply.raise_for_status()
            target = dest / links[0].rsplit("/", 1)[1]
            target.write_bytes(reply.content)
            found = [target]
        elif not found:
            raise RuntimeError(f"pip download {spec} failed:\n{run.stderr[-2000:]}")
    return found[0]


def _read(data: bytes, name: str) -> np.ndarray:
    """float32 mono at 16 kHz from a WAV or a headerless 16 kHz int16 .raw file."""
    import io

    import soundfile

    if name.endswith(".raw"):
        x, sr = np.frombuffer(data, "<i2").astype(np.float32) / 32768, 16000
    else:
        x, sr = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
        x = x[:, 0]
    return to_rate(x, sr, RATE)


def to_rate(x: np.ndarray, sr: int, rate: int) -> np.ndarray:
    if sr == rate:
        return x.astype(np.float32)
    g = gcd(sr, rate)
    return resample_poly(x, rate // g, sr // g).astype(np.float32)


def tune_set() -> dict[str, np.ndarray]:
    """The pocketsphinx sdist's test recordings, 16 kHz float32, by name."""
    sdist = _pip_download(POCKETSPHINX, CACHE / "pocketsphinx", sdist=True)
    out = {}
    with tarfile.open(sdist) as tar:
        for m in tar.getmembers():
            rel = m.name.split("/test/data/", 1)[-1]
            if "/test/data/" in m.name and (rel.startswith(("librivox/", "cards/", "forever/")) and rel.endswith(".wav")
                                            or rel in ("goforward.raw", "numbers.raw", "something.raw", "tidigits/dhd.2934z.raw")):
                out[rel] = _read(tar.extractfile(m).read(), rel)
    return dict(sorted(out.items()))


def score_set() -> tuple[dict[str, np.ndarray], list[tuple[float, float]]]:
    """The held-out recordings, 16 kHz float32, by name; and the AMI sample's human speech spans."""
    out = {}
    wheel = _pip_download(PYANNOTE, CACHE / "pyannote", sdist=False)
    with zipfile.ZipFile(wheel) as z:
        out["ami/sample.wav"] = _read(z.read("pyannote/audio/sample/sample.wav"), "sample.wav")
        rttm = z.read("pyannote/audio/sample/sample.rttm").decode()
    spans = [(float(f[3]), float(f[3]) + float(f[4])) for f in (line.split() for line in rttm.splitlines()) if f]
    sdist = _pip_download(PYSPTK, CACHE / "pysptk", sdist=True)
    with tarfile.open(sdist) as tar:
        m = next(m for m in tar.getmembers() if m.name.endswith("arctic_a0007.wav"))
        out["arctic/a0007.wav"] = _read(tar.extractfile(m).read(), m.name)
    for word in ALSA_WORDS:
        path = ALSA / f"{word}.wav"
        if path.exists():
            out[f"alsa/{word}.wav"] = _read(path.read_bytes(), path.name)
    return out, spans


def asterisk_set() -> dict[str, np.ndarray]:
    """Every sixth 2.5-6 s prompt of asterisk-core-sounds-en-wav, 16 kHz float32, by name."""
    import soundfile

    folder = CACHE / "asterisk"
    root = folder / "x" / "usr" / "share" / "asterisk" / "sounds" / "en_US_f_Allison"
    if not root.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "asterisk-core-sounds-en-wav=1.6.1-1"], cwd=folder, check=True, capture_output=True)
        deb = next(folder.glob("asterisk-core-sounds-en-wav_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(folder / "x")], check=True)
    prompts = [p for p in sorted(root.glob("*.wav")) if 2.5 <= soundfile.info(p).duration <= 6.0]
    return {f"asterisk/{p.name}": _read(p.read_bytes(), p.name) for p in prompts[::6]}


def reference_labels(x: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Speech per 10 ms frame of a clean recording (see the module docstring)."""
    frame = int(FRAME_S * rate)
    hp = sosfilt(butter(4, 80, btype="highpass", fs=rate, output="sos"), x)
    n = hp.size // frame
    energy = 10 * np.log10(np.mean(hp[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    floor, loud = np.percentile(energy, 5), np.percentile(energy, 99)
    label = (energy > floor + 15) & (energy > loud - 45)
    return _tidy(label, bridge=15, shortest=4)


def _tidy(label: np.ndarray, bridge: int, shortest: int) -> np.ndarray:
    label = label.copy()
    for value, limit in ((False, bridge), (True, shortest)):
        edges = np.diff(np.concatenate(([0], (label == value).astype(np.int8), [0])))
        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            if e - s < limit and (value or (s > 0 and e < label.size)):
                label[s:e] = not value
    return label


def spans_to_labels(spans: list[tuple[float, float]], n: int) -> np.ndarray:
    label = np.zeros(n, bool)
    for s, e in spans:
        label[int(round(s / FRAME_S)) : int(round(e / FRAME_S))] = True
    return label


def telephone_noise(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise in the telephone band (300-3400 Hz), half pink, half white."""
    white = rng.normal(0, 1, n)
    pink = np.cumsum(white) - np.convolve(np.cumsum(white), np.ones(64) / 64, mode="same")
    sos = butter(4, [300, min(3400, rate / 2 - 100)], btype="bandpass", fs=rate, output="sos")
    band = sosfilt(sos, 0.5 * pink / pink.std() + 0.5 * white)
    return (band / band.std()).astype(np.float32)


def room_noise(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power low room noise: brown-ish rumble under 500 Hz plus a little hiss."""
    rumble = sosfilt(butter(2, 500, fs=rate, output="sos"), rng.normal(0, 1, n))
    noise = rumble / rumble.std() + 0.1 * rng.normal(0, 1, n)
    return (noise / noise.std()).astype(np.float32)


PAUSES = {"digital silence": None, "room noise": (room_noise, -60.0), "phone-band noise": (telephone_noise, -55.0)}
# For tuning only: a meeting-like call, short pauses (0.1-0.6 s, digital silence) between
# utterances whose levels differ by up to 14 dB (near and far talkers); noise goes over it all.
DENSE = "short, levels vary"


def build_call(utterances: list[np.ndarray], labels: list[np.ndarray], pause: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Utterances (16 kHz) joined by pauses of 0.3-2.5 s filled as ``pause`` says (or as DENSE says); audio and labels."""
    rng = np.random.default_rng(seed)
    frame = int(FRAME_S * RATE)
    pieces, marks = [], []
    dense = pause == DENSE
    for x, lab in zip(utterances, labels):
        gap = int(rng.uniform(*((0.1, 0.6) if dense else (0.3, 2.5))) / FRAME_S) * frame
        fill = None if dense else PAUSES[pause]
        noise = np.zeros(gap, np.float32) if fill is None else fill[0](gap, RATE, rng) * np.float32(10 ** (fill[1] / 20))
        x = x[: lab.size * frame] * np.float32(10 ** (rng.uniform(-14, 0) / 20) if dense else 1)
        pieces += [noise, x]
        marks += [np.zeros(gap // frame, bool), lab[: x.size // frame]]
    pieces.append(np.zeros(frame * 50, np.float32))
    marks.append(np.zeros(50, bool))
    return np.concatenate(pieces), np.concatenate(marks)


def condition(clean: np.ndarray, label: np.ndarray, rate: int, snr_db: float | None, seed: int) -> np.ndarray:
    """The call at ``rate`` (8 kHz goes through G.711 mu-law, 16 kHz stays linear), noise at ``snr_db``; int16."""
    from telnyx_audio import codecs

    x = to_rate(clean, RATE, rate)
    frame = int(FRAME_S * rate)
    if snr_db is not None:
        n = min(label.size, x.size // frame)
        speech_power = np.mean(x[: n * frame].reshape(n, frame)[label[:n]] ** 2)
        x = x + telephone_noise(x.size, rate, np.random.default_rng(seed)) * np.sqrt(speech_power / 10 ** (snr_db / 10))
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
    if rate == 8000:
        pcm = codecs.decode(codecs.encode(pcm, "PCMU"), "PCMU")
    return pcm


def normalise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Speech peak at a random level between -16 and -6 dBFS, as telephone levels vary."""
    return (x / (np.abs(x).max() + 1e-9) * 10 ** (rng.uniform(-16, -6) / 20)).astype(np.float32)
