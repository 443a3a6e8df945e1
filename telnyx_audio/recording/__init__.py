"""Assemble one stream's media frames into aligned audio, and report what it took.

Pure: no I/O, no clock. Assembly is two steps:

- :func:`plan` looks only at the frames' counters and sizes (a :class:`FrameTable`) and
  decides where every frame goes: its sample position on its track, or nowhere (a
  duplicate). It also writes the :class:`TrackReport` of each track.
- :func:`render` decodes payload bytes into a ``(2, n)`` int16 array ``[inbound, outbound]``
  at those positions, batch by batch, so nothing but the output is ever full-size.
  :func:`telnyx_audio.capture.read_capture` renders straight from the capture file.

:func:`assemble` does both for frames held in memory.

How frames are placed, per track:

1. Order by ``chunk``; where a track's frames lack it, by ``timestamp``; then by
   ``sequence_number``; then by arrival.
2. Duplicates (the same ordering key twice) keep the first arrival.
3. Missing chunks become digital silence as long as the track's usual frame, so later audio
   stays at its true time. In timestamp order, a jump larger than the previous frame's
   length is a gap of the difference.
4. Both tracks share one timeline. A track's start is taken from ``timestamp`` when every
   track's timestamps agree with its payload lengths, otherwise from ``chunk``.

``timestamp`` units are not documented by Telnyx. Both plausible forms are accepted: the
unit is read off the data as milliseconds (the Twilio convention, and what Telnyx examples
suggest: 20 per 20 ms frame), samples of the audio (160 per 20 ms frame at 8 kHz) or ticks of
the codec's own RTP clock where it differs (``"rtp"``: G.722's 8 kHz, Opus's 48 kHz); a track
whose timestamps fit none is placed by ``chunk`` alone and says so in its report. Where
timestamps step as the counters do, they also place frames whose lengths vary: a frame
shorter than its step leaves a gap (reported), never pulling later audio early.

Modules: :mod:`._types` (the data), :mod:`._plan` (:func:`plan`), :mod:`._render`
(:func:`render`, :func:`assemble`); per-track placement is :mod:`telnyx_audio._placement`.
"""

from __future__ import annotations

from telnyx_audio.recording._plan import plan
from telnyx_audio.recording._render import (
    assemble,
    assemble_events,
    plan_stateful,
    recording_from,
    render,
    render_batch,
    render_stateful,
)
from telnyx_audio.recording._types import FrameTable, Plan, Recording, TrackReport

__all__ = ["FrameTable", "TrackReport", "Plan", "Recording", "plan", "render", "assemble", "assemble_events",
           "plan_stateful", "render_stateful", "render_batch", "recording_from"]
