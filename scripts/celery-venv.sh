#!/usr/bin/env bash
# Creates (once) a Python venv with real Celery from PyPI for the interop tests; prints its path.
set -euo pipefail
venv="${AIRLOCK_CELERY_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.build-celery-venv}"
if [ ! -x "$venv/bin/celery" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "celery[redis]>=5.3,<6" >&2
fi
echo "$venv"
