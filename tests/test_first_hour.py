"""A newcomer's first hour (issue #23): what a first script, a first command and a first plot do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example_call.jsonl"


def run_script(path: Path, text: str) -> subprocess.CompletedProcess:
    """Run ``text`` as a script file, as ``python script.py`` runs it, with this checkout's package."""
    path.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=path.parent, env=env, timeout=300)


def test_batch_in_a_plain_script_says_at_once_what_to_add(tmp_path):
    out = run_script(tmp_path / "plain.py", f"import telnyx_audio as ta\n"
                                           f"result = ta.batch({str(EXAMPLE)!r}, jobs=2, progress=False)\n"
                                           f"print('rows', len(result.calls))\n")
    assert out.returncode == 1
    assert out.stderr.count("Traceback") == 1, out.stderr  # one error, no worker's
    assert 'RuntimeError: ' in out.stderr and 'if __name__ == "__main__":' in out.stderr and "line 2" in out.stderr
    assert "rows" not in out.stdout


def test_batch_in_a_guarded_script_works(tmp_path):
    out = run_script(tmp_path / "guarded.py", f"import telnyx_audio as ta\n"
                                             f"def main():\n"
                                             f"    return ta.batch({str(EXAMPLE)!r}, jobs=2, progress=False)\n"
                                             f"if __name__ == '__main__':\n"
                                             f"    result = main()\n"
                                             f"    print('errors', len(result.errors), 'rows', len(result.calls))\n")
    assert out.returncode == 0, out.stderr
    assert "errors 0 rows 1" in out.stdout


def test_transcripts_and_the_timeline_have_a_column_on_the_audio_clock_of_the_analysis():
    import telnyx_audio as ta

    hooks = ta.load_webhooks(ROOT / "data" / "example_webhooks.jsonl")
    turns = ta.analyze_call(ta.read_capture(EXAMPLE)).turns
    said = ta.transcripts(hooks)
    assert "streaming.started" in said.attrs["time_zero"]["audio_t_s"]
    for row in said[said["is_final"] == True].itertuples():  # noqa: E712 (a column of bools and None)
        mine = turns[turns["party"] == row.track]
        # a final transcript arrives just after its turn ends, on the analysis' clock
        assert ((mine["end_s"] <= row.audio_t_s + 0.05) & (row.audio_t_s <= mine["end_s"] + 0.5)).any(), row
    timeline = ta.call_timeline(hooks)
    started = timeline.loc[timeline["event_type"] == "streaming.started"].iloc[0]
    initiated = timeline.loc[timeline["event_type"] == "call.initiated"].iloc[0]
    assert (started["audio_t_s"], initiated["t_s"]) == (0.0, 0.0)
    assert initiated["audio_t_s"] == -started["t_s"] < 0
    shifted = ta.call_timeline(hooks, t0=started["occurred_at"] - __import__("pandas").Timedelta(seconds=1))
    assert shifted["audio_t_s"].tolist() == [t + 1 for t in timeline["audio_t_s"]]
    assert "t0=" in shifted.attrs["time_zero"]["audio_t_s"]


# --- plots (item 5) ---------------------------------------------------------------------------

DTMF_HZ = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "4": (770, 1209), "5": (770, 1336),
           "6": (770, 1477), "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "0": (941, 1336)}


def _keyed_call(digits: str, at_s: float, duration_s: float, sr: int = 8000) -> "np.ndarray":
    """(2, n) int16: quiet noise, and ``digits`` keyed on the inbound track from ``at_s``, 100 ms
    on and 100 ms off each."""
    import numpy as np

    rng = np.random.default_rng(5)
    x = rng.normal(0, 20, (2, int(duration_s * sr)))
    t = np.arange(int(0.1 * sr)) / sr
    for i, digit in enumerate(digits):
        low, high = DTMF_HZ[digit]
        start = int((at_s + 0.2 * i) * sr)
        x[0, start : start + t.size] += 6000 * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
    return np.clip(x, -32768, 32767).astype(np.int16)


