"""The common model every source produces: a :class:`Capture` (ids, events, reports) around a
:class:`Recording` (aligned ``(2, n)`` audio), and how frames are placed into it.

Streams, forks and packet captures all end here; analysis, plots, batch and the CLI start
here. The model imports only :mod:`telnyx_audio.analysis` (array functions, for
:meth:`Recording.turn`), :mod:`telnyx_audio.codecs` and the private helpers below it.

Assembling one stream's media frames into aligned audio, and reporting what it took:

Pure: no I/O, no clock. Assembly is two steps:

- :func:`plan` looks only at the frames' counters and sizes (a :class:`FrameTable`) and
  decides where every frame goes: its sample position on its track, or nowhere (a
  duplicate). It also writes the :class:`TrackReport` of each track.
- :func:`render` decodes payload bytes into a ``(2, n)`` int16 array ``[inbound, outbound]``
  at those positions, batch by batch, so nothing but the output is ever full-size.
  :func:`telnyx_audio.read_capture` renders straight from the capture file.

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

Modules: :mod:`.events` (the typed events every source produces), :mod:`.recording` (the
audio and frame data), :mod:`.capture` (:class:`Capture` and its reports), :mod:`.plan`
(:func:`plan`), :mod:`.placement` (per-track placement), :mod:`.render` (:func:`render`,
:func:`assemble`), :mod:`.format` (the media format and the G.711 law check), :mod:`.track`
(one track for notebooks), :mod:`.schema` (the flat row of a capture, shared by
:meth:`Capture.to_dict` and batch tables) and :mod:`.wav` (WAV files and ``summary.json``).
"""

from __future__ import annotations

from telnyx_audio.model.capture import DEFAULT_MEDIA_FORMAT, BadLine, Capture, CaptureReport
from telnyx_audio.model.events import TRACKS, MediaFormat
from telnyx_audio.model.plan import plan
from telnyx_audio.model.recording import FrameTable, Plan, Recording, TrackReport
from telnyx_audio.model.render import (
    assemble,
    assemble_events,
    plan_stateful,
    recording_from,
    render,
    render_batch,
    render_stateful,
)
from telnyx_audio.model.track import Track

__all__ = ["Capture", "CaptureReport", "BadLine", "DEFAULT_MEDIA_FORMAT", "MediaFormat", "TRACKS",
           "FrameTable", "TrackReport", "Plan", "Recording", "Track", "plan", "render", "assemble",
           "assemble_events", "plan_stateful", "render_stateful", "render_batch", "recording_from"]
