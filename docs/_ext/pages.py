"""Toctrees that take the pages other branches add, when they are there.

``optional-toctree`` is Sphinx's ``toctree`` whose entries that name no page are left out, so
an index can list a page before the branch that writes it has landed (``/packets``,
``/privacy``...) and pick it up in the next build. With ``:glob:``, patterns are kept as they
are (every notebook ``[0-9]*``). Nothing else is forgiven: a page that exists
and is in no toctree still fails the build, as does a broken reference.
"""

from __future__ import annotations

import re

from docutils.statemachine import StringList
from sphinx.directives.other import TocTree

_EXPLICIT = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$")


def _target(entry: str) -> str:
    m = _EXPLICIT.match(entry)
    return (m.group("target") if m else entry).strip()


class OptionalTocTree(TocTree):
    """A toctree that leaves out the entries whose page does not exist."""

    option_spec = dict(TocTree.option_spec)

    def run(self):
        env = self.env
        here = env.docname.rpartition("/")[0]
        kept = []
        for line in self.content:
            entry = line.strip()
            globbed = "glob" in self.options and any(c in entry for c in "*?[")
            if not entry or globbed or entry.startswith(("http://", "https://")) or entry == "self":
                kept.append(line)
                continue
            target = _target(entry)
            doc = target[1:] if target.startswith("/") else (f"{here}/{target}" if here else target)
            if doc.removesuffix(".md").removesuffix(".rst").removesuffix(".ipynb") in env.found_docs:
                kept.append(line)
        source = self.content.items[0][0] if self.content.items else env.docname
        self.content = StringList(kept, source=source)
        return super().run()


def setup(app):
    app.add_directive("optional-toctree", OptionalTocTree)
    app.add_config_value("telnyx_audio_example_audio", False, "html")
    app.connect("config-inited", _example_audio)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def cli_parser():
    """``telnyx-audio``'s own parser (``telnyx_audio.cli.build_parser``), its help texts made
    literal for reStructuredText (``caps/**/*.jsonl`` is a glob there, not emphasis), for the
    command line reference."""
    import argparse

    from telnyx_audio.cli import build_parser

    def escape(text):
        return text.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`").replace("|", "\\|") if text else text

    seen = set()

    def walk(parser):
        if id(parser) in seen:
            return
        seen.add(id(parser))
        parser.description = escape(parser.description)
        parser.epilog = escape(parser.epilog)
        for action in parser._actions:
            if action.help not in (None, argparse.SUPPRESS):
                action.help = escape(action.help)
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    choice.help = escape(choice.help)
                for sub in action.choices.values():
                    walk(sub)

    parser = build_parser()
    walk(parser)
    return parser


def _example_audio(app, config) -> None:
    """Write the example call as a stereo WAV (left inbound, right outbound) for the pages'
    players: decoded from ``data/example_call.jsonl`` by the toolkit at build time."""
    from pathlib import Path

    import telnyx_audio as ta

    if not config.telnyx_audio_example_audio:
        return
    root = Path(app.srcdir).parent
    out = Path(app.srcdir) / "_generated_static"
    wav = out / "example_call.wav"
    capture = root / "data" / "example_call.jsonl"
    if wav.exists() and wav.stat().st_mtime >= capture.stat().st_mtime:
        return
    out.mkdir(exist_ok=True)
    files = ta.write_wavs(ta.read_capture(capture).recording, out)
    Path(files["stereo"]).replace(wav)
    for path in files.values():
        Path(path).unlink(missing_ok=True)
