#!/usr/bin/env bash
# Train one pipeline of the confidence study at the demo budget (the old demo recipe:
# 2,000 training sentences, 100 steps of 300 words, learn rate 2e-4 with 10 warm-up steps,
# seed 0). Usage: experiments/confidence/train.sh CONFIG OUTPUT_DIR
# Run from the repository root, after experiments/confidence/data.sh.
set -euo pipefail
CONFIG=$1
OUT=$2
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
HF_HUB_OFFLINE=1 $PY -m spacy train "$CONFIG" --output "$OUT" \
  --paths.train corpus/confidence/train.spacy --paths.dev corpus/confidence/dev500.spacy \
  --system.seed 0 --training.max_steps 100 --training.eval_frequency 100 \
  --training.batcher.size 300 \
  --training.optimizer.learn_rate.initial_rate 0.0002 \
  --training.optimizer.learn_rate.warmup_steps 10 \
  --training.optimizer.learn_rate.total_steps 100 \
  --training.logger.output_file "$OUT/train_log.jsonl"
