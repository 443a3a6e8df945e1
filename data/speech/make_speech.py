"""Fetch and cut the real human speech in data/speech/ (FLAC, 16 kHz mono int16) and its index.

Run from the repository root: ``python data/speech/make_speech.py [--cache DIR]``. It needs
``apt-get`` and ``dpkg-deb`` (Debian; no root: ``apt-get download`` only saves the .deb) and
pip. The output is deterministic: the same package versions give the same samples.

Two sets, kept apart on purpose (see SOURCES.md):

- ``tune/``: recordings a detector may be tuned on. They are the pocketsphinx 5.1.1 sdist's
  test recordings, on which ``detect_speech``'s defaults were tuned (bench/vad_corpus.py).
- ``heldout/``: recordings never used for tuning, to score on: Allison Smith's telephone
  prompts from Debian's asterisk-core-sounds-en-wav (8 kHz originals) and the CMU ARCTIC
  utterance (speaker awb) in the pysptk 1.0.1 sdist.

Each file is the whole original recording, converted to 16 kHz mono int16 (8 kHz originals are
upsampled with a polyphase filter, so they hold nothing above 4 kHz); nothing else is changed.
``index.csv`` lists every file with its set, voice, duration and what is said.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RATE = 16000

ASTERISK = "asterisk-core-sounds-en-wav=1.6.1-1"
ASTERISK_DIR = "usr/share/asterisk/sounds/en_US_f_Allison"
POCKETSPHINX = "pocketsphinx==5.1.1"
PYSPTK = "pysptk==1.0.1"

# (set, voice, source key, path inside the source, output name, what is said)
ALLISON = "allison"
AWB = "awb"
LIBRIVOX = "librivox"
CMU = "cmu"
FILES = [
    # Held out: Allison Smith (asterisk-core-sounds-en 1.6.1), CC BY-SA 3.0.
    ("heldout", ALLISON, "asterisk", "queue-thankyou.wav", "queue-thankyou", "thank you for your patience"),
    ("heldout", ALLISON, "asterisk", "one-moment-please.wav", "one-moment-please", "one moment please"),
    ("heldout", ALLISON, "asterisk", "vm-enter-num-to-call.wav", "vm-enter-num-to-call", "please enter the number you wish to call"),
    ("heldout", ALLISON, "asterisk", "agent-pass.wav", "agent-pass", "please enter your password followed by the pound key"),
    ("heldout", ALLISON, "asterisk", "check-number-dial-again.wav", "check-number-dial-again", "please check the number and dial again"),
    ("heldout", ALLISON, "asterisk", "cannot-complete-as-dialed.wav", "cannot-complete-as-dialed", "your call cannot be completed as dialed"),
    ("heldout", ALLISON, "asterisk", "pbx-invalid.wav", "pbx-invalid", "i'm sorry but that's not a valid extension please try again"),
    ("heldout", ALLISON, "asterisk", "vm-nobodyavail.wav", "vm-nobodyavail", "nobody is available to take your call at the moment"),
    ("heldout", ALLISON, "asterisk", "queue-youarenext.wav", "queue-youarenext", "you are now first in line and will be answered by the next available representative"),
    ("heldout", ALLISON, "asterisk", "demo-thanks.wav", "demo-thanks", "goodbye thank you for trying out the asterisk open source pbx"),
    ("heldout", ALLISON, "asterisk", "hello-world.wav", "hello-world", "hello world"),
    ("heldout", ALLISON, "asterisk", "telephone-number.wav", "telephone-number", "telephone number"),
    ("heldout", ALLISON, "asterisk", "auth-thankyou.wav", "auth-thankyou", "thank you"),
    ("heldout", ALLISON, "asterisk", "goodbye.wav", "goodbye", "goodbye"),
    ("heldout", ALLISON, "asterisk", "digits/1.wav", "digits-1", "one"),
    ("heldout", ALLISON, "asterisk", "digits/5.wav", "digits-5", "five"),
    # Held out: CMU ARCTIC speaker awb (Alan W Black), from the pysptk 1.0.1 sdist.
    ("heldout", AWB, "pysptk", "pysptk/example_audio_data/arctic_a0007.wav", "arctic_a0007",
     "and you always want to see it in the superlative degree"),
    # Tune: LibriVox reading of Sense and Sensibility ch. 1 (public domain), pocketsphinx 5.1.1 sdist.
    ("tune", LIBRIVOX, "pocketsphinx", "test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav", "sense_and_sensibility-0870",
     "and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them"),
    ("tune", LIBRIVOX, "pocketsphinx", "test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav", "sense_and_sensibility-0880",
     "he was not an ill disposed young man"),
    ("tune", LIBRIVOX, "pocketsphinx", "test/data/librivox/sense_and_sensibility_01_austen_64kb-0890.wav", "sense_and_sensibility-0890",
     "unless to be rather cold hearted and rather selfish is to be ill disposed"),
    ("tune", LIBRIVOX, "pocketsphinx", "test/data/librivox/sense_and_sensibility_01_austen_64kb-0920.wav", "sense_and_sensibility-0920",
     "had he married a more a amiable woman he might have been made still more respectable than he was"),
    ("tune", LIBRIVOX, "pocketsphinx", "test/data/librivox/sense_and_sensibility_01_austen_64kb-0930.wav", "sense_and_sensibility-0930",
     "he might even have been made amiable himself"),
    # Tune: CMU Sphinx test utterances, pocketsphinx 5.1.1 sdist (BSD-style licence).
    ("tune", CMU, "pocketsphinx", "test/data/goforward.raw", "goforward", "go forward ten meters"),
    ("tune", CMU, "pocketsphinx", "test/data/something.raw", "something", "go somewhere and do something"),
    ("tune", CMU, "pocketsphinx", "test/data/cards/005.wav", "cards-005", "eight of spades four of clubs seven of hearts"),
]


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)


def fetch_deb(spec: str, cache: Path) -> Path:
    """``apt-get download`` one exact package version into ``cache`` and unpack it; the root."""
    name = spec.split("=")[0]
    root = cache / name
    if not root.exists():
        cache.mkdir(parents=True, exist_ok=True)
        _run(["apt-get", "download", spec], cwd=cache)
        deb = next(cache.glob(f"{name}_*.deb"))
        _run(["dpkg-deb", "-x", str(deb), str(root)])
    return root


def fetch_sdist(spec: str, cache: Path) -> Path:
    """The sdist of one exact PyPI release, saved in ``cache`` (fetched with pip, not built)."""
    name, version = spec.split("==")
    target = cache / f"{name}-{version}.tar.gz"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
           "-d", str(cache), "-vv", spec]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if target.exists():
        return target
    # pip prepares an sdist's metadata before keeping it, and these two do not build here;
    # only their data is wanted, so fetch the file pip found on PyPI as it is.
    import requests

    link = re.search(rf"https://files\.pythonhosted\.org/\S+?/{re.escape(name)}-{re.escape(version)}\.tar\.gz", run.stdout + run.stderr)
    if link is None:
        raise RuntimeError(f"pip found no sdist for {spec}:\n{run.stderr[-2000:]}")
    reply = requests.get(link.group(0), timeout=120)
    reply.raise_for_status()
    target.write_bytes(reply.content)
    return target


def to_16k(data: bytes, name: str) -> tuple[np.ndarray, int]:
    """int16 mono at 16 kHz from a WAV or a headerless 16 kHz int16 .raw file; and the source rate."""
    import soundfile
    from scipy.signal import resample_poly

    if name.endswith(".raw"):
        return np.frombuffer(data, "<i2").copy(), RATE
    x, sr = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
    x = x[:, 0]
    if sr == RATE:
        return x, sr
    if RATE % sr:
        raise ValueError(f"{name}: rate {sr} Hz, expected a divisor of {RATE}")
    y = resample_poly(x.astype(np.float64), RATE // sr, 1)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16), sr


def read_sources(cache: Path) -> dict[str, dict[str, bytes]]:
    """The wanted files' bytes, by source key then path inside the source."""
    wanted: dict[str, set[str]] = {}
    for _, _, source, inner, _, _ in FILES:
        wanted.setdefault(source, set()).add(inner)
    out: dict[str, dict[str, bytes]] = {}
    root = fetch_deb(ASTERISK, cache / "deb") / ASTERISK_DIR
    out["asterisk"] = {p: (root / p).read_bytes() for p in wanted["asterisk"]}
    for key, spec in (("pocketsphinx", POCKETSPHINX), ("pysptk", PYSPTK)):
        with tarfile.open(fetch_sdist(spec, cache / "pypi")) as tar:
            prefix = spec.replace("==", "-") + "/"
            out[key] = {p: tar.extractfile(prefix + p).read() for p in wanted[key]}
    return out


def main() -> None:
    import soundfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "telnyx-audio" / "speech-sources")
    args = parser.parse_args()
    sources = read_sources(args.cache)
    rows = []
    for subset, voice, source, inner, stem, text in FILES:
        pcm, source_rate = to_16k(sources[source][inner], inner)
        rel = Path(subset) / voice / f"{stem}.flac"
        (HERE / rel).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(HERE / rel, pcm, RATE, format="FLAC", subtype="PCM_16")
        rows.append({"path": rel.as_posix(), "set": subset, "voice": voice, "source": source, "original": inner,
                     "source_rate": source_rate, "seconds": f"{pcm.size / RATE:.3f}", "text": text})
    with open(HERE / "index.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    for subset in ("tune", "heldout"):
        total = sum(float(r["seconds"]) for r in rows if r["set"] == subset)
        print(f"{subset}: {sum(r['set'] == subset for r in rows)} files, {total:.1f} s")
    size = sum(p.stat().st_size for p in HERE.rglob("*.flac"))
    print(f"wrote {len(rows)} files, {size / 1e6:.2f} MB, and index.csv")


if __name__ == "__main__":
    main()
