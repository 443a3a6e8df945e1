"""Sphinx configuration of the telnyx-audio documentation (``make docs`` builds it).

The build is offline: intersphinx reads the inventories committed in ``_intersphinx/``
(``_intersphinx/fetch_inventories.py`` made them and says from where), the notebooks are
executed here (``_ext/notebooks.py``), and the API reference is generated from the package
(``_ext/apigen.py``). Warnings are errors (``-W``) and every cross-reference must resolve
(``nitpicky``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import telnyx_audio  # noqa: E402

project = "telnyx-audio"
author = "the telnyx-audio authors"
copyright = "the telnyx-audio authors; MIT licence"
release = version = telnyx_audio.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_nb",
    "sphinxarg.ext",
    "matplotlib.sphinxext.plot_directive",
    "apigen",
    "notebooks",
    "pages",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "_generated_static", "_intersphinx", "_ext", "_templates", "**/.ipynb_checkpoints", "check_site.py", "tutorials/.*"]
templates_path = ["_templates"]
# a page about a module another branch adds is built once that module is there
_OPTIONAL_PAGES = {"explanation/emodel.md": "telnyx_audio.analysis.emodel"}
for _page, _module in _OPTIONAL_PAGES.items():
    if importlib.util.find_spec(_module) is None:
        exclude_patterns.append(_page)
root_doc = "index"
nitpicky = True
suppress_warnings: list[str] = []

# --- intersphinx: offline, from the committed inventories ---------------------------------------
_INV = HERE / "_intersphinx"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3.11/", str(_INV / "python.inv")),
    "numpy": ("https://numpy.org/doc/stable/", str(_INV / "numpy.inv")),
    "scipy": ("https://docs.scipy.org/doc/scipy/", str(_INV / "scipy.inv")),
    "pandas": ("https://pandas.pydata.org/docs/", str(_INV / "pandas.inv")),
    "matplotlib": ("https://matplotlib.org/stable/", str(_INV / "matplotlib.inv")),
}
intersphinx_timeout = 1

# --- autodoc / autosummary ---------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autosummary_ignore_module_all = False
autosummary_context = {"facade_names": list(telnyx_audio.__all__)}
autodoc_typehints = "none"  # the numpydoc sections carry the types, in words a reader can follow
autodoc_member_order = "bysource"
autodoc_default_options = {"exclude-members": "__init__, __new__"}
add_module_names = False

# --- numpydoc: every public function and class must have a proper docstring ---------------------
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = True
numpydoc_xref_ignore = "all"  # only the aliases below become links; other words stay words
numpydoc_xref_aliases = {
    "ndarray": "numpy.ndarray",
    "DataFrame": "pandas.DataFrame",
    "Series": "pandas.Series",
    "Path": "pathlib.Path",
    "Axes": "matplotlib.axes.Axes",
    "Figure": "matplotlib.figure.Figure",
    "Capture": "telnyx_audio.Capture",
    "Recording": "telnyx_audio.Recording",
    "Track": "telnyx_audio.Track",
    "MediaFormat": "telnyx_audio.MediaFormat",
    "FrameTable": "telnyx_audio.FrameTable",
    "TrackReport": "telnyx_audio.TrackReport",
    "CallAnalysis": "telnyx_audio.CallAnalysis",
    "BatchResult": "telnyx_audio.BatchResult",
    "TelnyxClient": "telnyx_audio.TelnyxClient",
}
numpydoc_validation_checks = {
    # what a public name must have: a docstring with a one-line summary that is a sentence,
    # every parameter documented (and none that does not exist), a Returns section, sections
    # in numpydoc's order and spelling
    "GL01", "GL02", "GL03", "GL05", "GL06", "GL07", "GL08", "GL10",
    "SS01", "SS02", "SS03", "SS04",
    "PR01", "PR02", "PR03", "PR10",
    "RT01",
    "YD01",
}
numpydoc_validation_overrides = {
    # a dataclass documents its fields (its constructor's parameters) as Attributes
    "PR01": [r"(?m)^\s*Attributes\s*\n\s*-{3,}"],
}
# Nothing else is exempt: every public function and class, and each of their public
# methods, passes these checks or the build fails (tests/test_docs.py keeps this list so).
numpydoc_validation_exclude = {
    r"\.__\w+__$",  # dunder methods: Python documents them
}

# numpydoc's checks are for functions and classes: a constant would be checked on its type's
# docstring (str's, tuple's); constants show their ``#:`` comment instead (_ext/apigen.py)
import apigen  # noqa: E402

numpydoc_validation_exclude |= {"^" + re.escape(name) + "$" for name in apigen.constant_names()}

# --- notebooks (executed by _ext/notebooks.py before the build, rendered with their outputs) ---
nb_execution_mode = "off"
nb_output_stderr = "remove"  # server log lines: the notebooks show what matters
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# --- plot directive: the gallery's figures, each with the code that made it --------------------
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 96)]
plot_pre_code = "import numpy as np\nimport telnyx_audio as ta\n"
plot_working_directory = str(HERE.parent)
plot_rcparams = {"figure.figsize": (9, 3.5)}

# --- sphinx-argparse ---------------------------------------------------------------------------

# --- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"telnyx-audio {release}"
telnyx_audio_example_audio = True  # _ext/pages.py writes _generated_static/example_call.wav
html_static_path = ["_static", "_generated_static"]  # the second: written at build time (_ext/pages.py)
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "use_edit_page_button": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
# top-level pages with no pages under them: no empty navigation column
html_sidebars = {page: [] for page in ("getting_started", "cli", "benchmarks", "changelog", "development")}
html_favicon = "_static/favicon.svg"
html_css_files = ["custom.css"]
html_context = {"default_mode": "light"}  # an explicit mode: the theme logs a console error without one
html_last_updated_fmt = None

os.environ.setdefault("MPLBACKEND", "Agg")
