# Two entry points for users: `make demo` and `make test`. Both create .venv with the machine's
# python3, install the pinned dependencies and this package, and register GenSynth with NNI.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gensynth-installed

.PHONY: setup demo test system-deps benchmarks clean

setup: $(STAMP)

$(STAMP): requirements.txt setup.py nni_gensynth/nni_meta.yml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/nnictl algo register --meta nni_gensynth/nni_meta.yml
	touch $(STAMP)

# Tests use a real OpenSSH server on 127.0.0.1 and headless Chromium; install them when we can.
system-deps:
	@bash scripts/system_deps.sh

demo: setup
	$(BIN)/python -m nni_gensynth.demo --config examples/gensynth.yml

test: setup system-deps
	$(BIN)/python -m pytest -q tests

benchmarks: setup
	$(BIN)/python benchmarks/measure.py
	$(BIN)/python benchmarks/nb201.py

clean:
	rm -rf $(VENV) build *.egg-info
