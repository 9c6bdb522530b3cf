#!/usr/bin/env bash
# CoNLL-2003 into .spacy for the confidence study: the first 2,000 training sentences,
# the first 500 dev sentences (evaluation during training), and the full dev and test sets.
# Usage: experiments/confidence/data.sh [CONLL_DIR]   (default ../shared/data/conll2003)
set -euo pipefail
DATA=${1:-../shared/data/conll2003}
PY=${PYTHON:-.venv/bin/python}
mkdir -p corpus/confidence
$PY -m spacy llama-ner convert-conll "$DATA/train.txt" corpus/confidence/train.spacy --limit 2000
$PY -m spacy llama-ner convert-conll "$DATA/dev.txt" corpus/confidence/dev500.spacy --limit 500
$PY -m spacy llama-ner convert-conll "$DATA/dev.txt" corpus/confidence/dev.spacy
$PY -m spacy llama-ner convert-conll "$DATA/test.txt" corpus/confidence/test.spacy
