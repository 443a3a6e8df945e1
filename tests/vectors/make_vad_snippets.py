"""Make the VAD test snippets in tests/vectors/vad/ and their labels (run from the repo root).

Three short recordings, each padded with 0.4 s of digital silence before and 0.4 s of low
room noise (-60 dBFS) after, stored as 16 kHz FLAC, with per-10 ms speech labels in
``labels.json``:

- ``librivox.flac``: LibriVox's "Sense and Sensibility" (public domain), the clip
  ``test/data/librivox/sense_and_sensibility_01_austen_64kb-0930.wav`` of the pocketsphinx
  5.1.1 sdist on PyPI (a real human reader);
- ``arctic.flac``: CMU ARCTIC utterance a0007 (CMU's free licence) from the pysptk 1.0.1
  sdist on PyPI (a real human speaker);
- ``espeak.flac``: "Thank you for calling, how can I help you today?" spoken by espeak-ng.

Labels come from the clean recordings with the benchmark's energy reference
(bench/vad_corpus.py: 15 dB over the recording's noise floor and within 45 dB of its loud
speech, gaps under 150 ms bridged, islands under 40 ms dropped); padding is never speech.
Needs network access to PyPI (pip) and espeak-ng.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import vad_corpus as vc  # noqa: E402

OUT = Path(__file__).resolve().parent / "vad"


def librivox() -> np.ndarray:
    return vc.tune_set()["librivox/sense_and_sensibility_01_austen_64kb-0930.wav"]


def arctic() -> np.ndarray:
    return vc.score_set()[0]["arctic/a0007.wav"]


def espeak() -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng is needed: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.wav"
        subprocess.run([exe, "-v", "en-us", "-s", "160", "-w", str(path), "Thank you for calling, how can I help you today?"],
                       check=True, capture_output=True)
        x, sr = soundfile.read(path, dtype="float32")
    return vc.to_rate(x, sr, vc.RATE)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    rng = np.random.default_rng(14)
    pad = int(0.4 * vc.RATE)
    labels = {}
    for name, make in (("librivox", librivox), ("arctic", arctic), ("espeak", espeak)):
        speech = make()
        speech = (speech / np.abs(speech).max() * 0.5).astype(np.float32)
        label = vc.reference_labels(speech)
        speech = speech[: label.size * int(vc.FRAME_S * vc.RATE)]
        room = vc.room_noise(pad, vc.RATE, rng) * np.float32(10 ** (-60 / 20))
        audio = np.concatenate([np.zeros(pad, np.float32), speech, room])
        marks = np.concatenate([np.zeros(40, bool), label, np.zeros(40, bool)])
        soundfile.write(OUT / f"{name}.flac", np.round(audio * 32767).astype(np.int16), vc.RATE, subtype="PCM_16")
        labels[name] = "".join("1" if m else "0" for m in marks)
    (OUT / "labels.json").write_text(json.dumps({"frame_s": vc.FRAME_S, "sample_rate": vc.RATE, "labels": labels}, indent=1) + "\n")


if __name__ == "__main__":
    main()
