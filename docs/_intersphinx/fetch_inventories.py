"""Make the intersphinx inventories the docs link against, once; the results are committed.

``make docs`` builds offline (CI reaches package registries only), so the ``objects.inv``
files that intersphinx reads are kept in this folder and ``docs/conf.py`` points at them.
Run this script again to refresh them (it needs network access to Debian's archive)::

    python docs/_intersphinx/fetch_inventories.py

Where each one comes from:

- ``python.inv``, ``scipy.inv``, ``pandas.inv``: the inventories the projects' own Sphinx
  builds wrote, taken from Debian's documentation packages (``python3.11-doc``,
  ``python-scipy-doc``, ``python-pandas-doc``), fetched with ``apt-get download`` and
  unpacked with ``dpkg-deb``; nothing is installed.
- ``numpy.inv``, ``matplotlib.inv``: Debian 12 has no documentation package for numpy or
  matplotlib, and neither project ships its inventory in its wheel, so these are
  generated with ``sphobjinv`` from the installed packages: every public function, class,
  method and attribute of the modules below, at the page the project's documentation
  gives each kind of object (``reference/generated/numpy.<name>.html`` for numpy,
  ``api/_as_gen/matplotlib.<module>.<name>.html`` and the ``api/<module>_api.html`` pages
  for matplotlib). The link text is the object's name; a name the installed package does
  not have is never written. numpy's also has the glossary terms numpydoc links parameter
  types to (``array_like``).
"""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

DEBIAN = {
    # inventory name: (Debian package, path of objects.inv inside it)
    "python": ("python3.11-doc", "usr/share/doc/python3.11/html/objects.inv"),
    "scipy": ("python-scipy-doc", "usr/share/doc/python-scipy-doc/html/objects.inv"),
    "pandas": ("python-pandas-doc", "usr/share/doc/python-pandas-doc/html/objects.inv"),
}


def from_debian(name: str, package: str, member: str, work: Path) -> None:
    """Download one Debian documentation package and copy its objects.inv here."""
    subprocess.run(["apt-get", "download", package], cwd=work, check=True)
    deb = next(work.glob(f"{package}_*.deb"))
    unpacked = work / package
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    shutil.copyfile(unpacked / member, HERE / f"{name}.inv")
    print(f"{name}.inv from Debian's {deb.name}")


def _public(obj: object) -> list[tuple[str, object]]:
    names = getattr(obj, "__all__", None)
    if names is None:
        names = [n for n in dir(obj) if not n.startswith("_")]
    out = []
    for n in names:
        try:
            out.append((n, getattr(obj, n)))
        except AttributeError:
            continue
    return out


def _members(cls: type) -> list[tuple[str, str]]:
    """(name, role) of a class's public methods and attributes, inherited ones included."""
    out = []
    for n, value in inspect.getmembers(cls):
        if n.startswith("_"):
            continue
        role = "method" if callable(value) else "attribute"
        out.append((n, role))
    return out


def generate(project: str, version: str, entries: list[tuple[str, str, str]]) -> None:
    """Write ``<project>.inv`` from (name, role, uri) triples."""
    import sphobjinv as soi

    inv = soi.Inventory()
    inv.project, inv.version = project, version
    seen = set()
    for name, role, uri in entries:
        if (name, role) in seen:
            continue
        seen.add((name, role))
        domain, _, role = role.rpartition(":")  # "std:term" for a glossary entry, else py
        inv.objects.append(soi.DataObjStr(name=name, domain=domain or "py", role=role, priority="1" if domain != "std" else "-1",
                                          uri=uri, dispname="-"))
    soi.writebytes(HERE / f"{project}.inv", soi.compress(inv.data_file(contract=True)))
    print(f"{project}.inv generated: {len(inv.objects)} objects ({project} {version})")


