"""A newcomer's first hour (issue #23): what a first script, a first command and a first plot do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example_call.jsonl"


def run_script(path: Path, text: str) -> subprocess.CompletedProcess:
    """Run ``text`` as a script file, as ``python script.py`` runs it, with this checkout's package."""
    path.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=path.parent, env=env, timeout=300)


def test_batch_in_a_plain_script_says_at_once_what_to_add(tmp_path):
    out = run_script(tmp_path / "plain.py", f"import telnyx_audio as ta\n"
                                           f"result = ta.batch({str(EXAMPLE)!r}, jobs=2, progress=False)\n"
                                           f"print('rows', len(result.calls))\n")
    assert out.returncode == 1
    assert out.stderr.count("Traceback") == 1, out.stderr  # one error, no worker's
    assert 'RuntimeError: ' in out.stderr and 'if __name__ == "__main__":' in out.stderr and "line 2" in out.stderr
    assert "rows" not in out.stdout


def test_batch_in_a_guarded_script_works(tmp_path):
    out = run_script(tmp_path / "guarded.py", f"import telnyx_audio as ta\n"
                                             f"def main():\n"
                                             f"    return ta.batch({str(EXAMPLE)!r}, jobs=2, progress=False)\n"
                                             f"if __name__ == '__main__':\n"
                                             f"    result = main()\n"
                                             f"    print('errors', len(result.errors), 'rows', len(result.calls))\n")
    assert out.returncode == 0, out.stderr
    assert "errors 0 rows 1" in out.stdout


def test_transcripts_and_the_timeline_have_a_column_on_the_audio_clock_of_the_analysis():
    import telnyx_audio as ta

    hooks = ta.load_webhooks(ROOT / "data" / "example_webhooks.jsonl")
    turns = ta.analyze_call(ta.read_capture(EXAMPLE)).turns
    said = ta.transcripts(hooks)
    assert "streaming.started" in said.attrs["time_zero"]["audio_t_s"]
    for row in said[said["is_final"] == True].itertuples():  # noqa: E712 (a column of bools and None)
        mine = turns[turns["party"] == row.track]
        # a final transcript arrives just after its turn ends, on the analysis' clock
        assert ((mine["end_s"] <= row.audio_t_s + 0.05) & (row.audio_t_s <= mine["end_s"] + 0.5)).any(), row
    timeline = ta.call_timeline(hooks)
    started = timeline.loc[timeline["event_type"] == "streaming.started"].iloc[0]
    initiated = timeline.loc[timeline["event_type"] == "call.initiated"].iloc[0]
    assert (started["audio_t_s"], initiated["t_s"]) == (0.0, 0.0)
    assert initiated["audio_t_s"] == -started["t_s"] < 0
    shifted = ta.call_timeline(hooks, t0=started["occurred_at"] - __import__("pandas").Timedelta(seconds=1))
    assert shifted["audio_t_s"].tolist() == [t + 1 for t in timeline["audio_t_s"]]
    assert "t0=" in shifted.attrs["time_zero"]["audio_t_s"]