def test_dtmf_digits_on_a_long_call_are_never_drawn_over_each_other():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import telnyx_audio as ta

    call = _keyed_call("123450", 100.0, 600.0)
    result = ta.analyze_call(call, 8000)
    assert "".join(result.dtmf["digit"]) == "123450"
    drawn = ta.plot_call(call, 8000, analysis=result)
    drawn["figure"].canvas.draw()
    boxes = [t.get_window_extent() for t in drawn["dtmf"]]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert "".join(t.get_text() for t in drawn["dtmf"]) == "123450"  # every digit shown, in order
    plt.close("all")


def test_lost_audio_is_drawn_as_its_own_layer_and_the_call_plot_takes_a_path(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import telnyx_audio as ta
    from lossy_calls import noisy_call, stream_capture

    audio, _ = noisy_call(15.0, 8000)
    path = stream_capture(audio[:, : 8000 * 20], tmp_path / "lossy.jsonl", codec="PCMU", rate=8000, drop=0.05, seed=2)
    rec = ta.read_capture(path).recording
    drawn = ta.plot_call(path)  # a path: read for you
    assert len(drawn["lost"]) == len(rec.lost["inbound"]) + len(rec.lost["outbound"]) > 0
    assert "lost audio (network)" in [t.get_text() for t in drawn["legend"].get_texts()]
    top = drawn["axes"][0]
    spans = sorted(round(p.get_x(), 3) for p in drawn["lost"] if p.axes is top)
    assert spans == sorted(round(s, 3) for s in rec.lost["inbound"][:, 0])
    plt.close("all")


def test_a_waveform_and_a_spectrogram_of_one_track_line_up_and_hiss_is_no_block():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import telnyx_audio as ta

    call = _keyed_call("5", 4.0, 8.0)
    rec = ta.Recording(call, 8000, "PCMU", ("inbound", "outbound"))
    fig, ax = plt.subplots(2, 1)
    band = ta.plot_waveform(rec.inbound, ax=ax[0], scale="dbfs")
    ta.plot_spectrogram(rec.inbound, ax=ax[1])
    assert ax[0].get_xlim() == ax[1].get_xlim() == (0.0, 8.0)
    # Hiss at -64 dBFS is a thin band at its level, the tone stands 50 dB over it.
    (outline,) = band.get_paths()
    low, high = outline.vertices[:, 1].min(), outline.vertices[:, 1].max()
    assert low > -70 + 3 and high > low + 40
    assert np.median(band.get_paths()[0].vertices[:, 1]) < low + 10  # most of the fill hugs the floor
    plt.close("all")


# --- what the README promised (item 6) ----------------------------------------------------------

def test_check_codec_takes_a_codec_name_in_any_spelling():
    import numpy as np

    import telnyx_audio as ta

    voice = (8000 * np.sin(np.arange(8000) * 0.05)).astype(np.int16)
    for name in ("ulaw", "audio/x-mulaw", "pcmu", "PCMU"):
        assert ta.check_codec(voice, name).encoding == "PCMU"
    assert ta.check_codec(voice, "alaw").encoding == "PCMA"
    import pytest

    with pytest.raises(ValueError, match="'L16'"):
        ta.check_codec(voice, "L16")


def test_analysis_of_a_path_says_to_read_it_first():
    import pytest

    import telnyx_audio as ta

    with pytest.raises(TypeError, match=r"read_capture\("):
        ta.analyze_call(str(EXAMPLE))


def test_a_turn_says_which_tracks_it_holds_and_reports_count_frames_that_arrived_once():
    import telnyx_audio as ta

    capture = ta.read_capture(EXAMPLE)
    rec = capture.recording
    assert "tracks=[]" not in repr(rec.turn(1))
    assert "inbound: 0 gaps" in repr(rec.turn(0)) or "inbound: 1 gap" in repr(rec.turn(1))
    for report in rec.reports.values():
        arrived = report.frames_expected - report.frames_missing
        assert report.describe().startswith(f"{report.track}: {arrived} of {report.frames_expected} frames arrived")
        assert arrived <= report.frames_expected
        assert "1 duplicates" not in report.describe()


def test_levels_and_the_call_row_name_clipping_alike():
    import telnyx_audio as ta

    result = ta.analyze_call(ta.read_capture(EXAMPLE))
    row = result.to_dict()
    for party in ("inbound", "outbound"):
        assert result.levels.loc[party, "clipping_pct"] == row[f"{party}_clipping_pct"]


def test_batch_of_a_missing_folder_raises_as_a_glob_that_matches_nothing_does(tmp_path):
    import pytest

    import telnyx_audio as ta

    for given in (f"{tmp_path}/nonexist/", f"{tmp_path}/nonexist/*.jsonl"):
        with pytest.raises(ValueError, match="nonexist"):
            ta.batch(given, progress=False)


def test_load_webhooks_on_a_capture_says_it_is_a_capture():
    import pytest

    import telnyx_audio as ta

    with pytest.raises(ValueError, match="read_capture"):
        ta.load_webhooks(EXAMPLE)


def test_a_notebook_player_holds_what_it_is_asked_to():
    import numpy as np

    import telnyx_audio as ta

    rec = ta.Recording(np.zeros((2, 8000 * 300), np.int16), 8000, "PCMU", ("inbound", "outbound"))
    default = rec._repr_html_()
    assert len(default) < 2_700_000 * 2 + 10_000  # two minutes at most by default, not ten (26 MB)
    short = rec.player(max_s=10)._repr_html_()
    assert "the player holds the first 10 s" in short and len(short) < 450_000  # 10 s: 320 kB of WAV as base64


def test_the_demo_fork_capture_decodes_strictly(tmp_path):
    out = subprocess.run([sys.executable, "-m", "telnyx_audio.demo", "--data", str(ROOT / "data"), "--out", str(tmp_path)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "1 duplicates" not in out.stdout
    fork = next(tmp_path.glob("forks/*/fork.rtpcap"))
    strict = subprocess.run([sys.executable, "-m", "telnyx_audio", "decode", "--strict", str(fork), "--out", str(tmp_path / "d")],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert strict.returncode == 0, strict.stderr


def test_the_live_view_counts_a_frame_sent_twice_once(tmp_path):
    import time

    import telnyx_audio as ta

    with ta.CaptureServer(tmp_path, port=0) as server:
        sent = ta.simulate(EXAMPLE, server.url, duplicate=0.1, seed=4)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(i.state not in ("done", "error") for i in server.streams):
            time.sleep(0.05)
        (info,) = server.streams
    assert sent.duplicated > 20
    assert info.seconds_captured == 8.0


def test_audio_times_hold_for_calls_without_a_stream_and_events_without_a_call():
    import math

    import telnyx_audio as ta
    from telnyx_audio.webhooks.load import audio_times

    hooks = ta.load_webhooks([
        {"data": {"event_type": "call.initiated", "id": "1", "occurred_at": "2026-01-01T00:00:00Z",
                  "payload": {"call_control_id": "v3:x"}}},
        {"data": {"event_type": "call.hangup", "id": "2", "occurred_at": "2026-01-01T00:00:03Z", "payload": {}}}])
    assert all(math.isnan(t) for t in audio_times(hooks))  # no streaming.started: no audio clock
    assert audio_times(hooks, t0={"v3:x": "2026-01-01T00:00:01Z"}).tolist()[0] == -1.0
    assert audio_times(hooks, t0="2026-01-01T00:00:01Z").tolist() == [-1.0, 2.0]
    assert ta.call_timeline(hooks)["t_s"].tolist() == [0.0, 0.0]


def test_every_analysis_table_says_what_its_times_count_from():
    import telnyx_audio as ta

    result = ta.analyze_call(ta.read_capture(EXAMPLE))
    for table in (result.turns, result.overlaps, result.silences, result.dtmf, result.lost, result.segments()):
        assert "streaming.started" in table.attrs["time_zero"]


def test_batch_in_a_module_run_with_dash_m_outside_the_guard_is_refused_too(tmp_path):
    (tmp_path / "calls_job.py").write_text(f"import telnyx_audio as ta\nta.batch({str(EXAMPLE)!r}, jobs=1, progress=False)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    out = subprocess.run([sys.executable, "-m", "calls_job"], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert out.returncode == 1 and out.stderr.count("Traceback") == 1 and 'if __name__ == "__main__":' in out.stderr
