"""Redaction: what callers type stays private, in captures already held.

:func:`redact` writes a redacted copy of any capture (a WebSocket capture, a fork capture,
a WAV, a packet capture), its WAVs and summaries, and a manifest.

What is removed
---------------
- **Key events**: every ``dtmf`` message of a stream and every RFC 4733 event of a fork
  keeps its time but its digit becomes ``"*"`` (one per key: the call still shows that keys
  were pressed, and how many). Summaries (``"dtmf": "****"``), batch rows (``dtmf_events``)
  and webhook tables (``load_webhooks(..., mask_dtmf=True)``) carry the same masks.
- **Tones in the audio**: DTMF tones are found on both tracks with
  :func:`telnyx_audio.analysis.detect_dtmf` (settings tuned for recall:
  :data:`telnyx_audio.model.redact.DETECTOR_SETTINGS`) and muted on *both* tracks (a tone
  leaks into the other leg as echo), with a guard band ``pad_s`` (0.25 s) on each side.
- **Chosen spans**: ``spans=["12.5-20", "30-31:inbound"]`` (``--span``) are muted as given.

How the audio is muted, per codec
---------------------------------
In the capture itself: G.711 and L16 payloads have the muted samples replaced by the
codec's silence byte, sample for sample. G.722, OPUS and AMR-WB are stateful (each frame
decodes from the state the ones before left), so every frame that meets a muted span is
replaced *whole* by a frame of silence of the same duration (G.722 and OPUS: encoded
silence; AMR-WB, which nothing here can encode: NO_DATA frames, which decoders conceal and
then play as silence), so the decoder meets whole valid frames and stays in step. OPUS
packets that carry in-band FEC of a muted frame are replaced too. Nothing else changes:
every frame keeps its counters, timestamps, length and place, so the call's duration and the
tracks' alignment are the same, and every byte outside the muted frames is the original's.

In the WAVs: the muted ranges hold the codec's silence (0, PCMA's +8), every other sample is
the original decode's, bit for bit. (For stateful codecs a decoder reading the redacted
capture again takes up to ~100 ms after a replaced run to reach the original's output
exactly: its state came from silence, not from the tone. The WAVs beside the capture are the
original decode with the muted ranges silent.)

Checked, and failing closed
---------------------------
The redacted copy is read back before it is kept: its audio must equal the original's with
the muted ranges silent (stateless codecs, sample for sample), and no tone may be left in it.
A capture that cannot be redacted safely (a stream whose audio cannot be decoded, a frame
whose silence cannot be written, a tone still heard) raises
:class:`~telnyx_audio.errors.RedactionError` and nothing is written for it: never a partly
redacted file that looks complete. Everything is written in a temporary folder renamed into
place at the end. Redacting a redacted capture changes nothing (masked events are marked
``"redacted": true``; muted audio holds no tone).

The manifest (``redaction.json``)
---------------------------------
Beside every redacted output: the input's path, kind, size and SHA-256; the request
(``dtmf``, the user's spans, ``pad_s``); the detector and its settings; per stream its ids,
keys masked, and each muted span with its tracks, start, end and reason (``dtmf`` with the
detector's evidence: the track it was found on, the tone's own times and level, and ``"*"``
for the digit; or ``span`` given by the user), the ranges muted as applied (grown to whole
frames for stateful codecs), frames replaced per track; and the SHA-256 of every output,
so an auditor can check what was removed and that nothing else changed.

Redaction at capture time is the capture server's and the fork receiver's
(``redact_dtmf=True``; ``telnyx-audio capture --redact-dtmf``): see docs/privacy.md for the
policy (what sits on disk unredacted, for how long, and what a crash leaves).
"""

from __future__ import annotations

from telnyx_audio.redaction.core import MANIFEST_NAME, RedactionResult, capture_kind, redact, redact_audio

__all__ = ["redact", "redact_audio", "RedactionResult", "MANIFEST_NAME", "capture_kind"]
