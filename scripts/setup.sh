#!/usr/bin/env bash
# One-time, idempotent set-up on a fresh Debian machine: system packages, venv, package.
# timgm6mb-soundfont: the second training piano of the alignment CRNN (scripts/train_align.sh);
# csound-soundfont: a second held-out piano of its rendered test conditions.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=0
for pkg in fluidsynth libfluidsynth3 fluid-soundfont-gm musescore-general-soundfont-small timgm6mb-soundfont csound-soundfont libsndfile1; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" = 1 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fluidsynth libfluidsynth3 \
    fluid-soundfont-gm musescore-general-soundfont-small timgm6mb-soundfont csound-soundfont \
    libsndfile1 >/dev/null
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
quiet_pip() {  # pip install; its output is shown only when it fails
  local log
  if ! log=$(.venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2>&1); then
    printf '%s\n' "$log" >&2
    return 1
  fi
}
# torch is pinned: a bare 'torch' would pull a multi-GB CUDA build.
quiet_pip "torch==2.13.0"
quiet_pip -e ".[test]"
# synctoolbox (the MrMsDTW baseline of `pianossm align --method mrmsdtw`, and its tests)
# pins numba<0.66: a plain install downgrades our numba (to 0.65.1 and its llvmlite).  Its code
# runs on our numba (1.4.2 on numba 0.68.1: the MrMsDTW test of tests/test_align_methods.py
# passes), so synctoolbox and libfmp go in with --no-deps, after the dependencies they
# import that the package does not already bring: pandas, and music21 + IPython, which
# libfmp's package imports load (IPython < 9 is libfmp 1.3.0's own bound).
quiet_pip "pandas>=2.3,<3" "music21>=9.9,<10" "ipython>=8.10,<9"
quiet_pip --no-deps "synctoolbox==1.4.2" "libfmp==1.3.0"
.venv/bin/python -c "import synctoolbox.dtw.mrmsdtw, synctoolbox.feature.pitch_onset, synctoolbox.feature.csv_tools"
.venv/bin/python -c "import pianossm, torch; print('pianossm ready, torch', torch.__version__)"
