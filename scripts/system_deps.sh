#!/usr/bin/env bash
# Installs the system programs the test suite drives for real: an OpenSSH server (SSH transport
# tests start their own sshd on 127.0.0.1), Chromium (NNI web UI screenshot, report HTML), and
# qemu-user-static, debootstrap and binfmt-support (the emulated Raspberry Pi, scripts/emulated_pi.py).
# Without root or apt-get it only says what is missing; the tests that need it then skip with that reason.
set -u
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/bin/qemu-aarch64-static ] || missing+=(qemu-user-static)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v update-binfmts >/dev/null 2>&1 || missing+=(binfmt-support)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || echo "warning: could not install ${missing[*]}; tests that need them will skip" >&2
else
  echo "note: not installed: ${missing[*]} (needs root + apt-get); tests that need them will skip" >&2
fi
exit 0
