"""Packet captures as Captures: Wireshark's statistics (tshark the oracle), decoded audio
(ffmpeg the oracle), the CLI (decode --pair/--swap-tracks, export-pcap), and a live SIPp call
recorded by tcpdump over loopback."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from telnyx_audio import read_captures, rtp
from telnyx_audio.cli import main
from telnyx_audio.errors import NotACaptureError
from telnyx_audio.packets.ladder import plot_ladder, sip_ladder
from telnyx_audio.packets.read import iter_pcap_captures, read_pcap_captures
from telnyx_audio.rtp.datagrams import Records

VEC = Path(__file__).parent / "vectors" / "pcap"
sys.path.insert(0, str(VEC.parent))
import make_pcap_vectors as mk  # noqa: E402

_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+0x([0-9A-F]{8})\s+.*?\s(\d+)\s+(-?\d+) \(\S+\)"
                  r"\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)")
KEYS = ("packets", "lost", "min_delta_ms", "mean_delta_ms", "max_delta_ms", "min_jitter_ms", "mean_jitter_ms",
        "max_jitter_ms")


def tshark_streams(path: Path, *extra: str) -> dict[tuple, dict[str, float]]:
    """``tshark -q -z rtp,streams`` as {(src, sport, dst, dport, ssrc): figures}."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed: apt-get install tshark")
    out = subprocess.run(["tshark", "--enable-heuristic", "rtp_udp", "-r", str(path), "-q", "-z", "rtp,streams",
                          *extra], capture_output=True, text=True, check=True).stdout
    got = {}
    for line in out.splitlines():
        m = _ROW.match(line)
        if m:
            src, sport, dst, dport, ssrc, pk, lost, *nums = m.groups()
            got[(src, int(sport), dst, int(dport), ssrc.lower())] = dict(zip(KEYS, [int(pk), int(lost), *map(float, nums)]))
    return got


def ours(captures) -> dict[tuple, dict]:
    got = {}
    for cap in captures:
        for stats in cap.report.rtp.values():
            for s in stats.streams:
                got[(s["src"], s["sport"], s["dst"], s["dport"], s["ssrc"])] = s
    return got


def plain(path: Path, tmp_path: Path) -> Path:
    if path.suffix != ".gz":
        return path
    out = tmp_path / path.name[:-3]
    out.write_bytes(gzip.decompress(path.read_bytes()))
    return out


def assert_same_as_tshark(captures, want):
    got = ours(captures)
    assert want and set(want) <= set(got)
    for key, figures in want.items():
        for k, v in figures.items():
            assert got[key][k] == pytest.approx(v, abs=0.0015), (key, k, got[key][k], v)


def sip_ports(captures) -> set[int]:
    return {int(r["source"].rsplit(":", 1)[1]) for c in captures for r in c.report.ladder}


@pytest.mark.parametrize("name", ["sipp_udp_call.pcap.gz", "sipp_tcp_call.pcapng.gz", "impaired.pcap", "reinvite.pcap",
                                  "eth.pcap", "ipv6.pcap", "fork_tcpdump.pcap", "two_way_no_sip.pcap", "sip_tcp.pcap"])
def test_rtp_statistics_are_wiresharks_to_the_microsecond(name, tmp_path):
    caps = read_pcap_captures(VEC / name)
    proto = "tcp" if "tcp" in name else "udp"
    extra = [a for p in sip_ports(caps) for a in ("-d", f"{proto}.port=={p},sip")]
    assert_same_as_tshark(caps, tshark_streams(plain(VEC / name, tmp_path), *extra))


def test_the_summary_keeps_the_wireshark_keys_and_the_sip_facts():
    (cap,) = read_pcap_captures(VEC / "reinvite.pcap")
    s = cap.summary()
    assert s["source_kind"] == "pcap"
    for key in ("packets", "expected", "lost", "sequence_errors", "min_delta_ms", "mean_delta_ms", "max_delta_ms",
                "mean_jitter_ms", "max_jitter_ms", "max_skew_ms", "clock_drift_ms", "ssrcs", "payload_types"):
        assert key in s["rtp"]["inbound"]
    sip = s["sip"]
    assert (sip["call_id"], sip["codec"], sip["final_status"], sip["hung_up_by"]) == ("reinvite@test", "PCMA/8000",
                                                                                      200, "caller")
    assert "alice" in sip["from"] and "bob" in sip["to"]
    assert s["rtcp"][1]["blocks"][0]["rtt_ms"] == pytest.approx(30.0, abs=0.01)
    json.dumps(s)


