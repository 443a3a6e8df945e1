"""The capture server on 127.0.0.1 with real WebSocket clients (the simulator and plain ones)."""

import asyncio
import json
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import media_obj, start_obj, tone_frames
from telnyx_audio.read import read_capture
from telnyx_audio.streams.server import CaptureServer, serve
from telnyx_audio.simulators.stream import call_messages, simulate, simulate_async

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example_call.jsonl"
CLI = Path(sys.executable).parent / "telnyx-audio"


@pytest.fixture
def server(tmp_path):
    srv = CaptureServer(tmp_path / "out").start()
    yield srv
    srv.stop()


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def finished(srv, n=1):
    wait_for(lambda: len(srv.streams) >= n and all(i.state in ("done", "error") for i in srv.streams))
    return srv.streams


def test_a_simulated_call_lands_as_wavs_and_a_summary(server):
    report = simulate(EXAMPLE, server.url)
    [info] = finished(server)
    assert info.state == "done" and info.ended_by == "stop" and report.close_code == 1000
    assert sorted(info.files) == ["inbound", "log", "outbound", "stereo", "summary"]
    summary = json.loads((info.folder / "summary.json").read_text())
    assert summary["stream_id"] == report.stream_id and summary["custom_parameters"]["customer_id"] == "customer_123"
    assert summary["dtmf"] == "15" and summary["duration_s"] == 8.0
    original = read_capture(EXAMPLE).recording
    stereo, sr = soundfile.read(info.folder / "stereo.wav", dtype="int16")
    assert sr == 8000 and np.array_equal(stereo.T, original.audio)
    assert info.frames == {"inbound": 400, "outbound": 400} and info.seconds_captured == 8.0


def test_reordered_dropped_and_duplicated_frames_are_recorded_correctly(server):
    options = dict(shuffle=True, drop=0.05, duplicate=0.05, seed=7)
    report = simulate(EXAMPLE, server.url, **options)
    [info] = finished(server)
    timed, _ = call_messages(EXAMPLE, **options)
    sent = [json.loads(m)["media"] for _, m in timed if '"event": "media"' in m]
    rec = read_capture(info.folder / "messages.jsonl").recording
    original = read_capture(EXAMPLE).recording.audio
    for row, track in enumerate(("inbound", "outbound")):
        got = {int(m["chunk"]) for m in sent if m["track"] == track}
        expected = np.zeros_like(original[row])
        for chunk in got:
            expected[(chunk - 1) * 160 : chunk * 160] = original[row][(chunk - 1) * 160 : chunk * 160]
        n = min(expected.size, rec.audio.shape[1])
        assert np.array_equal(rec.audio[row][:n], expected[:n])
    r = rec.reports
    assert r["inbound"].duplicates + r["outbound"].duplicates == report.duplicated
    assert r["inbound"].reordered + r["outbound"].reordered > 0
    missing = sum(x.frames_missing for x in r.values())
    assert 0 < missing <= report.dropped  # a drop at either end is no gap


def test_ten_concurrent_streams_each_get_their_own_complete_folder(server):
    async def many():
        return await asyncio.gather(*(simulate_async(EXAMPLE, server.url, seed=i) for i in range(10)))
    reports = asyncio.run(many())
    infos = finished(server, 10)
    assert len({i.folder for i in infos}) == 10 and all(i.state == "done" for i in infos)
    assert {i.stream_id for i in infos} == {r.stream_id for r in reports}
    assert all(i.frames == {"inbound": 400, "outbound": 400} for i in infos)


@pytest.mark.parametrize("route", ["header", "bearer", "connected", "path"])
def test_auth_is_accepted_by_each_route(tmp_path, route):
    with CaptureServer(tmp_path, auth_token="s3cret-token") as srv:
        simulate(EXAMPLE, f"ws://127.0.0.1:{srv.port}/", auth_token="s3cret-token", token_in=route)
        [info] = finished(srv)
    assert info.state == "done" and info.frames["inbound"] == 400


@pytest.mark.parametrize("route", ["header", "bearer"])
def test_a_wrong_token_in_the_upgrade_is_refused_with_401(tmp_path, route):
    with CaptureServer(tmp_path / "out", auth_token="s3cret-token") as srv:
        with pytest.raises(InvalidStatus) as err:
            simulate(EXAMPLE, f"ws://127.0.0.1:{srv.port}/", auth_token="wrong", token_in=route)
        assert err.value.response.status_code == 401
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("route", [None, "connected", "path"])
def test_no_or_a_wrong_token_after_the_upgrade_is_closed_1008_before_a_byte_is_written(tmp_path, route):
    with CaptureServer(tmp_path / "out", auth_token="s3cret-token") as srv:
        try:
            code = simulate(EXAMPLE, f"ws://127.0.0.1:{srv.port}/", auth_token=None if route is None else "wrong",
                            token_in=route or "header").close_code
        except ConnectionClosed as exc:  # the refusal may arrive while it is still sending
            code = exc.rcvd.code if exc.rcvd else None
        assert code == 1008
        time.sleep(0.2)
        assert srv.streams == []
    assert list((tmp_path / "out").iterdir()) == []


