#!/usr/bin/env bash
# One-time, idempotent set-up on a fresh Debian machine: system packages, venv, package.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=0
for pkg in fluidsynth libfluidsynth3 fluid-soundfont-gm musescore-general-soundfont-small libsndfile1; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" = 1 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fluidsynth libfluidsynth3 \
    fluid-soundfont-gm musescore-general-soundfont-small libsndfile1 >/dev/null
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch is pinned: a bare 'torch' would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import pianossm, torch; print('pianossm ready, torch', torch.__version__)"