def test_a_fork_capture_exported_to_pcap_gives_tshark_the_forks_own_statistics(tmp_path):
    from telnyx_audio.forks.rtpcap import read_records
    from telnyx_audio.forks.read import read_fork_capture
    from telnyx_audio.simulators.fork import fork_packets

    packets, _ = fork_packets(np.random.default_rng(0).integers(-8000, 8000, (2, 8000 * 3)).astype(np.int16),
                              drop=0.03, reorder=0.05, duplicate=0.03, seed=4)
    from telnyx_audio.forks.rtpcap import ForkCaptureWriter

    cap_path = tmp_path / "fork.rtpcap"
    with ForkCaptureWriter(cap_path, {"rx_port": 40000, "tx_port": 40002, "host": "0.0.0.0"}) as w:
        for p in packets:
            w.write(p.track, p.data, int(1_700_000_000_000_000 + p.due_s * 1e6))
    out = tmp_path / "fork.pcap"
    assert main(["export-pcap", str(cap_path), str(out)]) == 0
    fork = read_fork_capture(cap_path)
    want = tshark_streams(out, "-d", "udp.port==40000,rtp", "-d", "udp.port==40002,rtp")
    for track, port in (("inbound", 40000), ("outbound", 40002)):
        stats = fork.report.rtp[track]
        (key,) = [k for k in want if k[3] == port]
        for k in KEYS:
            assert getattr(stats, k) == pytest.approx(want[key][k], abs=0.0015), (track, k)
    # Read back as a packet capture with --pair: the same audio.
    (back,) = read_captures(out, pair=(40000, 40002))
    assert np.array_equal(back.recording.audio, fork.recording.audio)
    assert read_records(cap_path).meta["rx_port"] == 40000


def test_decoded_pcma_is_what_ffmpeg_decodes_from_the_same_payloads(tmp_path):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed: apt-get install ffmpeg")
    (cap,) = read_pcap_captures(VEC / "sipp_udp_call.pcap.gz")
    from telnyx_audio.packets.calls import CallReader

    (call,) = list(CallReader(VEC / "sipp_udp_call.pcap.gz"))
    rows = np.flatnonzero(call.track == 0)
    cols = rtp.parse_packets(call.buf, call.offset[rows], call.length[rows])
    pcma = cols.payload_type == 8
    raw = b"".join(call.buf[o : o + n].tobytes() for o, n in zip(cols.payload_offset[pcma], cols.payload_length[pcma]))
    (tmp_path / "in.alaw").write_bytes(raw)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "alaw", "-ar", "8000", "-ac", "1", "-i", str(tmp_path / "in.alaw"),
                    "-f", "s16le", str(tmp_path / "out.raw")], check=True)
    want = np.frombuffer((tmp_path / "out.raw").read_bytes(), np.int16)
    got = cap.recording.audio[0]
    start = next(i for i in np.flatnonzero(got == want[0]) if np.array_equal(got[i : i + 64], want[:64]))
    assert np.array_equal(got[start : start + want.size], want)


def test_read_captures_knows_a_packet_capture_by_its_bytes_not_its_name(tmp_path):
    for name in ("eth.pcap", "eth.pcap.gz", "two_interfaces.pcapng"):
        renamed = tmp_path / (name + ".bin")
        renamed.write_bytes((VEC / name).read_bytes())
        (cap,) = read_captures(renamed)
        assert cap.report.sip["call_id"] in ("call-1@test", "ng@test")


def test_a_capture_with_no_call_is_not_a_capture(tmp_path):
    path = tmp_path / "dns.pcap"
    mk.write_pcap(path, [(mk.T0, mk.udp_packet("10.0.0.1", 5353, "10.0.0.2", 53, b"\x12\x34" * 10))])
    with pytest.raises(NotACaptureError, match="holds no call"):
        read_pcap_captures(path)


def test_swap_tracks_swaps_inbound_and_outbound():
    (a,) = read_pcap_captures(VEC / "eth.pcap")
    (b,) = read_pcap_captures(VEC / "eth.pcap", swap_tracks=True)
    assert np.array_equal(a.recording.audio[::-1], b.recording.audio)
    assert a.report.rtp["inbound"].ssrcs == b.report.rtp["outbound"].ssrcs