def test_a_client_that_disconnects_without_stop_still_gets_its_wavs_and_summary(server):
    report = simulate(EXAMPLE, server.url, disconnect_after=3.0)
    [info] = finished(server)
    assert report.disconnected_early and info.ended_by == "disconnect" and info.state == "done"
    summary = json.loads((info.folder / "summary.json").read_text())
    assert summary["duration_s"] == 3.0 and (info.folder / "stereo.wav").exists()


async def raw_stream(url, messages):
    """Send messages as a plain client; returns the close code the server gave."""
    async with connect(url, compression=None) as ws:
        try:
            for m in messages:
                await ws.send(m)
            await ws.close()
        except ConnectionClosed:
            pass
    return ws.close_code


def test_malformed_messages_are_counted_and_the_good_audio_is_bit_exact(server):
    frames = tone_frames(50)
    good = [json.dumps({"event": "connected", "version": "1.0.0"}), json.dumps(start_obj())]
    good += [json.dumps(media_obj(f)) for f in frames]
    bad = ["{not json", "[1,2,3]", json.dumps({"event": "media", "media": {"track": "inbound", "payload": "$$$$"}}),
           "line\nbreak", json.dumps({"event": "martian"})]
    mixed = list(good)
    for i, b in enumerate(bad):
        mixed.insert(5 + i * 9, b)
    mixed.append(json.dumps({"event": "stop", "stop": {}}))
    asyncio.run(raw_stream(server.url, mixed))
    [info] = finished(server)
    assert info.bad_messages == 4 and info.state == "done"  # the bad payload is caught by the reader
    cap = read_capture(info.folder / "messages.jsonl")
    assert cap.report.bad_lines == 5
    from conftest import expected_tracks
    want = expected_tracks(frames)
    inbound, outbound = cap.recording.inbound, cap.recording.outbound
    # the media message with bad base64 (and no counters) is a frame of silence where it arrived
    pos = int(np.flatnonzero(inbound[: want["inbound"].size] != want["inbound"])[0]) // 160 * 160
    assert not inbound[pos : pos + 160].any() and np.array_equal(np.delete(inbound, np.s_[pos : pos + 160]), want["inbound"])
    assert np.array_equal(outbound[: want["outbound"].size], want["outbound"]) and not outbound[want["outbound"].size :].any()


@pytest.mark.parametrize("stream_id", ["../../../../tmp/evil", "/etc/passwd", "..", "a/../../b", "v3:ok\\..\\x"])
def test_ids_cannot_write_outside_the_output_root(tmp_path, stream_id):
    out = tmp_path / "out"
    with CaptureServer(out) as srv:
        start = start_obj()
        start["stream_id"] = stream_id
        asyncio.run(raw_stream(srv.url, [json.dumps(start), json.dumps(media_obj(tone_frames(1)[0])),
                                         json.dumps({"event": "stop"})]))
        [info] = finished(srv)
    assert info.folder.resolve().parent == out.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_oversized_message_is_refused_and_what_came_before_is_kept(tmp_path):
    with CaptureServer(tmp_path, max_message_bytes=4096) as srv:
        frames = [json.dumps(media_obj(f)) for f in tone_frames(10)]
        code = asyncio.run(raw_stream(srv.url, [json.dumps(start_obj())] + frames + ["x" * 10000] + frames))
        [info] = finished(srv)
    assert code == 1009
    assert "refused" in info.error and info.frames["inbound"] == 10
    assert read_capture(info.folder / "messages.jsonl").report.events["media"] == 20


def test_talking_back_sends_audio_marks_and_clear_and_sees_the_mark_echo(tmp_path):
    handles = []

    async def on_stream(stream):
        handles.append(stream)
        tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
        await stream.send_audio(tone, 16000)  # 1 s at 16 kHz, sent at the stream's 8 kHz
        await stream.mark("greeting-done")
        await stream.clear()

    with CaptureServer(tmp_path, on_stream=on_stream) as srv:
        report = simulate(EXAMPLE, srv.url, realtime=True, disconnect_after=3.0)
        finished(srv)
    assert len(report.audio_received) == 8000 and report.marks_echoed == ["greeting-done"] and report.clears == 1
    assert handles[0].marks["greeting-done"] is not None
    pcm = np.frombuffer(report.audio_received, np.uint8)
    from telnyx_audio import codecs
    played = codecs.decode(pcm, "PCMU").astype(float)
    assert 0.3 * 32767 < np.abs(played).max() < 0.55 * 32767


