#!/usr/bin/env bash
# The confidence study's full-data run (CPU, about 1 to 1.5 hours on 2 cores): all of
# CoNLL-2003 train, configs/ner_beam.cfg with the batch250 recipe at half its steps
# (1,000 steps of 250 words, about 1.2 epochs, the rate decaying over them); model
# selection on the first half of dev's documents, calibration later on the second half.
# Usage: experiments/confidence/train_full.sh [CONLL_DIR] [SEED]   (from the repository root)
set -euo pipefail
DATA=${1:-../shared/data/conll2003}
SEED=${2:-0}
PY=${PYTHON:-.venv/bin/python}
C=corpus/confidence/full
OUT=training/confidence/full-s$SEED
mkdir -p "$C" "$OUT"
[ -f $C/dev_calibrate.spacy ] || $PY experiments/confidence/split_dev.py "$DATA/dev.txt" $C/dev_select.spacy $C/dev_calibrate.spacy
[ -f $C/train.spacy ] || $PY -m spacy llama-ner convert-conll "$DATA/train.txt" $C/train.spacy
[ -f $C/test.spacy ] || $PY -m spacy llama-ner convert-conll "$DATA/test.txt" $C/test.spacy
HF_HUB_OFFLINE=1 $PY -m spacy train configs/ner_beam.cfg --output "$OUT" \
  --paths.train $C/train.spacy --paths.dev $C/dev_select.spacy --system.seed "$SEED" \
  --training.batcher.size 250 --training.max_steps 1000 --training.eval_frequency 250 \
  --training.patience 0 --training.optimizer.learn_rate.warmup_steps 40 \
  --training.optimizer.learn_rate.total_steps 1000 \
  --training.logger.output_file "$OUT/train_log.jsonl"
