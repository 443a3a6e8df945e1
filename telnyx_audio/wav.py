"""Write recordings as WAV files through soundfile: one mono file per track, one stereo.

Stereo files put inbound on the left and outbound on the right, at the stream's real rate.
Audio is written in blocks, so a long call never needs an interleaved copy in memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from telnyx_audio.protocol import TRACKS
from telnyx_audio.recording import Recording

__all__ = ["write_wav", "write_wavs"]

_BLOCK = 1 << 20  # samples per write


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> Path:
    """Write int16 audio to a 16-bit PCM WAV file.

    Parameters
    ----------
    path : str or PathLike
    audio : np.ndarray of int16, shape (n,) for mono or (channels, n)
        Time on the last axis, as everywhere in telnyx_audio.
    sample_rate : int

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> import tempfile, soundfile
    >>> p = write_wav(tempfile.mkdtemp() + "/a.wav", np.array([0, 1, -1], np.int16), 8000)
    >>> soundfile.read(p, dtype="int16")[0].tolist()
    [0, 1, -1]
    """
    import soundfile

    audio = np.asarray(audio)
    if audio.dtype != np.int16:
        raise TypeError(f"audio must be int16, got {audio.dtype}")
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must have shape (n,) or (channels, n), got {audio.shape}")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    frames = audio.reshape(1, -1) if audio.ndim == 1 else audio
    path = Path(path)
    with soundfile.SoundFile(
        path, "w", samplerate=int(sample_rate), channels=frames.shape[0], subtype="PCM_16", format="WAV"
    ) as f:
        for lo in range(0, frames.shape[1], _BLOCK):
            block = frames[0, lo : lo + _BLOCK] if frames.shape[0] == 1 else frames[:, lo : lo + _BLOCK].T
            f.write(np.ascontiguousarray(block))
    return path


def write_wavs(recording: Recording, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``inbound.wav``/``outbound.wav`` for each track with media, and ``stereo.wav``.

    Parameters
    ----------
    recording : Recording
    out_dir : str or PathLike
        Created if missing.

    Returns
    -------
    dict of str to Path
        ``{"inbound": ..., "outbound": ..., "stereo": ...}`` for the files written. The stereo
        file is written when the stream had any media (a missing track is a silent channel).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for index, name in enumerate(TRACKS):
        if name in recording.tracks:
            written[name] = write_wav(out / f"{name}.wav", recording.audio[index], recording.sample_rate)
    if recording.tracks:
        written["stereo"] = write_wav(out / "stereo.wav", recording.audio, recording.sample_rate)
    return written
