"""Plots: each returns its artists, with the labels, colorbar and legend a reader needs."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from telnyx_audio.analysis import detect_dtmf, spectrogram  # noqa: E402
from telnyx_audio.plots import plot_call, plot_spectrogram, plot_waveform  # noqa: E402
from test_analysis import scripted_call  # noqa: E402


def test_plots_draw_with_and_without_axes_and_return_their_artists():
    sr = 8000
    call = scripted_call(sr)
    fig, axes = plt.subplots(3, 1)
    image = plot_spectrogram(spectrogram(call[0], sr), ax=axes[0])
    band = plot_waveform(call[1], sr, ax=axes[1])
    assert image.axes is axes[0] and band.axes is axes[1]
    assert isinstance(plot_spectrogram(call[0], sr), matplotlib.image.AxesImage)
    drawn = plot_call(call, sr, dtmf=detect_dtmf(call[0], sr))
    assert len(drawn["waveforms"]) == 2 and len(drawn["overlaps"]) == 4 and len(drawn["speech"]) >= 7
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
