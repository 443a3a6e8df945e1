"""Talking back under hostile input: encoding off the event loop, marks the server never sent,
and rates Telnyx does not take (#24 items 11-13)."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from websockets.asyncio.client import connect

from conftest import start_obj
from telnyx_audio.codecs import encode_mp3, encode_payloads
from telnyx_audio.codecs.outbound import BIDIRECTIONAL_RATES, encoding_rate
from telnyx_audio.streams.server import CaptureServer


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_send_audio_from_on_stream_encodes_off_the_event_loop_so_other_streams_keep_flowing(tmp_path):
    seconds = 240  # mp3 encoding of 4 min takes seconds
    speech = (8000 * np.sin(np.arange(16000 * seconds) / 7)).astype(np.int16)
    t0 = time.perf_counter()
    encode_mp3(speech[: 16000 * 20], 16000)
    encode_s = (time.perf_counter() - t0) * seconds / 20  # what the whole send costs to encode
    gaps: list[float] = []
    sends: list[asyncio.Future] = []

    async def on_stream(stream):
        if stream.stream_id == "talker":
            sends.append(stream.send_audio(speech, 16000, mode="mp3"))

    async def ticker(stop):
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    with CaptureServer(tmp_path / "out", on_stream=on_stream) as srv:
        async def main():
            stop = asyncio.Event()
            tick = asyncio.run_coroutine_threadsafe(ticker(stop), srv._loop)  # in the server's loop
            async with connect(srv.url) as ws:
                await ws.send(json.dumps(start_obj(stream_id="talker")))
                await asyncio.sleep(max(2.0, 0.6 * encode_s))
            srv._loop.call_soon_threadsafe(stop.set)
            await asyncio.wrap_future(tick)

        run(main())
    assert encode_s > 1.0 and sends
    # The loop of the server kept turning while minutes of MP3 were encoded.
    assert max(gaps) < min(0.5, encode_s / 3), (max(gaps), encode_s)


def test_mark_echoes_for_names_the_server_never_sent_are_counted_not_kept(tmp_path):
    handles = []

    async def on_stream(stream):
        handles.append(stream)
        await stream.mark("greeting-done")

    with CaptureServer(tmp_path / "out", on_stream=on_stream) as srv:
        async def main():
            async with connect(srv.url, max_size=None) as ws:
                await ws.send(json.dumps(start_obj(stream_id="s1")))
                assert json.loads(await ws.recv())["mark"]["name"] == "greeting-done"
                for i in range(200):
                    await ws.send(json.dumps({"event": "mark", "stream_id": "s1",
                                              "mark": {"name": f"{i}-" + "x" * 65536}}))
                await ws.send(json.dumps({"event": "mark", "stream_id": "s1", "mark": {"name": "greeting-done"}}))
                deadline = time.monotonic() + 20
                while handles[0].marks.get("greeting-done") is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                assert handles[0].marks["greeting-done"] is not None
                assert list(handles[0].marks) == ["greeting-done"]
                assert handles[0].unsolicited_marks == 200

        run(main())
    with pytest.raises(ValueError, match="at most 1024 characters"):
        handles[0].mark("m" * 2000)


@pytest.mark.parametrize("rate, error", [(1e9, ValueError), (True, TypeError), (1, ValueError), (7, ValueError),
                                         ("8000", TypeError), (np.float64(1e12), ValueError)])
def test_a_sample_rate_outside_what_audio_comes_at_is_refused_by_name(rate, error):
    pcm = np.zeros(800, np.int16)
    with pytest.raises(error, match="sample_rate"):
        encode_payloads(pcm, rate, "PCMU")
    with pytest.raises(error, match="sample_rate"):
        encode_mp3(pcm, rate)


@pytest.mark.parametrize("target", [10**9, 7, True, "8000", 44100, 12000])
def test_a_target_rate_telnyx_does_not_take_is_refused_naming_the_accepted_set(target):
    with pytest.raises(ValueError, match="8000, 16000, 22050, 24000, 48000"):
        encode_payloads(np.zeros(800, np.int16), 8000, "L16", target_rate=target)
    assert [encoding_rate("L16", r) for r in BIDIRECTIONAL_RATES] == list(BIDIRECTIONAL_RATES)


def test_empty_audio_is_refused_rather_than_sent_as_nothing_or_an_empty_mp3():
    with pytest.raises(ValueError, match="empty"):
        encode_mp3(np.zeros(0, np.int16), 16000)
    with pytest.raises(ValueError, match="empty"):
        encode_payloads(np.zeros(0, np.float32), 16000, "G722")
