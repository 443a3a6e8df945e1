"""Diagnosis of a call: what went wrong, on which side, since when, and how good it was.

:func:`diagnose` joins what the audio shows (:mod:`telnyx_audio.analysis.evidence`: one-way
audio, echo, clipping, levels, noise, dropouts, dead air, slow replies, DTMF), what the
network shows (:mod:`telnyx_audio.diagnosis.network`: loss and its burstiness from RTP
sequence numbers or frame counters, jitter and simulated jitter buffers) and what Telnyx
reported (``call_quality_stats`` in ``call.hangup``), and rates each direction with the
E-model (:func:`telnyx_audio.emodel`: ITU-T G.107 / G.107.1).

This layer stands above :mod:`telnyx_audio.plots` and :mod:`telnyx_audio.read` (it reads
captures and draws findings on ``plot_call``) and below the batch and the command line.
The finding codes (stable) are :data:`CODES`; their meaning is in ``docs/diagnosis.md``.
"""

from __future__ import annotations

from telnyx_audio.analysis.evidence import CODES, SEVERITIES, THRESHOLDS
from telnyx_audio.diagnosis.diagnose import FINDING_COLUMNS, Diagnosis, diagnose, diagnose_captures
from telnyx_audio.diagnosis.network import BUFFERS, NETWORK_THRESHOLDS, TrackNetwork, network_of, telnyx_quality

__all__ = ["diagnose", "diagnose_captures", "Diagnosis", "CODES", "SEVERITIES", "THRESHOLDS", "NETWORK_THRESHOLDS",
           "FINDING_COLUMNS", "BUFFERS", "TrackNetwork", "network_of", "telnyx_quality"]
