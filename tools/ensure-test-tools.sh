#!/usr/bin/env bash
# What the console's browser tests and the alert-rule tests need beyond the venv: Debian's chromium (driven by
# Playwright, never `playwright install`) and promtool (Debian's prometheus package). Used when present, else
# installed with apt-get (as root or through sudo); CI's fresh machine gets them this way. Without apt-get
# the tests that need them skip, saying so.
set -euo pipefail
missing=()
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "not installed: ${missing[*]} (the console's browser tests and the alert-rule tests will skip)" >&2
  exit 0
fi
echo "installing Debian's ${missing[*]} for the console and alert-rule tests" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
