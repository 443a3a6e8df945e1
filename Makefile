# Quick start: `make demo` and `make test`. Each sets up its own .venv first.
# `make docs` builds the documentation site into docs/_build/html (offline, warnings as errors).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'  # the docs' own tests run in make test too
	touch $(STAMP)

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $(DOCS_STAMP)

demo: $(STAMP)
	$(BIN)/python -m telnyx_audio.demo --data data --out out/demo

test: $(STAMP)
	$(BIN)/python -m pytest

# The site (Sphinx: -W makes every warning an error, nitpicky cross-references, numpydoc
# validation; the notebooks are executed when they or the package changed), then the doctests
# of its pages and the README, then the built site in headless Chromium (docs/check_site.py:
# a missing page, a broken image or a console error fails; screenshots in docs/_screenshots/).
docs: $(DOCS_STAMP)
	$(BIN)/python -m sphinx -b html -W --keep-going -j 2 -q docs docs/_build/html
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_docs.py tests/test_readme.py
	@if command -v chromium >/dev/null 2>&1; then $(BIN)/python docs/check_site.py; \
	else echo "chromium not installed: the built site was not checked in a browser (.ci/run installs it)"; fi

bench: $(STAMP)
	$(BIN)/python bench/decode.py
	$(BIN)/python bench/capture_load.py
	$(BIN)/python bench/vad.py
	$(BIN)/python bench/analysis_speed.py
	$(BIN)/python bench/batch.py
	$(BIN)/python bench/wideband.py
	$(BIN)/python bench/fork.py

clean:
	rm -rf out bench/_work .pytest_cache .hypothesis docs/_build docs/_screenshots docs/api docs/tutorials/*.ipynb
