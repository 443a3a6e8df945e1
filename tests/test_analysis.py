"""Analysis on synthetic signals with known answers."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from telnyx_audio import codecs  # noqa: E402
from telnyx_audio.analysis import (  # noqa: E402
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
from telnyx_audio.plots import plot_call, plot_spectrogram, plot_waveform  # noqa: E402


def tone(freq, seconds, sr, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def voiced(seconds, sr, f0=140.0, amp=0.3, seed=0):
    """Speech-like: a gliding harmonic source under a syllable envelope."""
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.8 * t + seed))) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2)
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
def test_tone_burst_boundaries_fall_within_one_frame(sr):
    bursts, x = bursts_in_noise(sr)
    seg = detect_speech(x, sr).segments
    assert len(seg) == len(bursts)
    for (start, end), row in zip(bursts, seg.itertuples()):
        assert abs(row.start_s - start) <= 0.01 + 1e-9 and abs(row.end_s - end) <= 0.01 + 1e-9


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


def scripted_call(sr=8000):
    """Inbound 0-2 s and 3.5-5 s; outbound 2.5-4 s and 8-9 s: one overlap (inbound cuts in at
    3.5), 3 s of dead air (5-8 s), response latencies 0.5 s (outbound) and 3 s (outbound)."""
    n = 10 * sr
    a = np.random.default_rng(4).normal(0, 0.001, n).astype(np.float32)
    b = np.random.default_rng(5).normal(0, 0.001, n).astype(np.float32)
    for track, f0, spans in ((a, 120, [(0.0, 2.0), (3.5, 5.0)]), (b, 190, [(2.5, 4.0), (8.0, 9.0)])):
        for start, end in spans:
            track[int(start * sr) : int(end * sr)] += voiced(end - start, sr, f0=f0)
    return np.stack([a, b])


def test_scripted_turns_overlaps_and_silences_give_exact_metrics():
    result = analyze_call(scripted_call(), 8000, silence_s=2.0)
    assert result.talk.loc["inbound", "talk_s"] == pytest.approx(3.5, abs=0.02)
    assert result.talk.loc["outbound", "talk_s"] == pytest.approx(2.5, abs=0.02)
    assert result.talk["share"].sum() == pytest.approx(1.0)
    [overlap] = result.overlaps.itertuples()
    assert (overlap.interrupter, overlap.interrupted) == ("inbound", "outbound")
    assert overlap.start_s == pytest.approx(3.5, abs=0.02) and overlap.end_s == pytest.approx(4.0, abs=0.02)
    [quiet] = result.silences.itertuples()
    assert quiet.start_s == pytest.approx(5.0, abs=0.02) and quiet.duration_s == pytest.approx(3.0, abs=0.03)
    assert result.turns["party"].tolist() == ["inbound", "outbound", "inbound", "outbound"]
    lat = result.turns["response_latency_s"].tolist()
    assert np.isnan(lat[0]) and lat[1] == pytest.approx(0.5, abs=0.02) and lat[2] == pytest.approx(-0.5, abs=0.02)
    assert lat[3] == pytest.approx(3.0, abs=0.03)
    assert "inbound cut in 1x" in result.summary and "1 silences" in result.summary
    assert set(result.levels.columns) == {"rms_dbfs", "peak_dbfs", "clipping_ratio", "dc_offset", "snr_db"}
    assert (result.levels["snr_db"] > 30).all()


def test_levels_have_known_answers():
    sr = 8000
    full = levels(np.full(sr, 32767, np.int16), sr)
    assert full["clipping_ratio"] == 1.0 and full["peak_dbfs"] == pytest.approx(0, abs=0.01)
    sine = levels(tone(1000, 1, sr, amp=0.5), sr)
    assert sine["rms_dbfs"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    assert sine["peak_dbfs"] == pytest.approx(20 * np.log10(0.5), abs=0.05) and abs(sine["dc_offset"]) < 1e-4
    assert levels(np.full(sr, -8192, np.int16), sr)["dc_offset"] == pytest.approx(-0.25)


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


def test_plots_draw_with_and_without_axes_and_return_their_artists():
    sr = 8000
    call = scripted_call(sr)
    fig, axes = plt.subplots(3, 1)
    image = plot_spectrogram(spectrogram(call[0], sr), ax=axes[0])
    band = plot_waveform(call[1], sr, ax=axes[1])
    assert image.axes is axes[0] and band.axes is axes[1]
    assert isinstance(plot_spectrogram(call[0], sr), matplotlib.image.AxesImage)
    drawn = plot_call(call, sr, dtmf=detect_dtmf(call[0], sr))
    assert len(drawn["waveforms"]) == 2 and len(drawn["overlaps"]) == 2 and len(drawn["speech"]) == 4
    plt.close("all")


def test_an_hour_is_reduced_for_display():
    sr = 8000
    hour = np.random.default_rng(8).normal(0, 0.1, 3600 * sr).astype(np.float32)
    fig, ax = plt.subplots()
    band = plot_waveform(hour, sr, ax=ax, max_points=2000)
    assert len(band.get_paths()[0].vertices) < 5000
    image = plot_spectrogram(spectrogram(hour, sr), ax=ax, max_columns=1000)
    assert image.get_array().shape[1] <= 1000
    plt.close("all")
