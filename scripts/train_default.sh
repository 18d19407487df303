#!/usr/bin/env bash
# Trains the built-in default model (Piano-SSM S at 16 kHz) on the built-in dataset, on CPU.
# Resumable: run it again after an interruption and it continues from runs/default/last.pt.
# The recipe is the paper's (SMML, then MSSL fine-tuning) shrunk to a ~60-minute 1-thread
# CPU budget: 1 s crops, batch 4, a 10x higher learning rate, 650 steps in all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-runs/builtin16k}
OUT=${OUT:-runs/default}
if [ ! -f "$DATA/manifest.json" ]; then
    $PY -m pianossm dataset build -o "$DATA" --soundfont fluidr3 --sample-rate 16000 --seed 0
fi
RESUME=""
if [ -f "$OUT/last.pt" ]; then RESUME="--resume"; fi
$PY -m pianossm train $RESUME --data "$DATA" --out "$OUT" --preset S --sample-rate 16000 \
    --steps 550 --finetune-steps 100 --batch 4 --crop-seconds 1.0 \
    --lr 1e-3 --warmup-steps 50 --restart-steps 550 --min-lr-ratio 0.05 --finetune-lr 1e-4 \
    --val-every 50 --val-max-windows 3 --ckpt-every 25 --log-every 5 --threads 1 --seed 0
# Ship it: cp "$OUT/last.pt" -> model-only checkpoint at src/pianossm/assets/default_model.pt
