#!/usr/bin/env bash
# Train configs/ner_beam.cfg (CONFIG=configs/ner_spancat.cfg: the span-classifier design)
# at one of the study's budgets, after data.sh:
#   demo: the first 2,000 training sentences, 100 steps of 300 words, learn rate 2e-4 with
#         10 warm-up steps, evaluated on dev500 (minutes on 2 CPU cores)
#   full: all of CoNLL-2003 train, the greedy recipe's budget (the batch250 recipe's 2,000
#         steps of 250 words, the rate decaying over them; but the config's warm-up of 40
#         steps, where the batch250 runs used 80),
#         evaluated on dev_select every 400 steps (about 2 hours alone on 2 CPU cores)
#   social: social.sh's tweets (SOCIAL_DIR, default corpus/social/split0), 150 steps of 300 words, learn rate 2e-4
#         with 10 warm-up steps, evaluated on dev once, at the end (minutes)
# Usage: experiments/confidence/train.sh demo|full|social SEED OUTPUT_DIR [CONFIG OVERRIDES...]
#   (from the repository root; e.g. --components.transformer.model.output_layer 20; an override
#   of a key the budget sets, such as the warm-up, wins: spaCy keeps the last value given)
set -euo pipefail
BUDGET=$1
SEED=$2
OUT=$3
shift 3
PY=${PYTHON:-.venv/bin/python}
CONFIG=${CONFIG:-configs/ner_beam.cfg}
C=corpus/confidence
case $BUDGET in
  demo) ARGS=(--paths.train $C/train2000.spacy --paths.dev $C/dev500.spacy --training.max_steps 100
              --training.eval_frequency 100 --training.batcher.size 300
              --training.optimizer.learn_rate.warmup_steps 10 --training.optimizer.learn_rate.total_steps 100) ;;
  full) ARGS=(--paths.train $C/train.spacy --paths.dev $C/dev_select.spacy --training.max_steps 2000
              --training.eval_frequency 400 --training.batcher.size 250
              --training.optimizer.learn_rate.warmup_steps 40 --training.optimizer.learn_rate.total_steps 2000) ;;
  social) S=${SOCIAL_DIR:-corpus/social/split0}
          ARGS=(--paths.train $S/train.spacy --paths.dev $S/dev.spacy --training.max_steps 150
              --training.eval_frequency 150 --training.batcher.size 300
              --training.optimizer.learn_rate.warmup_steps 10 --training.optimizer.learn_rate.total_steps 150) ;;
  *) echo "budget must be demo, full or social, got '$BUDGET'" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
HF_HUB_OFFLINE=1 $PY -m spacy train "$CONFIG" --output "$OUT" --system.seed "$SEED" \
  --training.patience 0 --training.optimizer.learn_rate.initial_rate 0.0002 "${ARGS[@]}" \
  --training.logger.output_file "$OUT/train_log.jsonl" "$@"
