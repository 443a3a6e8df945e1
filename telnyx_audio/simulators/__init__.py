"""Fake Telnyx: play a call (a WAV, or any capture) into our servers.

- :mod:`.stream`: a media stream over WebSocket (:func:`simulate`), as ``streaming_start`` sends it.
- :mod:`.fork`: RTP to two UDP ports (:func:`simulate_fork`), as ``fork_start`` sends it.

They read their input through :func:`telnyx_audio.read_captures`, so they stand above every
source, beside the other consumers.
"""
