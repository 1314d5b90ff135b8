#!/usr/bin/env bash
# Idempotent set-up: Debian packages (when missing), the .venv virtualenv, and policystack with extras.
#   scripts/setup.sh sim     # what the main job needs
#   scripts/setup.sh all     # everything: sim, sensors, ros, text, dev (tests)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-all}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3

APT_SIM="libegl1 libgl1 libgl1-mesa-dri libosmesa6"
APT_ALL="$APT_SIM libusb-1.0-0 libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox iproute2 util-linux procps"
want="$APT_SIM"; [ "$EXTRAS" = "all" ] && want="$APT_ALL"
missing=""
for p in $want; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
# Debian's own python3 ships venv/ensurepip in a separate package
if [ ! -x .venv/bin/python ] && ! "$PY" -c "import ensurepip, venv" 2>/dev/null; then missing="$missing python3-venv"; fi
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
stamp=".venv/.policystack-$EXTRAS"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # plain pip: it finds the local CPU torch wheel; torch is pinned so no CUDA build is pulled
  .venv/bin/pip install -q --disable-pip-version-check -e ".[$EXTRAS]" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import policystack, torch; print('policystack', policystack.__version__, 'torch', torch.__version__)"
  touch "$stamp"
fi
