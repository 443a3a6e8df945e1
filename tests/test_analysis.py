"""Analysis on synthetic signals with known answers."""

import numpy as np
import pytest

from telnyx_audio import codecs
from telnyx_audio.analysis import (
    DTMF_HIGH,
    DTMF_KEYS,
    DTMF_LOW,
    analyze_call,
    check_codec,
    cross_check_dtmf,
    detect_dtmf,
    detect_speech,
    levels,
    spectrogram,
)


def tone(freq, seconds, sr, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def voiced(seconds, sr, f0=140.0, amp=0.3, seed=0):
    """Speech-like: a gliding harmonic source under a syllable envelope."""
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.8 * t + seed))) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.1 + 0.9 * np.sin(2 * np.pi * 4 * t + seed) ** 2)  # syllables: 4 per second, deep dips
    return (amp * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("sr, freq", [(8000, 1000.0), (8000, 437.5), (16000, 3000.0)])
def test_a_tones_spectral_peak_is_in_its_bin(sr, freq):
    spec = spectrogram(tone(freq, 1.0, sr), sr)
    peak = spec.freqs[spec.db.mean(axis=1).argmax()]
    assert abs(peak - freq) <= spec.freqs[1] / 2
    assert spec.db.dtype == np.float32 and spec.db.shape == (spec.freqs.size, spec.times.size)
    assert spec.times[0] > 0 and spec.times[-1] < 1.0


def test_digital_silence_sits_at_the_floor_and_bad_input_is_refused():
    assert spectrogram(np.zeros(8000, np.int16), 8000, floor_db=-120).db.max() == pytest.approx(-120)
    with pytest.raises(ValueError, match="one track"):
        spectrogram(np.zeros((2, 800), np.int16), 8000)
    with pytest.raises(ValueError, match="positive sample rate"):
        spectrogram(np.zeros(800, np.int16), 0)
    with pytest.raises(TypeError, match="int16 or float"):
        spectrogram(np.zeros(800, np.int32), 8000)


def bursts_in_noise(sr):
    bursts = [(0.5, 1.2), (2.0, 2.6), (3.1, 4.45)]
    x = np.random.default_rng(1).normal(0, 0.002, 5 * sr).astype(np.float32)
    for start, end in bursts:
        x[int(start * sr) : int(end * sr)] += voiced(end - start, sr)
    return bursts, x


@pytest.mark.parametrize("sr", [8000, 16000])
def test_burst_boundaries_fall_within_five_frames(sr):
    bursts, x = bursts_in_noise(sr)
    seg = detect_speech(x, sr).segments
    assert len(seg) == len(bursts)
    for (start, end), row in zip(bursts, seg.itertuples()):  # hysteresis keeps a little of the edges' noise
        assert abs(row.start_s - start) <= 0.05 + 1e-9 and abs(row.end_s - end) <= 0.05 + 1e-9


@pytest.mark.parametrize("sr", [8000, 16000])
def test_the_webrtc_method_finds_every_burst_on_time(sr):
    pytest.importorskip("webrtcvad")
    bursts, x = bursts_in_noise(sr)
    seg = detect_speech(x, sr, method="webrtc").segments
    for start, end in bursts:  # webrtcvad adds its own hangover after speech
        hit = seg[(seg.start_s - start).abs() <= 0.02]
        assert len(hit) == 1 and end <= hit.end_s.item() <= end + 0.25


def test_steady_noise_and_hum_are_not_speech():
    sr = 8000
    noise = np.random.default_rng(2).normal(0, 0.05, 10 * sr).astype(np.float32) + tone(50, 10, sr, 0.2)
    assert detect_speech(noise, sr).mask.sum() == 0
    assert detect_speech(np.zeros(sr, np.int16), sr).segments.empty


def test_speech_is_found_through_g711_and_noise():
    sr = 8000
    clean = np.concatenate([np.zeros(sr), voiced(2, sr, amp=0.2), np.zeros(2 * sr), voiced(1.5, sr, amp=0.2), np.zeros(sr)])
    noisy = clean + np.random.default_rng(3).normal(0, 0.02, clean.size)
    pcm = codecs.decode(codecs.encode((noisy * 32767).astype(np.int16), "PCMU"), "PCMU")
    seg = detect_speech(pcm, sr).segments
    assert seg[["start_s", "end_s"]].round(1).values.tolist() == [[1.0, 3.0], [5.0, 6.5]]


@pytest.mark.parametrize("sr", [8000, 16000])
def test_quiet_speech_under_louder_noise_is_found(sr):
    spans = [(1.0, 2.5), (4.0, 5.2), (7.0, 8.8)]
    x = np.zeros(10 * sr, np.float32)
    for start, end in spans:
        x[int(start * sr) : int(end * sr)] += voiced(end - start, sr, amp=0.05)
    speech_power = np.mean(x[x != 0] ** 2)
    x += np.random.default_rng(4).normal(0, np.sqrt(speech_power * 10 ** 0.1), x.size).astype(np.float32)  # -1 dB SNR
    label = np.zeros(1000, bool)
    for start, end in spans:
        label[int(start * 100) : int(end * 100)] = True
    assert f1(detect_speech(x, sr).mask, label) >= 0.9  # each 90 ms alone is too weak; half a second is not


@pytest.mark.parametrize("sr", [8000, 16000])
def test_a_minute_of_steady_noise_alone_holds_no_speech(sr):
    noise = np.random.default_rng(5).normal(0, 0.002, 60 * sr).astype(np.float32)
    assert not detect_speech(noise, sr).mask.any()


def test_weak_word_edges_between_digital_silences_are_kept_but_not_beside_hiss():
    sr = 8000
    t = np.arange(sr) / sr
    edge = 0.3 * 10 ** (-37 / 20) * np.sin(2 * np.pi * 440 * t[: sr // 20])  # 50 ms, 37 dB under the voice
    x = np.concatenate([np.zeros(sr), edge, 0.3 * np.sin(2 * np.pi * 440 * t), edge, np.zeros(sr)])
    assert detect_speech(x, sr).mask.sum() == 110  # the voice's 100 frames and both 5-frame edges
    hiss = x + np.random.default_rng(0).normal(0, 1e-4, x.size)  # no digital silence: the gate holds
    assert detect_speech(hiss, sr).mask.sum() == 102  # the voice, and the frame each side its 20 ms window reaches


def dtmf_tone(digit, seconds, sr, amp=0.25):
    r, c = map(int, np.argwhere(DTMF_KEYS == digit)[0])
    return amp * (tone(DTMF_LOW[r], seconds, sr, 1) + tone(DTMF_HIGH[c], seconds, sr, 1))


# A call whose every figure is set by construction (seconds):
#   inbound  speech 0.5-2.5, keys "1" 2.9-3.0 and "5" 3.1-3.2, speech 6.0-8.0, "mm-hm" 8.8-9.2, speech 10.5-13.0
#   outbound speech 3.5-5.0, 7.5-10.0 (cuts in on inbound at 7.5), 16.0-17.5 (after 3 s of dead air)
INBOUND = [(0.5, 2.5), (6.0, 8.0), (8.8, 9.2), (10.5, 13.0)]
OUTBOUND = [(3.5, 5.0), (7.5, 10.0), (16.0, 17.5)]
KEYS = [("1", 2.9, 3.0), ("5", 3.1, 3.2)]


def scripted_call(sr=8000, seconds=18.0):
    n = int(seconds * sr)
    a = np.random.default_rng(4).normal(0, 0.001, n).astype(np.float32)
    b = np.random.default_rng(5).normal(0, 0.001, n).astype(np.float32)
    for track, f0, spans in ((a, 120, INBOUND), (b, 190, OUTBOUND)):
        for start, end in spans:
            lo, hi = round(start * sr), round(end * sr)
            track[lo:hi] += voiced((hi - lo) / sr, sr, f0=f0)
    for digit, start, end in KEYS:
        lo, hi = round(start * sr), round(end * sr)
        a[lo:hi] += dtmf_tone(digit, (hi - lo) / sr, sr)
    return np.stack([a, b])


@pytest.mark.parametrize("sr", [8000, 16000])
def test_a_scripted_call_gives_its_constructed_metrics(sr):
    result = analyze_call(scripted_call(sr), sr, silence_s=2.0, dtmf_events=["1", "5"])
    row = result.to_dict()
    assert row["inbound_talk_s"] == pytest.approx(2 + 2 + 0.4 + 2.5, abs=0.081)  # one frame per edge; the keys are not talk
    assert row["outbound_talk_s"] == pytest.approx(1.5 + 2.5 + 1.5, abs=0.061)
    assert row["inbound_talk_share"] + row["outbound_talk_share"] == pytest.approx(1.0)
    # Six turns; the backchannel at 8.8 s is an overlap inside outbound's turn, not a turn.
    assert result.turns["party"].tolist() == ["inbound", "outbound", "inbound", "outbound", "inbound", "outbound"]
    assert result.turns["change"].tolist() == ["first", "response", "response", "interruption", "response", "response"]
    assert row["n_turns"] == 6 and row["n_turn_changes"] == 4
    # Latency over the four true turn changes only: 1.0 (after the keys, from the last words), 1.0, 0.5, 3.0.
    np.testing.assert_allclose(result.response_latencies_s, [1.0, 1.0, 0.5, 3.0], atol=0.03)
    assert row["response_latency_median_s"] == pytest.approx(1.0, abs=0.03)
    assert row["response_latency_p90_s"] == pytest.approx(np.percentile([1.0, 1.0, 0.5, 3.0], 90), abs=0.05)
    [cut] = result.interruptions.itertuples()
    assert (cut.interrupter, cut.interrupted) == ("outbound", "inbound")
    assert cut.start_s == pytest.approx(7.5, abs=0.02) and cut.end_s == pytest.approx(8.0, abs=0.02)
    assert (row["inbound_interruptions"], row["outbound_interruptions"]) == (0, 1)
    assert row["n_overlaps"] == 2 and row["overlap_s"] == pytest.approx(0.5 + 0.4, abs=0.04)
    [quiet] = result.silences.itertuples()
    assert quiet.start_s == pytest.approx(13.0, abs=0.02) and quiet.duration_s == pytest.approx(3.0, abs=0.04)
    assert row["dead_air_s"] == pytest.approx(3.0, abs=0.04) and row["longest_silence_s"] == pytest.approx(3.0, abs=0.04)
    assert row["silence_threshold_s"] == 2.0 and row["n_silences_over_threshold"] == 1
    assert row["dtmf_inband"] == "15" and row["inbound_dtmf_inband"] == "15" and row["dtmf_events"] == "15"
    assert row["inbound_snr_db"] > 30 and row["outbound_snr_db"] > 30
    assert "1 silence > 2 s (3.0 s dead air" in result.summary and "median 1.00 s" in result.summary


def test_call_analysis_rows_and_segments_have_the_agreed_names_and_are_json_safe():
    import json

    result = analyze_call(scripted_call(), 8000)
    row = result.to_dict()
    agreed = """inbound_talk_s outbound_talk_s inbound_talk_share outbound_talk_share n_turns
        response_latency_median_s response_latency_p90_s n_overlaps overlap_s inbound_interruptions
        outbound_interruptions dead_air_s longest_silence_s silence_threshold_s n_silences_over_threshold
        inbound_level_dbfs outbound_level_dbfs inbound_peak_dbfs outbound_peak_dbfs inbound_clipping_pct
        outbound_clipping_pct inbound_snr_db outbound_snr_db dtmf_inband""".split()
    assert set(agreed) <= set(row)
    assert json.loads(json.dumps(row, allow_nan=False)) == row
    seg = result.segments()
    assert seg.columns.tolist() == ["kind", "track", "start_s", "end_s", "duration_s", "label"]
    assert set(seg["kind"]) == {"speech", "turn", "overlap", "interruption", "silence", "dtmf"}
    assert seg.loc[seg.kind == "dtmf", "label"].tolist() == ["1", "5"]
    assert set(seg.loc[seg.kind == "dtmf", "track"]) == {"inbound"} and set(seg.loc[seg.kind == "overlap", "track"]) == {""}
    assert seg.loc[seg.kind == "interruption", "track"].tolist() == ["outbound"]
    assert (seg.loc[seg.kind != "dtmf", "label"] == "").all()
    assert seg["start_s"].is_monotonic_increasing
    assert np.allclose(seg["end_s"] - seg["start_s"], seg["duration_s"])


def test_a_silent_call_has_no_latency_and_says_so():
    result = analyze_call(np.zeros((2, 8000 * 3), np.int16), 8000)
    row = result.to_dict()
    assert row["n_turns"] == 0 and row["response_latency_median_s"] is None and row["inbound_snr_db"] is None
    assert row["inbound_talk_share"] == 0.0 and "no turn changes" in result.summary
    assert result.segments().empty


def test_levels_have_known_answers():
    sr = 8000
    full = levels(np.full(sr, 32767, np.int16), sr)
    assert full["clipping_ratio"] == 1.0 and full["peak_dbfs"] == pytest.approx(0, abs=0.01)
    sine = levels(tone(1000, 1, sr, amp=0.5), sr)
    assert sine["rms_dbfs"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    assert sine["peak_dbfs"] == pytest.approx(20 * np.log10(0.5), abs=0.05) and abs(sine["dc_offset"]) < 1e-4
    assert levels(np.full(sr, -8192, np.int16), sr)["dc_offset"] == pytest.approx(-0.25)



@pytest.mark.parametrize("law, top", [("PCMU", 32124), ("PCMA", 32256)])
def test_clipping_is_found_on_g711_whose_full_scale_is_under_int16s(law, top):
    from telnyx_audio.model import Recording

    sr = 8000
    t = np.arange(2 * sr) / sr
    driven = np.clip(np.round(65534 * np.sin(2 * np.pi * 300 * t)), -32768, 32767).astype(np.int16)  # 6 dB too hot
    clean = np.round(16000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    truth = np.mean(np.abs(driven.astype(int)) >= 32767)  # the samples the clipper flattened: 2/3
    audio = np.stack([codecs.decode(codecs.encode(p, law), law) for p in (driven, clean)])
    assert np.abs(audio[0].astype(int)).max() == top  # never 32767: a test against it never fires
    row = analyze_call(Recording(audio, sr, law, ("inbound", "outbound")), sr).to_dict()
    # G.711's top code also takes the unclipped samples within its last step (0.3 dB): a few more.
    assert truth * 100 <= row["inbound_clipping_pct"] <= truth * 100 + 2
    assert row["outbound_clipping_pct"] == 0.0
    assert levels(audio[0], sr, encoding=law)["clipping_ratio"] == pytest.approx(row["inbound_clipping_pct"] / 100)
    assert analyze_call(audio, sr, encoding=law).to_dict()["inbound_clipping_pct"] == row["inbound_clipping_pct"]
    # A plain array whose codec is not given: the flat top at the codec's full scale gives it away.
    assert levels(audio[0], sr)["clipping_ratio"] == pytest.approx(row["inbound_clipping_pct"] / 100)


def test_linear_audio_flattened_under_full_scale_is_clipping_but_a_loud_clean_tone_is_not():
    sr = 8000
    t = np.arange(sr) / sr
    limited = np.clip(np.round(30000 * np.sin(2 * np.pi * 200 * t)), -20000, 20000).astype(np.int16)
    truth = np.mean(np.abs(30000 * np.sin(2 * np.pi * 200 * t)) > 20000)
    assert levels(limited, sr)["clipping_ratio"] == pytest.approx(truth, abs=0.01)
    loud = np.round(30000 * np.sin(2 * np.pi * 200 * t + 0.1)).astype(np.int16)
    assert levels(loud, sr)["clipping_ratio"] == 0.0
    # Through mu-law, a loud clean tone repeats its top values: only the codec's full scale counts there.
    for tone_ in (loud, loud // 2):  # codec unknown too: a top value G.711 repeats is not a flat top
        line = codecs.decode(codecs.encode(tone_, "PCMU"), "PCMU")
        assert levels(line, sr, encoding="PCMU")["clipping_ratio"] == levels(line, sr)["clipping_ratio"] == 0.0

@pytest.mark.parametrize("sr", [8000, 16000])
def test_every_dtmf_digit_is_detected_with_its_time(sr):
    pieces, truth, t = [], [], 0.0
    for r, low in enumerate(DTMF_LOW):
        for c, high in enumerate(DTMF_HIGH):
            gap = np.zeros(int(0.06 * sr), np.float32)
            digit = 0.25 * (tone(low, 0.07, sr, 1) + tone(high, 0.07, sr, 1))
            pieces += [gap, digit]
            t += gap.size / sr
            truth.append((DTMF_KEYS[r, c], t))
            t += digit.size / sr
    found = detect_dtmf(np.concatenate(pieces), sr)
    assert found["digit"].tolist() == [d for d, _ in truth]
    assert np.abs(found["start_s"].to_numpy() - [s for _, s in truth]).max() <= 0.011


def test_no_dtmf_is_found_in_speech_like_sound_or_noise():
    sr = 8000
    rng = np.random.default_rng(6)
    speechy = np.concatenate([voiced(3, sr, f0=f0, seed=k) for k, f0 in enumerate([110, 160, 220, 300])])
    assert detect_dtmf(speechy + rng.normal(0, 0.01, speechy.size).astype(np.float32), sr).empty
    assert detect_dtmf(rng.normal(0, 0.2, 10 * sr).astype(np.float32), sr).empty



def keyed(digits, seed, law, sr=8000, level_dbfs=-22.0, twist_db=7.0, noise_dbfs=-33.0):
    """Key presses as a phone sends them: 50-100 ms tones, 50-100 ms pauses, random phases,
    the high tone ``twist_db`` under the low one, line noise, through G.711 ``law``."""
    rng = np.random.default_rng(seed)
    pieces = [np.zeros(int(rng.uniform(0.05, 0.1) * sr))]
    for digit in digits:
        r, c = map(int, np.argwhere(DTMF_KEYS == digit)[0])
        t = np.arange(int(rng.uniform(0.05, 0.1) * sr)) / sr
        a = 10 ** (level_dbfs / 20)
        p, q = rng.uniform(0, 2 * np.pi, 2)
        pieces += [a * np.sin(2 * np.pi * DTMF_LOW[r] * t + p) + a * 10 ** (-twist_db / 20) * np.sin(2 * np.pi * DTMF_HIGH[c] * t + q),
                   np.zeros(int(rng.uniform(0.05, 0.1) * sr))]
    x = np.concatenate(pieces)
    x += rng.normal(0, 10 ** (noise_dbfs / 20), x.size)
    return codecs.decode(codecs.encode(np.round(x * 32768).astype(np.int16), law), law)


@pytest.mark.parametrize("law", ["PCMU", "PCMA"])
@pytest.mark.parametrize("digits", ["151515", "1555", "00"])
def test_repeated_digits_at_phone_timing_through_g711_and_noise_are_found_exactly_once_each(digits, law):
    # 7 dB normal twist and noise 11 dB under the low tone: noise spoils single windows inside
    # a key press, which must not split it into two digits (the old detector found "1551515").
    for seed in range(6):
        assert "".join(detect_dtmf(keyed(digits, seed, law), 8000)["digit"]) == digits, seed


def test_dtmf_twist_is_judged_apart_for_normal_and_reverse():
    # Normal twist (high tone under the low one) up to 8 dB; reverse (low under high) up to 4 dB.
    assert "".join(detect_dtmf(keyed("15", 0, "PCMU", twist_db=7.0, noise_dbfs=-60), 8000)["digit"]) == "15"
    assert "".join(detect_dtmf(keyed("15", 0, "PCMU", twist_db=-3.0, noise_dbfs=-60), 8000)["digit"]) == "15"
    assert detect_dtmf(keyed("15", 0, "PCMU", twist_db=-6.0, noise_dbfs=-60), 8000).empty
    assert detect_dtmf(keyed("15", 0, "PCMU", twist_db=10.0, noise_dbfs=-60), 8000).empty


@pytest.mark.parametrize("name", ["librivox", "arctic", "espeak"])
def test_real_speech_loud_or_not_through_g711_holds_no_dtmf(name):
    from telnyx_audio._util.dsp import resample

    audio, sr, _ = snippet(name)
    for gain in (1, 4):  # as recorded, and driven into clipping
        loud = np.clip(audio.astype(np.int32) * gain, -32768, 32767).astype(np.int16)
        assert detect_dtmf(loud, sr).empty
        line = resample(loud, sr, 8000)
        assert detect_dtmf(codecs.decode(codecs.encode(line, "PCMU"), "PCMU"), 8000).empty

def test_dtmf_is_cross_checked_against_the_streams_events():
    sr = 8000
    digits = np.concatenate([np.zeros(800), 0.25 * (tone(697, 0.08, sr, 1) + tone(1209, 0.08, sr, 1)), np.zeros(800),
                             0.25 * (tone(770, 0.08, sr, 1) + tone(1336, 0.08, sr, 1)), np.zeros(800)])
    table = cross_check_dtmf(detect_dtmf(digits, sr), ["1", "5", "9"])
    assert table["status"].tolist() == ["match", "match", "only event"]
    assert cross_check_dtmf(detect_dtmf(digits, sr), ["2"])["status"].tolist() == ["mismatch", "only in band"]


@pytest.mark.parametrize("sent, assumed", [("PCMA", "PCMU"), ("PCMU", "PCMA")])
def test_audio_decoded_with_the_wrong_law_is_flagged(sent, assumed):
    sr = 8000
    call = np.concatenate([voiced(1, sr, amp=0.2), np.zeros(sr // 2, np.float32), voiced(1, sr, f0=200, amp=0.1)])
    pcm = (call * 32767 + np.random.default_rng(7).normal(0, 30, call.size)).astype(np.int16)
    wire = codecs.encode(pcm, sent)
    wrong = check_codec(codecs.decode(wire, assumed), assumed)
    right = check_codec(codecs.decode(wire, sent), sent)
    assert wrong.suspect and wrong.likely_encoding == sent and "decoded as" in repr(wrong)
    assert not right.suspect and right.likely_encoding == sent



def traced_peak(fn):
    """Bytes ``fn()`` allocates at its peak, over what was allocated before (tracemalloc)."""
    import tracemalloc

    fn()  # lazy imports and caches are not the call's
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_dtmf_and_the_codec_check_work_in_bounded_memory_and_a_calls_analysis_under_three_times_its_audio():
    # Two minutes of loud line noise through PCMU: every window is loud enough to be a DTMF
    # candidate, the worst case. The capture file is larger than its int16 audio.
    sr = 8000
    noise = np.random.default_rng(8).normal(0, 3000, (2, 120 * sr)).astype(np.int16)
    call = codecs.decode(codecs.encode(noise.reshape(-1), "PCMU"), "PCMU").reshape(2, -1)
    mb = 2**20
    assert traced_peak(lambda: detect_dtmf(call[0], sr)) < 4 * mb  # blocks of windows: was 30 MB
    assert traced_peak(lambda: check_codec(call[0], "PCMU")) < 2 * mb  # blocks of samples: was 23 MB
    assert traced_peak(lambda: analyze_call(call, sr)) < 3 * call.nbytes  # was 34 MB = 9x

def scripted_recording(sr=8000):
    from telnyx_audio.model import Recording

    return Recording((scripted_call(sr) * 32767).astype(np.int16), sr, "PCMU", ("inbound", "outbound"))


def test_a_recordings_tracks_carry_their_rate_so_analysis_needs_no_sr():
    rec = scripted_recording(16000)
    assert rec.inbound.sample_rate == 16000 and rec.outbound[:100].sample_rate == 16000
    assert detect_speech(rec.inbound).segments.equals(detect_speech(np.asarray(rec.inbound), 16000).segments)
    assert spectrogram(rec.outbound).sample_rate == 16000 and levels(rec.inbound)["peak_dbfs"] < 0
    assert detect_dtmf(rec.inbound)["digit"].tolist() == ["1", "5"]
    assert analyze_call(rec).to_dict() == analyze_call(rec.audio, 16000).to_dict()
    with pytest.raises(ValueError, match="sr is required"):
        detect_speech(np.zeros(800, np.int16))


def test_slices_and_turns_of_a_recording_play_in_a_notebook():
    import base64
    import io
    import wave

    rec = scripted_recording()
    part = rec.slice(3.5, 5.0)
    assert part.duration_s == pytest.approx(1.5) and part.sample_rate == rec.sample_rate
    np.testing.assert_array_equal(part.audio, rec.audio[:, 28000:40000])
    second = rec.turn(1)  # outbound answers at 3.5 s
    assert second.duration_s == pytest.approx(1.5, abs=0.03)
    with pytest.raises(IndexError, match="6 turns"):
        rec.turn(6)
    with pytest.raises(ValueError, match="start_s"):
        rec.slice(2.0, 1.0)
    page = part._repr_html_()
    assert "<audio controls" in page and "PCMU 8000 Hz, 1.50 s" in page
    wav = base64.b64decode(page.split("base64,")[1].split('"')[0])
    with wave.open(io.BytesIO(wav)) as w:  # the player holds both tracks at the real rate
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (2, 8000, 12000)
    assert "<audio controls" in rec.inbound._repr_html_()


VAD = __import__("pathlib").Path(__file__).resolve().parent / "vectors" / "vad"


def snippet(name):
    import json

    import soundfile

    audio, sr = soundfile.read(VAD / f"{name}.flac", dtype="int16")
    labels = json.loads((VAD / "labels.json").read_text())["labels"][name]
    return audio, sr, np.array([c == "1" for c in labels])


def f1(mask, label):
    n = min(mask.size, label.size)
    tp = np.sum(mask[:n] & label[:n])
    return 2 * tp / max(mask[:n].sum() + label[:n].sum(), 1)


@pytest.mark.parametrize("name", ["librivox", "arctic", "espeak"])
@pytest.mark.parametrize("rate", [16000, 8000])
@pytest.mark.parametrize("snr_db", [None, 10])
def test_speech_masks_match_the_labels_of_committed_real_and_synthetic_snippets(name, rate, snr_db):
    from telnyx_audio._util.dsp import resample

    audio, sr, label = snippet(name)
    x = audio.astype(np.float64)
    if snr_db is not None:  # line noise over everything, at snr_db under the speech's power
        speech_power = np.mean(x[: label.size * 160].reshape(-1, 160)[label] ** 2)
        x = x + np.random.default_rng(1).normal(0, np.sqrt(speech_power / 10 ** (snr_db / 10)), x.size)
    pcm = resample(np.clip(np.round(x), -32768, 32767).astype(np.int16), sr, rate)
    if rate == 8000:  # a telephone line: through G.711
        pcm = codecs.decode(codecs.encode(pcm, "PCMU"), "PCMU")
    mask = detect_speech(pcm, rate).mask
    assert f1(mask, label) >= 0.9
    if snr_db is None:
        assert not mask[:35].any()  # digital silence before the words is never speech
        assert not mask[-35:].any()  # nor the room noise after them


@pytest.mark.parametrize(("rate", "least_f1"), [(8000, 0.8), (16000, 0.9)])
def test_a_near_and_a_far_talker_under_line_noise_at_3_db_snr_are_found(rate, least_f1):
    # A meeting-like call: real snippets back to back, two of them 8 and 14 dB down, under
    # telephone-band noise. Weak all through, so the low-SNR rule applies (without it: F1 0.74, 0.87).
    from scipy.signal import butter, sosfilt

    from telnyx_audio._util.dsp import resample

    parts = [snippet(name) for name in ("librivox", "arctic", "librivox", "arctic")]
    x = np.concatenate([a[: a.size // 160 * 160] * 10 ** (g / 20) for (a, _, _), g in zip(parts, (0, -14, 0, -8))])
    label = np.concatenate([np.pad(lab, (0, a.size // 160 - lab.size)) for a, _, lab in parts])
    speech_power = np.mean(x.reshape(-1, 160)[label] ** 2)
    noise = sosfilt(butter(4, [300, 3400], btype="bandpass", fs=16000, output="sos"), np.random.default_rng(1).normal(0, 1, x.size))
    x = x + noise / noise.std() * np.sqrt(speech_power / 10 ** 0.3)
    pcm = resample(np.clip(np.round(x), -32768, 32767).astype(np.int16), 16000, rate)
    if rate == 8000:
        pcm = codecs.decode(codecs.encode(pcm, "PCMU"), "PCMU")
    assert f1(detect_speech(pcm, rate).mask, label) >= least_f1
