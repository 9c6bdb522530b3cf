#!/usr/bin/env bash
# CoNLL-2003 into .spacy for the confidence study, in corpus/confidence/:
#   train.spacy (all), train2000.spacy (the demo budget's first 2,000 sentences),
#   dev_select.spacy / dev_calibrate.spacy (dev split by documents: the first half chooses
#   the training checkpoint, the second half fits the calibrator), dev500.spacy (the
#   demo's evaluation during training: the first 500 sentences, inside dev_select), test.spacy.
# Usage: experiments/confidence/data.sh [CONLL_DIR]   (default ../shared/data/conll2003)
set -euo pipefail
DATA=${1:-../shared/data/conll2003}
PY=${PYTHON:-.venv/bin/python}
C=corpus/confidence
mkdir -p $C
[ -f $C/train.spacy ] || $PY -m spacy llama-ner convert-conll "$DATA/train.txt" $C/train.spacy
[ -f $C/train2000.spacy ] || $PY -m spacy llama-ner convert-conll "$DATA/train.txt" $C/train2000.spacy --limit 2000
[ -f $C/dev500.spacy ] || $PY -m spacy llama-ner convert-conll "$DATA/dev.txt" $C/dev500.spacy --limit 500
[ -f $C/dev_calibrate.spacy ] || $PY experiments/confidence/split_dev.py "$DATA/dev.txt" $C/dev_select.spacy $C/dev_calibrate.spacy
[ -f $C/test.spacy ] || $PY -m spacy llama-ner convert-conll "$DATA/test.txt" $C/test.spacy
