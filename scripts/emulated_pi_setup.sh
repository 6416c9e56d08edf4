#!/bin/sh
# Step 2 of docs/devices.md ("Python, numpy, psutil and an interpreter on the Pi"), run inside the
# emulated Raspberry Pi by scripts/emulated_pi.py: this file is the tested form of that step.
# tests/test_emulated_pi_docs.py checks that every command of the doc's block is here word for
# word ("sudo " dropped: the system part runs as root, as sudo would; USER names the login user).
#
#   emulated_pi_setup.sh system    as root:           packages and the video group
#   emulated_pi_setup.sh user      as the login user: the runner's venvs (ai-edge-litert; tflite-runtime)
set -eux

case "${1:-}" in
system)
  apt update
  apt install -y python3 python3-venv python3-numpy python3-psutil
  usermod -aG video $USER
  ;;
user)
  python3 -m venv --system-site-packages ~/gensynth-venv      # Bookworm refuses pip outside a venv (PEP 668)
  ~/gensynth-venv/bin/pip install ai-edge-litert               # LiteRT, for .tflite models (backend: litert)
  ~/gensynth-venv/bin/python -c "from ai_edge_litert.interpreter import Interpreter; print('ok')"
  # the fallback for images where ai-edge-litert has no wheel: tflite-runtime, which needs numpy < 2
  python3 -m venv --system-site-packages ~/gensynth-tflite-venv
  ~/gensynth-tflite-venv/bin/pip install 'numpy<2' tflite-runtime
  ~/gensynth-tflite-venv/bin/python -c "from tflite_runtime.interpreter import Interpreter; print('ok')"
  ;;
*)
  echo "usage: $0 system|user" >&2
  exit 2
  ;;
esac
