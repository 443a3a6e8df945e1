"""The capture server under hostile clients, on 127.0.0.1: every attack bounded in time and count."""

import asyncio
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import media_obj, start_obj, tone_frames
from telnyx_audio.streams.server import CaptureServer
from telnyx_audio.simulators.stream import simulate, simulate_async

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example_call.jsonl"
TOKEN = "s3cret-token-9f8e7d"


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def finished(srv, n=1, timeout=30.0):
    wait_for(lambda: len(srv.streams) >= n and all(i.state in ("done", "error") for i in srv.streams), timeout)
    return srv.streams


def call_messages(stream_id, frames):
    start = start_obj(stream_id=stream_id)
    return [json.dumps(start)] + [json.dumps(media_obj(f, stream_id=stream_id)) for f in frames] + \
        [json.dumps({"event": "stop", "stream_id": stream_id, "stop": {}})]


def closed(sock, timeout):
    """Whether the server closed a raw socket within ``timeout`` (what it sent first is read)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
        return True
    except (TimeoutError, socket.timeout):
        return False
    except ConnectionResetError:
        return True


def test_silent_sockets_are_refused_past_the_cap_and_closed_at_the_deadline_while_a_call_lands(tmp_path):
    with CaptureServer(tmp_path / "out", auth_token=TOKEN, auth_timeout_s=1.0, max_connections=40,
                       max_connections_per_address=30) as srv:
        silent = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(30)]
        over = socket.create_connection(("127.0.0.1", srv.port))  # the 31st from this address
        over.settimeout(2)
        assert over.recv(200).startswith(b"HTTP/1.1 503")
        over.close()

        async def upgraded_but_silent():  # past the upgrade, never a credential: closed 1008
            ws = await connect(f"ws://127.0.0.1:{srv.port}/", compression=None, open_timeout=5)
            t0 = time.monotonic()
            await asyncio.wait_for(ws.wait_closed(), 5)
            return ws.close_code, time.monotonic() - t0
        time.sleep(1.5)  # the silent ones have had their deadline
        assert all(closed(s, 1.0) for s in silent)
        for s in silent:
            s.close()
        code, waited = asyncio.run(upgraded_but_silent())
        assert code == 1008 and waited < 4.0
        report = simulate(EXAMPLE, srv.url_with_token())
        [info] = finished(srv)
    assert report.close_code == 1000 and info.state == "done" and info.frames == {"inbound": 400, "outbound": 400}
    assert srv.refused >= 32


def test_an_authenticated_stream_that_never_starts_is_closed_at_the_start_deadline(tmp_path):
    async def connected_only():
        async with connect(srv.url_with_token(), compression=None) as ws:
            await ws.send(json.dumps({"event": "connected", "version": "1.0.0"}))
            t0 = time.monotonic()
            await asyncio.wait_for(ws.wait_closed(), 5)
            return ws.close_code, ws.close_reason, time.monotonic() - t0

    with CaptureServer(tmp_path / "out", auth_token=TOKEN, start_timeout_s=1.0) as srv:
        code, reason, waited = asyncio.run(connected_only())
        [info] = finished(srv)
    assert code == 1008 and "start" in reason and waited < 4.0
    assert info.state == "error" and info.error == "refused: no start message within 1 s of connecting"


def server_process(out, *args, preexec=None):
    """The command-line server in its own process (this tree's code), its log on stderr in a file."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(Path(out).parent / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "telnyx_audio", "capture", "--port", "0", "--out", str(out), *args],
                            stdout=subprocess.PIPE, stderr=log, text=True, env=env, preexec_fn=preexec)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise AssertionError(line + Path(log.name).read_text())
    port = int(line.split("listening on ws://127.0.0.1:")[1].split("/")[0])
    return proc, port, log


def stop_process(proc, log):
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    log.close()
    return out + Path(log.name).read_text()


def peak_rss_kb(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]), int(status.split("VmRSS:")[1].split()[0])