def test_serve_runs_inside_a_running_event_loop(tmp_path):
    async def main():
        port_probe = socket.socket()
        port_probe.bind(("127.0.0.1", 0))
        port = port_probe.getsockname()[1]
        port_probe.close()
        task = asyncio.create_task(serve(tmp_path, port=port))
        await asyncio.sleep(0.3)
        report = await simulate_async(EXAMPLE, f"ws://127.0.0.1:{port}/")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return report
    report = asyncio.run(main())
    [folder] = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert folder.name == report.stream_id and (folder / "summary.json").exists()


class CliServer:
    """``telnyx-audio capture`` as a child process; always reaped, its pipes always closed."""

    def __init__(self, *args, preexec=None):
        self.proc = subprocess.Popen([str(CLI), "capture", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, preexec_fn=preexec)
        self.line = self.proc.stdout.readline()
        self.stdout = ""
        if "listening on" not in self.line and "workers" not in self.line:
            self.__exit__()
            raise AssertionError(self.line)

    @property
    def url(self):
        return self.line.split("listening on ")[1].split(" ")[0]

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=30)
        self.stdout += out
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)


def test_sigkill_mid_call_leaves_a_log_that_rebuilds_every_frame_received(tmp_path):
    with CliServer("--port", "0", "--out", str(tmp_path / "out")) as srv:
        frames = tone_frames(200)
        msgs = [json.dumps(start_obj())] + [json.dumps(media_obj(f)) for f in frames]

        async def send_and_hold():
            ws = await connect(srv.url, compression=None)
            for m in msgs:
                await ws.send(m)
            await asyncio.sleep(0.5)  # the server has them; now it dies mid-call
            srv.stop(signal.SIGKILL)
            ws.transport.abort()
        asyncio.run(send_and_hold())
    [folder] = list((tmp_path / "out").iterdir())
    assert not (folder / "summary.json").exists()  # it never got to finish
    with open(folder / "messages.jsonl", "ab") as f:
        f.write(b'{"received_us": 1, "message": {"event": "med')  # a partial last line
    out = subprocess.run([str(CLI), "decode", str(folder / "messages.jsonl"), "--out", str(tmp_path / "rebuilt")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    [rebuilt] = (tmp_path / "rebuilt").glob("*/summary.json")  # named from the stream id
    summary = json.loads(rebuilt.read_text())
    assert summary["track_reports"]["inbound"]["frames_received"] == 200
    assert summary["track_reports"]["outbound"]["frames_received"] == 200 and summary["bad_lines"] == 1


def test_sigterm_finalises_every_open_stream(tmp_path):
    with CliServer("--port", "0", "--out", str(tmp_path / "out")) as srv:
        async def two_open_calls():
            sockets = [await connect(srv.url, compression=None) for _ in range(2)]
            for n, ws in enumerate(sockets):
                start = start_obj()
                start["stream_id"] = f"call-{n}"
                await ws.send(json.dumps(start))
                for f in tone_frames(20):
                    await ws.send(json.dumps(media_obj(f, stream_id=f"call-{n}")))
            await asyncio.sleep(0.3)
            srv.proc.send_signal(signal.SIGTERM)
            for ws in sockets:
                await ws.wait_closed()
        asyncio.run(two_open_calls())
        code = srv.stop()
    assert code == 0 and "2 streams, 0 with errors" in srv.stdout
    for n in range(2):
        summary = json.loads((tmp_path / "out" / f"call-{n}" / "summary.json").read_text())
        assert summary["capture_server"]["ended_by"] == "shutdown" and summary["duration_s"] == 0.4


def test_a_disk_error_is_reported_for_that_stream_and_the_server_keeps_serving(tmp_path):
    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))  # writes past 60 kB fail: EFBIG

    with CliServer("--port", "0", "--out", str(tmp_path / "out"), preexec=small_files) as srv:
        try:
            code = simulate(EXAMPLE, srv.url).close_code  # 318 kB of log: fails part way
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
        assert code == 1011
        ok = simulate(EXAMPLE, srv.url, disconnect_after=0.3)  # a short call still lands
        time.sleep(1)
        srv.stop()
    assert "cannot write the capture" in srv.stdout and "2 streams, 1 with errors" in srv.stdout
    assert (tmp_path / "out" / ok.stream_id / "summary.json").exists()


def test_workers_share_the_port_and_capture_every_call(tmp_path):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with CliServer("--port", str(port), "--out", str(tmp_path / "out"), "--workers", "2") as srv:
        url = f"ws://127.0.0.1:{port}/"
        def listening():
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0
        wait_for(listening)
        time.sleep(0.5)

        async def calls():
            return await asyncio.gather(*(simulate_async(EXAMPLE, url, seed=i, disconnect_after=1.0) for i in range(6)))
        reports = asyncio.run(calls())
        time.sleep(1.5)
        srv.stop()
    folders = {p.name for p in (tmp_path / "out").iterdir()}
    assert folders == {r.stream_id for r in reports}
    assert all((tmp_path / "out" / f / "summary.json").exists() for f in folders)