def numpy_entries() -> list[tuple[str, str, str]]:
    import numpy as np
    import numpy.fft
    import numpy.lib.stride_tricks
    import numpy.linalg
    import numpy.random
    import numpy.typing

    out = [("numpy", "module", "reference/index.html#module-numpy")]

    def page(full: str) -> str:
        return f"reference/generated/{full}.html#{full}"

    def walk(module, prefix: str, generated_page=page) -> None:
        for n, value in _public(module):
            full = f"{prefix}.{n}"
            if inspect.ismodule(value):
                continue
            if isinstance(value, type) and issubclass(value, np.generic):
                out.append((full, "class", f"reference/arrays.scalars.html#{full}"))
            elif isinstance(value, type):
                out.append((full, "class", generated_page(full)))
                for m, role in _members(value):
                    out.append((f"{full}.{m}", role, generated_page(f"{full}.{m}")))
            elif isinstance(value, np.ufunc):
                out.append((full, "data", generated_page(full)))
            elif callable(value):
                out.append((full, "function", generated_page(full)))

    walk(np, "numpy")
    walk(np.fft, "numpy.fft")
    walk(np.linalg, "numpy.linalg")
    out += [(f"numpy.lib.stride_tricks.{n}", "function", page(f"numpy.lib.stride_tricks.{n}"))
            for n in ("sliding_window_view", "as_strided")]
    for n in ("ArrayLike", "DTypeLike", "NDArray"):
        out.append((f"numpy.typing.{n}", "data", f"reference/typing.html#numpy.typing.{n}"))
    # the glossary terms numpydoc links parameter types to ("array_like")
    for term in ("array_like", "array"):
        out.append((term, "std:term", f"glossary.html#term-{term}"))
    out.append(("numpy.random.default_rng", "function", "reference/random/generator.html#numpy.random.default_rng"))
    out.append(("numpy.random.Generator", "class", "reference/random/generator.html#numpy.random.Generator"))
    for m, role in _members(np.random.Generator):
        full = f"numpy.random.Generator.{m}"
        out.append((full, role, f"reference/random/generated/{full}.html#{full}"))
    return out


def matplotlib_entries() -> list[tuple[str, str, str]]:
    import importlib

    out = [("matplotlib", "module", "index.html#module-matplotlib")]
    # module: how its classes' pages are named ("gen": one page per object; else the module's page)
    modules = {
        "matplotlib.axes": "gen",
        "matplotlib.figure": "gen",
        "matplotlib.lines": "gen",
        "matplotlib.patches": "gen",
        "matplotlib.colors": "gen",
        "matplotlib.artist": "gen",
        "matplotlib.image": "api/image_api.html",
        "matplotlib.collections": "api/collections_api.html",
        "matplotlib.colorbar": "api/colorbar_api.html",
        "matplotlib.text": "api/text_api.html",
        "matplotlib.legend": "api/legend_api.html",
        "matplotlib.container": "api/container_api.html",
        "matplotlib.ticker": "api/ticker_api.html",
    }
    for mod_name, style in modules.items():
        mod = importlib.import_module(mod_name)
        out.append((mod_name, "module", f"api/{mod_name.split('.')[1]}_api.html#module-{mod_name}"))
        for n, value in _public(mod):
            if not isinstance(value, type) or getattr(value, "__module__", "").split(".")[:2] != mod_name.split(".")[:2]:
                continue
            full = f"{mod_name}.{n}"
            if style == "gen":
                out.append((full, "class", f"api/_as_gen/{full}.html#{full}"))
                for m, role in _members(value):
                    # Axes and Figure methods have their own pages; other classes list them on theirs
                    own = mod_name in ("matplotlib.axes", "matplotlib.figure") and role == "method"
                    uri = f"api/_as_gen/{full}.{m}.html#{full}.{m}" if own else f"api/_as_gen/{full}.html#{full}.{m}"
                    out.append((f"{full}.{m}", role, uri))
            else:
                out.append((full, "class", f"{style}#{full}"))
                for m, role in _members(value):
                    out.append((f"{full}.{m}", role, f"{style}#{full}.{m}"))
    import matplotlib.pyplot as plt

    for n, value in _public(plt):
        if inspect.isfunction(value):
            out.append((f"matplotlib.pyplot.{n}", "function", f"api/_as_gen/matplotlib.pyplot.{n}.html#matplotlib.pyplot.{n}"))
    return out


def main() -> int:
    import matplotlib
    import numpy

    with tempfile.TemporaryDirectory() as tmp:
        for name, (package, member) in DEBIAN.items():
            from_debian(name, package, member, Path(tmp))
    generate("numpy", numpy.__version__, numpy_entries())
    generate("matplotlib", matplotlib.__version__, matplotlib_entries())
    return 0


def main_generated_only() -> int:
    """Regenerate only the inventories made here (numpy, matplotlib): no network needed."""
    import matplotlib
    import numpy

    generate("numpy", numpy.__version__, numpy_entries())
    generate("matplotlib", matplotlib.__version__, matplotlib_entries())
    return 0


if __name__ == "__main__":
    sys.exit(main_generated_only() if sys.argv[1:] == ["--generated-only"] else main())
