"""telnyx_audio: capture, decode and analyse Telnyx voice-call audio."""
