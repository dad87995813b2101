#!/usr/bin/env bash
# Installs (once) what the browser checks need and prints the path of a Python venv with selenium:
# Debian's chromium and chromium-driver (apt, sudo only when not root), python3-venv if needed, and
# selenium from PyPI into the venv (AIRLOCK_BROWSER_VENV, default <root>/.build-browser-venv).
# Used by the integration scenario that screenshots Prometheus's graph page and by the dashboard's
# browser suite.
set -euo pipefail
venv="${AIRLOCK_BROWSER_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.build-browser-venv}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "browser-venv: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! "$venv/bin/python" -c 'import selenium' >/dev/null 2>&1; then
  echo "browser-venv: installing selenium into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "selenium>=4.20,<5" >&2
fi
echo "$venv"
