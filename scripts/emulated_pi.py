#!/usr/bin/env python3
"""An emulated 64-bit Raspberry Pi OS device you can run here: a Debian bookworm arm64 root under
qemu-user, set up with docs/devices.md's commands, reached over its own aarch64 OpenSSH server.

    python scripts/emulated_pi.py build [--if-possible]   build the root once (cached; 10-14 min on 2 cores)
    python scripts/emulated_pi.py status                  what is cached, or why the last build failed
    python scripts/emulated_pi.py start                   run it until Ctrl-C; prints its profiles
    python scripts/emulated_pi.py run -- COMMAND ...      run it while COMMAND runs, with
                                                          GENSYNTH_HW_PROFILES naming its profiles
                                                          (emulated-pi-5, emulated-pi-5-tflite-runtime)

Needs root. Its timings are qemu's, about 400x slower than a Pi 5: every result says
``emulated: true``. A plumbing check of the Pi path (OS, wheels, SSH, vcgencmd formats), never a figure.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import List, Optional

import emulated_pi_root as pi_root


def _stop_on_signals() -> None:
    """SIGTERM and SIGINT end the command through Python's unwinding, so the emulated Pi is stopped
    (a shell's background job ignores SIGINT unless told otherwise)."""
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _complete_or_exit() -> "pi_root.Path":
    folder = pi_root.completed()
    if folder is None:
        failure = pi_root.last_failure()
        sys.exit(f"no emulated Pi built for these scripts under {pi_root.cache_root()}: run "
                 f"python scripts/emulated_pi.py build{f' (last build: {failure})' if failure else ''}")
    pi_root.ensure_binfmt()  # lost at a reboot of the host
    return folder


def cmd_build(args: argparse.Namespace) -> int:
    reason = pi_root.cannot_build_reason()
    if reason and args.if_possible:
        print(f"[emulated-pi] not built: {reason}; the tests that need it will skip", file=sys.stderr)
        return 0
    try:
        folder = pi_root.build(progress=lambda line: print(line, flush=True))
    except pi_root.BuildError as exc:
        print(f"[emulated-pi] {exc}", file=sys.stderr)
        if args.if_possible:
            print("[emulated-pi] the tests that need it will skip with this reason", file=sys.stderr)
            return 0
        return 1
    record = json.loads((folder / "complete").read_text())
    print(f"[emulated-pi] ready: {folder} (built {record['built']} in {record['build_s']} s)", flush=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    folder = pi_root.completed()
    print(f"cache: {pi_root.cache_root()}  key: {pi_root.build_key()}")
    if folder is not None:
        print((folder / "complete").read_text().strip())
        return 0
    print(f"not built ({pi_root.last_failure() or pi_root.cannot_build_reason() or 'never tried'})")
    return 1


def cmd_start(args: argparse.Namespace) -> int:
    from emulated_pi_device import running

    _stop_on_signals()
    with running(_complete_or_exit()) as pi:
        print(f"[emulated-pi] EMULATED Raspberry Pi 5 on 127.0.0.1:{pi.port}; profiles:", flush=True)
        for name, path in pi.profiles.items():
            print(f"  {name}: {path}", flush=True)
        print("[emulated-pi] Ctrl-C stops it", flush=True)
        try:
            while pi.proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from emulated_pi_device import running

    command: List[str] = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        sys.exit("run: give the command after --")
    _stop_on_signals()
    with running(_complete_or_exit()) as pi:
        print(f"[emulated-pi] EMULATED Raspberry Pi 5 on 127.0.0.1:{pi.port} (qemu-user, about 400x slower "
              f"than a Pi 5); profiles {', '.join(pi.profiles)} in {pi.directory}", flush=True)
        env = dict(os.environ, GENSYNTH_HW_PROFILES=str(pi.directory))
        child = subprocess.Popen(command, env=env)
        try:
            return child.wait()
        except KeyboardInterrupt as stop:  # let the command stop first (the demo stops its experiment on Ctrl-C)
            if stop.args != (signal.SIGINT,):  # a terminal's Ctrl-C reached the command already
                child.send_signal(signal.SIGINT)
            try:
                return child.wait(timeout=120)
            except subprocess.TimeoutExpired:
                child.kill()
                return child.wait()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/emulated_pi.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command_name", required=True)
    build = sub.add_parser("build", help="build the arm64 root (cached)")
    build.add_argument("--if-possible", action="store_true",
                       help="exit 0 when it cannot be built here (not root, no network), saying why")
    build.set_defaults(func=cmd_build)
    sub.add_parser("status", help="what is cached").set_defaults(func=cmd_status)
    sub.add_parser("start", help="run the emulated Pi until Ctrl-C").set_defaults(func=cmd_start)
    run = sub.add_parser("run", help="run the emulated Pi while a command runs")
    run.add_argument("command", nargs=argparse.REMAINDER)
    run.set_defaults(func=cmd_run)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
