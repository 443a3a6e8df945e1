"""``make demo``: the main job on the bundled example data, no Telnyx account needed.

1. Decode the example capture (``data/example_call.jsonl``) to WAV with its summary.
2. Start the capture server, stream the example call into it with the simulator (a little
   network trouble included), and show where the WAVs and summary landed.
3. Load the example call's webhooks into a DataFrame.
4. Receive the same call as a fork (RTP over UDP) with the fork receiver and simulator.

Run from the repository root: ``python -m telnyx_audio.demo [--data data] [--out out/demo]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data")
    ap.add_argument("--out", default="out/demo")
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)

    from telnyx_audio.read import read_capture
    from telnyx_audio.streams.server import CaptureServer
    from telnyx_audio.simulators.stream import simulate
    from telnyx_audio.model.wav import write_wavs
    from telnyx_audio.webhooks import call_timeline, load_webhooks

    print("1. decode the example capture")
    cap = read_capture(data / "example_call.jsonl")
    files = write_wavs(cap.recording, out / "decoded")
    (out / "decoded" / "summary.json").write_text(json.dumps(cap.summary(), indent=2) + "\n")
    print(f"   {cap!r}")
    for report in cap.recording.reports.values():
        print(f"   {report.describe()}; gaps at {[(round(s, 2), ms) for s, ms in report.gaps]}")
    print(f"   -> {', '.join(str(p) for p in files.values())}")

    print("2. capture the same call live: capture server + Telnyx simulator")
    with CaptureServer(out / "captures") as server:
        print(f"   server listening on {server.url}")
        report = simulate(data / "example_call.jsonl", server.url, shuffle=True, drop=0.01, duplicate=0.01, seed=1)
        print(f"   simulator sent {report.media_sent} media messages ({report.dropped} lost, {report.duplicated} doubled on the way)")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(i.state not in ("done", "error") for i in server.streams):
            time.sleep(0.05)
        info = server.streams[0]
    summary = json.loads((info.folder / "summary.json").read_text())
    print(f"   stream {info.stream_id}: {info.state}, ended by {info.ended_by}")
    print(f"   WAVs and summary in {info.folder}/: {', '.join(sorted(info.files.values()))}")
    for name, t in summary["track_reports"].items():
        arrived = t["frames_expected"] - t["frames_missing"]
        print(f"   {name}: {arrived} of {t['frames_expected']} frames arrived, {t['n_gaps']} gaps ({t['gap_ms']:.0f} ms),"
              f" {t['duplicates']} duplicates dropped, {t['reordered']} reordered")
    print(f"   dtmf {summary['dtmf']!r}, custom_parameters {summary['custom_parameters']}")

    print("3. the call's webhooks, in pandas")
    hooks = load_webhooks(data / "example_webhooks.jsonl")
    timeline = call_timeline(hooks)[["t_s", "event_type"]]
    print("   " + timeline.to_string(index=False).replace("\n", "\n   "))

    print("4. receive the same call as a fork (fork_start's RTP): fork receiver + fork simulator")
    _fork(data, out)
    return 0


def _fork(data: Path, out: Path) -> None:
    """The example call as RTP to two UDP ports, with loss, reordering, an SSRC change and its
    key presses; the receiver writes the capture, then WAVs and summary.json."""
    from telnyx_audio.forks import ForkReceiver
    from telnyx_audio.simulators.fork import simulate_fork

    # Told the payload type the simulator sends its key presses under, as fork_start's SDP
    # would tell a real receiver: its capture then decodes with no guess (decode --strict).
    with ForkReceiver(out / "forks", payload_types=["101=telephone-event/8000"]) as receiver:
        session = receiver.allocate("demo-fork")
        print(f"   receiver: rx udp:127.0.0.1:{session.rx_port} (inbound), tx udp:127.0.0.1:{session.tx_port} (outbound)")
        sent = simulate_fork(data / "example_call.jsonl", ("127.0.0.1", session.rx_port),
                             ("127.0.0.1", session.tx_port), drop=0.01, reorder=0.05, duplicate=0.01,
                             ssrc_change_at=4.0, seed=1)  # the call's own DTMF, as RFC 4733 events
        print(f"   simulator sent {sent.packets_sent} RTP packets ({sent.dropped} lost, {sent.duplicated} doubled,"
              f" {sent.reordered} reordered on the way; SSRC change at 4 s)")
        deadline = time.monotonic() + 10
        while sum(session.packets) < sent.packets_sent and time.monotonic() < deadline:
            time.sleep(0.02)
        receiver.finish(session)
    summary = session.summary or {}
    print(f"   {session.state}: WAVs and summary in {session.folder}/ ({session.capture_path.name} holds every datagram)")
    for name, r in summary.get("rtp", {}).items():
        print(f"   {name}: {r['packets']} packets, {r['missing']} never arrived, duplicated {r['duplicated']}, reordered"
              f" {r['reordered']}, jitter {r['jitter_ms']:.1f} ms, SSRCs {', '.join(r['ssrcs'])}")
    events = summary.get("dtmf_events", [])
    print(f"   dtmf {summary.get('dtmf', '')!r}: " + ", ".join(
        f"{e['digit']} at {e['start_s']:.2f} s for {e['duration_s'] * 1000:.0f} ms" for e in events))


if __name__ == "__main__":
    raise SystemExit(main())
