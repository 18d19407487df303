#!/usr/bin/env bash
# The rendered validation sets of the aligner, every condition, the shipped pair (or --model
# CKPT), two jobs at a time on one thread each; tables in runs/align/{cond_gen,cond_corpus,
# seg_h,seg_c}_TAG.md.  The folders are made as the README's alignment section says.
# Usage: scripts/align_eval_all.sh TAG [--no-wpe] [--model CKPT]
set -euo pipefail
T=$1; shift
PY=${PY:-.venv/bin/python}
D=${ALIGN_DATA:-runs/align}
export OMP_NUM_THREADS=1
$PY scripts/align_conditions.py "$D"/test_csound_dry "$D"/test_csound_hall "$D"/test_musescore_dry \
    "$D"/test_musescore_studio "$D"/test_musescore_hall "$D"/test_fluidr3_hall --limit 3 \
    --methods dtw+crnn "$@" > "$D/cond_gen_$T.md" 2> "$D/cond_gen_$T.err" &
$PY scripts/align_conditions.py "$D"/corpus_csound_studio "$D"/corpus_csound_hall \
    "$D"/corpus_musescore_studio "$D"/corpus_musescore_hall --methods dtw+crnn "$@" \
    > "$D/cond_corpus_$T.md" 2> "$D/cond_corpus_$T.err"
wait
$PY scripts/align_segments.py "$D"/long_* --methods dtw+crnn --human "$@" > "$D/seg_h_$T.md" \
    2> "$D/seg_h_$T.err" &
$PY scripts/align_segments.py "$D"/long_* --methods dtw+crnn "$@" > "$D/seg_c_$T.md" \
    2> "$D/seg_c_$T.err"
wait
