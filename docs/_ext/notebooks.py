"""Execute the notebooks for the docs, and make the gallery of their views.

Before Sphinx reads anything, every ``notebooks/*.ipynb`` is executed with nbclient in
``notebooks/`` (where the tests run them, so their ``Path.cwd().parent / "data"`` finds the
bundled data) and the executed copy is written to ``docs/tutorials/`` (not committed), where
myst-nb renders it with its outputs. A copy whose source notebook and package code have not
changed since is kept, so a second ``make docs`` does not execute again. Two notebooks run at
a time. A notebook too slow for every build sets ``{"telnyx_audio_docs": {"execute": false}}``
in its metadata and is shown with the outputs it was saved with.

From the executed copies, ``docs/gallery/notebook_views.md`` is written: every figure and
every rich view (a ``Recording`` that plays, a ``CallAnalysis`` card, a table) with the code
cell that made it and a link to its tutorial.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
DOCS = ROOT / "docs"
OUT = DOCS / "tutorials"
GALLERY = DOCS / "gallery"
TIMEOUT_S = 600


def _digest(path: Path) -> str:
    """The notebook's bytes and the package's code: a copy made by other code is stale."""
    h = hashlib.sha256(path.read_bytes())
    for source in sorted((ROOT / "telnyx_audio").rglob("*.py")):
        h.update(source.relative_to(ROOT).as_posix().encode() + b"\0" + source.read_bytes())
    return h.hexdigest()


def execute(source: Path) -> Path:
    """Execute one notebook in ``notebooks/`` and write its executed copy to ``docs/tutorials/``."""
    import nbclient
    import nbclient.exceptions
    import nbformat

    dest = OUT / source.name
    digest = _digest(source)
    if dest.exists():
        done = nbformat.read(dest, as_version=4)
        if done.metadata.get("telnyx_audio_docs", {}).get("source_sha256") == digest:
            return dest
    nb = nbformat.read(source, as_version=4)
    if not nb.metadata.get("telnyx_audio_docs", {}).get("execute", True):
        # a notebook too slow to run for every build says so in its metadata
        # ({"telnyx_audio_docs": {"execute": false}}) and is shown with the outputs it was saved with
        nbformat.write(nb, dest)
        return dest
    client = nbclient.NotebookClient(
        nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    # the kernel imports the package of this checkout (not whichever one is installed)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    # the kernel's own chatter (its transport warnings) stays out of the build's output; what
    # a cell prints or raises is in the notebook's outputs, and a failed cell fails the build
    try:
        client.execute(env={**os.environ, "PYTHONPATH": path}, stderr=subprocess.DEVNULL)
    except nbclient.exceptions.CellExecutionError as exc:
        raise RuntimeError(f"notebooks/{source.name}: a cell failed: {exc.ename}: {exc.evalue}"
                           " (run the notebook to see where)") from None
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    if errors:
        raise RuntimeError(f"{source.name}: a cell failed: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    nb.metadata["telnyx_audio_docs"] = {"source_sha256": digest}
    tmp = dest.with_suffix(".tmp")
    nbformat.write(nb, tmp)
    tmp.replace(dest)
    return dest


def execute_all() -> list[Path]:
    """Execute every notebook (two at a time) and drop executed copies whose source is gone."""
    OUT.mkdir(exist_ok=True)
    sources = sorted(NOTEBOOKS.glob("*.ipynb"))
    names = {s.name for s in sources}
    for stale in OUT.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(execute, sources))


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return "Notebook"


def _heading_before(cells, index: int) -> str:
    for cell in reversed(cells[:index]):
        if cell.cell_type == "markdown":
            m = re.findall(r"^#{1,3}\s+(.+)$", cell.source, re.M)
            if m:
                return m[-1].strip()
    return ""


def write_gallery(executed: list[Path]) -> None:
    """Write ``gallery/notebook_views.md`` from the executed notebooks."""
    import nbformat

    images = GALLERY / "_notebook_images"
    images.mkdir(parents=True, exist_ok=True)
    for old in images.glob("*.png"):
        old.unlink()
    lines = [
        "# Notebook views",
        "",
        "Every figure and every rich view the tutorials show, each under the code cell that made it",
        "(generated from the executed notebooks by `docs/_ext/notebooks.py`). Follow the link to see",
        "the view in its tutorial, with the cells before it.",
        "",
    ]
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        lines += [f"## {_title(nb)}", "", f"From the tutorial {{doc}}`/tutorials/{path.stem}`.", ""]
        n = 0
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            views = []
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if "image/png" in data:
                    n += 1
                    name = f"{path.stem}-{n}.png"
                    (images / name).write_bytes(base64.b64decode(data["image/png"]))
                    views.append(("png", name))
                elif "text/html" in data:
                    views.append(("html", data["text/html"]))
            if not views:
                continue
            heading = _heading_before(nb.cells, i)
            label = f"{heading}: cell {i + 1}" if heading else f"cell {i + 1}"
            lines += [f"### {html.escape(label)}", "", "```python", cell.source.rstrip(), "```", ""]
            for kind, value in views:
                if kind == "png":
                    lines += [f"```{{image}} _notebook_images/{value}", ":alt: the figure this cell draws", "```", ""]
                else:
                    lines += ["```{raw} html", '<div class="notebook-view">', value.strip(), "</div>", "```", ""]
    text = "\n".join(lines)
    dest = GALLERY / "notebook_views.md"
    if not dest.exists() or dest.read_text() != text:
        dest.write_text(text)


def _config_inited(app, config) -> None:
    executed = execute_all()
    write_gallery(executed)


def setup(app):
    app.connect("config-inited", _config_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
