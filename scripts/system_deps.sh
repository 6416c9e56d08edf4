#!/usr/bin/env bash
# Installs the system programs the test suite drives for real: an OpenSSH server (SSH transport
# tests start their own sshd on 127.0.0.1) and Chromium (NNI web UI screenshot, report HTML).
# Without root or apt-get it only says what is missing; the tests that need it then skip with that reason.
set -u
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
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
