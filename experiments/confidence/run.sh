#!/usr/bin/env bash
# The whole confidence study, from the repository root (CPU; ~1 hour on 2 free cores):
#   experiments/confidence/run.sh [CONLL_DIR]
# data, the greedy and the beam pipeline at the same demo budget and seed, then the
# measurements into experiments/confidence/results/ (greedy.json, confidence.json, two PNGs;
# the temperature is fitted on the first 1,000 dev sentences), and the README's tables.
set -euo pipefail
PY=${PYTHON:-.venv/bin/python}
experiments/confidence/data.sh "${1:-../shared/data/conll2003}"
experiments/confidence/train.sh configs/ner_bidirectional.cfg training/confidence/greedy
experiments/confidence/train.sh configs/ner_beam.cfg training/confidence/beam
HF_HUB_OFFLINE=1 $PY experiments/confidence/measure.py --only-greedy \
  --greedy training/confidence/greedy/model-last --test corpus/confidence/test.spacy
HF_HUB_OFFLINE=1 $PY experiments/confidence/measure.py --greedy-from-file \
  --greedy training/confidence/greedy/model-last --beam training/confidence/beam/model-last \
  --dev corpus/confidence/dev.spacy --dev-limit 1000 --test corpus/confidence/test.spacy \
  --command "experiments/confidence/run.sh"
$PY experiments/confidence/report.py
