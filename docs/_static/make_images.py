"""Draw the pictures the README and the front page show (committed beside this script).

    python docs/_static/make_images.py

``example_call.png``: the bundled example call (``data/example_call.jsonl``, its webhooks)
drawn by :func:`telnyx_audio.plot_call` with its analysis and spectrograms.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import telnyx_audio as ta  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main() -> None:
    cap = ta.read_capture(ROOT / "data" / "example_call.jsonl")
    hooks = ta.load_webhooks(ROOT / "data" / "example_webhooks.jsonl")
    axes = ta.plot_call(cap, analysis=ta.analyze_call(cap), events=hooks, spectrograms=True)
    fig = next(iter(axes.values())).figure
    fig.savefig(HERE / "example_call.png", dpi=90)
    print(HERE / "example_call.png")


if __name__ == "__main__":
    main()
