"""Entry point of a finalising worker process (see :mod:`telnyx_audio.streams.server._finalize`)."""

if __name__ == "__main__":
    from telnyx_audio.streams.server._finalize import _worker_main

    _worker_main()
