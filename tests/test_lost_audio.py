"""Audio the network lost is neither speech nor silence (issue #23, item 1).

The calls are real held-out speech (data/speech/heldout/, never used to tune anything) under
telephone-band noise, streamed with 20 ms frames lost at random and read back as a user reads
them; see tests/lossy_calls.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import telnyx_audio as ta
from lossy_calls import f1, noisy_call, stream_capture

LOSSES = (0.02, 0.05, 0.10)


@pytest.mark.parametrize("level_dbfs", [-60, -40, -24])
def test_lost_frames_never_turn_line_noise_into_speech(tmp_path, level_dbfs):
    rng = np.random.default_rng(-level_dbfs)
    noise = np.clip(rng.normal(0, 32768 * 10 ** (level_dbfs / 20), (2, 30 * 8000)), -32768, 32767).astype(np.int16)
    for drop in (0.0, *LOSSES):
        capture = ta.read_capture(stream_capture(noise, tmp_path / f"noise-{drop}.jsonl", codec="PCMU", rate=8000, drop=drop))
        if drop:
            assert capture.recording.reports["inbound"].gaps, "the simulator lost no frame: nothing tested"
        result = ta.analyze_call(capture)
        assert result.talk["talk_s"].tolist() == [0.0, 0.0], (drop, result.summary)
        assert len(result.turns) == 0 and len(result.overlaps) == 0


@pytest.fixture(scope="module", params=[("PCMU", 8000), ("L16", 16000)], ids=["PCMU-8k", "L16-16k"])
def noisy_speech(request, tmp_path_factory):
    """A call of held-out speech at 10 dB SNR (inbound) and that noise alone (outbound): its
    audio at the codec's rate, labels, and the analysis without loss."""
    codec, rate = request.param
    audio, label = noisy_call(10.0, rate)
    folder = tmp_path_factory.mktemp(codec)
    clean = ta.analyze_call(ta.read_capture(stream_capture(audio, folder / "no-loss.jsonl", codec=codec, rate=rate, drop=0.0)))
    return codec, rate, audio, label, clean, folder


@pytest.mark.parametrize("drop", LOSSES)
def test_speech_found_with_frames_lost_is_what_is_found_without(noisy_speech, drop):
    codec, rate, audio, label, clean, folder = noisy_speech
    capture = ta.read_capture(stream_capture(audio, folder / f"loss-{drop}.jsonl", codec=codec, rate=rate, drop=drop, seed=7))
    lost_s = sum(d for _, d in capture.recording.reports["inbound"].gaps) / 1000
    assert lost_s > 0.5 * drop * capture.recording.duration_s  # the loss happened
    result = ta.analyze_call(capture)
    baseline = f1(clean.speech["inbound"].mask, label)
    assert baseline > 0.9  # the detector works on this call at all
    assert f1(result.speech["inbound"].mask, label) >= baseline - 0.02
    # The noise alone: no more speech than without loss (the detector's own false alarms on
    # G.711 noise stay what they are; none come from the loss).
    assert result.talk.loc["outbound", "talk_s"] <= clean.talk.loc["outbound", "talk_s"] + 1e-9
    if codec == "L16":
        assert result.talk.loc["outbound", "talk_s"] == 0.0


def test_lost_audio_is_reported_apart_from_speech_and_silence(tmp_path):
    audio, _ = noisy_call(20.0, 8000)
    capture = ta.read_capture(stream_capture(audio, tmp_path / "lossy.jsonl", codec="PCMU", rate=8000, drop=0.05, seed=3))
    rec = capture.recording
    result = ta.analyze_call(capture)
    for track in ("inbound", "outbound"):
        gaps = rec.reports[track].gaps
        assert rec.lost[track].tolist() == [[s, s + d / 1000] for s, d in gaps]
        assert result.lost.loc[result.lost["track"] == track, ["start_s", "end_s"]].to_numpy().tolist() == rec.lost[track].tolist()
        assert result.lost.loc[result.lost["track"] == track, "duration_s"].sum() == pytest.approx(rec.reports[track].gap_ms / 1000)
        assert result.speech[track].lost.sum() >= len(gaps)
    seg = result.segments()
    assert (seg["kind"] == "lost").sum() == len(result.lost)
    assert set(seg.loc[seg["kind"] == "lost", "track"]) == {"inbound", "outbound"}
    assert "lost audio" in result.summary
    # The same audio as a plain array knows nothing of the loss, unless told.
    plain = ta.analyze_call(rec.audio, rec.sample_rate)
    assert len(plain.lost) == 0 and "lost audio" not in plain.summary
    told = ta.analyze_call(rec.audio, rec.sample_rate, lost=[rec.lost["inbound"], rec.lost["outbound"]])
    assert told.to_dict() == result.to_dict()


def test_a_long_loss_is_no_part_of_a_silence():
    sr = 8000
    rng = np.random.default_rng(0)
    t = np.arange(sr) / sr
    word = (0.3 * np.sin(2 * np.pi * 200 * t) * np.sin(2 * np.pi * 3 * t) ** 2 * 32767).astype(np.int16)
    quiet = rng.normal(0, 30, 3 * sr).astype(np.int16)
    call = np.stack([np.concatenate([word, quiet, word]), np.concatenate([quiet[:sr], quiet, quiet[:sr]])])
    assert ta.analyze_call(call, sr).silences["duration_s"].round(1).tolist() == [3.0]
    long_loss = ta.analyze_call(call, sr, lost=[[(2.0, 3.0)], []])  # a second lost: two silences of 1 s
    assert long_loss.silences.empty and long_loss.longest_silence_s == pytest.approx(1.0, abs=0.05)
    short = ta.analyze_call(call, sr, lost=[[(2.0, 2.04)], []])  # 40 ms lost: still one silence
    assert short.silences["duration_s"].round(1).tolist() == [3.0]


def test_a_slice_of_a_recording_keeps_its_part_of_the_lost_spans():
    capture = ta.read_capture("data/example_call.jsonl")
    rec = capture.recording
    (start, end), = rec.lost["inbound"].tolist()  # the example's 60 ms gap at 3.00 s
    part = rec.slice(2.5, 4.0)
    assert part.lost["inbound"].ravel().tolist() == pytest.approx([start - 2.5, end - 2.5])
    assert part.lost["outbound"].shape == (0, 2)
    assert rec.slice(0.0, 1.0).lost["inbound"].shape == (0, 2)
