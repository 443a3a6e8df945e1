"""Write recordings as 16-bit PCM WAV files: one mono file per track, one stereo.

Stereo files put inbound on the left and outbound on the right, at the stream's real rate.
Audio is written in blocks, so a long call never needs an interleaved copy in memory.
Every file is written under a temporary name and renamed when complete, so a reader never
sees half a WAV; :func:`write_call` writes a whole call's outputs that way, ``summary.json``
last and atomically.
"""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from telnyx_audio.errors import OutputError
from telnyx_audio.model.events import TRACKS
from telnyx_audio.model.recording import Recording

if TYPE_CHECKING:
    from telnyx_audio.model.capture import Capture

__all__ = ["write_wav", "write_wavs", "write_call", "SUMMARY_NAME"]

#: The name of the summary written beside a call's WAVs.
SUMMARY_NAME = "summary.json"
#: Files being written are named ``.<name>.<pid>.<random><PARTIAL_SUFFIX>`` (a name of the
#: writer's own) and renamed when complete.
PARTIAL_SUFFIX = ".part"

_BLOCK = 1 << 20  # samples per write
_MAX_DATA = 0xFFFFFFFF - 36  # bytes of audio a RIFF/WAV header can describe


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
    audio = np.asarray(audio)
    if audio.dtype != np.int16:
        raise TypeError(f"audio must be int16, got {audio.dtype}")
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must have shape (n,) or (channels, n), got {audio.shape}")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    frames = audio.reshape(1, -1) if audio.ndim == 1 else audio
    channels, n = frames.shape
    if 2 * channels * n > _MAX_DATA:
        raise ValueError(f"a WAV file holds at most 4 GiB of audio; {channels} x {n} samples is more")
    path = Path(path)
    # A name of this writer's own: two runs writing one folder never write into each other's file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}{PARTIAL_SUFFIX}")
    try:
        # The standard library's wave writes 16-bit PCM straight from the array's memory:
        # 1.5x (mono) to 2x (stereo) faster than soundfile here (bench/decode.py's whole
        # process), and 16-bit PCM is all this project writes. Tests read back with soundfile.
        block = np.empty((min(_BLOCK, n), channels), "<i2") if channels > 1 else None
        with wave.open(str(tmp), "wb") as f:
            f.setnchannels(channels)
            f.setsampwidth(2)
            f.setframerate(int(sample_rate))
            f.setnframes(n)
            for lo in range(0, n, _BLOCK):
                hi = min(lo + _BLOCK, n)
                if block is None:
                    f.writeframesraw(np.ascontiguousarray(frames[0, lo:hi], "<i2"))
                    continue
                # Interleaved into one reused block: twice as fast as a transposed copy per block.
                for c in range(channels):
                    block[: hi - lo, c] = frames[c, lo:hi]
                f.writeframesraw(block[: hi - lo])
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave half a file behind
        raise
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
    return {name: write_wav(out / f"{name}.wav", audio, recording.sample_rate) for name, audio in _wavs(recording)}


def _wavs(recording: Recording):
    """(name, audio) of each WAV a recording is written as."""
    for index, name in enumerate(TRACKS):
        if name in recording.tracks:
            yield name, recording.audio[index]
    if recording.tracks:
        yield "stereo", recording.audio


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write JSON to ``path`` so that readers see the old file, or the whole new one.

    The text goes to a temporary file in the same folder, is flushed and fsynced, then
    renamed over ``path``; on failure the temporary file is removed and the error raised.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = write_json_atomic(pathlib.Path(tempfile.mkdtemp()) / "s.json", {"a": 1})
    >>> p.read_text()
    '{\\n  "a": 1\\n}\\n'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}{PARTIAL_SUFFIX}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(obj, indent=2, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_call(capture: "Capture", folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Write one call's outputs: its WAVs (see :func:`write_wavs`) and ``summary.json``.

    Each WAV is written under a temporary name and renamed when complete; the summary is
    written last, atomically (temporary file, fsync, rename), with ``files`` naming the WAVs.
    A capture whose audio could not be decoded (``capture.error``) gets its summary only,
    with the error in it.

    Parameters
    ----------
    capture : Capture
        One stream, from :func:`telnyx_audio.read_captures`.
    folder : str or PathLike
        Created if missing.

    Returns
    -------
    dict
        The summary written (``summary["error"]`` is set when the audio or an output failed).

    Raises
    ------
    OutputError
        If a WAV or the summary cannot be written (permissions, disk full...). The error is
        recorded in the summary, which is still written where possible; no partial WAV is
        left behind.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> from telnyx_audio.read import read_capture
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (tmp / "c.jsonl").write_text(json.dumps({"event": "media", "media": {"chunk": "1", "payload": "gICA"}}) + "\\n")
    >>> summary = write_call(read_capture(tmp / "c.jsonl", media_format={"encoding": "PCMU", "sample_rate": 8000}), tmp / "out")
    >>> summary["files"], sorted(p.name for p in (tmp / "out").iterdir())
    ({'inbound': 'inbound.wav', 'stereo': 'stereo.wav'}, ['inbound.wav', 'stereo.wav', 'summary.json'])
    """
    out = Path(folder)
    summary = capture.summary()
    files: dict[str, str] = {}
    failure: OutputError | None = None
    try:
        out.mkdir(parents=True, exist_ok=True)
        if capture.error is None:
            rate = capture.recording.sample_rate
            for name, audio in _wavs(capture.recording):
                files[name] = write_wav(out / f"{name}.wav", audio, rate).name
    except (OSError, ValueError) as exc:  # ValueError: more audio than a WAV holds
        where = getattr(exc, "filename", None) or str(out)
        message = f"cannot write the outputs in {str(out)!r}: {getattr(exc, 'strerror', None) or exc}"
        failure = OutputError(message, str(where))
        failure.__cause__ = exc
        summary["error"] = "; ".join(e for e in (summary.get("error"), message) if e)
    summary["files"] = files
    try:
        write_json_atomic(out / SUMMARY_NAME, summary)
    except OSError as exc:
        message = f"cannot write {str(out / SUMMARY_NAME)!r}: {exc.strerror or exc}"
        if failure is None:
            failure = OutputError(message, str(out / SUMMARY_NAME))
            failure.__cause__ = exc
        summary["error"] = "; ".join(e for e in (summary.get("error"), message) if e)
    if failure is not None:
        raise failure
    return summary
