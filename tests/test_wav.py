"""WAV files round-trip through soundfile at the stream's real rate."""

import numpy as np
import pytest
import soundfile

from conftest import tone_frames
from telnyx_audio.model import assemble_events
from telnyx_audio.streams.protocol import Media
from telnyx_audio.model.wav import write_wav, write_wavs


def recording(tracks=("inbound", "outbound"), **kw):
    frames = tone_frames(30, tracks=tracks, **kw)
    return assemble_events([Media(f["track"], f["payload"], chunk=f["chunk"]) for f in frames],
                           kw.get("encoding", "PCMU"), kw.get("sample_rate", 8000))


def test_each_track_and_the_stereo_pair_round_trip_bit_exactly(tmp_path):
    rec = recording()
    files = write_wavs(rec, tmp_path / "out")
    assert sorted(files) == ["inbound", "outbound", "stereo"]
    for index, name in enumerate(("inbound", "outbound")):
        data, sr = soundfile.read(files[name], dtype="int16")
        assert sr == 8000 and np.array_equal(data, rec.audio[index])
    stereo, sr = soundfile.read(files["stereo"], dtype="int16")
    assert stereo.shape == (rec.audio.shape[1], 2)
    assert np.array_equal(stereo[:, 0], rec.inbound) and np.array_equal(stereo[:, 1], rec.outbound)
    assert soundfile.info(files["stereo"]).subtype == "PCM_16"


def test_the_real_sample_rate_is_written(tmp_path):
    rec = recording(encoding="L16", sample_rate=16000)
    assert soundfile.info(write_wavs(rec, tmp_path)["stereo"]).samplerate == 16000


def test_a_one_track_stream_writes_its_track_and_a_stereo_file(tmp_path):
    files = write_wavs(recording(tracks=("inbound",)), tmp_path)
    assert sorted(files) == ["inbound", "stereo"]


def test_long_audio_is_written_in_blocks_without_loss(tmp_path):
    audio = (np.arange(3 * (1 << 20) + 7) % 65536 - 32768).astype(np.int16)
    data, _ = soundfile.read(write_wav(tmp_path / "long.wav", audio, 8000), dtype="int16")
    assert np.array_equal(data, audio)


def test_bad_audio_is_refused_with_the_reason(tmp_path):
    with pytest.raises(TypeError, match="int16, got float64"):
        write_wav(tmp_path / "x.wav", np.zeros(4), 8000)
    with pytest.raises(ValueError, match=r"shape \(n,\) or \(channels, n\)"):
        write_wav(tmp_path / "x.wav", np.zeros((1, 2, 3), np.int16), 8000)
    with pytest.raises(ValueError, match="positive integer, got 0"):
        write_wav(tmp_path / "x.wav", np.zeros(4, np.int16), 0)


def test_long_stereo_audio_is_interleaved_in_blocks_without_loss(tmp_path):
    audio = np.stack([(np.arange(2 * (1 << 20) + 3) % 65536 - 32768), -(np.arange(2 * (1 << 20) + 3) % 30000)]).astype(np.int16)
    data, _ = soundfile.read(write_wav(tmp_path / "long.wav", audio, 8000), dtype="int16")
    assert np.array_equal(data.T, audio)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
