#!/usr/bin/env bash
# Prepare what a bare GPU machine with only PyTorch (Python 3.12, CuPy for CUDA 13,
# transformers 5.x, no spaCy) needs to run scripts/benchmark.py:
#   .gpu/site.tar.xz  spaCy, thinc, spacy-transformers, transformers 4.53.2 and their
#                     small dependencies, plus this package, unpacked from CPython 3.12
#                     manylinux wheels, shared objects stripped (the wheels are ~73 MB,
#                     more than one device call may carry)
#   .gpu/tokenizer, .gpu/dev.spacy  SmolLM2's tokenizer (standing in for Llama 3's)
#                     and the benchmark docs
# .gpu is git-ignored. Then, on the GPU machine: bash scripts/gpu_benchmark.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WHL=$(mktemp -d)
rm -rf .gpu && mkdir -p .gpu/tokenizer .gpu/site
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64"
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLATFORMS -d $WHL \
  spacy==3.8.18 thinc==8.3.14 spacy-transformers==1.4.0 transformers==4.53.2 tokenizers==0.21.4 \
  huggingface-hub==0.36.2 srsly==2.5.6 catalogue==2.0.10 confection==1.3.4 wasabi==1.1.3 weasel==1.0.1 \
  cymem==2.0.16 preshed==3.0.15 murmurhash==1.0.16 blis==1.3.4 spacy-legacy==3.0.12 spacy-loggers==1.0.5 \
  spacy-alignments==0.9.3 cloudpathlib==0.26.0 smart-open==9.0.2 pydantic==2.14.4 pydantic-core==2.50.5 \
  annotated-types==0.8.0 typing-inspection==0.4.5 langcodes gguf==0.19.0
$PY -m pip wheel -q --no-deps --no-build-isolation -w $WHL .
for wheel in $WHL/*.whl; do unzip -q -o "$wheel" -d .gpu/site; done
find .gpu/site -name "*.so" -exec strip --strip-unneeded {} +
find .gpu/site -type d \( -name tests -o -name __pycache__ \) -prune -exec rm -rf {} +
tar -C .gpu -cJf .gpu/site.tar.xz site && rm -rf .gpu/site $WHL
cp assets/models/SmolLM2-135M/tokenizer.json assets/models/SmolLM2-135M/tokenizer_config.json \
   assets/models/SmolLM2-135M/special_tokens_map.json .gpu/tokenizer/
DEV=${DEV:-corpus/dev.spacy}
if [ ! -f "$DEV" ]; then $PY -m spacy_llama_ner.conll ../shared/data/conll2003/dev.txt .gpu/dev.spacy; else cp "$DEV" .gpu/dev.spacy; fi
du -sh .gpu/*
