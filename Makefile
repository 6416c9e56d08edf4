# Two entry points for users: `make demo` and `make test`. Both create .venv with the machine's
# python3, install the pinned dependencies and this package, and register GenSynth with NNI.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gensynth-installed

.PHONY: setup demo demo-pi test system-deps emulated-pi benchmarks clean

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

# An emulated 64-bit Raspberry Pi OS device (Debian bookworm arm64 under qemu-user, over SSH) for the
# ARM tests: built once and cached (10 to 14 minutes on 2 cores; needs root and the network). Where it
# cannot be built it says why, and the tests that need it skip with that reason.
emulated-pi: setup system-deps
	$(BIN)/python scripts/emulated_pi.py build --if-possible

# Optional: the demo with every candidate measured on the emulated Pi (labelled EMULATED: qemu's
# timings are a plumbing check, never a figure).
demo-pi: setup system-deps
	$(BIN)/python scripts/emulated_pi.py build
	$(BIN)/python scripts/emulated_pi.py run -- $(BIN)/python -m nni_gensynth.demo --config examples/gensynth-emulated-pi.yml

test: setup system-deps emulated-pi
	$(BIN)/python -m pytest -q --durations=20 tests

benchmarks: setup
	$(BIN)/python benchmarks/measure.py
	$(BIN)/python benchmarks/nb201.py
	$(BIN)/python benchmarks/nb201_multi.py --jobs 2

clean:
	rm -rf $(VENV) build *.egg-info
