"""Write the API reference's index from the package itself, so no name is listed by hand.

- The facade: every name in ``telnyx_audio.__all__``, grouped by the module that defines it
  (``telnyx_audio._EXPORTS``), each with its own page (autosummary).
- Every public subpackage and public module that has an ``__all__``: a page per module with
  the names only it exports (the names it shares with the facade link to the facade's page).

A name another branch adds to ``_EXPORTS`` or to a subpackage's ``__all__`` appears in the next
build. It also resolves references to a name by any of its import paths
(``telnyx_audio.model.Capture``, ``telnyx_audio.read.Capture``) to the page that documents it.
"""

from __future__ import annotations

import importlib
import pkgutil
import shutil
from pathlib import Path

import telnyx_audio

# Headings of the facade's groups, by the module that defines the names; a module not named
# here gets its own dotted name as heading.
GROUPS = {
    "read": "Reading captures",
    "model": "The model: captures and recordings",
    "model.wav": "WAV files and summaries",
    "model.track": "The model: captures and recordings",
    "streams.protocol": "The media-stream protocol (sans-I/O)",
    "codecs": "Codecs",
    "streams.server": "The capture server",
    "forks.receiver": "Forks (RTP over UDP)",
    "forks.read": "Forks (RTP over UDP)",
    "simulators.stream": "Simulators (a fake Telnyx)",
    "simulators.fork": "Simulators (a fake Telnyx)",
    "webhooks": "Webhooks",
    "webhooks.receiver": "Webhooks",
    "callcontrol": "Call Control",
    "analysis": "Analysis",
    "plots": "Plots",
    "fleet": "Batch work",
    "errors": "Errors and warnings",
}

# Modules not documented as API pages: the command line has its own reference page (made
# from its parser), the demo is a script.
SKIP = {"telnyx_audio.cli", "telnyx_audio.demo", "telnyx_audio.__main__"}


def public_modules() -> list[str]:
    """Every importable public module of the package that declares ``__all__``, and the
    modules the facade takes names from."""
    names = set()
    for info in pkgutil.walk_packages(telnyx_audio.__path__, "telnyx_audio."):
        if any(part.startswith("_") for part in info.name.split(".")) or info.name in SKIP:
            continue
        if any(info.name.startswith(s + ".") for s in SKIP):
            continue
        module = importlib.import_module(info.name)
        if isinstance(getattr(module, "__all__", None), (list, tuple)) and info.ispkg:
            names.add(info.name)
    names |= {f"telnyx_audio.{m}" for m in set(telnyx_audio._EXPORTS.values())}
    return sorted(names)


def shared_names(modules: list[str]) -> dict[str, dict[str, str]]:
    """Per module page, the names of its ``__all__`` whose object another page documents.

    An object exported by several modules (``forks.ForkSession`` is ``forks.receiver.ForkSession``)
    gets one page, under the shortest module path that exports it; the other modules' pages
    link there. Names of the facade are left to the template (they link to the facade).
    """
    facade = set(telnyx_audio.__all__)
    owner: dict[int, str] = {}
    shared: dict[str, dict[str, str]] = {}
    for module in sorted(modules, key=lambda m: (m.count("."), m)):
        mod = importlib.import_module(module)
        for name in getattr(mod, "__all__", ()):
            if name in facade or not hasattr(mod, name):
                continue
            obj = getattr(mod, name)
            if isinstance(obj, (int, float, str, bytes, tuple, frozenset, dict)) or obj is None:
                continue  # constants: equal values are not the same thing
            key = id(obj)
            if key in owner:
                shared.setdefault(module, {})[name] = f"{owner[key]}.{name}"
            else:
                owner[key] = module
    return shared


def constant_names() -> set[str]:
    """Every documented path of a public name that is neither a class nor a function (a
    constant, a type alias): numpydoc's checks are for functions and classes, and on a
    constant they would check its type's docstring (``str``'s, ``tuple``'s)."""
    import inspect

    names = set()
    modules = ["telnyx_audio"] + public_modules()
    for module in modules:
        mod = importlib.import_module(module)
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name, None)
            if obj is not None and not (inspect.isclass(obj) or inspect.isroutine(obj)):
                names.add(f"{module}.{name}")
    return names