def test_the_cli_decodes_every_call_and_says_when_part_of_a_file_failed(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["decode", str(VEC / "sipp_udp_call.pcap.gz"), "--out", str(out)]) == 0
    summary = json.loads((out / "sipp_udp_call" / "summary.json").read_text())
    assert summary["sip"]["final_status"] == 200 and summary["rtp"]["inbound"]["packets"] == 246
    assert (out / "sipp_udp_call" / "stereo.wav").exists()
    assert main(["decode", str(VEC / "lying_ip.pcap"), "--out", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert "IP header lies about its length" in err
    assert (tmp_path / "o2" / "lying_ip" / "summary.json").exists()


def test_the_cli_pairs_a_forks_ports_and_swaps_tracks(tmp_path):
    out = tmp_path / "out"
    assert main(["decode", str(VEC / "fork_tcpdump.pcap"), "--out", str(out), "--pair", "40000,40002",
                 "--swap-tracks"]) == 0
    s = json.loads((out / "fork_tcpdump" / "summary.json").read_text())
    assert {st["dport"]: st["track"] for st in s["streams"]} == {40000: "outbound", 40002: "inbound"}
    with pytest.raises(SystemExit) as bad:
        main(["decode", str(VEC / "fork_tcpdump.pcap"), "--out", str(out), "--pair", "40000"])
    assert bad.value.code == 2


def test_the_sip_ladder_is_a_dataframe_and_a_plot():
    import matplotlib

    matplotlib.use("Agg")
    (cap,) = read_pcap_captures(VEC / "sipp_tcp_call.pcapng.gz")
    df = sip_ladder(cap)
    assert df["label"].tolist() == ["INVITE", "180 Ringing", "200 OK", "ACK", "BYE", "200 OK"]
    assert df["status"].tolist()[1:3] == [180, 200] and df["transport"].unique().tolist() == ["TCP"]
    assert (df["time_s"].diff().dropna() >= 0).all()
    ax = plot_ladder(cap)
    assert len(ax.get_xticklabels()) == 2
    assert sip_ladder(cap.summary())["label"].tolist() == df["label"].tolist()


def test_memory_is_flat_in_the_number_of_calls(tmp_path):
    import gc
    import tracemalloc

    def peak(n_calls: int) -> int:
        packets = []
        for k in range(n_calls):
            packets += mk.basic_call(call_id=f"m{k}@test", start=mk.T0 + k * 2_000 * mk.MS, n=25)
        path = tmp_path / f"calls{n_calls}.pcap"
        mk.write_pcap(path, packets)
        del packets
        gc.collect()  # what earlier tests left for the collector is not this reader's memory
        tracemalloc.start()
        n = sum(1 for _ in iter_pcap_captures(path, chunk_bytes=1 << 16))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert n == n_calls
        return top

    # A first run fills the interpreter's free lists of small objects (tuples...), which
    # tracemalloc counts as allocated until a full collection: measure after it.
    peak(120)
    assert peak(120) < 1.5 * peak(20)


def test_a_live_sipp_call_over_loopback_recorded_by_tcpdump_matches_tshark(tmp_path):
    for tool in ("sipp", "tcpdump"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed: apt-get install sip-tester tcpdump")
    if not Path("/usr/share/sip-tester/g711a.pcap").exists():
        pytest.skip("SIPp's g711a.pcap not installed (Debian sip-tester)")
    path = tmp_path / "live.pcap"
    try:
        mk.record_sipp_call(path, timeout_s=30)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"SIPp/tcpdump could not record a call here: {exc}")
    if not path.exists() or path.stat().st_size < 1000:
        pytest.skip("tcpdump recorded nothing (no capture rights on lo?)")
    (cap,) = read_pcap_captures(path)
    assert cap.report.sip["final_status"] == 200 and cap.report.sip["hung_up_by"] == "caller"
    assert cap.media_format.encoding == "PCMA" and cap.recording.tracks == ("inbound", "outbound")
    # The echoed audio: what the callee sent back is what the caller sent.
    a, b = cap.recording.audio
    assert np.corrcoef(a.astype(float), b.astype(float))[0, 1] > 0.9
    extra = [x for p in sip_ports([cap]) for x in ("-d", f"udp.port=={p},sip")]
    assert_same_as_tshark([cap], tshark_streams(path, *extra))