def raw_websocket(port, headers=()):
    """A hand-made WebSocket client socket past its upgrade: a hostile peer follows no library."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
    sock.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def text_frame(text):
    """One masked text frame (a zero mask: the payload goes as is)."""
    data = text.encode()
    n = len(data)
    size = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big") if n < 65536 \
        else bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return b"\x81" + size + b"\0\0\0\0" + data


def flood(port, message, n):
    """Send ``n`` messages without reading; returns the close code the server sent (read meanwhile)."""
    import threading

    sock = raw_websocket(port, [("x-telnyx-streaming-auth-token", TOKEN)])
    got = bytearray()

    def read():
        try:
            while chunk := sock.recv(65536):
                got.extend(chunk)
        except OSError:
            pass
    reader = threading.Thread(target=read)
    reader.start()
    frame = text_frame(message)
    try:
        for _ in range(n):
            sock.sendall(frame)
    except OSError:  # the server closed it: what we wanted
        pass
    reader.join(30)
    sock.close()
    assert got[:1] == b"\x88", bytes(got[:20])
    return int.from_bytes(got[2:4], "big")


def test_a_pre_start_flood_is_cut_at_the_allowance_and_the_server_stays_small(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    proc, port, log = server_process(tmp_path / "out", "--auth-token", TOKEN)
    try:
        time.sleep(1.0)  # its finalising workers are up: the baseline is the idle server
        base, _ = peak_rss_kb(proc.pid)
        big = json.dumps({"event": "martian", "fill": "x" * 1_000_000})  # under the 1 MiB message limit
        small = json.dumps({"event": "martian", "fill": "y" * 1_000})
        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(lambda args: flood(port, *args), [(big, 64)] * 8 + [(small, 200)] * 4))
        peak, _ = peak_rss_kb(proc.pid)
    finally:
        output = stop_process(proc, log)
    assert codes == [1009] * 8 + [1008] * 4
    assert (peak - base) < 64_000, f"the server grew by {(peak - base) / 1000:.0f} MB"
    kept = sorted((tmp_path / "out").iterdir())  # what the small flooders sent is kept, with the error
    assert len(kept) == 4
    for folder in kept:
        summary = json.loads((folder / "summary.json").read_text())
        assert "before start" in summary["capture_server"]["error"]
        assert (folder / "messages.jsonl").stat().st_size < 70_000
    assert output.count("refused 127.0.0.1") == 12 and TOKEN not in output


def finished_log(folder, frames):
    folder.mkdir()
    lines = [json.dumps({"received_us": 1, "message": json.loads(m)}) for m in call_messages(folder.name, frames)]
    (folder / "messages.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def stuck_log(folder):
    """A stream folder whose log never ends (a FIFO nobody writes): its finalising cannot finish."""
    folder.mkdir()
    os.mkfifo(folder / "messages.jsonl")
    return folder


def test_a_finalising_that_never_ends_is_stopped_at_its_limit_and_smaller_calls_go_first(tmp_path):
    from telnyx_audio.streams.server._finalize import FinalizeFailed, FinalizerPool

    async def main():
        pool = FinalizerPool(1, timeout_s=1.5, memory_bytes=1 << 30)
        await pool.warm()
        t0 = time.monotonic()
        done = {}

        async def job(folder, cost):
            try:
                reply = await pool.run(folder, {"ended_by": "stop"}, cost)
            except FinalizeFailed as exc:
                reply = {"ok": False, "error": str(exc)}
            done[folder.name] = (reply, time.monotonic() - t0)

        first = asyncio.ensure_future(job(stuck_log(tmp_path / "stuck-1"), 10.0))
        await asyncio.sleep(0.2)  # it holds the only worker; two more queue behind it
        await asyncio.gather(first, job(stuck_log(tmp_path / "stuck-2"), 1e6),
                             job(finished_log(tmp_path / "normal", tone_frames(50)), 1.0))
        await pool.close()
        return done

    done = asyncio.run(main())
    normal, normal_at = done["normal"]
    assert normal["ok"] and normal["summary"]["duration_s"] == 1.0 and normal["summary"]["capture_server"]["ended_by"] == "stop"
    # the normal call waited for the first stuck job's limit only: it went before the second
    assert 1.4 < normal_at < done["stuck-2"][1] - 1.4
    for name in ("stuck-1", "stuck-2"):
        reply, _ = done[name]
        assert not reply["ok"] and "longer than 1.5 s" in reply["error"]


async def send_all(port, messages):
    async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
        for m in messages:
            await ws.send(m)
        await asyncio.wait_for(ws.wait_closed(), 30)


def test_a_full_disk_leaves_honest_summaries_no_partial_wavs_and_counts_of_what_was_written(tmp_path):
    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))  # writes past 60 kB fail: EFBIG

    proc, port, log = server_process(tmp_path / "out", preexec=small_files)
    try:
        try:
            code = simulate(EXAMPLE, f"ws://127.0.0.1:{port}/").close_code  # 318 kB of log: fails part way
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
        frames = tone_frames(20)  # a short log, with a 4 s gap: its WAVs are past the limit
        for f in frames[20:]:
            f["chunk"] += 200
            f["timestamp"] += 4000
        asyncio.run(send_all(port, call_messages("gappy", frames)))
        time.sleep(1.5)
    finally:
        output = stop_process(proc, log)
    assert code == 1011 and "cannot write the capture" in output
    for folder in (tmp_path / "out").iterdir():
        summary = json.loads((folder / "summary.json").read_text())  # whole, never 0 bytes
        log_lines = (folder / "messages.jsonl").read_bytes().split(b"\n")
        media = sum(1 for line in log_lines if b'"event": "media"' in line and line.endswith(b"}}"))
        assert sum(summary["capture_server"]["frames_received"].values()) == media
        assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left
        for wav in folder.glob("*.wav"):  # what is there is whole
            assert soundfile.info(wav).frames > 0
        assert summary.get("error") or summary["capture_server"]["error"]
    failed = json.loads((tmp_path / "out" / "gappy" / "summary.json").read_text())
    assert "cannot write the outputs" in failed["error"] and failed["capture_server"]["ended_by"] == "stop"
    assert sorted(p.name for p in (tmp_path / "out" / "gappy").iterdir()) == ["messages.jsonl", "summary.json"]


def test_a_duplicated_auth_header_is_refused_401_not_500(tmp_path):
    with CaptureServer(tmp_path / "out", auth_token=TOKEN) as srv:
        for headers in ([("x-telnyx-streaming-auth-token", TOKEN), ("x-telnyx-streaming-auth-token", TOKEN)],
                        [("Authorization", f"Bearer {TOKEN}"), ("Authorization", "Bearer other")]):
            with pytest.raises(InvalidStatus) as err:
                asyncio.run(_connect(srv.port, headers))
            assert err.value.response.status_code == 401
    assert list((tmp_path / "out").iterdir()) == []


async def _connect(port, headers):
    async with connect(f"ws://127.0.0.1:{port}/", additional_headers=headers, compression=None):
        pass


def test_the_token_stays_out_of_url_repr_html_and_logs_and_each_event_is_logged(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="telnyx_audio")
    with CaptureServer(tmp_path / "out", auth_token=TOKEN, stats_interval_s=0.2) as srv:
        with pytest.raises(InvalidStatus):
            simulate(EXAMPLE, f"ws://127.0.0.1:{srv.port}/", auth_token="wrong", token_in="header")
        simulate(EXAMPLE, srv.url_with_token(), realtime=True, disconnect_after=0.6)
        finished(srv)
        shown = [srv.url, repr(srv), srv._repr_html_(), srv.public_url, repr(srv.streams)]
    assert srv.url.endswith("/***") and TOKEN in srv.url_with_token()
    assert not any(TOKEN in text for text in shown) and TOKEN not in caplog.text
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("refused 127.0.0.1: wrong stream auth token") for line in lines)
    assert any(" started: call_control_id=" in line and "from 127.0.0.1" in line for line in lines)
    assert any(" ended (disconnect): 60 frames, 0.6 s" in line for line in lines)
    assert any("streams active" in line and "frames/s" in line for line in lines)
    assert all(r.name.startswith("telnyx_audio.") for r in caplog.records)


def test_a_token_sent_in_the_connected_message_is_masked_in_the_capture_log(tmp_path):
    with CaptureServer(tmp_path / "out", auth_token=TOKEN) as srv:
        simulate(EXAMPLE, f"ws://127.0.0.1:{srv.port}/", auth_token=TOKEN, token_in="connected", disconnect_after=0.2)
        [info] = finished(srv)
    text = (info.folder / "messages.jsonl").read_text()
    assert info.state == "done" and TOKEN not in text and '"***"' in text.splitlines()[0]


def test_finished_calls_are_kept_as_a_bounded_history_without_their_parameters(tmp_path):
    with CaptureServer(tmp_path / "out", history=2) as srv:
        async def calls():
            for n in range(4):
                await simulate_async(EXAMPLE, srv.url, seed=n, disconnect_after=0.2)
        asyncio.run(calls())
        wait_for(lambda: srv._n_finished == 4)
        infos = srv.streams
    assert len(infos) == 2 and all(i.state == "done" and i.custom_parameters == {} for i in infos)
    assert len(list((tmp_path / "out").iterdir())) == 4