def write_index(srcdir: Path) -> None:
    """Write ``api/index.rst``: the facade's names by group, then one page per module."""
    groups: dict[str, list[str]] = {}
    for name in telnyx_audio.__all__:
        module = telnyx_audio._EXPORTS[name]
        groups.setdefault(GROUPS.get(module, f"telnyx_audio.{module}"), []).append(name)
    lines = [
        "API reference",
        "=============",
        "",
        "Generated from the package by ``docs/_ext/apigen.py``: every name of",
        ":data:`telnyx_audio.__all__`, then every public module. ``import telnyx_audio as ta``",
        "gives the names of the first part (they load on first use, so the import stays fast);",
        "the modules hold the rest, for those who build on one layer",
        "(:doc:`/architecture` says which layer is which).",
        "",
        ".. module:: telnyx_audio",
        "",
        "",
    ]
    order = list(dict.fromkeys(list(GROUPS.values()) + list(groups)))
    for title in order:
        if title not in groups:
            continue
        lines += [title, "-" * len(title), "", ".. autosummary::", "   :toctree: generated", "   :nosignatures:", ""]
        lines += [f"   {name}" for name in sorted(groups[title], key=str.lower)]
        lines.append("")
    lines += ["Modules", "-------", "", ".. toctree::", "   :maxdepth: 1", "", "   modules", ""]
    modules = [
        "Modules",
        "=======",
        "",
        "Each public module with the names it exports; the names it shares with the facade",
        "(:doc:`index`) link there.",
        "",
        ".. autosummary::",
        "   :toctree: generated",
        "",
    ]
    modules += [f"   {m}" for m in public_modules()]
    _write(srcdir / "api" / "modules.rst", "\n".join(modules) + "\n")
    _write(srcdir / "api" / "index.rst", "\n".join(lines) + "\n")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _public_bases(app, name, obj, options, bases) -> None:
    """Show only public base classes (a private mixin is no part of the API)."""
    bases[:] = [b for b in bases if not getattr(b, "__name__", "").startswith("_")]


def _config_inited(app, config) -> None:
    # every page under api/generated is made anew, so none is left from a name since removed
    shutil.rmtree(Path(app.srcdir) / "api" / "generated", ignore_errors=True)
    write_index(Path(app.srcdir))
    config.autosummary_context["shared_names"] = shared_names(public_modules())


def _no_borrowed_docstring(app, what, name, obj, options, lines) -> None:
    """A constant shows the ``#:`` comment where it is defined, or nothing: never its type's
    docstring (a tuple's, an array's)."""
    if what not in ("data", "attribute") or callable(obj) or not lines:
        return
    doc, type_doc = getattr(obj, "__doc__", None), type(obj).__doc__ or ""
    if doc and doc != type_doc and type_doc.strip()[:60] not in doc:
        return  # a docstring of its own (an instance of a class of ours that sets one)
    import sys

    from sphinx.pycode import ModuleAnalyzer
    from sphinx.errors import PycodeError

    attr = name.rpartition(".")[2]
    for modname, module in list(sys.modules.items()):
        if modname.startswith("telnyx_audio") and getattr(module, attr, None) is obj:
            try:
                comment = ModuleAnalyzer.for_module(modname).find_attr_docs().get(("", attr))
            except PycodeError:
                continue
            if comment:
                # documented by a ``#:`` comment where it is defined (autodoc looks for one
                # only in the module it documents the name under, such as the facade)
                lines[:] = [line.rstrip("\n") for line in comment]
                return
    lines[:] = []


