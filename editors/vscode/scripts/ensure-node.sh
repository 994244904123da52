#!/usr/bin/env bash
# node and npm for the VS Code extension: used when present, else installed from Debian's packages
# (apt-get, as root or through sudo). CI's fresh machine gets them this way.
set -euo pipefail
check_version() {
  # The extension's tools need Node.js 18 or newer (Debian 12 ships 18.19, Debian 13 20.19).
  if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
    echo "editors/vscode needs Node.js 18 or newer; found $(node --version)" >&2
    exit 1
  fi
}
if command -v node >/dev/null && command -v npm >/dev/null; then
  check_version
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "node and npm are needed for editors/vscode: install Node.js 18 or newer with npm" >&2
  exit 1
fi
echo "node/npm not found: installing Debian's nodejs and npm" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm
check_version
