#!/usr/bin/env bash
# The whole confidence study, from the repository root (CPU):
#   experiments/confidence/run.sh demo [CONLL_DIR]   three seeds at the demo budget (~35 minutes)
#   experiments/confidence/run.sh full [CONLL_DIR]   seed 0 on all of CoNLL-2003 (~2 hours)
#   SEEDS="0 1" experiments/confidence/run.sh full    other seeds (each ~2 hours; trained runs are kept)
#   DESIGN=spancat experiments/confidence/run.sh ...  the same for configs/ner_spancat.cfg
#                                                     (runs named BUDGET-spancat-sSEED)
#   DESIGN=greedyupdate experiments/confidence/run.sh ...  configs/ner_beam.cfg trained with
#                                                     greedy updates only (beam_update_prob 0),
#                                                     decoded by the same scored beam
#   DESIGN=warmup80 experiments/confidence/run.sh ...  configs/ner_beam.cfg with the batch250 greedy
#                                                     recipe's 80 warm-up steps (train.sh's budgets use 40)
# Each pipeline is trained (train.sh), then measured (measure.py: the calibrators fitted on
# dev_calibrate, told the entities of the pipeline's training data, judged on test) into
# experiments/confidence/results/; report.py then writes results/tables.md, which the
# README quotes. Speed is measured on the full run only.
set -euo pipefail
BUDGET=${1:?demo or full}
PY=${PYTHON:-.venv/bin/python}
DESIGN=${DESIGN:-beam}
case $DESIGN in
  beam) export CONFIG=configs/ner_beam.cfg; TAG=; OVERRIDES=() ;;
  spancat) export CONFIG=configs/ner_spancat.cfg; TAG=-spancat; OVERRIDES=() ;;
  greedyupdate) export CONFIG=configs/ner_beam.cfg; TAG=-greedyupdate
                OVERRIDES=(--components.ner.beam_update_prob 0) ;;
  warmup80) export CONFIG=configs/ner_beam.cfg; TAG=-warmup80
            OVERRIDES=(--training.optimizer.learn_rate.warmup_steps 80) ;;
  *) echo "DESIGN must be beam, spancat, greedyupdate or warmup80, got '$DESIGN'" >&2; exit 2 ;;
esac
experiments/confidence/data.sh "${2:-../shared/data/conll2003}"
SEEDS=${SEEDS:-$([ "$BUDGET" = demo ] && echo "0 1 2" || echo 0)}
for SEED in $SEEDS; do
  NAME=$BUDGET$TAG-s$SEED
  OUT=training/confidence/$NAME
  [ -d "$OUT/model-best" ] || experiments/confidence/train.sh "$BUDGET" "$SEED" "$OUT" ${OVERRIDES[@]+"${OVERRIDES[@]}"}
  HF_HUB_OFFLINE=1 $PY experiments/confidence/measure.py "$OUT/model-best" --name "$NAME" \
    --dev corpus/confidence/dev_calibrate.spacy --test corpus/confidence/test.spacy \
    --train corpus/confidence/$([ "$BUDGET" = demo ] && echo train2000 || echo train).spacy \
    --out experiments/confidence/results/$NAME.json --command "DESIGN=$DESIGN SEEDS=$SEED experiments/confidence/run.sh $BUDGET" --outcomes "$OUT/outcomes.npz" \
    --repeats "$([ "$BUDGET" = demo ] && echo 0 || echo 3)"
done
$PY experiments/confidence/report.py
