"""The documentation site: its pages' examples run, its API index covers every public name,
and its browser check (docs/check_site.py) catches what it is there to catch.

The site itself is built by ``make docs`` (Sphinx, warnings as errors); these tests are the
parts that are quick enough for every ``make test``.
"""

from __future__ import annotations

import doctest
import importlib
import re
import shutil
import struct
import sys
import zlib
from pathlib import Path

import pytest

import telnyx_audio

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(
    p for p in DOCS.rglob("*.md")
    if "_build" not in p.parts and "tutorials" not in p.parts and re.search(r"^>>> ", p.read_text(), re.M)
)


def _ext(name: str):
    """A module of docs/_ext (the Sphinx extensions), or of docs/ (check_site)."""
    folder = DOCS / "_ext" if (DOCS / "_ext" / f"{name}.py").exists() else DOCS
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))


def test_there_are_docs_pages_with_examples():
    assert DOCS / "getting_started.md" in PAGES


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(DOCS).as_posix() for p in PAGES])
def test_the_examples_on_a_docs_page_print_what_the_page_says(page, monkeypatch):
    monkeypatch.chdir(ROOT)  # pages name data/ from the repository's root
    test = doctest.DocTestParser().get_doctest(page.read_text(), {}, page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda s: pytest.fail(f"{page.relative_to(ROOT)}: an example went wrong:\n{s}"))
    assert runner.tries > 0


def test_the_api_index_lists_every_public_name_and_every_public_subpackage(tmp_path):
    apigen = _ext("apigen")
    apigen.write_index(tmp_path)
    index = (tmp_path / "api" / "index.rst").read_text()
    listed = set(re.findall(r"^   (\w+)$", index, re.M)) - {"modules"}  # the toctree entry of the module pages
    assert listed == set(telnyx_audio.__all__), listed ^ set(telnyx_audio.__all__)
    modules = set(re.findall(r"^   (telnyx_audio[\w.]*)$", (tmp_path / "api" / "modules.rst").read_text(), re.M))
    for package in ("analysis", "codecs", "forks", "model", "rtp", "streams", "webhooks", "callcontrol", "fleet"):
        assert f"telnyx_audio.{package}" in modules
    assert not any(m.startswith(("telnyx_audio.cli", "telnyx_audio.demo")) for m in modules)
    assert not any("._" in m for m in modules), "a private module is documented as API"


def test_a_name_exported_by_two_modules_is_documented_once_and_linked_from_the_other():
    apigen = _ext("apigen")
    shared = apigen.shared_names(["telnyx_audio.forks", "telnyx_audio.forks.receiver"])
    assert shared["telnyx_audio.forks.receiver"]["ForkSession"] == "telnyx_audio.forks.ForkSession"
    assert "telnyx_audio.forks" not in shared


def test_no_public_function_or_class_is_exempt_from_docstring_validation(monkeypatch):
    import runpy

    monkeypatch.setattr(sys, "path", list(sys.path))  # conf.py puts docs/_ext and the root on it
    conf = runpy.run_path(str(DOCS / "conf.py"))
    apigen = _ext("apigen")
    constants = {"^" + re.escape(name) + "$" for name in apigen.constant_names()}
    exempt = conf["numpydoc_validation_exclude"] - constants - {r"\.__\w+__$"}
    assert not exempt, f"docs/conf.py exempts names from numpydoc's checks besides dunders and constants: {exempt}"
    assert constants, "the constants were not found: their exclusion would be empty"
    assert {"RT01", "PR01", "GL08"} <= conf["numpydoc_validation_checks"]
    assert not (DOCS / "docstring_debt.txt").exists()


def test_the_command_line_reference_is_made_from_the_commands_own_parser():
    from telnyx_audio.cli import build_parser

    pages = _ext("pages")

    def commands(parser):
        found = {}
        for action in parser._actions:
            if action.choices and hasattr(action, "_choices_actions"):
                for name, sub in action.choices.items():
                    found[name] = sorted(o for a in sub._actions for o in a.option_strings)
        return found

    documented, actual = commands(pages.cli_parser()), commands(build_parser())
    assert documented == actual and "decode" in actual
    help_texts = [a.help or "" for sub in pages.cli_parser()._subparsers._group_actions[0].choices.values()
                  for a in sub._actions]
    assert any("\\*" in h for h in help_texts), "a glob in a help text must reach the page as literal text"


def test_the_gallery_draws_every_plot_function_with_the_code_beside_it():
    import telnyx_audio.plots

    gallery = (DOCS / "gallery" / "index.md").read_text()
    blocks = re.findall(r"^\.\. plot::\n(.*?)^```", gallery, re.M | re.S)
    for name in telnyx_audio.plots.__all__:
        assert any(f"ta.{name}(" in block for block in blocks), f"the gallery does not draw {name}"


def test_an_index_takes_the_pages_that_exist_and_leaves_out_the_ones_not_written_yet(tmp_path):
    from sphinx.application import Sphinx

    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['myst_parser', 'pages']\nroot_doc = 'index'\n"
    )
    (src / "index.md").write_text(
        "# Guides\n\n```{optional-toctree}\n:glob:\n\nwritten\n/not_written_yet\nnb_*\n```\n"
    )
    (src / "written.md").write_text("# A page that exists\n")
    (src / "nb_01.md").write_text("# A page a glob finds\n")
    app = Sphinx(str(src), str(src), str(tmp_path / "out"), str(tmp_path / "doctrees"), "html",
                 warningiserror=True, status=None, freshenv=True)
    app.build()
    index = (tmp_path / "out" / "index.html").read_text()
    assert 'href="written.html"' in index and 'href="nb_01.html"' in index
    assert "not_written_yet" not in index


def _png(width: int = 4, height: int = 4) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"\x20\x80\x60" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_the_browser_check_passes_a_good_page_and_names_every_fault_of_a_bad_one(tmp_path, capsys):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not installed: docs/check_site.py needs Debian's chromium")
    site = tmp_path / "site"
    site.mkdir()
    (site / "dot.png").write_bytes(_png())
    (site / "favicon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>')
    head = '<head><meta charset="utf-8"><link rel="icon" href="favicon.svg"></head>'
    (site / "index.html").write_text(f'<!doctype html><html>{head}<body><h1>fine</h1><img src="dot.png" alt="a dot"></body></html>')
    (site / "bad.html").write_text(
        f'<!doctype html><html>{head}<body><img src="gone.png" alt="gone"><audio controls src="gone.wav"></audio>'
        '<script>console.error("boom from the page")</script>'
        '<script>undefined_function_of_the_page()</script></body></html>'
    )
    check_site = _ext("check_site")
    out = tmp_path / "shots"
    code = check_site.main(["index.html", "bad.html", "nowhere.html", "--site", str(site), "--out", str(out),
                            "--chromium", chromium])
    report = capsys.readouterr().out
    assert code == 1, report
    lines = report.splitlines()
    assert lines[0].startswith("ok   index.html"), report
    bad = report[report.index("FAIL bad.html"):report.index("nowhere.html")]
    assert "image did not load" in bad and "gone.png" in bad
    assert "console.error: boom from the page" in bad
    assert "undefined_function_of_the_page" in bad
    assert "missing file: /gone.png (HTTP 404)" in bad
    assert "audio did not load" in bad and "gone.wav" in bad
    assert "FAIL nowhere.html" in report and "missing page: HTTP 404" in report
    shot = out / "index.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 1000
    assert check_site.main(["index.html", "--site", str(site), "--out", str(out), "--chromium", chromium]) == 0
