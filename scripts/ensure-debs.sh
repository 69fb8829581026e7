#!/usr/bin/env bash
# Installs Debian packages only where they are missing.
# Usage: scripts/ensure-debs.sh WHAT:PACKAGE [WHAT:PACKAGE ...]
#   WHAT is a command looked up on PATH, or (starting with /) a file to test for (a header,
#   a library), or empty (":PACKAGE") to ask dpkg whether PACKAGE itself is installed.
set -euo pipefail
missing=()
for pair in "$@"; do
  what=${pair%%:*}
  pkg=${pair#*:}
  if [[ -z $what ]]; then
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  elif [[ $what == /* ]]; then
    [[ -e $what ]] || missing+=("$pkg")
  else
    command -v "$what" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "error: need root or sudo to apt-get install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