def _resolve_alias(app, env, node, contnode):
    """Resolve a reference to one of our objects that is not documented under that name.

    A docstring may name an object by any of its import paths (``telnyx_audio.model.Capture``,
    ``Capture`` inside ``telnyx_audio.read``, a private module's path): the reference goes to
    the page that documents that same object. An object of ours that has no page of its own
    (a submodule, a helper the API does not list) links to the nearest documented package.
    A name that does not import stays unresolved, and the build fails on it.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip("~.")
    module = node.get("py:module") or ""
    cls = node.get("py:class") or ""
    if not target or (module and not module.startswith("telnyx_audio")) and not target.startswith("telnyx_audio"):
        return None
    tries = [target] if target.startswith("telnyx_audio") else []
    if module:
        tries += [f"{module}.{cls}.{target}"] if cls else []
        tries += [f"{module}.{target}", f"{module.rsplit('.', 1)[0]}.{target}"]
    tries += [f"telnyx_audio.{target}"]
    # the page's own object (api/generated/<name>): names in its docstring are relative to the
    # module that defines it, and to that module's packages
    page_obj = _lookup(node.get("refdoc", "").rsplit("/", 1)[-1])
    home = getattr(page_obj, "__module__", None) or ""
    while home.startswith("telnyx_audio"):
        tries.append(f"{home}.{target}")
        home = home.rpartition(".")[0]
    found_path, obj = None, None
    for path in tries:
        obj = _lookup(path)
        if obj is not None:
            found_path = path
            break
    if found_path is None:
        return _field_of_class(app, env, node, contnode, tries) or _unique_suffix(app, env, node, contnode, target)
    domain = env.get_domain("py")
    leaf = "." + target
    for name, entry in domain.objects.items():
        if (name == target or name.endswith(leaf)) and _lookup(name) is obj:
            return _refnode(app, node, entry, contnode, name)
    # no page of its own: the nearest documented ancestor (a class, a module, a package)
    parts = found_path.split(".")
    while len(parts) > 1:
        parts.pop()
        ancestor = ".".join(parts)
        entry = domain.objects.get(ancestor)
        if entry is None and ancestor in domain.modules:
            mod = domain.modules[ancestor]
            from sphinx.util.nodes import make_refnode

            return make_refnode(app.builder, node["refdoc"], mod.docname, mod.node_id, contnode, ancestor)
        if entry is not None:
            return _refnode(app, node, entry, contnode, ancestor)
    return None


def _field_of_class(app, env, node, contnode, tries):
    """``Diagnosis.findings``: a dataclass field (no class attribute to look up, documented in
    its class's Attributes section) links to its class's page."""
    for path in tries:
        parent, _, attr = path.rpartition(".")
        cls = _lookup(parent) if parent else None
        if not isinstance(cls, type) or not cls.__module__.startswith("telnyx_audio"):
            continue
        fields = set(getattr(cls, "__dataclass_fields__", {})) | set(getattr(cls, "__annotations__", {}))
        if attr not in fields:
            continue
        leaf = "." + cls.__name__
        for name, entry in env.get_domain("py").objects.items():
            if (name == cls.__name__ or name.endswith(leaf)) and _lookup(name) is cls:
                return _refnode(app, node, entry, contnode, path)
    return None


def _unique_suffix(app, env, node, contnode, target):
    """A bare name (``call_messages``) in a summary line shown away from its own page (the
    API index's tables): the one documented object of ours whose name ends with it, if there
    is exactly one."""
    if "." in target:
        return None
    leaf = "." + target
    found = [(n, e) for n, e in env.get_domain("py").objects.items() if n.startswith("telnyx_audio.") and n.endswith(leaf)]
    objs = {id(_lookup(n)) for n, _ in found}
    if found and len(objs) == 1:
        name, entry = found[0]
        return _refnode(app, node, entry, contnode, name)
    if found:
        return None
    # not documented anywhere: the one module of ours that defines it, then its nearest
    # documented ancestor (a constant of a private module links to its public package)
    import sys

    homes = {m for m, mod in list(sys.modules.items()) if m.startswith("telnyx_audio") and target in vars(mod or object) and not isinstance(vars(mod)[target], type(sys))}
    defining = {m for m in homes if getattr(vars(sys.modules[m])[target], "__module__", m) == m}
    homes = defining or homes
    owners = {id(vars(sys.modules[m])[target]) for m in homes}
    if len(owners) != 1:
        return None
    domain = env.get_domain("py")
    for home in sorted(homes, key=len):
        parts = home.split(".")
        while parts:
            ancestor = ".".join(parts)
            if ancestor in domain.modules:
                from sphinx.util.nodes import make_refnode

                mod = domain.modules[ancestor]
                return make_refnode(app.builder, node["refdoc"], mod.docname, mod.node_id, contnode, ancestor)
            parts.pop()
    return None


def _refnode(app, node, entry, contnode, title):
    from sphinx.util.nodes import make_refnode

    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, title)


def _lookup(path: str):
    """The object a dotted path names, or None."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for p in parts[i:]:
            try:
                obj = getattr(obj, p)
            except AttributeError:
                return None
        return obj
    return None


def setup(app):
    app.connect("config-inited", _config_inited)
    app.connect("missing-reference", _resolve_alias)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-process-docstring", _no_borrowed_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
