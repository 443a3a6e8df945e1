"""The bundled examples are real human speech, and they keep the faults, DTMF and webhooks they document.

data/speech/ holds the recordings (SOURCES.md: origin, licence, attribution); data/make_example.py
builds data/example_call.jsonl and data/example_webhooks.jsonl from its held-out set.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from scipy.signal import resample_poly

import telnyx_audio as ta

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SPEECH = DATA / "speech"
EXAMPLE = DATA / "example_call.jsonl"
WEBHOOKS = DATA / "example_webhooks.jsonl"


def index() -> list[dict[str, str]]:
    with open(SPEECH / "index.csv", newline="") as f:
        return list(csv.DictReader(f))


def speech_frames(x: np.ndarray, rate: int, *, frame_s: float = 0.032, within_db: float = 30.0) -> np.ndarray:
    """Frames (rows, Hann-windowed) whose energy is within ``within_db`` of the track's loudest; DTMF excluded by the caller."""
    n = int(frame_s * rate)
    frames = x[: x.size // n * n].reshape(-1, n).astype(np.float64)
    energy = np.mean(frames**2, axis=1)
    return frames[energy > energy.max() * 10 ** (-within_db / 10)] * np.hanning(n)


def high_band_share_db(frames: np.ndarray, rate: int, *, above_hz: float = 2000.0) -> float:
    """The mean spectrum's power above ``above_hz`` relative to all its power, dB."""
    spectrum = np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(frames.shape[1], 1 / rate)
    return float(10 * np.log10(spectrum[freqs >= above_hz].sum() / spectrum.sum()))


def unvoiced_share(frames: np.ndarray, rate: int) -> float:
    """The share of frames with no pitch: normalised autocorrelation under 0.5 at every lag of 60-400 Hz."""
    spectra = np.abs(np.fft.rfft(frames, 2 * frames.shape[1], axis=1)) ** 2
    ac = np.fft.irfft(spectra, axis=1)[:, : frames.shape[1]]
    ac /= ac[:, :1]
    lags = slice(int(rate / 400), int(rate / 60))
    return float(np.mean(ac[:, lags].max(axis=1) < 0.5))


def example_tracks() -> tuple[np.ndarray, int]:
    """The example call's audio, ``[inbound, outbound]``, with the DTMF tones (6.2-7.1 s) cut out."""
    rec = ta.read_capture(EXAMPLE).recording
    keep = np.ones(rec.audio.shape[1], bool)
    keep[int(6.2 * rec.sample_rate) : int(7.1 * rec.sample_rate)] = False
    return rec.audio[:, keep], rec.sample_rate


def test_the_speech_folder_lists_every_recording_with_its_set_voice_and_licence():
    rows = index()
    on_disk = sorted(p.relative_to(SPEECH).as_posix() for p in SPEECH.rglob("*.flac"))
    assert sorted(r["path"] for r in rows) == on_disk and on_disk
    sources = (SPEECH / "SOURCES.md").read_text()
    for r in rows:
        assert r["path"].split("/")[0] == r["set"] in ("tune", "heldout")
        assert f"`{r['path']}`" in sources and r["text"]
    for licence in ("CC BY-SA 3.0", "public domain", "Allison Smith", "CMU ARCTIC", "LibriVox"):
        assert licence in sources
    assert sum(p.stat().st_size for p in SPEECH.rglob("*.flac")) < 1_500_000


def test_the_recordings_are_16_khz_mono_int16_flac_and_their_durations_are_indexed():
    for r in index():
        info = soundfile.info(SPEECH / r["path"])
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", 16000, 1), r["path"]
        assert info.frames / 16000 == pytest.approx(float(r["seconds"]), abs=1e-3)


def test_held_out_speech_has_two_voices_and_40_s_and_the_tune_set_30_s():
    rows = index()
    held = [r for r in rows if r["set"] == "heldout"]
    assert sum(float(r["seconds"]) for r in held) >= 40 and len({r["voice"] for r in held}) >= 2
    assert sum(float(r["seconds"]) for r in rows if r["set"] == "tune") >= 30
    # A voice is in one set only: tuning on a held-out speaker would leak.
    assert not {r["voice"] for r in held} & {r["voice"] for r in rows if r["set"] == "tune"}


@pytest.mark.parametrize("track", [0, 1], ids=["inbound", "outbound"])
def test_each_party_of_the_example_sounds_like_speech_not_a_harmonic_comb(track):
    # A harmonic buzz puts all its power in a few low harmonics and is voiced in every frame;
    # speech has formants and fricatives up the telephone band, and unvoiced frames.
    audio, rate = example_tracks()
    frames = speech_frames(audio[track], rate)
    assert high_band_share_db(frames, rate) > -25  # the old buzz: -35 dB; this call: -16 and -19 dB
    assert unvoiced_share(frames, rate) > 0.1  # the old buzz: 0.05 and 0.0; this call: 0.33 and 0.15


def test_the_example_is_cut_from_the_held_out_recordings():
    rec = ta.read_capture(EXAMPLE).recording
    caller, agent = rec.audio.astype(np.float64)
    for track, name, span in ((caller, "heldout/awb/arctic_a0007.flac", (0.4, 1.85)),
                              (agent, "heldout/allison/one-moment-please.flac", (0.1, 1.3))):
        x, sr = soundfile.read(SPEECH / name, dtype="float64")
        piece = resample_poly(x[int(span[0] * sr) : int(span[1] * sr)], rec.sample_rate, sr)
        corr = np.correlate(track, piece, mode="valid")
        at = int(np.argmax(np.abs(corr)))
        window = track[at : at + piece.size]
        assert abs(corr[at]) / np.sqrt(np.sum(window**2) * np.sum(piece**2)) > 0.9, name


def test_the_example_keeps_its_dtmf_its_60_ms_gap_and_its_turns():
    cap = ta.read_capture(EXAMPLE)
    assert [e.digit for e in cap.events if isinstance(e, ta.Dtmf)] == ["1", "5"]
    inbound = cap.recording.reports["inbound"]
    assert inbound.gaps == ((3.0, 60.0),) and inbound.duplicates == 1 and inbound.reordered > 0
    result = ta.analyze_call(cap.recording)
    assert "".join(result.dtmf["digit"]) == "15"
    assert list(result.turns["party"]) == ["outbound", "inbound", "outbound", "inbound"]
    assert len(result.overlaps) == 2 and list(result.interruptions["interrupter"]) == ["outbound", "inbound"]
    # The lost frames fall inside the caller's first turn.
    first = result.turns.iloc[1]
    assert first.start_s < 3.0 < first.end_s


def test_every_turn_of_the_example_has_a_final_transcript_that_quotes_its_speaker():
    hooks = ta.load_webhooks(WEBHOOKS)
    t0 = pd.Timestamp(hooks.loc[hooks["event_type"] == "streaming.started", "occurred_at"].iloc[0])
    final = ta.transcripts(hooks).query("is_final == True")
    said = {r["voice"]: r["text"] for r in index() if r["set"] == "heldout"}
    said = {v: " ".join(r["text"] for r in index() if r["voice"] == v) for v in said}
    voice = {"inbound": "awb", "outbound": "allison"}
    turns = ta.analyze_call(ta.read_capture(EXAMPLE).recording).turns
    assert len(final) == len(turns)
    for (_, turn), (_, text) in zip(turns.iterrows(), final.iterrows()):
        at = (pd.Timestamp(text["occurred_at"]) - t0).total_seconds()
        assert text["track"] == turn.party and turn.end_s - 0.5 <= at <= turn.end_s + 0.5
        assert text["transcript"] in said[voice[turn.party]]


def test_the_example_webhooks_still_verify_with_the_committed_key():
    import base64
    import json

    key = base64.b64decode((DATA / "example_webhooks.pub").read_text())
    records = [json.loads(line) for line in WEBHOOKS.read_text().splitlines()]
    assert len(records) == 13
    for r in records:
        ta.verify_webhook(r["body"].encode(), r["headers"], key, tolerance_s=None)
