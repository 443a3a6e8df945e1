"""Plots: each returns its artists, with the labels, colorbar and legend a reader needs."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import telnyx_audio as ta  # noqa: E402
from telnyx_audio.analysis import analyze_call, spectrogram  # noqa: E402
from telnyx_audio.plots import plot_call, plot_spectrogram, plot_spectrograms, plot_waveform  # noqa: E402
from telnyx_audio.model import Recording  # noqa: E402
from test_analysis import scripted_recording  # noqa: E402

DATA = __import__("pathlib").Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_a_spectrogram_has_a_db_colorbar_and_a_title_naming_the_track():
    rec = scripted_recording()
    image = plot_spectrogram(rec.inbound, track="inbound")
    assert isinstance(image, matplotlib.image.AxesImage)
    assert image.axes.get_title(loc="left") == "inbound: spectrogram"
    assert "dB" in image.colorbar.ax.get_ylabel()
    assert image.axes.get_xlabel() == "time (s)" and image.axes.get_ylabel() == "frequency (Hz)"
    fig, ax = plt.subplots()
    assert plot_spectrogram(spectrogram(rec.outbound), ax=ax, colorbar=False).axes is ax


@pytest.mark.parametrize("scale, label, limits", [("full", "amplitude (full scale)", (-1.05, 1.05)), ("dbfs", "level (dBFS)", (-70, 3))])
def test_a_waveform_says_its_unit(scale, label, limits):
    band = plot_waveform(scripted_recording().outbound, scale=scale, track="outbound")
    assert band.axes.get_ylabel() == label and band.axes.get_ylim() == pytest.approx(limits)
    assert band.axes.get_title(loc="left") == "outbound: waveform"
    with pytest.raises(ValueError, match="scale"):
        plot_waveform(np.zeros(80, np.int16), 8000, scale="volts")


def test_a_call_plot_has_a_legend_speech_overlaps_and_dtmf_on_its_track():
    rec = scripted_recording()
    result = analyze_call(rec)
    drawn = plot_call(rec, analysis=result)
    labels = [t.get_text() for t in drawn["legend"].get_texts()]
    assert labels == ["inbound speech", "outbound speech", "overlap (both speaking)", "DTMF digit (in band)"]
    assert len(drawn["waveforms"]) == 2
    assert len(drawn["speech"]) == len(result.speech["inbound"].segments) + len(result.speech["outbound"].segments)
    assert len(drawn["overlaps"]) == 2 * len(result.overlaps) == 4
    # 0.2 s apart on an 18 s axis: one label's width, so one label (#23: no digit hidden under the next)
    assert [t.get_text() for t in drawn["dtmf"]] == ["15"] and all(t.axes is drawn["axes"][0] for t in drawn["dtmf"])
    top, bottom = drawn["axes"]
    assert top.get_ylabel().startswith("inbound") and bottom.get_xlabel() == "time (s)"
    assert top.get_shared_x_axes().joined(top, bottom)


def test_past_two_minutes_the_time_axis_reads_mm_ss():
    rec = scripted_recording()
    long = Recording(np.tile(rec.audio, (1, 8)), 8000, "PCMU", rec.tracks)  # 144 s
    drawn = plot_call(long)
    axis = drawn["axes"][-1]
    assert axis.get_xlabel() == "time (mm:ss)"
    assert axis.xaxis.get_major_formatter()(90.0, 0) == "1:30"


def test_webhook_events_and_transcripts_are_overlaid_on_the_example_call():
    cap = ta.read_capture(DATA / "example_call.jsonl")
    hooks = ta.load_webhooks(DATA / "example_webhooks.jsonl")
    drawn = plot_call(cap, events=hooks, spectrograms=True)
    texts = [t.get_text() for t in drawn["events"] if hasattr(t, "get_text")]
    assert "streaming.started" in texts and "dtmf.received 1" in texts and "dtmf.received 5" in texts
    final = hooks.loc[hooks["transcription_data.is_final"] == True, "transcription_data.transcript"]  # noqa: E712
    assert [t.get_text().strip("“”") for t in drawn["transcript"]] == final.tolist()
    assert "webhook event" in [t.get_text() for t in drawn["legend"].get_texts()]
    assert len(drawn["images"]) == 2 and "dB" in drawn["colorbar"].ax.get_ylabel()
    assert [a.get_title(loc="left") for a in drawn["axes"][2:]] == ["inbound: spectrogram", "outbound: spectrogram"]
    with pytest.raises(ValueError, match="events_t0"):
        plot_call(cap, events=hooks[hooks["event_type"] != "streaming.started"])


def test_a_saved_call_plot_keeps_every_label_inside_the_image(tmp_path):
    drawn = plot_call(ta.read_capture(DATA / "example_call.jsonl"), spectrograms=True)
    fig = drawn["figure"]
    fig.savefig(tmp_path / "call.png")  # constrained layout: nothing is cut
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for artist in [*fig.texts, drawn["legend"], *[a.yaxis.label for a in drawn["axes"]], drawn["axes"][-1].xaxis.label,
                   drawn["colorbar"].ax.yaxis.label]:
        extent = artist.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0 and extent.y1 <= box.y1


def test_two_track_spectrograms_share_one_colorbar():
    drawn = plot_spectrograms(scripted_recording())
    assert len(drawn["images"]) == 2 and drawn["images"][0].get_clim() == drawn["images"][1].get_clim()
    assert "dB" in drawn["colorbar"].ax.get_ylabel()


def test_an_hour_is_reduced_for_display():
    sr = 8000
    hour = np.random.default_rng(8).normal(0, 0.1, 3600 * sr).astype(np.float32)
    fig, ax = plt.subplots()
    band = plot_waveform(hour, sr, ax=ax, max_points=2000)
    assert len(band.get_paths()[0].vertices) < 5000
    image = plot_spectrogram(spectrogram(hour, sr), ax=ax, max_columns=1000)
    assert image.get_array().shape[1] <= 1000
