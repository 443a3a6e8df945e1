# Quick start: `make demo` and `make test`. Each sets up its own .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m telnyx_audio.demo --data data --out out/demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/decode.py
	$(BIN)/python bench/capture_load.py
	$(BIN)/python bench/vad.py
	$(BIN)/python bench/analysis_speed.py
	$(BIN)/python bench/batch.py
	$(BIN)/python bench/wideband.py
	$(BIN)/python bench/fork.py

clean:
	rm -rf out bench/_work .pytest_cache .hypothesis
