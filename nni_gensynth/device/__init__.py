"""The device runner: measures one model on the machine it runs on and prints JSON.

Runs on the device (a Raspberry Pi, a phone, the host) with only the standard library, numpy,
an interpreter (onnxruntime, ai_edge_litert or tflite_runtime) and, optionally, psutil. It must
not import torch, nni, yaml or any other part of nni_gensynth: the SSH transport copies
nni_gensynth/__init__.py and this folder to the device and runs ``python3 -m nni_gensynth.device``.

Modules: ``protocol`` (backend and energy-source names, shared with the host), ``stats``
(summary statistics, shared with the host), ``energy`` (energy sources), ``system`` (threads,
affinity, memory, thermal, device facts, exiting with the host), ``emulation`` (whether it runs
under qemu-user or another emulator), ``commands`` (vcgencmd and the like, through one long-lived
shell), ``runner`` (interpreters and the timing loop), ``__main__`` (the command line).
"""
